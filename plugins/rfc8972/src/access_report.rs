//! Access Report TLV, type 6 (RFC 8972 §4.6).
//!
//! ```text
//! | ID (4) | Resv (4) | Return Code (8) | Reserved (16) |
//! ```
//! Four octets, not two. The sender reports the state of an access network;
//! the reflector MUST include the TLV and copy ID and Return Code (§4.6).
//!
//! The retransmission timer §4.6 asks of the sender (re-send until a reply
//! with this TLV comes back, up to four times, three seconds by default) is
//! a sender-driver matter and is not done here.

use stamp_core::{
    DecodeContext, ReflectContext, TlvHandler, TlvOptions, TlvReport, TlvSlot, TlvTemplate,
    TlvVerdict,
};
use stamp_wire::{TlvFlags, TlvType};

use crate::options;

/// Sender option: the Access ID, 1 (3GPP) or 2 (non-3GPP).
pub const OPT_ACCESS_REPORT: &str = "access-report";
/// Sender option: the Return Code (1..254, default 1 "network available").
pub const OPT_ACCESS_RETURN_CODE: &str = "access-return-code";

/// Length of the Value (§4.6: "set equal to the value 4").
pub const VALUE_LEN: usize = 4;

/// Access ID 1: 3GPP network (§4.6).
pub const ACCESS_3GPP: u8 = 1;
/// Access ID 2: non-3GPP network (§4.6).
pub const ACCESS_NON_3GPP: u8 = 2;

/// Name of an Access ID.
pub fn access_id_name(id: u8) -> &'static str {
    match id {
        ACCESS_3GPP => "3GPP",
        ACCESS_NON_3GPP => "non-3GPP",
        _ => "invalid",
    }
}

/// Name of a "STAMP Return Codes" value (§5.6).
pub fn return_code_name(rc: u8) -> &'static str {
    match rc {
        1 => "network available",
        2 => "network unavailable",
        0 | 255 => "reserved",
        3..=127 => "unassigned",
        128..=239 => "first come first served",
        240..=249 => "experimental",
        250..=254 => "private use",
    }
}

/// Handler of the Access Report TLV.
#[derive(Debug)]
pub struct AccessReportHandler {
    code: TlvType,
}

impl AccessReportHandler {
    /// A handler for type `code`.
    pub fn new(code: TlvType) -> Self {
        AccessReportHandler { code }
    }
}

stamp_core::register_tlv! {
    key: "access-report",
    code: 6,
    name: "Access Report",
    spec: "RFC 8972 §4.6",
    configurable_code: false,
    factory: |code, _settings| Ok(Box::new(AccessReportHandler::new(code))),
}

impl TlvHandler for AccessReportHandler {
    fn tlv_type(&self) -> TlvType {
        self.code
    }

