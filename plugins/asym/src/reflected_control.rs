//! Reflected Test Packet Control TLV, type 12
//! (draft-ietf-ippm-asymmetrical-pkts-14 §3; WIRE.md §7.14). The IANA value
//! is "TBA" in the draft; 12 matches its figures and every implementation
//! seen, and can be moved with `--tlv-code reflected-test-packet-control=N`.
//!
//! ```text
//! | Length of the Reflected Packet (2) | Number of the Reflected Packets (2) |
//! | Interval Between the Reflected Packets, ns (4)                          |
//! | Sub-TLVs (optional) ...                                                  |
//! ```
//!
//! # Length of the TLV
//!
//! -14 says the Length MUST NOT be less than 12; earlier revisions, and
//! teaparty (the one other implementation whose traffic we have), use
//! exactly 8 (no sub-TLVs). We accept any Length ≥ 8 and call < 8
//! malformed (M), for interop with teaparty; an 8-octet Value simply has no
//! sub-TLVs. Our sender emits 8 octets unless a Layer 3 Address Group is
//! asked for (`reflected-control-l3-group`; `0.0.0.0/0` matches every
//! reflector and gives a -14-conformant 20-octet Value for peers that
//! insist on ≥ 12, such as stamp-suite).
//!
//! # Reflector
//!
//! In this order:
//! 1. Length < 8 → M (RFC 8972 §4 stops TLV processing there).
//! 2. Disabled by policy (the default, draft §3 "disabled by default") →
//!    one normal reply, C set, Value unchanged, sub-TLVs not looked at —
//!    even for Number = 0: a reflector that does not honour Type 12 answers
//!    like one without it, and C tells the sender why there is no train
//!    (stamp-suite's "local policy override" reading).
//! 3. Sub-TLVs checked ([`crate::sub_tlvs::check`]); malformed → M on it
//!    and on the TLV.
//! 4. Address groups ([`crate::sub_tlvs::evaluate`]): not for us → no
//!    reply (`plan.suppress`), draft §3 "stop processing".
//! 5. Number = 0 → no reply (`plan.suppress`): the draft's SHOULD discard;
//!    no local override is offered.
//! 6. Return Path (RFC 9503) Control Code "no reply" in the same packet
//!    with Number ≠ 0: illegal combination (draft §4.3, WIRE.md §7.12) → U
//!    on this TLV, U on the Return Path TLV when it precedes this one (its
//!    handler has already run), and a single reply (stamp-suite's reading)
//!    by clearing `plan.suppress`. Limitation: when the Return Path TLV
//!    comes after this one its handler runs later and suppresses the reply;
//!    senders put TLVs in type order, so 10 precedes 12.
//! 7. Policy ([`crate::policy::Policy::grant`]): `plan.copies`,
//!    `plan.copy_interval_ns`, `plan.reply_len`; C when a limit clamped the
//!    request, else flags cleared.
//!
//! The Value is returned as received: the reply says what was asked, C
//! says it was not (fully) granted.
//!
//! Not done: the replay guard (draft §5: SHOULD check that Sequence Numbers
//! increase, else single reply with U). A handler sees per-session state
//! only through `ReflectContext::counters`, which carries the reflector's
//! previous reply (its own sequence number), not the sender's previous
//! Sequence Number. The session table stores it (`last_request_seq`);
//! exposing it in `SessionCounters` would let this handler do the check for
//! stateful sessions. The identity protection the draft requires (§5, e.g.
//! trusted senders) is likewise left to deployment: keep Type 12 disabled,
//! or use authenticated mode / the HMAC TLV with a bounded policy.
//!
//! # Sender
//!
//! Options ([`crate::SENDER_OPTION_KEYS`]): `reflected-control-count`
//! (Number, 0..65535; the TLV is sent when it is given),
//! `reflected-control-length` (octets, default 0 = as long as the request),
//! `reflected-control-interval-ns` (default 1 000 000, the reflector's
//! default minimum), `reflected-control-l3-group` (prefix). Counting a
//! train of replies (they share the Session-Sender Sequence Number, so the
//! core's `on_reply` sees copies 2..N as duplicates) and not sending the
//! next Type 12 request before the previous train should have ended are
//! the sender driver's work.

