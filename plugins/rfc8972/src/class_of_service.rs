//! Class of Service TLV, type 4 (RFC 8972 §4.4, read with erratum 8199).
//!
//! ```text
//! |  DSCP1(6) |  DSCP2(6) |ECN| RP|          Reserved (16)        |
//! ```
//! octet 0 = DSCP1 << 2 | DSCP2 >> 4; octet 1 = (DSCP2 & 0x0F) << 4 |
//! ECN << 2 | RP; octets 2–3 reserved.
//!
//! The sender asks for DSCP1 on the reply. The reflector copies the DSCP of
//! the received IP header into DSCP2 and its ECN into ECN (§4.4 says "DSCP
//! and ECN … into the DSCP2 field"; erratum 8199 separates them as the
//! figure does), then marks the reply with DSCP1 if local policy permits,
//! else with the received DSCP and RP = 1 (§4.4). The reply's TOS is a
//! request to the driver through [`stamp_core::ReplyPlan::tos`].
//!
//! Local policy (§4.4 "MUST use the local policy", §6 "SHOULD" support it):
//! the plugin setting [`SETTING_ALLOWED_DSCP`], a comma list of DSCP values;
//! absent, every DSCP is permitted.

use serde_json::Value;
use stamp_core::registry::PluginSettings;
use stamp_core::{
    DecodeContext, ReflectContext, TlvHandler, TlvOptions, TlvReport, TlvSlot, TlvTemplate,
    TlvVerdict,
};
use stamp_wire::{TlvFlags, TlvType};

use crate::options;

/// Sender option (flag): include a Class of Service TLV.
pub const OPT_COS: &str = "cos";
/// Sender option: DSCP1, the DSCP asked for on the reply (0..63, default 0).
pub const OPT_DSCP: &str = "dscp";
/// Sender option: the ECN codepoint the sender marks its packets with
/// (0..3, default 0; the driver does the marking).
pub const OPT_ECN: &str = "ecn";
/// Reflector plugin setting: DSCP values the reflector accepts in DSCP1
/// (comma list; absent = all).
pub const SETTING_ALLOWED_DSCP: &str = "cos-allowed-dscp";

/// Length of the Value (§4.4: "set equal to the value 4").
pub const VALUE_LEN: usize = 4;

const DSCP_RULE: &str = "DSCP must be 0..63";
const ECN_RULE: &str = "ECN must be 0..3";

/// The fields of a Class of Service Value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CosRepr {
    /// DSCP the sender wants on the reply.
    pub dscp1: u8,
    /// DSCP received at the reflector.
    pub dscp2: u8,
    /// ECN received at the reflector.
    pub ecn: u8,
    /// Reverse Path: 0 = DSCP1 used for the reply, 1 = refused.
    pub rp: u8,
}

impl CosRepr {
    /// Parse a Value of exactly four octets.
    pub fn parse(value: &[u8]) -> Option<CosRepr> {
        let &[a, b, _, _] = value
            .first_chunk::<VALUE_LEN>()
            .filter(|_| value.len() == VALUE_LEN)?;
        Some(CosRepr {
            dscp1: a >> 2,
            dscp2: (a & 0x03) << 4 | b >> 4,
            ecn: (b >> 2) & 0x03,
            rp: b & 0x03,
        })
    }

    /// Write the Value (reserved octets zero).
    pub fn emit(&self, value: &mut [u8; VALUE_LEN]) {
        value[0] = (self.dscp1 & 0x3F) << 2 | (self.dscp2 & 0x3F) >> 4;
        value[1] = (self.dscp2 & 0x0F) << 4 | (self.ecn & 0x03) << 2 | (self.rp & 0x03);
        value[2] = 0;
        value[3] = 0;
    }
}

/// Handler of the Class of Service TLV.
#[derive(Debug)]
pub struct ClassOfServiceHandler {
    code: TlvType,
    /// Bit n set = DSCP n permitted in DSCP1.
    allowed: u64,
}

impl ClassOfServiceHandler {
    /// A handler for type `code` permitting every DSCP.
    pub fn new(code: TlvType) -> Self {
        ClassOfServiceHandler {
            code,
            allowed: u64::MAX,
        }
    }

    /// A handler whose policy comes from [`SETTING_ALLOWED_DSCP`].
    pub fn from_settings(code: TlvType, settings: &PluginSettings) -> Result<Self, String> {
        let Some(list) = settings.get(SETTING_ALLOWED_DSCP) else {
            return Ok(Self::new(code));
        };
        let mut allowed = 0u64;
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.parse::<u8>() {
                Ok(d) if d < 64 => allowed |= 1 << d,
                _ => return Err(options::invalid(SETTING_ALLOWED_DSCP, item, DSCP_RULE)),
            }
        }
        Ok(ClassOfServiceHandler { code, allowed })
    }

    /// Does local policy permit `dscp` on replies?
    pub fn permits(&self, dscp: u8) -> bool {
        dscp < 64 && self.allowed & (1 << dscp) != 0
    }
}

