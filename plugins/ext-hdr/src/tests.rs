//! Unit tests: both handlers, both families, with and without the header,
//! selectors, ordering and malformed cases.

use std::collections::BTreeMap;

use stamp_core::registry::{linked_plugins, PluginSettings};
use stamp_core::testing::{reply_meta, request_value, Fixture};
use stamp_core::{DecodeContext, Registry, TlvHandler, TlvVerdict};
use stamp_wire::{TimestampFormat, TlvFlags, TlvType};

use crate::fixed::FixedHeaderHandler;
use crate::headers::{extension_headers, ExtHeader};
use crate::ipv6_ext::ExtHeaderHandler;

const FIXED: TlvType = TlvType(247);
const EXT: TlvType = TlvType(246);

fn ipv4_header() -> Vec<u8> {
    // 0x46: IHL 6 (one option word), TOS 0xb8, total 80, id 0x1234, DF,
    // TTL 61, UDP, checksum, 198.51.100.2 -> 192.0.2.1, option NOP x4.
    vec![
        0x46, 0xb8, 0x00, 0x50, 0x12, 0x34, 0x40, 0x00, 61, 17, 0xab, 0xcd, 198, 51, 100, 2, 192,
        0, 2, 1, 1, 1, 1, 1,
    ]
}

/// IPv6 header, Hop-by-Hop (8), Destination Options (16), then UDP.
fn ipv6_header() -> Vec<u8> {
    let mut h = vec![0x6b, 0x81, 0x23, 0x45, 0x00, 0x40, 0, 63];
    h.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    h.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    // Hop-by-Hop: next 60, len 0, PadN(4) -- 8 octets.
    h.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    // Destination Options: next 17, len 1, option 0x1e len 12, data 0..12.
    h.extend_from_slice(&[17, 1, 0x1e, 12, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    h
}

fn tlv(code: TlvType, value: &[u8]) -> Vec<u8> {
    let mut t = vec![0x80, code.0];
    t.extend_from_slice(&(value.len() as u16).to_be_bytes());
    t.extend_from_slice(value);
    t
}

fn fixture(hdr: Option<Vec<u8>>) -> Fixture {
    let mut f = Fixture::v4();
    f.ip_header = hdr;
    f
}

#[test]
fn extension_header_walk_finds_both_headers_and_stops_at_udp() {
    let h = ipv6_header();
    let found: Vec<ExtHeader> = extension_headers(&h).collect();
    assert_eq!(
        found,
        [
            ExtHeader {
                kind: 0,
                offset: 40,
                len: 8
            },
            ExtHeader {
                kind: 60,
                offset: 48,
                len: 16
            }
        ]
    );
    assert_eq!(extension_headers(&ipv4_header()).count(), 0);
    // A header cut short ends the walk instead of overrunning.
    assert_eq!(extension_headers(&h[..60]).count(), 1);
}

#[test]
fn fixed_header_without_a_received_header_is_answered_with_u() {
    let h = FixedHeaderHandler::new(FIXED);
    let req = tlv(FIXED, &[0; 20]);
    let (out, verdict, _) = fixture(None).reflect(&h, &req);
    assert_eq!(verdict, TlvVerdict::Unrecognized);
    assert_eq!(out, req);
}

#[test]
fn fixed_ipv4_header_is_copied_after_the_requested_octets() {
    let h = FixedHeaderHandler::new(FIXED);
    let hdr = ipv4_header();
    let (out, verdict, _) = fixture(Some(hdr.clone())).reflect(&h, &tlv(FIXED, &[0; 20]));
    assert_eq!(verdict, TlvVerdict::Processed);
    assert_eq!(&out[4..8], &[0, 0, 0, 0], "Requested kept as received");
    assert_eq!(&out[8..24], &hdr[4..20], "options are not reflected");
}

#[test]
fn fixed_header_selector_must_match_else_c() {
    let h = FixedHeaderHandler::new(FIXED);
    let hdr = ipv4_header();
    let mut v = vec![0u8; 20];
    v[..4].copy_from_slice(&hdr[..4]);
    let (out, verdict, _) = fixture(Some(hdr.clone())).reflect(&h, &tlv(FIXED, &v));
    assert_eq!(verdict, TlvVerdict::Processed);
    assert_eq!(&out[4..24], &hdr[..20]);
    v[1] = 0; // another TOS
    let req = tlv(FIXED, &v);
    let (out, verdict, _) = fixture(Some(hdr)).reflect(&h, &req);
    assert_eq!(verdict, TlvVerdict::Conformance);
    assert_eq!(out, req, "value unchanged on C");
}

#[test]
fn fixed_header_length_of_the_other_family_or_odd_gets_c() {
    let h = FixedHeaderHandler::new(FIXED);
    for (hdr, len) in [(ipv4_header(), 40), (ipv6_header(), 20), (ipv4_header(), 3)] {
        let (_, verdict, _) = fixture(Some(hdr)).reflect(&h, &tlv(FIXED, &vec![0; len]));
        assert_eq!(verdict, TlvVerdict::Conformance, "len {len}");
    }
    // Garbage as the received header: C, never a panic.
    let (_, verdict, _) = fixture(Some(vec![0x45, 0])).reflect(&h, &tlv(FIXED, &[0; 20]));
    assert_eq!(verdict, TlvVerdict::Conformance);
}

#[test]
fn fixed_ipv6_header_is_copied() {
    let h = FixedHeaderHandler::new(FIXED);
    let hdr = ipv6_header();
    let (out, verdict, _) = fixture(Some(hdr.clone())).reflect(&h, &tlv(FIXED, &[0; 40]));
    assert_eq!(verdict, TlvVerdict::Processed);
    assert_eq!(&out[8..44], &hdr[4..40]);
}

#[test]
fn ext_header_with_zero_selector_takes_the_first_header_of_its_length() {
    let h = ExtHeaderHandler::new(EXT);
    let hdr = ipv6_header();
    let (out, verdict, _) = fixture(Some(hdr.clone())).reflect(&h, &tlv(EXT, &[0; 16]));
    assert_eq!(verdict, TlvVerdict::Processed);
    assert_eq!(&out[4..12], &[0; 8]);
    assert_eq!(&out[12..20], &hdr[56..64]);
    // Eight octets: the Hop-by-Hop header, whose octets after the selector
    // are none (Length - 8 = 0).
    let (out, verdict, _) = fixture(Some(hdr)).reflect(&h, &tlv(EXT, &[0; 8]));
    assert_eq!(verdict, TlvVerdict::Processed);
    assert_eq!(out, tlv(EXT, &[0; 8]));
}

#[test]
fn ext_header_selector_and_order() {
    let h = ExtHeaderHandler::new(EXT);
    let hdr = ipv6_header();
    // Selector naming the Destination Options header.
    let mut v = vec![0u8; 16];
    v[..8].copy_from_slice(&hdr[48..56]);
    let (out, verdict, _) = fixture(Some(hdr.clone())).reflect(&h, &tlv(EXT, &v));
    assert_eq!(verdict, TlvVerdict::Processed);
    assert_eq!(&out[4..20], &hdr[48..64]);
    // A wrong selector: C, unchanged.
    v[3] = 99;
    let req = tlv(EXT, &v);
    let (out, verdict, _) = fixture(Some(hdr.clone())).reflect(&h, &req);
    assert_eq!(verdict, TlvVerdict::Conformance);
    assert_eq!(out, req);
    // Two requests in header order: Hop-by-Hop (8) then Dest Opts (16).
    let mut area = tlv(EXT, &[0; 8]);
    area.extend(tlv(EXT, &[0; 16]));
    let f = fixture(Some(hdr.clone()));
    let a = f.reflect_area(&h, &area, 0);
    let (second, verdict, _) = f.reflect_at(&h, &a, 12);
    assert_eq!(verdict, TlvVerdict::Processed);
    assert_eq!(&second[12..20], &hdr[56..64]);
    // Out of order: Dest Opts first, then an 8-octet one that would be
    // Hop-by-Hop (before it in the chain) -> C on the second.
    let mut area = tlv(EXT, &[0; 16]);
    area.extend(tlv(EXT, &[0; 8]));
    let (_, verdict, _) = f.run(&h, &area, 20);
    assert_eq!(verdict, TlvVerdict::Conformance);
}

#[test]
fn ext_header_refusals() {
    let h = ExtHeaderHandler::new(EXT);
    // No header: U.
    let (_, verdict, _) = fixture(None).reflect(&h, &tlv(EXT, &[0; 8]));
    assert_eq!(verdict, TlvVerdict::Unrecognized);
    // IPv4 request, short Length, no header of that length: C.
    for (hdr, len) in [(ipv4_header(), 8), (ipv6_header(), 4), (ipv6_header(), 24)] {
        let (_, verdict, _) = fixture(Some(hdr)).reflect(&h, &tlv(EXT, &vec![0; len]));
        assert_eq!(verdict, TlvVerdict::Conformance, "len {len}");
    }
}

#[test]
fn sender_requests_follow_the_options() {
    let f = FixedHeaderHandler::new(FIXED);
    assert_eq!(request_value(&f, &[]).unwrap(), None);
    assert_eq!(
        request_value(&f, &[("reflected-fixed-hdr", "true")]).unwrap(),
        Some(vec![0; 20])
    );
    assert_eq!(
        request_value(
            &f,
            &[("reflected-fixed-hdr", "true"), ("target-family", "ipv6")]
        )
        .unwrap(),
        Some(vec![0; 40])
    );
    let v = request_value(
        &f,
        &[
            ("reflected-fixed-hdr", "true"),
            ("reflected-fixed-hdr-selector", "45b80050"),
        ],
    )
    .unwrap()
    .unwrap();
    assert_eq!(&v[..4], &[0x45, 0xb8, 0x00, 0x50]);
    assert_eq!(
        request_value(
            &f,
            &[
                ("reflected-fixed-hdr", "true"),
                ("reflected-fixed-hdr-selector", "6000")
            ]
        )
        .unwrap_err(),
        "--reflected-fixed-hdr-selector 6000: expected 4 octets in hex"
    );
    // auto: 0x45, the TOS from dscp/ecn, Total Length per packet.
    let auto = [
        ("reflected-fixed-hdr", "true"),
        ("reflected-fixed-hdr-selector", "auto"),
        ("dscp", "10"),
        ("ecn", "1"),
    ];
    let mut v = request_value(&f, &auto).unwrap().unwrap();
    assert_eq!(&v[..4], &[0x45, 41, 0, 0]);
    f.refresh(
        &mut v,
        &stamp_core::RequestContext {
            seq: 0,
            sent_before: 0,
            ssid: 0,
            packet_len: 68,
        },
    );
    assert_eq!(&v[..4], &[0x45, 41, 0, 96]);
    let mut auto6 = auto.to_vec();
    auto6.push(("target-family", "ipv6"));
    assert!(request_value(&f, &auto6)
        .unwrap_err()
        .contains("IPv4 targets only"));
    let e = ExtHeaderHandler::new(EXT);
    assert_eq!(
        request_value(&e, &[("reflected-ipv6-ext-hdr", "true")]).unwrap_err(),
        "--reflected-ipv6-ext-hdr needs an IPv6 target"
    );
    let v6 = [
        ("reflected-ipv6-ext-hdr", "true"),
        ("target-family", "ipv6"),
    ];
    assert_eq!(request_value(&e, &v6).unwrap(), Some(vec![0; 8]));
    let mut with_len = v6.to_vec();
    with_len.push(("ipv6-dest-opt-len", "24"));
    assert_eq!(request_value(&e, &with_len).unwrap(), Some(vec![0; 24]));
    with_len.push(("reflected-ipv6-ext-hdr-len", "12"));
    assert_eq!(
        request_value(&e, &with_len).unwrap_err(),
        "--reflected-ipv6-ext-hdr-len 12: expected a multiple of 8 from 8 to 2048"
    );
}

#[test]
fn decode_shows_the_header_fields() {
    let meta = reply_meta(None);
    let ctx = DecodeContext {
        meta: &meta,
        sent_value: None,
        reflector_format: TimestampFormat::Ntp,
    };
    let f = FixedHeaderHandler::new(FIXED);
    let hdr = ipv4_header();
    let mut v = vec![0u8; 20];
    v[4..].copy_from_slice(&hdr[4..20]);
    let r = f.decode(TlvFlags::NONE, &v, &ctx);
    assert_eq!(
        r.summary,
        "ipv4 ttl=61 tos=? id=4660 proto=17 src=198.51.100.2 dst=192.0.2.1"
    );
    assert_eq!(r.fields["ttl"], 61);
    assert!(r.fields["tos"].is_null());
    v[..4].copy_from_slice(&hdr[..4]);
    assert_eq!(f.decode(TlvFlags::NONE, &v, &ctx).fields["tos"], 0xb8);
    let h6 = ipv6_header();
    let mut v = h6[..40].to_vec();
    let r = f.decode(TlvFlags::NONE, &v, &ctx);
    assert_eq!(
        r.summary,
        "ipv6 hop_limit=63 tclass=184 flow=74565 next=0(hop-by-hop) src=2001:db8::2 dst=2001:db8::1"
    );
    v[..4].fill(0);
    assert!(f.decode(TlvFlags::NONE, &v, &ctx).fields["flow_label"].is_null());
    assert_eq!(
        f.decode(TlvFlags::U, &v, &ctx).summary,
        "not reflected: the reflector cannot see IP headers (U)"
    );
    let e = ExtHeaderHandler::new(EXT);
    let r = e.decode(TlvFlags::NONE, &h6[48..64], &ctx);
    assert_eq!(
        r.summary,
        "len=16 requested=11011e0c00010203 reflected=0405060708090a0b"
    );
    assert_eq!(r.fields["next_header"], 17);
    assert!(e
        .decode(TlvFlags::C, &[0; 16], &ctx)
        .summary
        .contains("(C)"));
    assert!(f
        .decode(TlvFlags::C, &[0; 20], &ctx)
        .summary
        .contains("(C)"));
}

#[test]
fn both_tlvs_are_registered_with_configurable_codes() {
    let mine: Vec<(&str, u8, bool)> = linked_plugins()
        .into_iter()
        .filter(|p| p.crate_name == env!("CARGO_PKG_NAME"))
        .map(|p| (p.key, p.code, p.configurable_code))
        .collect();
    assert_eq!(
        mine,
        [
            ("reflected-ipv6-ext-header", 246, true),
            ("reflected-fixed-header", 247, true)
        ]
    );
    let mut codes = BTreeMap::new();
    codes.insert("reflected-fixed-header".to_string(), 200u8);
    let reg = Registry::from_linked(&PluginSettings::new(), &codes).unwrap();
    assert_eq!(
        reg.get(TlvType(200)).map(|h| h.tlv_type()),
        Some(TlvType(200))
    );
    assert!(reg.get(TlvType(247)).is_none());
}
