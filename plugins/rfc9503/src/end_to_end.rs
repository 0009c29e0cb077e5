//! Each TLV through the engine: `Reflector::process` with a registry built
//! from the linked plugins, and `SenderSession` build_request → process →
//! on_reply, checking reply octets, flags, the reply plan and decoded
//! reports.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use stamp_core::clock::{Clock, ManualClock, TimestampSource, UnixNanos};
use stamp_core::reflector::{DropReason, Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::PluginSettings;
use stamp_core::sender::{request_templates, ReplyEvent, SenderConfig, SenderSession};
use stamp_core::transport::RecvMeta;
use stamp_core::{Registry, ReplyPlan, TlvOptions, TlvReport};
use stamp_wire::{TimestampFormat, MAX_DATAGRAM};

/// Unauthenticated base packet length (RFC 8762 §4.2.1).
const BASE: usize = 44;
/// 2023-11-14T22:13:20Z, exact in NTP.
const T0: UnixNanos = UnixNanos(1_700_000_000_000_000_000);
const SENDER: ([u8; 4], u16) = ([198, 51, 100, 2], 40000);
const REFLECTOR: ([u8; 4], u16) = ([192, 0, 2, 1], 862);

fn registry(settings: &[(&str, &str)]) -> Registry {
    let mut s = PluginSettings::new();
    for (k, v) in settings {
        s.set(*k, *v);
    }
    Registry::from_linked(&s, &BTreeMap::new()).unwrap()
}

fn reflector(reg: Registry) -> Reflector {
    Reflector::new(ReflectorConfig::default(), reg)
}

/// A request with Sequence Number `seq`, SSID 0x1234 and `tlvs` after the
/// base packet.
fn request(seq: u32, tlvs: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; BASE];
    p[0..4].copy_from_slice(&seq.to_be_bytes());
    p[4..12].copy_from_slice(&[0xE9, 0xE1, 0, 0, 0x80, 0, 0, 0]);
    p[12..16].copy_from_slice(&[0, 1, 0x12, 0x34]);
    p.extend_from_slice(tlvs);
    p
}

/// Received from SENDER at REFLECTOR.
fn request_meta(len: usize) -> RecvMeta {
    RecvMeta {
        len,
        src: SocketAddr::from(SENDER),
        dst: Some(IpAddr::V4(Ipv4Addr::from(REFLECTOR.0))),
        dst_port: REFLECTOR.1,
        ifindex: 2,
        ttl: Some(64),
        tos: Some(0),
        rx_time: None,
        ip_header_len: 0,
    }
}

fn clock() -> ManualClock {
    ManualClock::new(T0, TimestampFormat::Ntp)
}

fn process(r: &mut Reflector, req: &[u8]) -> (Outcome, Vec<u8>) {
    let mut reply = vec![0u8; MAX_DATAGRAM];
    let out = r.process(
        req,
        &request_meta(req.len()),
        Instant::now(),
        &clock(),
        &mut reply,
    );
    (out, reply)
}

/// Reflect `req`; return the reply's TLV area and the plan.
fn reflect(r: &mut Reflector, req: &[u8]) -> (Vec<u8>, ReplyPlan) {
    match process(r, req) {
        (Outcome::Reply { len, plan }, reply) => {
            assert_eq!(len, req.len(), "symmetric size");
            (reply[BASE..len].to_vec(), plan)
        }
        (Outcome::Drop(why), _) => panic!("dropped: {why:?}"),
    }
}

#[test]
fn destination_node_address_of_this_reflector_sets_the_reply_source() {
    let reg = registry(&[("local-addresses", "127.0.0.9")]);
    let mut r = reflector(reg);
    let (area, plan) = reflect(&mut r, &request(1, &[0x80, 9, 0, 4, 127, 0, 0, 9]));
    assert_eq!(area, [0x00, 9, 0, 4, 127, 0, 0, 9]);
    assert_eq!(plan.src, Some("127.0.0.9".parse().unwrap()));
    let (area, plan) = reflect(&mut r, &request(2, &[0x80, 9, 0, 4, 192, 0, 2, 1]));
    assert_eq!(area, [0x00, 9, 0, 4, 192, 0, 2, 1]);
    assert_eq!(plan.src, Some("192.0.2.1".parse().unwrap()));
}

