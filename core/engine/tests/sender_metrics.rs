//! The sender's metrics against a simulated path with exactly known
//! delays, losses, reordering, duplicates and TTLs: the sans-I/O sender and
//! reflector, one synchronized hand-driven clock (PTP format, so every
//! timestamp is exact to the nanosecond), no sockets.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stamp_core::clock::{Clock, ManualClock, TimestampSource, UnixNanos};
use stamp_core::hmac::HmacKey;
use stamp_core::reflector::{Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::Registry;
use stamp_core::sender::{Rejected, ReplyEvent, SenderConfig, SenderSession, SenderStats};
use stamp_core::transport::RecvMeta;
use stamp_wire::{AuthMode, ErrorEstimate, TimestampFormat, MAX_DATAGRAM};

const T0: u64 = 1_763_800_000_000_000_000;
const MS: u64 = 1_000_000;

fn sender_addr() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 40000))
}
fn reflector_addr() -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 7], 862))
}

/// What the simulated path does to packet `i`.
#[derive(Clone, Copy)]
struct Fate {
    fwd_ms: u64,
    bwd_ms: u64,
    lose_fwd: bool,
    lose_bwd: bool,
    dup_fwd: bool,
    dup_bwd: bool,
    /// TTL the request arrives with / the reply arrives with.
    ttl_fwd: u8,
    ttl_bwd: u8,
}

impl Default for Fate {
    fn default() -> Self {
        Fate {
            fwd_ms: 10,
            bwd_ms: 5,
            lose_fwd: false,
            lose_bwd: false,
            dup_fwd: false,
            dup_bwd: false,
            ttl_fwd: 64,
            ttl_bwd: 255,
        }
    }
}

enum Ev {
    Reflect(Vec<u8>, Fate),
    Arrive(Vec<u8>, u8),
}

/// Sends one request every 10 ms per `fates`, runs the path, returns the
/// sender's statistics and the events of every datagram, in arrival order.
fn simulate(fates: &[Fate], first_seq: u32, refl_warmup: u32) -> (SenderStats, Vec<ReplyEvent>) {
    simulate_with(fates, first_seq, refl_warmup, true)
}

fn simulate_with(
    fates: &[Fate],
    first_seq: u32,
    refl_warmup: u32,
    stateful: bool,
) -> (SenderStats, Vec<ReplyEvent>) {
    let est = ErrorEstimate::new(true, TimestampFormat::Ptp, 0, 1);
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ptp).with_error_estimate(est);
    let cfg = SenderConfig {
        timeout: Duration::from_secs(3600),
        first_seq,
        ..Default::default()
    };
    let mut s = SenderSession::new(cfg, Registry::empty(), vec![]).unwrap();
    s.set_remote(reflector_addr());
    let mut r = Reflector::new(
        ReflectorConfig {
            stateful,
            ..Default::default()
        },
        Registry::empty(),
    );
    let req_meta = |len: usize, ttl: u8| {
        let mut m = RecvMeta::new(len, sender_addr());
        m.dst = Some(reflector_addr().ip());
        m.dst_port = 862;
        m.ttl = Some(ttl);
        m
    };
    let mut out = vec![0u8; MAX_DATAGRAM];
    // Requests of an earlier run of the same session move the reflector's
    // counter away from zero: directional loss must not care.
    for _ in 0..refl_warmup {
        let mut b = vec![0u8; MAX_DATAGRAM];
        let n = SenderSession::new(SenderConfig::default(), Registry::empty(), vec![])
            .unwrap()
            .build_request(&mut b, Instant::now(), &clock);
        r.process(&b[..n], &req_meta(n, 64), Instant::now(), &clock, &mut out);
    }
    let mut queue: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut evs: Vec<Option<Ev>> = Vec::new();
    fn push(q: &mut BinaryHeap<Reverse<(u64, u64)>>, evs: &mut Vec<Option<Ev>>, at: u64, e: Ev) {
        q.push(Reverse((at, evs.len() as u64)));
        evs.push(Some(e));
    }
    let mut pending = Vec::new();
    for (i, f) in fates.iter().enumerate() {
        let at = T0 + i as u64 * 10 * MS;
        clock.set(UnixNanos(at));
        let mut b = vec![0u8; MAX_DATAGRAM];
        let n = s.build_request(&mut b, Instant::now(), &clock);
        b.truncate(n);
        if !f.lose_fwd {
            pending.push((at + f.fwd_ms * MS, b.clone(), *f));
            if f.dup_fwd {
                pending.push((at + f.fwd_ms * MS + 1, b, *f));
            }
        }
    }
    for (at, b, f) in pending {
        push(&mut queue, &mut evs, at, Ev::Reflect(b, f));
    }
    let mut events = Vec::new();
    while let Some(Reverse((at, idx))) = queue.pop() {
        clock.set(UnixNanos(at));
        match evs[idx as usize].take().unwrap() {
            Ev::Reflect(req, f) => {
                let o = r.process(
                    &req,
                    &req_meta(req.len(), f.ttl_fwd),
                    Instant::now(),
                    &clock,
                    &mut out,
                );
                let Outcome::Reply { len, .. } = o else {
                    panic!("reflector dropped a request: {o:?}")
                };
                if f.lose_bwd {
                    continue;
                }
                let rep = out[..len].to_vec();
                let when = at + f.bwd_ms * MS;
                if f.dup_bwd {
                    push(
                        &mut queue,
                        &mut evs,
                        when + 1,
                        Ev::Arrive(rep.clone(), f.ttl_bwd),
                    );
                }
                push(&mut queue, &mut evs, when, Ev::Arrive(rep, f.ttl_bwd));
            }
            Ev::Arrive(rep, ttl) => {
                let mut m = RecvMeta::new(rep.len(), reflector_addr());
                m.ttl = Some(ttl);
                events.push(s.on_reply(&rep, &m, clock.now(), TimestampSource::Kernel, est));
            }
        }
    }
    s.finish();
    (s.stats().clone(), events)
}

