//! The requests of two teaparty captures (cerfcast/teaparty, an independent
//! Rust implementation) replayed through OUR reflector with the RFC 8972
//! plugins linked, and every reply checked field by field: TLV flags, type,
//! length and each Value field. Where the RFCs agree with teaparty, our reply
//! is compared with teaparty's own reply; where we differ on purpose, the
//! test asserts our reading and the comment says why.
//!
//! In process: `stamp_core::reflector::Reflector::process` with a
//! `ManualClock`, so the receive metadata (TOS, TTL, addresses) is exactly
//! what the test puts in.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use stamp_core::clock::{Clock, ManualClock, UnixNanos};
use stamp_core::hmac::HmacKey;
use stamp_core::reflector::{DropReason, Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::{linked_plugins, PluginSettings, Registry};
use stamp_core::transport::RecvMeta;
use stamp_core::ReplyPlan;
use stamp_tests::{load_vectors, Datagram};
use stamp_wire::{
    AuthMode, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr, TimestampFormat, TlvIter,
    TlvType, MAX_DATAGRAM,
};

// Without this the plugin crates are not linked and their inventory records
// vanish (DESIGN.md §3, linking pitfall).
use stamp_plugins as _;

/// teaparty's reflector listened on 8863 in both captures.
const REFLECTOR_PORT: u16 = 8863;
const U: u8 = 0x80;
const M: u8 = 0x40;
const I: u8 = 0x20;
/// The HMAC key of teaparty-auth.pcap: the 7 ASCII octets `testing`.
const KEY: &[u8] = b"testing";

/// The RFC 8972 handlers only. `cargo test --workspace` unifies the
/// features of `stamp-plugins` across the workspace, so this test binary may
/// link more plugins (an RFC 9503 plugin would claim types 9 and 10); the
/// replay pins the set it asserts on. `from_linked` must still hold types
/// 1-7 from the rfc8972 crate, checked here too.
fn rfc8972_registry() -> Registry {
    let linked = Registry::from_linked(&PluginSettings::new(), &BTreeMap::new()).expect("registry");
    for code in 1..=7u8 {
        assert!(
            linked.get(TlvType(code)).is_some(),
            "type {code} is not linked: `use stamp_plugins as _;` and the rfc8972 feature"
        );
    }
    let mine: Vec<_> = linked_plugins()
        .into_iter()
        .filter(|p| p.crate_name == "stamp-tlv-rfc8972")
        .collect();
    assert_eq!(mine.len(), 7);
    Registry::from_plugins(mine, &PluginSettings::new(), &BTreeMap::new()).expect("registry")
}

fn clock() -> ManualClock {
    ManualClock::new(UnixNanos(1_763_800_000_000_000_000), TimestampFormat::Ntp)
}

fn meta(d: &Datagram, tos: u8) -> RecvMeta {
    let mut m = RecvMeta::new(d.payload.len(), d.src);
    m.dst = Some(d.dst.ip());
    m.dst_port = d.dst.port();
    m.ttl = Some(d.ttl);
    m.tos = Some(tos);
    m
}

/// Requests (to the reflector port) and replies, in capture order.
fn split(name: &str) -> (Vec<Datagram>, Vec<Datagram>) {
    load_vectors(name)
        .into_iter()
        .partition(|d| d.dst.port() == REFLECTOR_PORT)
}

/// teaparty's reply to `req`: same client port and same Session-Sender
/// Sequence Number (octets 24..28 open, 48..52 authenticated).
fn their_reply<'a>(replies: &'a [Datagram], req: &Datagram, mode: AuthMode) -> &'a Datagram {
    let at = match mode {
        AuthMode::Open => 24,
        AuthMode::Authenticated => 48,
    };
    replies
        .iter()
        .find(|p| p.dst == req.src && p.payload[at..at + 4] == req.payload[..4])
        .expect("teaparty's reply")
}

struct Replayed {
    out: Outcome,
    reply: Vec<u8>,
}

impl Replayed {
    fn plan(&self) -> ReplyPlan {
        match self.out {
            Outcome::Reply { plan, .. } => plan,
            o => panic!("no reply: {o:?}"),
        }
    }
}

