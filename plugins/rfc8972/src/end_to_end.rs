//! Each TLV through the engine: `Reflector::process` with a registry built
//! from the linked plugins, and `SenderSession` build_request → process →
//! on_reply, checking reply octets, flags and decoded reports.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use stamp_core::clock::{Clock, ManualClock, TimestampSource, UnixNanos};
use stamp_core::reflector::{Outcome, Reflector, ReflectorConfig};
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

fn reflector(stateful: bool, reg: Registry) -> Reflector {
    Reflector::new(
        ReflectorConfig {
            stateful,
            ..Default::default()
        },
        reg,
    )
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

/// Received from SENDER at REFLECTOR with TTL 64 and TOS 0xBA (DSCP 46, ECN 2).
fn request_meta(len: usize) -> RecvMeta {
    RecvMeta {
        len,
        src: SocketAddr::from(SENDER),
        dst: Some(IpAddr::V4(Ipv4Addr::from(REFLECTOR.0))),
        dst_port: REFLECTOR.1,
        ifindex: 0,
        ttl: Some(64),
        tos: Some(0xBA),
        rx_time: None,
        ip_header_len: 0,
    }
}

fn clock() -> ManualClock {
    ManualClock::new(T0, TimestampFormat::Ntp)
}

/// Reflect `req`; return the reply's TLV area and the plan.
fn reflect(r: &mut Reflector, req: &[u8]) -> (Vec<u8>, ReplyPlan) {
    let mut reply = vec![0u8; MAX_DATAGRAM];
    match r.process(
        req,
        &request_meta(req.len()),
        Instant::now(),
        &clock(),
        &mut reply,
    ) {
        Outcome::Reply { len, plan } => {
            assert_eq!(len, req.len(), "symmetric size");
            assert_eq!(&reply[14..16], &[0x12, 0x34], "SSID echoed");
            (reply[BASE..len].to_vec(), plan)
        }
        Outcome::Drop(why) => panic!("dropped: {why:?}"),
    }
}

#[test]
fn extra_padding_is_echoed_with_u_cleared() {
    let (area, _) = reflect(
        &mut reflector(false, registry(&[])),
        &request(7, &[0x80, 1, 0, 3, 0xAA, 0xBB, 0xCC]),
    );
    assert_eq!(area, [0x00, 1, 0, 3, 0xAA, 0xBB, 0xCC]);
}

#[test]
fn location_is_filled_from_the_receive_metadata() {
    #[rustfmt::skip]
    let tlv = [
        0x80, 2, 0, 56, 0, 0, 0, 0,
        0x80, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0,
        0x80, 4, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x80, 7, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    #[rustfmt::skip]
    let expect = [
        0x00, 2, 0, 56, 0x03, 0x5E, 0x9C, 0x40,
        0, 3, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 5, 0, 16, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 8, 0, 16, 198, 51, 100, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let (area, _) = reflect(&mut reflector(false, registry(&[])), &request(7, &tlv));
    assert_eq!(area, expect);
}

#[test]
fn timestamp_information_tells_the_clock_and_methods_used() {
    // ManualClock: local free-running (5); no kernel timestamp: SW local (2).
    let (area, _) = reflect(
        &mut reflector(false, registry(&[])),
        &request(7, &[0x80, 3, 0, 4, 0, 0, 0, 0]),
    );
    assert_eq!(area, [0x00, 3, 0, 4, 5, 2, 5, 2]);
}

#[test]
fn class_of_service_reports_received_marking_and_plans_dscp1() {
    // Ask for CS1 (8) on the reply; request received with DSCP 46, ECN 2.
    let (area, plan) = reflect(
        &mut reflector(false, registry(&[])),
        &request(7, &[0x80, 4, 0, 4, 8 << 2, 0, 0, 0]),
    );
    assert_eq!(area, [0x00, 4, 0, 4, 0x22, 0xE8, 0, 0]);
    assert_eq!(plan.tos, Some(8 << 2 | 2));
    // Policy refuses CS1: RP = 1, the reply keeps the received TOS.
    let reg = registry(&[("cos-allowed-dscp", "0,46")]);
    let (area, plan) = reflect(
        &mut reflector(false, reg),
        &request(7, &[0x80, 4, 0, 4, 8 << 2, 0, 0, 0]),
    );
    assert_eq!(area, [0x00, 4, 0, 4, 0x22, 0xE9, 0, 0]);
    assert_eq!(plan.tos, Some(0xBA));
}

#[test]
fn direct_measurement_counts_per_stateful_session() {
    let mut r = reflector(true, registry(&[]));
    reflect(
        &mut r,
        &request(0, &[0x80, 5, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
    );
    let (area, _) = reflect(
        &mut r,
        &request(1, &[0x80, 5, 0, 12, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]),
    );
    assert_eq!(area, [0x00, 5, 0, 12, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2]);
}

#[test]
fn access_report_is_copied_and_an_invalid_id_keeps_u() {
    let mut r = reflector(false, registry(&[]));
    let (area, _) = reflect(&mut r, &request(7, &[0x80, 6, 0, 4, 0x20, 2, 0, 0]));
    assert_eq!(area, [0x00, 6, 0, 4, 0x20, 2, 0, 0]);
    let (area, _) = reflect(
        &mut r,
        &request(
            8,
            &[0x80, 6, 0, 4, 0x50, 1, 0, 0, 0x80, 3, 0, 4, 0, 0, 0, 0],
        ),
    );
    // U stays on the Access Report; processing goes on with the next TLV.
    assert_eq!(
        area,
        [0x80, 6, 0, 4, 0x50, 1, 0, 0, 0x00, 3, 0, 4, 5, 2, 5, 2]
    );
    assert_eq!(r.stats().tlv_unrecognized, 1);
}

#[test]
fn follow_up_telemetry_reports_the_previous_reply_when_stateful() {
    let tlv = [
        0x80, 7, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let mut r = reflector(true, registry(&[]));
    let (first, _) = reflect(&mut r, &request(0, &tlv));
    assert_eq!(
        first,
        [0x00, 7, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    let (second, _) = reflect(&mut r, &request(1, &tlv));
    let t0 = clock().encode(T0).0.to_be_bytes();
    let mut expect = vec![0x00, 7, 0, 16, 0, 0, 0, 0];
    expect.extend_from_slice(&t0);
    expect.extend_from_slice(&[2, 0, 0, 0]);
    assert_eq!(second, expect);
    // Stateless: zeros.
    let mut r = reflector(false, registry(&[]));
    reflect(&mut r, &request(0, &tlv));
    let (area, _) = reflect(&mut r, &request(1, &tlv));
    assert_eq!(area, first);
}

#[test]
fn malformed_tlv_gets_m_and_the_rest_is_copied_unchanged() {
    // Direct Measurement with Length 8 (must be 12), then a CoS TLV.
    let tlvs = [
        0x80, 5, 0, 8, 0, 0, 0, 1, 0xAA, 0xAA, 0xAA, 0xAA, 0x80, 4, 0, 4, 0xB8, 0, 0xFF, 0xFF,
    ];
    let mut r = reflector(false, registry(&[]));
    let (area, plan) = reflect(&mut r, &request(7, &tlvs));
    let mut expect = tlvs;
    expect[0] = 0x40;
    assert_eq!(area, expect);
    assert_eq!(
        plan.tos, None,
        "CoS after the malformed TLV is not acted upon"
    );
    assert_eq!(r.stats().tlv_malformed, 1);

    // Each TLV's own malformed case: M set, U cleared, following TLV untouched.
    let follow = [0x80, 1, 0, 2, 0xCC, 0xDD];
    #[rustfmt::skip]
    let cases: [&[u8]; 6] = [
        &[0x80, 2, 0, 2, 0, 0],                                  // Location shorter than its ports
        &[0x80, 3, 0, 2, 0, 0],                                  // Timestamp Information < 4
        &[0x80, 4, 0, 2, 0xB8, 0],                               // CoS != 4
        &[0x80, 5, 0, 4, 0, 0, 0, 1],                            // Direct Measurement != 12
        &[0x80, 6, 0, 2, 0x10, 1],                               // Access Report != 4
        &[0x80, 2, 0, 8, 0, 0, 0, 0, 0x80, 4, 0, 16],            // Location sub-TLV overrun
    ];
    for case in cases {
        let mut tlvs = case.to_vec();
        tlvs.extend_from_slice(&follow);
        let (area, _) = reflect(&mut reflector(false, registry(&[])), &request(7, &tlvs));
        let mut expect = tlvs.clone();
        expect[0] = 0x40;
        if case[1] == 2 && case.len() > 8 {
            expect[8] = 0x40; // the offending sub-TLV is flagged too
        }
        assert_eq!(area, expect, "type {}", case[1]);
    }

    // Follow-Up Telemetry: M, and its Sequence Number / Timestamp zeroed.
    let tlvs = [
        0x80, 7, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0x80, 1, 0, 2, 0xCC, 0xDD,
    ];
    let (area, _) = reflect(&mut reflector(true, registry(&[])), &request(7, &tlvs));
    assert_eq!(
        area,
        [0x40, 7, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 1, 0, 2, 0xCC, 0xDD]
    );
}

/// Run `count` packets of a session with `opts` through a reflector and
/// return the decoded TLVs of each reply.
fn round_trip(opts: &[(&str, &str)], stateful: bool, count: usize) -> Vec<Vec<TlvReport>> {
    let reg = registry(&[]);
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
    let mut refl = reflector(stateful, reg);
    let clock = clock();
    let (mut buf, mut reply) = (vec![0u8; MAX_DATAGRAM], vec![0u8; MAX_DATAGRAM]);
    let mut out = Vec::new();
    for _ in 0..count {
        let n = sender.build_request(&mut buf, Instant::now(), &clock);
        let (len, plan) = match refl.process(
            &buf[..n],
            &request_meta(n),
            Instant::now(),
            &clock,
            &mut reply,
        ) {
            Outcome::Reply { len, plan } => (len, plan),
            Outcome::Drop(why) => panic!("dropped: {why:?}"),
        };
        // The network delivers the reply with the TOS the plan asked for.
        let meta = RecvMeta {
            len,
            src: SocketAddr::from(REFLECTOR),
            dst: Some(IpAddr::V4(Ipv4Addr::from(SENDER.0))),
            dst_port: SENDER.1,
            ifindex: 0,
            ttl: Some(60),
            tos: plan.tos,
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
                out.push(rec.tlvs);
            }
            other => panic!("{other:?}"),
        }
    }
    out
}

fn summaries(reports: &[TlvReport]) -> Vec<String> {
    reports
        .iter()
        .map(|r| format!("{} [{}] {}", r.name, r.flags, r.summary))
        .collect()
}

#[test]
fn sender_decodes_every_tlv_of_a_stateful_session() {
    let opts = [
        ("padding", "8"),
        ("padding-random", "true"),
        ("location", "true"),
        ("timestamp-info", "true"),
        ("cos", "true"),
        ("dscp", "46"),
        ("ecn", "2"),
        ("direct-measurement", "true"),
        ("access-report", "1"),
        ("follow-up-telemetry", "true"),
    ];
    let replies = round_trip(&opts, true, 2);
    // Code order, Extra Padding last (the engine puts it after the HMAC TLV slot).
    assert_eq!(
        summaries(&replies[0]),
        [
            "location [-] dst 192.0.2.1:862 src 198.51.100.2:40000",
            "tsinfo [-] in local/sw-local out local/sw-local",
            "cos [-] dscp 46->46 ecn 2->2 rp 0 rev dscp 46 ecn 2",
            "dm [-] S_TxC 1 R_RxC 1 R_TxC 1",
            "access [-] id 1 (3GPP) rc 1 (network available)",
            "fut [-] no previous reply (first reply or stateless reflector)",
            "padding [-] 8 octets",
        ]
    );
    let second = summaries(&replies[1]);
    assert_eq!(second[3], "dm [-] S_TxC 2 R_RxC 2 R_TxC 2");
    assert_eq!(
        second[5],
        "fut [-] prev seq 0 ts 1700000000.000000000 mode sw-local"
    );
    let dm = &replies[1][3];
    assert_eq!(dm.fields["fwd_lost"], 0);
    assert_eq!(replies[1][6].fields["intact"], true);
}

#[test]
fn sender_sees_each_tlv_alone() {
    let cases: [(&[(&str, &str)], &str); 7] = [
        (&[("padding", "3")], "padding [-] 3 octets"),
        (
            &[("location", "1")],
            "location [-] dst 192.0.2.1:862 src 198.51.100.2:40000",
        ),
        (
            &[("timestamp-info", "1")],
            "tsinfo [-] in local/sw-local out local/sw-local",
        ),
        (
            &[("cos", "1"), ("dscp", "10"), ("ecn", "2")],
            "cos [-] dscp 10->46 ecn 2->2 rp 0 rev dscp 10 ecn 2",
        ),
        (
            &[("direct-measurement", "1")],
            "dm [-] S_TxC 1 R_RxC 1 R_TxC 1",
        ),
        (
            &[("access-report", "2"), ("access-return-code", "2")],
            "access [-] id 2 (non-3GPP) rc 2 (network unavailable)",
        ),
        (
            &[("follow-up-telemetry", "1")],
            "fut [-] no previous reply (first reply or stateless reflector)",
        ),
    ];
    for (opts, expect) in cases {
        let replies = round_trip(opts, false, 1);
        assert_eq!(summaries(&replies[0]), [expect]);
    }
}