#[test]
fn destination_node_address_of_another_node_gets_u_and_a_reply() {
    let mut r = reflector(registry(&[]));
    let (area, plan) = reflect(&mut r, &request(1, &[0x80, 9, 0, 4, 10, 9, 9, 9]));
    assert_eq!(area, [0x80, 9, 0, 4, 10, 9, 9, 9]);
    assert_eq!(plan, ReplyPlan::for_request(&request_meta(52)).with_len(52));
    assert_eq!(r.stats().tlv_unrecognized, 1);
}

#[test]
fn destination_node_address_with_a_bad_length_is_malformed() {
    let tlvs = [
        0x80, 9, 0, 2, 1, 2, 0x80, 10, 0, 8, 0x80, 1, 0, 4, 0, 0, 0, 0,
    ];
    let mut r = reflector(registry(&[]));
    let (area, plan) = reflect(&mut r, &request(1, &tlvs));
    let mut expect = tlvs;
    expect[0] = 0x40;
    assert_eq!(area, expect, "M, the rest copied unchanged");
    assert!(!plan.suppress, "the Return Path after it is not acted upon");
}

trait WithLen {
    fn with_len(self, len: usize) -> Self;
}
impl WithLen for ReplyPlan {
    fn with_len(mut self, len: usize) -> Self {
        self.reply_len = len;
        self
    }
}

#[test]
fn return_path_no_reply_suppresses_the_reply() {
    let mut r = reflector(registry(&[]));
    let (out, _) = process(
        &mut r,
        &request(1, &[0x80, 10, 0, 8, 0x80, 1, 0, 4, 0, 0, 0, 0]),
    );
    assert_eq!(out, Outcome::Drop(DropReason::Suppressed));
    assert_eq!(r.stats().suppressed, 1);
    assert_eq!(r.stats().reflected, 0);
}

#[test]
fn return_path_reply_on_the_same_link_replies_normally() {
    let mut r = reflector(registry(&[]));
    let (area, plan) = reflect(
        &mut r,
        &request(1, &[0x80, 10, 0, 8, 0x80, 1, 0, 4, 0, 0, 0, 1]),
    );
    assert_eq!(area, [0x00, 10, 0, 8, 0x00, 1, 0, 4, 0, 0, 0, 1]);
    assert_eq!(plan.dst, SocketAddr::from(SENDER));
    assert!(!plan.suppress);
}

#[test]
fn return_address_redirects_the_reply() {
    let mut r = reflector(registry(&[]));
    let (area, plan) = reflect(
        &mut r,
        &request(1, &[0x80, 10, 0, 8, 0x80, 2, 0, 4, 203, 0, 113, 9]),
    );
    assert_eq!(area, [0x00, 10, 0, 8, 0x00, 2, 0, 4, 203, 0, 113, 9]);
    assert_eq!(plan.dst, "203.0.113.9:40000".parse().unwrap());
}

#[test]
fn segment_list_return_paths_are_refused_with_u_and_answered_normally() {
    let tlvs = [
        0x80, 10, 0, 20, 0x80, 2, 0, 4, 203, 0, 113, 9, 0x80, 3, 0, 8, 0, 0x06, 0x40, 0xFF, 0,
        0x0C, 0x81, 0xFF,
    ];
    let mut r = reflector(registry(&[]));
    let (area, plan) = reflect(&mut r, &request(1, &tlvs));
    assert_eq!(area[0], 0x80, "U on the Return Path TLV");
    assert_eq!((area[4], area[12]), (0x80, 0x80), "no sub-TLV acted upon");
    assert_eq!(plan.dst, SocketAddr::from(SENDER));
}

#[test]
fn only_the_first_return_path_tlv_counts() {
    let tlvs = [
        0x80, 10, 0, 8, 0x80, 1, 0, 4, 0, 0, 0, 1, // reply
        0x80, 10, 0, 8, 0x80, 1, 0, 4, 0, 0, 0, 0, // no reply: ignored
    ];
    let mut r = reflector(registry(&[]));
    let (area, plan) = reflect(&mut r, &request(1, &tlvs));
    assert!(!plan.suppress);
    assert_eq!((area[0], area[12]), (0x00, 0x80));
}