fn replay_one(r: &mut Reflector, d: &Datagram, tos: u8, clock: &dyn Clock) -> Replayed {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let out = r.process(&d.payload, &meta(d, tos), Instant::now(), clock, &mut buf);
    match out {
        Outcome::Reply { len, .. } => buf.truncate(len),
        _ => buf.clear(),
    }
    Replayed { out, reply: buf }
}

fn open_reflector() -> Reflector {
    Reflector::new(ReflectorConfig::default(), rfc8972_registry())
}

/// Base fields every reply must carry (RFC 8762 §4.3, RFC 8972 §3).
fn check_base(mode: AuthMode, req: &Datagram, rep: &[u8]) -> ReflectorRepr {
    assert_eq!(
        rep.len(),
        req.payload.len().max(mode.base_len()),
        "symmetric size"
    );
    let mut padded = req.payload.clone();
    padded.resize(rep.len(), 0);
    let q = SenderRepr::parse(&SenderPacket::new_checked(&padded[..], mode).unwrap());
    let p = ReflectorPacket::new_checked(rep, mode).unwrap();
    assert!(p.mbz_is_zero(), "MBZ zero");
    let r = ReflectorRepr::parse(&p);
    assert_eq!(r.sender_sequence_number, q.sequence_number);
    assert_eq!(r.sender_timestamp, q.timestamp);
    assert_eq!(r.sender_error_estimate, q.error_estimate);
    assert_eq!(r.ssid, q.ssid, "SSID echoed (RFC 8972 §3)");
    assert_eq!(
        r.sender_ttl, req.ttl,
        "Session-Sender TTL from the IP header"
    );
    // stateless: the reply carries the request's Sequence Number
    assert_eq!(r.sequence_number, q.sequence_number);
    r
}

/// (flags, type, length, value) of each TLV of a TLV area.
fn tlvs(area: &[u8]) -> Vec<(u8, u8, usize, Vec<u8>)> {
    TlvIter::new(area)
        .map(|t| {
            let t = t.expect("well-formed TLV area");
            (t.flags.0, t.tlv_type.0, t.value.len(), t.value.to_vec())
        })
        .collect()
}

fn tlv_area(mode: AuthMode, pkt: &[u8]) -> &[u8] {
    &pkt[mode.base_len()..]
}

/// CoS Value (RFC 8972 §4.4): DSCP1(6) DSCP2(6) ECN(2) RP(2) Reserved(16).
fn cos(dscp1: u8, dscp2: u8, ecn: u8, rp: u8) -> Vec<u8> {
    vec![
        dscp1 << 2 | dscp2 >> 4,
        (dscp2 & 0x0F) << 4 | ecn << 2 | rp,
        0,
        0,
    ]
}

// ---------------------------------------------------------------- open mode

/// Frame 0 of teaparty-tlvs.pcap: Timestamp Information, CoS (DSCP1 = 46),
/// Extra Padding (16), Destination Node Address (type 9, 127.0.0.1) and
/// Return Path (type 10, Return Address sub-TLV 127.0.0.1).
#[test]
fn five_tlv_request_every_field_of_our_reply() {
    let (reqs, _) = split("teaparty-tlvs.pcap");
    let req = &reqs[0];
    assert_eq!(req.payload.len(), 100);
    let mut r = open_reflector();
    // The capture's TOS is 0; mark the request DSCP 10 / ECN 2 (ECT(0)) so
    // DSCP2 and ECN in the reply are non-trivial: they must be what the
    // receive metadata says, not anything from the request.
    let tos = 10 << 2 | 2;
    let got = replay_one(&mut r, req, tos, &clock());
    check_base(AuthMode::Open, req, &got.reply);

    let sent = tlvs(tlv_area(AuthMode::Open, &req.payload));
    let back = tlvs(tlv_area(AuthMode::Open, &got.reply));
    assert_eq!(back.len(), 5);
    assert!(
        sent.iter().all(|t| t.0 == U),
        "teaparty's sender sets U on every TLV"
    );

    // Timestamp Information (§4.3): U cleared; Sync Src In/Out = our clock's
    // sync source (the ManualClock says 5, local free-running); Timestamp
    // In = SW local (2: no kernel timestamp in this metadata); Timestamp Out
    // = SW local (2: T3 is read in user space).
    assert_eq!(back[0], (0, 3, 4, vec![5, 2, 5, 2]));
    // Class of Service (§4.4): DSCP1 kept, DSCP2/ECN = the received TOS,
    // RP = 0 (DSCP 46 is permitted), Reserved zero; the reply goes out with
    // DSCP1 and the received ECN.
    assert_eq!(back[1], (0, 4, 4, cos(46, 10, 2, 0)));
    assert_eq!(got.plan().tos, Some(46 << 2 | 2));
    // Extra Padding (§4.1): echoed unchanged, U cleared.
    assert_eq!(back[2], (0, 1, 16, sent[2].3.clone()));
    // Destination Node Address (RFC 9503 §3) and Return Path (§4): no
    // handler in the RFC 8972 set: U set, bytes (the nested sub-TLV's
    // flags included) unchanged (RFC 8972 §4).
    assert_eq!(back[3], (U, 9, 4, vec![127, 0, 0, 1]));
    assert_eq!(back[4], (U, 10, 8, vec![0x80, 2, 0, 4, 127, 0, 0, 1]));
    assert_eq!(back[3..], sent[3..], "unknown TLVs copied verbatim");
    // The plan sends the reply back where the request came from.
    assert_eq!(got.plan().dst, req.src);
    assert_eq!(r.stats().tlv_unrecognized, 2);
    assert_eq!(r.stats().tlv_malformed, 0);
}

