//! The sans-I/O reflector and sender against fixed bytes and each other,
//! with a hand-driven clock and no sockets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stamp_core::clock::{Clock, ManualClock, TimestampSource, UnixNanos};
use stamp_core::handler::{ReflectContext, TlvHandler, TlvSlot, TlvVerdict};
use stamp_core::hmac::HmacKey;
use stamp_core::reflector::{DropReason, Outcome, Reflector, ReflectorConfig, TlvMode};
use stamp_core::registry::Registry;
use stamp_core::sender::{ReplyEvent, SenderConfig, SenderSession};
use stamp_core::transport::RecvMeta;
use stamp_core::TlvTemplate;
use stamp_wire::{
    AuthMode, ReflectorPacket, ReflectorRepr, TimestampFormat, TlvType, MAX_DATAGRAM,
};

const T0: u64 = 1_763_800_000_000_000_000;

fn meta(len: usize) -> RecvMeta {
    let mut m = RecvMeta::new(len, SocketAddr::from(([192, 0, 2, 1], 40000)));
    m.dst = Some([198, 51, 100, 7].into());
    m.dst_port = 862;
    m.ttl = Some(61);
    m.tos = Some(0xB8);
    m
}

fn request_open(seq: u32, ssid: u16, tail: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 44];
    v[0..4].copy_from_slice(&seq.to_be_bytes());
    v[4..12].copy_from_slice(&0xE9E1_0000_8000_0000u64.to_be_bytes());
    v[12..14].copy_from_slice(&[0, 1]);
    v[14..16].copy_from_slice(&ssid.to_be_bytes());
    v.extend_from_slice(tail);
    v
}

fn reflect(r: &mut Reflector, req: &[u8], m: &RecvMeta, clock: &ManualClock) -> (Outcome, Vec<u8>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let out = r.process(req, m, Instant::now(), clock, &mut buf);
    let len = match out {
        Outcome::Reply { len, .. } => len,
        Outcome::Drop(_) => 0,
    };
    buf.truncate(len);
    (out, buf)
}

#[test]
fn stateless_reply_copies_sender_fields_ttl_and_ssid() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let mut r = Reflector::new(ReflectorConfig::default(), Registry::empty());
    let req = request_open(7, 0x1234, &[]);
    let (out, rep) = reflect(&mut r, &req, &meta(44), &clock);
    assert!(matches!(out, Outcome::Reply { len: 44, .. }));
    let p = ReflectorPacket::new_checked(&rep[..], AuthMode::Open).unwrap();
    let x = ReflectorRepr::parse(&p);
    assert_eq!(x.sequence_number, 7);
    assert_eq!(x.sender_sequence_number, 7);
    assert_eq!(x.sender_timestamp.0, 0xE9E1_0000_8000_0000);
    assert_eq!(x.sender_error_estimate.0, 1);
    assert_eq!(x.ssid, 0x1234);
    assert_eq!(x.sender_ttl, 61);
    assert_eq!(
        x.receive_timestamp
            .to_unix_nanos(TimestampFormat::Ntp)
            .unwrap()
            .abs_diff(T0),
        0
    );
    assert!(p.mbz_is_zero());
}

#[test]
fn stateful_reply_numbers_per_session_from_zero() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let cfg = ReflectorConfig {
        stateful: true,
        ..Default::default()
    };
    let mut r = Reflector::new(cfg, Registry::empty());
    for (i, seq) in [100u32, 101, 105].into_iter().enumerate() {
        let (_, rep) = reflect(&mut r, &request_open(seq, 1, &[]), &meta(44), &clock);
        let p = ReflectorPacket::new_checked(&rep[..], AuthMode::Open).unwrap();
        assert_eq!(p.sequence_number(), i as u32);
        assert_eq!(p.sender_sequence_number(), seq);
    }
    // another SSID from the same address is another session
    let (_, rep) = reflect(&mut r, &request_open(5, 2, &[]), &meta(44), &clock);
    assert_eq!(
        ReflectorPacket::new_checked(&rep[..], AuthMode::Open)
            .unwrap()
            .sequence_number(),
        0
    );
    assert_eq!(r.sessions().len(), 2);
}

