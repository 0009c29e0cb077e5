//! The BER TLVs through the engine: the registered records,
//! `Reflector::process` with a registry built from the linked plugins, and
//! `SenderSession` build_request → process → on_reply → decoded reports,
//! with bit errors injected on each path.
//!
//! The Extra Padding TLV belongs to the RFC 8972 plugin, which this crate
//! does not depend on; the tests register a stand-in padding handler that
//! fills the padding with the BER pattern, as the wiring described in the
//! crate documentation would.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use stamp_core::clock::{Clock, ManualClock, TimestampSource, UnixNanos};
use stamp_core::reflector::{Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::{linked_plugins, PluginSettings};
use stamp_core::sender::{request_templates, ReplyEvent, SenderConfig, SenderSession};
use stamp_core::transport::RecvMeta;
use stamp_core::{
    ReflectContext, Registry, TlvHandler, TlvOptions, TlvReport, TlvSlot, TlvTemplate, TlvVerdict,
};
use stamp_wire::{TimestampFormat, TlvType, MAX_DATAGRAM};

use crate::measure::{fill_padding, reverse_errors, BerCodes, BitErrors};
use crate::options;

const BASE: usize = 44;
const T0: UnixNanos = UnixNanos(1_700_000_000_000_000_000);
const SENDER: ([u8; 4], u16) = ([198, 51, 100, 2], 40000);
const REFLECTOR: ([u8; 4], u16) = ([192, 0, 2, 1], 862);

/// Stand-in for the RFC 8972 Extra Padding handler, filled with the BER
/// pattern when the session uses BER.
struct PatternPadding;

impl TlvHandler for PatternPadding {
    fn tlv_type(&self) -> TlvType {
        TlvType::EXTRA_PADDING
    }
    fn reflect(&self, _: &mut TlvSlot<'_>, _: &mut ReflectContext<'_>) -> TlvVerdict {
        TlvVerdict::Processed
    }
    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        Ok(options::session(opts)?.map(|s| {
            let mut value = vec![0; s.padding_size];
            fill_padding(&mut value, &s.pattern);
            TlvTemplate {
                tlv_type: TlvType::EXTRA_PADDING,
                value,
            }
        }))
    }
}

fn registry(settings: &[(&str, &str)], overrides: &[(&str, u8)]) -> Registry {
    let mut s = PluginSettings::new();
    for (k, v) in settings {
        s.set(*k, *v);
    }
    let ov: BTreeMap<String, u8> = overrides.iter().map(|(k, c)| (k.to_string(), *c)).collect();
    let mut reg = Registry::from_linked(&s, &ov).unwrap();
    reg.insert(
        "extra-padding",
        "Extra Padding (test stand-in)",
        "RFC 8972 §4.1",
        "test",
        1,
        Box::new(PatternPadding),
    )
    .unwrap();
    reg
}

fn request(seq: u32, tlvs: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; BASE];
    p[0..4].copy_from_slice(&seq.to_be_bytes());
    p[4..12].copy_from_slice(&[0xE9, 0xE1, 0, 0, 0x80, 0, 0, 0]);
    p[12..16].copy_from_slice(&[0, 1, 0x12, 0x34]);
    p.extend_from_slice(tlvs);
    p
}

fn request_meta(len: usize) -> RecvMeta {
    RecvMeta {
        len,
        src: SocketAddr::from(SENDER),
        dst: Some(IpAddr::V4(Ipv4Addr::from(REFLECTOR.0))),
        dst_port: REFLECTOR.1,
        ifindex: 0,
        ttl: Some(64),
        tos: Some(0),
        rx_time: None,
        ip_header_len: 0,
    }
}

fn clock() -> ManualClock {
    ManualClock::new(T0, TimestampFormat::Ntp)
}

fn reflect(r: &mut Reflector, req: &[u8]) -> Vec<u8> {
    let mut reply = vec![0u8; MAX_DATAGRAM];
    match r.process(
        req,
        &request_meta(req.len()),
        Instant::now(),
        &clock(),
        &mut reply,
    ) {
        Outcome::Reply { len, .. } => reply[BASE..len].to_vec(),
        Outcome::Drop(why) => panic!("dropped: {why:?}"),
    }
}