/// The same request with the capture's own TOS (0), compared with
/// teaparty's reply where the RFCs agree.
#[test]
fn five_tlv_request_compared_with_teaparty_reply() {
    let (reqs, reps) = split("teaparty-tlvs.pcap");
    let req = &reqs[0];
    let theirs = their_reply(&reps, req, AuthMode::Open);
    let mut r = open_reflector();
    let got = replay_one(&mut r, req, req.tos, &clock());
    check_base(AuthMode::Open, req, &got.reply);
    assert_eq!(got.reply.len(), theirs.payload.len());

    let ours = tlvs(tlv_area(AuthMode::Open, &got.reply));
    let tp = tlvs(tlv_area(AuthMode::Open, &theirs.payload));
    // Same TLVs, same order, same lengths.
    let shape = |v: &[(u8, u8, usize, Vec<u8>)]| v.iter().map(|t| (t.1, t.2)).collect::<Vec<_>>();
    assert_eq!(shape(&ours), shape(&tp));

    // Timestamp Information: both report SW-local timestamping at ingress
    // and egress; the sync source is each reflector's clock fact (teaparty
    // says NTP, our ManualClock says local free-running).
    assert_eq!(ours[0].0, tp[0].0);
    assert_eq!((ours[0].3[1], ours[0].3[3]), (tp[0].3[1], tp[0].3[3]));
    assert_eq!((tp[0].3[1], tp[0].3[3]), (2, 2));

    // CoS: both honour DSCP1 = 46 on the reply's IP header (teaparty's
    // reply went out with TOS 0xB8), copy DSCP2 = 0 / ECN = 0 from the
    // received header, RP = 0, U cleared.
    assert_eq!(ours[1].0, 0);
    assert_eq!(tp[1].0, 0);
    assert_eq!(ours[1].3[..2], tp[1].3[..2]);
    assert_eq!(theirs.tos, 0xB8);
    assert_eq!(got.plan().tos, Some(0xB8));
    // On purpose: teaparty sets 0x10 in the third Value octet, which RFC
    // 8972 §4.4 defines as Reserved ("MUST be zeroed on transmission"); the
    // bit is the RPE field of the later draft-ietf-ippm-stamp-cos-ecn layout
    // (WIRE.md §7.6), which this RFC 8972 handler does not implement.
    assert_eq!(tp[1].3, vec![0xB8, 0x00, 0x10, 0x00]);
    assert_eq!(ours[1].3, vec![0xB8, 0x00, 0x00, 0x00]);

    // Extra Padding: identical.
    assert_eq!(ours[2], tp[2]);

    // Types 9 and 10: teaparty implements RFC 9503 and clears U (and the
    // Return Address sub-TLV's U); our RFC 8972 handler set does not know
    // them, so RFC 8972 §4 asks for U and the bytes unchanged. Values agree.
    assert_eq!((tp[3].0, tp[4].0), (0, 0));
    assert_eq!((ours[3].0, ours[4].0), (U, U));
    assert_eq!(ours[3].3, tp[3].3);
    assert_eq!(ours[4].3[1..], tp[4].3[1..]);
}

