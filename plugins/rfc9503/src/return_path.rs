//! Return Path TLV, type 10 (RFC 9503 §4), and its sub-TLVs (§4.1, own IANA
//! registry "Return Path Sub-TLV Types", §7).
//!
//! ```text
//! | Return Path sub-TLVs ... |     each: | Flags | Type | Length (2) | Value |
//! ```
//!
//! | Sub-type | Name | Length | Section |
//! | --- | --- | --- | --- |
//! | 1 | Return Path Control Code | 4 | §4.1.1 |
//! | 2 | Return Address (IPv4/IPv6) | 4 or 16 | §4.1.2 |
//! | 3 | SR-MPLS Label Stack | multiple of 4, not 0 | §4.1.3.1 |
//! | 4 | SRv6 Segment List | multiple of 16, not 0 | §4.1.3.2 |
//!
//! Reflector behaviour implemented here:
//!
//! * Only the first Return Path TLV of a packet is processed (§4); a later
//!   one comes back with U ("ignored"). The handler has no per-packet
//!   state, so it looks for an earlier type-10 TLV in the TLV area before
//!   its own offset.
//! * Sub-TLV framing and lengths are checked first; a sub-TLV that overruns
//!   the TLV or has a Length its type does not allow gets M, and the whole
//!   TLV is malformed (M, TLV processing stops, RFC 8972 §4). An empty
//!   Return Path TLV is malformed too: it carries no path.
//! * Control Code (§4.1.1): only the Reply Request bit (`0x00000001`) is
//!   tested, the other bits are reserved and ignored. 0 → no reply at all
//!   ([`stamp_core::ReplyPlan::suppress`]); 1 → reply on the link the
//!   request came in on, which is what the reflector does anyway. Every
//!   other sub-TLV is ignored when a Control Code is present.
//! * Return Address (§4.1.2): the reply goes to that address, at the
//!   request's source port. An address the reply socket cannot reach
//!   (another family, unspecified, multicast or broadcast) means the path
//!   cannot be used: U. An operator who does not want the reflector to send
//!   replies to addresses other than the request's source (RFC 9503 §6: a
//!   Return Address lets a sender aim replies at a third party) sets the
//!   plugin setting [`SETTING_RETURN_ADDRESS_REDIRECT`] to `false`: every
//!   Return Address is then refused with U and the reply goes back to the
//!   source.
//! * Segment lists (§4.1.3): an SRv6 Segment List is honoured when the
//!   plugin setting [`SETTING_SRV6_RETURN_PATH`] says the driver can add a
//!   Segment Routing Header (RFC 8754) to the reply (the Linux binaries
//!   set it) and the peer is IPv6: the reply plan gets
//!   [`stamp_core::ReplyPlan::srv6_route`], the reply visits the SIDs in
//!   order and then goes to the request's source, or to the Return Address
//!   when one comes with the list (both sub-TLVs then have their flags
//!   cleared). Otherwise, and always for an SR-MPLS label stack (no label
//!   push from a UDP socket), the request is answered on the normal path
//!   with U on the Return Path TLV (§4: "cannot use the Return Path" → U).
//!
//! Sub-TLV flags in the reply: the sub-TLV that was acted upon has its
//! flags cleared; ignored or unknown sub-TLVs have U set.
//!
//! SR-MPLS needs a raw/AF_MPLS transport and stays out of reach of UDP.
//! Also, "reply on the same link" (Control Code 1) is not pinned to the
//! receive interface: the reply plan has no egress interface field yet.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use serde_json::Value;
use stamp_core::{
    DecodeContext, ReflectContext, Srv6Route, TlvHandler, TlvOptions, TlvReport, TlvSlot,
    TlvTemplate, TlvVerdict,
};
use stamp_wire::tlv::{emit_header, HEADER_LEN};
use stamp_wire::{TlvFlags, TlvIter, TlvType};

use crate::destination_node_address::{address_octets, parse_address};
use crate::options;

/// Sender option: Control Code sub-TLV, `0` (no reply) or `1` (reply on the
/// same link).
pub const OPT_RETURN_PATH_CC: &str = "return-path-cc";
/// Sender option: Return Address sub-TLV (IPv4 or IPv6).
pub const OPT_RETURN_ADDRESS: &str = "return-address";
/// Sender option: SR-MPLS label stack sub-TLV, comma list of 20-bit labels,
/// top of stack first.
pub const OPT_RETURN_SR_MPLS_LABELS: &str = "return-sr-mpls-labels";
/// Sender option: SRv6 segment list sub-TLV, comma list of IPv6 SIDs,
/// segment 1 first.
pub const OPT_RETURN_SRV6_SIDS: &str = "return-srv6-sids";

/// Reply Request flag of the Control Code (§4.1.1, bit 31 = least
/// significant bit).
pub const REPLY_REQUEST: u32 = 0x0000_0001;

/// Largest MPLS label value (20 bits).
pub const MAX_MPLS_LABEL: u32 = 0xF_FFFF;

/// TTL put in each Label Stack Entry the sender builds.
pub const LSE_TTL: u8 = 255;

/// A Return Path sub-TLV type (RFC 9503 §7): an open newtype, so unknown
/// types are values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReturnPathSubTlv(pub u8);