#[test]
fn session_cap_evicts_the_least_recently_used_and_counts() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let cfg = ReflectorConfig {
        stateful: true,
        max_sessions: 2,
        ..Default::default()
    };
    let mut r = Reflector::new(cfg, Registry::empty());
    let seq = |out: &(Outcome, Vec<u8>)| {
        assert!(matches!(out.0, Outcome::Reply { .. }), "{:?}", out.0);
        ReflectorPacket::new_checked(&out.1[..], AuthMode::Open)
            .unwrap()
            .sequence_number()
    };
    // SSIDs 1 and 2, then 1 again: 2 is the least recently used.
    assert_eq!(
        seq(&reflect(
            &mut r,
            &request_open(0, 1, &[]),
            &meta(44),
            &clock
        )),
        0
    );
    assert_eq!(
        seq(&reflect(
            &mut r,
            &request_open(0, 2, &[]),
            &meta(44),
            &clock
        )),
        0
    );
    assert_eq!(
        seq(&reflect(
            &mut r,
            &request_open(1, 1, &[]),
            &meta(44),
            &clock
        )),
        1
    );
    // A third session evicts SSID 2, not SSID 1; nothing is dropped.
    assert_eq!(
        seq(&reflect(
            &mut r,
            &request_open(0, 3, &[]),
            &meta(44),
            &clock
        )),
        0
    );
    assert_eq!(r.stats().sessions_evicted, 1);
    assert_eq!(r.stats().dropped_session_limit, 0);
    assert_eq!(r.sessions().len(), 2);
    assert_eq!(
        seq(&reflect(
            &mut r,
            &request_open(2, 1, &[]),
            &meta(44),
            &clock
        )),
        2
    );
    // SSID 2 comes back as a new session (numbered from 0), evicting 3.
    assert_eq!(
        seq(&reflect(
            &mut r,
            &request_open(1, 2, &[]),
            &meta(44),
            &clock
        )),
        0
    );
    assert_eq!(r.stats().sessions_evicted, 2);
    assert_eq!(r.stats().sessions_created, 4);
    assert_eq!(r.stats().reflected, r.stats().received);
}

#[test]
fn failed_authentication_creates_no_session_and_evicts_nothing() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let key = b"0123456789abcdef0123456789abcdef";
    let cfg = ReflectorConfig {
        mode: AuthMode::Authenticated,
        key: Some(HmacKey::new(key)),
        stateful: true,
        max_sessions: 1,
        ..Default::default()
    };
    let mut r = Reflector::new(cfg, Registry::empty());
    let mut good = vec![0u8; 112];
    good[3] = 1;
    let tag = HmacKey::new(key).tag(&[&good[..96]]);
    good[96..112].copy_from_slice(&tag);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let now = Instant::now();
    assert!(matches!(
        r.process(&good, &meta(112), now, &clock, &mut buf),
        Outcome::Reply { .. }
    ));
    let before = r.sessions().iter().map(|(k, _)| k).collect::<Vec<_>>();
    // Thousands of forged requests from new source ports and SSIDs.
    for i in 0..5000u32 {
        let mut bad = good.clone();
        bad[0..4].copy_from_slice(&i.to_be_bytes());
        bad[26..28].copy_from_slice(&(i as u16).to_be_bytes());
        let mut m = meta(112);
        m.src.set_port(1024 + (i % 60000) as u16);
        assert_eq!(
            r.process(&bad, &m, now, &clock, &mut buf),
            Outcome::Drop(DropReason::AuthFailed)
        );
    }
    assert_eq!(r.stats().dropped_auth_failed, 5000);
    assert_eq!(r.stats().sessions_created, 1);
    assert_eq!(r.stats().sessions_evicted, 0);
    let after = r.sessions().iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(before, after);
}

