//! Reflected Fixed Header Data TLV (draft-ietf-ippm-stamp-ext-hdr; code
//! TBA2, 247 here and configurable).
//!
//! ```text
//! | Requested (4) | Reflected (Length - 4) |
//! ```
//! Length is 20 for an IPv4 fixed header (options are not reflected) and 40
//! for the IPv6 fixed header. The sender puts zeros, or the first 4 on-wire
//! octets of the header as a selector, in Requested and zeros in Reflected.
//!
//! Reflector: without the received header (UDP transport) → U. With it: a
//! Length that is not the fixed-header length of the received family, or a
//! non-zero Requested that differs from the header's first 4 octets → C,
//! Value unchanged. Otherwise octets 4.. of the received header are copied
//! into Reflected and Requested is kept as received.
//!
//! So with an all-zero selector the first 4 octets (IPv4 version, TOS,
//! total length; IPv6 version, traffic class, flow label) are not reflected:
//! the decode reports TOS / traffic class / flow label only when the sender
//! gave a selector (which the reflector then matched).

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;
use stamp_core::{
    DecodeContext, ReflectContext, RequestContext, TlvHandler, TlvOptions, TlvReport, TlvSlot,
    TlvTemplate, TlvVerdict,
};
use stamp_wire::{TlvFlags, TlvType};

use crate::headers::{self, IPV4_FIXED_LEN, IPV6_FIXED_LEN};
use crate::options;

/// Sender option (flag): add the Reflected Fixed Header Data TLV.
pub const OPT_FIXED: &str = "reflected-fixed-hdr";
/// Sender option: the 4-octet Requested selector, hex, or `auto` (IPv4
/// targets: version/IHL 0x45, the sender's TOS from `dscp` / `ecn`, and the
/// total length of each request, filled per packet).
pub const OPT_FIXED_SELECTOR: &str = "reflected-fixed-hdr-selector";

/// IPv4 header plus UDP header, added to the request length for the
/// IPv4 Total Length of an `auto` selector.
const IPV4_UDP_OVERHEAD: usize = 28;
/// Length of the Requested field.
pub const REQUESTED_LEN: usize = 4;

/// Handler of the Reflected Fixed Header Data TLV.
#[derive(Debug)]
pub struct FixedHeaderHandler {
    code: TlvType,
}

impl FixedHeaderHandler {
    /// A handler for type `code`.
    pub fn new(code: TlvType) -> Self {
        FixedHeaderHandler { code }
    }
}

stamp_core::register_tlv! {
    key: "reflected-fixed-header",
    code: 247,
    name: "Reflected Fixed Header Data",
    spec: "draft-ietf-ippm-stamp-ext-hdr (TBA2)",
    configurable_code: true,
    factory: |code, _settings| Ok(Box::new(FixedHeaderHandler::new(code))),
}

/// The reflector's rule, on a Value and the received header.
pub fn reflect_fixed(value: &mut [u8], hdr: &[u8]) -> TlvVerdict {
    let Some(fixed) = headers::fixed_len(hdr) else {
        return TlvVerdict::Conformance;
    };
    if value.len() != fixed {
        return TlvVerdict::Conformance;
    }
    let requested = &value[..REQUESTED_LEN];
    if requested.iter().any(|&b| b != 0) && requested != &hdr[..REQUESTED_LEN] {
        return TlvVerdict::Conformance;
    }
    value[REQUESTED_LEN..].copy_from_slice(&hdr[REQUESTED_LEN..fixed]);
    TlvVerdict::Processed
}

