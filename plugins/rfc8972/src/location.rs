//! Location TLV, type 2 (RFC 8972 §4.2).
//!
//! ```text
//! | Destination Port (2) | Source Port (2) | sub-TLVs ... |
//! ```
//! The sender asks with the generic sub-TLVs Source MAC Address (1),
//! Destination IP Address (4) and Source IP Address (7), all zero
//! (§4.2: "MUST NOT fill any information fields except for the STAMP TLV
//! Flags, Type, and Length"). The reflector keeps the Length (§4.2.2), fills
//! both UDP ports and answers each generic sub-TLV with the specific one of
//! the same size (§4.2.2): Source EUI-64 (3), Destination IPv4/IPv6 (5/6),
//! Source IPv4/IPv6 (8/9).
//!
//! A UDP socket does not see the Ethernet header, so the reflector cannot
//! know the request's source MAC address: it answers Source MAC Address
//! with an all-zero Source EUI-64 Address sub-TLV, which §4.2.2 prescribes
//! when "the received extended STAMP test packet does not have the Source
//! MAC Address".
//!
//! Local policy (§4.2.2: the reflector "MAY leave some fields unreported by
//! filling them with zeroes", and a stateful reflector "MUST provide control"
//! of it): the plugin setting [`SETTING_HIDE`], a comma list of `ports`,
//! `dst` and `src`, names fields the reflector reports as zeros. The
//! sub-TLVs keep their specific types so the sender sees the answer.
//!
//! IPv4 addresses are copied in network byte order into the first four
//! octets of the 16-octet Value (§4.2.1, Figure 10), never byte-swapped. An
//! IPv4-mapped IPv6 address (a dual-stack socket receiving IPv4) is reported
//! as IPv4, since the packet on the wire was IPv4.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde_json::Value;
use stamp_core::registry::PluginSettings;
use stamp_core::{
    DecodeContext, ReflectContext, TlvHandler, TlvOptions, TlvReport, TlvSlot, TlvTemplate,
    TlvVerdict,
};
use stamp_wire::tlv::{emit_header, HEADER_LEN};
use stamp_wire::{TlvFlags, TlvIter, TlvType};

use crate::options;

/// Sender option (flag): include a Location TLV.
pub const OPT_LOCATION: &str = "location";

/// Reflector plugin setting: fields reported as zeros by local policy
/// (comma list of `ports`, `dst`, `src`; absent = report everything).
pub const SETTING_HIDE: &str = "location-hide";

/// Octets of the two port fields before the sub-TLVs.
pub const PORTS_LEN: usize = 4;

/// A Location sub-TLV type, "STAMP Sub-TLV Types" (RFC 8972 §5.3): an open
/// newtype, so unknown types are values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocationSubTlv(pub u8);

impl LocationSubTlv {
    /// Source MAC Address, sender request (§4.2.1).
    pub const SOURCE_MAC: LocationSubTlv = LocationSubTlv(1);
    /// Source EUI-48 Address (§4.2.1, Figure 9).
    pub const SOURCE_EUI48: LocationSubTlv = LocationSubTlv(2);
    /// Source EUI-64 Address (§4.2.1).
    pub const SOURCE_EUI64: LocationSubTlv = LocationSubTlv(3);
    /// Destination IP Address, sender request (§4.2.1).
    pub const DESTINATION_IP: LocationSubTlv = LocationSubTlv(4);
    /// Destination IPv4 Address (§4.2.1, Figure 10).
    pub const DESTINATION_IPV4: LocationSubTlv = LocationSubTlv(5);
    /// Destination IPv6 Address (§4.2.1).
    pub const DESTINATION_IPV6: LocationSubTlv = LocationSubTlv(6);
    /// Source IP Address, sender request (§4.2.1).
    pub const SOURCE_IP: LocationSubTlv = LocationSubTlv(7);
    /// Source IPv4 Address (§4.2.1, Figure 10).
    pub const SOURCE_IPV4: LocationSubTlv = LocationSubTlv(8);
    /// Source IPv6 Address (§4.2.1).
    pub const SOURCE_IPV6: LocationSubTlv = LocationSubTlv(9);

    /// The Length §4.2.1 requires ("MUST be equal to"), for the nine
    /// defined types.
    pub const fn required_len(self) -> Option<usize> {
        match self.0 {
            1..=3 => Some(8),
            4..=9 => Some(16),
            _ => None,
        }
    }

    /// Private Use range (RFC 8972 §5.3): Length MUST be at least 4 (§4).
    pub const fn is_private_use(self) -> bool {
        matches!(self.0, 252..=254)
    }
}