#[test]
fn idle_sessions_expire_and_restart_at_zero() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let cfg = ReflectorConfig {
        stateful: true,
        session_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let mut r = Reflector::new(cfg, Registry::empty());
    let now = Instant::now();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    r.process(&request_open(0, 1, &[]), &meta(44), now, &clock, &mut buf);
    r.process(&request_open(1, 1, &[]), &meta(44), now, &clock, &mut buf);
    assert_eq!(r.expire_sessions(now + Duration::from_secs(2)), 1);
    r.process(
        &request_open(2, 1, &[]),
        &meta(44),
        now + Duration::from_secs(2),
        &clock,
        &mut buf,
    );
    assert_eq!(
        ReflectorPacket::new_checked(&buf[..44], AuthMode::Open)
            .unwrap()
            .sequence_number(),
        0
    );
}

#[test]
fn twamp_light_41_octets_gets_a_44_octet_reply() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let mut r = Reflector::new(ReflectorConfig::default(), Registry::empty());
    let req = request_open(3, 0, &[]);
    let (out, rep) = reflect(&mut r, &req[..41], &meta(41), &clock);
    assert!(matches!(out, Outcome::Reply { len: 44, .. }));
    assert_eq!(
        ReflectorPacket::new_checked(&rep[..], AuthMode::Open)
            .unwrap()
            .sender_sequence_number(),
        3
    );
}

#[test]
fn zero_padded_request_is_reflected_untouched_at_full_length() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let mut r = Reflector::new(ReflectorConfig::default(), Registry::empty());
    let req = request_open(3, 0, &[0u8; 1456]);
    let (out, rep) = reflect(&mut r, &req, &meta(1500), &clock);
    assert!(matches!(out, Outcome::Reply { len: 1500, .. }));
    assert!(
        rep[44..].iter().all(|&b| b == 0),
        "padding must not be flagged as TLVs"
    );
}

#[test]
fn too_short_requests_are_dropped_and_counted() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let mut r = Reflector::new(ReflectorConfig::default(), Registry::empty());
    assert_eq!(
        reflect(&mut r, &[1, 2, 3], &meta(3), &clock).0,
        Outcome::Drop(DropReason::Truncated)
    );
    assert_eq!(
        reflect(&mut r, &[], &meta(0), &clock).0,
        Outcome::Drop(DropReason::Truncated)
    );
    assert_eq!(r.stats().dropped_truncated, 2);
}

#[test]
fn unknown_tlvs_get_u_and_keep_their_bytes() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let mut r = Reflector::new(ReflectorConfig::default(), Registry::empty());
    let tail = [0x80, 200, 0, 4, 1, 2, 3, 4, 0x80, 201, 0, 0];
    let (_, rep) = reflect(&mut r, &request_open(1, 0, &tail), &meta(56), &clock);
    assert_eq!(&rep[44..], &[0x80, 200, 0, 4, 1, 2, 3, 4, 0x80, 201, 0, 0]);
    assert_eq!(r.stats().tlv_unrecognized, 2);
}

#[test]
fn overrunning_tlv_gets_m_and_the_rest_is_copied() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let mut r = Reflector::new(ReflectorConfig::default(), Registry::empty());
    let tail = [0x80, 200, 0, 0, 0x80, 201, 0, 9, 0xAA, 0xBB];
    let (_, rep) = reflect(&mut r, &request_open(1, 0, &tail), &meta(54), &clock);
    assert_eq!(&rep[44..], &[0x80, 200, 0, 0, 0x40, 201, 0, 9, 0xAA, 0xBB]);
    assert_eq!(r.stats().tlv_malformed, 1);
}

#[test]
fn ignore_mode_strips_tlvs_and_keeps_length() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let cfg = ReflectorConfig {
        tlv_mode: TlvMode::Ignore,
        ..Default::default()
    };
    let mut r = Reflector::new(cfg, Registry::empty());
    let (out, rep) = reflect(
        &mut r,
        &request_open(1, 0, &[0x80, 200, 0, 4, 1, 2, 3, 4]),
        &meta(52),
        &clock,
    );
    assert!(matches!(out, Outcome::Reply { len: 52, .. }));
    assert!(rep[44..].iter().all(|&b| b == 0));
}