#[test]
fn one_way_delays_ipdv_and_pdv_are_exact() {
    // Forward delays 10, 12, 11, 15, 15 ms; backward always 5 ms.
    let fates: Vec<Fate> = [10u64, 12, 11, 15, 15]
        .iter()
        .map(|&f| Fate {
            fwd_ms: f,
            ..Fate::default()
        })
        .collect();
    let (st, _) = simulate(&fates, 0, 0);
    let f = st.forward.summary().unwrap();
    assert_eq!((f.count, f.min_ms, f.max_ms), (5, 10.0, 15.0));
    assert_eq!(f.avg_ms, 12.6);
    let b = st.backward.summary().unwrap();
    assert_eq!((b.min_ms, b.max_ms), (5.0, 5.0));
    let rtt = st.rtt.summary().unwrap();
    assert_eq!((rtt.min_ms, rtt.max_ms), (15.0, 20.0));
    // IPDV = +2, −1, +4, 0 (forward and RTT alike), 0 backward.
    for ipdv in [&st.ipdv_forward, &st.ipdv_rtt] {
        let x = ipdv.summary().unwrap();
        assert_eq!(x.count, 4);
        assert_eq!(x.mean_ms, 1.25);
        assert_eq!(x.mean_abs_ms, 1.75);
        assert_eq!((x.min_abs_ms, x.max_abs_ms), (0.0, 4.0));
    }
    let x = st.ipdv_backward.summary().unwrap();
    assert_eq!((x.count, x.max_abs_ms, x.mean_ms), (4, 0.0, 0.0));
    // PDV = D − min: 0, 2, 1, 5, 5 → max 5, median 2.
    let p = st.pdv_forward().unwrap();
    assert!((p.max_ms - 5.0).abs() < 1e-9);
    assert!((p.p50_ms - 2.0).abs() < 0.02, "{}", p.p50_ms);
    assert!((p.p99_ms - 5.0).abs() < 0.02, "{}", p.p99_ms);
    let p = st.pdv_backward().unwrap();
    assert_eq!(p.max_ms, 0.0);
}