impl ReturnPathSubTlv {
    /// Return Path Control Code (§4.1.1).
    pub const CONTROL_CODE: ReturnPathSubTlv = ReturnPathSubTlv(1);
    /// Return IPv4 or IPv6 Address (§4.1.2).
    pub const RETURN_ADDRESS: ReturnPathSubTlv = ReturnPathSubTlv(2);
    /// SR-MPLS Label Stack of the Return Path (§4.1.3.1).
    pub const SR_MPLS_LABEL_STACK: ReturnPathSubTlv = ReturnPathSubTlv(3);
    /// SRv6 Segment List of the Return Path (§4.1.3.2).
    pub const SRV6_SEGMENT_LIST: ReturnPathSubTlv = ReturnPathSubTlv(4);

    /// Is `len` a valid Length for this sub-type? Unknown types accept any
    /// Length, except the Private Use range (252–254), which needs room for
    /// an Enterprise Number (RFC 8972 §4).
    pub fn length_ok(self, len: usize) -> bool {
        match self.0 {
            1 => len == 4,
            2 => len == 4 || len == 16,
            3 => len != 0 && len % 4 == 0,
            4 => len != 0 && len % 16 == 0,
            252..=254 => len >= 4,
            _ => true,
        }
    }
}

/// Reflector plugin setting: `true` when the driver can send a reply with
/// an SRv6 Segment Routing Header ([`stamp_core::ReplyPlan::srv6_route`]);
/// the binaries set it on Linux.
pub const SETTING_SRV6_RETURN_PATH: &str = "srv6-return-path";

/// Reflector plugin setting: `false` refuses every Return Address sub-TLV
/// (U, reply to the request's source); default `true`.
pub const SETTING_RETURN_ADDRESS_REDIRECT: &str = "return-address-redirect";

/// Most SIDs in one Segment Routing Header: its Hdr Ext Len is 2 × (SIDs +
/// 1, the final destination) and fits one octet.
pub const MAX_SRV6_SIDS: usize = 126;

/// Handler of the Return Path TLV.
#[derive(Debug)]
pub struct ReturnPathHandler {
    code: TlvType,
    srv6: bool,
    redirect: bool,
}

impl ReturnPathHandler {
    /// A handler for type `code` that cannot steer replies along SRv6
    /// segment lists.
    pub fn new(code: TlvType) -> Self {
        ReturnPathHandler {
            code,
            srv6: false,
            redirect: true,
        }
    }

    /// A handler that asks the driver to steer replies along SRv6 segment
    /// lists when `srv6` is true.
    pub fn with_srv6(code: TlvType, srv6: bool) -> Self {
        ReturnPathHandler {
            code,
            srv6,
            redirect: true,
        }
    }

    /// Whether Return Address sub-TLVs may redirect replies (default true).
    pub fn redirecting(mut self, redirect: bool) -> Self {
        self.redirect = redirect;
        self
    }

    /// Build from the plugin settings ([`SETTING_SRV6_RETURN_PATH`],
    /// [`SETTING_RETURN_ADDRESS_REDIRECT`]).
    pub fn from_settings(
        code: TlvType,
        settings: &stamp_core::registry::PluginSettings,
    ) -> Result<Self, String> {
        let redirect = match settings.get(SETTING_RETURN_ADDRESS_REDIRECT) {
            None | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(other) => {
                return Err(format!(
                    "invalid value {other} for {SETTING_RETURN_ADDRESS_REDIRECT}: expected true or false"
                ))
            }
        };
        Ok(Self::with_srv6(code, settings.flag(SETTING_SRV6_RETURN_PATH)).redirecting(redirect))
    }
}

stamp_core::register_tlv! {
    key: "return-path",
    code: 10,
    name: "Return Path",
    spec: "RFC 9503 §4",
    configurable_code: false,
    factory: |code, settings| Ok(Box::new(ReturnPathHandler::from_settings(code, settings)?)),
}

/// First occurrence (offset in the Value) of each known sub-TLV.
#[derive(Debug, Default, Clone, Copy)]
struct Found {
    control_code: Option<usize>,
    return_address: Option<usize>,
    segment_list: Option<usize>,
}

/// Check the framing of every sub-TLV in `value`. On error, the offset of
/// the offending sub-TLV (when it has a whole header to flag).
fn scan(value: &[u8]) -> Result<Found, Option<usize>> {
    let mut found = Found::default();
    for item in TlvIter::new(value) {
        let t = match item {
            Ok(t) => t,
            Err((off, _)) => return Err((value.len() - off >= HEADER_LEN).then_some(off)),
        };
        let sub = ReturnPathSubTlv(t.tlv_type.0);
        if !sub.length_ok(t.value.len()) {
            return Err(Some(t.offset));
        }
        let slot = match sub {
            ReturnPathSubTlv::CONTROL_CODE => &mut found.control_code,
            ReturnPathSubTlv::RETURN_ADDRESS => &mut found.return_address,
            // §4.1.3: only the first Segment List sub-TLV, of either kind.
            ReturnPathSubTlv::SR_MPLS_LABEL_STACK | ReturnPathSubTlv::SRV6_SEGMENT_LIST => {
                &mut found.segment_list
            }
            _ => continue,
        };
        slot.get_or_insert(t.offset);
    }
    Ok(found)
}

/// Is there a TLV of type `code` in `area` before `offset` (§4: only the
/// first Return Path TLV counts)?
fn earlier_tlv(area: &[u8], offset: usize, code: TlvType) -> bool {
    TlvIter::new(&area[..offset.min(area.len())])
        .map_while(Result::ok)
        .any(|t| t.tlv_type == code)
}