#[test]
fn three_configurable_codes_are_registered() {
    let mine: Vec<(&str, u8, bool)> = linked_plugins()
        .into_iter()
        .filter(|p| p.crate_name == env!("CARGO_PKG_NAME"))
        .map(|p| (p.key, p.code, p.configurable_code))
        .collect();
    assert_eq!(
        mine,
        [
            ("ber-pattern", 240, true),
            ("ber-count", 241, true),
            ("ber-burst", 242, true),
        ]
    );
    assert_eq!(
        crate::SENDER_OPTION_KEYS,
        ["ber", "ber-pattern", "ber-padding-size"]
    );
    assert_eq!(
        crate::PLUGIN_SETTING_KEYS,
        ["ber-pattern-code", "ber-count-code", "ber-burst-code"]
    );
}

#[test]
fn reflector_counts_forward_errors_and_repairs_the_padding() {
    #[rustfmt::skip]
    let tlvs = [
        0x80, 240, 0, 2, 0xFF, 0x00,
        0x80, 241, 0, 4, 0, 0, 0, 0,
        0x80, 242, 0, 4, 0, 0, 0, 0,
        0x80, 1, 0, 6, 0xFF, 0x0F, 0xFF, 0x00, 0x7F, 0x00, // 4 + 1 errors, burst 4
    ];
    let mut r = Reflector::new(ReflectorConfig::default(), registry(&[], &[]));
    let area = reflect(&mut r, &request(1, &tlvs));
    #[rustfmt::skip]
    let expect = [
        0x00, 240, 0, 2, 0xFF, 0x00,
        0x00, 241, 0, 4, 0, 0, 0, 5,
        0x00, 242, 0, 4, 0, 0, 0, 4,
        0x00, 1, 0, 6, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00,
    ];
    assert_eq!(area, expect);
}

#[test]
fn padding_before_the_ber_tlvs_and_no_pattern_tlv() {
    let tlvs = [
        0x80, 1, 0, 4, 0xFF, 0x01, 0xFF, 0x00, 0x80, 241, 0, 4, 0, 0, 0, 0,
    ];
    let mut r = Reflector::new(ReflectorConfig::default(), registry(&[], &[]));
    let area = reflect(&mut r, &request(1, &tlvs));
    assert_eq!(
        area,
        [0x00, 1, 0, 4, 0xFF, 0x00, 0xFF, 0x00, 0x00, 241, 0, 4, 0, 0, 0, 1]
    );
}

#[test]
fn missing_padding_gives_c_on_every_ber_tlv() {
    let tlvs = [
        0x80, 240, 0, 2, 0xFF, 0x00, 0x80, 241, 0, 4, 0, 0, 0, 0, 0x80, 242, 0, 4, 0, 0, 0, 0,
    ];
    let mut r = Reflector::new(ReflectorConfig::default(), registry(&[], &[]));
    let area = reflect(&mut r, &request(1, &tlvs));
    let mut expect = tlvs;
    for at in [0, 6, 14] {
        expect[at] = 0x10;
    }
    assert_eq!(area, expect);
    assert_eq!(r.stats().tlv_conformance, 3);
}

#[test]
fn padding_not_a_multiple_of_the_pattern_gives_c() {
    let tlvs = [
        0x80, 240, 0, 3, 1, 2, 3, 0x80, 241, 0, 4, 0, 0, 0, 0, 0x80, 1, 0, 4, 1, 2, 3, 1,
    ];
    let mut r = Reflector::new(ReflectorConfig::default(), registry(&[], &[]));
    let area = reflect(&mut r, &request(1, &tlvs));
    assert_eq!((area[0], area[7], area[15]), (0x10, 0x10, 0x00));
    assert_eq!(&area[11..15], &[0, 0, 0, 0]);
}