#[test]
fn malformed_return_path_gets_m_on_tlv_and_sub_tlv() {
    let tlvs = [
        0x80, 10, 0, 6, 0x80, 2, 0, 2, 1, 2, 0x80, 9, 0, 4, 192, 0, 2, 1,
    ];
    let mut r = reflector(registry(&[]));
    let (area, plan) = reflect(&mut r, &request(1, &tlvs));
    let mut expect = tlvs;
    expect[0] = 0x40;
    expect[4] = 0x40;
    assert_eq!(area, expect);
    assert_eq!(plan.src, request_meta(0).dst, "DNA after it not processed");
    assert_eq!(r.stats().tlv_malformed, 1);
}

/// One packet of a session with `opts` through a reflector built with
/// `settings`; the decoded TLVs of the reply, or `None` without a reply.
fn round_trip(
    opts: &[(&str, &str)],
    settings: &[(&str, &str)],
) -> Option<(Vec<TlvReport>, ReplyPlan)> {
    let reg = registry(settings);
    let mut o = TlvOptions::new();
    for (k, v) in opts {
        o.set(*k, *v);
    }
    let templates = request_templates(&reg, &o).unwrap();
    let config = SenderConfig {
        ssid: 0x1234,
        ..Default::default()
    };
    let mut sender = SenderSession::new(config, reg.clone(), templates).unwrap();
    let mut refl = reflector(reg);
    let clock = clock();
    let (mut buf, mut reply) = (vec![0u8; MAX_DATAGRAM], vec![0u8; MAX_DATAGRAM]);
    let n = sender.build_request(&mut buf, Instant::now(), &clock);
    let (len, plan) = match refl.process(
        &buf[..n],
        &request_meta(n),
        Instant::now(),
        &clock,
        &mut reply,
    ) {
        Outcome::Reply { len, plan } => (len, plan),
        Outcome::Drop(DropReason::Suppressed) => return None,
        Outcome::Drop(why) => panic!("dropped: {why:?}"),
    };
    let meta = RecvMeta {
        len,
        src: SocketAddr::new(plan.src.unwrap_or(IpAddr::from(REFLECTOR.0)), REFLECTOR.1),
        dst: Some(plan.dst.ip()),
        dst_port: plan.dst.port(),
        ifindex: 0,
        ttl: Some(60),
        tos: None,
        rx_time: None,
        ip_header_len: 0,
    };
    match sender.on_reply(
        &reply[..len],
        &meta,
        clock.now(),
        TimestampSource::UserSpace,
        clock.error_estimate(),
    ) {
        ReplyEvent::Matched(rec) => {
            assert_eq!(rec.tlv_error, None);
            Some((rec.tlvs, plan))
        }
        other => panic!("{other:?}"),
    }
}

fn summaries(reports: &[TlvReport]) -> Vec<String> {
    reports
        .iter()
        .map(|r| format!("{} [{}] {}", r.name, r.flags, r.summary))
        .collect()
}

#[test]
fn sender_decodes_an_accepted_destination_and_a_return_address() {
    let (reports, plan) = round_trip(
        &[
            ("dest-node-addr", "127.0.0.9"),
            ("return-address", "203.0.113.9"),
        ],
        &[("local-addresses", "127.0.0.9")],
    )
    .unwrap();
    assert_eq!(
        summaries(&reports),
        [
            "dna [-] 127.0.0.9 (accepted)",
            "return-path [-] addr 203.0.113.9",
        ]
    );
    assert_eq!(plan.src, Some("127.0.0.9".parse().unwrap()));
    assert_eq!(plan.dst, "203.0.113.9:40000".parse().unwrap());
}

#[test]
fn sender_sees_refusals_as_u() {
    // The engine reports a TLV with U as "unrecognized" without calling the
    // handler's decode (RFC 8972 §4: the sender skips TLVs with U).
    let (reports, _) = round_trip(
        &[
            ("dest-node-addr", "10.9.9.9"),
            ("return-srv6-sids", "2001:db8::1"),
        ],
        &[],
    )
    .unwrap();
    let flags: Vec<String> = reports.iter().map(|r| r.flags.to_string()).collect();
    assert_eq!(flags, ["U", "U"]);
}

#[test]
fn sender_control_codes() {
    assert!(round_trip(&[("return-path-cc", "0")], &[]).is_none());
    let (reports, _) = round_trip(&[("return-path-cc", "1")], &[]).unwrap();
    assert_eq!(summaries(&reports), ["return-path [-] cc reply"]);
}
