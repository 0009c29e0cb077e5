//! Follow-Up Telemetry TLV, type 7 (RFC 8972 §4.7).
//!
//! ```text
//! | Sequence Number (4) | Follow-Up Timestamp (8) | Timestamp M (1) | Reserved (3) |
//! ```
//! A stateful reflector reports the Sequence Number of the previous reply
//! it sent in the session and that reply's transmit timestamp, in the format
//! of this reply's Error Estimate Z bit (§4.7). The engine records T3 of
//! each reply after the fact; the first reply of a session has no previous
//! reply and reports zeros (§4.7 does not say; WIRE.md §7.9).

use serde_json::Value;
use stamp_core::clock::TimestampMethod;
use stamp_core::{
    DecodeContext, ReflectContext, TlvHandler, TlvOptions, TlvReport, TlvSlot, TlvTemplate,
    TlvVerdict,
};
use stamp_wire::{Timestamp, TlvFlags, TlvType};

/// Sender option (flag): include a Follow-Up Telemetry TLV.
pub const OPT_FOLLOW_UP_TELEMETRY: &str = "follow-up-telemetry";

/// Length of the Value (§4.7: "set equal to the value 16 octets").
pub const VALUE_LEN: usize = 16;

/// Octets of Sequence Number and Follow-Up Timestamp.
const SEQ_AND_TIMESTAMP: usize = 12;

/// Handler of the Follow-Up Telemetry TLV.
#[derive(Debug)]
pub struct FollowUpTelemetryHandler {
    code: TlvType,
}

impl FollowUpTelemetryHandler {
    /// A handler for type `code`.
    pub fn new(code: TlvType) -> Self {
        FollowUpTelemetryHandler { code }
    }
}

stamp_core::register_tlv! {
    key: "follow-up-telemetry",
    code: 7,
    name: "Follow-Up Telemetry",
    spec: "RFC 8972 §4.7",
    configurable_code: false,
    factory: |code, _settings| Ok(Box::new(FollowUpTelemetryHandler::new(code))),
}

impl TlvHandler for FollowUpTelemetryHandler {
    fn tlv_type(&self) -> TlvType {
        self.code
    }

