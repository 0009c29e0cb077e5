//! Soak test (issue 7): hostile and honest traffic at once, from several
//! sources, against two real reflectors for a bounded time.
//!
//! * Reflector O: open mode, stateful, `--max-sessions 256` (garbage with
//!   random SSIDs makes new sessions all the time, so the LRU eviction runs
//!   throughout).
//! * Reflector A: authenticated mode, key from a 0600 key file.
//!
//! `SOURCES` threads, each with its own UDP socket, send in a loop to both:
//! a valid request (a unique Sequence Number per source and reflector),
//! then one hostile datagram in turn: truncated, oversized (past the 9000
//! octets a reflector reads), garbage, wrong key (A), a "TLV bomb" (the
//! base packet then 2000 empty TLVs of an unregistered type, 8000 octets).
//! A receiver thread per socket counts every reply by Sequence Number.
//!
//! Asserts:
//! * both reflectors stay up and exit cleanly on SIGINT;
//! * every valid request got exactly one reply;
//! * RSS (VmRSS, sampled every 500 ms) stays flat after a warm-up of a
//!   fifth of the run: at most [`RSS_GROWTH_KIB`] above the warm-up level;
//! * every counter of each reflector's exit summary equals what was sent of
//!   the kind it counts (truncated, oversized, auth_failed, reflected, TLVs
//!   flagged U / I), with no other drop reason.
//!
//! Duration: `STAMP_SOAK_SECS` (default 60, as CI runs it); rate: `STAMP_SOAK_PPS`
//! (datagrams per second over all sources, default 12000; debug binaries on
//! two shared cores). The kernel's own receive-queue drops are read from
//! /proc/net/udp and reported: they would make the counts disagree through
//! no fault of the reflector, so the test says so instead of blaming it.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stamp_core::hmac::HmacKey;
use stamp_tests::{json_lines, Reflector};
use stamp_wire::{AuthMode, ReflectorPacket};

const SOURCES: u32 = 4;
const KEY_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const KEY: [u8; 32] = [0x5a; 32];
const WRONG_KEY: [u8; 32] = [0xa5; 32];
/// TLVs in one bomb (4 octets each: an empty TLV of type 200).
const BOMB_TLVS: usize = 2000;
const BOMB_TYPE: u8 = 200;
/// Allowed RSS growth after warm-up.
const RSS_GROWTH_KIB: u64 = 2048;
/// Bit of the Sequence Number that marks a hostile request (valid ones
/// never set it): replies to those are not "valid replies".
const HOSTILE: u32 = 1 << 27;

#[derive(Default, Debug, Clone, Copy)]
struct Sent {
    valid: u64,
    truncated: u64,
    oversized: u64,
    garbage: u64,
    wrong_key: u64,
    bomb: u64,
}

impl Sent {
    fn add(&mut self, o: &Sent) {
        self.valid += o.valid;
        self.truncated += o.truncated;
        self.oversized += o.oversized;
        self.garbage += o.garbage;
        self.wrong_key += o.wrong_key;
        self.bomb += o.bomb;
    }
}

/// xorshift64*: reproducible noise without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn fill(&mut self, b: &mut [u8]) {
        for x in b {
            *x = self.next() as u8;
        }
    }
}

fn open_request(seq: u32, ssid: u16) -> Vec<u8> {
    let mut v = vec![0u8; 44];
    v[0..4].copy_from_slice(&seq.to_be_bytes());
    v[4..12].copy_from_slice(&0xE9E1_0000_8000_0000u64.to_be_bytes());
    v[12..14].copy_from_slice(&[0x80, 1]);
    v[14..16].copy_from_slice(&ssid.to_be_bytes());
    v
}

fn auth_request(seq: u32, key: &[u8], extra: usize) -> Vec<u8> {
    let mut v = vec![0u8; 112 + extra];
    v[0..4].copy_from_slice(&seq.to_be_bytes());
    v[16..24].copy_from_slice(&0xE9E1_0000_8000_0000u64.to_be_bytes());
    v[24..26].copy_from_slice(&[0x80, 1]);
    let tag = HmacKey::new(key).tag(&[&v[..96]]);
    v[96..112].copy_from_slice(&tag);
    v
}

