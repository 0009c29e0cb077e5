//! stamp-bench: the stamp-suite reflector side by side with a minimal UDP
//! echo, in one run, on loopback (issue 5).
//!
//! ```text
//! stamp-bench [--pairs N] [--seconds S] [--sessions N] [--reflector PATH]
//!             [--window N] [--flows N]
//! stamp-bench --quick                      smoke run (tests/e2e/perf_smoke.rs)
//! stamp-bench --callgrind-loop MODE N      in-process loop for scripts/callgrind.sh
//! stamp-bench --baseline-echo              the baseline server (started by the bench)
//! ```
//!
//! Servers run as separate processes (CPU is read from /proc/PID), started
//! once and measured interleaved, baseline then ours, for `--pairs` pairs;
//! figures are medians over the pairs. Every run is bounded in time.
// The baseline echo calls recvmmsg/sendmmsg raw (see baseline.rs).
#![allow(unsafe_code)]

mod baseline;
mod loadgen;
mod tstamp;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use stamp_core::clock::{TimestampSource, UnixNanos};
use stamp_core::hmac::HmacKey;
use stamp_core::reflector::{Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::Registry;
use stamp_core::sender::{request_templates, SenderConfig, SenderSession};
use stamp_core::transport::RecvMeta;
use stamp_core::TlvOptions;
use stamp_net::{ClockOverrides, SystemClock};
use stamp_wire::{AuthMode, TimestampFormat, MAX_DATAGRAM};

const KEY_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
/// Requests in flight per flow in the closed-loop throughput test.
const WINDOW: u64 = 512;
/// Flows (sockets, one generator thread each) of the `--workers` comparison.
const WORKER_FLOWS: usize = 4;

struct Opts {
    pairs: usize,
    seconds: f64,
    sessions: usize,
    precision_seconds: f64,
    timestamp_seconds: f64,
    callgrind: bool,
    /// Sections to run (`--only`); empty = all.
    only: Vec<String>,
    reflector: PathBuf,
    window: u64,
    flows: usize,
}

impl Opts {
    /// Whether section `name` runs (`--only gen,throughput,rate,workers,
    /// sender,timestamps,sessions,callgrind`; default all).
    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == name)
    }
}

