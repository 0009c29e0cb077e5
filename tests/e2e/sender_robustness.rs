//! The real sender against a hand-made misbehaving reflector: a UDP socket
//! in the test that builds genuine replies with the engine's reflector and
//! then answers from the wrong address or port, twice, corrupted,
//! truncated, with impossible timestamps or too late. Every case must be
//! classified and counted on its own, and none may reach the statistics.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use stamp_core::clock::{ManualClock, UnixNanos};
use stamp_core::hmac::HmacKey;
use stamp_core::reflector::{Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::Registry;
use stamp_core::transport::RecvMeta;
use stamp_tests::{json_lines, json_record, run};
use stamp_wire::{AuthMode, TimestampFormat, MAX_DATAGRAM};

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// What the fake reflector does with request `seq`.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Misbehave {
    Good,
    WrongPortThenGood,
    WrongAddressThenGood,
    Twice,
    WrongSsidThenGood,
    TruncatedThenGood,
    GarbageThenGood,
    UnknownSeqThenGood,
    /// T2 one second after T3, and no genuine reply: lost.
    ImpossibleTimestampsOnly,
    /// The genuine reply, `0.9 s` late (after the sender's timeout).
    Late,
    /// Reflected twice (two T3s): a duplicated request.
    ReflectedTwice,
    /// Authenticated mode: one HMAC-covered octet flipped, then the good reply.
    BadHmacThenGood,
    /// The genuine reply with the SSID zeroed, as a reflector without
    /// RFC 8972 answers.
    ZeroSsid,
}

fn now() -> UnixNanos {
    UnixNanos(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    )
}

