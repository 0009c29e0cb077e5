//! Property tests of the sans-I/O reflector and sender over arbitrary and
//! mutated input. They run on the stable toolchain in CI and cover the same
//! ground as the `reflector_step` and `sender_reply` fuzz targets under
//! `tests/fuzz` (which add the linked plugin handlers).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use stamp_core::clock::{Clock, ManualClock, TimestampSource, UnixNanos};
use stamp_core::handler::{ReflectContext, TlvHandler, TlvSlot, TlvVerdict};
use stamp_core::hmac::HmacKey;
use stamp_core::reflector::{DropReason, Outcome, Reflector, ReflectorConfig, TlvMode};
use stamp_core::registry::Registry;
use stamp_core::sender::{ReplyEvent, SenderConfig, SenderSession};
use stamp_core::transport::RecvMeta;
use stamp_core::TlvTemplate;
use stamp_wire::{
    AuthMode, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr, TimestampFormat, TlvType,
    HMAC_COVERAGE, MAX_DATAGRAM,
};

const T0: u64 = 1_763_800_000_000_000_000;
const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

/// Writes the reply's Sequence Number into a 4-octet Value; anything else
/// is malformed.
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
        TlvVerdict::Processed
    }
}

/// Scribbles over its whole Value and, by its first octet, discards,
/// refuses or conforms: a handler with every verdict.
struct Scribbler;
impl TlvHandler for Scribbler {
    fn tlv_type(&self) -> TlvType {
        TlvType(251)
    }
    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        let first = slot.value().first().copied().unwrap_or(0);
        slot.value_mut().fill(0xEE);
        ctx.plan.tos = Some(first);
        if first == 0xDD {
            return TlvVerdict::Discard;
        }
        match first % 4 {
            0 => TlvVerdict::Processed,
            1 => TlvVerdict::Conformance,
            2 => TlvVerdict::Unrecognized,
            _ => TlvVerdict::Malformed,
        }
    }
}

/// Asks for a longer reply (asymmetrical packets style): the plan's
/// reply_len grows by the first Value octet.
struct Grower;
impl TlvHandler for Grower {
    fn tlv_type(&self) -> TlvType {
        TlvType(252)
    }
    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        let extra = slot.value().first().copied().unwrap_or(0) as usize;
        ctx.plan.reply_len = ctx.meta.len.max(44) + extra;
        TlvVerdict::Processed
    }
}

fn registry(grow: bool) -> Registry {
    let mut reg = Registry::empty();
    reg.insert("marker", "Marker", "test", "test", 250, Box::new(Marker))
        .unwrap();
    reg.insert(
        "scribbler",
        "Scribbler",
        "test",
        "test",
        251,
        Box::new(Scribbler),
    )
    .unwrap();
    if grow {
        reg.insert("grower", "Grower", "test", "test", 252, Box::new(Grower))
            .unwrap();
    }
    reg
}

fn meta(len: usize, ttl: Option<u8>) -> RecvMeta {
    let mut m = RecvMeta::new(len, SocketAddr::from(([192, 0, 2, 1], 40000)));
    m.dst = Some([198, 51, 100, 7].into());
    m.dst_port = 862;
    m.ttl = ttl;
    m
}

fn mode() -> impl Strategy<Value = AuthMode> {
    prop_oneof![Just(AuthMode::Open), Just(AuthMode::Authenticated)]
}

/// Request bytes that often look like STAMP: a zeroed or random base, then
/// TLV-ish octets with codes the test handlers own.
fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2000),
        (
            0usize..130,
            proptest::collection::vec(
                (
                    prop_oneof![Just(0x80u8), any::<u8>()],
                    prop_oneof![
                        Just(1u8),
                        Just(8),
                        Just(250),
                        Just(251),
                        Just(252),
                        any::<u8>()
                    ],
                    proptest::collection::vec(any::<u8>(), 0..24),
                    any::<bool>(),
                ),
                0..8
            ),
            proptest::collection::vec(any::<u8>(), 0..130),
        )
            .prop_map(|(base, tlvs, head)| {
                let mut v = head;
                v.resize(base, 0);
                for (f, t, val, lie) in tlvs {
                    let len = if lie {
                        val.len() as u16 + 3
                    } else {
                        val.len() as u16
                    };
                    v.extend_from_slice(&[f, t]);
                    v.extend_from_slice(&len.to_be_bytes());
                    v.extend_from_slice(&val);
                }
                v.truncate(2000);
                v
            }),
    ]
}

