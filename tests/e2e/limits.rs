//! The reflector's limits through the real binary (issue 7): the session
//! table's least-recently-used eviction, the per-source rate limit and the
//! process-wide `--global-max-pps` cap, each counted in the exit summary and
//! on the Prometheus endpoint.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use stamp_tests::{json_lines, json_record, Reflector};
use stamp_wire::{AuthMode, ReflectorPacket};

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().unwrap();
    drop(l);
    a.to_string()
}

/// The value of one series in a scrape of `addr`.
fn metric(addr: &str, series: &str) -> u64 {
    let mut s = TcpStream::connect(addr).expect("metrics endpoint");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{body}"))
        .trim()
        .parse()
        .unwrap()
}

/// Poll `series` until it equals `want` (a worker publishes its counters
/// just after it sends a batch's replies, so a scrape right after a reply
/// may be a moment behind); its last value when it never does within 2 s.
fn metric_eventually(addr: &str, series: &str, want: u64) -> u64 {
    let end = Instant::now() + Duration::from_secs(2);
    loop {
        let v = metric(addr, series);
        if v == want || Instant::now() > end {
            return v;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn request(seq: u32) -> Vec<u8> {
    let mut v = vec![0u8; 44];
    v[0..4].copy_from_slice(&seq.to_be_bytes());
    v
}

/// Send one request from `sock` and return the reply's (reflector)
/// Sequence Number.
fn exchange(sock: &UdpSocket, to: SocketAddr, seq: u32) -> u32 {
    sock.send_to(&request(seq), to).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = sock.recv_from(&mut buf).expect("reply");
    let p = ReflectorPacket::new_checked(&buf[..n], AuthMode::Open).unwrap();
    assert_eq!(p.sender_sequence_number(), seq);
    p.sequence_number()
}

fn socket(ip: &str) -> UdpSocket {
    let s = UdpSocket::bind((ip, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

#[test]
fn full_session_table_evicts_the_least_recently_used_and_reports_it() {
    let maddr = free_addr();
    let r = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "--workers",
        "1",
        "--stateful-reflector",
        "--max-sessions",
        "4",
        "--output-format",
        "json",
        "--metrics",
        "--metrics-addr",
        &maddr,
    ]);
    let to = r.addr;
    let s: Vec<UdpSocket> = (0..6).map(|_| socket("127.0.0.1")).collect();
    // Sessions 0..3 fill the table (reply numbering starts at 0 each).
    for (i, sock) in s.iter().take(4).enumerate() {
        assert_eq!(exchange(sock, to, i as u32), 0);
    }
    // 0 is used again: 1 is now the least recently used.
    assert_eq!(exchange(&s[0], to, 10), 1);
    // 4 is new: it evicts 1, not 0.
    assert_eq!(exchange(&s[4], to, 11), 0);
    assert_eq!(exchange(&s[0], to, 12), 2, "session 0 was evicted");
    // 1 comes back as a new session (numbered from 0), evicting 2...
    assert_eq!(exchange(&s[1], to, 13), 0, "session 1 was not evicted");
    // ...so 3 is still there, and 2 starts again.
    assert_eq!(exchange(&s[3], to, 14), 1, "session 3 was evicted");
    assert_eq!(exchange(&s[2], to, 15), 0, "session 2 was not evicted");
    // Evictions so far: 1 (for 4), 2 (for 1), 4 (for 2).
    let m = |series: &str, want: u64| metric_eventually(&maddr, series, want);
    assert_eq!(m("stamp_reflector_sessions_evicted_total", 3), 3);
    assert_eq!(m("stamp_reflector_sessions_active", 4), 4);
    assert_eq!(m("stamp_reflector_sessions_created_total", 7), 7);
    assert_eq!(
        metric(
            &maddr,
            "stamp_reflector_packets_dropped_total{reason=\"session_limit\"}"
        ),
        0
    );
    let (status, out, _) = r.interrupt();
    assert!(status.success());
    let sum = json_lines(&out).pop().expect("summary");
    assert_eq!(sum["sessions_evicted"], 3, "{sum}");
    assert_eq!(sum["sessions_created"], 7, "{sum}");
    assert_eq!(sum["active_sessions"], 4, "{sum}");
    assert_eq!(sum["reflected"], 10, "{sum}");
    assert_eq!(sum["dropped"], 0, "{sum}");
}

#[test]
fn text_summary_names_evictions() {
    let r = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "--workers",
        "1",
        "--stateful-reflector",
        "--max-sessions",
        "1",
    ]);
    for seq in 0..3 {
        assert_eq!(exchange(&socket("127.0.0.1"), r.addr, seq), 0);
    }
    let (_, out, _) = r.interrupt();
    assert_eq!(
        stamp_tests::field(&out, "Sessions"),
        Some("created 3 expired 0 evicted 2 active 1"),
        "{out}"
    );
}

/// Blast `per_socket` requests from each socket as fast as possible, then
/// collect replies for `wait`: (replies per socket, seconds the sending
/// took).
fn blast(socks: &[UdpSocket], to: SocketAddr, per_socket: u32, wait: Duration) -> (Vec<u64>, f64) {
    let t0 = Instant::now();
    for i in 0..per_socket {
        for s in socks {
            s.send_to(&request(i), to).unwrap();
        }
    }
    let took = t0.elapsed().as_secs_f64();
    let mut got = vec![0u64; socks.len()];
    let end = Instant::now() + wait;
    for (k, s) in socks.iter().enumerate() {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut buf = [0u8; 2048];
        // Everything queued, and whatever arrives until `end`.
        loop {
            match s.recv_from(&mut buf) {
                Ok(_) => got[k] += 1,
                Err(_) if Instant::now() >= end => break,
                Err(_) => {}
            }
        }
    }
    (got, took)
}

#[test]
fn per_source_limit_counts_each_source_separately() {
    let r = Reflector::start(&[
        "-S",
        "0.0.0.0",
        "--workers",
        "1",
        "--max-pps",
        "2",
        "--reflector-rate-burst",
        "5",
        "--output-format",
        "json",
    ]);
    let to: SocketAddr = ([127, 0, 0, 1], r.addr.port()).into();
    // Two source addresses (loopback has all of 127/8).
    let socks = [socket("127.0.0.1"), socket("127.0.0.2")];
    let (got, took) = blast(&socks, to, 40, Duration::from_millis(500));
    assert!(took < 1.0, "sending took {took} s");
    // The burst of 5 each, and maybe one or two more from the 2 pps refill.
    for g in &got {
        assert!((5..=7).contains(g), "{got:?}");
    }
    let (_, out, _) = r.interrupt();
    let sum = json_lines(&out).pop().expect("summary");
    let reflected = sum["reflected"].as_u64().unwrap();
    assert_eq!(reflected, got.iter().sum::<u64>(), "{sum}");
    assert_eq!(
        sum["dropped_rate_limited"].as_u64().unwrap(),
        80 - reflected
    );
    assert_eq!(sum["dropped_global_rate_limited"], 0);
}

#[test]
fn global_cap_holds_for_the_whole_process_and_is_counted() {
    let maddr = free_addr();
    let r = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "--workers",
        "2",
        "--global-max-pps",
        "100",
        "--output-format",
        "json",
        "--metrics",
        "--metrics-addr",
        &maddr,
    ]);
    // Eight sources (the kernel spreads them over both workers).
    let socks: Vec<UdpSocket> = (0..8).map(|_| socket("127.0.0.1")).collect();
    let (got, took) = blast(&socks, r.addr, 100, Duration::from_millis(500));
    let replies: u64 = got.iter().sum();
    // One second's burst (100) plus what 100 pps refilled meanwhile; two
    // separate per-worker buckets would have let up to 200 through.
    let bound = 100 + (100.0 * (took + 0.6)).ceil() as u64;
    assert!(
        (100..=bound).contains(&replies),
        "{replies} replies (bound {bound}, sending took {took:.3} s)"
    );
    assert!(
        got.iter().filter(|g| **g > 0).count() >= 2,
        "every source starved: {got:?}"
    );
    let limited = metric_eventually(
        &maddr,
        "stamp_reflector_packets_dropped_total{reason=\"global_rate_limited\"}",
        800 - replies,
    );
    assert_eq!(limited, 800 - replies);
    let (_, out, _) = r.interrupt();
    let sum = json_lines(&out).pop().expect("summary");
    assert_eq!(sum["reflected"].as_u64().unwrap(), replies, "{sum}");
    assert_eq!(
        sum["dropped_global_rate_limited"].as_u64().unwrap(),
        800 - replies,
        "{sum}"
    );
    assert_eq!(sum["dropped_rate_limited"], 0, "{sum}");
}

