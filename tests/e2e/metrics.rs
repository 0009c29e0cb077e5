//! The Prometheus endpoint (feature `metrics`, `--metrics --metrics-addr`):
//! a reflector and a sender with metrics on, real traffic over 127.0.0.1,
//! both endpoints scraped over plain HTTP while the sender is still running
//! and the exposition text checked (names, `# TYPE`, values) against the
//! traffic sent; `/healthz`, 404, and a busy address.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stamp_tests::{bin, count, run, Reflector};

/// A free TCP port on 127.0.0.1 (bound, read, released).
fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().unwrap();
    drop(l);
    a.to_string()
}

/// `GET path` over a fresh connection: (status code, body). `None` while
/// nothing listens yet.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let sa: SocketAddr = addr.parse().unwrap();
    let mut s = TcpStream::connect_timeout(&sa, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    assert!(head.starts_with("HTTP/1.1 "), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("Content-Length");
    assert_eq!(len, body.len(), "Content-Length");
    if path == "/metrics" && status == 200 {
        assert!(
            head.contains("Content-Type: text/plain; version=0.0.4"),
            "{head}"
        );
    }
    Some((status, body.to_string()))
}

/// Retry `get` until the endpoint answers (bounded).
fn get_soon(addr: &str, path: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(r) = get(addr, path) {
            return r;
        }
        assert!(Instant::now() < deadline, "{addr} never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A parsed exposition: `# TYPE` per family, value per series (the series
/// key is the text before the value, labels as written).
struct Scrape {
    types: BTreeMap<String, String>,
    values: BTreeMap<String, f64>,
    text: String,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut types = BTreeMap::new();
        let mut helps = BTreeMap::new();
        let mut values = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line");
                assert!(
                    types.insert(name.to_string(), kind.to_string()).is_none(),
                    "{name} typed twice"
                );
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, _) = rest.split_once(' ').expect("HELP line");
                helps.insert(name.to_string(), ());
            } else if !line.is_empty() {
                assert!(!line.starts_with('#'), "{line}");
                let (key, v) = line.rsplit_once(' ').expect("sample line");
                let v: f64 = v.parse().unwrap_or_else(|_| panic!("value in {line}"));
                assert!(values.insert(key.to_string(), v).is_none(), "{key} twice");
            }
        }
        for name in types.keys() {
            assert!(helps.contains_key(name), "no HELP for {name}");
        }
        // Every sample belongs to a typed family.
        for key in values.keys() {
            let name = key.split('{').next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| types.get(*f).map(String::as_str) == Some("histogram"))
                })
                .unwrap_or(name);
            assert!(types.contains_key(family), "{key} has no # TYPE");
        }
        Scrape {
            types,
            values,
            text: text.to_string(),
        }
    }

    fn value(&self, key: &str) -> f64 {
        *self
            .values
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in:\n{}", self.text))
    }

    fn u(&self, key: &str) -> u64 {
        let v = self.value(key);
        assert!(v >= 0.0 && v.fract() == 0.0, "{key} = {v}");
        v as u64
    }

    fn kind(&self, name: &str) -> &str {
        self.types
            .get(name)
            .unwrap_or_else(|| panic!("no # TYPE {name} in:\n{}", self.text))
    }

    /// A histogram series: its `le` bounds with cumulative counts, checked
    /// monotonic and ending in `+Inf` == `_count`.
    fn histogram(&self, name: &str, labels: &str) -> Vec<(String, u64)> {
        assert_eq!(self.kind(name), "histogram");
        let prefix = format!("{name}_bucket{{{labels}le=\"");
        let mut out: Vec<(String, u64)> = Vec::new();
        for line in self.text.lines() {
            if let Some(rest) = line.strip_prefix(&prefix) {
                let (le, v) = rest.split_once("\"} ").unwrap();
                out.push((le.to_string(), v.parse().unwrap()));
            }
        }
        assert!(!out.is_empty(), "no buckets for {name}{{{labels}}}");
        assert!(out.windows(2).all(|w| w[0].1 <= w[1].1), "{out:?}");
        assert_eq!(out.last().unwrap().0, "+Inf");
        let series = labels.trim_end_matches(',');
        let braces = if series.is_empty() {
            String::new()
        } else {
            format!("{{{series}}}")
        };
        assert_eq!(
            out.last().unwrap().1,
            self.u(&format!("{name}_count{braces}"))
        );
        assert!(self.value(&format!("{name}_sum{braces}")) >= 0.0);
        out
    }
}