struct Step {
    out: Outcome,
    reply: Vec<u8>,
}

fn step(r: &mut Reflector, req: &[u8], m: &RecvMeta, clock: &ManualClock) -> Step {
    let mut buf = vec![0x77u8; MAX_DATAGRAM];
    let out = r.process(req, m, Instant::now(), clock, &mut buf);
    let len = match out {
        Outcome::Reply { len, .. } => len,
        Outcome::Drop(_) => 0,
    };
    buf.truncate(len);
    Step { out, reply: buf }
}

/// The request as the reflector reads it: zero-extended to the base length.
fn request_repr(req: &[u8], mode: AuthMode) -> SenderRepr {
    let mut b = req.to_vec();
    if b.len() < mode.base_len() {
        b.resize(mode.base_len(), 0);
    }
    SenderRepr::parse(&SenderPacket::new_checked(&b[..], mode).unwrap())
}

fn check_reply(
    mode: AuthMode,
    req: &[u8],
    s: &Step,
    ttl: Option<u8>,
    may_grow: bool,
) -> Result<(), TestCaseError> {
    let base = mode.base_len();
    let Outcome::Reply { len, plan } = s.out else {
        return Ok(());
    };
    let sym = req.len().max(base);
    if may_grow {
        prop_assert!(
            len == sym || len == plan.reply_len,
            "len {} plan {:?}",
            len,
            plan
        );
        prop_assert!(len <= sym + 255);
    } else {
        prop_assert_eq!(len, sym, "reply longer than max(request, base)");
    }
    prop_assert_eq!(plan.reply_len, len);
    prop_assert_eq!(plan.dst, SocketAddr::from(([192, 0, 2, 1], 40000)));
    let p = ReflectorPacket::new_checked(&s.reply[..], mode).unwrap();
    prop_assert!(p.mbz_is_zero(), "MBZ not zero: {:02x?}", &s.reply[..base]);
    let q = request_repr(req, mode);
    let x = ReflectorRepr::parse(&p);
    prop_assert_eq!(x.sender_sequence_number, q.sequence_number);
    prop_assert_eq!(x.sender_timestamp, q.timestamp);
    prop_assert_eq!(x.sender_error_estimate, q.error_estimate);
    prop_assert_eq!(x.ssid, q.ssid);
    prop_assert_eq!(x.sender_ttl, ttl.unwrap_or(255));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Open mode, any request bytes: never a panic; a reply is exactly
    /// max(request, 44) octets, has zero MBZ and echoes the sender fields;
    /// every request is counted once, as reflected or under a drop reason.
    #[test]
    fn open_reflector_on_arbitrary_requests(
        reqs in proptest::collection::vec(request_bytes(), 1..6),
        stateful in any::<bool>(),
        ignore in any::<bool>(),
        verify_tlv_hmac in any::<bool>(),
        ttl in proptest::option::of(any::<u8>()),
    ) {
        let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
        let cfg = ReflectorConfig {
            stateful,
            tlv_mode: if ignore { TlvMode::Ignore } else { TlvMode::Echo },
            verify_tlv_hmac,
            key: verify_tlv_hmac.then(|| HmacKey::new(KEY)),
            max_sessions: 4,
            ..Default::default()
        };
        let mut r = Reflector::new(cfg, registry(false));
        for req in &reqs {
            let s = step(&mut r, req, &meta(req.len(), ttl), &clock);
            if req.len() < 14 {
                prop_assert_eq!(s.out, Outcome::Drop(DropReason::Truncated));
            }
            if let Outcome::Drop(d) = s.out {
                let allowed = matches!(d, DropReason::Truncated | DropReason::TlvDiscard)
                    || (stateful && d == DropReason::SessionLimit);
                prop_assert!(allowed, "{:?}", d);
            }
            check_reply(AuthMode::Open, req, &s, ttl, false)?;
            clock.advance(1_000);
        }
        let st = r.stats();
        let dropped: u64 = DropReason::ALL.iter().map(|d| st.dropped(*d)).sum();
        prop_assert_eq!(st.received, reqs.len() as u64);
        prop_assert_eq!(st.reflected + dropped, st.received);
    }

    /// With a handler that asks for longer replies, a reply grows only to
    /// the length the plan asked for (bounded), never otherwise.
    #[test]
    fn reply_grows_only_when_the_plan_says_so(req in request_bytes()) {
        let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
        let mut r = Reflector::new(ReflectorConfig::default(), registry(true));
        let s = step(&mut r, &req, &meta(req.len(), Some(64)), &clock);
        check_reply(AuthMode::Open, &req, &s, Some(64), true)?;
    }

    /// Authenticated mode, any request bytes: random bytes fail the base
    /// HMAC, are counted as auth_failed and create no session state.
    #[test]
    fn authenticated_reflector_on_arbitrary_requests(
        req in request_bytes(),
        stateful in any::<bool>(),
    ) {
        let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
        let cfg = ReflectorConfig {
            mode: AuthMode::Authenticated,
            key: Some(HmacKey::new(KEY)),
            stateful,
            ..Default::default()
        };
        let mut r = Reflector::new(cfg, registry(false));
        let s = step(&mut r, &req, &meta(req.len(), None), &clock);
        let expect = if req.len() < 112 { DropReason::Truncated } else { DropReason::AuthFailed };
        prop_assert_eq!(s.out, Outcome::Drop(expect));
        prop_assert_eq!(r.stats().sessions_created, 0);
        prop_assert_eq!(r.sessions().len(), 0);
    }

    /// Authenticated mode: a request built by SenderSession passes the base
    /// HMAC; whatever is then done to its TLV octets (which the base HMAC
    /// does not cover), the reply's base HMAC verifies with the same key, its
    /// base is well formed, and the sender accepts it.
    #[test]
    fn reply_to_authenticated_request_verifies_with_the_key(
        mode in mode(),
        seq in any::<u32>(),
        ssid in any::<u16>(),
        mutations in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..12),
        extra in proptest::collection::vec(any::<u8>(), 0..20),
        cut in 0usize..40,
        stateful in any::<bool>(),
    ) {
        let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
        let scfg = SenderConfig {
            mode,
            ssid,
            key: Some(HmacKey::new(KEY)),
            tlv_hmac: true,
            first_seq: seq,
            timeout: Duration::from_secs(5),
            ..Default::default()
        };
        let templates = vec![
            TlvTemplate { tlv_type: TlvType(250), value: vec![0; 4] },
            TlvTemplate { tlv_type: TlvType(251), value: vec![0x10; 6] },
            TlvTemplate { tlv_type: TlvType::EXTRA_PADDING, value: vec![0; 8] },
        ];
        let mut s = SenderSession::new(scfg, registry(false), templates).unwrap();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let n = s.build_request(&mut buf, Instant::now(), &clock);
        let mut req = buf[..n].to_vec();
        let base = mode.base_len();
        // Mutate the TLV area only (and optionally shorten / lengthen it).
        let area = req.len() - base;
        for (i, b) in &mutations {
            req[base + i % area] = *b;
        }
        req.truncate(req.len() - cut.min(area));
        req.extend_from_slice(&extra);

        let rcfg = ReflectorConfig {
            mode,
            key: Some(HmacKey::new(KEY)),
            stateful,
            verify_tlv_hmac: true,
            ..Default::default()
        };
        let mut r = Reflector::new(rcfg, registry(false));
        clock.advance(1_000_000);
        let st = step(&mut r, &req, &meta(req.len(), Some(60)), &clock);
        match st.out {
            Outcome::Reply { .. } => {}
            Outcome::Drop(DropReason::TlvDiscard) => return Ok(()),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
        check_reply(mode, &req, &st, Some(60), false)?;
        if mode == AuthMode::Authenticated {
            let key = HmacKey::new(KEY);
            prop_assert!(key.verify(&[&st.reply[..HMAC_COVERAGE]], &st.reply[96..112]));
        }
        clock.advance(1_000_000);
        let ev = s.on_reply(&st.reply, &meta(st.reply.len(), Some(60)), clock.now(),
            TimestampSource::UserSpace, clock.error_estimate());
        prop_assert!(matches!(ev, ReplyEvent::Matched(_)), "{:?}", ev);
        prop_assert_eq!(s.stats().received, 1);
    }

    /// The sender on arbitrary bytes (and on a real reply with mutations):
    /// never a panic; a rejected or duplicate datagram changes neither the
    /// received count nor the RTT statistics; only a Matched event does.
    #[test]
    fn sender_on_reply_never_skews_statistics(
        mode in mode(),
        inputs in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300).prop_map(|v| (None, v)),
                (any::<usize>(), proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4))
                    .prop_map(|(k, m)| (Some((k, m)), Vec::new())),
            ],
            1..10,
        ),
    ) {
        let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
        let key = (mode == AuthMode::Authenticated).then(|| HmacKey::new(KEY));
        let scfg = SenderConfig { mode, ssid: 9, key: key.clone(), ..Default::default() };
        let mut s = SenderSession::new(scfg, registry(false), vec![]).unwrap();
        s.set_remote(SocketAddr::from(([192, 0, 2, 1], 40000)));
        let rcfg = ReflectorConfig { mode, key, ..Default::default() };
        let mut r = Reflector::new(rcfg, Registry::empty());
        // Three genuine replies to choose from.
        let mut replies = Vec::new();
        for _ in 0..3 {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            let n = s.build_request(&mut buf, Instant::now(), &clock);
            let st = step(&mut r, &buf[..n], &meta(n, Some(64)), &clock);
            replies.push(st.reply);
        }
        for (mutate, bytes) in inputs {
            let input = match mutate {
                None => bytes,
                Some((k, muts)) => {
                    let mut v = replies[k % replies.len()].clone();
                    for (i, b) in muts {
                        let at = i % v.len();
                        v[at] = b;
                    }
                    v
                }
            };
            let before = (s.stats().received, s.stats().rtt.count(), s.stats().residence.count());
            let rejected_before = s.stats().rejected_total();
            clock.advance(1_000);
            let ev = s.on_reply(&input, &meta(input.len(), Some(64)), clock.now(),
                TimestampSource::UserSpace, clock.error_estimate());
            let after = (s.stats().received, s.stats().rtt.count(), s.stats().residence.count());
            match ev {
                ReplyEvent::Matched(_) => {
                    prop_assert_eq!(after, (before.0 + 1, before.1 + 1, before.2 + 1));
                }
                ReplyEvent::Rejected(_) => {
                    prop_assert_eq!(after, before);
                    prop_assert_eq!(s.stats().rejected_total(), rejected_before + 1);
                }
                ReplyEvent::Duplicate(_) | ReplyEvent::TrainReply(_) => {
                    prop_assert_eq!(after, before);
                }
            }
            prop_assert!(s.stats().received <= s.stats().sent);
        }
        // Datagrams from anyone else are always rejected.
        let stranger = RecvMeta::new(replies[0].len(), SocketAddr::from(([203, 0, 113, 9], 862)));
        let ev = s.on_reply(&replies[0], &stranger, clock.now(), TimestampSource::UserSpace,
            clock.error_estimate());
        prop_assert!(matches!(ev, ReplyEvent::Rejected(_)));
    }
}
