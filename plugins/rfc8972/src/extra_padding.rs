//! Extra Padding TLV, type 1 (RFC 8972 §4.1).
//!
//! The RECOMMENDED way to make test packets larger than the base packet.
//! The reflector has nothing to fill in: it echoes the TLV with its flags
//! cleared. The content is controlled by the sender (§4.1: "An
//! implementation MUST control the content"): all zeros by default, or a
//! reproducible pseudo-random sequence (§4.1: "SHOULD be filled by a
//! sequence of pseudorandom numbers") with `padding-random`.

use stamp_core::{
    DecodeContext, ReflectContext, TlvHandler, TlvOptions, TlvReport, TlvSlot, TlvTemplate,
    TlvVerdict,
};
use stamp_wire::{TlvFlags, TlvType};

use crate::options;

/// Sender option: number of padding octets (the TLV's Length).
pub const OPT_PADDING: &str = "padding";
/// Sender option (flag): fill the padding pseudo-randomly instead of with zeros.
pub const OPT_PADDING_RANDOM: &str = "padding-random";

/// Seed of the padding sequence. Fixed, so every packet of every session
/// carries the same, reproducible octets (a bit-error check can rebuild them).
pub const PADDING_SEED: u64 = 0x5354_414D_5038_3937;

/// Fill `buf` with the xorshift64 (13, 7, 17) sequence started at `seed`
/// (which must not be zero).
pub fn fill_pseudo_random(buf: &mut [u8], seed: u64) {
    let mut x = seed;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_be_bytes()[..chunk.len()]);
    }
}

/// Handler of the Extra Padding TLV.
#[derive(Debug)]
pub struct ExtraPaddingHandler {
    code: TlvType,
}

impl ExtraPaddingHandler {
    /// A handler for type `code`.
    pub fn new(code: TlvType) -> Self {
        ExtraPaddingHandler { code }
    }
}

stamp_core::register_tlv! {
    key: "extra-padding",
    code: 1,
    name: "Extra Padding",
    spec: "RFC 8972 §4.1",
    configurable_code: false,
    factory: |code, _settings| Ok(Box::new(ExtraPaddingHandler::new(code))),
}

impl TlvHandler for ExtraPaddingHandler {
    fn tlv_type(&self) -> TlvType {
        self.code
    }