fn scrape(addr: &str) -> Scrape {
    let (status, body) = get_soon(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    Scrape::parse(&body)
}

/// Kill the child if the test fails half-way.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const SHORT: u64 = 3;

#[test]
fn reflector_and_sender_endpoints_match_the_traffic() {
    let raddr = free_addr();
    let r = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "--workers",
        "2",
        "--clock-synchronized",
        "--metrics",
        "--metrics-addr",
        &raddr,
    ]);
    // Before any traffic: every family present, all zero.
    let idle = scrape(&raddr);
    for (name, kind) in [
        ("stamp_reflector_packets_received_total", "counter"),
        ("stamp_reflector_packets_reflected_total", "counter"),
        ("stamp_reflector_packets_dropped_total", "counter"),
        ("stamp_reflector_hmac_failures_total", "counter"),
        ("stamp_reflector_tlv_flags_total", "counter"),
        ("stamp_reflector_sessions_active", "gauge"),
        ("stamp_reflector_processing_seconds", "histogram"),
    ] {
        assert_eq!(idle.kind(name), kind, "{name}");
    }
    assert_eq!(idle.u("stamp_reflector_packets_received_total"), 0);
    for reason in [
        "truncated",
        "auth_failed",
        "session_limit",
        "tlv_discard",
        "suppressed",
    ] {
        assert_eq!(
            idle.u(&format!(
                "stamp_reflector_packets_dropped_total{{reason=\"{reason}\"}}"
            )),
            0
        );
    }
    for flag in ["U", "M", "I", "C"] {
        assert_eq!(
            idle.u(&format!(
                "stamp_reflector_tlv_flags_total{{flag=\"{flag}\"}}"
            )),
            0
        );
    }

    // Short datagrams: dropped as truncated.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..SHORT {
        udp.send_to(&[0u8; 5], r.addr).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = scrape(&raddr);
        if s.u("stamp_reflector_packets_dropped_total{reason=\"truncated\"}") == SHORT {
            assert_eq!(s.u("stamp_reflector_packets_received_total"), SHORT);
            assert_eq!(s.u("stamp_reflector_packets_reflected_total"), 0);
            break;
        }
        assert!(Instant::now() < deadline, "short datagrams not counted");
        std::thread::sleep(Duration::from_millis(20));
    }

    // A sender still running while we scrape it: 100 packets, 10 ms apart.
    let saddr = free_addr();
    let port = r.port();
    let child = Command::new(bin("stamp-sender"))
        .args([
            "-r",
            "127.0.0.1",
            "-p",
            &port,
            "-c",
            "100",
            "-d",
            "10",
            "-L",
            "2",
            "--clock-synchronized",
            "--metrics",
            "--metrics-addr",
            &saddr,
        ])
        .env_remove("STAMP_HMAC_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sender");
    let mut guard = Guard(Some(child));
    let target = format!("target=\"127.0.0.1:{port}\"");
    let key = |name: &str| format!("{name}{{{target}}}");

    // Wait for some traffic, then sender, reflector, sender again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let s1 = loop {
        let s = scrape(&saddr);
        if s.u(&key("stamp_sender_packets_received_total")) >= 10 {
            break s;
        }
        assert!(Instant::now() < deadline, "sender made no progress");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mid = scrape(&raddr);
    let s2 = scrape(&saddr);
    assert!(
        guard.0.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the sender should still be running"
    );

    for (name, kind) in [
        ("stamp_sender_packets_sent_total", "counter"),
        ("stamp_sender_packets_received_total", "counter"),
        ("stamp_sender_packets_lost_total", "counter"),
        ("stamp_sender_duplicates_total", "counter"),
        ("stamp_sender_rtt_seconds", "histogram"),
        ("stamp_sender_one_way_delay_seconds", "histogram"),
    ] {
        assert_eq!(s1.kind(name), kind, "{name}");
    }
    let sent1 = s1.u(&key("stamp_sender_packets_sent_total"));
    let recv1 = s1.u(&key("stamp_sender_packets_received_total"));
    assert!(sent1 >= recv1, "sent {sent1} < received {recv1}");
    assert!(sent1 < 100, "scraped too late: {sent1}");
    assert_eq!(s1.u(&key("stamp_sender_packets_lost_total")), 0);
    assert_eq!(s1.u(&key("stamp_sender_duplicates_total")), 0);
    let rtt = s1.histogram("stamp_sender_rtt_seconds", &format!("{target},"));
    assert_eq!(rtt.last().unwrap().1, recv1, "rtt _count == received");
    let les: Vec<&str> = rtt.iter().map(|(le, _)| le.as_str()).collect();
    assert_eq!(les.first(), Some(&"0.00005"));
    assert_eq!(les[les.len() - 2], "1");
    for direction in ["forward", "backward"] {
        let h = s1.histogram(
            "stamp_sender_one_way_delay_seconds",
            &format!("{target},direction=\"{direction}\","),
        );
        assert_eq!(h.last().unwrap().1, recv1, "{direction} _count");
    }

    // The reflector between the two sender scrapes: what it received lies
    // between what the sender had answered before and sent after.
    let sent2 = s2.u(&key("stamp_sender_packets_sent_total"));
    let recv2 = s2.u(&key("stamp_sender_packets_received_total"));
    assert!(sent2 >= sent1 && recv2 >= recv1 && sent2 >= recv2);
    // A worker publishes right after sending a batch's replies, so one
    // reply may reach the sender before its count is published: slack 1.
    let r_recv = mid.u("stamp_reflector_packets_received_total") - SHORT;
    let r_refl = mid.u("stamp_reflector_packets_reflected_total");
    assert!(
        (recv1.saturating_sub(1)..=sent2).contains(&r_recv),
        "reflector received {r_recv}, sender {recv1}..={sent2}"
    );
    assert!(
        (recv1.saturating_sub(1)..=sent2).contains(&r_refl),
        "reflector reflected {r_refl}"
    );
    // Two workers publish separately; a scrape may fall between a batch's
    // received and reflected stores.
    assert!(r_recv.abs_diff(r_refl) <= 1, "{r_recv} vs {r_refl}");
    assert_eq!(
        mid.u("stamp_reflector_packets_dropped_total{reason=\"truncated\"}"),
        SHORT
    );
    // Observed per request, before the batch's counters are published.
    let proc = mid.histogram("stamp_reflector_processing_seconds", "");
    let observed = proc.last().unwrap().1;
    assert!(
        (r_recv + SHORT..=sent2 + SHORT).contains(&observed),
        "processing _count {observed}"
    );

    // The sender finishes; the reflector's totals equal its summary.
    let t0 = Instant::now();
    let mut child = guard.0.take().unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("sender did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = child.wait_with_output().unwrap();
    assert!(status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(count(&text, "Packets sent"), 100);
    let received = count(&text, "Packets received");
    let end = scrape(&raddr);
    assert_eq!(end.u("stamp_reflector_packets_received_total"), 100 + SHORT);
    assert_eq!(end.u("stamp_reflector_packets_reflected_total"), 100);
    assert_eq!(received, 100);
    assert_eq!(
        end.u("stamp_reflector_packets_dropped_total{reason=\"truncated\"}"),
        SHORT
    );
    assert_eq!(end.u("stamp_reflector_hmac_failures_total"), 0);
    assert_eq!(end.u("stamp_reflector_sessions_active"), 0);
    assert_eq!(
        end.histogram("stamp_reflector_processing_seconds", "")
            .last()
            .unwrap()
            .1,
        100 + SHORT
    );
    drop(r);
}

#[test]
fn healthz_answers_and_other_paths_are_404() {
    let addr = free_addr();
    let r = Reflector::start(&["-S", "127.0.0.1", "--metrics", "--metrics-addr", &addr]);
    assert_eq!(get_soon(&addr, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(get_soon(&addr, "/").0, 404);
    assert_eq!(get_soon(&addr, "/metricsx").0, 404);
    // A request head larger than the server reads is refused, not buffered.
    let sa: SocketAddr = addr.parse().unwrap();
    let mut s = TcpStream::connect_timeout(&sa, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let big = format!(
        "GET /metrics HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(16 * 1024)
    );
    let _ = s.write_all(big.as_bytes());
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.is_empty() || raw.starts_with("HTTP/1.1 431"), "{raw}");
    // Still serving afterwards.
    assert_eq!(get_soon(&addr, "/healthz").0, 200);
    drop(r);
}

#[test]
fn no_endpoint_without_the_flag() {
    let addr = free_addr();
    let r = Reflector::start(&["-S", "127.0.0.1", "--metrics-addr", &addr]);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        get(&addr, "/healthz").is_none(),
        "endpoint without --metrics"
    );
    drop(r);
}

#[test]
fn busy_metrics_address_is_a_one_line_error() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let metrics = ["--metrics", "--metrics-addr", &addr];
    for (binary, args) in [
        ("stamp-reflector", vec!["-o", "0"]),
        (
            "stamp-sender",
            vec!["-r", "127.0.0.1", "-p", "9", "-c", "1"],
        ),
    ] {
        let args: Vec<&str> = args.into_iter().chain(metrics).collect();
        let out = run(binary, &args, &[], Duration::from_secs(10));
        assert!(!out.status.success(), "{binary}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{binary}: {err}");
        assert!(
            err.contains("cannot serve metrics on") && err.contains(&addr),
            "{binary}: {err}"
        );
    }
    drop(busy);
}
