//! The requests of teaparty-asym-ber.pcap (cerfcast/teaparty, an
//! independent Rust implementation) replayed through OUR reflector in
//! process, with the asymmetrical-packets (Type 12), BER and RFC 8972
//! handlers linked, and every reply checked field by field against the
//! drafts and against teaparty's own replies.
//!
//! The capture holds two exchanges:
//! * frame 0: a 56-octet request with one Reflected Test Packet Control TLV
//!   (type 12, the 8-octet Value of draft -13 / teaparty: Length 200,
//!   Number 3, Interval 1 s), answered by teaparty with FOUR 204-octet
//!   packets (frames 1-4);
//! * frame 5: an 88-octet request with a Bit Error Count TLV at teaparty's
//!   experimental code 241 and a 32-octet Extra Padding TLV of zeros (no
//!   Bit Pattern TLV), answered by teaparty with count 0 (frame 6).
//!
//! The reflector only fills the reply plan; sending `plan.copies` replies
//! of `plan.reply_len` octets is the driver's job, reproduced here by
//! [`grow`] to compare octets with teaparty's replies.
//!
//! Needs the `asym`, `ber` and `rfc8972` features of `stamp-plugins`
//! (linked by `cargo test --workspace`, or `-p stamp-plugins` alongside).

use std::collections::BTreeMap;
use std::time::Instant;

use stamp_core::clock::{ManualClock, UnixNanos};
use stamp_core::reflector::{Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::{linked_plugins, PluginSettings, Registry};
use stamp_core::transport::RecvMeta;
use stamp_core::ReplyPlan;
use stamp_tests::{load_vectors, Datagram};
use stamp_wire::tlv::{emit_header, HEADER_LEN};
use stamp_wire::{
    AuthMode, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr, TimestampFormat, TlvFlags,
    TlvIter, TlvType, MAX_DATAGRAM,
};

// Without this the plugin crates are not linked and their inventory records
// vanish (DESIGN.md §3, linking pitfall).
use stamp_plugins as _;

const REFLECTOR_PORT: u16 = 8863;
const BASE: usize = 44;
const U: u8 = 0x80;
const C: u8 = 0x10;

/// The crates whose handlers this replay asserts on: Type 12, the BER
/// TLVs (240/241/242: the defaults, and 241 is teaparty's count code too),
/// and RFC 8972's Extra Padding (type 1), which carries the BER bits and
/// the grown replies.
const CRATES: [&str; 3] = ["stamp-tlv-asym", "stamp-tlv-ber", "stamp-tlv-rfc8972"];

fn registry(settings: &[(&str, &str)]) -> Registry {
    let mine: Vec<_> = linked_plugins()
        .into_iter()
        .filter(|p| CRATES.contains(&p.crate_name))
        .collect();
    for c in CRATES {
        assert!(
            mine.iter().any(|p| p.crate_name == c),
            "{c} is not linked: run with the asym, ber and rfc8972 features of stamp-plugins \
             (cargo test --workspace, or add -p stamp-plugins)"
        );
    }
    let mut s = PluginSettings::new();
    for (k, v) in settings {
        s.set(*k, *v);
    }
    Registry::from_plugins(mine, &s, &BTreeMap::new()).expect("registry")
}

/// A policy that allows trains of up to 4 replies of up to 1500 octets.
const ALLOW_4: [(&str, &str); 3] = [
    ("reflected-control-enabled", "true"),
    ("reflected-control-max-count", "4"),
    ("reflected-control-max-size", "1500"),
];

fn reflector(settings: &[(&str, &str)]) -> Reflector {
    Reflector::new(ReflectorConfig::default(), registry(settings))
}

fn split() -> (Vec<Datagram>, Vec<Datagram>) {
    load_vectors("teaparty-asym-ber.pcap")
        .into_iter()
        .partition(|d| d.dst.port() == REFLECTOR_PORT)
}

/// teaparty's replies to `req` (same client port, same Session-Sender
/// Sequence Number at octets 24..28).
fn their_replies<'a>(replies: &'a [Datagram], req: &Datagram) -> Vec<&'a Datagram> {
    replies
        .iter()
        .filter(|p| p.dst == req.src && p.payload[24..28] == req.payload[..4])
        .collect()
}

