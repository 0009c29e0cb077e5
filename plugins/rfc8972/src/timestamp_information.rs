//! Timestamp Information TLV, type 3 (RFC 8972 §4.3).
//!
//! ```text
//! | Sync Src In | Timestamp In | Sync Src Out | Timestamp Out | sub-TLVs ... |
//! ```
//! The sender sends four zero octets (§4.3: "All other fields MUST be filled
//! with zeroes"). The reflector says, truthfully, what its clock is
//! synchronized to ("STAMP Synchronization Sources", §5.4) and how T2 and
//! T3 were really taken ("STAMP Timestamping Methods", §5.5): the engine
//! fills [`stamp_core::ClockFacts`] from the clock and from where the
//! transport's receive timestamp came from.

use stamp_core::clock::{SyncSource, TimestampMethod};
use stamp_core::{
    DecodeContext, ReflectContext, TlvHandler, TlvOptions, TlvReport, TlvSlot, TlvTemplate,
    TlvVerdict,
};
use stamp_wire::{TlvFlags, TlvType};

/// Sender option (flag): include a Timestamp Information TLV.
pub const OPT_TIMESTAMP_INFO: &str = "timestamp-info";

/// Octets of the four fixed fields.
pub const FIXED_LEN: usize = 4;

/// Handler of the Timestamp Information TLV.
#[derive(Debug)]
pub struct TimestampInformationHandler {
    code: TlvType,
}

impl TimestampInformationHandler {
    /// A handler for type `code`.
    pub fn new(code: TlvType) -> Self {
        TimestampInformationHandler { code }
    }
}

stamp_core::register_tlv! {
    key: "timestamp-information",
    code: 3,
    name: "Timestamp Information",
    spec: "RFC 8972 §4.3",
    configurable_code: false,
    factory: |code, _settings| Ok(Box::new(TimestampInformationHandler::new(code))),
}

impl TlvHandler for TimestampInformationHandler {
    fn tlv_type(&self) -> TlvType {
        self.code
    }

    /// §4.3: "MUST validate the Length value": fewer than four octets is
    /// malformed. Optional sub-TLVs after the fixed fields (none is defined)
    /// are returned as received.
    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        let v = slot.value_mut();
        if v.len() < FIXED_LEN {
            return TlvVerdict::Malformed;
        }
        let c = &ctx.clock;
        v[..FIXED_LEN].copy_from_slice(&[
            c.sync_source.0,
            c.rx_method.0,
            c.sync_source.0,
            c.tx_method.0,
        ]);
        TlvVerdict::Processed
    }

    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        Ok(opts.flag(OPT_TIMESTAMP_INFO).then(|| TlvTemplate {
            tlv_type: self.code,
            value: vec![0; FIXED_LEN],
        }))
    }

    fn decode(&self, flags: TlvFlags, value: &[u8], _ctx: &DecodeContext<'_>) -> TlvReport {
        let Some(&[si, ti, so, to]) = value.first_chunk::<FIXED_LEN>() else {
            return TlvReport::new(
                self.code,
                "tsinfo",
                flags,
                format!("malformed ({} octets)", value.len()),
            );
        };
        let (si, ti, so, to) = (
            SyncSource(si),
            TimestampMethod(ti),
            SyncSource(so),
            TimestampMethod(to),
        );
        let summary = format!(
            "in {}/{} out {}/{}",
            si.name(),
            ti.name(),
            so.name(),
            to.name()
        );
        TlvReport::new(self.code, "tsinfo", flags, summary)
            .field("sync_src_in", si.name())
            .field("timestamp_in", ti.name())
            .field("sync_src_out", so.name())
            .field("timestamp_out", to.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{reply_meta, request_value, Fixture};
    use stamp_wire::TimestampFormat;

    fn handler() -> TimestampInformationHandler {
        TimestampInformationHandler::new(TlvType::TIMESTAMP_INFORMATION)
    }

    #[test]
    fn request_is_four_zero_octets() {
        assert_eq!(
            request_value(&handler(), &[("timestamp-info", "true")]).unwrap(),
            Some(vec![0; 4])
        );
        assert_eq!(
            request_value(&handler(), &[("timestamp-info", "false")]).unwrap(),
            None
        );
    }

    #[test]
    fn reflector_reports_clock_and_methods() {
        let mut f = Fixture::v4();
        f.clock.sync_source = SyncSource::PTP;
        f.clock.rx_method = TimestampMethod::HW_ASSIST;
        f.clock.tx_method = TimestampMethod::SW_LOCAL;
        let (out, verdict, _) = f.reflect(&handler(), &[0x80, 3, 0, 4, 0, 0, 0, 0]);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(out, [0x80, 3, 0, 4, 2, 1, 2, 2]);
    }

    #[test]
    fn reflector_keeps_sub_tlvs_as_received() {
        let (out, verdict, _) =
            Fixture::v4().reflect(&handler(), &[0x80, 3, 0, 8, 0, 0, 0, 0, 0x80, 250, 0, 0]);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(out, [0x80, 3, 0, 8, 1, 2, 1, 2, 0x80, 250, 0, 0]);
    }

    #[test]
    fn malformed_when_shorter_than_four() {
        let tlv = [0x80, 3, 0, 3, 0, 0, 0];
        let (out, verdict, _) = Fixture::v4().reflect(&handler(), &tlv);
        assert_eq!(verdict, TlvVerdict::Malformed);
        assert_eq!(out, tlv);
    }

    #[test]
    fn decode_names_sources_and_methods() {
        let meta = reply_meta(None);
        let ctx = DecodeContext {
            meta: &meta,
            sent_value: None,
            reflector_format: TimestampFormat::Ntp,
        };
        let r = handler().decode(TlvFlags::NONE, &[1, 2, 1, 2], &ctx);
        assert_eq!(
            (r.name, r.summary.as_str()),
            ("tsinfo", "in NTP/sw-local out NTP/sw-local")
        );
        assert_eq!(r.fields["timestamp_out"], "sw-local");
        assert_eq!(
            handler().decode(TlvFlags::NONE, &[1], &ctx).summary,
            "malformed (1 octets)"
        );
    }
}