    /// §4.6: ID and Return Code stay as received; Resv and Reserved are
    /// zeroed on transmission.
    ///
    /// An ID other than 1 or 2: §4.6 says such a TLV "MUST be discarded"
    /// without saying how. Dropping it would change the reply's length and
    /// dropping the packet would lose the measurement, so we mark the TLV U
    /// (not acted upon) and return its octets unchanged.
    fn reflect(&self, slot: &mut TlvSlot<'_>, _ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        let v = slot.value_mut();
        if v.len() != VALUE_LEN {
            return TlvVerdict::Malformed;
        }
        let id = v[0] >> 4;
        if id != ACCESS_3GPP && id != ACCESS_NON_3GPP {
            return TlvVerdict::Unrecognized;
        }
        v[0] = id << 4;
        v[2] = 0;
        v[3] = 0;
        TlvVerdict::Processed
    }

    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        let rc = options::bounded(
            opts,
            OPT_ACCESS_RETURN_CODE,
            254,
            "Return Code must be 1..254",
        )?;
        let Some(id) = opts.get(OPT_ACCESS_REPORT) else {
            if rc.is_some() {
                return Err(format!(
                    "--{OPT_ACCESS_RETURN_CODE}: needs --{OPT_ACCESS_REPORT} 1|2"
                ));
            }
            return Ok(None);
        };
        let id = match id.trim() {
            "1" => ACCESS_3GPP,
            "2" => ACCESS_NON_3GPP,
            _ => {
                return Err(options::invalid(
                    OPT_ACCESS_REPORT,
                    id,
                    "Access ID must be 1 (3GPP) or 2 (non-3GPP)",
                ))
            }
        };
        let rc = match rc {
            None => 1,
            Some(0) => {
                return Err(options::invalid(
                    OPT_ACCESS_RETURN_CODE,
                    "0",
                    "Return Code must be 1..254",
                ))
            }
            Some(rc) => rc as u8,
        };
        Ok(Some(TlvTemplate {
            tlv_type: self.code,
            value: vec![id << 4, rc, 0, 0],
        }))
    }

    fn decode(&self, flags: TlvFlags, value: &[u8], _ctx: &DecodeContext<'_>) -> TlvReport {
        let Some(&[a, rc, _, _]) = value
            .first_chunk::<VALUE_LEN>()
            .filter(|_| value.len() == VALUE_LEN)
        else {
            return TlvReport::new(
                self.code,
                "access",
                flags,
                format!("malformed ({} octets)", value.len()),
            );
        };
        let id = a >> 4;
        let summary = format!(
            "id {id} ({}) rc {rc} ({})",
            access_id_name(id),
            return_code_name(rc)
        );
        TlvReport::new(self.code, "access", flags, summary)
            .field("access_id", id)
            .field("return_code", rc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{reply_meta, request_value, Fixture};
    use stamp_wire::TimestampFormat;

    fn handler() -> AccessReportHandler {
        AccessReportHandler::new(TlvType::ACCESS_REPORT)
    }

    #[test]
    fn request_packs_id_and_return_code_in_four_octets() {
        assert_eq!(
            request_value(&handler(), &[("access-report", "1")]).unwrap(),
            Some(vec![0x10, 1, 0, 0])
        );
        assert_eq!(
            request_value(
                &handler(),
                &[("access-report", "2"), ("access-return-code", "2")]
            )
            .unwrap(),
            Some(vec![0x20, 2, 0, 0])
        );
        assert_eq!(request_value(&handler(), &[]).unwrap(), None);
    }

    #[test]
    fn request_refuses_bad_options() {
        assert_eq!(
            request_value(&handler(), &[("access-report", "3")]).unwrap_err(),
            "--access-report 3: Access ID must be 1 (3GPP) or 2 (non-3GPP)"
        );
        for rc in ["0", "255", "x"] {
            assert_eq!(
                request_value(
                    &handler(),
                    &[("access-report", "1"), ("access-return-code", rc)]
                )
                .unwrap_err(),
                format!("--access-return-code {rc}: Return Code must be 1..254")
            );
        }
        assert!(request_value(&handler(), &[("access-return-code", "2")]).is_err());
    }

    #[test]
    fn reflector_copies_id_and_return_code_and_zeroes_reserved() {
        let (out, verdict, _) =
            Fixture::v4().reflect(&handler(), &[0x80, 6, 0, 4, 0x1F, 2, 0xAA, 0xBB]);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(out, [0x80, 6, 0, 4, 0x10, 2, 0, 0]);
    }

    #[test]
    fn reflector_marks_invalid_access_id_unrecognized_and_keeps_bytes() {
        let tlv = [0x80, 6, 0, 4, 0x30, 1, 0, 0];
        let (out, verdict, _) = Fixture::v4().reflect(&handler(), &tlv);
        assert_eq!(verdict, TlvVerdict::Unrecognized);
        assert_eq!(out, tlv);
    }

    #[test]
    fn malformed_unless_four() {
        // The two-octet Access Report some implementations send.
        for tlv in [
            &[0x80u8, 6, 0, 2, 0x10, 1][..],
            &[0x80, 6, 0, 5, 0x10, 1, 0, 0, 0],
        ] {
            let (out, verdict, _) = Fixture::v4().reflect(&handler(), tlv);
            assert_eq!(verdict, TlvVerdict::Malformed);
            assert_eq!(out, tlv);
        }
    }

    #[test]
    fn decode_names_id_and_return_code() {
        let meta = reply_meta(None);
        let ctx = DecodeContext {
            meta: &meta,
            sent_value: None,
            reflector_format: TimestampFormat::Ntp,
        };
        let r = handler().decode(TlvFlags::NONE, &[0x10, 1, 0, 0], &ctx);
        assert_eq!(
            (r.name, r.summary.as_str()),
            ("access", "id 1 (3GPP) rc 1 (network available)")
        );
        assert_eq!(r.fields["access_id"], 1);
        let r = handler().decode(TlvFlags::NONE, &[0x20, 2, 0, 0], &ctx);
        assert_eq!(r.summary, "id 2 (non-3GPP) rc 2 (network unavailable)");
    }
}
