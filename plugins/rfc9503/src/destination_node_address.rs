//! Destination Node Address TLV, type 9 (RFC 9503 §3).
//!
//! ```text
//! | IPv4 Address (4) |   or   | IPv6 Address (16) |
//! ```
//! The family is inferred from the Length (4 or 16; anything else is
//! malformed). The sender names the Session-Reflector the test packet is
//! meant for; this matters when the packet is tunnelled to an address that
//! is not routable back (RFC 9503 Appendix A: inner destinations in 127/8
//! carried through SR-MPLS/SRv6).
//!
//! Reflector (§3): if the address is one of its own it SHOULD use it as the
//! reply's source address and MUST clear U; if it is not the intended
//! destination it MUST set U (a reply is still sent) and does not use the
//! address. "Own" means the request's local address (`RecvMeta::dst`) or
//! one of the addresses in the plugin setting [`SETTING_LOCAL_ADDRESSES`],
//! which the driver fills from the host's interfaces.
//!
//! §3 also says the sender MUST send an SSID with this TLV; the sender's
//! SSID is configured outside the TLV options, so that is the driver's check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use stamp_core::registry::PluginSettings;
use stamp_core::{
    DecodeContext, ReflectContext, TlvHandler, TlvOptions, TlvReport, TlvSlot, TlvTemplate,
    TlvVerdict,
};
use stamp_wire::{TlvFlags, TlvType};

use crate::options;

/// Sender option: the address of the intended Session-Reflector.
pub const OPT_DEST_NODE_ADDR: &str = "dest-node-addr";

/// Reflector plugin setting: comma list of the reflector's own addresses
/// (besides the address each request was received on).
pub const SETTING_LOCAL_ADDRESSES: &str = "local-addresses";

/// Parse a 4- or 16-octet address Value (RFC 9503 §3, §4.1.2).
pub fn parse_address(value: &[u8]) -> Option<IpAddr> {
    if let Ok(b) = <[u8; 4]>::try_from(value) {
        Some(IpAddr::V4(Ipv4Addr::from(b)))
    } else if let Ok(b) = <[u8; 16]>::try_from(value) {
        Some(IpAddr::V6(Ipv6Addr::from(b)))
    } else {
        None
    }
}

