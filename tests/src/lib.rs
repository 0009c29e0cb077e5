//! Test harness: find the built binaries, start reflectors and senders as
//! processes on loopback, and read what they print.
//!
//! The binaries must be built first (`cargo build --workspace --bins`, which
//! the README's test command does).
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use libc as _;

pub mod netns;
pub mod relay;

/// Path of a workspace binary in the same target directory as this test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test>-<hash>
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A running reflector process.
pub struct Reflector {
    child: Option<Child>,
    /// Address it listens on.
    pub addr: SocketAddr,
    stdout: Option<std::process::ChildStdout>,
    stderr_rest: mpsc::Receiver<String>,
}

impl Reflector {
    /// Start `binary` with `args` plus `-o 0` (unless a port is given) and
    /// wait for its "listening on" line.
    pub fn start_with(binary: &str, args: &[&str], envs: &[(&str, &str)]) -> Reflector {
        Self::start_command(Command::new(bin(binary)), args, envs)
    }

    /// `stamp-suite -i` with `args`, inside the network namespace `ns`.
    pub fn start_in(ns: &netns::Netns, args: &[&str]) -> Reflector {
        let mut a = vec!["-i"];
        a.extend_from_slice(args);
        Self::start_command(ns.cmd(bin("stamp-suite")), &a, &[])
    }

    /// Start a prepared command (the binary, maybe behind a wrapper such as
    /// `ip netns exec`) with `args` plus `-o 0` unless a port is given, and
    /// wait for its "listening on" line.
    pub fn start_command(mut cmd: Command, args: &[&str], envs: &[(&str, &str)]) -> Reflector {
        cmd.args(args);
        if !args.iter().any(|a| *a == "-o" || *a == "--local-port") {
            cmd.args(["-o", "0"]);
        }
        cmd.env_remove("STAMP_HMAC_KEY");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn reflector");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("stamp reflector listening on ") {
                        break a.trim().parse().expect("listening address");
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let out = child.wait_with_output().unwrap();
                    panic!(
                        "reflector did not start: {}",
                        String::from_utf8_lossy(&out.stdout)
                    );
                }
            }
        };
        let stdout = child.stdout.take();
        Reflector {
            child: Some(child),
            addr,
            stdout,
            stderr_rest: rx,
        }
    }

    /// `stamp-suite -i` with `args`.
    pub fn start(args: &[&str]) -> Reflector {
        let mut a = vec!["-i"];
        a.extend_from_slice(args);
        Self::start_with("stamp-suite", &a, &[])
    }

    /// Port it listens on.
    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Send a signal by name (`"STOP"`, `"CONT"`, …) with kill(1).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{name} {}", self.pid());
    }

    /// Send SIGINT (Ctrl-C) and collect the exit status, stdout and the time
    /// it took to exit. Panics after 10 s.
    pub fn interrupt(mut self) -> (ExitStatus, String, Duration) {
        let child = self.child.as_mut().unwrap();
        let pid = child.id().to_string();
        let t0 = Instant::now();
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill");
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("reflector ignored SIGINT");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = t0.elapsed();
        let mut out = String::new();
        if let Some(mut s) = self.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        self.child = None;
        (status, out, took)
    }

    /// Lines the reflector wrote to stderr so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr_rest.try_iter().collect()
    }
}

impl Drop for Reflector {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Run `binary args` to completion (bounded by `limit`).
pub fn run(binary: &str, args: &[&str], envs: &[(&str, &str)], limit: Duration) -> Output {
    let mut cmd = Command::new(bin(binary));
    cmd.args(args).env_remove("STAMP_HMAC_KEY");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    run_command(&mut cmd, limit)
}

/// `stamp-suite` as a sender against `target` (`ADDR` or `[ADDR]`).
pub fn sender(target: &str, port: &str, extra: &[&str]) -> Output {
    let mut a = vec!["-r", target, "-p", port];
    a.extend_from_slice(extra);
    run("stamp-suite", &a, &[], Duration::from_secs(60))
}

/// Value of `Key: value` in a text summary.
pub fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(": ")))
        .map(str::trim)
}

/// The leading integer of `Key: N …`.
pub fn count(text: &str, key: &str) -> u64 {
    let v = field(text, key).unwrap_or_else(|| panic!("no {key:?} in:\n{text}"));
    v.split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{key}: {v}"))
}

/// CPU time (user + system) of a process in clock ticks, from /proc.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the ")" of the command name: state is field 3; utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Parse every line of `s` that is a JSON object.
pub fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// The first JSON line of `text` whose `"type"` is `kind` (`"summary"`,
/// `"reflector_summary"`, …); panics showing `text` when there is none.
pub fn json_record(text: &str, kind: &str) -> serde_json::Value {
    json_lines(text)
        .into_iter()
        .find(|v| v["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} line in:\n{text}"))
}

/// Run any command to completion (bounded by `limit`; killed and a panic
/// after that), with stdin closed.
pub fn run_command(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    // Drain both pipes while it runs: a child that writes more than a pipe
    // holds would otherwise block forever.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out_t = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err_t = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Output {
                status,
                stdout: out_t.join().unwrap(),
                stderr: err_t.join().unwrap(),
            };
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let status = child.wait().unwrap();
            let out = Output {
                status,
                stdout: out_t.join().unwrap(),
                stderr: err_t.join().unwrap(),
            };
            panic!(
                "{cmd:?} did not finish within {limit:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The repository root (the parent of the `tests` crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// One UDP datagram read from a capture, with the IP header facts a
/// reflector would get from its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// IPv4 TTL / IPv6 Hop Limit.
    pub ttl: u8,
    /// IPv4 TOS / IPv6 Traffic Class (DSCP << 2 | ECN).
    pub tos: u8,
    /// UDP payload.
    pub payload: Vec<u8>,
}

/// Every UDP datagram of a pcapng file in `tests/fixtures/vectors/`
/// (Ethernet framing, IPv4 or IPv6), in capture order.
pub fn load_vectors(name: &str) -> Vec<Datagram> {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let path = repo_root().join("tests/fixtures/vectors").join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = PcapNgReader::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    while let Some(block) = r.next_block() {
        let data = match block.unwrap() {
            Block::EnhancedPacket(p) => p.data.into_owned(),
            _ => continue,
        };
        let ethertype = u16::from_be_bytes([data[12], data[13]]);
        let ip = &data[14..];
        let (src, dst, ttl, tos, udp): (IpAddr, IpAddr, u8, u8, &[u8]) = match ethertype {
            0x0800 => {
                let ihl = (ip[0] & 0x0F) as usize * 4;
                let s: [u8; 4] = ip[12..16].try_into().unwrap();
                let d: [u8; 4] = ip[16..20].try_into().unwrap();
                (s.into(), d.into(), ip[8], ip[1], &ip[ihl..])
            }
            0x86DD => {
                let s: [u8; 16] = ip[8..24].try_into().unwrap();
                let d: [u8; 16] = ip[24..40].try_into().unwrap();
                let tc = (ip[0] << 4) | (ip[1] >> 4);
                (s.into(), d.into(), ip[7], tc, &ip[40..])
            }
            other => panic!("{name}: ethertype {other:#x}"),
        };
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        let dport = u16::from_be_bytes([udp[2], udp[3]]);
        let ulen = u16::from_be_bytes([udp[4], udp[5]]) as usize;
        out.push(Datagram {
            src: SocketAddr::new(src, sport),
            dst: SocketAddr::new(dst, dport),
            ttl,
            tos,
            payload: udp[8..ulen].to_vec(),
        });
    }
    out
}
