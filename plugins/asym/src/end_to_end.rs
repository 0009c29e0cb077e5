//! The handler through the engine: `Reflector::process` with a registry
//! built from the linked plugins, and `SenderSession` build_request →
//! process → on_reply, checking the reply plan (`Outcome::Reply { plan, .. }`),
//! the reply's flags and the decoded report.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use stamp_core::clock::{Clock, ManualClock, TimestampSource, UnixNanos};
use stamp_core::reflector::{DropReason, Outcome, Reflector, ReflectorConfig};
use stamp_core::sender::{request_templates, ReplyEvent, SenderConfig, SenderSession};
use stamp_core::transport::RecvMeta;
use stamp_core::{Registry, ReplyPlan, TlvOptions, TlvReport};
use stamp_wire::tlv::{emit_header, HEADER_LEN};
use stamp_wire::{TimestampFormat, TlvFlags, TlvType, MAX_DATAGRAM};

const BASE: usize = 44;
const T0: UnixNanos = UnixNanos(1_700_000_000_000_000_000);
const SENDER: ([u8; 4], u16) = ([198, 51, 100, 2], 40000);
const REFLECTOR: ([u8; 4], u16) = ([192, 0, 2, 1], 862);

fn pairs(p: &[(&str, &str)]) -> TlvOptions {
    let mut o = TlvOptions::new();
    for (k, v) in p {
        o.set(*k, *v);
    }
    o
}

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

/// What the reflector driver must do with `plan.reply_len` (see the crate
/// docs): grow the `len`-octet reply to `reply_len` octets with an Extra
/// Padding TLV (flags 0, type 1, zero Value) appended after every TLV.
fn grow(reply: &mut Vec<u8>, len: usize, reply_len: usize) {
    reply.truncate(len);
    if reply_len > len {
        let pad = reply_len - len - HEADER_LEN;
        let mut h = [0u8; HEADER_LEN];
        emit_header(&mut h, TlvFlags::NONE, TlvType::EXTRA_PADDING, pad as u16);
        reply.extend_from_slice(&h);
        reply.resize(reply_len, 0);
    }
}

struct Exchange {
    request_len: usize,
    outcome: Outcome,
    /// Every reply the sender received (the plan's copies) and what it made
    /// of them.
    events: Vec<ReplyEvent>,
}

/// One request of a session with `opts` through a reflector with
/// `settings`; the reply is delivered `plan.copies` times, grown to
/// `plan.reply_len`, as the driver would send it.
fn exchange(opts: &[(&str, &str)], settings: &[(&str, &str)]) -> Exchange {
    let reg = Registry::from_linked(&pairs(settings), &BTreeMap::new()).unwrap();
    let templates = request_templates(&reg, &pairs(opts)).unwrap();
    let config = SenderConfig {
        ssid: 0x1234,
        ..Default::default()
    };
    let mut sender = SenderSession::new(config, reg.clone(), templates).unwrap();
    let mut refl = Reflector::new(ReflectorConfig::default(), reg);
    let clock = ManualClock::new(T0, TimestampFormat::Ntp);
    let (mut buf, mut reply) = (vec![0u8; MAX_DATAGRAM], vec![0u8; MAX_DATAGRAM]);
    let n = sender.build_request(&mut buf, Instant::now(), &clock);
    let outcome = refl.process(
        &buf[..n],
        &request_meta(n),
        Instant::now(),
        &clock,
        &mut reply,
    );
    let mut events = Vec::new();
    if let Outcome::Reply { len, plan } = outcome {
        grow(&mut reply, len, plan.reply_len);
        let meta = RecvMeta {
            len: reply.len(),
            src: SocketAddr::from(REFLECTOR),
            dst: Some(plan.dst.ip()),
            dst_port: plan.dst.port(),
            ifindex: 0,
            ttl: Some(60),
            tos: None,
            rx_time: None,
            ip_header_len: 0,
        };
        for _ in 0..plan.copies {
            clock.advance(u64::from(plan.copy_interval_ns));
            events.push(sender.on_reply(
                &reply,
                &meta,
                clock.now(),
                TimestampSource::UserSpace,
                clock.error_estimate(),
            ));
        }
    }
    Exchange {
        request_len: n,
        outcome,
        events,
    }
}