/// Frame 12: one TLV of unassigned type 200. Both implementations return
/// it with U and its bytes unchanged: the replies' TLV areas are identical.
#[test]
fn unknown_type_200_gets_u_and_matches_teaparty_byte_for_byte() {
    let (reqs, reps) = split("teaparty-tlvs.pcap");
    let req = reqs
        .iter()
        .find(|d| d.payload.len() > 44 && d.payload[45] == 200)
        .expect("type 200 request");
    let mut r = open_reflector();
    let got = replay_one(&mut r, req, req.tos, &clock());
    check_base(AuthMode::Open, req, &got.reply);
    let ours = tlvs(tlv_area(AuthMode::Open, &got.reply));
    assert_eq!(ours, vec![(U, 200, 8, vec![0xAB; 8])]);
    let theirs = their_reply(&reps, req, AuthMode::Open);
    assert_eq!(
        tlv_area(AuthMode::Open, &got.reply),
        tlv_area(AuthMode::Open, &theirs.payload)
    );
    assert_eq!(r.stats().tlv_unrecognized, 1);
}

/// Frame 10: one Extra Padding TLV of 20 zero octets. U cleared, content
/// unchanged, identical to teaparty's reply.
#[test]
fn extra_padding_alone_is_echoed_like_teaparty() {
    let (reqs, reps) = split("teaparty-tlvs.pcap");
    let req = reqs
        .iter()
        .find(|d| d.payload.len() == 68)
        .expect("padding request");
    let mut r = open_reflector();
    let got = replay_one(&mut r, req, req.tos, &clock());
    check_base(AuthMode::Open, req, &got.reply);
    assert_eq!(
        tlvs(tlv_area(AuthMode::Open, &got.reply)),
        vec![(0, 1, 20, vec![0; 20])]
    );
    let theirs = their_reply(&reps, req, AuthMode::Open);
    assert_eq!(
        tlv_area(AuthMode::Open, &got.reply),
        tlv_area(AuthMode::Open, &theirs.payload)
    );
}

/// Frame 14: a Timestamp Information TLV whose request Value is not zero
/// (01 02 00 00). teaparty answers with M set and the Value unchanged.
/// On purpose we do not: RFC 8972 §4.3 makes zeroing a duty of the sender
/// and gives the reflector one check, the Length (4 here, valid), and §4
/// defines "malformed" by the Length alone. So the TLV is processed: U and
/// M clear, the four octets overwritten with our facts.
#[test]
fn timestamp_information_with_nonzero_request_value_is_processed_not_malformed() {
    let (reqs, reps) = split("teaparty-tlvs.pcap");
    let req = reqs
        .iter()
        .find(|d| d.payload.len() == 52 && d.payload[45] == 3)
        .expect("tsinfo request");
    assert_eq!(&req.payload[48..52], &[1, 2, 0, 0]);
    let mut r = open_reflector();
    let got = replay_one(&mut r, req, req.tos, &clock());
    check_base(AuthMode::Open, req, &got.reply);
    assert_eq!(
        tlvs(tlv_area(AuthMode::Open, &got.reply)),
        vec![(0, 3, 4, vec![5, 2, 5, 2])]
    );
    let theirs = their_reply(&reps, req, AuthMode::Open);
    assert_eq!(
        tlvs(tlv_area(AuthMode::Open, &theirs.payload)),
        vec![(U | M, 3, 4, vec![1, 2, 0, 0])]
    );
    assert_eq!(r.stats().tlv_malformed, 0);
}