struct Fake {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Fake {
    fn start(mode: AuthMode, plan: fn(u32) -> Misbehave) -> Fake {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let other_port = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Any 127/8 address is local on Linux.
        let other_addr = UdpSocket::bind("127.0.0.2:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let key = (mode == AuthMode::Authenticated).then(|| HmacKey::new(&hex(KEY)));
            let mut r = Reflector::new(
                ReflectorConfig {
                    mode,
                    key,
                    ..Default::default()
                },
                Registry::empty(),
            );
            let clock = ManualClock::new(now(), TimestampFormat::Ntp);
            let mut buf = vec![0u8; MAX_DATAGRAM];
            let mut out = vec![0u8; MAX_DATAGRAM];
            let mut later: VecDeque<(Instant, Vec<u8>, SocketAddr)> = VecDeque::new();
            let mut handled = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                while later.front().is_some_and(|x| x.0 <= Instant::now()) {
                    let (_, b, to) = later.pop_front().unwrap();
                    sock.send_to(&b, to).unwrap();
                }
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                handled += 1;
                let seq = u32::from_be_bytes(buf[..4].try_into().unwrap());
                let mut meta = RecvMeta::new(n, from);
                meta.ttl = Some(64);
                clock.set(now());
                let reflect = |out: &mut Vec<u8>, r: &mut Reflector| match r.process(
                    &buf[..n],
                    &meta,
                    Instant::now(),
                    &clock,
                    out,
                ) {
                    Outcome::Reply { len, .. } => out[..len].to_vec(),
                    Outcome::Drop(d) => panic!("engine dropped request {seq}: {d:?}"),
                };
                let good = reflect(&mut out, &mut r);
                let send = |s: &UdpSocket, b: &[u8]| {
                    s.send_to(b, from).unwrap();
                };
                match plan(seq) {
                    Misbehave::Good => send(&sock, &good),
                    Misbehave::WrongPortThenGood => {
                        send(&other_port, &good);
                        send(&sock, &good);
                    }
                    Misbehave::WrongAddressThenGood => {
                        send(&other_addr, &good);
                        send(&sock, &good);
                    }
                    Misbehave::Twice => {
                        send(&sock, &good);
                        send(&sock, &good);
                    }
                    Misbehave::WrongSsidThenGood => {
                        let mut x = good.clone();
                        x[14] ^= 0x80;
                        send(&sock, &x);
                        send(&sock, &good);
                    }
                    Misbehave::TruncatedThenGood => {
                        send(&sock, &good[..20]);
                        send(&sock, &good);
                    }
                    Misbehave::GarbageThenGood => {
                        send(&sock, b"\xde\xad\xbe\xef\x00\x01\x02");
                        send(&sock, &good);
                    }
                    Misbehave::UnknownSeqThenGood => {
                        let mut x = good.clone();
                        x[24..28].copy_from_slice(&99_999u32.to_be_bytes());
                        send(&sock, &x);
                        send(&sock, &good);
                    }
                    Misbehave::ImpossibleTimestampsOnly => {
                        let mut x = good.clone();
                        // T2 (octets 16..24) one second after T3 (4..12).
                        let t3 = u64::from_be_bytes(x[4..12].try_into().unwrap());
                        x[16..24].copy_from_slice(&(t3 + (1u64 << 32)).to_be_bytes());
                        send(&sock, &x);
                    }
                    Misbehave::Late => {
                        later.push_back((Instant::now() + Duration::from_millis(900), good, from));
                    }
                    Misbehave::ReflectedTwice => {
                        send(&sock, &good);
                        clock.advance(1_000_000);
                        let again = reflect(&mut out, &mut r);
                        send(&sock, &again);
                    }
                    Misbehave::ZeroSsid => {
                        let mut x = good.clone();
                        x[14..16].copy_from_slice(&[0, 0]);
                        send(&sock, &x);
                    }
                    Misbehave::BadHmacThenGood => {
                        let mut x = good.clone();
                        x[30] ^= 0x01;
                        send(&sock, &x);
                        send(&sock, &good);
                    }
                }
            }
            handled
        });
        Fake {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn summary(out: &std::process::Output) -> Value {
    json_record(&String::from_utf8_lossy(&out.stdout), "summary")
}

fn plan_open(seq: u32) -> Misbehave {
    match seq {
        1 => Misbehave::WrongPortThenGood,
        2 => Misbehave::Twice,
        3 => Misbehave::WrongSsidThenGood,
        4 => Misbehave::TruncatedThenGood,
        5 => Misbehave::ImpossibleTimestampsOnly,
        6 => Misbehave::UnknownSeqThenGood,
        7 => Misbehave::Late,
        8 => Misbehave::WrongAddressThenGood,
        9 => Misbehave::GarbageThenGood,
        10 => Misbehave::ReflectedTwice,
        _ => Misbehave::Good,
    }
}

#[test]
fn every_kind_of_bad_reply_is_counted_apart_and_kept_out_of_the_statistics() {
    let fake = Fake::start(AuthMode::Open, plan_open);
    let port = fake.addr.port().to_string();
    // 60 packets 20 ms apart: the sender is still listening when the late
    // reply to packet 7 comes, 0.9 s after it was sent (timeout 0.5 s).
    let out = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &port,
            "-c",
            "60",
            "-d",
            "20",
            "-L",
            "0.5",
            "--ssid",
            "5",
            "--output-format",
            "json",
            "-R",
        ],
        &[],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fake.stop(), 60, "the fake reflector saw every request");
    let s = summary(&out);
    assert_eq!(s["sent"], 60);
    assert_eq!(
        s["received"], 58,
        "5 (impossible timestamps) and 7 (late) are lost: {s}"
    );
    assert_eq!(s["lost"], 2);
    let rej = &s["rejected"];
    for (k, n) in [
        ("wrong_address", 1),
        ("wrong_port", 1),
        ("truncated", 2),
        ("auth_failed", 0),
        ("wrong_ssid", 1),
        ("unknown", 1),
        ("late", 1),
        ("implausible", 1),
    ] {
        assert_eq!(rej[k], n, "rejected.{k} in {rej}");
    }
    assert_eq!(s["duplicates"], 2);
    assert_eq!(s["duplicates_backward"], 1, "the same reply twice");
    assert_eq!(s["duplicates_forward"], 1, "two replies with their own T3");
    // Nothing bad reached the statistics: 58 RTT samples, all small (the
    // impossible timestamps would give −1 s, the late reply ~0.9 s).
    let rtt = &s["rtt"];
    assert_eq!(rtt["count"], 58);
    assert!(rtt["max_ms"].as_f64().unwrap() < 100.0, "{rtt}");
    assert!(rtt["min_ms"].as_f64().unwrap() >= 0.0, "{rtt}");
    assert_eq!(
        s["ipdv"]["rtt"]["count"], 55,
        "pairs (n−1, n) both answered: 59 − 4 broken by 5 and 7"
    );
    // Per-packet lines: received once per answered packet, lost twice.
    let text = String::from_utf8_lossy(&out.stdout);
    let lines = json_lines(&text);
    let received = lines
        .iter()
        .filter(|v| v["type"] == "packet" && v["status"] == "received")
        .count();
    let lost: Vec<u64> = lines
        .iter()
        .filter(|v| v["type"] == "packet" && v["status"] == "lost")
        .map(|v| v["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(received, 58);
    assert_eq!(lost, vec![5, 7]);
}

#[test]
fn text_summary_names_each_rejection_reason() {
    let fake = Fake::start(AuthMode::Open, plan_open);
    let port = fake.addr.port().to_string();
    let out = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &port,
            "-c",
            "60",
            "-d",
            "20",
            "-L",
            "0.5",
            "--ssid",
            "5",
        ],
        &[],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    fake.stop();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("Rejected replies: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        line,
        "Rejected replies: 8 (wrong_address 1, wrong_port 1, truncated 2, wrong_ssid 1, unknown 1, late 1, implausible 1)"
    );
    assert!(
        text.contains("Duplicates: 2 (forward 1, backward 1)"),
        "{text}"
    );
}

#[test]
fn bad_hmac_replies_are_auth_failed_in_authenticated_mode() {
    let fake = Fake::start(AuthMode::Authenticated, |seq| {
        if seq % 3 == 1 {
            Misbehave::BadHmacThenGood
        } else {
            Misbehave::Good
        }
    });
    let port = fake.addr.port().to_string();
    let out = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &port,
            "-c",
            "9",
            "-d",
            "10",
            "-A",
            "A",
            "--hmac-key",
            KEY,
            "--output-format",
            "json",
        ],
        &[],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    fake.stop();
    let s = summary(&out);
    assert_eq!(
        (s["sent"].as_u64(), s["received"].as_u64()),
        (Some(9), Some(9)),
        "{s}"
    );
    assert_eq!(s["rejected"]["auth_failed"], 3);
    assert_eq!(s["rtt"]["count"], 9);
}