/// RFC 8972 §3: with `--allow-session`, only provisioned sessions are
/// answered; the rest are dropped and counted as `not_provisioned`.
#[test]
fn only_provisioned_sessions_are_answered() {
    use stamp_tests::{count, sender};
    let r = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "--workers",
        "1",
        "--output-format",
        "json",
        "--allow-session",
        "5@127.0.0.0/8",
        "--allow-session",
        "7@127.0.0.1:1",
    ]);
    let port = r.port();
    let args = |ssid: &'static str| ["-c", "3", "-d", "10", "-L", "0.5", "--ssid", ssid];
    let ok = sender("127.0.0.1", &port, &args("5"));
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(
        count(&String::from_utf8_lossy(&ok.stdout), "Packets received"),
        3
    );
    // SSID 6 is not provisioned; SSID 7 only for source port 1.
    for ssid in ["6", "7"] {
        let no = sender("127.0.0.1", &port, &args(ssid));
        assert_eq!(no.status.code(), Some(1), "SSID {ssid}: {no:?}");
        assert_eq!(
            count(&String::from_utf8_lossy(&no.stdout), "Packets received"),
            0
        );
    }
    let (status, out, _) = r.interrupt();
    assert!(status.success());
    let sum = json_record(&out, "reflector_summary");
    assert_eq!(sum["reflected"], 3, "{sum}");
    assert_eq!(sum["dropped_not_provisioned"], 6, "{sum}");
    assert_eq!(sum["dropped"], 6, "{sum}");
}