    /// §4.1: nothing to fill; any Length is valid (the engine has already
    /// checked that the Value fits in the packet).
    fn reflect(&self, _slot: &mut TlvSlot<'_>, _ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        TlvVerdict::Processed
    }

    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        // Bit-error-rate measurement (draft-gandhi-ippm-stamp-ber) needs an
        // Extra Padding TLV filled with the bit pattern: `--ber` asks for it
        // here, where the padding is built, with `--ber-padding-size`
        // octets (default 64) of `--ber-pattern` (hex, default FF00).
        if opts.flag("ber") && opts.get(OPT_PADDING).is_none() {
            let pattern = match opts.get("ber-pattern") {
                Some(h) => decode_hex(h)
                    .ok_or_else(|| format!("--ber-pattern {h}: expected hex octets"))?,
                None => vec![0xFF, 0x00],
            };
            let size: usize = opts.parse("ber-padding-size")?.unwrap_or(64);
            if pattern.is_empty()
                || size == 0
                || size % pattern.len() != 0
                || size > u16::MAX as usize
            {
                return Err(format!(
                    "--ber-padding-size {size}: must be a non-zero multiple of the {}-octet pattern",
                    pattern.len()
                ));
            }
            let value = pattern.iter().copied().cycle().take(size).collect();
            return Ok(Some(TlvTemplate {
                tlv_type: self.code,
                value,
            }));
        }
        let random = opts.flag(OPT_PADDING_RANDOM);
        let Some(len) = options::bounded(
            opts,
            OPT_PADDING,
            u16::MAX.into(),
            "padding must be 0..65535 octets",
        )?
        else {
            if random {
                return Err(format!("--{OPT_PADDING_RANDOM}: needs --{OPT_PADDING} N"));
            }
            return Ok(None);
        };
        let mut value = vec![0u8; len as usize];
        if random {
            fill_pseudo_random(&mut value, PADDING_SEED);
        }
        Ok(Some(TlvTemplate {
            tlv_type: self.code,
            value,
        }))
    }

    fn decode(&self, flags: TlvFlags, value: &[u8], ctx: &DecodeContext<'_>) -> TlvReport {
        let mut summary = format!("{} octets", value.len());
        let mut report =
            TlvReport::new(self.code, "padding", flags, String::new()).field("octets", value.len());
        if let Some(sent) = ctx.sent_value {
            let intact = sent == value;
            if !intact {
                summary.push_str(" (content differs from the request)");
            }
            report = report.field("intact", intact);
        }
        report.summary = summary;
        report
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_start_matches("0x");
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{reply_meta, request_value, Fixture};
    use stamp_wire::TimestampFormat;

    fn handler() -> ExtraPaddingHandler {
        ExtraPaddingHandler::new(TlvType::EXTRA_PADDING)
    }

    #[test]
    fn request_is_zero_padding_of_the_asked_length() {
        assert_eq!(
            request_value(&handler(), &[("padding", "5")]).unwrap(),
            Some(vec![0; 5])
        );
        assert_eq!(
            request_value(&handler(), &[("padding", "0")]).unwrap(),
            Some(vec![])
        );
    }

    #[test]
    fn request_random_padding_is_the_fixed_xorshift_sequence() {
        let v = request_value(&handler(), &[("padding", "10"), ("padding-random", "true")])
            .unwrap()
            .unwrap();
        // First xorshift64 (13, 7, 17) step from PADDING_SEED, then the second.
        let mut x = PADDING_SEED;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        assert_eq!(&v[..8], &x.to_be_bytes());
        assert_eq!(v.len(), 10);
        assert_ne!(&v[8..], &[0, 0]);
        // Reproducible.
        assert_eq!(
            request_value(&handler(), &[("padding", "10"), ("padding-random", "1")])
                .unwrap()
                .unwrap(),
            v
        );
    }

    #[test]
    fn request_absent_without_option() {
        assert_eq!(request_value(&handler(), &[]).unwrap(), None);
        assert_eq!(
            request_value(&handler(), &[("padding-random", "false")]).unwrap(),
            None
        );
    }

    #[test]
    fn request_refuses_bad_options() {
        assert_eq!(
            request_value(&handler(), &[("padding", "70000")]).unwrap_err(),
            "--padding 70000: padding must be 0..65535 octets"
        );
        assert_eq!(
            request_value(&handler(), &[("padding-random", "true")]).unwrap_err(),
            "--padding-random: needs --padding N"
        );
    }

    #[test]
    fn reflector_echoes_padding() {
        let tlv = [0x80, 1, 0, 3, 0xAA, 0xBB, 0xCC];
        let (out, verdict, _) = Fixture::v4().reflect(&handler(), &tlv);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(out, tlv); // the engine clears the flags
    }

    #[test]
    fn decode_reports_length_and_integrity() {
        let meta = reply_meta(None);
        let sent = [0u8; 4];
        let ctx = DecodeContext {
            meta: &meta,
            sent_value: Some(&sent),
            reflector_format: TimestampFormat::Ntp,
        };
        let r = handler().decode(TlvFlags::NONE, &[0; 4], &ctx);
        assert_eq!((r.name, r.summary.as_str()), ("padding", "4 octets"));
        assert_eq!(r.fields["intact"], true);
        let r = handler().decode(TlvFlags::NONE, &[0, 1, 0, 0], &ctx);
        assert_eq!(r.summary, "4 octets (content differs from the request)");
        assert_eq!(r.fields["intact"], false);
    }
}