/// The base packet followed by `BOMB_TLVS` empty TLVs of an unknown type.
fn bomb(mut base: Vec<u8>) -> Vec<u8> {
    for _ in 0..BOMB_TLVS {
        base.extend_from_slice(&[0, BOMB_TYPE, 0, 0]);
    }
    base
}

fn vm_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Datagrams the kernel dropped on the UDP sockets bound to `port`
/// (/proc/net/udp, last column).
fn kernel_drops(port: u16) -> u64 {
    let want = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|local| local.ends_with(&want))
        })
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Replies seen by one source: per reflector, count per valid Sequence
/// Number counter, and the number of replies to hostile requests.
#[derive(Default)]
struct Seen {
    valid: HashMap<(bool, u32), u32>,
    hostile_replies: [u64; 2],
    unparsable: u64,
}

#[test]
fn soak_hostile_mix_from_several_sources() {
    let secs = env_u64("STAMP_SOAK_SECS", 60);
    let pps = env_u64("STAMP_SOAK_PPS", 12_000).max(100);
    let dir = std::env::temp_dir().join(format!("stamp-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("soak.key");
    std::fs::write(&key_file, KEY_HEX).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let ro = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "--stateful-reflector",
        "--max-sessions",
        "256",
        "--output-format",
        "json",
    ]);
    let ra = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "-A",
        "A",
        "--hmac-key-file",
        key_file.to_str().unwrap(),
        "--output-format",
        "json",
    ]);
    let (o_addr, a_addr) = (ro.addr, ra.addr);
    let pids = [ro.pid(), ra.pid()];

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    // Each source sends two valid and two hostile datagrams per round.
    let round = Duration::from_secs_f64(4.0 * SOURCES as f64 / pps as f64);

    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for src in 0..SOURCES {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Room for the 8 KB bomb replies while the receiver catches up.
        let _ = nix::sys::socket::setsockopt(
            &sock,
            nix::sys::socket::sockopt::RcvBufForce,
            &(16 << 20),
        );
        let rx = sock.try_clone().unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop_rx = stop.clone();
        let seen_rx = seen.clone();
        receivers.push((
            seen,
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                let mut idle_after_stop = 0;
                loop {
                    match rx.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            idle_after_stop = 0;
                            let is_a = from == a_addr;
                            let mode = if is_a {
                                AuthMode::Authenticated
                            } else {
                                AuthMode::Open
                            };
                            let mut s = seen_rx.lock().unwrap();
                            match ReflectorPacket::new_checked(&buf[..n], mode) {
                                Ok(p) => {
                                    let seq = p.sender_sequence_number();
                                    if seq & HOSTILE != 0 {
                                        s.hostile_replies[is_a as usize] += 1;
                                    } else {
                                        *s.valid.entry((is_a, seq)).or_default() += 1;
                                    }
                                }
                                Err(_) => s.unparsable += 1,
                            }
                        }
                        Err(_) => {
                            if stop_rx.load(Ordering::Relaxed) {
                                idle_after_stop += 1;
                                if idle_after_stop >= 5 {
                                    break;
                                }
                            }
                        }
                    }
                }
            }),
        ));
        senders.push(std::thread::spawn(move || {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((u64::from(src) + 1) * 0x1000_0001));
            let (mut to_o, mut to_a) = (Sent::default(), Sent::default());
            let mut counter = 0u32;
            let mut next = Instant::now();
            let mut oversized = vec![0u8; 9500];
            rng.fill(&mut oversized);
            while Instant::now() < deadline {
                let seq = (src << 28) | counter;
                counter += 1;
                assert!(counter < HOSTILE, "sequence space exhausted");
                let ssid = (rng.next() >> 8) as u16;
                sock.send_to(&open_request(seq, 0), o_addr).unwrap();
                to_o.valid += 1;
                sock.send_to(&auth_request(seq, &KEY, 0), a_addr).unwrap();
                to_a.valid += 1;
                let hostile = HOSTILE | (rng.next() as u32 & (HOSTILE - 1)) | (src << 28);
                // One hostile datagram to each reflector, kinds in turn (the
                // big ones rarely: they cost the most).
                match counter % 50 {
                    0 => {
                        sock.send_to(&oversized, o_addr).unwrap();
                        to_o.oversized += 1;
                        sock.send_to(&oversized, a_addr).unwrap();
                        to_a.oversized += 1;
                    }
                    25 => {
                        sock.send_to(&bomb(open_request(hostile, ssid)), o_addr)
                            .unwrap();
                        to_o.bomb += 1;
                        // Signed base packet, TLVs without an HMAC TLV.
                        let b = bomb(auth_request(hostile, &KEY, 0));
                        sock.send_to(&b, a_addr).unwrap();
                        to_a.bomb += 1;
                    }
                    k if k % 3 == 0 => {
                        let n = 1 + rng.below(13) as usize;
                        let mut t = vec![0u8; n];
                        rng.fill(&mut t);
                        sock.send_to(&t, o_addr).unwrap();
                        to_o.truncated += 1;
                        let n = 1 + rng.below(111) as usize;
                        let mut t = vec![0u8; n];
                        rng.fill(&mut t);
                        sock.send_to(&t, a_addr).unwrap();
                        to_a.truncated += 1;
                    }
                    k if k % 3 == 1 => {
                        // Open mode: any 14..44 octets are a request (answered
                        // with 44); the random SSID makes a new session.
                        let n = 14 + rng.below(31) as usize;
                        let mut g = vec![0u8; n];
                        rng.fill(&mut g);
                        g[0..4].copy_from_slice(&hostile.to_be_bytes());
                        sock.send_to(&g, o_addr).unwrap();
                        to_o.garbage += 1;
                        let n = 112 + rng.below(1400) as usize;
                        let mut g = vec![0u8; n];
                        rng.fill(&mut g);
                        sock.send_to(&g, a_addr).unwrap();
                        to_a.garbage += 1;
                    }
                    _ => {
                        let mut g = open_request(hostile, ssid);
                        g.truncate(14 + rng.below(31) as usize);
                        sock.send_to(&g, o_addr).unwrap();
                        to_o.garbage += 1;
                        sock.send_to(&auth_request(hostile, &WRONG_KEY, 0), a_addr)
                            .unwrap();
                        to_a.wrong_key += 1;
                    }
                }
                next += round;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            (to_o, to_a, counter)
        }));
    }

    // Sample RSS while the sources run.
    let mut samples: Vec<(Duration, [u64; 2])> = Vec::new();
    while Instant::now() < deadline {
        samples.push((started.elapsed(), pids.map(vm_rss_kib)));
        std::thread::sleep(Duration::from_millis(500));
    }
    let (mut sent_o, mut sent_a) = (Sent::default(), Sent::default());
    let mut counters = Vec::new();
    for s in senders {
        let (o, a, c) = s.join().expect("sender thread");
        sent_o.add(&o);
        sent_a.add(&a);
        counters.push(c);
    }
    // Let the last replies come back, then stop the receivers.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for (s, h) in receivers {
        h.join().expect("receiver thread");
        seen.push(Arc::try_unwrap(s).ok().unwrap().into_inner().unwrap());
    }
    let drops = [kernel_drops(o_addr.port()), kernel_drops(a_addr.port())];
    samples.push((started.elapsed(), pids.map(vm_rss_kib)));

    // Both still up; then their exit summaries.
    for pid in pids {
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "reflector {pid} died"
        );
    }
    let (st_o, out_o, _) = ro.interrupt();
    let (st_a, out_a, _) = ra.interrupt();
    assert!(st_o.success() && st_a.success(), "{out_o}\n{out_a}");
    let sum_o = json_lines(&out_o).pop().expect("open summary");
    let sum_a = json_lines(&out_a).pop().expect("auth summary");
    let total = |s: &Sent| s.valid + s.truncated + s.oversized + s.garbage + s.wrong_key + s.bomb;
    eprintln!(
        "soak: {secs} s, {} datagrams to O {sent_o:?}, {} to A {sent_a:?}; kernel drops {drops:?}",
        total(&sent_o),
        total(&sent_a)
    );
    eprintln!("soak: O summary {sum_o}");
    eprintln!("soak: A summary {sum_a}");
    assert_eq!(
        drops,
        [0, 0],
        "the kernel dropped datagrams before the reflectors read them (host too busy for \
         {pps} pps: lower STAMP_SOAK_PPS); the counts below cannot match"
    );

    // Every valid request answered exactly once.
    let mut missing = Vec::new();
    let mut extra = 0;
    for (src, s) in seen.iter().enumerate() {
        assert_eq!(s.unparsable, 0, "source {src}: unparsable replies");
        for is_a in [false, true] {
            for c in 0..counters[src] {
                let seq = ((src as u32) << 28) | c;
                match s.valid.get(&(is_a, seq)).copied().unwrap_or(0) {
                    0 => missing.push((src, is_a, c)),
                    1 => {}
                    _ => extra += 1,
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} valid requests unanswered, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(extra, 0, "valid requests answered more than once");
    let hostile_o: u64 = seen.iter().map(|s| s.hostile_replies[0]).sum();
    let hostile_a: u64 = seen.iter().map(|s| s.hostile_replies[1]).sum();
    // O answers its garbage (valid TWAMP-Light) and bombs (TLVs flagged U);
    // A answers only the signed bombs (TLVs flagged I).
    assert_eq!(hostile_o, sent_o.garbage + sent_o.bomb);
    assert_eq!(hostile_a, sent_a.bomb);

    // Every datagram counted once, under its reason.
    let u = |v: &serde_json::Value, k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("no {k} in summary {v}"))
    };
    assert_eq!(u(&sum_o, "oversized"), sent_o.oversized, "O oversized");
    assert_eq!(
        u(&sum_o, "received"),
        total(&sent_o) - sent_o.oversized,
        "O received"
    );
    assert_eq!(u(&sum_o, "dropped_truncated"), sent_o.truncated);
    assert_eq!(
        u(&sum_o, "reflected"),
        sent_o.valid + sent_o.garbage + sent_o.bomb
    );
    assert_eq!(u(&sum_o, "dropped"), sent_o.truncated);
    assert_eq!(
        u(&sum_o, "tlv_unrecognized"),
        sent_o.bomb * BOMB_TLVS as u64
    );
    // Sessions: garbage with random SSIDs churned the 256-entry table.
    let (created, expired, evicted, active) = (
        u(&sum_o, "sessions_created"),
        u(&sum_o, "sessions_expired"),
        u(&sum_o, "sessions_evicted"),
        u(&sum_o, "active_sessions"),
    );
    assert_eq!(created - expired - evicted, active);
    assert!(active <= 256, "{active}");
    assert!(evicted > 0, "no eviction happened");

    assert_eq!(u(&sum_a, "oversized"), sent_a.oversized, "A oversized");
    assert_eq!(
        u(&sum_a, "received"),
        total(&sent_a) - sent_a.oversized,
        "A received"
    );
    assert_eq!(u(&sum_a, "dropped_truncated"), sent_a.truncated);
    assert_eq!(
        u(&sum_a, "dropped_auth_failed"),
        sent_a.garbage + sent_a.wrong_key
    );
    assert_eq!(u(&sum_a, "reflected"), sent_a.valid + sent_a.bomb);
    assert_eq!(u(&sum_a, "tlv_integrity_failed"), sent_a.bomb);
    assert_eq!(
        u(&sum_a, "dropped"),
        sent_a.truncated + sent_a.garbage + sent_a.wrong_key
    );
    for s in [&sum_o, &sum_a] {
        for k in [
            "dropped_session_limit",
            "dropped_tlv_discard",
            "suppressed",
            "dropped_rate_limited",
            "dropped_global_rate_limited",
            "send_errors",
        ] {
            assert_eq!(u(s, k), 0, "{k} in {s}");
        }
    }

    // RSS flat after warm-up.
    let warm = Duration::from_secs_f64(secs as f64 / 5.0);
    for (i, name) in ["O", "A"].iter().enumerate() {
        let after: Vec<u64> = samples
            .iter()
            .filter(|(t, _)| *t >= warm)
            .map(|(_, r)| r[i])
            .collect();
        assert!(after.len() >= 2, "too few RSS samples");
        let base = after[0];
        let max = *after.iter().max().unwrap();
        eprintln!(
            "soak: reflector {name} VmRSS after warm-up {base} KiB, max {max} KiB, last {} KiB",
            after.last().unwrap()
        );
        assert!(
            max <= base + RSS_GROWTH_KIB,
            "reflector {name} RSS grew from {base} KiB to {max} KiB"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