struct Marker;
impl TlvHandler for Marker {
    fn tlv_type(&self) -> TlvType {
        TlvType(250)
    }
    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        if slot.value().len() != 4 {
            return TlvVerdict::Malformed;
        }
        slot.value_mut()
            .copy_from_slice(&ctx.reply_seq.to_be_bytes());
        ctx.plan.tos = Some(0x28);
        TlvVerdict::Processed
    }
}

fn marker_registry() -> Registry {
    let mut reg = Registry::empty();
    reg.insert("marker", "Marker", "test", "test", 250, Box::new(Marker))
        .unwrap();
    reg
}

#[test]
fn known_tlvs_are_handled_and_flags_cleared() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let mut r = Reflector::new(ReflectorConfig::default(), marker_registry());
    let (out, rep) = reflect(
        &mut r,
        &request_open(9, 0, &[0x80, 250, 0, 4, 0, 0, 0, 0]),
        &meta(52),
        &clock,
    );
    let Outcome::Reply { plan, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(plan.tos, Some(0x28));
    assert_eq!(&rep[44..], &[0x00, 250, 0, 4, 0, 0, 0, 9]);
}

#[test]
fn handler_malformed_verdict_stops_processing() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let mut r = Reflector::new(ReflectorConfig::default(), marker_registry());
    let tail = [0x80, 250, 0, 2, 0, 0, 0x80, 250, 0, 4, 0, 0, 0, 0];
    let (_, rep) = reflect(&mut r, &request_open(9, 0, &tail), &meta(58), &clock);
    assert_eq!(
        &rep[44..],
        &[0x40, 250, 0, 2, 0, 0, 0x80, 250, 0, 4, 0, 0, 0, 0]
    );
}

fn key() -> HmacKey {
    HmacKey::new(b"0123456789abcdef0123456789abcdef")
}

#[test]
fn authenticated_round_trip_and_wrong_key_dropped() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let scfg = SenderConfig {
        mode: AuthMode::Authenticated,
        key: Some(key()),
        ssid: 5,
        ..Default::default()
    };
    let mut s = SenderSession::new(scfg, Registry::empty(), vec![]).unwrap();
    let mut req = vec![0u8; MAX_DATAGRAM];
    let n = s.build_request(&mut req, Instant::now(), &clock);
    assert_eq!(n, 112);

    let rcfg = ReflectorConfig {
        mode: AuthMode::Authenticated,
        key: Some(key()),
        ..Default::default()
    };
    let mut r = Reflector::new(rcfg, Registry::empty());
    clock.advance(1_000_000);
    let (out, rep) = reflect(&mut r, &req[..n], &meta(n), &clock);
    assert!(matches!(out, Outcome::Reply { len: 112, .. }));
    clock.advance(1_000_000);
    let ev = s.on_reply(
        &rep,
        &meta(112),
        clock.now(),
        TimestampSource::UserSpace,
        clock.error_estimate(),
    );
    let ReplyEvent::Matched(rec) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(rec.ssid, 5);
    assert_eq!(rec.rtt_ns, 2_000_000);

    let wrong = ReflectorConfig {
        mode: AuthMode::Authenticated,
        key: Some(HmacKey::new(&[9u8; 32])),
        ..Default::default()
    };
    let mut r2 = Reflector::new(wrong, Registry::empty());
    assert_eq!(
        reflect(&mut r2, &req[..n], &meta(n), &clock).0,
        Outcome::Drop(DropReason::AuthFailed)
    );
    assert_eq!(r2.stats().dropped_auth_failed, 1);
    assert_eq!(r2.stats().sessions_created, 0);
}