    /// §4.7: an invalid Length zeroes the Sequence Number and Follow-Up
    /// Timestamp (as much of them as the Value holds) and sets M. A
    /// stateless reflector MUST zero both fields; the mode is then 0 too.
    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        let v = slot.value_mut();
        if v.len() != VALUE_LEN {
            let n = v.len().min(SEQ_AND_TIMESTAMP);
            v[..n].fill(0);
            return TlvVerdict::Malformed;
        }
        let c = &ctx.counters;
        // A stateful session reports each reply's transmit time with the
        // next one: ask the driver for a kernel transmit timestamp of this
        // reply (it replaces the T3 read before the send, when it comes).
        if c.stateful {
            ctx.plan.tx_timestamp = true;
        }
        let (seq, ts, mode) = match c.previous_reply {
            Some((seq, ts)) if c.stateful => (seq, ts.0, c.previous_reply_method.0),
            _ => (0, 0, 0),
        };
        v[0..4].copy_from_slice(&seq.to_be_bytes());
        v[4..12].copy_from_slice(&ts.to_be_bytes());
        v[12..16].copy_from_slice(&[mode, 0, 0, 0]);
        TlvVerdict::Processed
    }

    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        Ok(opts.flag(OPT_FOLLOW_UP_TELEMETRY).then(|| TlvTemplate {
            tlv_type: self.code,
            value: vec![0; VALUE_LEN],
        }))
    }

    /// `prev seq N ts SECS.NANOS mode METHOD`, the timestamp decoded in the
    /// reflector's format; an all-zero timestamp means there was nothing to
    /// follow up (first reply, or a stateless reflector).
    fn decode(&self, flags: TlvFlags, value: &[u8], ctx: &DecodeContext<'_>) -> TlvReport {
        let Some(v) = value
            .first_chunk::<VALUE_LEN>()
            .filter(|_| value.len() == VALUE_LEN)
        else {
            return TlvReport::new(
                self.code,
                "fut",
                flags,
                format!("malformed ({} octets)", value.len()),
            );
        };
        let seq = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
        let mut ts_octets = [0u8; 8];
        ts_octets.copy_from_slice(&v[4..12]);
        let ts = Timestamp(u64::from_be_bytes(ts_octets));
        let mode = TimestampMethod(v[12]);
        let nanos = if ts.is_zero() {
            None
        } else {
            ts.to_unix_nanos(ctx.reflector_format)
        };
        let summary = match nanos {
            Some(n) => format!(
                "prev seq {seq} ts {}.{:09} mode {}",
                n / 1_000_000_000,
                n % 1_000_000_000,
                mode.name()
            ),
            None if ts.is_zero() => {
                "no previous reply (first reply or stateless reflector)".to_string()
            }
            None => format!(
                "prev seq {seq} ts invalid ({:#018x}) mode {}",
                ts.0,
                mode.name()
            ),
        };
        TlvReport::new(self.code, "fut", flags, summary)
            .field("prev_seq", seq)
            .field("ts_ns", nanos.map_or(Value::Null, Value::from))
            .field("mode", mode.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{reply_meta, request_value, Fixture};
    use stamp_core::SessionCounters;
    use stamp_wire::TimestampFormat;

    fn handler() -> FollowUpTelemetryHandler {
        FollowUpTelemetryHandler::new(TlvType::FOLLOW_UP_TELEMETRY)
    }

    const REQUEST: [u8; 20] = [
        0x80, 7, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn request_is_sixteen_zero_octets() {
        assert_eq!(
            request_value(&handler(), &[("follow-up-telemetry", "true")])
                .unwrap()
                .unwrap(),
            &REQUEST[4..]
        );
        assert_eq!(request_value(&handler(), &[]).unwrap(), None);
    }

    #[test]
    fn stateful_reflector_reports_previous_reply() {
        let mut f = Fixture::v4();
        f.counters = SessionCounters {
            rx_packets: 5,
            tx_packets: 4,
            previous_reply: Some((3, Timestamp(0xE9E1_0000_8000_0000))),
            previous_reply_method: TimestampMethod::SW_LOCAL,
            stateful: true,
        };
        // Garbage in the request's fields is ignored on receipt.
        let mut tlv = REQUEST;
        tlv[4..].fill(0xEE);
        let (out, verdict, _) = f.reflect(&handler(), &tlv);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(
            out,
            [0x80, 7, 0, 16, 0, 0, 0, 3, 0xE9, 0xE1, 0, 0, 0x80, 0, 0, 0, 2, 0, 0, 0]
        );
    }

    #[test]
    fn first_reply_of_a_session_reports_zeros() {
        let mut f = Fixture::v4();
        f.counters = SessionCounters {
            rx_packets: 1,
            stateful: true,
            ..Default::default()
        };
        let (out, verdict, _) = f.reflect(&handler(), &REQUEST);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(out, REQUEST);
    }

    #[test]
    fn stateless_reflector_zeroes_sequence_and_timestamp() {
        let mut f = Fixture::v4();
        f.counters = SessionCounters {
            previous_reply: Some((3, Timestamp(0xE9E1_0000_8000_0000))),
            previous_reply_method: TimestampMethod::SW_LOCAL,
            stateful: false,
            ..Default::default()
        };
        let mut tlv = REQUEST;
        tlv[4..].fill(0xEE);
        let (out, verdict, _) = f.reflect(&handler(), &tlv);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(out, REQUEST);
    }

    #[test]
    fn malformed_length_zeroes_the_fields_that_exist() {
        let (out, verdict, _) =
            Fixture::v4().reflect(&handler(), &[0x80, 7, 0, 6, 1, 2, 3, 4, 5, 6]);
        assert_eq!(verdict, TlvVerdict::Malformed);
        assert_eq!(out, [0x80, 7, 0, 6, 0, 0, 0, 0, 0, 0]);
        let mut long = [0xEEu8; 21];
        long[..4].copy_from_slice(&[0x80, 7, 0, 17]);
        let (out, verdict, _) = Fixture::v4().reflect(&handler(), &long);
        assert_eq!(verdict, TlvVerdict::Malformed);
        assert_eq!(&out[4..16], &[0; 12]);
        assert_eq!(&out[16..], &[0xEE; 5]);
    }

    #[test]
    fn decode_reports_previous_reply_in_reflector_format() {
        let meta = reply_meta(None);
        let ctx = DecodeContext {
            meta: &meta,
            sent_value: None,
            reflector_format: TimestampFormat::Ntp,
        };
        // NTP 0xE9E10000.80000000 = 3923836928 - 2208988800 = 1714848128.5 s.
        let r = handler().decode(
            TlvFlags::NONE,
            &[0, 0, 0, 4, 0xE9, 0xE1, 0, 0, 0x80, 0, 0, 0, 2, 0, 0, 0],
            &ctx,
        );
        assert_eq!(
            (r.name, r.summary.as_str()),
            ("fut", "prev seq 4 ts 1714848128.500000000 mode sw-local")
        );
        assert_eq!(r.fields["prev_seq"], 4);
        let r = handler().decode(TlvFlags::NONE, &REQUEST[4..], &ctx);
        assert_eq!(
            r.summary,
            "no previous reply (first reply or stateless reflector)"
        );
        assert_eq!(r.fields["ts_ns"], Value::Null);
    }
}
