//! The Micro-session ID TLV through the engine: the registered record,
//! `Reflector::process` with a registry built from the linked plugins, and
//! `SenderSession` build_request → process → on_reply → decoded report.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use stamp_core::clock::{Clock, ManualClock, TimestampSource, UnixNanos};
use stamp_core::reflector::{DropReason, Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::{linked_plugins, PluginSettings};
use stamp_core::sender::{request_templates, ReplyEvent, SenderConfig, SenderSession};
use stamp_core::transport::RecvMeta;
use stamp_core::{Registry, TlvOptions, TlvReport};
use stamp_wire::{TimestampFormat, TlvType, MAX_DATAGRAM};

/// Unauthenticated base packet length (RFC 8762 §4.2.1).
const BASE: usize = 44;
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

fn request(seq: u32, tlvs: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; BASE];
    p[0..4].copy_from_slice(&seq.to_be_bytes());
    p[4..12].copy_from_slice(&[0xE9, 0xE1, 0, 0, 0x80, 0, 0, 0]);
    p[12..16].copy_from_slice(&[0, 1, 0x12, 0x34]);
    p.extend_from_slice(tlvs);
    p
}

/// Received from SENDER at REFLECTOR on interface 5.
fn request_meta(len: usize) -> RecvMeta {
    RecvMeta {
        len,
        src: SocketAddr::from(SENDER),
        dst: Some(IpAddr::V4(Ipv4Addr::from(REFLECTOR.0))),
        dst_port: REFLECTOR.1,
        ifindex: 5,
        ttl: Some(64),
        tos: Some(0),
        rx_time: None,
        ip_header_len: 0,
    }
}

fn clock() -> ManualClock {
    ManualClock::new(T0, TimestampFormat::Ntp)
}

fn process(r: &mut Reflector, req: &[u8]) -> Result<Vec<u8>, DropReason> {
    let mut reply = vec![0u8; MAX_DATAGRAM];
    match r.process(
        req,
        &request_meta(req.len()),
        Instant::now(),
        &clock(),
        &mut reply,
    ) {
        Outcome::Reply { len, .. } => Ok(reply[BASE..len].to_vec()),
        Outcome::Drop(why) => Err(why),
    }
}

#[test]
fn one_fixed_code_is_registered() {
    let mine: Vec<(&str, u8, bool)> = linked_plugins()
        .into_iter()
        .filter(|p| p.crate_name == env!("CARGO_PKG_NAME"))
        .map(|p| (p.key, p.code, p.configurable_code))
        .collect();
    assert_eq!(mine, [("micro-session-id", 11, false)]);
    let reg = registry(&[]);
    assert_eq!(
        reg.get(TlvType::MICRO_SESSION_ID).map(|h| h.tlv_type()),
        Some(TlvType(11))
    );
    assert_eq!(
        crate::SENDER_OPTION_KEYS,
        ["micro-session-id", "reflector-member-link-id"]
    );
    assert_eq!(
        crate::PLUGIN_SETTING_KEYS,
        [
            "reflector-member-link-id",
            "reflector-member-link-id-by-addr",
            "reflector-member-link-id-by-ifindex",
        ]
    );
}

#[test]
fn bad_setting_fails_the_registry_with_the_plugin_named() {
    let mut s = PluginSettings::new();
    s.set("reflector-member-link-id", "x");
    assert_eq!(
        Registry::from_linked(&s, &BTreeMap::new())
            .unwrap_err()
            .to_string(),
        "TLV plugin micro-session-id: --reflector-member-link-id x: expected a member-link ID 0..65535"
    );
}

#[test]
fn reflector_fills_its_member_link_id() {
    let mut r = Reflector::new(
        ReflectorConfig::default(),
        registry(&[("reflector-member-link-id-by-ifindex", "5=7")]),
    );
    let area = process(&mut r, &request(1, &[0x80, 11, 0, 4, 0, 3, 0, 0])).unwrap();
    assert_eq!(area, [0x00, 11, 0, 4, 0, 3, 0, 7]);
}