#[test]
fn a_bad_session_spec_is_refused_in_one_line_naming_it() {
    use stamp_tests::run;
    let o = run(
        "stamp-suite",
        &["-i", "--allow-session", "5@nowhere"],
        &[],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("--allow-session") && e.contains("nowhere"),
        "{e}"
    );
    // The same from a config file names the key and the file.
    let dir = std::env::temp_dir().join(format!("stamp-allow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("r.toml");
    std::fs::write(
        &cfg,
        "is_reflector = true\nallow_session = [\"5@192.0.2.0/33\"]\n",
    )
    .unwrap();
    let o = run(
        "stamp-suite",
        &["--config", cfg.to_str().unwrap()],
        &[],
        Duration::from_secs(10),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(
        e.contains("allow_session") && e.contains("r.toml") && e.contains("prefix length"),
        "{e}"
    );
}

/// A reflector bound to `bind` with 4 workers and `--max-pps 2` (burst 5).
fn four_limited_workers(bind: &str) -> Reflector {
    Reflector::start(&[
        "-S",
        bind,
        "--workers",
        "4",
        "--max-pps",
        "2",
        "--reflector-rate-burst",
        "5",
        "--output-format",
        "json",
    ])
}

/// With several workers, `--max-pps` still limits a source as a whole: the
/// kernel steers all of a source's requests to one worker, whatever its
/// port (each of 8 ports would otherwise land on any of the 4 workers, and
/// each worker's bucket would let its own burst through).
#[test]
fn per_source_limit_holds_across_workers_for_a_source_with_many_ports() {
    let r = four_limited_workers("0.0.0.0");
    let to: SocketAddr = ([127, 0, 0, 1], r.addr.port()).into();
    let socks: Vec<UdpSocket> = (0..16)
        .map(|i| socket(if i % 2 == 0 { "127.0.0.1" } else { "127.0.0.2" }))
        .collect();
    let (got, took) = blast(&socks, to, 10, Duration::from_millis(500));
    assert!(took < 1.0, "sending took {took} s");
    for (name, parity) in [("127.0.0.1", 0), ("127.0.0.2", 1)] {
        let total: u64 = got.iter().skip(parity).step_by(2).sum();
        // The burst of 5, and maybe one or two from the 2 pps refill; with
        // per-worker buckets up to 4 x 5.
        assert!(
            (5..=7).contains(&total),
            "{name}: {total} replies ({got:?})"
        );
    }
    let (_, out, _) = r.interrupt();
    let sum = json_lines(&out).pop().expect("summary");
    let reflected = sum["reflected"].as_u64().unwrap();
    assert_eq!(reflected, got.iter().sum::<u64>(), "{sum}");
    assert_eq!(
        sum["dropped_rate_limited"].as_u64().unwrap(),
        160 - reflected
    );
}

/// The same over IPv6: the source is the /64, steered as one.
#[test]
fn per_source_limit_holds_across_workers_over_ipv6() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback");
        return;
    }
    let r = four_limited_workers("::1");
    let socks: Vec<UdpSocket> = (0..8).map(|_| socket("::1")).collect();
    let (got, took) = blast(&socks, r.addr, 10, Duration::from_millis(500));
    assert!(took < 1.0, "sending took {took} s");
    let total: u64 = got.iter().sum();
    assert!((5..=7).contains(&total), "{total} replies ({got:?})");
    let (_, out, _) = r.interrupt();
    let sum = json_lines(&out).pop().expect("summary");
    assert_eq!(sum["dropped_rate_limited"].as_u64().unwrap(), 80 - total);
}