/// One packet of a BER session with `opts`; `forward` / `backward` flip
/// bits of the padding on the way there / back (offsets in the padding
/// Value). Returns the decoded reports and the reverse-path count.
fn round_trip(
    opts: &[(&str, &str)],
    reg: Registry,
    forward: &[(usize, u8)],
    backward: &[(usize, u8)],
) -> (Vec<TlvReport>, Option<BitErrors>) {
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
    // Extra Padding goes last (the engine places it after the HMAC slot).
    let padding_at = n - options::session(&o).unwrap().unwrap().padding_size;
    assert_eq!(buf[padding_at - 3], 1, "padding TLV last");
    for &(i, mask) in forward {
        buf[padding_at + i] ^= mask;
    }
    let len = match refl.process(
        &buf[..n],
        &request_meta(n),
        Instant::now(),
        &clock,
        &mut reply,
    ) {
        Outcome::Reply { len, .. } => len,
        Outcome::Drop(why) => panic!("dropped: {why:?}"),
    };
    for &(i, mask) in backward {
        reply[padding_at + i] ^= mask;
    }
    let codes = refl_codes(&o);
    let reverse = reverse_errors(&reply[BASE..len], &codes);
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
        ReplyEvent::Matched(rec) => {
            assert_eq!(rec.tlv_error, None);
            (rec.tlvs, reverse)
        }
        other => panic!("{other:?}"),
    }
}

fn refl_codes(o: &TlvOptions) -> BerCodes {
    BerCodes::from_settings(o).unwrap()
}

fn lines(reports: &[TlvReport]) -> Vec<String> {
    reports
        .iter()
        .filter(|r| r.tlv_type != TlvType::EXTRA_PADDING)
        .map(|r| format!("{} [{}] {}", r.name, r.flags, r.summary))
        .collect()
}

#[test]
fn sender_sees_forward_errors_and_counts_reverse_ones() {
    let opts = [
        ("ber", "true"),
        ("ber-pattern", "a5"),
        ("ber-padding-size", "16"),
    ];
    let (reports, reverse) = round_trip(
        &opts,
        registry(&[], &[]),
        &[(3, 0x01), (4, 0x80), (10, 0x10)], // run of 2 across octets, then 1
        &[(15, 0x0F)],
    );
    assert_eq!(
        lines(&reports),
        [
            "ber-pattern [-] pattern a5",
            "ber [-] errors 3, reverse errors 4 burst 4",
            "ber-burst [-] burst 2",
        ]
    );
    assert_eq!(
        reverse,
        Some(BitErrors {
            errors: 4,
            burst: 4
        })
    );
}

#[test]
fn clean_paths_report_zero() {
    let (reports, reverse) = round_trip(&[("ber", "1")], registry(&[], &[]), &[], &[]);
    assert_eq!(
        lines(&reports),
        [
            "ber-pattern [-] pattern ff00",
            "ber [-] errors 0, reverse errors 0 burst 0",
            "ber-burst [-] burst 0",
        ]
    );
    assert_eq!(reverse, Some(BitErrors::default()));
}

#[test]
fn moved_codes_work_when_the_settings_name_them() {
    let settings = [("ber-count-code", "250"), ("ber-burst-code", "251")];
    let reg = registry(&settings, &[("ber-count", 250), ("ber-burst", 251)]);
    assert!(reg.get(TlvType(250)).is_some() && reg.get(TlvType(241)).is_none());
    let mut opts = vec![("ber", "1")];
    opts.extend_from_slice(&settings);
    let (reports, _) = round_trip(&opts, reg, &[(0, 0xFF)], &[]);
    assert_eq!(
        lines(&reports),
        [
            "ber-pattern [-] pattern ff00",
            "ber [-] errors 8, reverse errors 0 burst 0",
            "ber-burst [-] burst 8",
        ]
    );
    assert_eq!(reports[1].tlv_type, TlvType(250));
}

#[test]
fn a_moved_code_the_settings_contradict_is_refused() {
    let mut s = PluginSettings::new();
    s.set("ber-count-code", "241");
    let ov: BTreeMap<String, u8> = [("ber-count".to_string(), 250u8)].into();
    assert_eq!(
        Registry::from_linked(&s, &ov).unwrap_err().to_string(),
        "TLV plugin ber-count: --ber-count-code 241 disagrees with the type code 250 in force for ber-count"
    );
}