/// Handler of the Location TLV.
#[derive(Debug)]
pub struct LocationHandler {
    code: TlvType,
    hide_ports: bool,
    hide_dst: bool,
    hide_src: bool,
}

impl LocationHandler {
    /// A handler for type `code` that reports every field.
    pub fn new(code: TlvType) -> Self {
        LocationHandler {
            code,
            hide_ports: false,
            hide_dst: false,
            hide_src: false,
        }
    }

    /// A handler whose policy comes from [`SETTING_HIDE`].
    pub fn from_settings(code: TlvType, settings: &PluginSettings) -> Result<Self, String> {
        let mut h = Self::new(code);
        for item in settings
            .get(SETTING_HIDE)
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match item {
                "ports" => h.hide_ports = true,
                "dst" => h.hide_dst = true,
                "src" => h.hide_src = true,
                _ => {
                    return Err(options::invalid(
                        SETTING_HIDE,
                        item,
                        "fields are ports, dst, src",
                    ))
                }
            }
        }
        Ok(h)
    }
}

stamp_core::register_tlv! {
    key: "location",
    code: 2,
    name: "Location",
    spec: "RFC 8972 §4.2",
    configurable_code: false,
    factory: |code, settings| LocationHandler::from_settings(code, settings).map(|h| Box::new(h) as Box<dyn TlvHandler>),
}

/// Where framing of the sub-TLV area breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broken {
    /// The sub-TLV at this offset (of the sub-TLV area) has a header: flag it.
    At(usize),
    /// Fewer than four octets left: no header to flag.
    Trailer,
}

/// §4.2: "The Session-Reflector MUST verify that the TLV is well formed":
/// every sub-TLV fits, the defined types have the Length §4.2.1 requires,
/// Private Use types are at least 4 octets long (§4).
fn check_sub_tlvs(area: &[u8]) -> Result<(), Broken> {
    for item in TlvIter::new(area) {
        match item {
            Ok(sub) => {
                let t = LocationSubTlv(sub.tlv_type.0);
                let len = sub.value.len();
                let bad = match t.required_len() {
                    Some(required) => len != required,
                    None => t.is_private_use() && len < 4,
                };
                if bad {
                    return Err(Broken::At(sub.offset));
                }
            }
            Err((at, stamp_wire::TlvError::ValueOverrun)) => return Err(Broken::At(at)),
            Err((_, stamp_wire::TlvError::TruncatedHeader)) => return Err(Broken::Trailer),
        }
    }
    Ok(())
}

/// Write `addr` into a 16-octet address Value: IPv4 in the first four
/// octets, network order, the rest zero (§4.2.1, Figure 10); IPv6 whole.
fn put_address(value: &mut [u8], addr: Option<IpAddr>) {
    value.fill(0);
    match addr {
        Some(IpAddr::V4(a)) => value[..4].copy_from_slice(&a.octets()),
        Some(IpAddr::V6(a)) => value.copy_from_slice(&a.octets()),
        None => {}
    }
}

impl TlvHandler for LocationHandler {
    fn tlv_type(&self) -> TlvType {
        self.code
    }

    /// §4.2, §4.2.2. Validates the whole TLV before writing anything, so a
    /// malformed one is returned as received (M on the TLV by the engine,
    /// and M on the offending sub-TLV when it has a header, §4.2.1: sub-TLV
    /// "U and M flags … as defined in Section 4").
    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        let v = slot.value_mut();
        if v.len() < PORTS_LEN {
            return TlvVerdict::Malformed;
        }
        if let Err(broken) = check_sub_tlvs(&v[PORTS_LEN..]) {
            if let Broken::At(at) = broken {
                v[PORTS_LEN + at] = TlvFlags::M.0;
            }
            return TlvVerdict::Malformed;
        }

        let src = ctx.meta.src.ip().to_canonical();
        let dst = ctx.meta.dst.map(|a| a.to_canonical());
        // The family of the received packet: the destination's when known,
        // else the source's (the same on the wire, §4.2.2).
        let v6 = dst.unwrap_or(src).is_ipv6();
        let (dst, src_value) = (
            dst.filter(|_| !self.hide_dst),
            Some(src).filter(|_| !self.hide_src),
        );
        let (dst_port, src_port) = if self.hide_ports {
            (0, 0)
        } else {
            (ctx.meta.dst_port, ctx.meta.src.port())
        };
        v[0..2].copy_from_slice(&dst_port.to_be_bytes());
        v[2..4].copy_from_slice(&src_port.to_be_bytes());