#[test]
fn unsynchronized_reflector_gives_no_one_way_delay() {
    // The same path with a reflector whose clock says "not synchronized":
    // emulate by a sender that does not claim sync either.
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ptp);
    let mut s = SenderSession::new(SenderConfig::default(), Registry::empty(), vec![]).unwrap();
    let mut r = Reflector::new(ReflectorConfig::default(), Registry::empty());
    let mut b = vec![0u8; MAX_DATAGRAM];
    let mut out = vec![0u8; MAX_DATAGRAM];
    let n = s.build_request(&mut b, Instant::now(), &clock);
    clock.advance(3 * MS);
    let o = r.process(
        &b[..n],
        &RecvMeta::new(n, sender_addr()),
        Instant::now(),
        &clock,
        &mut out,
    );
    let Outcome::Reply { len, .. } = o else {
        panic!()
    };
    clock.advance(3 * MS);
    let synced = ErrorEstimate::new(true, TimestampFormat::Ptp, 0, 1);
    let ev = s.on_reply(
        &out[..len],
        &RecvMeta::new(len, sender_addr()),
        clock.now(),
        TimestampSource::UserSpace,
        synced,
    );
    let ReplyEvent::Matched(rec) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (rec.forward_ns, rec.backward_ns),
        (None, None),
        "only our S bit is set"
    );
    assert!(s.stats().forward.summary().is_none());
    assert!(s.stats().ipdv_forward.summary().is_none());
    assert_eq!(s.stats().ipdv_rtt.count(), 0);
}

#[test]
fn directional_loss_from_any_starting_numbers() {
    // 20 packets; lost forward: 3, 7; lost backward: 5, 12; 19 lost
    // backward too but after the last answer: not attributable.
    let mut fates = vec![Fate::default(); 20];
    for i in [3, 7] {
        fates[i].lose_fwd = true;
    }
    for i in [5, 12, 19] {
        fates[i].lose_bwd = true;
    }
    for (first, warm) in [(0u32, 0u32), (1000, 17), (u32::MAX - 5, 3)] {
        let (st, _) = simulate(&fates, first, warm);
        assert_eq!((st.sent, st.received, st.lost), (20, 15, 5));
        let dl = st.directional_loss().expect("stateful reflector");
        assert_eq!(
            (dl.forward, dl.backward),
            (2, 2),
            "first seq {first}, reflector from {warm}"
        );
        assert_eq!(st.unattributed_loss(), 1);
    }
}

#[test]
fn losses_before_the_first_reply_are_forward_when_the_reflector_starts_at_zero() {
    // Packets 0 and 1 lost forward, 2 answered first.
    let mut fates = vec![Fate::default(); 10];
    fates[0].lose_fwd = true;
    fates[1].lose_fwd = true;
    fates[6].lose_bwd = true;
    // A fresh session: the reflector numbers the reply to 2 as 0.
    let (st, _) = simulate(&fates, 0, 0);
    let dl = st.directional_loss().unwrap();
    assert_eq!((dl.forward, dl.backward, st.unattributed_loss()), (2, 1, 0));
    // A reflector counter that does not start at 0 for us: the two head
    // losses cannot be placed.
    let (st, _) = simulate(&fates, 0, 9);
    let dl = st.directional_loss().unwrap();
    assert_eq!((dl.forward, dl.backward, st.unattributed_loss()), (0, 1, 2));
}

#[test]
fn reordering_rfc4737_on_the_way_back() {
    // Packet 4's reply takes 36 ms back: it arrives after 5, 6 and 7
    // (sent 10, 20, 30 ms later with 5 ms back) → extent 3.
    let mut fates = vec![Fate::default(); 10];
    fates[4].bwd_ms = 36;
    let (st, events) = simulate(&fates, 0, 0);
    let r = st.reorder.summary().unwrap();
    assert_eq!((r.received, r.reordered, r.extent_max), (10, 1, 3));
    assert!((r.ratio - 0.1).abs() < 1e-12);
    assert_eq!(r.extent_avg, 3.0);
    let b = st.reorder_backward.summary().unwrap();
    assert_eq!(
        (b.reordered, b.extent_max),
        (1, 3),
        "reflector T3 in arrival order"
    );
    let extents: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ReplyEvent::Matched(r) => r.reorder_extent.map(|x| (r.seq, x)),
            _ => None,
        })
        .collect();
    assert_eq!(extents, vec![(4, 3)]);
    // IPDV pairs formed despite the order: 3→4 (+31) and 4→5 (−31).
    let x = st.ipdv_rtt.summary().unwrap();
    assert_eq!((x.count, x.max_abs_ms, x.mean_ms), (9, 31.0, 0.0));
    assert!(
        st.directional_loss().unwrap()
            == stamp_core::sender::DirectionalLoss {
                forward: 0,
                backward: 0
            }
    );
}