struct Replayed {
    len: usize,
    plan: ReplyPlan,
    reply: Vec<u8>,
}

fn replay(r: &mut Reflector, d: &Datagram) -> Replayed {
    let mut m = RecvMeta::new(d.payload.len(), d.src);
    m.dst = Some(d.dst.ip());
    m.dst_port = d.dst.port();
    m.ttl = Some(d.ttl);
    m.tos = Some(d.tos);
    let clock = ManualClock::new(UnixNanos(1_763_800_000_000_000_000), TimestampFormat::Ntp);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    match r.process(&d.payload, &m, Instant::now(), &clock, &mut buf) {
        Outcome::Reply { len, plan } => {
            buf.truncate(len);
            // The engine grows the reply to the plan's length itself (an
            // Extra Padding TLV appended at the end).
            assert_eq!(len, plan.reply_len);
            check_base(d, &buf[..d.payload.len().max(BASE)]);
            Replayed {
                len,
                plan,
                reply: buf,
            }
        }
        o => panic!("no reply: {o:?}"),
    }
}

/// Base fields of a reply (RFC 8762 §4.3, RFC 8972 §3), stateless.
fn check_base(req: &Datagram, rep: &[u8]) {
    assert_eq!(rep.len(), req.payload.len(), "symmetric size before growth");
    let q =
        SenderRepr::parse(&SenderPacket::new_checked(&req.payload[..], AuthMode::Open).unwrap());
    let p = ReflectorPacket::new_checked(rep, AuthMode::Open).unwrap();
    assert!(p.mbz_is_zero());
    let r = ReflectorRepr::parse(&p);
    assert_eq!(r.sequence_number, q.sequence_number);
    assert_eq!(r.sender_sequence_number, q.sequence_number);
    assert_eq!(r.sender_timestamp, q.timestamp);
    assert_eq!(r.sender_error_estimate, q.error_estimate);
    assert_eq!(r.ssid, q.ssid);
    assert_eq!(r.sender_ttl, req.ttl);
}

/// What the reflector driver does with `plan.reply_len`: append an Extra
/// Padding TLV (flags 0, type 1, zero Value) so the reply is exactly
/// `reply_len` octets.
fn grow(reply: &[u8], reply_len: usize) -> Vec<u8> {
    let mut out = reply.to_vec();
    if reply_len > reply.len() {
        let mut h = [0u8; HEADER_LEN];
        let pad = reply_len - reply.len() - HEADER_LEN;
        emit_header(&mut h, TlvFlags::NONE, TlvType::EXTRA_PADDING, pad as u16);
        out.extend_from_slice(&h);
        out.resize(reply_len, 0);
    }
    out
}

/// (flags, type, length, value) of each TLV after the base packet.
fn tlvs(pkt: &[u8]) -> Vec<(u8, u8, usize, Vec<u8>)> {
    TlvIter::new(&pkt[BASE..])
        .map(|t| {
            let t = t.expect("well-formed TLV area");
            (t.flags.0, t.tlv_type.0, t.value.len(), t.value.to_vec())
        })
        .collect()
}

/// teaparty's Type 12 Value: Length 200, Number 3, Interval 1 s (10^9 ns).
const RTPC_VALUE: [u8; 8] = [0x00, 0xC8, 0x00, 0x03, 0x3B, 0x9A, 0xCA, 0x00];

fn rtpc_request() -> (Datagram, Vec<Datagram>) {
    let (reqs, reps) = split();
    let req = reqs
        .iter()
        .find(|d| d.payload.get(BASE + 1) == Some(&12))
        .expect("Type 12 request")
        .clone();
    assert_eq!(req.payload.len(), 56);
    assert_eq!(tlvs(&req.payload), vec![(U, 12, 8, RTPC_VALUE.to_vec())]);
    (req, reps)
}