/// Frames 16 and 18: CoS requests with DSCP1 = 46, the first with U set
/// (as RFC 8972 §4 asks of a sender), the second with U clear.
#[test]
fn class_of_service_requests_compared_with_teaparty() {
    let (reqs, reps) = split("teaparty-tlvs.pcap");
    let cos_reqs: Vec<&Datagram> = reqs
        .iter()
        .filter(|d| d.payload.len() == 52 && d.payload[45] == 4)
        .collect();
    assert_eq!(cos_reqs.len(), 2);
    let mut r = open_reflector();
    for req in &cos_reqs {
        // The captured TOS (0): DSCP2 = 0, ECN = 0.
        let got = replay_one(&mut r, req, req.tos, &clock());
        check_base(AuthMode::Open, req, &got.reply);
        assert_eq!(
            tlvs(tlv_area(AuthMode::Open, &got.reply)),
            vec![(0, 4, 4, cos(46, 0, 0, 0))]
        );
        assert_eq!(got.plan().tos, Some(46 << 2));
        // Any received marking lands in DSCP2/ECN (ECN 3 = CE here).
        let got = replay_one(&mut r, req, 63 << 2 | 3, &clock());
        assert_eq!(
            tlvs(tlv_area(AuthMode::Open, &got.reply)),
            vec![(0, 4, 4, cos(46, 63, 3, 0))]
        );
        assert_eq!(got.plan().tos, Some(46 << 2 | 3));
    }
    // With U set on the request teaparty agrees on the DSCP it uses for the
    // reply (46) and on DSCP2/ECN/RP; it differs only in the Reserved octet
    // (see five_tlv_request_compared_with_teaparty_reply).
    let t0 = their_reply(&reps, cos_reqs[0], AuthMode::Open);
    assert_eq!(cos_reqs[0].payload[44], U);
    assert_eq!(t0.tos, 46 << 2);
    assert_eq!(
        tlvs(tlv_area(AuthMode::Open, &t0.payload)),
        vec![(0, 4, 4, vec![0xB8, 0, 0x10, 0])]
    );
    // With U clear on the request (a sender breaking RFC 8972 §4) teaparty
    // leaves the TLV untouched and replies with TOS 0. On purpose we
    // process it anyway: the flags a sender sends carry no request
    // semantics for the reflector, which sets U/M/I from its own processing.
    let t1 = their_reply(&reps, cos_reqs[1], AuthMode::Open);
    assert_eq!(cos_reqs[1].payload[44], 0);
    assert_eq!(t1.tos, 0);
    assert_eq!(
        tlvs(tlv_area(AuthMode::Open, &t1.payload)),
        vec![(0, 4, 4, vec![0xB8, 0, 0, 0])]
    );
}

/// Frames 20 and 21: a 100-octet request of zero padding (TWAMP Light) and
/// a 41-octet TWAMP-Light request. With the plugins linked the zero
/// padding still comes back untouched (not parsed as type-0 TLVs), and the
/// short request gets a 44-octet reply.
#[test]
fn zero_padding_and_twamp_light_sizes_with_plugins_linked() {
    let (reqs, _) = split("teaparty-tlvs.pcap");
    let mut r = open_reflector();
    let zero = reqs
        .iter()
        .find(|d| d.payload.len() == 100 && d.payload[44..].iter().all(|&b| b == 0))
        .expect("zero-padded request");
    let got = replay_one(&mut r, zero, zero.tos, &clock());
    check_base(AuthMode::Open, zero, &got.reply);
    assert!(got.reply[44..].iter().all(|&b| b == 0));
    let short = reqs
        .iter()
        .find(|d| d.payload.len() == 41)
        .expect("41-octet request");
    let got = replay_one(&mut r, short, short.tos, &clock());
    check_base(AuthMode::Open, short, &got.reply);
    assert_eq!(got.reply.len(), 44);
    assert_eq!(r.stats().tlv_unrecognized + r.stats().tlv_malformed, 0);
}

/// Every request of the capture: a reply whose TLV area parses, no TLV
/// marked malformed, and U only on the types our handler set lacks.
#[test]
fn every_request_of_the_capture_gets_a_well_formed_reply() {
    let (reqs, _) = split("teaparty-tlvs.pcap");
    assert_eq!(reqs.len(), 12);
    let mut r = open_reflector();
    for req in &reqs {
        let got = replay_one(&mut r, req, req.tos, &clock());
        check_base(AuthMode::Open, req, &got.reply);
        let area = tlv_area(AuthMode::Open, &got.reply);
        if area.iter().all(|&b| b == 0) {
            continue; // zero padding, copied as is
        }
        for t in TlvIter::new(area) {
            let t = t.unwrap();
            let known = (1..=7).contains(&t.tlv_type.0);
            assert_eq!(
                t.flags.0,
                if known { 0 } else { U },
                "type {}",
                t.tlv_type.0
            );
        }
    }
    assert_eq!(r.stats().reflected, 12);
}