#[test]
fn forward_reordering_is_not_counted_backward_and_stateless_reflectors_work_too() {
    // Packet 4's request takes 41 ms out: the reflector gets it after 5, 6
    // and 7, answers in that order, and nothing is reordered on the way back.
    let mut fates = vec![Fate::default(); 10];
    fates[4].fwd_ms = 41;
    for stateful in [true, false] {
        let (st, _) = simulate_with(&fates, 0, 0, stateful);
        let r = st.reorder.summary().unwrap();
        assert_eq!((r.reordered, r.extent_max), (1, 3), "stateful {stateful}");
        assert_eq!(st.reorder_backward.reordered(), 0, "stateful {stateful}");
        let f = st.reorder_forward.summary().unwrap();
        assert_eq!((f.reordered, f.extent_max), (1, 3), "stateful {stateful}");
    }
    // Backward reordering seen through a stateless reflector (T3 order).
    let mut fates = vec![Fate::default(); 10];
    fates[4].bwd_ms = 36;
    let (st, _) = simulate_with(&fates, 0, 0, false);
    assert_eq!(st.reorder.reordered(), 1);
    let b = st.reorder_backward.summary().unwrap();
    assert_eq!((b.reordered, b.extent_max), (1, 3));
    assert_eq!(
        st.reorder_forward.reordered(),
        0,
        "reflector got them in order"
    );
    assert_eq!(st.reorder_forward.summary().unwrap().received, 10);
}

#[test]
fn a_copied_reply_to_a_duplicated_request_is_a_backward_duplicate() {
    // The request is duplicated on the way out (two replies, two T3s) and
    // both replies are copied on the way back: one forward duplicate, two
    // backward ones, whatever the order they arrive in.
    let mut fates = vec![Fate::default(); 4];
    fates[2].dup_fwd = true;
    fates[2].dup_bwd = true;
    let (st, _) = simulate(&fates, 0, 0);
    assert_eq!(
        (st.duplicates, st.duplicates_forward, st.duplicates_backward),
        (3, 1, 2)
    );
    assert_eq!(st.received, 4);
}

#[test]
fn duplicates_are_told_apart_by_direction_and_do_not_count_as_loss() {
    let mut fates = vec![Fate::default(); 10];
    fates[2].dup_fwd = true; // the reflector answers twice (two T3s)
    fates[6].dup_bwd = true; // the reply is copied on the way back
    fates[8].lose_fwd = true;
    let (st, events) = simulate(&fates, 0, 0);
    assert_eq!((st.received, st.lost), (9, 1));
    assert_eq!(
        (st.duplicates, st.duplicates_forward, st.duplicates_backward),
        (2, 1, 1)
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ReplyEvent::Duplicate(_)))
            .count(),
        2
    );
    let dl = st.directional_loss().unwrap();
    assert_eq!((dl.forward, dl.backward), (1, 0));
    assert_eq!(st.rtt.count(), 9, "duplicates never reach the statistics");
    assert_eq!(st.reorder.summary().unwrap().reordered, 0);
}

#[test]
fn hop_counts_and_path_changes_in_both_directions() {
    let mut fates = vec![Fate::default(); 8];
    for f in &mut fates[3..] {
        f.ttl_fwd = 62; // two routers appear on the way out
    }
    for f in &mut fates[5..] {
        f.ttl_bwd = 254; // one on the way back
    }
    let (st, events) = simulate(&fates, 0, 0);
    assert_eq!(
        (
            st.forward_hops.min,
            st.forward_hops.max,
            st.forward_hops.last
        ),
        (Some(0), Some(2), Some(2))
    );
    assert_eq!(st.forward_hops.changes, 1);
    assert_eq!(
        (
            st.backward_hops.min,
            st.backward_hops.max,
            st.backward_hops.changes
        ),
        (Some(0), Some(1), 1)
    );
    assert_eq!(st.path_change_count, 2);
    let changes: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ReplyEvent::Matched(r) => Some(r.path_changes.clone()),
            _ => None,
        })
        .flatten()
        .map(|c| (c.direction, c.seq, c.from_hops, c.to_hops))
        .collect();
    assert_eq!(changes, vec![("forward", 3, 0, 2), ("backward", 5, 0, 1)]);
    assert_eq!(st.path_changes.len(), 2);
}