/// With 4 copies allowed the request is granted as asked: Number 3, so
/// three replies (not four: see the comparison below), 1 s apart, each of
/// the requested 200 octets (already a multiple of 4), C clear.
#[test]
fn type12_request_with_a_policy_of_4_copies_is_granted_as_asked() {
    let (req, _) = rtpc_request();
    let mut r = reflector(&ALLOW_4);
    let got = replay(&mut r, &req);
    assert_eq!(got.len, 200, "grown by the engine to the requested length");
    assert_eq!(
        (
            got.plan.copies,
            got.plan.copy_interval_ns,
            got.plan.reply_len
        ),
        (3, 1_000_000_000, 200)
    );
    assert!(!got.plan.suppress);
    assert_eq!(got.plan.dst, req.src);
    // Type 12 TLV: U cleared, C clear, Value as received (draft §3).
    assert_eq!(
        tlvs(&got.reply),
        vec![(0, 12, 8, RTPC_VALUE.to_vec()), (0, 1, 140, vec![0; 140])]
    );
    assert_eq!(r.stats().tlv_conformance, 0);
    assert_eq!(
        r.stats().tlv_malformed,
        0,
        "8-octet Value accepted (teaparty interop)"
    );
}

/// teaparty answered the same request with four 204-octet packets. Our
/// plan differs on purpose in two places, the rest agrees octet for octet
/// once the driver has grown the reply:
/// * count: the request's Number is 3 and the draft says to send exactly
///   Number replies; teaparty sent Number + 1;
/// * size: the draft's reply length is the requested Length rounded up to
///   a multiple of 4 (200); teaparty sized the Extra Padding Value to
///   200 − 56 = 144 and added its 4-octet header on top (204).
#[test]
fn type12_train_compared_with_teaparty() {
    let (req, reps) = rtpc_request();
    let theirs = their_replies(&reps, &req);
    assert_eq!(theirs.len(), 4, "teaparty sent Number + 1 packets");
    for t in &theirs {
        assert_eq!(t.payload.len(), 204);
        assert_eq!(
            tlvs(&t.payload),
            vec![(0, 12, 8, RTPC_VALUE.to_vec()), (0, 1, 144, vec![0; 144])]
        );
    }
    let mut r = reflector(&ALLOW_4);
    let got = replay(&mut r, &req);
    let ours = grow(&got.reply, got.plan.reply_len);
    assert_eq!(ours.len(), 200);
    let (o, t) = (tlvs(&ours), tlvs(&theirs[0].payload));
    assert_eq!(o[0], t[0], "Type 12 TLV identical: flags 0, Value echoed");
    assert_eq!(o[1], (0, 1, 140, vec![0; 140]), "our Extra Padding");
    assert_eq!((o[1].0, o[1].1), (t[1].0, t[1].1));
    assert_eq!(t[1].2 - o[1].2, 4, "teaparty's 4 extra octets");
    assert_eq!(u32::from(got.plan.copies) + 1, theirs.len() as u32);
}

/// A tighter policy: 2 copies at most. Clamped to 2, C set.
#[test]
fn type12_request_beyond_a_policy_of_2_copies_is_clamped_with_c() {
    let (req, _) = rtpc_request();
    let mut r = reflector(&[
        ("reflected-control-enabled", "true"),
        ("reflected-control-max-count", "2"),
        ("reflected-control-max-size", "128"),
    ]);
    let got = replay(&mut r, &req);
    assert_eq!(
        (
            got.plan.copies,
            got.plan.copy_interval_ns,
            got.plan.reply_len
        ),
        (2, 1_000_000_000, 128)
    );
    assert_eq!(
        tlvs(&got.reply),
        vec![(C, 12, 8, RTPC_VALUE.to_vec()), (0, 1, 68, vec![0; 68])],
        "clamped to 128 octets: grown by a 72-octet Extra Padding TLV"
    );
    assert_eq!(r.stats().tlv_conformance, 1);
}