fn main() -> ExitCode {
    stamp_plugins::link();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = Opts {
        pairs: 3,
        seconds: 2.0,
        sessions: 1_000_000,
        precision_seconds: 3.0,
        timestamp_seconds: 2.0,
        callgrind: true,
        only: Vec::new(),
        reflector: sibling("stamp-suite"),
        window: WINDOW,
        flows: 1,
    };
    let mut i = 0;
    while i < args.len() {
        let next = |i: usize| args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--baseline-echo" => return serve_baseline(),
            "--callgrind-loop" => {
                let n = args
                    .get(i + 2)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(10_000);
                return callgrind_loop(&next(i), n);
            }
            "--load" => {
                // Closed-loop load only, for profiling a server by hand:
                // --load ADDR SECONDS [open|1400|tlv|auth]
                let secs: f64 = args.get(i + 2).and_then(|v| v.parse().ok()).unwrap_or(5.0);
                let kind = match args.get(i + 3).map(String::as_str) {
                    Some("1400") => Kind::Open1400,
                    Some("tlv") => Kind::Tlvs,
                    Some("auth") => Kind::Auth,
                    _ => Kind::Open44,
                };
                let Ok(addr) = next(i).parse::<SocketAddr>() else {
                    eprintln!("stamp-bench: --load ADDR SECONDS [open|1400|tlv|auth]");
                    return ExitCode::from(2);
                };
                let reqs = requests(kind, 256);
                return match loadgen::closed_loop(addr, &reqs, WINDOW, 1, secs) {
                    Ok(c) => {
                        println!(
                            "sent {} received {} ({:.0} pps)",
                            c.sent,
                            c.received,
                            c.received as f64 / secs
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("stamp-bench: {e}");
                        ExitCode::FAILURE
                    }
                };
            }
            "--timestamps" => {
                // Only the receive-timestamp comparison.
                let secs = next(i).parse().unwrap_or(2.0_f64).clamp(0.1, 60.0);
                opts.timestamp_seconds = secs;
                print_machine();
                receive_timestamps(&opts);
                return ExitCode::SUCCESS;
            }
            "--quick" => {
                opts.pairs = 1;
                opts.seconds = 0.2;
                opts.sessions = 20_000;
                opts.precision_seconds = 0.3;
                opts.timestamp_seconds = 0.3;
                opts.callgrind = false;
            }
            "--pairs" => {
                opts.pairs = next(i).parse().unwrap_or(3).max(1);
                i += 1;
            }
            "--seconds" => {
                opts.seconds = next(i).parse().unwrap_or(2.0_f64).clamp(0.1, 60.0);
                i += 1;
            }
            "--sessions" => {
                opts.sessions = next(i).parse().unwrap_or(1_000_000);
                i += 1;
            }
            "--window" => {
                opts.window = next(i).parse().unwrap_or(WINDOW).clamp(1, 1 << 16);
                i += 1;
            }
            "--no-callgrind" => opts.callgrind = false,
            "--only" => {
                opts.only = next(i).split(',').map(str::to_string).collect();
                i += 1;
            }
            "--flows" => {
                opts.flows = next(i).parse().unwrap_or(1).clamp(1, 64);
                i += 1;
            }
            "--reflector" => {
                opts.reflector = PathBuf::from(next(i));
                i += 1;
            }
            "-h" | "--help" => {
                println!("{}", USAGE);
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("stamp-bench: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
        i += 1;
    }
    match bench(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stamp-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str =
    "usage: stamp-bench [--quick] [--pairs N] [--seconds S] [--sessions N] [--reflector PATH]
                   [--window N] [--flows N] [--no-callgrind]
                   [--only gen,throughput,rate,workers,sender,timestamps,sessions,callgrind]
       stamp-bench --callgrind-loop open|tlv|auth N
       stamp-bench --timestamps SECONDS    only the receive-timestamp comparison
       stamp-bench --load ADDR SECONDS [open|1400|tlv|auth]   closed-loop load only";

/// A binary next to this one (same target directory).
fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn serve_baseline() -> ExitCode {
    let socket = match UdpSocket::bind("127.0.0.1:0") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("baseline: {e}");
            return ExitCode::FAILURE;
        }
    };
    let s2 = socket2::SockRef::from(&socket);
    let _ = s2.set_recv_buffer_size(4 << 20);
    let _ = s2.set_send_buffer_size(4 << 20);
    match socket.local_addr() {
        Ok(a) => eprintln!("baseline echo listening on {a}"),
        Err(e) => {
            eprintln!("baseline: {e}");
            return ExitCode::FAILURE;
        }
    }
    match baseline::serve(socket) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baseline: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- packets

/// Kinds of request the bench sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Open mode, 44 octets, no TLV.
    Open44,
    /// Open mode, 1400 octets (an Extra Padding TLV).
    Open1400,
    /// Open mode with every RFC 8972 TLV.
    Tlvs,
    /// Authenticated mode, a Timestamp Information TLV and the HMAC TLV.
    Auth,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Open44 => "open 44",
            Kind::Open1400 => "open 1400",
            Kind::Tlvs => "open +TLVs",
            Kind::Auth => "auth +HMAC TLV",
        }
    }
    fn mode(self) -> AuthMode {
        match self {
            Kind::Auth => AuthMode::Authenticated,
            _ => AuthMode::Open,
        }
    }
}

fn registry() -> Registry {
    Registry::from_linked(&TlvOptions::new(), &BTreeMap::new()).expect("linked plugins")
}

fn key() -> Vec<u8> {
    (0..KEY_HEX.len() / 2)
        .map(|i| u8::from_str_radix(&KEY_HEX[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}

/// `n` requests of `kind`, built by the real Session-Sender.
fn requests(kind: Kind, n: usize) -> Vec<Vec<u8>> {
    let reg = registry();
    let mut o = TlvOptions::new();
    match kind {
        Kind::Open44 => {}
        Kind::Open1400 => {
            o.set("padding", (1400 - 44 - 4).to_string());
        }
        Kind::Tlvs => {
            o.set("location", "true")
                .set("timestamp-info", "true")
                .set("cos", "true")
                .set("direct-measurement", "true")
                .set("access-report", "1")
                .set("follow-up-telemetry", "true");
        }
        Kind::Auth => {
            o.set("timestamp-info", "true");
        }
    }
    let templates = request_templates(&reg, &o).expect("templates");
    let config = SenderConfig {
        mode: kind.mode(),
        key: Some(HmacKey::new(&key())),
        ..SenderConfig::default()
    };
    let mut s = SenderSession::new(config, reg, templates).expect("sender session");
    let clock = SystemClock::new(TimestampFormat::Ntp, ClockOverrides::default());
    let mut buf = vec![0u8; MAX_DATAGRAM];
    (0..n)
        .map(|_| {
            let len = s.build_request(&mut buf, Instant::now(), &clock);
            buf[..len].to_vec()
        })
        .collect()
}

// ---------------------------------------------------------- callgrind loop

/// Run `n` requests through an in-process `Reflector` (what callgrind counts).
fn callgrind_loop(mode: &str, n: u64) -> ExitCode {
    let kind = match mode {
        "open" => Kind::Open44,
        "tlv" => Kind::Tlvs,
        "auth" => Kind::Auth,
        _ => {
            eprintln!("stamp-bench: --callgrind-loop open|tlv|auth N");
            return ExitCode::from(2);
        }
    };
    let reqs = requests(kind, 64);
    let config = ReflectorConfig {
        mode: kind.mode(),
        key: Some(HmacKey::new(&key())),
        ..ReflectorConfig::default()
    };
    let mut r = Reflector::new(config, registry());
    let clock = SystemClock::new(TimestampFormat::Ntp, ClockOverrides::default());
    let mut meta = RecvMeta::new(0, SocketAddr::from(([127, 0, 0, 1], 40_000)));
    meta.dst = Some([127, 0, 0, 1].into());
    meta.dst_port = 862;
    meta.ttl = Some(64);
    meta.rx_time = Some((
        UnixNanos(1_763_800_000_000_000_000),
        TimestampSource::Kernel,
    ));
    let mut reply = vec![0u8; MAX_DATAGRAM];
    let now = Instant::now();
    let mut reflected = 0u64;
    for i in 0..n {
        let req = &reqs[i as usize % reqs.len()];
        meta.len = req.len();
        if let Outcome::Reply { .. } = r.process(req, &meta, now, &clock, &mut reply) {
            reflected += 1;
        }
    }
    println!(
        "reflected {reflected} of {n} ({mode}, {} octets)",
        reqs[0].len()
    );
    if reflected == n {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------- servers

/// A server process, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(name: &'static str, mut cmd: Command, prefix: &str) -> Result<Server, String> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let prefix = prefix.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix(&prefix) {
                    let _ = tx.send(a.trim().to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| format!("{name} did not start"))?
            .parse()
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(Server { child, addr })
    }

    fn cpu_ns(&self) -> u64 {
        cpu_ns(self.child.id())
    }

    fn rss_kib(&self) -> u64 {
        rss_kib(&format!("/proc/{}/status", self.child.id()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time of every thread of `pid` in nanoseconds: the sum of the first
/// field of /proc/PID/task/*/schedstat; falls back to utime + stime of
/// /proc/PID/stat (10 ms ticks).
fn cpu_ns(pid: u32) -> u64 {
    let mut total = 0u64;
    let mut found = false;
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in dir.flatten() {
            if let Ok(s) = std::fs::read_to_string(e.path().join("schedstat")) {
                if let Some(v) = s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    total += v;
                    found = true;
                }
            }
        }
    }
    if found {
        return total;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (tick(11) + tick(12)) * 10_000_000
}

/// CPU time of this process (every thread, finished ones included) in
/// nanoseconds, from getrusage(RUSAGE_SELF).
fn self_cpu_ns() -> u64 {
    // Safety: all-zero is a valid rusage; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // Safety: a valid pointer to a live rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    ns(ru.ru_utime) + ns(ru.ru_stime)
}

fn rss_kib(status_path: &str) -> u64 {
    std::fs::read_to_string(status_path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

// ------------------------------------------------------------ load generator

struct Load {
    sent: u64,
    received: u64,
    seconds: f64,
    server_cpu_ns: u64,
    /// CPU of this process (the generator) during the run.
    gen_cpu_ns: u64,
}

impl Load {
    fn pps(&self) -> f64 {
        self.received as f64 / self.seconds
    }
    fn offered_pps(&self) -> f64 {
        self.sent as f64 / self.seconds
    }
    fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            100.0 * self.sent.saturating_sub(self.received) as f64 / self.sent as f64
        }
    }
    fn ns_per_packet(&self) -> f64 {
        self.server_cpu_ns as f64 / self.received.max(1) as f64
    }
    fn cpu_pct(&self) -> f64 {
        self.server_cpu_ns as f64 / (self.seconds * 1e9) * 100.0
    }
    fn gen_cpu_pct(&self) -> f64 {
        self.gen_cpu_ns as f64 / (self.seconds * 1e9) * 100.0
    }
}

/// Closed loop (batched, see loadgen.rs): keep `window` requests in flight
/// on each of `flows` sockets for `seconds`; the rate is what the server
/// sustains.
fn throughput(
    server: &Server,
    reqs: &[Vec<u8>],
    window: u64,
    flows: usize,
    seconds: f64,
) -> Result<Load, String> {
    let (cpu0, gen0) = (server.cpu_ns(), self_cpu_ns());
    let t0 = Instant::now();
    let c = loadgen::closed_loop(server.addr, reqs, window, flows, seconds)?;
    let elapsed = t0.elapsed().as_secs_f64();
    Ok(Load {
        sent: c.sent,
        received: c.received,
        seconds: elapsed,
        server_cpu_ns: server.cpu_ns() - cpu0,
        gen_cpu_ns: self_cpu_ns() - gen0,
    })
}

/// Open loop at a fixed offered rate (`pps` 0: as fast as the generator
/// goes), paced by batches, then a 200 ms drain (its server CPU counted).
fn fixed_rate(server: &Server, reqs: &[Vec<u8>], pps: u64, seconds: f64) -> Result<Load, String> {
    let (cpu0, gen0) = (server.cpu_ns(), self_cpu_ns());
    let (c, elapsed) = loadgen::open_loop(server.addr, reqs, pps, seconds)?;
    Ok(Load {
        sent: c.sent,
        received: c.received,
        seconds: elapsed,
        server_cpu_ns: server.cpu_ns() - cpu0,
        gen_cpu_ns: self_cpu_ns() - gen0,
    })
}

// ------------------------------------------------------------- statistics

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

// ------------------------------------------------------------------ bench

fn bench(o: &Opts) -> Result<(), String> {
    if !o.reflector.exists() {
        return Err(format!(
            "{} not found: build it first (cargo build --release --workspace --bins) or pass --reflector",
            o.reflector.display()
        ));
    }
    print_machine();
    println!(
        "pairs {} (interleaved baseline, ours), {} s per run, medians reported",
        o.pairs, o.seconds
    );

    let mut cmd = Command::new(sibling("stamp-bench"));
    cmd.arg("--baseline-echo");
    let base = Server::start("baseline echo", cmd, "baseline echo listening on ")?;
    let ours = |auth: bool, workers: usize, gso: bool| -> Result<Server, String> {
        let mut cmd = Command::new(&o.reflector);
        cmd.args(["-i", "-S", "127.0.0.1", "-o", "0", "--workers"])
            .arg(workers.to_string())
            .env_remove("STAMP_HMAC_KEY")
            .env("STAMP_LOG", "warn");
        if auth {
            cmd.args(["-A", "A", "--hmac-key", KEY_HEX]);
        }
        if !gso {
            cmd.args(["--gso", "off"]);
        }
        Server::start(
            if auth { "ours (auth)" } else { "ours" },
            cmd,
            "stamp reflector listening on ",
        )
    };
    let ours_open = ours(false, 1, true)?;
    let ours_auth = ours(true, 1, true)?;
    let ours_two = ours(false, 2, true)?;
    // The same reflector with one datagram per sendmmsg message, as the
    // baseline sends: what the offload is worth, shown beside it.
    let plain_open = ours(false, 1, false)?;
    let plain_auth = ours(true, 1, false)?;
    let idle_base = base.rss_kib();
    let idle_ours = ours_open.rss_kib();

    let mut ratios = Vec::new();
    let mut cpu_ratio_10k = f64::NAN;

    if o.wants("gen") {
        // What the generator alone can offer (nobody reads the target socket).
        println!();
        println!(
            "== load generator (sendmmsg/recvmmsg, {} per call; shares the CPUs with the server, nothing pinned) ==",
            loadgen::BATCH
        );
        for kind in [Kind::Open44, Kind::Open1400] {
            let reqs = requests(kind, 256);
            let pps = loadgen::capacity(&reqs, o.seconds.min(1.0))?;
            println!(
                "offered as fast as possible, {} octets, to an unread socket: {pps:.0} pps",
                reqs[0].len()
            );
        }
    }

    if o.wants("throughput") {
        // Throughput: closed loop, per kind, interleaved pairs.
        println!();
        println!(
            "== throughput (reflected packets/s, closed loop, {} in flight on {} flow(s); ours: --workers 1; runs interleaved baseline, ours, ours --gso off) ==",
            o.window, o.flows
        );
        println!(
            "{:<34} {:>12} {:>12} {:>7} {:>11} {:>11} {:>6} {:>9} {:>9}",
            "packet",
            "baseline pps",
            "ours pps",
            "ratio",
            "base ns/pkt",
            "ours ns/pkt",
            "cpu x",
            "gen cpu%",
            "srv cpu%"
        );
        for kind in [Kind::Open44, Kind::Open1400, Kind::Tlvs, Kind::Auth] {
            let reqs = requests(kind, 256);
            let (server, plain) = if kind == Kind::Auth {
                (&ours_auth, &plain_auth)
            } else {
                (&ours_open, &plain_open)
            };
            let mut rows = [Row::default(), Row::default()];
            for _ in 0..o.pairs {
                let b = throughput(&base, &reqs, o.window, o.flows, o.seconds)?;
                let s = throughput(server, &reqs, o.window, o.flows, o.seconds)?;
                let p = throughput(plain, &reqs, o.window, o.flows, o.seconds)?;
                rows[0].add(&b, &s);
                rows[1].add(&b, &p);
            }
            for (row, label) in rows.iter_mut().zip(["", ", --gso off"]) {
                let ratio = row.print(&format!("{}{label} ({}o)", kind.label(), reqs[0].len()));
                if label.is_empty() {
                    ratios.push((kind, ratio));
                }
            }
        }
    }

    if o.wants("rate") {
        // Fixed offered rate: loss and CPU.
        println!();
        println!("== fixed rate (open 44 octets, open loop paced by batches of >= 100 µs of traffic; 0 = as fast as possible) ==");
        println!(
            "{:<10} {:>11} {:>11} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>6}",
            "rate",
            "offered b/o",
            "reflect b/o",
            "base loss%",
            "ours loss%",
            "base cpu%",
            "ours cpu%",
            "base ns/p",
            "ours ns/p",
            "cpu x"
        );
        let reqs = requests(Kind::Open44, 256);
        for rate in [10_000u64, 100_000, 200_000, 0] {
            let mut v: [Vec<f64>; 10] = Default::default();
            for _ in 0..o.pairs {
                let b = fixed_rate(&base, &reqs, rate, o.seconds)?;
                let s = fixed_rate(&ours_open, &reqs, rate, o.seconds)?;
                for (slot, x) in v.iter_mut().zip([
                    b.offered_pps(),
                    s.offered_pps(),
                    b.pps(),
                    s.pps(),
                    b.loss_pct(),
                    s.loss_pct(),
                    b.cpu_pct(),
                    s.cpu_pct(),
                    b.ns_per_packet(),
                    s.ns_per_packet(),
                ]) {
                    slot.push(x);
                }
            }
            let m: Vec<f64> = v.into_iter().map(median).collect();
            if rate == 10_000 {
                cpu_ratio_10k = m[7] / m[6];
            }
            let k = |x: f64| format!("{:.0}k", x / 1000.0);
            println!(
                "{:<10} {:>11} {:>11} {:>10.3} {:>10.3} {:>9.1} {:>9.1} {:>9.0} {:>9.0} {:>6.2}",
                if rate == 0 {
                    "max".to_string()
                } else {
                    format!("{rate} pps")
                },
                format!("{}/{}", k(m[0]), k(m[1])),
                format!("{}/{}", k(m[2]), k(m[3])),
                m[4],
                m[5],
                m[6],
                m[7],
                m[8],
                m[9],
                m[7] / m[6]
            );
        }
    }

    if o.wants("workers") {
        // Workers: the same reflector with --workers 1 and 2, several flows so
        // SO_REUSEPORT can spread them.
        println!();
        println!(
            "== workers (ours, open 44 octets, closed loop on {WORKER_FLOWS} flows x {} in flight; interleaved) ==",
            o.window
        );
        println!(
            "{:<12} {:>12} {:>12} {:>7} {:>11} {:>11}",
            "", "workers 1", "workers 2", "2 / 1", "w1 cpu%", "w2 cpu%"
        );
        {
            let reqs = requests(Kind::Open44, 256);
            let (mut p1, mut p2, mut r, mut c1, mut c2) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..o.pairs {
                let a = throughput(&ours_open, &reqs, o.window, WORKER_FLOWS, o.seconds)?;
                let b = throughput(&ours_two, &reqs, o.window, WORKER_FLOWS, o.seconds)?;
                p1.push(a.pps());
                p2.push(b.pps());
                r.push(b.pps() / a.pps().max(1.0));
                c1.push(a.cpu_pct());
                c2.push(b.cpu_pct());
            }
            println!(
                "{:<12} {:>12.0} {:>12.0} {:>7.2} {:>11.0} {:>11.0}",
                "pps",
                median(p1),
                median(p2),
                median(r),
                median(c1),
                median(c2)
            );
        }
    }

    if o.wants("sender") {
        // Sender schedule precision.
        println!();
        println!("== sender schedule (stamp-suite sender; deviation from the schedule in µs) ==");
        println!(
            "   sender: its pacing thread's lateness at each slot (send started; send returned)"
        );
        println!("   wire:   |arrival gap - interval| from kernel receive timestamps on loopback");
        println!(
            "{:<10} {:>8} {:>9} {:>9} {:>9} {:>11} {:>10} {:>10} {:>10}",
            "rate", "packets", "median", "p99", "max", "sent med/p99", "", "wire med", "wire p99"
        );
        for (rate, delay_ms) in [(1_000u64, "1"), (10_000, "0.1")] {
            match sender_precision(o, rate, delay_ms) {
                Ok(p) => println!(
                    "{:<10} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>11} {:>10} {:>10.1} {:>10.1}",
                    format!("{rate} pps"),
                    p.packets,
                    p.median,
                    p.p99,
                    p.max,
                    format!("{:.0}/{:.0}", p.sent_median, p.sent_p99),
                    "",
                    p.wire_median,
                    p.wire_p99
                ),
                Err(e) => println!("{rate} pps: {e}"),
            }
        }
    }

    if o.wants("timestamps") {
        println!();
        receive_timestamps(o);
    }

    if o.wants("sessions") {
        // Session table memory.
        println!();
        println!("== sessions (in-process stateful Reflector) ==");
        let (kib_before, kib_after, created) = session_rss(o.sessions);
        let delta = kib_after.saturating_sub(kib_before);
        println!(
            "{created} sessions: RSS {:.1} MiB (+{:.1} MiB for the table, {:.0} octets/session; limit 256 MiB per million)",
            kib_after as f64 / 1024.0,
            delta as f64 / 1024.0,
            delta as f64 * 1024.0 / created.max(1) as f64
        );
        println!(
            "idle RSS: baseline {:.1} MiB, ours {:.1} MiB",
            idle_base as f64 / 1024.0,
            idle_ours as f64 / 1024.0
        );
    }

    if o.callgrind && o.wants("callgrind") {
        println!();
        callgrind_figures();
    }

    println!();
    println!(
        "== ratio ours/baseline (targets: open >= 0.9, auth >= 0.8, CPU at 10 000 pps <= 1.5x) =="
    );
    for (kind, r) in &ratios {
        let (kind, r) = (*kind, *r);
        let target = if kind == Kind::Auth { 0.8 } else { 0.9 };
        println!(
            "{:<16} {:>6.2}  {}",
            kind.label(),
            r,
            if r >= target { "ok" } else { "below target" }
        );
    }
    println!(
        "{:<16} {:>6.2}  {}",
        "cpu @10k pps",
        cpu_ratio_10k,
        if cpu_ratio_10k <= 1.5 {
            "ok"
        } else {
            "above target"
        }
    );
    drop((base, ours_open, ours_auth, ours_two, plain_open, plain_auth));
    Ok(())
}

/// One line of the throughput table: the per-pair figures of the baseline
/// and one of our servers, reported as medians.
#[derive(Default)]
struct Row {
    base_pps: Vec<f64>,
    ours_pps: Vec<f64>,
    ratio: Vec<f64>,
    base_ns: Vec<f64>,
    ours_ns: Vec<f64>,
    gen_cpu: Vec<f64>,
    srv_cpu: Vec<f64>,
}

impl Row {
    fn add(&mut self, b: &Load, s: &Load) {
        self.base_pps.push(b.pps());
        self.ours_pps.push(s.pps());
        self.ratio.push(s.pps() / b.pps().max(1.0));
        self.base_ns.push(b.ns_per_packet());
        self.ours_ns.push(s.ns_per_packet());
        self.gen_cpu.extend([b.gen_cpu_pct(), s.gen_cpu_pct()]);
        self.srv_cpu.extend([b.cpu_pct(), s.cpu_pct()]);
    }

    /// Print the medians under `label`; returns the median pps ratio.
    fn print(&mut self, label: &str) -> f64 {
        let (bn, on) = (
            median(std::mem::take(&mut self.base_ns)),
            median(std::mem::take(&mut self.ours_ns)),
        );
        let ratio = median(std::mem::take(&mut self.ratio));
        println!(
            "{:<34} {:>12.0} {:>12.0} {:>7.2} {:>11.0} {:>11.0} {:>6.2} {:>9.0} {:>9.0}",
            label,
            median(std::mem::take(&mut self.base_pps)),
            median(std::mem::take(&mut self.ours_pps)),
            ratio,
            bn,
            on,
            on / bn,
            median(std::mem::take(&mut self.gen_cpu)),
            median(std::mem::take(&mut self.srv_cpu))
        );
        ratio
    }
}

/// Instructions per reflected packet counted by callgrind (deterministic,
/// unlike the wall-clock figures): the in-process loop of
/// `--callgrind-loop MODE N` run for two N, the difference divided by the
/// extra packets (start-up and set-up cancel out). Same method as
/// `scripts/callgrind.sh`; skipped when valgrind is not installed.
fn callgrind_figures() {
    println!(
        "== instructions per reflected packet (valgrind --tool=callgrind, in-process Reflector) =="
    );
    let count = |mode: &str, n: u64| -> Option<u64> {
        let out = Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(sibling("stamp-bench"))
            .args(["--callgrind-loop", mode, &n.to_string()])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let err = String::from_utf8_lossy(&out.stderr);
        err.lines()
            .find_map(|l| l.split("Collected : ").nth(1))
            .and_then(|v| v.trim().parse().ok())
    };
    let (n1, n2) = (2_000u64, 12_000u64);
    for (mode, label) in [
        ("open", "open, 44 octets"),
        ("tlv", "open, every RFC 8972 TLV"),
        ("auth", "authenticated + Timestamp Information + HMAC TLV"),
    ] {
        match (count(mode, n1), count(mode, n2)) {
            (Some(a), Some(b)) => println!(
                "{label:<50} {:>8} instructions/packet",
                b.saturating_sub(a) / (n2 - n1)
            ),
            _ => {
                println!("valgrind not available: skipped (install valgrind, or run scripts/callgrind.sh)");
                return;
            }
        }
    }
}

/// Receive timestamps: user space after recvmmsg vs the kernel's.
fn receive_timestamps(o: &Opts) {
    println!("== receive timestamps under load (loopback; T2 user space after recvmmsg vs T2 kernel SO_TIMESTAMPING; µs) ==");
    println!("   user-kernel: user-space T2 minus kernel T2 (the error a user-space T2 carries)");
    println!("   from TX: T2 minus the sender's kernel transmit timestamp (true loopback delay is a few µs)");
    println!(
        "{:<11} {:>8} {:>22} {:>22} {:>22}",
        "rate", "packets", "user-kernel med/p99/max", "kernel from TX", "user from TX"
    );
    for rate in [10_000u64, 100_000] {
        let count = ((rate as f64 * o.timestamp_seconds) as usize).max(100);
        let f = |s: &tstamp::Spread| format!("{:.1}/{:.1}/{:.0}", s.median, s.p99, s.max);
        match tstamp::run(count, rate) {
            Ok(r) => println!(
                "{:<11} {:>8} {:>22} {:>22} {:>22}",
                format!("{} pps", r.rate),
                r.packets,
                f(&r.user_minus_kernel),
                f(&r.kernel_from_tx),
                f(&r.user_from_tx)
            ),
            Err(e) => println!("{rate} pps: {e}"),
        }
    }
}

fn print_machine() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("machine: {cpus} CPUs, {model}, Linux {}", kernel.trim());
}

/// Schedule precision of the real sender at one rate.
struct Precision {
    packets: u64,
    median: f64,
    p99: f64,
    max: f64,
    sent_median: f64,
    sent_p99: f64,
    wire_median: f64,
    wire_p99: f64,
}

/// Value of `key=` in a tracing text line.
fn log_field(line: &str, key: &str) -> Option<f64> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    line[at..].split_whitespace().next()?.parse().ok()
}

/// Run the real sender at `rate` against a receiver that takes kernel
/// timestamps. The sender's own pacing report gives the lateness against
/// its schedule; the receiver gives the gaps as they reach the wire.
fn sender_precision(o: &Opts, rate: u64, delay_ms: &str) -> Result<Precision, String> {
    use nix::sys::socket::{
        recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
    };
    use std::os::fd::AsRawFd;
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    setsockopt(&sock, sockopt::ReceiveTimestampns, &true).map_err(|e| e.to_string())?;
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(4 << 20);
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    let port = sock.local_addr().map_err(|e| e.to_string())?.port();
    let count = ((rate as f64 * o.precision_seconds) as u64).max(10);
    let mut child = Command::new(&o.reflector)
        .args([
            "-r",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-c",
            &count.to_string(),
            "-d",
            delay_ms,
            "-L",
            "0.05",
        ])
        .env_remove("STAMP_HMAC_KEY")
        .env("STAMP_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let report = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("pacing schedule"))
    });
    let interval_ns = 1_000_000_000 / rate as i128;
    let mut samples: Vec<(u32, i128)> = Vec::with_capacity(count as usize);
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs_f64(o.precision_seconds + 10.0);
    let fd = sock.as_raw_fd();
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    while samples.len() < count as usize && Instant::now() < deadline {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())
        {
            Ok(m) => m,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        let mut ts = None;
        if let Ok(cms) = msg.cmsgs() {
            for c in cms {
                if let ControlMessageOwned::ScmTimestampns(t) = c {
                    ts = Some(i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec()));
                }
            }
        }
        if let (Some(t), true) = (ts, msg.bytes >= 4) {
            let seq = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            samples.push((seq, t));
        }
    }
    // The sender exits once its last packet timed out (-L 0.05).
    let limit = Instant::now() + Duration::from_secs(5);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < limit {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = report
        .join()
        .ok()
        .flatten()
        .ok_or("the sender printed no pacing report")?;
    if samples.len() < 10 {
        return Err(format!("only {} packets arrived", samples.len()));
    }
    samples.sort_by_key(|s| s.0);
    let mut gaps: Vec<f64> = samples
        .windows(2)
        .filter(|w| w[1].0 == w[0].0.wrapping_add(1))
        .map(|w| ((w[1].1 - w[0].1) - interval_ns).abs() as f64 / 1000.0)
        .collect();
    gaps.sort_by(|a, b| a.total_cmp(b));
    let f = |k: &str| log_field(&line, k).unwrap_or(f64::NAN);
    Ok(Precision {
        packets: f("packets") as u64,
        median: f("late_median_us"),
        p99: f("late_p99_us"),
        max: f("late_max_us"),
        sent_median: f("sent_median_us"),
        sent_p99: f("sent_p99_us"),
        wire_median: quantile(&gaps, 0.5),
        wire_p99: quantile(&gaps, 0.99),
    })
}

/// RSS before and after creating `n` stateful sessions in a Reflector.
fn session_rss(n: usize) -> (u64, u64, usize) {
    let reqs = requests(Kind::Open44, 1);
    let config = ReflectorConfig {
        stateful: true,
        max_sessions: n.max(1),
        ..ReflectorConfig::default()
    };
    let before = rss_kib("/proc/self/status");
    let mut r = Reflector::new(config, registry());
    let clock = SystemClock::new(TimestampFormat::Ntp, ClockOverrides::default());
    let mut reply = vec![0u8; MAX_DATAGRAM];
    let now = Instant::now();
    for i in 0..n as u64 {
        // A distinct sender address per session (10.0.0.0/8 has 2^24).
        let ip = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
        let port = 40_000 + (i >> 24) as u16;
        let mut m = RecvMeta::new(reqs[0].len(), SocketAddr::from((ip, port)));
        m.dst = Some([127, 0, 0, 1].into());
        m.dst_port = 862;
        let _ = r.process(&reqs[0], &m, now, &clock, &mut reply);
    }
    let after = rss_kib("/proc/self/status");
    let created = r.sessions().len();
    drop(r);
    (before, after, created)
}