/// A reply to request `seq` from a stateless reflector, by hand.
fn reply_bytes(s: &mut SenderSession, clock: &ManualClock) -> Vec<u8> {
    let mut b = vec![0u8; MAX_DATAGRAM];
    let n = s.build_request(&mut b, Instant::now(), clock);
    let mut r = Reflector::new(ReflectorConfig::default(), Registry::empty());
    let mut out = vec![0u8; MAX_DATAGRAM];
    clock.advance(MS);
    let Outcome::Reply { len, .. } = r.process(
        &b[..n],
        &RecvMeta::new(n, sender_addr()),
        Instant::now(),
        clock,
        &mut out,
    ) else {
        panic!()
    };
    out.truncate(len);
    out
}

#[test]
fn misbehaving_replies_are_classified_and_never_measured() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ptp);
    let cfg = SenderConfig {
        ssid: 9,
        timeout: Duration::from_millis(100),
        ..Default::default()
    };
    let mut s = SenderSession::new(cfg, Registry::empty(), vec![]).unwrap();
    s.set_remote(reflector_addr());
    let est = clock.error_estimate();
    let start = Instant::now();
    let good = reply_bytes(&mut s, &clock); // seq 0
    let other = reply_bytes(&mut s, &clock); // seq 1, answered late below
    clock.advance(MS);
    let from = |a: SocketAddr, b: &[u8]| RecvMeta::new(b.len(), a);
    let mut on =
        |b: &[u8], m: RecvMeta| s.on_reply(b, &m, clock.now(), TimestampSource::UserSpace, est);
    let rej = |e: ReplyEvent| match e {
        ReplyEvent::Rejected(r) => r,
        e => panic!("{e:?}"),
    };
    assert_eq!(
        rej(on(
            &good,
            from(SocketAddr::from(([203, 0, 113, 1], 862)), &good)
        )),
        Rejected::WrongAddress
    );
    assert_eq!(
        rej(on(
            &good,
            from(SocketAddr::from(([198, 51, 100, 7], 863)), &good)
        )),
        Rejected::WrongPort
    );
    assert_eq!(
        rej(on(&good[..20], from(reflector_addr(), &good[..20]))),
        Rejected::Truncated
    );
    let mut x = good.clone();
    x[14..16].copy_from_slice(&8u16.to_be_bytes());
    assert_eq!(rej(on(&x, from(reflector_addr(), &x))), Rejected::WrongSsid);
    let mut x = good.clone();
    x[24..28].copy_from_slice(&77u32.to_be_bytes());
    assert_eq!(rej(on(&x, from(reflector_addr(), &x))), Rejected::Unknown);
    // T2 after T3 (a corrupted timestamp): implausible, and the genuine
    // reply that follows is still measured.
    let mut x = good.clone();
    x[16] ^= 0x01;
    assert_eq!(
        rej(on(&x, from(reflector_addr(), &x))),
        Rejected::Implausible
    );
    assert!(matches!(
        on(&good, from(reflector_addr(), &good)),
        ReplyEvent::Matched(_)
    ));
    assert_eq!(
        on(&good, from(reflector_addr(), &good)),
        ReplyEvent::Duplicate(0)
    );
    assert_eq!(s.expire(start + Duration::from_secs(1)), vec![1]);
    let ev = s.on_reply(
        &other,
        &from(reflector_addr(), &other),
        clock.now(),
        TimestampSource::UserSpace,
        est,
    );
    assert_eq!(rej(ev), Rejected::Late);
    let st = s.stats();
    assert_eq!((st.sent, st.received, st.lost, st.duplicates), (2, 1, 1, 1));
    assert_eq!(st.rtt.count(), 1);
    for (why, n) in [
        (Rejected::WrongAddress, 1),
        (Rejected::WrongPort, 1),
        (Rejected::Truncated, 1),
        (Rejected::WrongSsid, 1),
        (Rejected::Unknown, 1),
        (Rejected::Implausible, 1),
        (Rejected::Late, 1),
    ] {
        assert_eq!(st.rejected.get(&why), Some(&n), "{why:?}");
    }
    assert_eq!(st.rejected_total(), 7);
}