impl TlvHandler for FixedHeaderHandler {
    fn tlv_type(&self) -> TlvType {
        self.code
    }

    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        match ctx.ip_header {
            None => TlvVerdict::Unrecognized,
            Some(hdr) => reflect_fixed(slot.value_mut(), hdr),
        }
    }

    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        if !opts.flag(OPT_FIXED) {
            return Ok(None);
        }
        let len = if options::target_is_v6(opts)? {
            IPV6_FIXED_LEN
        } else {
            IPV4_FIXED_LEN
        };
        let mut value = vec![0u8; len];
        if opts.get(OPT_FIXED_SELECTOR).map(str::trim) == Some("auto") {
            if len == IPV6_FIXED_LEN {
                return Err(format!(
                    "--{OPT_FIXED_SELECTOR} auto: IPv4 targets only (the IPv6 flow label is the kernel's choice)"
                ));
            }
            let dscp: u8 = opts.parse("dscp")?.unwrap_or(0);
            let ecn: u8 = opts.parse("ecn")?.unwrap_or(0);
            value[0] = 0x45;
            value[1] = (dscp << 2) | (ecn & 3);
            // Total Length: per packet, in refresh.
            return Ok(Some(TlvTemplate {
                tlv_type: self.code,
                value,
            }));
        }
        if let Some(sel) = options::selector(opts, OPT_FIXED_SELECTOR, REQUESTED_LEN)? {
            let want = if len == IPV6_FIXED_LEN { 6 } else { 4 };
            if sel[0] >> 4 != want {
                return Err(format!(
                    "--{OPT_FIXED_SELECTOR} {}: the first nibble must be the IP version of the target ({want})",
                    options::hex(&sel)
                ));
            }
            value[..REQUESTED_LEN].copy_from_slice(&sel);
        }
        Ok(Some(TlvTemplate {
            tlv_type: self.code,
            value,
        }))
    }

    /// An `auto` selector (0x45, TOS, Total Length 0 in the template) gets
    /// this request's IPv4 Total Length.
    fn refresh(&self, value: &mut [u8], ctx: &RequestContext) {
        if value.len() == IPV4_FIXED_LEN && value[0] == 0x45 && value[2..4] == [0, 0] {
            let total = u16::try_from(ctx.packet_len + IPV4_UDP_OVERHEAD).unwrap_or(u16::MAX);
            value[2..4].copy_from_slice(&total.to_be_bytes());
        }
    }

    /// U means "no access to the header here": say so instead of
    /// "unrecognized".
    fn decodes_refusals(&self) -> bool {
        true
    }

    fn decode(&self, flags: TlvFlags, value: &[u8], _ctx: &DecodeContext<'_>) -> TlvReport {
        decode_fixed(self.code, flags, value)
    }
}

/// Decode a reflected fixed header Value.
pub fn decode_fixed(code: TlvType, flags: TlvFlags, value: &[u8]) -> TlvReport {
    let report = |summary: String| TlvReport::new(code, "fixed-hdr", flags, summary);
    if flags.unrecognized() {
        return report("not reflected: the reflector cannot see IP headers (U)".into())
            .field("available", false);
    }
    if flags.0 & TlvFlags::C.0 != 0 {
        return report(format!(
            "not reflected: the reflector could not match the {}-octet request (C)",
            value.len()
        ))
        .field("available", false);
    }
    let req = &value[..REQUESTED_LEN.min(value.len())];
    let selected = req.len() == REQUESTED_LEN && req.iter().any(|&b| b != 0);
    let opt = |known: bool, v: Value| if known { v } else { Value::Null };
    match value.len() {
        IPV4_FIXED_LEN => {
            let tos = selected.then(|| value[1]);
            let id = u16::from_be_bytes([value[4], value[5]]);
            let ttl = value[8];
            let proto = value[9];
            let src = Ipv4Addr::from([value[12], value[13], value[14], value[15]]);
            let dst = Ipv4Addr::from([value[16], value[17], value[18], value[19]]);
            let tos_text = tos.map_or("?".to_string(), |t| t.to_string());
            report(format!(
                "ipv4 ttl={ttl} tos={tos_text} id={id} proto={proto} src={src} dst={dst}"
            ))
            .field("available", true)
            .field("version", 4)
            .field("ttl", ttl)
            .field("tos", opt(tos.is_some(), tos.unwrap_or(0).into()))
            .field("id", id)
            .field("protocol", proto)
            .field("src", src.to_string())
            .field("dst", dst.to_string())
        }
        IPV6_FIXED_LEN => {
            let word = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
            let tc = ((word >> 20) & 0xFF) as u8;
            let flow = word & 0x000F_FFFF;
            let payload = u16::from_be_bytes([value[4], value[5]]);
            let next = value[6];
            let hops = value[7];
            let mut a = [0u8; 16];
            a.copy_from_slice(&value[8..24]);
            let src = Ipv6Addr::from(a);
            a.copy_from_slice(&value[24..40]);
            let dst = Ipv6Addr::from(a);
            let known = |v: u32| if selected { v.to_string() } else { "?".into() };
            let next_name = if headers::is_extension_header(next) {
                headers::extension_header_name(next)
            } else if next == 17 {
                "udp"
            } else {
                "other"
            };
            report(format!(
                "ipv6 hop_limit={hops} tclass={} flow={} next={next}({next_name}) src={src} dst={dst}",
                known(u32::from(tc)),
                known(flow)
            ))
            .field("available", true)
            .field("version", 6)
            .field("hop_limit", hops)
            .field("traffic_class", opt(selected, tc.into()))
            .field("flow_label", opt(selected, flow.into()))
            .field("payload_length", payload)
            .field("next_header", next)
            .field("src", src.to_string())
            .field("dst", dst.to_string())
        }
        n => report(format!("{n} octets: not an IPv4 or IPv6 fixed header"))
            .field("available", false),
    }
}