#[test]
fn hmac_tlv_verified_and_recomputed_and_failure_sets_i() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let tpl = vec![TlvTemplate {
        tlv_type: TlvType(250),
        value: vec![0; 4],
    }];
    let scfg = SenderConfig {
        key: Some(key()),
        tlv_hmac: true,
        ..Default::default()
    };
    let mut s = SenderSession::new(scfg, marker_registry(), tpl).unwrap();
    let mut req = vec![0u8; MAX_DATAGRAM];
    let n = s.build_request(&mut req, Instant::now(), &clock);
    assert_eq!(n, 44 + 8 + 20);

    let rcfg = ReflectorConfig {
        key: Some(key()),
        verify_tlv_hmac: true,
        stateful: true,
        ..Default::default()
    };
    let mut r = Reflector::new(rcfg, marker_registry());
    let (_, rep) = reflect(&mut r, &req[..n], &meta(n), &clock);
    assert_eq!(rep[44], 0, "marker processed");
    assert_eq!(rep[52], 0, "HMAC TLV accepted");
    let ev = s.on_reply(
        &rep,
        &meta(n),
        clock.now(),
        TimestampSource::UserSpace,
        clock.error_estimate(),
    );
    let ReplyEvent::Matched(rec) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(
        rec.tlv_error, None,
        "reply HMAC TLV verifies over the reply's own seq"
    );

    // flip a bit in the protected TLV: I on every TLV, nothing processed
    let mut bad = req[..n].to_vec();
    bad[48] ^= 1;
    let (_, rep) = reflect(&mut r, &bad, &meta(n), &clock);
    assert_eq!(rep[44], 0x20);
    assert_eq!(rep[52], 0x20);
    assert_eq!(&rep[48..52], &bad[48..52], "value left as received");
    assert_eq!(r.stats().tlv_integrity_failed, 1);
}

#[test]
fn hmac_tlv_not_last_is_an_integrity_failure() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let rcfg = ReflectorConfig {
        key: Some(key()),
        verify_tlv_hmac: true,
        ..Default::default()
    };
    let mut r = Reflector::new(rcfg, marker_registry());
    let mut tail = vec![0x80, 8, 0, 16];
    tail.extend_from_slice(&[0u8; 16]);
    tail.extend_from_slice(&[0x80, 250, 0, 4, 0, 0, 0, 0]);
    let (_, rep) = reflect(&mut r, &request_open(1, 0, &tail), &meta(72), &clock);
    assert_eq!(rep[44], 0x20);
    assert_eq!(rep[64], 0x20);
}

#[test]
fn sender_computes_rtt_without_residence_time_and_counts_loss() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let refl_clock = ManualClock::new(UnixNanos(T0 + 5_000_000_000), TimestampFormat::Ptp);
    let cfg = SenderConfig {
        timeout: Duration::from_millis(100),
        ..Default::default()
    };
    let mut s = SenderSession::new(cfg, Registry::empty(), vec![]).unwrap();
    let mut r = Reflector::new(
        ReflectorConfig {
            stateful: true,
            ..Default::default()
        },
        Registry::empty(),
    );
    let start = Instant::now();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    for i in 0..10u32 {
        let n = s.build_request(&mut buf, start, &clock);
        clock.advance(3_000_000);
        if i == 4 {
            continue; // lost forward
        }
        let mut m = meta(n);
        m.rx_time = Some((refl_clock.now(), TimestampSource::Kernel));
        refl_clock.advance(7_000_000); // residence, taken off the RTT
        clock.advance(7_000_000);
        let (_, rep) = reflect(&mut r, &buf[..n], &m, &refl_clock);
        clock.advance(2_000_000);
        if i == 7 {
            continue; // lost backward
        }
        let ev = s.on_reply(
            &rep,
            &meta(rep.len()),
            clock.now(),
            TimestampSource::Kernel,
            clock.error_estimate(),
        );
        let ReplyEvent::Matched(rec) = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(
            rec.rtt_ns, 5_000_000,
            "(T4-T1)-(T3-T2) across NTP and PTP clocks"
        );
        assert_eq!(rec.residence_ns, 7_000_000);
        assert_eq!(
            rec.forward_ns, None,
            "clocks not synchronized: no one-way delay"
        );
    }
    assert_eq!(s.expire(start + Duration::from_secs(1)), vec![4, 7]);
    let st = s.stats();
    assert_eq!((st.sent, st.received, st.lost), (10, 8, 2));
    let dl = st.directional_loss().unwrap();
    assert_eq!((dl.forward, dl.backward), (1, 1));
}