#[test]
fn bad_hmac_in_authenticated_mode_is_auth_failed() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ptp);
    let key = HmacKey::new(&[7u8; 32]);
    let cfg = SenderConfig {
        mode: AuthMode::Authenticated,
        key: Some(key.clone()),
        ..Default::default()
    };
    let mut s = SenderSession::new(cfg, Registry::empty(), vec![]).unwrap();
    let mut r = Reflector::new(
        ReflectorConfig {
            mode: AuthMode::Authenticated,
            key: Some(key),
            ..Default::default()
        },
        Registry::empty(),
    );
    let mut b = vec![0u8; MAX_DATAGRAM];
    let mut out = vec![0u8; MAX_DATAGRAM];
    let n = s.build_request(&mut b, Instant::now(), &clock);
    let Outcome::Reply { len, .. } = r.process(
        &b[..n],
        &RecvMeta::new(n, sender_addr()),
        Instant::now(),
        &clock,
        &mut out,
    ) else {
        panic!()
    };
    let mut x = out[..len].to_vec();
    x[50] ^= 0x40;
    let est = clock.error_estimate();
    let m = RecvMeta::new(len, sender_addr());
    assert_eq!(
        s.on_reply(&x, &m, clock.now(), TimestampSource::UserSpace, est),
        ReplyEvent::Rejected(Rejected::AuthFailed)
    );
    assert!(matches!(
        s.on_reply(
            &out[..len],
            &m,
            clock.now(),
            TimestampSource::UserSpace,
            est
        ),
        ReplyEvent::Matched(_)
    ));
    assert_eq!(s.stats().rejected.get(&Rejected::AuthFailed), Some(&1));
}

/// RFC 8972 §3: replies that come back with a zeroed SSID are counted; with
/// `ZeroSsidPolicy::Stop` the session asks to stop at the first one, with
/// `Continue` (the default) it keeps measuring. Both use the reply.
#[test]
fn zero_ssid_replies_are_counted_and_stop_the_session_when_asked() {
    use stamp_core::sender::ZeroSsidPolicy;
    for policy in [ZeroSsidPolicy::Continue, ZeroSsidPolicy::Stop] {
        let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ptp);
        let cfg = SenderConfig {
            ssid: 9,
            zero_ssid: policy,
            ..Default::default()
        };
        let mut s = SenderSession::new(cfg, Registry::empty(), vec![]).unwrap();
        s.set_remote(reflector_addr());
        let est = clock.error_estimate();
        let with_ssid = reply_bytes(&mut s, &clock); // seq 0: SSID 9 copied
        let mut zeroed = reply_bytes(&mut s, &clock); // seq 1
        zeroed[14..16].copy_from_slice(&[0, 0]);
        clock.advance(MS);
        let m = RecvMeta::new(with_ssid.len(), reflector_addr());
        let ev = s.on_reply(&with_ssid, &m, clock.now(), TimestampSource::UserSpace, est);
        assert!(matches!(ev, ReplyEvent::Matched(_)));
        assert!(!s.stop_requested());
        let ev = s.on_reply(&zeroed, &m, clock.now(), TimestampSource::UserSpace, est);
        assert!(matches!(ev, ReplyEvent::Matched(_)), "{policy:?}: measured");
        assert_eq!(s.stats().zero_ssid_replies, 1);
        assert_eq!(s.stats().received, 2);
        assert_eq!(s.stop_requested(), policy == ZeroSsidPolicy::Stop);
    }
    // A session without an SSID never counts SSID-0 replies.
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ptp);
    let cfg = SenderConfig {
        zero_ssid: ZeroSsidPolicy::Stop,
        ..Default::default()
    };
    let mut s = SenderSession::new(cfg, Registry::empty(), vec![]).unwrap();
    s.set_remote(reflector_addr());
    let r = reply_bytes(&mut s, &clock);
    let m = RecvMeta::new(r.len(), reflector_addr());
    let _ = s.on_reply(
        &r,
        &m,
        clock.now(),
        TimestampSource::UserSpace,
        clock.error_estimate(),
    );
    assert_eq!(s.stats().zero_ssid_replies, 0);
    assert!(!s.stop_requested());
}