use std::net::IpAddr;

use stamp_core::registry::PluginSettings;
use stamp_core::{
    DecodeContext, ReflectContext, TlvHandler, TlvOptions, TlvReport, TlvSlot, TlvTemplate,
    TlvVerdict,
};
use stamp_wire::tlv::{emit_header, HEADER_LEN};
use stamp_wire::{TlvFlags, TlvIter, TlvType};

use crate::options;
use crate::policy::{Policy, Request};
use crate::sub_tlvs::{self, GroupMatch, L3Group, RtpcSubTlv};

/// Sender option: Number of the Reflected Packets.
pub const OPT_COUNT: &str = "reflected-control-count";
/// Sender option: Length of the Reflected Packet, octets.
pub const OPT_LENGTH: &str = "reflected-control-length";
/// Sender option: Interval Between the Reflected Packets, ns.
pub const OPT_INTERVAL_NS: &str = "reflected-control-interval-ns";
/// Sender option: a Layer 3 Address Group sub-TLV (`192.0.2.0/24`).
pub const OPT_L3_GROUP: &str = "reflected-control-l3-group";
/// Reflector plugin setting: the host's own addresses (comma list) for
/// Layer 3 Address Group matching, besides the request's destination. The
/// binary fills it; the RFC 9503 plugin reads the same key.
pub const SETTING_LOCAL_ADDRESSES: &str = "local-addresses";

/// Length of the fixed part of the Value (draft -13 and teaparty: all of it).
pub const FIXED_LEN: usize = 8;
/// Smallest Length draft -14 allows (not enforced, see the module docs).
pub const DRAFT14_MIN_LEN: usize = 12;
/// Default of [`OPT_INTERVAL_NS`].
pub const DEFAULT_INTERVAL_NS: u32 = 1_000_000;

/// The Return Path TLV (RFC 9503 §4) and its Control Code sub-TLV, for the
/// "no reply" conflict check.
const RETURN_PATH: TlvType = TlvType::RETURN_PATH;
const CONTROL_CODE_SUB_TLV: u8 = 1;
const REPLY_REQUEST: u8 = 0x01;

/// Parse the fixed part of a Value; `None` when shorter than 8 octets.
pub fn parse(value: &[u8]) -> Option<(Request, &[u8])> {
    let (fixed, subs) = value.split_at_checked(FIXED_LEN)?;
    Some((
        Request {
            length: u16::from_be_bytes([fixed[0], fixed[1]]),
            count: u16::from_be_bytes([fixed[2], fixed[3]]),
            interval_ns: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        },
        subs,
    ))
}

/// The 8-octet fixed part for `r`.
pub fn emit(r: &Request) -> [u8; FIXED_LEN] {
    let mut v = [0u8; FIXED_LEN];
    v[0..2].copy_from_slice(&r.length.to_be_bytes());
    v[2..4].copy_from_slice(&r.count.to_be_bytes());
    v[4..8].copy_from_slice(&r.interval_ns.to_be_bytes());
    v
}

/// Handler of the Reflected Test Packet Control TLV.
#[derive(Debug)]
pub struct ReflectedControlHandler {
    code: TlvType,
    policy: Policy,
    /// Own addresses besides each request's destination.
    local: Vec<IpAddr>,
}

impl ReflectedControlHandler {
    /// A handler for type `code` with `policy`, whose own addresses are
    /// `local` plus the address each request arrives on.
    pub fn new(code: TlvType, policy: Policy, local: Vec<IpAddr>) -> Self {
        ReflectedControlHandler {
            code,
            policy,
            local,
        }
    }

    /// Build from the plugin settings (see [`crate::policy`] and
    /// [`SETTING_LOCAL_ADDRESSES`]).
    pub fn from_settings(code: TlvType, settings: &PluginSettings) -> Result<Self, String> {
        Ok(Self::new(
            code,
            Policy::from_settings(settings)?,
            options::addresses(settings, SETTING_LOCAL_ADDRESSES)?,
        ))
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.policy
    }
}