// ------------------------------------------------------- authenticated mode

fn auth_reflector() -> Reflector {
    let cfg = ReflectorConfig {
        mode: AuthMode::Authenticated,
        key: Some(HmacKey::new(KEY)),
        ..Default::default()
    };
    Reflector::new(cfg, rfc8972_registry())
}

/// HMAC-SHA-256-128 over `parts`, with the key `testing`.
fn tag(parts: &[&[u8]]) -> [u8; 16] {
    HmacKey::new(KEY).tag(parts)
}

/// Frame 0 of teaparty-auth.pcap: CoS (DSCP1 = 8), Extra Padding (64
/// zeros), HMAC TLV, SSID 5, in a 208-octet authenticated packet.
fn auth_request() -> (Datagram, Vec<Datagram>) {
    let (reqs, reps) = split("teaparty-auth.pcap");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].payload.len(), 208);
    (reqs[0].clone(), reps)
}

/// teaparty's HMAC TLV covers the Extra Padding TLV that precedes it only
/// by its 4-octet header (WIRE.md §7.10 INTEROP). RFC 8972 §4.8 says the
/// HMAC is computed over "all preceding TLVs", so we hash them whole; the
/// captured HMAC TLV therefore fails our check and, as §4.8 requires, every
/// TLV comes back copied with I set, nothing processed. The base HMAC
/// (octets 0-95) verifies, so there is a reply.
#[test]
fn captured_hmac_tlv_hashes_only_the_padding_header_so_every_tlv_gets_i() {
    let (req, _) = auth_request();
    let p = &req.payload;
    let area = tlv_area(AuthMode::Authenticated, p);
    assert_eq!(
        tlvs(area)
            .iter()
            .map(|t| (t.0, t.1, t.2))
            .collect::<Vec<_>>(),
        vec![(U, 4, 4), (U, 1, 64), (U, 8, 16)]
    );
    let captured = &area[80..96];
    // teaparty's reading: seq ‖ CoS TLV ‖ padding TLV header only.
    assert_eq!(&tag(&[&p[..4], &area[..12]])[..], captured);
    // RFC 8972 §4.8 reading: seq ‖ every preceding TLV, whole.
    assert_ne!(&tag(&[&p[..4], &area[..76]])[..], captured);

    let mut r = auth_reflector();
    let got = replay_one(&mut r, &req, req.tos, &clock());
    let rep = &got.reply;
    let base = check_base(AuthMode::Authenticated, &req, rep);
    assert_eq!(base.ssid, 5);
    assert!(
        HmacKey::new(KEY).verify(&[&rep[..96]], &rep[96..112]),
        "our base HMAC verifies with `testing`"
    );
    let back = tlv_area(AuthMode::Authenticated, rep);
    // Each TLV: flags = I only, type/length/value exactly as received (the
    // CoS value is not filled in, the HMAC TLV not recomputed).
    let want: Vec<_> = tlvs(area)
        .into_iter()
        .map(|(_, t, l, v)| (I, t, l, v))
        .collect();
    assert_eq!(tlvs(back), want);
    assert_eq!(r.stats().tlv_integrity_failed, 1);
    // No DSCP change was planned: the CoS TLV was not used (§4.8: verify
    // before using any TLV data).
    assert_eq!(got.plan().tos, None);
}