/// Where the reply to a request from `src` can go when the sender asks for
/// `addr` (§4.1.2), or `None` when the reply socket cannot send there.
fn return_destination(addr: IpAddr, src: SocketAddr) -> Option<SocketAddr> {
    let unusable = match addr {
        IpAddr::V4(a) => a.is_unspecified() || a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => {
            a.is_unspecified()
                || a.is_multicast()
                || a.to_ipv4_mapped()
                    .is_some_and(|m| m.is_unspecified() || m.is_multicast() || m.is_broadcast())
        }
    };
    if unusable {
        return None;
    }
    let ip = match (addr, src.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => addr,
        // A dual-stack socket (it received IPv4 as mapped IPv6) sends both.
        (IpAddr::V6(_), IpAddr::V6(s)) => {
            if addr.to_canonical().is_ipv4() && s.to_ipv4_mapped().is_none() {
                return None;
            }
            addr
        }
        (IpAddr::V4(a), IpAddr::V6(s)) if s.to_ipv4_mapped().is_some() => {
            IpAddr::V6(a.to_ipv6_mapped())
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, src.port()))
}

/// Offset of a TLV's Value in the TLV area, for the TLV at `offset`.
fn slot_value_offset(offset: usize) -> usize {
    offset + HEADER_LEN
}

impl ReturnPathHandler {
    /// Plan an SRv6 return path from the Segment List sub-TLV at `seg` of
    /// `value` (whose first octet is at `value_at` in the TLV area).
    fn srv6_plan(
        &self,
        value: &[u8],
        seg: usize,
        return_address: Option<usize>,
        value_at: usize,
        ctx: &mut ReflectContext<'_>,
    ) -> Option<()> {
        if !self.srv6 || value[seg + 1] != ReturnPathSubTlv::SRV6_SEGMENT_LIST.0 {
            return None;
        }
        let len = u16::from_be_bytes([value[seg + 2], value[seg + 3]]) as usize;
        let count = len / 16;
        if count == 0 || count > MAX_SRV6_SIDS {
            return None;
        }
        // An IPv6 peer (not IPv4 seen through a dual-stack socket).
        let native_v6 = |a: IpAddr| matches!(a, IpAddr::V6(v) if v.to_ipv4_mapped().is_none());
        let mut dst = ctx.meta.src;
        if return_address.is_some() && !self.redirect {
            return None;
        }
        if let Some(at) = return_address {
            let alen = u16::from_be_bytes([value[at + 2], value[at + 3]]) as usize;
            let addr = parse_address(&value[at + HEADER_LEN..at + HEADER_LEN + alen])?;
            dst = return_destination(addr, ctx.meta.src)?;
        }
        if !native_v6(dst.ip()) || !native_v6(ctx.meta.src.ip()) {
            return None;
        }
        ctx.plan.dst = dst;
        ctx.plan.srv6_route = Some(Srv6Route {
            offset: u16::try_from(value_at + seg + HEADER_LEN).ok()?,
            count: count as u8,
        });
        Some(())
    }
}

impl TlvHandler for ReturnPathHandler {
    /// RFC 9503 uses U for "recognized but refused": decode it anyway.
    fn decodes_refusals(&self) -> bool {
        true
    }

    fn tlv_type(&self) -> TlvType {
        self.code
    }

    /// See the module documentation for the rules (RFC 9503 §4, §4.1).
    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        let offset = slot.offset();
        if earlier_tlv(slot.area_mut(), offset, self.code) {
            return TlvVerdict::Unrecognized;
        }
        let value = slot.value_mut();
        if value.is_empty() {
            return TlvVerdict::Malformed;
        }
        let found = match scan(value) {
            Ok(f) => f,
            Err(at) => {
                if let Some(at) = at {
                    value[at] = TlvFlags::M.0;
                }
                return TlvVerdict::Malformed;
            }
        };