stamp_core::register_tlv! {
    key: "reflected-test-packet-control",
    code: 12,
    name: "Reflected Test Packet Control",
    spec: "draft-ietf-ippm-asymmetrical-pkts-14 §3",
    configurable_code: true,
    factory: |code, settings| Ok(Box::new(ReflectedControlHandler::from_settings(code, settings)?)),
}

/// Header offset of the first Return Path TLV of `area` when its Control
/// Code asks for no reply (RFC 9503 §4.1.1: Reply Request bit clear). Only
/// the first Return Path TLV counts (§4).
fn return_path_no_reply(area: &[u8]) -> Option<usize> {
    let rp = TlvIter::new(area)
        .map_while(Result::ok)
        .find(|t| t.tlv_type == RETURN_PATH)?;
    let cc = TlvIter::new(rp.value)
        .map_while(Result::ok)
        .find(|s| s.tlv_type.0 == CONTROL_CODE_SUB_TLV && s.value.len() == 4)?;
    (cc.value[3] & REPLY_REQUEST == 0).then_some(rp.offset)
}

impl TlvHandler for ReflectedControlHandler {
    fn tlv_type(&self) -> TlvType {
        self.code
    }

    /// U on this TLV means "refused" (Return Path conflict) as well as
    /// "unknown": decode it anyway, the Value is the request's.
    fn decodes_refusals(&self) -> bool {
        true
    }

