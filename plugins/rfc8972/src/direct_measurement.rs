//! Direct Measurement TLV, type 5 (RFC 8972 §4.5).
//!
//! ```text
//! | S_TxC (4) | R_RxC (4) | R_TxC (4) |
//! ```
//! Every test packet of the session is counted as "in-profile" (§4.5 leaves
//! the definition to operators). Counters are 32 bits on the wire and wrap.
//! The reflector's counters are per session when it is stateful, reflector
//! wide otherwise (the engine's [`stamp_core::SessionCounters`]).

use stamp_core::{
    DecodeContext, ReflectContext, RequestContext, TlvHandler, TlvOptions, TlvReport, TlvSlot,
    TlvTemplate, TlvVerdict,
};
use stamp_wire::{TlvFlags, TlvType};

/// Sender option (flag): include a Direct Measurement TLV.
pub const OPT_DIRECT_MEASUREMENT: &str = "direct-measurement";

/// Length of the Value (§4.5: "MUST equal 12 octets").
pub const VALUE_LEN: usize = 12;

/// Handler of the Direct Measurement TLV.
#[derive(Debug)]
pub struct DirectMeasurementHandler {
    code: TlvType,
}

impl DirectMeasurementHandler {
    /// A handler for type `code`.
    pub fn new(code: TlvType) -> Self {
        DirectMeasurementHandler { code }
    }
}

stamp_core::register_tlv! {
    key: "direct-measurement",
    code: 5,
    name: "Direct Measurement",
    spec: "RFC 8972 §4.5",
    configurable_code: false,
    factory: |code, _settings| Ok(Box::new(DirectMeasurementHandler::new(code))),
}

fn counter(v: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([v[at], v[at + 1], v[at + 2], v[at + 3]])
}

impl TlvHandler for DirectMeasurementHandler {
    fn tlv_type(&self) -> TlvType {
        self.code
    }

    /// §4.5: S_TxC copied unchanged; R_RxC = requests received (this one
    /// included); R_TxC = replies sent, this reply included.
    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        let v = slot.value_mut();
        if v.len() != VALUE_LEN {
            return TlvVerdict::Malformed;
        }
        let c = &ctx.counters;
        v[4..8].copy_from_slice(&(c.rx_packets as u32).to_be_bytes());
        v[8..12].copy_from_slice(&(c.tx_packets.wrapping_add(1) as u32).to_be_bytes());
        TlvVerdict::Processed
    }

    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        Ok(opts.flag(OPT_DIRECT_MEASUREMENT).then(|| TlvTemplate {
            tlv_type: self.code,
            value: vec![0; VALUE_LEN],
        }))
    }

    /// §4.5: S_TxC = packets transmitted, this one included; R_RxC and
    /// R_TxC MUST be zero.
    fn refresh(&self, value: &mut [u8], ctx: &RequestContext) {
        if value.len() == VALUE_LEN {
            value[..4].copy_from_slice(&(ctx.sent_before.wrapping_add(1) as u32).to_be_bytes());
            value[4..].fill(0);
        }
    }

    /// Forward loss so far is S_TxC − R_RxC (`fwd_lost`, signed: a
    /// stateless reflector counts every session and may exceed S_TxC).
    /// Backward loss is R_TxC minus the replies this sender received, a
    /// count the sender's statistics hold.
    fn decode(&self, flags: TlvFlags, value: &[u8], _ctx: &DecodeContext<'_>) -> TlvReport {
        if value.len() != VALUE_LEN {
            return TlvReport::new(
                self.code,
                "dm",
                flags,
                format!("malformed ({} octets)", value.len()),
            );
        }
        let (s_txc, r_rxc, r_txc) = (counter(value, 0), counter(value, 4), counter(value, 8));
        let fwd_lost = i64::from(s_txc.wrapping_sub(r_rxc) as i32);
        TlvReport::new(
            self.code,
            "dm",
            flags,
            format!("S_TxC {s_txc} R_RxC {r_rxc} R_TxC {r_txc}"),
        )
        .field("s_txc", s_txc)
        .field("r_rxc", r_rxc)
        .field("r_txc", r_txc)
        .field("fwd_lost", fwd_lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{reply_meta, request_value, Fixture};
    use stamp_core::SessionCounters;
    use stamp_wire::TimestampFormat;

    fn handler() -> DirectMeasurementHandler {
        DirectMeasurementHandler::new(TlvType::DIRECT_MEASUREMENT)
    }

    #[test]
    fn request_is_twelve_zero_octets_and_refresh_counts_this_packet() {
        let mut v = request_value(&handler(), &[("direct-measurement", "true")])
            .unwrap()
            .unwrap();
        assert_eq!(v, [0; 12]);
        handler().refresh(
            &mut v,
            &RequestContext {
                seq: 9,
                sent_before: 9,
                ssid: 0,
                packet_len: 0,
            },
        );
        assert_eq!(v, [0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
        handler().refresh(
            &mut v,
            &RequestContext {
                seq: 0,
                sent_before: u64::from(u32::MAX),
                ssid: 0,
                packet_len: 0,
            },
        );
        assert_eq!(&v[..4], &[0, 0, 0, 0]); // wraps
        assert_eq!(request_value(&handler(), &[]).unwrap(), None);
    }

    #[test]
    fn reflector_copies_s_txc_and_fills_its_counters() {
        let mut f = Fixture::v4();
        f.counters = SessionCounters {
            rx_packets: 10,
            tx_packets: 9,
            stateful: true,
            ..Default::default()
        };
        let tlv = [
            0x80, 5, 0, 12, 0, 0, 0, 11, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0,
        ];
        let (out, verdict, _) = f.reflect(&handler(), &tlv);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(out, [0x80, 5, 0, 12, 0, 0, 0, 11, 0, 0, 0, 10, 0, 0, 0, 10]);
    }

    #[test]
    fn reflector_counters_wrap_at_32_bits() {
        let mut f = Fixture::v4();
        f.counters = SessionCounters {
            rx_packets: 1 << 32,
            tx_packets: (1 << 32) - 1,
            ..Default::default()
        };
        let (out, _, _) = f.reflect(
            &handler(),
            &[0x80, 5, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        );
        assert_eq!(&out[8..], &[0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn malformed_unless_twelve() {
        for tlv in [
            &[0x80u8, 5, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0][..],
            &[
                0x80, 5, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
            ],
        ] {
            let (out, verdict, _) = Fixture::v4().reflect(&handler(), tlv);
            assert_eq!(verdict, TlvVerdict::Malformed);
            assert_eq!(out, tlv);
        }
    }

    #[test]
    fn decode_reports_counters_and_forward_loss() {
        let meta = reply_meta(None);
        let ctx = DecodeContext {
            meta: &meta,
            sent_value: None,
            reflector_format: TimestampFormat::Ntp,
        };
        let r = handler().decode(TlvFlags::NONE, &[0, 0, 0, 10, 0, 0, 0, 8, 0, 0, 0, 8], &ctx);
        assert_eq!(
            (r.name, r.summary.as_str()),
            ("dm", "S_TxC 10 R_RxC 8 R_TxC 8")
        );
        assert_eq!(r.fields["fwd_lost"], 2);
        let r = handler().decode(TlvFlags::NONE, &[0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 3], &ctx);
        assert_eq!(r.fields["fwd_lost"], -2);
    }
}