        // Decide which sub-TLV is acted upon, then set every sub-TLV's flags.
        let (used, verdict) = if let Some(at) = found.control_code {
            let cc =
                u32::from_be_bytes([value[at + 4], value[at + 5], value[at + 6], value[at + 7]]);
            if cc & REPLY_REQUEST == 0 {
                ctx.plan.suppress = true;
            }
            (Some(at), TlvVerdict::Processed)
        } else if let Some(seg) = found.segment_list {
            // SR-MPLS: no label stack from a UDP socket → U. SRv6: a Segment
            // Routing Header when the driver can add one and the peer is
            // IPv6 (with a Return Address, that is the final destination).
            match self.srv6_plan(
                value,
                seg,
                found.return_address,
                slot_value_offset(offset),
                ctx,
            ) {
                Some(()) => {
                    // Both the list and the address (if any) were used.
                    if let Some(at) = found.return_address {
                        value[at] = 0;
                    }
                    (Some(seg), TlvVerdict::Processed)
                }
                None => (None, TlvVerdict::Unrecognized),
            }
        } else if let (Some(_), false) = (found.return_address, self.redirect) {
            // The operator refuses redirection: U, reply to the source.
            (None, TlvVerdict::Unrecognized)
        } else if let Some(at) = found.return_address {
            let len = u16::from_be_bytes([value[at + 2], value[at + 3]]) as usize;
            let addr = parse_address(&value[at + HEADER_LEN..at + HEADER_LEN + len]);
            match addr.and_then(|a| return_destination(a, ctx.meta.src)) {
                Some(dst) => {
                    ctx.plan.dst = dst;
                    (Some(at), TlvVerdict::Processed)
                }
                None => (None, TlvVerdict::Unrecognized),
            }
        } else {
            // Only sub-TLVs we do not know: no usable path.
            (None, TlvVerdict::Unrecognized)
        };
        let mut off = 0;
        while off + HEADER_LEN <= value.len() {
            let len = u16::from_be_bytes([value[off + 2], value[off + 3]]) as usize;
            let keep_clear = value[off] == 0
                && verdict == TlvVerdict::Processed
                && found.segment_list == used
                && Some(off) == found.return_address;
            value[off] = if Some(off) == used || keep_clear {
                0
            } else {
                TlvFlags::U.0
            };
            off += HEADER_LEN + len;
        }
        verdict
    }

    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        let cc = options::bounded(
            opts,
            OPT_RETURN_PATH_CC,
            1,
            "Control Code must be 0 (no reply) or 1 (reply on the same link)",
        )?;
        let addr = options::ip(opts, OPT_RETURN_ADDRESS)?;
        let labels = options::list(opts, OPT_RETURN_SR_MPLS_LABELS, |s| {
            s.parse::<u32>()
                .ok()
                .filter(|&l| l <= MAX_MPLS_LABEL)
                .ok_or("expected an MPLS label 0..1048575")
        })?;
        let sids = options::list(opts, OPT_RETURN_SRV6_SIDS, |s| {
            s.parse::<Ipv6Addr>()
                .map_err(|_| "expected an IPv6 address")
        })?;

        // §4.1: a Control Code excludes the other sub-TLVs; at most one
        // Segment List sub-TLV.
        if cc.is_some() {
            let others: Vec<String> = [
                (addr.is_some(), OPT_RETURN_ADDRESS),
                (labels.is_some(), OPT_RETURN_SR_MPLS_LABELS),
                (sids.is_some(), OPT_RETURN_SRV6_SIDS),
            ]
            .iter()
            .filter(|(set, _)| *set)
            .map(|(_, k)| format!("--{k}"))
            .collect();
            if !others.is_empty() {
                return Err(format!(
                    "--{OPT_RETURN_PATH_CC} cannot be combined with {} \
                     (RFC 9503 §4.1: a Control Code excludes the other Return Path sub-TLVs)",
                    others.join(", ")
                ));
            }
        }
        if labels.is_some() && sids.is_some() {
            return Err(format!(
                "--{OPT_RETURN_SR_MPLS_LABELS} cannot be combined with --{OPT_RETURN_SRV6_SIDS} \
                 (RFC 9503 §4.1.3: one Segment List sub-TLV per Return Path TLV)"
            ));
        }

        let mut value = Vec::new();
        let mut sub = |t: ReturnPathSubTlv, body: &[u8]| {
            let mut h = [0u8; HEADER_LEN];
            emit_header(&mut h, TlvFlags::U, TlvType(t.0), body.len() as u16);
            value.extend_from_slice(&h);
            value.extend_from_slice(body);
        };
        if let Some(cc) = cc {
            sub(ReturnPathSubTlv::CONTROL_CODE, &cc.to_be_bytes());
        }
        if let Some(a) = addr {
            sub(ReturnPathSubTlv::RETURN_ADDRESS, &address_octets(a));
        }
        if let Some(labels) = &labels {
            if labels.len() * 4 > u16::MAX as usize {
                return Err(options::invalid(
                    OPT_RETURN_SR_MPLS_LABELS,
                    opts.get(OPT_RETURN_SR_MPLS_LABELS).unwrap_or_default(),
                    "too many labels",
                ));
            }
            let mut body = Vec::with_capacity(labels.len() * 4);
            for (i, &l) in labels.iter().enumerate() {
                let bottom = u32::from(i + 1 == labels.len());
                let lse = l << 12 | bottom << 8 | u32::from(LSE_TTL);
                body.extend_from_slice(&lse.to_be_bytes());
            }
            sub(ReturnPathSubTlv::SR_MPLS_LABEL_STACK, &body);
        }
        if let Some(sids) = &sids {
            if sids.len() * 16 > u16::MAX as usize - HEADER_LEN * 2 - 16 {
                return Err(options::invalid(
                    OPT_RETURN_SRV6_SIDS,
                    opts.get(OPT_RETURN_SRV6_SIDS).unwrap_or_default(),
                    "too many SIDs",
                ));
            }
            let body: Vec<u8> = sids.iter().flat_map(|s| s.octets()).collect();
            sub(ReturnPathSubTlv::SRV6_SEGMENT_LIST, &body);
        }
        if value.is_empty() {
            return Ok(None);
        }
        Ok(Some(TlvTemplate {
            tlv_type: self.code,
            value,
        }))
    }

    /// `cc reply`, `cc no-reply`, `addr 192.0.2.9`, `sr-mpls 100,200`,
    /// `srv6 2001:db8::1,2001:db8::2`, comma separated; ` (refused)` when the
    /// reflector set U (it cannot use the path, §4), ` (ignored)` after a
    /// sub-TLV the reflector did not act upon.
    fn decode(&self, flags: TlvFlags, value: &[u8], _ctx: &DecodeContext<'_>) -> TlvReport {
        let mut report = TlvReport::new(self.code, "return-path", flags, String::new());
        let mut parts = Vec::new();
        for item in TlvIter::new(value) {
            let Ok(t) = item else {
                parts.push("malformed sub-TLVs".to_string());
                report = report.field("malformed", true);
                break;
            };
            let sub = ReturnPathSubTlv(t.tlv_type.0);
            let mut part = if !sub.length_ok(t.value.len()) {
                format!("sub-TLV {} with bad length {}", sub.0, t.value.len())
            } else {
                match sub {
                    ReturnPathSubTlv::CONTROL_CODE => {
                        let cc =
                            u32::from_be_bytes([t.value[0], t.value[1], t.value[2], t.value[3]]);
                        let reply = cc & REPLY_REQUEST != 0;
                        report = report.field("control_code", cc).field("reply", reply);
                        format!("cc {}", if reply { "reply" } else { "no-reply" })
                    }
                    ReturnPathSubTlv::RETURN_ADDRESS => {
                        let a = parse_address(t.value).map_or_else(String::new, |a| a.to_string());
                        report = report.field("return_address", a.clone());
                        format!("addr {a}")
                    }
                    ReturnPathSubTlv::SR_MPLS_LABEL_STACK => {
                        let labels: Vec<u32> = t
                            .value
                            .chunks_exact(4)
                            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) >> 12)
                            .collect();
                        report = report.field(
                            "sr_mpls_labels",
                            Value::from(labels.iter().map(|&l| Value::from(l)).collect::<Vec<_>>()),
                        );
                        format!("sr-mpls {}", join(&labels))
                    }
                    ReturnPathSubTlv::SRV6_SEGMENT_LIST => {
                        let sids: Vec<Ipv6Addr> = t
                            .value
                            .chunks_exact(16)
                            .filter_map(|c| <[u8; 16]>::try_from(c).ok().map(Ipv6Addr::from))
                            .collect();
                        report = report.field(
                            "srv6_sids",
                            Value::from(
                                sids.iter()
                                    .map(|s| Value::from(s.to_string()))
                                    .collect::<Vec<_>>(),
                            ),
                        );
                        format!("srv6 {}", join(&sids))
                    }
                    _ => format!("sub-TLV {} ({} octets)", sub.0, t.value.len()),
                }
            };
            if t.flags.unrecognized() && !flags.unrecognized() {
                part.push_str(" (ignored)");
            }
            parts.push(part);
        }
        let refused = flags.unrecognized();
        let mut summary = if parts.is_empty() {
            "empty".to_string()
        } else {
            parts.join(", ")
        };
        if refused {
            summary.push_str(" (refused)");
        }
        report = report.field("refused", refused);
        report.summary = summary;
        report
    }
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{reply_meta, request_value, Fixture};
    use stamp_wire::TimestampFormat;

    fn handler() -> ReturnPathHandler {
        ReturnPathHandler::new(TlvType::RETURN_PATH)
    }

    /// A Return Path TLV (U set, as a sender sends it) around `subs`.
    fn rp(subs: &[u8]) -> Vec<u8> {
        let mut v = vec![0x80, 10];
        v.extend_from_slice(&(subs.len() as u16).to_be_bytes());
        v.extend_from_slice(subs);
        v
    }

    const CC_NO_REPLY: [u8; 8] = [0x80, 1, 0, 4, 0, 0, 0, 0];
    const CC_REPLY: [u8; 8] = [0x80, 1, 0, 4, 0, 0, 0, 1];
    const ADDR_V4: [u8; 8] = [0x80, 2, 0, 4, 203, 0, 113, 9];

    #[test]
    fn control_code_zero_suppresses_the_reply() {
        let (out, verdict, plan) = Fixture::v4().reflect(&handler(), &rp(&CC_NO_REPLY));
        assert_eq!(verdict, TlvVerdict::Processed);
        assert!(plan.suppress);
        assert_eq!(out[4], 0, "Control Code sub-TLV acted upon: flags cleared");
    }

    #[test]
    fn control_code_one_replies_normally() {
        let f = Fixture::v4();
        let (_, verdict, plan) = f.reflect(&handler(), &rp(&CC_REPLY));
        assert_eq!(verdict, TlvVerdict::Processed);
        assert!(!plan.suppress);
        assert_eq!(plan.dst, f.meta.src);
    }

    #[test]
    fn control_code_tests_only_the_reply_request_bit() {
        // Reserved bits set, Reply Request clear: still "no reply".
        let (_, _, plan) =
            Fixture::v4().reflect(&handler(), &rp(&[0x80, 1, 0, 4, 0xF0, 0, 0, 0x10]));
        assert!(plan.suppress);
        // Reserved bits set, Reply Request set: reply.
        let (_, _, plan) =
            Fixture::v4().reflect(&handler(), &rp(&[0x80, 1, 0, 4, 0xFF, 0xFF, 0xFF, 0xFF]));
        assert!(!plan.suppress);
    }

    #[test]
    fn other_sub_tlvs_are_ignored_next_to_a_control_code() {
        let f = Fixture::v4();
        let mut subs = ADDR_V4.to_vec();
        subs.extend_from_slice(&CC_REPLY);
        subs.extend_from_slice(&[0x80, 3, 0, 4, 0, 0x06, 0x41, 0xFF]);
        let (out, verdict, plan) = f.reflect(&handler(), &rp(&subs));
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(plan.dst, f.meta.src, "Return Address ignored");
        assert_eq!((out[4], out[12], out[20]), (0x80, 0x00, 0x80));
    }

    #[test]
    fn return_address_redirects_the_reply_to_the_source_port() {
        let (out, verdict, plan) = Fixture::v4().reflect(&handler(), &rp(&ADDR_V4));
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(plan.dst, "203.0.113.9:40000".parse().unwrap());
        assert_eq!(out[4], 0);
    }

    #[test]
    fn return_address_is_refused_with_u_when_redirection_is_off() {
        let f = Fixture::v4();
        let h = ReturnPathHandler::new(TlvType(10)).redirecting(false);
        let (out, verdict, plan) = f.reflect(&h, &rp(&ADDR_V4));
        assert_eq!(verdict, TlvVerdict::Unrecognized);
        assert_eq!(plan.dst, f.meta.src, "reply goes back to the source");
        assert_eq!(out[4], 0x80, "the Return Address sub-TLV has U");
        // A Control Code still works.
        let (_, verdict, plan) = f.reflect(&h, &rp(&CC_REPLY));
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(plan.dst, f.meta.src);
    }

    #[test]
    fn redirect_setting_is_parsed_and_a_bad_value_names_it() {
        let mut s = stamp_core::registry::PluginSettings::default();
        assert!(
            ReturnPathHandler::from_settings(TlvType(10), &s)
                .unwrap()
                .redirect
        );
        s.set(SETTING_RETURN_ADDRESS_REDIRECT, "false");
        assert!(
            !ReturnPathHandler::from_settings(TlvType(10), &s)
                .unwrap()
                .redirect
        );
        s.set(SETTING_RETURN_ADDRESS_REDIRECT, "maybe");
        let e = ReturnPathHandler::from_settings(TlvType(10), &s).unwrap_err();
        assert!(
            e.contains("return-address-redirect") && e.contains("maybe"),
            "{e}"
        );
    }

    #[test]
    fn ipv6_return_address_on_an_ipv6_session() {
        let mut f = Fixture::v4();
        f.meta.src = "[2001:db8::2]:40000".parse().unwrap();
        let mut subs = vec![0x80, 2, 0, 16];
        subs.extend_from_slice(&"2001:db8::9".parse::<Ipv6Addr>().unwrap().octets());
        let (_, verdict, plan) = f.reflect(&handler(), &rp(&subs));
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(plan.dst, "[2001:db8::9]:40000".parse().unwrap());
    }

    #[test]
    fn ipv4_return_address_on_a_dual_stack_socket_is_mapped() {
        let mut f = Fixture::v4();
        f.meta.src = "[::ffff:198.51.100.2]:40000".parse().unwrap();
        let (_, verdict, plan) = f.reflect(&handler(), &rp(&ADDR_V4));
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(plan.dst, "[::ffff:203.0.113.9]:40000".parse().unwrap());
    }

    #[test]
    fn unreachable_return_addresses_are_refused_with_u() {
        let f = Fixture::v4();
        let mut v6 = vec![0x80, 2, 0, 16];
        v6.extend_from_slice(&"2001:db8::9".parse::<Ipv6Addr>().unwrap().octets());
        let cases: [&[u8]; 4] = [
            &v6,                                  // IPv6 from an IPv4 socket
            &[0x80, 2, 0, 4, 0, 0, 0, 0],         // unspecified
            &[0x80, 2, 0, 4, 224, 0, 0, 1],       // multicast
            &[0x80, 2, 0, 4, 255, 255, 255, 255], // broadcast
        ];
        for sub in cases {
            let (out, verdict, plan) = f.reflect(&handler(), &rp(sub));
            assert_eq!(verdict, TlvVerdict::Unrecognized, "{sub:?}");
            assert_eq!(plan.dst, f.meta.src);
            assert_eq!(out[4], 0x80);
        }
    }

    #[test]
    fn srv6_segment_list_is_planned_when_the_driver_can_add_an_srh() {
        let h = ReturnPathHandler::with_srv6(TlvType::RETURN_PATH, true);
        let mut f = Fixture::v4();
        f.meta.src = "[2001:db8::2]:40000".parse().unwrap();
        f.meta.dst = Some("2001:db8::1".parse().unwrap());
        let mut srv6 = vec![0x80, 4, 0, 32];
        srv6.extend_from_slice(&"2001:db8:a::1".parse::<Ipv6Addr>().unwrap().octets());
        srv6.extend_from_slice(&"2001:db8:b::1".parse::<Ipv6Addr>().unwrap().octets());
        let tlv = rp(&srv6);
        let (out, verdict, plan) = f.reflect(&h, &tlv);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(out[4], 0, "sub-TLV flags cleared");
        // TLV header 4 + sub-TLV header 4: the first SID at octet 8 of the
        // TLV area (the engine rebases it onto the reply).
        assert_eq!(
            plan.srv6_route,
            Some(Srv6Route {
                offset: 8,
                count: 2
            })
        );
        assert_eq!(plan.dst, f.meta.src);
        // With an IPv6 Return Address: the final destination is that.
        let mut subs = vec![0x80, 2, 0, 16];
        subs.extend_from_slice(&"2001:db8:c::9".parse::<Ipv6Addr>().unwrap().octets());
        subs.extend_from_slice(&srv6);
        let (out, verdict, plan) = f.reflect(&h, &rp(&subs));
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!((out[4], out[24]), (0, 0), "both sub-TLVs used");
        assert_eq!(plan.dst, "[2001:db8:c::9]:40000".parse().unwrap());
        assert_eq!(plan.srv6_route.map(|r| r.offset), Some(28));
        // An IPv4 peer, or the capability off: U, nothing planned.
        for (h, meta_src) in [
            (
                ReturnPathHandler::with_srv6(TlvType::RETURN_PATH, true),
                "198.51.100.2:40000",
            ),
            (
                ReturnPathHandler::with_srv6(TlvType::RETURN_PATH, true),
                "[::ffff:198.51.100.2]:40000",
            ),
            (handler(), "[2001:db8::2]:40000"),
        ] {
            f.meta.src = meta_src.parse().unwrap();
            let (_, verdict, plan) = f.reflect(&h, &tlv);
            assert_eq!(verdict, TlvVerdict::Unrecognized, "{meta_src}");
            assert_eq!(plan.srv6_route, None);
        }
    }

    #[test]
    fn segment_lists_cannot_be_honoured_and_get_u() {
        let f = Fixture::v4();
        let mut srv6 = vec![0x80, 4, 0, 16];
        srv6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        let mpls = [0x80, 3, 0, 8, 0, 0x06, 0x40, 0xFF, 0, 0x0C, 0x81, 0xFF];
        for seg in [&srv6[..], &mpls[..]] {
            let (_, verdict, plan) = f.reflect(&handler(), &rp(seg));
            assert_eq!(verdict, TlvVerdict::Unrecognized);
            assert_eq!(plan, stamp_core::ReplyPlan::for_request(&f.meta));
            // With a Return Address too: still refused, address not used.
            let mut subs = ADDR_V4.to_vec();
            subs.extend_from_slice(seg);
            let (_, verdict, plan) = f.reflect(&handler(), &rp(&subs));
            assert_eq!(verdict, TlvVerdict::Unrecognized);
            assert_eq!(plan.dst, f.meta.src);
        }
    }

    #[test]
    fn unknown_sub_tlvs_alone_give_u_and_next_to_an_address_are_ignored() {
        let f = Fixture::v4();
        let unknown = [0x80, 200, 0, 2, 1, 2];
        let (_, verdict, _) = f.reflect(&handler(), &rp(&unknown));
        assert_eq!(verdict, TlvVerdict::Unrecognized);
        let mut subs = unknown.to_vec();
        subs.extend_from_slice(&ADDR_V4);
        let (out, verdict, plan) = f.reflect(&handler(), &rp(&subs));
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(plan.dst.ip(), "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!((out[4], out[10]), (0x80, 0x00));
    }

    #[test]
    fn wrong_sub_tlv_lengths_are_malformed_and_flagged() {
        #[rustfmt::skip]
        let cases: [&[u8]; 9] = [
            &[0x80, 1, 0, 2, 0, 1],                               // Control Code != 4
            &[0x80, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0],             // Control Code != 4
            &[0x80, 2, 0, 6, 1, 2, 3, 4, 5, 6],                   // Return Address 6
            &[0x80, 3, 0, 0],                                     // empty label stack
            &[0x80, 3, 0, 6, 0, 0, 0, 0, 0, 0],                   // label stack % 4
            &[0x80, 4, 0, 0],                                     // empty SRv6 list
            &[0x80, 4, 0, 4, 0, 0, 0, 0],                         // SRv6 list % 16
            &[0x80, 252, 0, 2, 0, 0],                             // private use < 4
            &[0x80, 2, 0, 16, 1, 2, 3, 4],                        // sub-TLV overruns
        ];
        for sub in cases {
            let (out, verdict, plan) = Fixture::v4().reflect(&handler(), &rp(sub));
            assert_eq!(verdict, TlvVerdict::Malformed, "{sub:?}");
            assert_eq!(out[4], 0x40, "offending sub-TLV gets M: {sub:?}");
            assert!(!plan.suppress);
        }
        // A trailing partial header: malformed, nothing to flag.
        let mut subs = CC_REPLY.to_vec();
        subs.extend_from_slice(&[0x80, 1]);
        let (out, verdict, _) = Fixture::v4().reflect(&handler(), &rp(&subs));
        assert_eq!(verdict, TlvVerdict::Malformed);
        assert_eq!(out[4], 0x80, "the well-formed sub-TLV is left as received");
        // An empty Return Path carries no path.
        let (_, verdict, _) = Fixture::v4().reflect(&handler(), &rp(&[]));
        assert_eq!(verdict, TlvVerdict::Malformed);
    }

    #[test]
    fn a_malformed_sub_tlv_after_a_control_code_stops_everything() {
        let mut subs = CC_NO_REPLY.to_vec();
        subs.extend_from_slice(&[0x80, 2, 0, 5, 1, 2, 3, 4, 5]);
        let (_, verdict, plan) = Fixture::v4().reflect(&handler(), &rp(&subs));
        assert_eq!(verdict, TlvVerdict::Malformed);
        assert!(!plan.suppress, "a malformed TLV is not acted upon");
    }

    #[test]
    fn only_the_first_return_path_tlv_is_processed() {
        // Area: [Return Path: cc reply][Return Path: cc no-reply]
        let mut area = rp(&CC_REPLY);
        let second_at = area.len();
        area.extend_from_slice(&rp(&CC_NO_REPLY));
        let f = Fixture::v4();
        let (_, verdict, plan) = f.reflect_at(&handler(), &area, second_at);
        assert_eq!(verdict, TlvVerdict::Unrecognized);
        assert!(!plan.suppress, "the second one is ignored");
        let (_, verdict, plan) = f.reflect_at(&handler(), &area, 0);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert!(!plan.suppress);
        // Another TLV type before it does not count.
        let mut area = vec![0x80, 9, 0, 4, 192, 0, 2, 1];
        area.extend_from_slice(&rp(&CC_NO_REPLY));
        let (_, verdict, plan) = f.reflect_at(&handler(), &area, 8);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert!(plan.suppress);
    }

    fn opts_value(opts: &[(&str, &str)]) -> Result<Option<Vec<u8>>, String> {
        request_value(&handler(), opts)
    }

    #[test]
    fn request_builds_each_sub_tlv_with_u_set() {
        assert_eq!(
            opts_value(&[("return-path-cc", "0")]).unwrap(),
            Some(CC_NO_REPLY.to_vec())
        );
        assert_eq!(
            opts_value(&[("return-path-cc", "1")]).unwrap(),
            Some(CC_REPLY.to_vec())
        );
        assert_eq!(
            opts_value(&[("return-address", "203.0.113.9")]).unwrap(),
            Some(ADDR_V4.to_vec())
        );
        // Labels 100 and 200: label << 12 | S (bottom only) << 8 | TTL 255.
        assert_eq!(
            opts_value(&[("return-sr-mpls-labels", "100,200")]).unwrap(),
            Some(vec![
                0x80, 3, 0, 8, 0x00, 0x06, 0x40, 0xFF, 0x00, 0x0C, 0x81, 0xFF
            ])
        );
        let v = opts_value(&[
            ("return-address", "203.0.113.9"),
            ("return-srv6-sids", "2001:db8::1,2001:db8::2"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(&v[..8], &ADDR_V4);
        assert_eq!(&v[8..12], &[0x80, 4, 0, 32]);
        assert_eq!(v.len(), 8 + 4 + 32);
        assert_eq!(opts_value(&[]).unwrap(), None);
    }

    #[test]
    fn request_refuses_combinations_rfc9503_forbids() {
        assert_eq!(
            opts_value(&[("return-path-cc", "1"), ("return-address", "203.0.113.9")]).unwrap_err(),
            "--return-path-cc cannot be combined with --return-address \
             (RFC 9503 §4.1: a Control Code excludes the other Return Path sub-TLVs)"
        );
        assert_eq!(
            opts_value(&[
                ("return-path-cc", "0"),
                ("return-sr-mpls-labels", "16"),
                ("return-srv6-sids", "2001:db8::1"),
            ])
            .unwrap_err(),
            "--return-path-cc cannot be combined with --return-sr-mpls-labels, --return-srv6-sids \
             (RFC 9503 §4.1: a Control Code excludes the other Return Path sub-TLVs)"
        );
        assert_eq!(
            opts_value(&[
                ("return-sr-mpls-labels", "16"),
                ("return-srv6-sids", "2001:db8::1")
            ])
            .unwrap_err(),
            "--return-sr-mpls-labels cannot be combined with --return-srv6-sids \
             (RFC 9503 §4.1.3: one Segment List sub-TLV per Return Path TLV)"
        );
    }

    #[test]
    fn request_refuses_bad_values() {
        assert_eq!(
            opts_value(&[("return-path-cc", "2")]).unwrap_err(),
            "--return-path-cc 2: Control Code must be 0 (no reply) or 1 (reply on the same link)"
        );
        assert_eq!(
            opts_value(&[("return-sr-mpls-labels", "1048576")]).unwrap_err(),
            "--return-sr-mpls-labels 1048576: \"1048576\": expected an MPLS label 0..1048575"
        );
        assert_eq!(
            opts_value(&[("return-srv6-sids", "192.0.2.1")]).unwrap_err(),
            "--return-srv6-sids 192.0.2.1: \"192.0.2.1\": expected an IPv6 address"
        );
        assert_eq!(
            opts_value(&[("return-address", "x")]).unwrap_err(),
            "--return-address x: expected an IPv4 or IPv6 address"
        );
    }

    #[test]
    fn request_value_is_accepted_by_the_reflector() {
        for opts in [
            &[("return-path-cc", "1")][..],
            &[("return-address", "203.0.113.9")],
        ] {
            let v = opts_value(opts).unwrap().unwrap();
            let (_, verdict, _) = Fixture::v4().reflect(&handler(), &rp(&v));
            assert_eq!(verdict, TlvVerdict::Processed, "{opts:?}");
        }
    }

    fn decode(flags: TlvFlags, value: &[u8]) -> TlvReport {
        let meta = reply_meta(None);
        let ctx = DecodeContext {
            meta: &meta,
            sent_value: None,
            reflector_format: TimestampFormat::Ntp,
        };
        handler().decode(flags, value, &ctx)
    }

    #[test]
    fn decode_summarises_the_path_and_refusal() {
        let r = decode(TlvFlags::NONE, &[0, 1, 0, 4, 0, 0, 0, 1]);
        assert_eq!((r.name, r.summary.as_str()), ("return-path", "cc reply"));
        assert_eq!(r.fields["reply"], true);
        let r = decode(TlvFlags::NONE, &[0, 1, 0, 4, 0, 0, 0, 0]);
        assert_eq!(r.summary, "cc no-reply");
        let r = decode(TlvFlags::NONE, &[0, 2, 0, 4, 203, 0, 113, 9]);
        assert_eq!(r.summary, "addr 203.0.113.9");
        assert_eq!(r.fields["refused"], false);
        let v = opts_value(&[
            ("return-address", "203.0.113.9"),
            ("return-sr-mpls-labels", "100,200"),
        ])
        .unwrap()
        .unwrap();
        let r = decode(TlvFlags::U, &v);
        assert_eq!(r.summary, "addr 203.0.113.9, sr-mpls 100,200 (refused)");
        assert_eq!(r.fields["refused"], true);
        assert_eq!(r.fields["sr_mpls_labels"], serde_json::json!([100, 200]));
        let v = opts_value(&[("return-srv6-sids", "2001:db8::1,2001:db8::2")])
            .unwrap()
            .unwrap();
        let r = decode(TlvFlags::U, &v);
        assert_eq!(r.summary, "srv6 2001:db8::1,2001:db8::2 (refused)");
        // A sub-TLV the reflector ignored, and broken framing.
        let r = decode(
            TlvFlags::NONE,
            &[0x80, 2, 0, 4, 203, 0, 113, 9, 0, 1, 0, 4, 0, 0, 0, 1],
        );
        assert_eq!(r.summary, "addr 203.0.113.9 (ignored), cc reply");
        let r = decode(TlvFlags::M, &[0x40, 1, 0, 9, 0]);
        assert_eq!(r.summary, "malformed sub-TLVs");
    }
}
