//! RFC 8972 §4 / §4.8 rules on the Session-Sender side, in process: what
//! our sender puts on the wire (U set, M and I clear, reflector fields
//! zero, HMAC TLV after every TLV but Extra Padding), and what it does
//! with a reply whose TLVs carry U, M or I, or whose HMAC TLV does not
//! verify.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use stamp_core::clock::{Clock, ManualClock, TimestampSource, UnixNanos};
use stamp_core::hmac::HmacKey;
use stamp_core::reflector::{Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::{linked_plugins, PluginSettings, Registry};
use stamp_core::sender::{
    request_templates, PacketRecord, ReplyEvent, SenderConfig, SenderSession,
};
use stamp_core::transport::RecvMeta;
use stamp_core::TlvOptions;
use stamp_wire::{AuthMode, TimestampFormat, TlvIter, MAX_DATAGRAM};

use stamp_plugins as _;

const U: u8 = 0x80;
const M: u8 = 0x40;
const I: u8 = 0x20;
const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn registry() -> Registry {
    let mine: Vec<_> = linked_plugins()
        .into_iter()
        .filter(|p| p.crate_name == "stamp-tlv-rfc8972")
        .collect();
    assert_eq!(mine.len(), 7, "rfc8972 plugins linked");
    Registry::from_plugins(mine, &PluginSettings::new(), &BTreeMap::new()).unwrap()
}

fn clock() -> ManualClock {
    ManualClock::new(UnixNanos(1_763_800_000_000_000_000), TimestampFormat::Ntp)
}

fn all_options() -> TlvOptions {
    let mut o = TlvOptions::new();
    for (k, v) in [
        ("padding", "16"),
        ("location", "true"),
        ("timestamp-info", "true"),
        ("cos", "true"),
        ("dscp", "46"),
        ("direct-measurement", "true"),
        ("access-report", "1"),
        ("follow-up-telemetry", "true"),
    ] {
        o.set(k, v);
    }
    o
}

fn session(mode: AuthMode, tlv_hmac: bool) -> SenderSession {
    let reg = registry();
    let templates = request_templates(&reg, &all_options()).unwrap();
    let config = SenderConfig {
        mode,
        ssid: 0x0909,
        key: Some(HmacKey::new(KEY)),
        tlv_hmac,
        ..Default::default()
    };
    SenderSession::new(config, reg, templates).unwrap()
}

fn reflector(mode: AuthMode) -> Reflector {
    let cfg = ReflectorConfig {
        mode,
        stateful: true,
        key: Some(HmacKey::new(KEY)),
        ..Default::default()
    };
    Reflector::new(cfg, registry())
}

fn meta(len: usize, src: (Ipv4Addr, u16)) -> RecvMeta {
    let mut m = RecvMeta::new(len, SocketAddr::from(src));
    m.dst = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    m.dst_port = 862;
    m.ttl = Some(64);
    m.tos = Some(0);
    m
}

/// The TLVs our sender puts in a request: U set, M and I clear, every
/// field the reflector fills zero (RFC 8972 §4, §4.2-§4.7), the HMAC TLV
/// last but for Extra Padding (§4.8), and the HMAC over the Sequence
/// Number and the TLVs before it.
#[test]
fn sender_sets_u_only_zeroes_reflector_fields_and_places_the_hmac_tlv() {
    for (mode, tlv_hmac) in [(AuthMode::Open, true), (AuthMode::Authenticated, false)] {
        let mut s = session(mode, tlv_hmac);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        for _ in 0..2 {
            let n = s.build_request(&mut buf, Instant::now(), &clock());
            let pkt = &buf[..n];
            let area = &pkt[mode.base_len()..];
            let tlvs: Vec<_> = TlvIter::new(area).map(Result::unwrap).collect();
            let types: Vec<u8> = tlvs.iter().map(|t| t.tlv_type.0).collect();
            // Known TLVs in type order, HMAC TLV, then Extra Padding.
            assert_eq!(types, [2, 3, 4, 5, 6, 7, 8, 1], "{mode:?}");
            for t in &tlvs {
                assert_eq!(t.flags.0, U, "type {}", t.tlv_type.0);
            }
            let v = |ty: u8| tlvs.iter().find(|t| t.tlv_type.0 == ty).unwrap().value;
            // Location: ports zero, generic sub-TLVs 1, 4, 7 with U and zero values.
            let loc = v(2);
            assert_eq!(&loc[..4], &[0, 0, 0, 0]);
            let subs: Vec<_> = TlvIter::new(&loc[4..]).map(Result::unwrap).collect();
            assert_eq!(
                subs.iter()
                    .map(|s| (s.flags.0, s.tlv_type.0, s.value.len()))
                    .collect::<Vec<_>>(),
                [(U, 1, 8), (U, 4, 16), (U, 7, 16)]
            );
            assert!(subs.iter().all(|s| s.value.iter().all(|&b| b == 0)));
            assert_eq!(v(3), &[0, 0, 0, 0], "Timestamp Information zero");
            assert_eq!(v(4), &[46 << 2, 0, 0, 0], "CoS: DSCP1 only, RP 0");
            let seq = u32::from_be_bytes(pkt[..4].try_into().unwrap());
            assert_eq!(
                &v(5)[..4],
                &(seq + 1).to_be_bytes(),
                "S_TxC counts this packet"
            );
            assert_eq!(&v(5)[4..], &[0; 8], "R_RxC, R_TxC zero");
            assert_eq!(
                v(6),
                &[1 << 4, 1, 0, 0],
                "Access Report: ID 1, RC 1, Resv 0"
            );
            assert_eq!(v(7), &[0; 16], "Follow-Up Telemetry zero");
            let h = tlvs.iter().find(|t| t.tlv_type.0 == 8).unwrap();
            assert!(HmacKey::new(KEY).verify(&[&pkt[..4], &area[..h.offset]], h.value));
        }
    }
}

fn exchange(
    mode: AuthMode,
    tlv_hmac: bool,
    tamper: impl Fn(&mut [u8], usize),
) -> (PacketRecord, Vec<u8>) {
    let mut s = session(mode, tlv_hmac);
    let mut r = reflector(mode);
    let clock = clock();
    let (mut req, mut rep) = (vec![0u8; MAX_DATAGRAM], vec![0u8; MAX_DATAGRAM]);
    let n = s.build_request(&mut req, Instant::now(), &clock);
    let from = (Ipv4Addr::LOCALHOST, 40000);
    let len = match r.process(&req[..n], &meta(n, from), Instant::now(), &clock, &mut rep) {
        Outcome::Reply { len, .. } => len,
        o => panic!("{o:?}"),
    };
    let rep = &mut rep[..len];
    tamper(rep, mode.base_len());
    let ev = s.on_reply(
        rep,
        &meta(len, (Ipv4Addr::LOCALHOST, 862)),
        clock.now(),
        TimestampSource::UserSpace,
        clock.error_estimate(),
    );
    let ReplyEvent::Matched(rec) = ev else {
        panic!("{ev:?}")
    };
    (*rec, rep.to_vec())
}

/// Offsets of each TLV header in a reply's TLV area.
fn offsets(area: &[u8]) -> Vec<(usize, u8)> {
    TlvIter::new(area)
        .map(|t| t.map(|t| (t.offset, t.tlv_type.0)).unwrap())
        .collect()
}

#[test]
fn untouched_reply_decodes_every_tlv_without_error() {
    let (rec, _) = exchange(AuthMode::Open, false, |_, _| {});
    assert_eq!(rec.tlv_error, None);
    assert_eq!(rec.tlvs.len(), 7);
}

/// U on a TLV: the sender skips its processing (reports it as not
/// processed) and goes on with the next TLVs (RFC 8972 §4).
#[test]
fn u_flag_skips_that_tlv_only() {
    let (rec, _) = exchange(AuthMode::Open, false, |p, base| {
        let at = offsets(&p[base..])
            .into_iter()
            .find(|&(_, t)| t == 4)
            .unwrap()
            .0;
        p[base + at] = U;
    });
    assert_eq!(rec.tlv_error, None);
    let names: Vec<&str> = rec.tlvs.iter().map(|t| t.name).collect();
    assert_eq!(names.len(), 7);
    assert!(
        names.contains(&"unrecognized") && !names.contains(&"cos"),
        "{names:?}"
    );
    assert!(names.contains(&"dm") && names.contains(&"fut"));
}

/// M on a TLV: processing stops there; the TLVs after it are not decoded.
#[test]
fn m_flag_stops_processing_the_rest() {
    let (rec, _) = exchange(AuthMode::Open, false, |p, base| {
        let at = offsets(&p[base..])
            .into_iter()
            .find(|&(_, t)| t == 4)
            .unwrap()
            .0;
        p[base + at] = M;
    });
    assert_eq!(rec.tlv_error, Some("malformed"));
    let names: Vec<&str> = rec.tlvs.iter().map(|t| t.name).collect();
    // location (2), tsinfo (3), then the flagged CoS (4): nothing after it
    assert_eq!(names, ["location", "tsinfo", "cos"]);
}

/// I on the TLVs: all TLVs are discarded.
#[test]
fn i_flag_discards_all_tlvs() {
    let (rec, _) = exchange(AuthMode::Open, false, |p, base| {
        for (at, _) in offsets(&p[base..]) {
            p[base + at] = I;
        }
    });
    assert_eq!(rec.tlv_error, Some("integrity"));
    assert!(rec.tlvs.is_empty());
}

/// The reply's HMAC TLV must verify over the reply's Sequence Number and
/// TLVs; a reply whose TLVs were changed in flight fails it and no TLV is
/// used (RFC 8972 §4.8).
#[test]
fn reply_hmac_tlv_failure_stops_tlv_processing() {
    let (rec, _) = exchange(AuthMode::Open, true, |_, _| {});
    assert_eq!(rec.tlv_error, None, "our reflector's HMAC TLV verifies");
    assert_eq!(rec.tlvs.len(), 7);
    let (rec, _) = exchange(AuthMode::Open, true, |p, base| {
        let at = offsets(&p[base..])
            .into_iter()
            .find(|&(_, t)| t == 5)
            .unwrap()
            .0;
        p[base + at + 4 + 4] ^= 0x01; // R_RxC changed in flight
    });
    assert_eq!(rec.tlv_error, Some("hmac"));
    assert!(rec.tlvs.is_empty());
    // Same in authenticated mode (the base HMAC does not cover TLVs).
    let (rec, _) = exchange(AuthMode::Authenticated, false, |p, base| {
        let at = offsets(&p[base..])
            .into_iter()
            .find(|&(_, t)| t == 2)
            .unwrap()
            .0;
        p[base + at + 4] ^= 0x80; // Location destination port
    });
    assert_eq!(rec.tlv_error, Some("hmac"));
}