/// The same request with its HMAC TLV and base HMAC recomputed the RFC way
/// (whole preceding TLVs): every TLV is processed and checked field by
/// field, and the reply's HMAC TLV verifies over the REPLY's Sequence
/// Number and the reply's preceding TLVs.
#[test]
fn request_re_signed_per_rfc8972_is_processed_and_our_hmac_tlv_verifies() {
    let (mut req, reps) = auth_request();
    {
        let p = &mut req.payload;
        // TLV area: CoS at 0 (8 octets), padding at 8 (68), HMAC TLV at
        // 76 with its Value at 80..96, i.e. octets 192..208 of the packet.
        let t = tag(&[&p[..4], &p[112..188]]);
        p[192..208].copy_from_slice(&t);
        let b = tag(&[&p[..96]]);
        p[96..112].copy_from_slice(&b);
    }
    for tos in [req.tos, 8 << 2 | 2] {
        let mut r = auth_reflector();
        let got = replay_one(&mut r, &req, tos, &clock());
        let rep = &got.reply;
        let base = check_base(AuthMode::Authenticated, &req, rep);
        assert_eq!(base.ssid, 5);
        let key = HmacKey::new(KEY);
        assert!(key.verify(&[&rep[..96]], &rep[96..112]), "base HMAC");
        let back = tlvs(tlv_area(AuthMode::Authenticated, rep));
        assert_eq!(back.len(), 3);
        // CoS: DSCP1 = 8 honoured, DSCP2/ECN from the TOS, RP 0.
        assert_eq!(back[0], (0, 4, 4, cos(8, tos >> 2, tos & 3, 0)));
        assert_eq!(got.plan().tos, Some(8 << 2 | (tos & 3)));
        // Extra Padding unchanged.
        assert_eq!(back[1], (0, 1, 64, vec![0; 64]));
        // HMAC TLV: flags clear, Length 16, Value = HMAC(reply seq ‖ reply
        // TLVs before it). The reply's Sequence Number is the stateless
        // echo of the request's, 0x22.
        assert_eq!((back[2].0, back[2].1, back[2].2), (0, 8, 16));
        let area = tlv_area(AuthMode::Authenticated, rep);
        assert_eq!(&rep[..4], &[0, 0, 0, 0x22]);
        assert!(key.verify(&[&rep[..4], &area[..76]], &back[2].3));
        assert_eq!(r.stats().tlv_integrity_failed, 0);
    }

    // Compared with teaparty's reply (to the original request): same
    // length, SSID 5, CoS flags and DSCP1/DSCP2/ECN/RP equal, padding
    // equal; its reply went out with DSCP 8 as ours is planned to.
    let theirs = their_reply(&reps, &req, AuthMode::Authenticated);
    assert_eq!(theirs.payload.len(), 208);
    assert_eq!(theirs.tos, 8 << 2);
    let tp = tlvs(tlv_area(AuthMode::Authenticated, &theirs.payload));
    let mut r = auth_reflector();
    let got = replay_one(&mut r, &req, req.tos, &clock());
    let ours = tlvs(tlv_area(AuthMode::Authenticated, &got.reply));
    assert_eq!(ours[0].3[..2], tp[0].3[..2]);
    assert_eq!(ours[1], tp[1]);
    assert_eq!(
        ours.iter().map(|t| t.0).collect::<Vec<_>>(),
        tp.iter().map(|t| t.0).collect::<Vec<_>>()
    );
    // teaparty's reply HMAC TLV is, again, over its Sequence Number and the
    // padding header only; ours covers the whole padding (see above).
    let ta = tlv_area(AuthMode::Authenticated, &theirs.payload);
    assert_eq!(&tag(&[&theirs.payload[..4], &ta[..12]])[..], &ta[80..96]);
    // teaparty's stateful counter numbered this reply 1; ours is stateless.
    assert_eq!(&theirs.payload[..4], &[0, 0, 0, 1]);
}

/// Frame 2 of teaparty-auth.pcap: a 112-octet request whose base HMAC does
/// not verify with `testing`: dropped before anything else, counted, and
/// teaparty did not answer it either.
#[test]
fn request_with_bad_base_hmac_is_dropped_like_teaparty() {
    let all = load_vectors("teaparty-auth.pcap");
    assert_eq!(all.len(), 3, "teaparty sent no reply to frame 2");
    let bad = &all[2];
    assert_eq!(bad.payload.len(), 112);
    let mut r = auth_reflector();
    let got = replay_one(&mut r, bad, bad.tos, &clock());
    assert_eq!(got.out, Outcome::Drop(DropReason::AuthFailed));
    assert_eq!(r.stats().dropped_auth_failed, 1);
    assert_eq!(r.stats().reflected, 0);
    assert!(matches!(bad.src.ip(), IpAddr::V4(_)));
}