        let mut off = PORTS_LEN;
        while off + HEADER_LEN <= v.len() {
            let len = u16::from_be_bytes([v[off + 2], v[off + 3]]) as usize;
            let (head, rest) = v[off..].split_at_mut(HEADER_LEN);
            let value = &mut rest[..len];
            // A request carrying a specific sub-TLV is answered like the
            // generic one of its group.
            let answer = match LocationSubTlv(head[1]) {
                LocationSubTlv(1..=3) => {
                    value.fill(0); // no MAC address on a UDP socket
                    Some(LocationSubTlv::SOURCE_EUI64)
                }
                LocationSubTlv(4..=6) => {
                    put_address(value, dst);
                    Some(if v6 {
                        LocationSubTlv::DESTINATION_IPV6
                    } else {
                        LocationSubTlv::DESTINATION_IPV4
                    })
                }
                LocationSubTlv(7..=9) => {
                    put_address(value, src_value);
                    Some(if src.is_ipv6() {
                        LocationSubTlv::SOURCE_IPV6
                    } else {
                        LocationSubTlv::SOURCE_IPV4
                    })
                }
                _ => None,
            };
            match answer {
                // U, M and I cleared; I MUST be 0 on transmission (§4.2.1).
                Some(t) => {
                    head[0] = 0;
                    head[1] = t.0;
                }
                // Unknown sub-TLV: copied, U set (§4.2.1 refers to §4).
                None => head[0] = TlvFlags::U.0,
            }
            off += HEADER_LEN + len;
        }
        TlvVerdict::Processed
    }

    /// Value: both ports zero, then sub-TLVs 1, 4 and 7 with zero Values
    /// and U set in their flags (§4.2.1 applies §4's U rule to sub-TLVs).
    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        if !opts.flag(OPT_LOCATION) {
            return Ok(None);
        }
        let subs = [
            LocationSubTlv::SOURCE_MAC,
            LocationSubTlv::DESTINATION_IP,
            LocationSubTlv::SOURCE_IP,
        ];
        let len = PORTS_LEN
            + subs
                .iter()
                .map(|t| HEADER_LEN + t.required_len().unwrap_or(0))
                .sum::<usize>();
        let mut value = vec![0u8; len];
        let mut off = PORTS_LEN;
        for t in subs {
            off += emit_header(
                &mut value[off..],
                TlvFlags::U,
                TlvType(t.0),
                t.required_len().unwrap_or(0) as u16,
            );
        }
        Ok(Some(TlvTemplate {
            tlv_type: self.code,
            value,
        }))
    }

    fn decode(&self, flags: TlvFlags, value: &[u8], ctx: &DecodeContext<'_>) -> TlvReport {
        if value.len() < PORTS_LEN {
            return TlvReport::new(
                self.code,
                "location",
                flags,
                format!("malformed ({} octets)", value.len()),
            );
        }
        let dst_port = u16::from_be_bytes([value[0], value[1]]);
        let src_port = u16::from_be_bytes([value[2], value[3]]);
        let (mut dst_ip, mut src_ip, mut mac) = (None, None, None);
        for sub in TlvIter::new(&value[PORTS_LEN..]).map_while(Result::ok) {
            if sub.flags.unrecognized() || sub.flags.malformed() {
                continue;
            }
            let v = sub.value;
            match LocationSubTlv(sub.tlv_type.0) {
                LocationSubTlv::SOURCE_EUI48 if v.len() >= 6 => mac = Some(hex_mac(&v[..6])),
                LocationSubTlv::SOURCE_EUI64 if v.len() == 8 => {
                    mac = Some(hex_mac(v)).filter(|_| v.iter().any(|&b| b != 0))
                }
                LocationSubTlv::DESTINATION_IPV4 if v.len() >= 4 => dst_ip = ipv4(v),
                LocationSubTlv::DESTINATION_IPV6 if v.len() == 16 => dst_ip = ipv6(v),
                LocationSubTlv::SOURCE_IPV4 if v.len() >= 4 => src_ip = ipv4(v),
                LocationSubTlv::SOURCE_IPV6 if v.len() == 16 => src_ip = ipv6(v),
                _ => {}
            }
        }
        let show = |ip: Option<IpAddr>, port: u16| match ip {
            Some(ip) => SocketAddr::new(ip, port).to_string(),
            None => format!("?:{port}"),
        };
        let mut summary = format!(
            "dst {} src {}",
            show(dst_ip, dst_port),
            show(src_ip, src_port)
        );
        if let Some(m) = &mac {
            summary.push_str(&format!(" mac {m}"));
        }
        let opt_str = |ip: Option<IpAddr>| ip.map_or(Value::Null, |a| Value::from(a.to_string()));
        let mut report = TlvReport::new(self.code, "location", flags, String::new())
            .field("dst_ip", opt_str(dst_ip))
            .field("dst_port", dst_port)
            .field("src_ip", opt_str(src_ip))
            .field("src_port", src_port)
            .field("src_mac", mac.map_or(Value::Null, Value::from));
        // §4.2.2: the source address and port the reflector saw, against the
        // ones this reply was sent to, reveal a NAT on the path.
        if let (Some(seen), Some(local)) = (src_ip, ctx.meta.dst) {
            let nat = seen != local.to_canonical()
                || (ctx.meta.dst_port != 0 && src_port != ctx.meta.dst_port);
            if nat {
                summary.push_str(&format!(
                    " (NAT: we are {})",
                    SocketAddr::new(local.to_canonical(), ctx.meta.dst_port)
                ));
            }
            report = report.field("nat", nat);
        }
        report.summary = summary;
        report
    }
}