    /// See the module documentation for the order of the rules.
    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        let Some((req, _)) = parse(slot.value()) else {
            return TlvVerdict::Malformed;
        };
        if !self.policy.enabled {
            return TlvVerdict::Conformance;
        }
        let offset = slot.offset();
        let request_len = ctx.mode.base_len() + slot.area_mut().len();
        {
            let subs = &mut slot.value_mut()[FIXED_LEN..];
            if let Err(at) = sub_tlvs::check(subs) {
                if let Some(at) = at {
                    subs[at] = TlvFlags::M.0;
                }
                return TlvVerdict::Malformed;
            }
            if sub_tlvs::evaluate(subs, ctx.meta.dst, &self.local) == GroupMatch::NoMatch {
                ctx.plan.suppress = true;
                return TlvVerdict::Processed;
            }
        }
        if req.count == 0 {
            ctx.plan.suppress = true;
            return TlvVerdict::Processed;
        }
        let area = slot.area_mut();
        if let Some(rp) = return_path_no_reply(area) {
            if rp < offset {
                area[rp] = TlvFlags::U.0;
                ctx.plan.suppress = false;
            }
            return TlvVerdict::Unrecognized;
        }
        let grant = self.policy.grant(req, request_len);
        ctx.plan.copies = grant.copies;
        ctx.plan.copy_interval_ns = grant.interval_ns;
        ctx.plan.reply_len = grant.reply_len;
        if grant.limited {
            TlvVerdict::Conformance
        } else {
            TlvVerdict::Processed
        }
    }

    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        let count = options::bounded(opts, OPT_COUNT, 0, 65_535, "must be 0..65535")?;
        let length = options::bounded(
            opts,
            OPT_LENGTH,
            0,
            stamp_wire::MAX_DATAGRAM as u64,
            "must be 0..9216 octets",
        )?;
        let interval = options::bounded(
            opts,
            OPT_INTERVAL_NS,
            0,
            u64::from(u32::MAX),
            "must be 0..4294967295 nanoseconds",
        )?;
        let group = match opts.get(OPT_L3_GROUP) {
            None => None,
            Some(raw) => Some(
                raw.parse::<L3Group>()
                    .map_err(|rule| options::invalid(OPT_L3_GROUP, raw, rule))?,
            ),
        };
        let Some(count) = count else {
            for (set, key) in [
                (length.is_some(), OPT_LENGTH),
                (interval.is_some(), OPT_INTERVAL_NS),
                (group.is_some(), OPT_L3_GROUP),
            ] {
                if set {
                    return Err(format!("--{key}: needs --{OPT_COUNT}"));
                }
            }
            return Ok(None);
        };
        let req = Request {
            length: length.unwrap_or(0) as u16,
            count: count as u16,
            interval_ns: interval.map_or(DEFAULT_INTERVAL_NS, |v| v as u32),
        };
        let mut value = emit(&req).to_vec();
        if let Some(g) = group {
            let body = g.value();
            let mut h = [0u8; HEADER_LEN];
            emit_header(
                &mut h,
                TlvFlags::U,
                TlvType(RtpcSubTlv::L3_ADDRESS_GROUP.0),
                body.len() as u16,
            );
            value.extend_from_slice(&h);
            value.extend_from_slice(&body);
        }
        Ok(Some(TlvTemplate {
            tlv_type: self.code,
            value,
        }))
    }

    /// `3 x 200 octets every 1000000 ns`, `, l3 group 192.0.2.0/24` per
    /// group, and why the reflector did not grant it: ` (limited: C)` (a
    /// policy limit clamped it, or the reflector has Type 12 disabled),
    /// ` (refused: U)` (unknown type, or a Return Path "no reply" conflict).
    fn decode(&self, flags: TlvFlags, value: &[u8], _ctx: &DecodeContext<'_>) -> TlvReport {
        let mut report = TlvReport::new(self.code, "rtpc", flags, String::new());
        let Some((req, subs)) = parse(value) else {
            report.summary = format!("malformed ({} octets)", value.len());
            return report.field("malformed", true);
        };
        let mut summary = format!(
            "{} x {} octets every {} ns",
            req.count, req.length, req.interval_ns
        );
        let mut groups = Vec::new();
        for item in TlvIter::new(subs) {
            let Ok(t) = item else {
                summary.push_str(", malformed sub-TLVs");
                break;
            };
            match RtpcSubTlv(t.tlv_type.0) {
                RtpcSubTlv::L3_ADDRESS_GROUP => {
                    if let Some(g) = L3Group::parse(t.value) {
                        summary.push_str(&format!(", l3 group {g}"));
                        groups.push(serde_json::Value::from(g.to_string()));
                    }
                }
                RtpcSubTlv::L2_ADDRESS_GROUP => summary.push_str(", l2 group"),
                _ => {}
            }
            if t.flags.malformed() {
                summary.push_str(" (malformed)");
            }
        }
        let limited = flags.conformance();
        let refused = flags.unrecognized();
        if limited {
            summary.push_str(" (limited: C)");
        }
        if refused {
            summary.push_str(" (refused: U)");
        }
        report.summary = summary;
        report
            .field("count", req.count)
            .field("length", req.length)
            .field("interval_ns", req.interval_ns)
            .field("l3_groups", serde_json::Value::from(groups))
            .field("limited", limited)
            .field("refused", refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Fixture;
    use stamp_core::transport::RecvMeta;
    use stamp_core::ReplyPlan;
    use stamp_wire::{AuthMode, TimestampFormat};

    const CODE: TlvType = TlvType::REFLECTED_TEST_PACKET_CONTROL;

    /// teaparty's request Value: 200 octets, 3 packets, 1 s apart.
    const TEAPARTY: [u8; 8] = [0x00, 0xC8, 0x00, 0x03, 0x3B, 0x9A, 0xCA, 0x00];

    fn policy(max_count: u16, max_size: Option<usize>, min_interval_ns: u32) -> Policy {
        Policy {
            enabled: true,
            max_count,
            max_size,
            min_interval_ns,
        }
    }

    fn handler(p: Policy) -> ReflectedControlHandler {
        ReflectedControlHandler::new(CODE, p, Vec::new())
    }

    /// A Type 12 TLV (U set, as a sender sends it) with `value`.
    fn tlv(value: &[u8]) -> Vec<u8> {
        let mut v = vec![0x80, 12];
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
        v.extend_from_slice(value);
        v
    }

    fn value(length: u16, count: u16, interval_ns: u32, subs: &[u8]) -> Vec<u8> {
        let mut v = emit(&Request {
            length,
            count,
            interval_ns,
        })
        .to_vec();
        v.extend_from_slice(subs);
        v
    }

    fn default_plan(f: &Fixture) -> ReplyPlan {
        ReplyPlan::for_request(&f.meta)
    }

    #[test]
    fn parse_reads_each_field_big_endian() {
        let (r, subs) = parse(&TEAPARTY).unwrap();
        assert_eq!(
            r,
            Request {
                length: 200,
                count: 3,
                interval_ns: 1_000_000_000
            }
        );
        assert!(subs.is_empty());
        let v = value(0x0102, 0x0304, 0x0506_0708, &[0, 0, 0, 0]);
        assert_eq!(v[..8], [1, 2, 3, 4, 5, 6, 7, 8]);
        let (r, subs) = parse(&v).unwrap();
        assert_eq!(
            (r.length, r.count, r.interval_ns),
            (0x0102, 0x0304, 0x0506_0708)
        );
        assert_eq!(subs, [0, 0, 0, 0]);
        assert_eq!(parse(&[0; 7]), None);
    }

    #[test]
    fn values_shorter_than_8_are_malformed_even_when_disabled() {
        let f = Fixture::v4();
        for h in [handler(Policy::default()), handler(policy(4, None, 0))] {
            for len in [0usize, 4, 7] {
                let r = f.reflect(&h, &tlv(&vec![0; len]));
                assert_eq!(r.verdict, TlvVerdict::Malformed, "{len}");
                assert_eq!(r.plan, default_plan(&f));
            }
        }
    }

    #[test]
    fn teaparty_8_octet_value_is_accepted() {
        let f = Fixture::v4();
        let r = f.reflect(&handler(policy(4, Some(1500), 0)), &tlv(&TEAPARTY));
        assert_eq!(r.verdict, TlvVerdict::Processed);
        assert_eq!(
            (r.plan.copies, r.plan.copy_interval_ns, r.plan.reply_len),
            (3, 1_000_000_000, 200)
        );
        assert_eq!(r.area, tlv(&TEAPARTY), "Value returned as received");
    }

    #[test]
    fn disabled_by_default_gives_one_reply_with_c() {
        let f = Fixture::v4();
        let h = ReflectedControlHandler::from_settings(CODE, &PluginSettings::new()).unwrap();
        assert!(!h.policy().enabled);
        for v in [TEAPARTY.to_vec(), value(200, 0, 0, &[])] {
            let r = f.reflect(&h, &tlv(&v));
            assert_eq!(r.verdict, TlvVerdict::Conformance);
            assert_eq!(
                r.plan,
                default_plan(&f),
                "one normal reply, even for Number 0"
            );
        }
        // Sub-TLVs are not looked at when disabled (a broken one included).
        let r = f.reflect(&h, &tlv(&value(0, 2, 0, &[0x80, 11, 0, 1, 0])));
        assert_eq!(r.verdict, TlvVerdict::Conformance);
    }

    #[test]
    fn enabled_with_default_limits_never_amplifies() {
        let f = Fixture::v4();
        let mut s = PluginSettings::new();
        s.set("reflected-control-enabled", "true");
        let h = ReflectedControlHandler::from_settings(CODE, &s).unwrap();
        let r = f.reflect(&h, &tlv(&TEAPARTY));
        assert_eq!(r.verdict, TlvVerdict::Conformance);
        // Request: 44 + 12 octets; no growth, one reply.
        assert_eq!(
            (r.plan.copies, r.plan.copy_interval_ns, r.plan.reply_len),
            (1, 0, 56)
        );
        // A request that asks for nothing more is granted with flags clear.
        let r = f.reflect(&h, &tlv(&value(0, 1, 0, &[])));
        assert_eq!(r.verdict, TlvVerdict::Processed);
        assert_eq!((r.plan.copies, r.plan.reply_len), (1, 56));
    }

    #[test]
    fn beyond_limits_is_clamped_with_c() {
        let f = Fixture::v4();
        let h = handler(policy(4, Some(1000), 1_000_000));
        let r = f.reflect(&h, &tlv(&value(2000, 10, 1000, &[])));
        assert_eq!(r.verdict, TlvVerdict::Conformance);
        assert_eq!(
            (r.plan.copies, r.plan.copy_interval_ns, r.plan.reply_len),
            (4, 1_000_000, 1000)
        );
        assert!(!r.plan.suppress);
    }

    #[test]
    fn reply_length_is_rounded_up_and_measured_from_the_whole_request() {
        let mut f = Fixture::v4();
        let h = handler(policy(1, Some(9000), 0));
        let r = f.reflect(&h, &tlv(&value(301, 1, 0, &[])));
        assert_eq!(r.plan.reply_len, 304);
        // Authenticated: the request is 112 + 12 octets; asking for 100
        // leaves the reply at the request's length.
        f.mode = AuthMode::Authenticated;
        let r = f.reflect(&h, &tlv(&value(100, 1, 0, &[])));
        assert_eq!((r.verdict, r.plan.reply_len), (TlvVerdict::Processed, 124));
    }

    #[test]
    fn number_zero_means_no_reply() {
        let f = Fixture::v4();
        let r = f.reflect(&handler(policy(4, None, 0)), &tlv(&value(0, 0, 0, &[])));
        assert_eq!(r.verdict, TlvVerdict::Processed);
        assert!(r.plan.suppress);
    }

    fn l3(prefix: &str) -> Vec<u8> {
        let g: L3Group = prefix.parse().unwrap();
        let body = g.value();
        let mut v = vec![0x80, 11, 0, body.len() as u8];
        v.extend_from_slice(&body);
        v
    }

    #[test]
    fn l3_group_selects_reflectors() {
        let f = Fixture::v4();
        let h = handler(policy(4, None, 0));
        let r = f.reflect(&h, &tlv(&value(0, 2, 0, &l3("192.0.2.0/24"))));
        assert_eq!(r.verdict, TlvVerdict::Processed);
        assert!(!r.plan.suppress);
        assert_eq!(r.plan.copies, 2);
        assert_eq!(r.area[12], 0, "group sub-TLV flags cleared");
        let r = f.reflect(&h, &tlv(&value(0, 2, 0, &l3("203.0.113.0/24"))));
        assert!(r.plan.suppress, "not in the group: no reply");
        // A configured local address puts us in the group.
        let h = ReflectedControlHandler::new(
            CODE,
            policy(4, None, 0),
            vec!["203.0.113.5".parse().unwrap()],
        );
        let r = f.reflect(&h, &tlv(&value(0, 2, 0, &l3("203.0.113.0/24"))));
        assert!(!r.plan.suppress);
    }

    #[test]
    fn l2_group_cannot_be_matched_except_the_all_zero_one() {
        let f = Fixture::v4();
        let h = handler(policy(4, None, 0));
        let mac = [
            0x80, 10, 0, 12, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0x11, 0x22, 0x33, 0x44, 0x55,
        ];
        let r = f.reflect(&h, &tlv(&value(0, 2, 0, &mac)));
        assert!(r.plan.suppress);
        let any = [0x80, 10, 0, 4, 0, 0, 0, 0];
        let r = f.reflect(&h, &tlv(&value(0, 2, 0, &any)));
        assert!(!r.plan.suppress);
        assert_eq!(r.plan.copies, 2);
    }

    #[test]
    fn malformed_sub_tlvs_get_m_on_sub_tlv_and_tlv() {
        let f = Fixture::v4();
        let h = handler(policy(4, None, 0));
        for sub in [
            &[0x80, 11, 0, 4, 24, 0, 0, 0][..],               // L3 of 4 octets
            &[0x80, 11, 0, 8, 33, 0, 0, 0, 192, 0, 2, 0][..], // prefix length 33
            &[0x80, 10, 0, 6, 0, 0, 0, 0, 0, 0][..],          // L2 of 6 octets
            &[0x80, 11, 0, 20, 0, 0, 0, 0][..],               // overruns the TLV
        ] {
            let r = f.reflect(&h, &tlv(&value(0, 2, 0, sub)));
            assert_eq!(r.verdict, TlvVerdict::Malformed, "{sub:?}");
            assert_eq!(r.area[12], 0x40, "{sub:?}");
            assert_eq!(r.plan, default_plan(&f));
        }
        // A partial sub-TLV header: malformed, nothing to flag.
        let r = f.reflect(&h, &tlv(&value(0, 2, 0, &[0x80, 11])));
        assert_eq!(r.verdict, TlvVerdict::Malformed);
        assert_eq!(r.area[12], 0x80);
    }

    #[test]
    fn draft14_placeholder_and_unknown_sub_tlvs_are_tolerated() {
        let f = Fixture::v4();
        let h = handler(policy(4, None, 0));
        let r = f.reflect(&h, &tlv(&value(0, 2, 0, &[0, 0, 0, 0])));
        assert_eq!(r.verdict, TlvVerdict::Processed);
        assert_eq!(&r.area[12..16], &[0, 0, 0, 0]);
        let r = f.reflect(&h, &tlv(&value(0, 2, 0, &[0x00, 240, 0, 0])));
        assert_eq!(r.verdict, TlvVerdict::Processed);
        assert_eq!(
            r.area[12], 0x80,
            "ext-hdr control sub-TLV not acted upon: U"
        );
        assert_eq!(r.plan.copies, 2);
    }

    /// A Return Path TLV with a Control Code sub-TLV, flags as the
    /// reflector leaves them after processing it.
    fn return_path(reply: bool) -> Vec<u8> {
        vec![0x00, 10, 0, 8, 0x00, 1, 0, 4, 0, 0, 0, u8::from(reply)]
    }

    #[test]
    fn return_path_no_reply_before_us_is_a_conflict_u_on_both_one_reply() {
        let f = Fixture::v4();
        let h = handler(policy(4, None, 0));
        let mut area = return_path(false);
        area.extend_from_slice(&tlv(&value(0, 3, 0, &[])));
        let mut plan = default_plan(&f);
        plan.suppress = true; // what the Return Path handler did
        let r = f.reflect_with(&h, &area, 12, plan);
        assert_eq!(r.verdict, TlvVerdict::Unrecognized);
        assert_eq!(r.area[0], 0x80, "U on the Return Path TLV");
        assert!(!r.plan.suppress, "a single reply after all");
        assert_eq!(r.plan.copies, 1);
    }

    #[test]
    fn return_path_no_reply_after_us_gets_u_here_only() {
        let f = Fixture::v4();
        let h = handler(policy(4, None, 0));
        let mut area = tlv(&value(0, 3, 0, &[]));
        let mut rp = return_path(false);
        rp[0] = 0x80; // not processed yet
        area.extend_from_slice(&rp);
        let r = f.reflect_with(&h, &area, 0, default_plan(&f));
        assert_eq!(r.verdict, TlvVerdict::Unrecognized);
        assert_eq!(r.area[12], 0x80, "left to its own handler");
        assert_eq!(r.plan.copies, 1);
    }

    #[test]
    fn return_path_reply_requested_or_number_zero_is_no_conflict() {
        let f = Fixture::v4();
        let h = handler(policy(4, None, 0));
        let mut area = return_path(true);
        area.extend_from_slice(&tlv(&value(0, 3, 0, &[])));
        let r = f.reflect_with(&h, &area, 12, default_plan(&f));
        assert_eq!(r.verdict, TlvVerdict::Processed);
        assert_eq!(r.plan.copies, 3);
        // No reply asked twice: consistent, stays suppressed.
        let mut area = return_path(false);
        area.extend_from_slice(&tlv(&value(0, 0, 0, &[])));
        let mut plan = default_plan(&f);
        plan.suppress = true;
        let r = f.reflect_with(&h, &area, 12, plan);
        assert_eq!(r.verdict, TlvVerdict::Processed);
        assert!(r.plan.suppress);
        assert_eq!(r.area[0], 0);
    }

    fn request_value(opts: &[(&str, &str)]) -> Result<Option<Vec<u8>>, String> {
        let mut o = TlvOptions::new();
        for (k, v) in opts {
            o.set(*k, *v);
        }
        let h = handler(Policy::default());
        Ok(h.request(&o)?.map(|t| {
            assert_eq!(t.tlv_type, CODE);
            t.value
        }))
    }

    #[test]
    fn request_builds_the_8_octet_value_with_defaults() {
        assert_eq!(request_value(&[]).unwrap(), None);
        assert_eq!(
            request_value(&[
                ("reflected-control-count", "3"),
                ("reflected-control-length", "200"),
                ("reflected-control-interval-ns", "1000000000"),
            ])
            .unwrap(),
            Some(TEAPARTY.to_vec())
        );
        assert_eq!(
            request_value(&[("reflected-control-count", "2")]).unwrap(),
            Some(value(0, 2, 1_000_000, &[]))
        );
        assert_eq!(
            request_value(&[("reflected-control-count", "0")]).unwrap(),
            Some(value(0, 0, 1_000_000, &[]))
        );
    }

    #[test]
    fn request_adds_an_l3_group_sub_tlv_with_u() {
        let v = request_value(&[
            ("reflected-control-count", "2"),
            ("reflected-control-l3-group", "0.0.0.0/0"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(v.len(), 20, "a -14-conformant Value (>= 12)");
        assert_eq!(&v[8..], &[0x80, 11, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        let (_, subs) = parse(&v).unwrap();
        assert_eq!(sub_tlvs::check(subs), Ok(()));
    }

    #[test]
    fn request_refuses_bad_values_and_orphan_options() {
        for (opts, e) in [
            (
                &[("reflected-control-count", "65536")][..],
                "--reflected-control-count 65536: must be 0..65535",
            ),
            (
                &[
                    ("reflected-control-count", "1"),
                    ("reflected-control-length", "9217"),
                ][..],
                "--reflected-control-length 9217: must be 0..9216 octets",
            ),
            (
                &[
                    ("reflected-control-count", "1"),
                    ("reflected-control-interval-ns", "x"),
                ][..],
                "--reflected-control-interval-ns x: must be 0..4294967295 nanoseconds",
            ),
            (
                &[
                    ("reflected-control-count", "1"),
                    ("reflected-control-l3-group", "10.0.0.0/40"),
                ][..],
                "--reflected-control-l3-group 10.0.0.0/40: prefix length too long for the address family",
            ),
            (
                &[("reflected-control-length", "200")][..],
                "--reflected-control-length: needs --reflected-control-count",
            ),
        ] {
            assert_eq!(request_value(opts).unwrap_err(), e, "{opts:?}");
        }
    }

    fn decode(flags: TlvFlags, value: &[u8]) -> TlvReport {
        let meta = RecvMeta::default();
        let ctx = DecodeContext {
            meta: &meta,
            sent_value: None,
            reflector_format: TimestampFormat::Ntp,
        };
        handler(Policy::default()).decode(flags, value, &ctx)
    }

    #[test]
    fn decode_summarises_request_and_verdict() {
        let r = decode(TlvFlags::NONE, &TEAPARTY);
        assert_eq!(
            (r.name, r.summary.as_str()),
            ("rtpc", "3 x 200 octets every 1000000000 ns")
        );
        assert_eq!(r.fields["count"], 3);
        assert_eq!(r.fields["length"], 200);
        assert_eq!(r.fields["interval_ns"], 1_000_000_000u32);
        assert_eq!(r.fields["limited"], false);
        let r = decode(TlvFlags::C, &TEAPARTY);
        assert_eq!(r.summary, "3 x 200 octets every 1000000000 ns (limited: C)");
        assert_eq!(r.flags, TlvFlags::C);
        assert_eq!(r.fields["limited"], true);
        let r = decode(TlvFlags::U, &value(0, 2, 5, &l3("192.0.2.0/24")));
        assert_eq!(
            r.summary,
            "2 x 0 octets every 5 ns, l3 group 192.0.2.0/24 (refused: U)"
        );
        assert_eq!(r.fields["l3_groups"], serde_json::json!(["192.0.2.0/24"]));
        let r = decode(TlvFlags::M, &[0, 1]);
        assert_eq!(r.summary, "malformed (2 octets)");
    }
}