#[test]
fn reflector_discards_a_request_for_another_member_link() {
    let mut r = Reflector::new(
        ReflectorConfig::default(),
        registry(&[("reflector-member-link-id", "7")]),
    );
    assert_eq!(
        process(&mut r, &request(1, &[0x80, 11, 0, 4, 0, 3, 0, 8])),
        Err(DropReason::TlvDiscard)
    );
    assert_eq!(r.stats().dropped_tlv_discard, 1);
    assert_eq!(r.stats().reflected, 0);
}

#[test]
fn malformed_length_gets_m_and_the_rest_is_copied() {
    let tlvs = [0x80, 11, 0, 2, 0, 3, 0x80, 11, 0, 4, 0, 3, 0, 8];
    let mut r = Reflector::new(
        ReflectorConfig::default(),
        registry(&[("reflector-member-link-id", "7")]),
    );
    let area = process(&mut r, &request(1, &tlvs)).unwrap();
    let mut expect = tlvs;
    expect[0] = 0x40;
    assert_eq!(
        area, expect,
        "the TLV after M is neither checked nor filled"
    );
}

/// One packet with sender `opts` through a reflector with `settings`;
/// `tamper` may change the reply's TLV area on the way back.
fn round_trip(
    opts: &[(&str, &str)],
    settings: &[(&str, &str)],
    tamper: impl Fn(&mut [u8]),
) -> Result<Vec<TlvReport>, DropReason> {
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
    let mut refl = Reflector::new(ReflectorConfig::default(), reg);
    let clock = clock();
    let (mut buf, mut reply) = (vec![0u8; MAX_DATAGRAM], vec![0u8; MAX_DATAGRAM]);
    let n = sender.build_request(&mut buf, Instant::now(), &clock);
    let len = match refl.process(
        &buf[..n],
        &request_meta(n),
        Instant::now(),
        &clock,
        &mut reply,
    ) {
        Outcome::Reply { len, .. } => len,
        Outcome::Drop(why) => return Err(why),
    };
    tamper(&mut reply[BASE..len]);
    let meta = RecvMeta {
        len,
        src: SocketAddr::from(REFLECTOR),
        dst: Some(IpAddr::V4(Ipv4Addr::from(SENDER.0))),
        dst_port: SENDER.1,
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
        ReplyEvent::Matched(rec) => Ok(rec.tlvs),
        other => panic!("{other:?}"),
    }
}

fn line(r: &TlvReport) -> String {
    format!("{} [{}] {}", r.name, r.flags, r.summary)
}

#[test]
fn sender_sees_both_ids_ok() {
    let r = round_trip(
        &[("micro-session-id", "3")],
        &[("reflector-member-link-id", "7")],
        |_| {},
    )
    .unwrap();
    assert_eq!(line(&r[0]), "msid [-] sender 3 reflector 7 ok");
    let r = round_trip(
        &[("micro-session-id", "3"), ("reflector-member-link-id", "7")],
        &[("reflector-member-link-id", "7")],
        |_| {},
    )
    .unwrap();
    assert_eq!(line(&r[0]), "msid [-] sender 3 reflector 7 ok");
    assert_eq!(r[0].fields["mismatch"], false);
}

#[test]
fn expected_reflector_id_mismatch_gets_no_reply() {
    assert_eq!(
        round_trip(
            &[("micro-session-id", "3"), ("reflector-member-link-id", "8")],
            &[("reflector-member-link-id", "7")],
            |_| {},
        ),
        Err(DropReason::TlvDiscard)
    );
}

#[test]
fn sender_flags_a_reply_with_wrong_ids() {
    // A reflector that ignores the check (or a corrupted reply): the
    // sender must see the mismatch.
    let r = round_trip(
        &[("micro-session-id", "3"), ("reflector-member-link-id", "7")],
        &[("reflector-member-link-id", "7")],
        |area| area[7] = 9,
    )
    .unwrap();
    assert_eq!(
        line(&r[0]),
        "msid [-] sender 3 reflector 9 mismatch (expected reflector 7)"
    );
    assert_eq!(r[0].fields["mismatch"], true);
    let r = round_trip(&[("micro-session-id", "3")], &[], |area| area[5] = 4).unwrap();
    assert_eq!(
        line(&r[0]),
        "msid [-] sender 4 reflector 0 mismatch (sent sender 3)"
    );
}