fn plan(x: &Exchange) -> ReplyPlan {
    match x.outcome {
        Outcome::Reply { plan, .. } => plan,
        o => panic!("no reply: {o:?}"),
    }
}

fn first_report(x: &Exchange) -> (TlvReport, usize) {
    match &x.events[0] {
        ReplyEvent::Matched(rec) => {
            assert_eq!(rec.tlv_error, None);
            (
                rec.tlvs
                    .iter()
                    .find(|t| t.name == "rtpc")
                    .expect("rtpc report")
                    .clone(),
                rec.len,
            )
        }
        other => panic!("{other:?}"),
    }
}

const ASK_4_X_200: [(&str, &str); 3] = [
    ("reflected-control-count", "4"),
    ("reflected-control-length", "200"),
    ("reflected-control-interval-ns", "2000000"),
];

#[test]
fn default_policy_one_reply_of_request_size_with_c() {
    let x = exchange(&ASK_4_X_200, &[]);
    assert_eq!(x.request_len, BASE + 12);
    let p = plan(&x);
    assert_eq!((p.copies, p.copy_interval_ns), (1, 0));
    assert_eq!(p.reply_len, x.request_len, "no growth");
    assert!(!p.suppress);
    let (r, len) = first_report(&x);
    assert_eq!(len, x.request_len);
    assert_eq!(r.flags, TlvFlags::C);
    assert_eq!(r.summary, "4 x 200 octets every 2000000 ns (limited: C)");
}

#[test]
fn allowed_policy_plans_a_train_of_larger_replies() {
    let x = exchange(
        &ASK_4_X_200,
        &[
            ("reflected-control-enabled", "true"),
            ("reflected-control-max-count", "4"),
            ("reflected-control-max-size", "1500"),
        ],
    );
    let p = plan(&x);
    assert_eq!(
        (p.copies, p.copy_interval_ns, p.reply_len),
        (4, 2_000_000, 200)
    );
    let (r, len) = first_report(&x);
    assert_eq!(len, 200, "the driver grew the reply with Extra Padding");
    assert_eq!(r.flags, TlvFlags::NONE);
    assert_eq!(r.summary, "4 x 200 octets every 2000000 ns");
    // The core sender sees copies 2..4 as duplicates: counting a train is
    // sender-driver work.
    assert_eq!(x.events.len(), 4);
    assert!(x.events[1..]
        .iter()
        .all(|e| matches!(e, ReplyEvent::Duplicate(0))));
}

#[test]
fn a_request_beyond_the_policy_is_clamped_with_c() {
    let x = exchange(
        &[
            ("reflected-control-count", "10"),
            ("reflected-control-length", "3000"),
            ("reflected-control-interval-ns", "10"),
        ],
        &[
            ("reflected-control-enabled", "true"),
            ("reflected-control-max-count", "4"),
            ("reflected-control-max-size", "1500"),
        ],
    );
    let p = plan(&x);
    assert_eq!(
        (p.copies, p.copy_interval_ns, p.reply_len),
        (4, 1_000_000, 1500)
    );
    let (r, len) = first_report(&x);
    assert_eq!(len, 1500);
    assert_eq!(r.flags, TlvFlags::C);
}

#[test]
fn number_zero_gets_no_reply() {
    let x = exchange(
        &[("reflected-control-count", "0")],
        &[("reflected-control-enabled", "true")],
    );
    assert_eq!(x.outcome, Outcome::Drop(DropReason::Suppressed));
    assert!(x.events.is_empty());
}

#[test]
fn l3_group_of_another_network_gets_no_reply_and_ours_a_train() {
    let settings = [
        ("reflected-control-enabled", "true"),
        ("reflected-control-max-count", "2"),
    ];
    let x = exchange(
        &[
            ("reflected-control-count", "2"),
            ("reflected-control-l3-group", "203.0.113.0/24"),
        ],
        &settings,
    );
    assert_eq!(x.outcome, Outcome::Drop(DropReason::Suppressed));
    let x = exchange(
        &[
            ("reflected-control-count", "2"),
            ("reflected-control-l3-group", "192.0.2.0/24"),
        ],
        &settings,
    );
    assert_eq!(plan(&x).copies, 2);
    let (r, _) = first_report(&x);
    assert_eq!(
        r.summary,
        "2 x 0 octets every 1000000 ns, l3 group 192.0.2.0/24"
    );
}