stamp_core::register_tlv! {
    key: "class-of-service",
    code: 4,
    name: "Class of Service",
    spec: "RFC 8972 §4.4",
    configurable_code: false,
    factory: |code, settings| {
        ClassOfServiceHandler::from_settings(code, settings).map(|h| Box::new(h) as Box<dyn TlvHandler>)
    },
}

impl TlvHandler for ClassOfServiceHandler {
    fn tlv_type(&self) -> TlvType {
        self.code
    }

    /// §4.4. A transport that does not report the received TOS leaves
    /// DSCP2 and ECN zero; the reply then keeps the socket's default TOS
    /// when DSCP1 is refused.
    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        let Ok(v) = <&mut [u8; VALUE_LEN]>::try_from(slot.value_mut()) else {
            return TlvVerdict::Malformed;
        };
        let dscp1 = v[0] >> 2;
        let received = ctx.meta.tos;
        let (dscp2, ecn) = received.map_or((0, 0), |tos| (tos >> 2, tos & 0x03));
        let rp = if self.permits(dscp1) {
            ctx.plan.tos = Some(dscp1 << 2 | ecn);
            0
        } else {
            ctx.plan.tos = received;
            1
        };
        CosRepr {
            dscp1,
            dscp2,
            ecn,
            rp,
        }
        .emit(v);
        TlvVerdict::Processed
    }

    /// DSCP1 from `dscp`, RP 0 (§4.4 "MUST set … RP … to 0"). The ECN field
    /// carries the ECN this sender marks its packets with (`ecn`): the RFC
    /// sets no rule for the sender's DSCP2/ECN, a reflector overwrites them,
    /// and [`TlvHandler::decode`] reads it back from the sent Value.
    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        if !opts.flag(OPT_COS) {
            return Ok(None);
        }
        let dscp1 = options::bounded(opts, OPT_DSCP, 63, DSCP_RULE)?.unwrap_or(0) as u8;
        let ecn = options::bounded(opts, OPT_ECN, 3, ECN_RULE)?.unwrap_or(0) as u8;
        let mut value = [0u8; VALUE_LEN];
        CosRepr {
            dscp1,
            dscp2: 0,
            ecn,
            rp: 0,
        }
        .emit(&mut value);
        Ok(Some(TlvTemplate {
            tlv_type: self.code,
            value: value.to_vec(),
        }))
    }

    /// `dscp DSCP1->DSCP2 ecn SENT->RECEIVED rp RP rev dscp X ecn Y`: the
    /// forward path from the reflected fields, the reverse path from the
    /// TOS this reply arrived with (§4.4: meaningful when RP = 0).
    fn decode(&self, flags: TlvFlags, value: &[u8], ctx: &DecodeContext<'_>) -> TlvReport {
        let Some(c) = CosRepr::parse(value) else {
            return TlvReport::new(
                self.code,
                "cos",
                flags,
                format!("malformed ({} octets)", value.len()),
            );
        };
        let sent_ecn = ctx.sent_value.and_then(CosRepr::parse).map(|s| s.ecn);
        let sent = sent_ecn.map_or_else(|| "?".to_string(), |e| e.to_string());
        let mut summary = format!(
            "dscp {}->{} ecn {}->{} rp {}",
            c.dscp1, c.dscp2, sent, c.ecn, c.rp
        );
        let reply = ctx.meta.tos.map(|t| (t >> 2, t & 0x03));
        if let Some((d, e)) = reply {
            summary.push_str(&format!(" rev dscp {d} ecn {e}"));
        }
        let opt = |v: Option<u8>| v.map_or(Value::Null, Value::from);
        TlvReport::new(self.code, "cos", flags, summary)
            .field("dscp1", c.dscp1)
            .field("dscp2", c.dscp2)
            .field("ecn", c.ecn)
            .field("ecn_sent", opt(sent_ecn))
            .field("rp", c.rp)
            .field("reply_dscp", opt(reply.map(|r| r.0)))
            .field("reply_ecn", opt(reply.map(|r| r.1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{reply_meta, request_value, Fixture};
    use stamp_wire::TimestampFormat;

    fn handler() -> ClassOfServiceHandler {
        ClassOfServiceHandler::new(TlvType::CLASS_OF_SERVICE)
    }

    fn policy(list: &str) -> Result<ClassOfServiceHandler, String> {
        let mut s = PluginSettings::new();
        s.set(SETTING_ALLOWED_DSCP, list);
        ClassOfServiceHandler::from_settings(TlvType::CLASS_OF_SERVICE, &s)
    }

    #[test]
    fn request_packs_dscp1_and_sent_ecn() {
        // DSCP1 46 = 0b101110 -> 0xB8; ECN 2 -> 0b10 << 2 = 0x08.
        let v =
            request_value(&handler(), &[("cos", "true"), ("dscp", "46"), ("ecn", "2")]).unwrap();
        assert_eq!(v, Some(vec![0xB8, 0x08, 0, 0]));
        let v = request_value(&handler(), &[("cos", "true")]).unwrap();
        assert_eq!(v, Some(vec![0, 0, 0, 0]));
        assert_eq!(request_value(&handler(), &[("dscp", "46")]).unwrap(), None);
    }

    #[test]
    fn request_refuses_out_of_range_values() {
        assert_eq!(
            request_value(&handler(), &[("cos", "1"), ("dscp", "64")]).unwrap_err(),
            "--dscp 64: DSCP must be 0..63"
        );
        assert_eq!(
            request_value(&handler(), &[("cos", "1"), ("ecn", "4")]).unwrap_err(),
            "--ecn 4: ECN must be 0..3"
        );
    }

    #[test]
    fn reflector_copies_received_dscp_and_ecn_and_applies_dscp1() {
        // Received TOS 0x29 = DSCP 10 (AF11), ECN 1; DSCP1 asks for 46.
        let mut f = Fixture::v4();
        f.meta.tos = Some(0x29);
        let (out, verdict, plan) = f.reflect(&handler(), &[0x80, 4, 0, 4, 0xB8, 0x0B, 0xFF, 0xFF]);
        assert_eq!(verdict, TlvVerdict::Processed);
        // octet0 = 46<<2 | 10>>4 = 0xB8; octet1 = (10&15)<<4 | 1<<2 | 0 = 0xA4; reserved zeroed.
        assert_eq!(out, [0x80, 4, 0, 4, 0xB8, 0xA4, 0, 0]);
        assert_eq!(plan.tos, Some(46 << 2 | 1));
    }

    #[test]
    fn reflector_refusing_dscp1_sets_rp_and_keeps_received_tos() {
        let h = policy("0, 10,18").unwrap();
        let mut f = Fixture::v4();
        f.meta.tos = Some(0x29);
        let (out, verdict, plan) = f.reflect(&h, &[0x80, 4, 0, 4, 0xB8, 0, 0, 0]);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(out, [0x80, 4, 0, 4, 0xB8, 0xA5, 0, 0]);
        assert_eq!(plan.tos, Some(0x29));
        // A permitted DSCP1 is applied.
        let (_, _, plan) = f.reflect(&h, &[0x80, 4, 0, 4, 18 << 2, 0, 0, 0]);
        assert_eq!(plan.tos, Some(18 << 2 | 1));
    }

    #[test]
    fn reflector_without_received_tos_reports_zero() {
        let mut f = Fixture::v4();
        f.meta.tos = None;
        let (out, _, plan) = f.reflect(&handler(), &[0x80, 4, 0, 4, 0xB8, 0, 0, 0]);
        assert_eq!(out, [0x80, 4, 0, 4, 0xB8, 0, 0, 0]);
        assert_eq!(plan.tos, Some(0xB8));
    }

    #[test]
    fn policy_setting_is_checked() {
        assert_eq!(
            policy("46,64").unwrap_err(),
            "--cos-allowed-dscp 64: DSCP must be 0..63"
        );
        assert!(!policy("").unwrap().permits(0));
        assert!(handler().permits(63));
    }

    #[test]
    fn malformed_lengths() {
        for tlv in [
            &[0x80u8, 4, 0, 3, 0xB8, 0, 0][..],
            &[0x80, 4, 0, 5, 0xB8, 0, 0, 0, 0],
        ] {
            let (out, verdict, plan) = Fixture::v4().reflect(&handler(), tlv);
            assert_eq!(verdict, TlvVerdict::Malformed);
            assert_eq!(out, tlv);
            assert_eq!(plan.tos, None);
        }
    }

    #[test]
    fn repr_round_trips() {
        let c = CosRepr {
            dscp1: 46,
            dscp2: 63,
            ecn: 3,
            rp: 1,
        };
        let mut v = [0xFF; 4];
        c.emit(&mut v);
        assert_eq!(v, [0xBB, 0xFD, 0, 0]);
        assert_eq!(CosRepr::parse(&v), Some(c));
        assert_eq!(CosRepr::parse(&v[..3]), None);
    }

    #[test]
    fn decode_shows_forward_and_reverse_marking() {
        let meta = reply_meta(Some(46 << 2 | 2));
        let sent = [0xB8, 0x08, 0, 0];
        let ctx = DecodeContext {
            meta: &meta,
            sent_value: Some(&sent),
            reflector_format: TimestampFormat::Ntp,
        };
        let r = handler().decode(TlvFlags::NONE, &[0xBA, 0xE8, 0, 0], &ctx);
        assert_eq!(
            (r.name, r.summary.as_str()),
            ("cos", "dscp 46->46 ecn 2->2 rp 0 rev dscp 46 ecn 2")
        );
        assert_eq!(
            (r.fields["dscp1"].clone(), r.fields["dscp2"].clone()),
            (46.into(), 46.into())
        );
        assert_eq!(
            (
                r.fields["reply_dscp"].clone(),
                r.fields["reply_ecn"].clone()
            ),
            (46.into(), 2.into())
        );
        let meta = reply_meta(None);
        let ctx = DecodeContext {
            meta: &meta,
            sent_value: None,
            reflector_format: TimestampFormat::Ntp,
        };
        let r = handler().decode(TlvFlags::NONE, &[0xBA, 0xE9, 0, 0], &ctx);
        assert_eq!(r.summary, "dscp 46->46 ecn ?->2 rp 1");
        assert_eq!(r.fields["reply_dscp"], Value::Null);
    }
}