/// The 4- or 16-octet Value for `addr`.
pub fn address_octets(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// Handler of the Destination Node Address TLV.
#[derive(Debug)]
pub struct DestinationNodeAddressHandler {
    code: TlvType,
    /// Own addresses besides the request's destination, canonical form
    /// (IPv4-mapped IPv6 addresses stored as IPv4).
    local: Vec<IpAddr>,
}

impl DestinationNodeAddressHandler {
    /// A handler for type `code` whose own addresses are `local` plus the
    /// address each request arrives on.
    pub fn new(code: TlvType, local: Vec<IpAddr>) -> Self {
        let local = local.into_iter().map(|a| a.to_canonical()).collect();
        DestinationNodeAddressHandler { code, local }
    }

    /// Build from the plugin settings ([`SETTING_LOCAL_ADDRESSES`]).
    pub fn from_settings(code: TlvType, settings: &PluginSettings) -> Result<Self, String> {
        let local = options::list(settings, SETTING_LOCAL_ADDRESSES, |s| {
            s.parse::<IpAddr>()
                .map_err(|_| "expected an IPv4 or IPv6 address")
        })?
        .unwrap_or_default();
        Ok(Self::new(code, local))
    }

    fn is_own(&self, addr: IpAddr, request_dst: Option<IpAddr>) -> bool {
        let addr = addr.to_canonical();
        request_dst.map(|d| d.to_canonical()) == Some(addr) || self.local.contains(&addr)
    }
}

stamp_core::register_tlv! {
    key: "destination-node-address",
    code: 9,
    name: "Destination Node Address",
    spec: "RFC 9503 §3",
    configurable_code: false,
    factory: |code, settings| Ok(Box::new(DestinationNodeAddressHandler::from_settings(code, settings)?)),
}

impl TlvHandler for DestinationNodeAddressHandler {
    /// RFC 9503 uses U for "recognized but refused": decode it anyway.
    fn decodes_refusals(&self) -> bool {
        true
    }

    fn tlv_type(&self) -> TlvType {
        self.code
    }

    /// §3: own address → U = 0 and reply from it; not own → U = 1, reply
    /// from the usual address. The Value is returned unchanged either way.
    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        let Some(addr) = parse_address(slot.value()) else {
            return TlvVerdict::Malformed;
        };
        if !self.is_own(addr, ctx.meta.dst) {
            return TlvVerdict::Unrecognized;
        }
        // A dual-stack socket sees IPv4 as IPv4-mapped IPv6: keep the
        // family the driver's socket uses.
        let src = match (addr, ctx.meta.dst) {
            (IpAddr::V4(a), Some(IpAddr::V6(_))) => IpAddr::V6(a.to_ipv6_mapped()),
            _ => addr,
        };
        ctx.plan.src = Some(src);
        TlvVerdict::Processed
    }

    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        Ok(options::ip(opts, OPT_DEST_NODE_ADDR)?.map(|a| TlvTemplate {
            tlv_type: self.code,
            value: address_octets(a),
        }))
    }

    /// `192.0.2.1 (accepted)` or `192.0.2.1 (not this reflector)` (U set:
    /// the reflector says it is not the intended destination, §3).
    fn decode(&self, flags: TlvFlags, value: &[u8], ctx: &DecodeContext<'_>) -> TlvReport {
        let report = TlvReport::new(self.code, "dna", flags, String::new());
        let Some(addr) = parse_address(value) else {
            let mut r = report.field("octets", value.len());
            r.summary = format!("malformed: {} octets (must be 4 or 16)", value.len());
            return r;
        };
        let accepted = !flags.unrecognized();
        let mut summary = format!(
            "{addr} ({})",
            if accepted {
                "accepted"
            } else {
                "not this reflector"
            }
        );
        let mut report = report
            .field("address", addr.to_string())
            .field("accepted", accepted);
        if let Some(sent) = ctx.sent_value {
            if sent != value {
                summary.push_str(" (address differs from the request)");
                report = report.field("intact", false);
            }
        }
        report.summary = summary;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{reply_meta, request_value, Fixture};
    use stamp_wire::TimestampFormat;

    fn handler(local: &[&str]) -> DestinationNodeAddressHandler {
        DestinationNodeAddressHandler::new(
            TlvType::DESTINATION_NODE_ADDRESS,
            local.iter().map(|s| s.parse().unwrap()).collect(),
        )
    }

    #[test]
    fn own_ipv4_address_is_accepted_and_becomes_the_reply_source() {
        // Fixture: received on 192.0.2.1.
        let tlv = [0x80, 9, 0, 4, 192, 0, 2, 1];
        let (out, verdict, plan) = Fixture::v4().reflect(&handler(&[]), &tlv);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(out, tlv);
        assert_eq!(plan.src, Some("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn configured_local_address_counts_as_own() {
        let tlv = [0x80, 9, 0, 4, 127, 0, 0, 9];
        let (_, verdict, plan) = Fixture::v4().reflect(&handler(&["10.0.0.1", "127.0.0.9"]), &tlv);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(plan.src, Some("127.0.0.9".parse().unwrap()));
    }

    #[test]
    fn own_ipv6_address_is_accepted() {
        let mut tlv = vec![0x80, 9, 0, 16];
        tlv.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        let (_, verdict, plan) = Fixture::v4().reflect(&handler(&["2001:db8::7"]), &tlv);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(plan.src, Some("2001:db8::7".parse().unwrap()));
    }

    #[test]
    fn ipv4_on_a_dual_stack_socket_keeps_the_mapped_family() {
        let mut f = Fixture::v4();
        f.meta.dst = Some("::ffff:192.0.2.1".parse().unwrap());
        let (_, verdict, plan) = f.reflect(&handler(&[]), &[0x80, 9, 0, 4, 192, 0, 2, 1]);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(plan.src, Some("::ffff:192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn foreign_address_gets_u_and_leaves_the_source_alone() {
        let tlv = [0x80, 9, 0, 4, 192, 0, 2, 99];
        let f = Fixture::v4();
        let (out, verdict, plan) = f.reflect(&handler(&["10.0.0.1"]), &tlv);
        assert_eq!(verdict, TlvVerdict::Unrecognized);
        assert_eq!(out, tlv);
        assert_eq!(plan.src, f.meta.dst);
        assert!(!plan.suppress, "a reply is still sent (§3)");
    }

    #[test]
    fn lengths_other_than_4_or_16_are_malformed() {
        for len in [0usize, 3, 5, 8, 15, 17] {
            let mut tlv = vec![0x80, 9, 0, len as u8];
            tlv.resize(4 + len, 0);
            let (_, verdict, _) = Fixture::v4().reflect(&handler(&[]), &tlv);
            assert_eq!(verdict, TlvVerdict::Malformed, "length {len}");
        }
    }

    #[test]
    fn settings_are_parsed_and_errors_name_the_setting() {
        let mut s = PluginSettings::new();
        s.set(SETTING_LOCAL_ADDRESSES, "10.0.0.1, ::1");
        let h = DestinationNodeAddressHandler::from_settings(TlvType(9), &s).unwrap();
        assert_eq!(
            h.local,
            [
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        s.set(SETTING_LOCAL_ADDRESSES, "10.0.0.1,host");
        assert_eq!(
            DestinationNodeAddressHandler::from_settings(TlvType(9), &s).unwrap_err(),
            "--local-addresses 10.0.0.1,host: \"host\": expected an IPv4 or IPv6 address"
        );
    }

    #[test]
    fn request_carries_the_address_in_4_or_16_octets() {
        let h = handler(&[]);
        assert_eq!(
            request_value(&h, &[("dest-node-addr", "192.0.2.1")]).unwrap(),
            Some(vec![192, 0, 2, 1])
        );
        let v6 = request_value(&h, &[("dest-node-addr", "2001:db8::1")])
            .unwrap()
            .unwrap();
        assert_eq!(v6.len(), 16);
        assert_eq!(request_value(&h, &[]).unwrap(), None);
        assert_eq!(
            request_value(&h, &[("dest-node-addr", "nowhere")]).unwrap_err(),
            "--dest-node-addr nowhere: expected an IPv4 or IPv6 address"
        );
    }

    #[test]
    fn decode_says_accepted_or_not_this_reflector() {
        let meta = reply_meta(None);
        let sent = [192, 0, 2, 1];
        let ctx = DecodeContext {
            meta: &meta,
            sent_value: Some(&sent),
            reflector_format: TimestampFormat::Ntp,
        };
        let h = handler(&[]);
        let r = h.decode(TlvFlags::NONE, &sent, &ctx);
        assert_eq!(
            (r.name, r.summary.as_str()),
            ("dna", "192.0.2.1 (accepted)")
        );
        assert_eq!(r.fields["accepted"], true);
        let r = h.decode(TlvFlags::U, &sent, &ctx);
        assert_eq!(r.summary, "192.0.2.1 (not this reflector)");
        assert_eq!(r.fields["accepted"], false);
        let r = h.decode(TlvFlags::NONE, &[1, 2, 3], &ctx);
        assert_eq!(r.summary, "malformed: 3 octets (must be 4 or 16)");
    }
}