#[test]
fn duplicate_and_unknown_replies_are_classified() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let mut s = SenderSession::new(
        SenderConfig {
            ssid: 3,
            ..Default::default()
        },
        Registry::empty(),
        vec![],
    )
    .unwrap();
    let mut r = Reflector::new(ReflectorConfig::default(), Registry::empty());
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let n = s.build_request(&mut buf, Instant::now(), &clock);
    let (_, rep) = reflect(&mut r, &buf[..n], &meta(n), &clock);
    let est = clock.error_estimate();
    assert!(matches!(
        s.on_reply(&rep, &meta(n), clock.now(), TimestampSource::UserSpace, est),
        ReplyEvent::Matched(_)
    ));
    assert_eq!(
        s.on_reply(&rep, &meta(n), clock.now(), TimestampSource::UserSpace, est),
        ReplyEvent::Duplicate(0)
    );
    let mut other = rep.clone();
    other[24..28].copy_from_slice(&99u32.to_be_bytes());
    assert!(matches!(
        s.on_reply(
            &other,
            &meta(n),
            clock.now(),
            TimestampSource::UserSpace,
            est
        ),
        ReplyEvent::Rejected(_)
    ));
    let mut wrong_ssid = rep.clone();
    wrong_ssid[14..16].copy_from_slice(&4u16.to_be_bytes());
    assert!(matches!(
        s.on_reply(
            &wrong_ssid,
            &meta(n),
            clock.now(),
            TimestampSource::UserSpace,
            est
        ),
        ReplyEvent::Rejected(_)
    ));
    assert!(matches!(
        s.on_reply(
            &rep[..20],
            &meta(20),
            clock.now(),
            TimestampSource::UserSpace,
            est
        ),
        ReplyEvent::Rejected(_)
    ));
    assert_eq!(s.stats().duplicates, 1);
    assert_eq!(s.stats().rejected_total(), 3);
}

#[test]
fn sender_counts_a_reflected_train_and_tells_it_from_duplicates() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    // Reflected Test Packet Control: length 0, number 3, interval 1 ms
    let rtpc = TlvTemplate {
        tlv_type: TlvType(12),
        value: vec![0, 0, 0, 3, 0, 0x0F, 0x42, 0x40],
    };
    let mut s = SenderSession::new(SenderConfig::default(), Registry::empty(), vec![rtpc]).unwrap();
    let mut r = Reflector::new(ReflectorConfig::default(), Registry::empty());
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let n = s.build_request(&mut buf, Instant::now(), &clock);
    let (_, first) = reflect(&mut r, &buf[..n], &meta(n), &clock);
    let copy = |k: u64| {
        let mut c = first.clone();
        let t3 = u64::from_be_bytes(c[4..12].try_into().unwrap()) + k * 4_294_967; // + k ms
        c[4..12].copy_from_slice(&t3.to_be_bytes());
        c
    };
    // The replies arrive after the last T3 (a reply before its own T3
    // would be rejected as implausible).
    clock.advance(10_000_000);
    let est = clock.error_estimate();
    let mut on = |b: &[u8]| s.on_reply(b, &meta(n), clock.now(), TimestampSource::UserSpace, est);
    assert!(matches!(on(&first), ReplyEvent::Matched(_)));
    assert!(matches!(on(&copy(1)), ReplyEvent::TrainReply(_)));
    assert_eq!(
        on(&copy(1)),
        ReplyEvent::Duplicate(0),
        "same T3 again is a network duplicate"
    );
    assert!(matches!(on(&copy(2)), ReplyEvent::TrainReply(_)));
    assert_eq!(
        on(&copy(3)),
        ReplyEvent::Duplicate(0),
        "more replies than asked for"
    );
    let st = s.stats();
    assert_eq!(
        (
            st.train_len,
            st.train_replies,
            st.train_expected,
            st.duplicates
        ),
        (3, 2, 2, 2)
    );
    assert_eq!(st.received, 1, "a train answers one test packet");
}