fn ipv4(v: &[u8]) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3]))).filter(|a| !a.is_unspecified())
}

fn ipv6(v: &[u8]) -> Option<IpAddr> {
    let octets: [u8; 16] = v.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(octets))).filter(|a| !a.is_unspecified())
}

fn hex_mac(v: &[u8]) -> String {
    v.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{reply_meta, request_value, Fixture};
    use stamp_wire::TimestampFormat;

    fn handler() -> LocationHandler {
        LocationHandler::new(TlvType::LOCATION)
    }

    /// The request TLV: header, ports, sub-TLVs 1 (8), 4 (16), 7 (16).
    #[rustfmt::skip]
    const REQUEST: [u8; 60] = [
        0x80, 2, 0, 56,
        0, 0, 0, 0,
        0x80, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0,
        0x80, 4, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x80, 7, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    /// The reflector's answer for 198.51.100.2:40000 -> 192.0.2.1:862.
    #[rustfmt::skip]
    const REPLY_V4: [u8; 60] = [
        0x80, 2, 0, 56,
        0x03, 0x5E, 0x9C, 0x40,
        0, 3, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 5, 0, 16, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 8, 0, 16, 198, 51, 100, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn request_asks_with_generic_sub_tlvs() {
        assert_eq!(
            request_value(&handler(), &[("location", "true")])
                .unwrap()
                .unwrap(),
            &REQUEST[4..]
        );
        assert_eq!(request_value(&handler(), &[]).unwrap(), None);
    }

    #[test]
    fn reflector_fills_ports_and_ipv4_addresses_in_network_order() {
        let (out, verdict, _) = Fixture::v4().reflect(&handler(), &REQUEST);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(out, REPLY_V4);
    }

    #[test]
    fn reflector_fills_ipv6_addresses() {
        let mut f = Fixture::v4();
        let s: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let d: Ipv6Addr = "2001:db8::1".parse().unwrap();
        f.meta.src = SocketAddr::new(IpAddr::V6(s), 40000);
        f.meta.dst = Some(IpAddr::V6(d));
        let (out, verdict, _) = f.reflect(&handler(), &REQUEST);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(&out[20..24], &[0, 6, 0, 16]);
        assert_eq!(&out[24..40], &d.octets());
        assert_eq!(&out[40..44], &[0, 9, 0, 16]);
        assert_eq!(&out[44..60], &s.octets());
    }

    #[test]
    fn reflector_reports_ipv4_mapped_addresses_as_ipv4() {
        let mut f = Fixture::v4();
        f.meta.src = "[::ffff:198.51.100.2]:40000".parse().unwrap();
        f.meta.dst = Some("::ffff:192.0.2.1".parse().unwrap());
        let (out, _, _) = f.reflect(&handler(), &REQUEST);
        assert_eq!(out, REPLY_V4);
    }

    #[test]
    fn reflector_leaves_unknown_destination_zero() {
        let mut f = Fixture::v4();
        f.meta.dst = None;
        let (out, _, _) = f.reflect(&handler(), &REQUEST);
        assert_eq!(
            &out[20..40],
            &[0, 5, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn local_policy_reports_hidden_fields_as_zeros() {
        let mut settings = PluginSettings::new();
        settings.set(SETTING_HIDE, "ports, src");
        let h = LocationHandler::from_settings(TlvType::LOCATION, &settings).unwrap();
        let (out, verdict, _) = Fixture::v4().reflect(&h, &REQUEST);
        assert_eq!(verdict, TlvVerdict::Processed);
        let mut expect = REPLY_V4;
        expect[4..8].fill(0);
        expect[44..48].fill(0);
        assert_eq!(out, expect);
        settings.set(SETTING_HIDE, "mac");
        assert_eq!(
            LocationHandler::from_settings(TlvType::LOCATION, &settings).unwrap_err(),
            "--location-hide mac: fields are ports, dst, src"
        );
    }

    #[test]
    fn reflector_flags_unknown_sub_tlv_and_keeps_its_bytes() {
        let tlv = [0x80, 2, 0, 10, 0, 0, 0, 0, 0x20, 200, 0, 2, 0xAB, 0xCD];
        let (out, verdict, _) = Fixture::v4().reflect(&handler(), &tlv);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(
            out,
            [0x80, 2, 0, 10, 0x03, 0x5E, 0x9C, 0x40, 0x80, 200, 0, 2, 0xAB, 0xCD]
        );
    }

    #[test]
    fn malformed_value_shorter_than_ports() {
        let tlv = [0x80, 2, 0, 3, 0, 0, 0];
        let (out, verdict, _) = Fixture::v4().reflect(&handler(), &tlv);
        assert_eq!(verdict, TlvVerdict::Malformed);
        assert_eq!(out, tlv);
    }

    #[test]
    fn malformed_sub_tlv_past_the_end_is_flagged_and_nothing_filled() {
        // Sub-TLV 4 says 16 octets, only 4 follow.
        let tlv = [0x80, 2, 0, 12, 0, 0, 0, 0, 0x80, 4, 0, 16, 0, 0, 0, 0];
        let (out, verdict, _) = Fixture::v4().reflect(&handler(), &tlv);
        assert_eq!(verdict, TlvVerdict::Malformed);
        assert_eq!(
            out,
            [0x80, 2, 0, 12, 0, 0, 0, 0, 0x40, 4, 0, 16, 0, 0, 0, 0]
        );
    }

    #[test]
    fn malformed_trailing_partial_sub_tlv_header() {
        let tlv = [0x80, 2, 0, 6, 0, 0, 0, 0, 0x80, 4];
        let (out, verdict, _) = Fixture::v4().reflect(&handler(), &tlv);
        assert_eq!(verdict, TlvVerdict::Malformed);
        assert_eq!(out, tlv);
    }

    #[test]
    fn malformed_known_sub_tlv_with_wrong_length() {
        // Source IP Address with Length 4 (must be 16), after a good one.
        let tlv = [
            0x80, 2, 0, 24, 0, 0, 0, 0, 0x80, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 7, 0, 4, 0, 0,
            0, 0,
        ];
        let (out, verdict, _) = Fixture::v4().reflect(&handler(), &tlv);
        assert_eq!(verdict, TlvVerdict::Malformed);
        let mut expect = tlv;
        expect[20] = 0x40;
        assert_eq!(out, expect);
    }

    #[test]
    fn malformed_private_use_sub_tlv_shorter_than_enterprise_number() {
        let tlv = [0x80, 2, 0, 6, 0, 0, 0, 0, 0x80, 253, 0, 0];
        assert_eq!(
            Fixture::v4().reflect(&handler(), &tlv).1,
            TlvVerdict::Malformed
        );
    }

    #[test]
    fn decode_shows_addresses_and_ports() {
        let meta = reply_meta(None);
        let ctx = DecodeContext {
            meta: &meta,
            sent_value: Some(&REQUEST[4..]),
            reflector_format: TimestampFormat::Ntp,
        };
        let r = handler().decode(TlvFlags::NONE, &REPLY_V4[4..], &ctx);
        assert_eq!(
            (r.name, r.summary.as_str()),
            ("location", "dst 192.0.2.1:862 src 198.51.100.2:40000")
        );
        assert_eq!(r.fields["dst_ip"], "192.0.2.1");
        assert_eq!(r.fields["src_port"], 40000);
        assert_eq!(r.fields["src_mac"], Value::Null);
        assert_eq!(r.fields["nat"], false);
    }

    #[test]
    fn decode_detects_nat() {
        let mut meta = reply_meta(None);
        meta.dst = Some("10.0.0.5".parse().unwrap());
        let ctx = DecodeContext {
            meta: &meta,
            sent_value: None,
            reflector_format: TimestampFormat::Ntp,
        };
        let r = handler().decode(TlvFlags::NONE, &REPLY_V4[4..], &ctx);
        assert_eq!(
            r.summary,
            "dst 192.0.2.1:862 src 198.51.100.2:40000 (NAT: we are 10.0.0.5:40000)"
        );
        assert_eq!(r.fields["nat"], true);
    }
}