/// The default policy (Type 12 disabled, draft §3 "disabled by default";
/// and even when enabled, at most one reply no larger than the request):
/// a single reply of the request's size, C set, nothing amplified.
#[test]
fn type12_request_with_the_default_policy_gets_one_reply_with_c() {
    let (req, _) = rtpc_request();
    for settings in [&[][..], &[("reflected-control-enabled", "true")][..]] {
        let mut r = reflector(settings);
        let got = replay(&mut r, &req);
        assert_eq!(
            (got.plan.copies, got.plan.reply_len, got.plan.suppress),
            (1, 56, false),
            "{settings:?}"
        );
        assert_eq!(got.len, 56);
        assert_eq!(tlvs(&got.reply), vec![(C, 12, 8, RTPC_VALUE.to_vec())]);
        assert_eq!(grow(&got.reply, got.plan.reply_len), got.reply);
    }
}

fn ber_request() -> (Datagram, Vec<Datagram>) {
    let (reqs, reps) = split();
    let req = reqs
        .iter()
        .find(|d| d.payload.get(BASE + 1) == Some(&241))
        .expect("BER request")
        .clone();
    assert_eq!(req.payload.len(), 88);
    assert_eq!(
        tlvs(&req.payload),
        vec![(U, 241, 4, vec![0; 4]), (U, 1, 32, vec![0; 32])],
        "count TLV at 241, 32 octets of zero padding, no Bit Pattern TLV"
    );
    (req, reps)
}

/// The default pattern FF00 repeated 16 times, what our sender puts in
/// the padding.
fn ff00() -> Vec<u8> {
    [0xFF, 0x00].repeat(16)
}

/// Our BER handlers on teaparty's request. No Bit Pattern TLV, so the
/// draft's default pattern 0xFF00 applies (WIRE.md §7.15); teaparty's
/// sender filled the padding with zeros, so half of its octets (the 0xFF
/// positions) differ in all 8 bits: 16 × 8 = 128 bit errors. The padding is
/// repaired (rewritten with the pattern) for the reverse path. Flags: U
/// cleared on both, no C (one padding, no duplicate, 32 a multiple of 2).
/// teaparty reported 0 and echoed the zeros: it compares against zeros
/// when no pattern is given.
#[test]
fn ber_request_field_by_field_and_compared_with_teaparty() {
    let (req, reps) = ber_request();
    for settings in [&[][..], &ALLOW_4[..]] {
        let mut r = reflector(settings);
        let got = replay(&mut r, &req);
        assert_eq!(
            (got.plan.copies, got.plan.reply_len, got.plan.suppress),
            (1, 88, false),
            "no Type 12: a normal reply"
        );
        assert_eq!(
            tlvs(&got.reply),
            vec![
                (0, 241, 4, 128u32.to_be_bytes().to_vec()),
                (0, 1, 32, ff00())
            ]
        );
        assert_eq!(r.stats().tlv_conformance + r.stats().tlv_unrecognized, 0);
    }
    let theirs = their_replies(&reps, &req);
    assert_eq!(theirs.len(), 1);
    assert_eq!(
        tlvs(&theirs[0].payload),
        vec![(0, 241, 4, vec![0; 4]), (0, 1, 32, vec![0; 32])]
    );
}

/// The same exchange with clean padding by our reading: the padding
/// carrying the default pattern (as our sender sends it) counts 0 errors
/// and comes back unchanged; so does teaparty's zero padding once the
/// request names the pattern 0x00 in a Bit Pattern TLV (type 240).
#[test]
fn ber_request_with_clean_padding_counts_zero() {
    let (req, _) = ber_request();
    let mut clean = req.clone();
    clean.payload[56..88].copy_from_slice(&ff00());
    let mut r = reflector(&[]);
    let got = replay(&mut r, &clean);
    assert_eq!(
        tlvs(&got.reply),
        vec![(0, 241, 4, vec![0; 4]), (0, 1, 32, ff00())]
    );

    let mut with_pattern = req.clone();
    with_pattern.payload.truncate(BASE);
    with_pattern
        .payload
        .extend_from_slice(&[U, 240, 0, 1, 0x00]);
    with_pattern.payload.extend_from_slice(&req.payload[BASE..]);
    let got = replay(&mut r, &with_pattern);
    assert_eq!(
        tlvs(&got.reply),
        vec![
            (0, 240, 1, vec![0]),
            (0, 241, 4, vec![0; 4]),
            (0, 1, 32, vec![0; 32])
        ]
    );
}