/// RFC 8972 §3: a sender MUST offer control over SSID-0 replies.
/// `--zero-ssid continue` (the default) measures on and counts them;
/// `--zero-ssid stop` sends nothing after the first one and says why.
#[test]
fn zero_ssid_replies_are_counted_and_stop_the_sender_when_asked() {
    let args = |policy: &'static str| {
        vec![
            "-c",
            "20",
            "-d",
            "20",
            "-L",
            "0.5",
            "--ssid",
            "9",
            "--zero-ssid",
            policy,
            "--output-format",
            "json",
        ]
    };
    for policy in ["continue", "stop"] {
        let fake = Fake::start(AuthMode::Open, |_| Misbehave::ZeroSsid);
        let target = fake.addr.ip().to_string();
        let port = fake.addr.port().to_string();
        let mut a = vec!["-r", target.as_str(), "-p", port.as_str()];
        a.extend(args(policy));
        let out = run("stamp-suite", &a, &[], Duration::from_secs(30));
        let handled = fake.stop();
        assert!(out.status.success(), "{policy}: {out:?}");
        let sum = summary(&out);
        let err = String::from_utf8_lossy(&out.stderr);
        if policy == "continue" {
            assert_eq!(sum["sent"], 20, "{sum}");
            assert_eq!(sum["received"], 20, "{sum}");
            assert_eq!(sum["zero_ssid_replies"], 20, "{sum}");
            assert!(!err.contains("stopping"), "{err}");
        } else {
            // 20 ms apart, the first reply comes back long before the
            // second request is due.
            let sent = sum["sent"].as_u64().unwrap();
            assert!((1..=2).contains(&sent), "{sum}");
            assert_eq!(sum["received"], sent, "{sum}");
            assert_eq!(sum["lost"], 0, "{sum}");
            assert_eq!(handled, sent, "the reflector saw only what was sent");
            assert!(sum["zero_ssid_replies"].as_u64().unwrap() >= 1, "{sum}");
            assert!(
                err.contains("returned SSID 0") && err.contains("--zero-ssid stop"),
                "{err}"
            );
        }
    }
}
