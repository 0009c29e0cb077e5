//! The reflector's hot path allocates nothing per packet after warm-up
//! (issue 5): a counting global allocator watches `Reflector::process` with
//! the RFC 8972 TLV plugins linked and every one of their TLVs in the
//! request, stateful and stateless, open and authenticated (base HMAC and
//! HMAC TLV), and while new sessions are created.
// A global allocator is an `unsafe impl`; this one only counts and forwards.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stamp_core::clock::{ManualClock, TimestampSource, UnixNanos};
use stamp_core::hmac::HmacKey;
use stamp_core::reflector::{Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::Registry;
use stamp_core::sender::{request_templates, SenderConfig, SenderSession};
use stamp_core::transport::RecvMeta;
use stamp_core::TlvOptions;
use stamp_plugins as _;
use stamp_wire::{AuthMode, TimestampFormat, MAX_DATAGRAM};

struct Counting;

thread_local! {
    // Only this thread's allocations count (the harness has its own threads).
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // try_with: the slots may be gone while the thread is being torn down.
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// Safety: every call is forwarded unchanged to the system allocator; the
// counters are const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // Safety: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // Safety: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // Safety: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations_in(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(|n| n.get())
}

const KEY: [u8; 32] = [0x5A; 32];
const T0: u64 = 1_763_800_000_000_000_000;

/// Every RFC 8972 TLV the sender can ask for.
fn all_tlvs() -> TlvOptions {
    let mut o = TlvOptions::new();
    o.set("location", "true")
        .set("timestamp-info", "true")
        .set("cos", "true")
        .set("dscp", "46")
        .set("direct-measurement", "true")
        .set("access-report", "1")
        .set("follow-up-telemetry", "true")
        .set("padding", "64");
    o
}

fn registry() -> Registry {
    stamp_plugins::link();
    Registry::from_linked(&TlvOptions::new(), &BTreeMap::new()).expect("registry")
}

/// Requests from `peers` senders, built by the real Session-Sender.
fn requests(mode: AuthMode, tlv_hmac: bool, n: usize) -> Vec<Vec<u8>> {
    let reg = registry();
    let templates = request_templates(&reg, &all_tlvs()).expect("templates");
    assert!(
        templates.len() >= 7,
        "plugins not linked: {}",
        templates.len()
    );
    let config = SenderConfig {
        mode,
        ssid: 0x1234,
        key: Some(HmacKey::new(&KEY)),
        tlv_hmac,
        ..SenderConfig::default()
    };
    let mut s = SenderSession::new(config, reg, templates).expect("session");
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    (0..n)
        .map(|_| {
            let len = s.build_request(&mut buf, Instant::now(), &clock);
            buf[..len].to_vec()
        })
        .collect()
}

fn meta(len: usize, peer: u16) -> RecvMeta {
    let mut m = RecvMeta::new(len, SocketAddr::from(([192, 0, 2, 1], 40_000 + peer)));
    m.dst = Some([198, 51, 100, 7].into());
    m.dst_port = 862;
    m.ttl = Some(61);
    m.tos = Some(0xB8);
    m.rx_time = Some((UnixNanos(T0 + 1000), TimestampSource::Kernel));
    m
}

/// Warm up, then count allocations while processing `rounds` × every
/// request from `peers` senders; every request must be reflected with its
/// TLVs processed (no U / M / I flag).
fn assert_no_allocations(mode: AuthMode, tlv_hmac: bool, stateful: bool) {
    assert_no_allocations_with(mode, tlv_hmac, stateful, 100_000, false);
}

/// As [`assert_no_allocations`], with a session cap (below 1000 it evicts
/// on every new session) and, with `limits`, per-SSID keys (the requests'
/// SSID has its own key, the default key is a wrong one), a per-source rate
/// limit and the shared global cap, set high enough to refuse nothing.
fn assert_no_allocations_with(
    mode: AuthMode,
    tlv_hmac: bool,
    stateful: bool,
    max_sessions: usize,
    limits: bool,
) {
    let reqs = requests(mode, tlv_hmac, 64);
    let mut config = ReflectorConfig {
        mode,
        stateful,
        key: Some(HmacKey::new(&KEY)),
        verify_tlv_hmac: tlv_hmac,
        max_sessions,
        session_timeout: Duration::from_secs(60),
        ..ReflectorConfig::default()
    };
    if limits {
        config.key = Some(HmacKey::new(&[0xEE; 32]));
        config.ssid_keys = [(0x1234, HmacKey::new(&KEY)), (7, HmacKey::new(&[7; 32]))]
            .into_iter()
            .collect();
        config.max_pps = Some(1_000_000);
        config.global_limit = Some(stamp_core::ratelimit::GlobalLimit::per_second(10_000_000));
    }
    let mut r = Reflector::new(config, registry());
    let clock = ManualClock::new(UnixNanos(T0 + 5000), TimestampFormat::Ntp);
    let mut reply = vec![0u8; MAX_DATAGRAM].into_boxed_slice();
    let metas: Vec<RecvMeta> = (0..1000).map(|p| meta(reqs[0].len(), p)).collect();
    let now = Instant::now();

    let mut run = |r: &mut Reflector, peers: std::ops::Range<usize>| {
        let mut reflected = 0u64;
        for m in &metas[peers] {
            for req in &reqs {
                if let Outcome::Reply { len, .. } = r.process(req, m, now, &clock, &mut reply) {
                    assert_eq!(len, req.len());
                    reflected += 1;
                }
            }
        }
        reflected
    };
    // Warm-up: the first sessions, lazily initialised statics.
    let warm = run(&mut r, 0..4);
    assert_eq!(warm, 4 * 64, "{:?}", r.stats());
    let mut reflected = 0;
    let allocations = allocations_in(|| {
        // Old sessions, and 996 new ones created on the way.
        reflected = run(&mut r, 0..1000);
        r.expire_sessions(now + Duration::from_secs(1));
    });
    let st = r.stats();
    assert_eq!(reflected, 1000 * 64, "{st:?}");
    assert_eq!(
        (
            st.tlv_unrecognized,
            st.tlv_malformed,
            st.tlv_integrity_failed
        ),
        (0, 0, 0),
        "{st:?}"
    );
    if stateful {
        assert_eq!(r.sessions().len(), 1000.min(max_sessions));
        let evicted = 1000usize.saturating_sub(max_sessions) as u64;
        assert_eq!(st.sessions_evicted, evicted, "{st:?}");
    }
    assert_eq!(
        allocations, 0,
        "{allocations} heap allocations for {reflected} packets ({mode:?}, tlv_hmac {tlv_hmac}, stateful {stateful})"
    );
}

#[test]
fn counting_allocator_sees_allocations() {
    // The harness itself works: a Vec allocates.
    let n = allocations_in(|| {
        let v: Vec<u8> = Vec::with_capacity(10);
        std::hint::black_box(v);
    });
    assert_eq!(n, 1);
}

#[test]
fn open_mode_with_every_rfc8972_tlv_allocates_nothing_per_packet() {
    assert_no_allocations(AuthMode::Open, false, false);
}

#[test]
fn open_mode_with_tlvs_and_hmac_tlv_stateful_allocates_nothing_per_packet() {
    assert_no_allocations(AuthMode::Open, true, true);
}

#[test]
fn authenticated_mode_with_tlvs_allocates_nothing_per_packet() {
    assert_no_allocations(AuthMode::Authenticated, false, false);
}

#[test]
fn authenticated_stateful_mode_creating_sessions_allocates_nothing() {
    assert_no_allocations(AuthMode::Authenticated, true, true);
}

#[test]
fn full_session_table_evicting_on_every_new_session_allocates_nothing() {
    assert_no_allocations_with(AuthMode::Authenticated, true, true, 100, false);
}

#[test]
fn per_ssid_keys_rate_limits_and_eviction_allocate_nothing() {
    assert_no_allocations_with(AuthMode::Authenticated, true, true, 500, true);
    assert_no_allocations_with(AuthMode::Open, true, true, 100, true);
}

/// The reflector's transport allocates nothing per batch either: sendmmsg
/// with UDP segmentation offload trains (two peers, interleaved, as the
/// worker sends them after regrouping) and recvmmsg with every control
/// message, after one warm-up round.
#[test]
fn udp_batches_with_gso_trains_allocate_nothing_after_warm_up() {
    use stamp_core::transport::SendMeta;
    use stamp_net::{BlockingUdpTransport, UdpOptions};

    let opts = UdpOptions {
        recv_buffer: Some(4 << 20),
        ..UdpOptions::default()
    };
    let bind = || {
        BlockingUdpTransport::bind(
            "127.0.0.1:0".parse().unwrap(),
            &opts,
            Duration::from_secs(1),
        )
        .unwrap()
    };
    let (tx, rx_a, rx_b) = (bind(), bind(), bind());
    let out: Vec<Box<[u8]>> = (0..32u8).map(|i| vec![i; 140].into_boxed_slice()).collect();
    // 16 replies to each peer, grouped by peer: two trains per batch.
    let metas: Vec<SendMeta> = (0..32)
        .map(|i| {
            SendMeta::new(
                140,
                if i < 16 {
                    rx_a.local_addr()
                } else {
                    rx_b.local_addr()
                },
            )
        })
        .collect();
    let mut bufs: Vec<Box<[u8]>> = (0..32)
        .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
        .collect();
    let mut got = vec![RecvMeta::default(); 32];
    let mut round = || {
        let mut sent = 0;
        while sent < metas.len() {
            sent += tx.send_batch(&out[sent..], &metas[sent..]).unwrap();
        }
        for rx in [&rx_a, &rx_b] {
            let mut n = 0;
            while n < 16 {
                n += rx.recv_batch(&mut bufs[n..], &mut got[n..], None).unwrap();
            }
            assert!(got[..16]
                .iter()
                .all(|m| m.len == 140 && m.rx_time.is_some()));
        }
    };
    round();
    let n = allocations_in(|| {
        for _ in 0..100 {
            round();
        }
    });
    assert_eq!(n, 0, "{n} allocations in 100 batches of 32 datagrams");
    assert_eq!(
        tx.gso().segmented,
        101 * 32,
        "every datagram went in a train"
    );
}
