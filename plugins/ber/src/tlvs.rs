//! The three BER TLV handlers (draft-gandhi-ippm-stamp-ber-07 §4–§5;
//! WIRE.md §7.15), one type each, all with experimental, configurable
//! codes:
//!
//! | Key | Default code | Value | Draft |
//! | --- | --- | --- | --- |
//! | `ber-pattern` | 240 | the bit pattern (variable, not empty) | Bit Pattern in Padding |
//! | `ber-count` | 241 | 32-bit bit error count (sender: 0) | Bit Error Count in Padding |
//! | `ber-burst` | 242 | 32-bit longest error burst (sender: 0) | Maximum Bit Error Burst Size |
//!
//! Reflector: each handler checks its own Length (count and burst: 4;
//! pattern: not empty; else M), then the packet-wide rules over the whole
//! TLV area ([`crate::measure::analyse`]): exactly one Extra Padding TLV, no
//! BER TLV twice, padding a non-empty whole multiple of the pattern; a
//! failure gives C on every BER TLV. The first of the count / burst TLVs in
//! the packet does the measurement (once per packet, whichever order the
//! TLVs come in): bit errors of the padding against the repeating pattern
//! (default FF00 without a Bit Pattern TLV), the count and burst written
//! into their TLVs, and the padding repaired (rewritten with the pattern)
//! so the sender can measure the reverse path.
//!
//! Sender: with `ber`, each handler adds its TLV: the pattern, and zeros for
//! count and burst. The Extra Padding TLV carrying the pattern belongs to
//! the RFC 8972 plugin (type 1); see the crate documentation for how it
//! gets filled.

use stamp_core::registry::PluginSettings;
use stamp_core::{
    DecodeContext, ReflectContext, TlvHandler, TlvOptions, TlvReport, TlvSlot, TlvTemplate,
    TlvVerdict,
};
use stamp_wire::{TlvFlags, TlvType};

use crate::measure::{self, BerCodes};
use crate::options;

/// Which of the three BER TLVs a handler serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BerRole {
    /// Bit Pattern in Padding.
    Pattern,
    /// Bit Error Count in Padding.
    Count,
    /// Maximum Bit Error Burst Size.
    Burst,
}

impl BerRole {
    /// Plugin key (also the `--tlv-code` key).
    pub fn key(self) -> &'static str {
        match self {
            BerRole::Pattern => "ber-pattern",
            BerRole::Count => "ber-count",
            BerRole::Burst => "ber-burst",
        }
    }

    fn code_setting(self) -> &'static str {
        match self {
            BerRole::Pattern => measure::SETTING_PATTERN_CODE,
            BerRole::Count => measure::SETTING_COUNT_CODE,
            BerRole::Burst => measure::SETTING_BURST_CODE,
        }
    }
}

/// Length of the count and burst Values.
pub const COUNTER_LEN: usize = 4;

/// Handler of one BER TLV.
#[derive(Debug)]
pub struct BerHandler {
    code: TlvType,
    role: BerRole,
    codes: BerCodes,
}

impl BerHandler {
    /// A handler for `role` at `code`, with the sibling TLVs at `codes`
    /// (`codes` is updated with `code` for `role`).
    pub fn new(role: BerRole, code: TlvType, mut codes: BerCodes) -> Self {
        match role {
            BerRole::Pattern => codes.pattern = code,
            BerRole::Count => codes.count = code,
            BerRole::Burst => codes.burst = code,
        }
        BerHandler { code, role, codes }
    }

    /// Build from the plugin settings: the codes of the sibling TLVs come
    /// from `ber-pattern-code`, `ber-count-code`, `ber-burst-code`. The
    /// handler's own code (from the registry, i.e. `--tlv-code`) must agree
    /// with its setting when both are given.
    pub fn from_settings(
        role: BerRole,
        code: TlvType,
        settings: &PluginSettings,
    ) -> Result<Self, String> {
        let codes = BerCodes::from_settings(settings)?;
        let key = role.code_setting();
        if let Some(raw) = settings.get(key) {
            if raw.trim().parse::<u8>().ok() != Some(code.0) {
                return Err(format!(
                    "--{key} {raw} disagrees with the type code {} in force for {}",
                    code.0,
                    role.key()
                ));
            }
        }
        let h = BerHandler::new(role, code, codes);
        h.codes.check()?;
        Ok(h)
    }

    /// The codes this handler assumes for the three BER TLVs.
    pub fn codes(&self) -> BerCodes {
        self.codes
    }
}

stamp_core::register_tlv! {
    key: "ber-pattern",
    code: measure::DEFAULT_PATTERN_CODE,
    name: "Bit Pattern in Padding",
    spec: "draft-gandhi-ippm-stamp-ber-07 §4.1",
    configurable_code: true,
    factory: |code, settings| Ok(Box::new(BerHandler::from_settings(BerRole::Pattern, code, settings)?)),
}

stamp_core::register_tlv! {
    key: "ber-count",
    code: measure::DEFAULT_COUNT_CODE,
    name: "Bit Error Count in Padding",
    spec: "draft-gandhi-ippm-stamp-ber-07 §4.2",
    configurable_code: true,
    factory: |code, settings| Ok(Box::new(BerHandler::from_settings(BerRole::Count, code, settings)?)),
}

stamp_core::register_tlv! {
    key: "ber-burst",
    code: measure::DEFAULT_BURST_CODE,
    name: "Maximum Bit Error Burst Size",
    spec: "draft-gandhi-ippm-stamp-ber-07 §4.3",
    configurable_code: true,
    factory: |code, settings| Ok(Box::new(BerHandler::from_settings(BerRole::Burst, code, settings)?)),
}

fn counter(value: &[u8]) -> Option<u32> {
    let &[a, b, c, d] = value else {
        return None;
    };
    Some(u32::from_be_bytes([a, b, c, d]))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What C on a BER TLV means, for summaries.
const NOT_MEASURED: &str = "not measured: the reflector found the padding or the BER TLVs \
                            non-conformant (missing or duplicate padding, duplicate BER TLV, \
                            or padding not a whole multiple of the pattern)";

impl TlvHandler for BerHandler {
    fn tlv_type(&self) -> TlvType {
        self.code
    }

    /// See the module documentation (draft §5).
    fn reflect(&self, slot: &mut TlvSlot<'_>, _ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        let len = slot.value().len();
        let len_ok = match self.role {
            BerRole::Pattern => len > 0,
            BerRole::Count | BerRole::Burst => len == COUNTER_LEN,
        };
        if !len_ok {
            return TlvVerdict::Malformed;
        }
        let offset = slot.offset();
        let area = slot.area_mut();
        let Ok(layout) = measure::analyse(area, &self.codes) else {
            return TlvVerdict::Conformance;
        };
        if self.role != BerRole::Pattern && layout.measuring_tlv() == Some(offset) {
            measure::measure_and_repair(area, &layout);
        }
        TlvVerdict::Processed
    }

    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        let Some(session) = options::session(opts)? else {
            return Ok(None);
        };
        let value = match self.role {
            BerRole::Pattern => session.pattern,
            BerRole::Count | BerRole::Burst => vec![0; COUNTER_LEN],
        };
        Ok(Some(TlvTemplate {
            tlv_type: self.code,
            value,
        }))
    }

    /// Pattern: `pattern ff00`; count: `errors N` (forward path, name
    /// `ber`); burst: `burst M` (name `ber-burst`); with C, `not measured: …`.
    /// The Bit Error Count TLV also reports the reverse direction: the
    /// reflector repaired the padding before replying, so every bit of the
    /// reply's padding that differs from the pattern flipped on the way
    /// back (draft §5; [`measure::reverse_errors`]).
    fn decode_in_packet(
        &self,
        flags: TlvFlags,
        value: &[u8],
        ctx: &DecodeContext<'_>,
        tlv_area: &[u8],
    ) -> TlvReport {
        let mut r = self.decode(flags, value, ctx);
        if self.role != BerRole::Count || flags.conformance() || flags.unrecognized() {
            return r;
        }
        if let Some(e) = measure::reverse_errors(tlv_area, &self.codes) {
            r.summary
                .push_str(&format!(", reverse errors {} burst {}", e.errors, e.burst));
            r = r
                .field("reverse_errors", e.errors)
                .field("reverse_burst", e.burst);
        }
        r
    }

    fn decode(&self, flags: TlvFlags, value: &[u8], ctx: &DecodeContext<'_>) -> TlvReport {
        let conformant = !flags.conformance();
        match self.role {
            BerRole::Pattern => {
                let mut summary = format!("pattern {}", hex(value));
                let mut r = TlvReport::new(self.code, "ber-pattern", flags, String::new())
                    .field("pattern", hex(value))
                    .field("conformant", conformant);
                if ctx.sent_value.is_some_and(|s| s != value) {
                    summary.push_str(" (differs from the request)");
                    r = r.field("intact", false);
                }
                if !conformant {
                    summary = format!("{summary}, {NOT_MEASURED}");
                }
                r.summary = summary;
                r
            }
            BerRole::Count | BerRole::Burst => {
                let (name, word, field) = if self.role == BerRole::Count {
                    ("ber", "errors", "errors")
                } else {
                    ("ber-burst", "burst", "burst")
                };
                let mut r = TlvReport::new(self.code, name, flags, String::new())
                    .field("conformant", conformant);
                r.summary = match (conformant, counter(value)) {
                    (false, _) => NOT_MEASURED.to_string(),
                    (true, None) => format!("malformed: {} octets (must be 4)", value.len()),
                    (true, Some(n)) => {
                        r = r.field(field, n);
                        format!("{word} {n}")
                    }
                };
                r
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{reply_meta, request_value, Fixture};
    use stamp_wire::TimestampFormat;

    fn handler(role: BerRole) -> BerHandler {
        let code = match role {
            BerRole::Pattern => 240,
            BerRole::Count => 241,
            BerRole::Burst => 242,
        };
        BerHandler::new(role, TlvType(code), BerCodes::default())
    }

    /// [pattern 240: F0][count 241][burst 242][padding: 4 × F0 with errors]
    fn area(padding: [u8; 4]) -> Vec<u8> {
        let mut a = vec![
            0x80, 240, 0, 1, 0xF0, //
            0x80, 241, 0, 4, 0, 0, 0, 0, //
            0x80, 242, 0, 4, 0, 0, 0, 0, //
            0x80, 1, 0, 4,
        ];
        a.extend_from_slice(&padding);
        a
    }

    #[test]
    fn count_handler_measures_and_repairs() {
        let f = Fixture::v4();
        let a = area([0xF0, 0xF1, 0xFF, 0xF0]); // 1 + 4 errors, burst 4
        let (tlv, verdict, _) = f.reflect_at(&handler(BerRole::Count), &a, 5);
        assert_eq!(verdict, TlvVerdict::Processed);
        assert_eq!(&tlv[4..], &[0, 0, 0, 5]);
        let out = f.reflect_area(&handler(BerRole::Count), &a, 5);
        assert_eq!(&out[17..21], &[0, 0, 0, 4], "burst written");
        assert_eq!(&out[25..29], &[0xF0; 4], "padding repaired");
        // The burst handler after it: nothing left to change.
        let again = f.reflect_area(&handler(BerRole::Burst), &out, 13);
        assert_eq!(again, out);
    }

    #[test]
    fn burst_handler_measures_when_it_comes_first() {
        let mut a = vec![0x80, 242, 0, 4, 0, 0, 0, 0, 0x80, 1, 0, 2, 0x7F, 0x00];
        a.extend_from_slice(&[0x80, 241, 0, 4, 0, 0, 0, 0]);
        let out = Fixture::v4().reflect_area(&handler(BerRole::Burst), &a, 0);
        // Default pattern FF00: 0x7F has one error.
        assert_eq!(&out[4..8], &[0, 0, 0, 1]);
        assert_eq!(&out[12..14], &[0xFF, 0x00]);
        assert_eq!(&out[18..22], &[0, 0, 0, 1]);
    }

    #[test]
    fn pattern_handler_only_checks() {
        let a = area([0xF0, 0xF1, 0xFF, 0xF0]);
        let f = Fixture::v4();
        let out = f.reflect_area(&handler(BerRole::Pattern), &a, 0);
        assert_eq!(out, a);
        let (_, verdict, _) = f.reflect_at(&handler(BerRole::Pattern), &a, 0);
        assert_eq!(verdict, TlvVerdict::Processed);
    }

    #[test]
    fn nonconformant_packets_get_c_on_every_ber_tlv() {
        let f = Fixture::v4();
        let cases: [Vec<u8>; 4] = [
            // No padding.
            vec![0x80, 241, 0, 4, 0, 0, 0, 0],
            // Two paddings.
            vec![
                0x80, 241, 0, 4, 0, 0, 0, 0, 0x80, 1, 0, 2, 0xFF, 0, 0x80, 1, 0, 2, 0xFF, 0,
            ],
            // Two count TLVs.
            vec![
                0x80, 241, 0, 4, 0, 0, 0, 0, 0x80, 241, 0, 4, 0, 0, 0, 0, 0x80, 1, 0, 2, 0xFF, 0,
            ],
            // Padding of 3 with the default 2-octet pattern.
            vec![0x80, 241, 0, 4, 0, 0, 0, 0, 0x80, 1, 0, 3, 0xFF, 0, 0xFF],
        ];
        for a in &cases {
            for role in [BerRole::Count, BerRole::Burst, BerRole::Pattern] {
                let mut a = a.clone();
                if role != BerRole::Count {
                    // Put the role's own TLV in front.
                    let code = handler(role).code.0;
                    let own: Vec<u8> = if role == BerRole::Pattern {
                        vec![0x80, code, 0, 2, 0xFF, 0]
                    } else {
                        vec![0x80, code, 0, 4, 0, 0, 0, 0]
                    };
                    a.splice(0..0, own);
                }
                let out = f.reflect_area(&handler(role), &a, 0);
                let (_, verdict, _) = f.reflect_at(&handler(role), &a, 0);
                assert_eq!(verdict, TlvVerdict::Conformance, "{role:?} {a:?}");
                assert_eq!(out, a, "nothing written");
            }
        }
    }

    #[test]
    fn own_length_errors_are_malformed() {
        let f = Fixture::v4();
        let pad = [0x80, 1, 0, 2, 0xFF, 0];
        for (role, tlv) in [
            (BerRole::Count, vec![0x80, 241, 0, 2, 0, 0]),
            (BerRole::Burst, vec![0x80, 242, 0, 5, 0, 0, 0, 0, 0]),
            (BerRole::Pattern, vec![0x80, 240, 0, 0]),
        ] {
            let mut a = tlv.clone();
            a.extend_from_slice(&pad);
            let (_, verdict, _) = f.reflect_at(&handler(role), &a, 0);
            assert_eq!(verdict, TlvVerdict::Malformed, "{role:?}");
        }
    }

    #[test]
    fn request_values() {
        let o = [
            ("ber", "true"),
            ("ber-pattern", "0xA5"),
            ("ber-padding-size", "8"),
        ];
        assert_eq!(
            request_value(&handler(BerRole::Pattern), &o).unwrap(),
            Some(vec![0xA5])
        );
        for role in [BerRole::Count, BerRole::Burst] {
            assert_eq!(request_value(&handler(role), &o).unwrap(), Some(vec![0; 4]));
            assert_eq!(request_value(&handler(role), &[]).unwrap(), None);
        }
        assert_eq!(
            request_value(&handler(BerRole::Pattern), &[("ber", "1")]).unwrap(),
            Some(vec![0xFF, 0x00])
        );
        assert_eq!(
            request_value(
                &handler(BerRole::Count),
                &[("ber", "1"), ("ber-padding-size", "7")]
            )
            .unwrap_err(),
            "--ber-padding-size 7: must be a whole multiple of the 2-octet bit pattern"
        );
    }

    #[test]
    fn factory_checks_code_settings() {
        let mut s = PluginSettings::new();
        let h = BerHandler::from_settings(BerRole::Count, TlvType(250), &s).unwrap();
        assert_eq!(h.codes().count, TlvType(250));
        assert_eq!(h.codes().pattern, TlvType(240));
        s.set("ber-count-code", "250");
        s.set("ber-pattern-code", "251");
        let h = BerHandler::from_settings(BerRole::Count, TlvType(250), &s).unwrap();
        assert_eq!(
            h.codes(),
            BerCodes {
                pattern: TlvType(251),
                count: TlvType(250),
                burst: TlvType(242)
            }
        );
        assert_eq!(
            BerHandler::from_settings(BerRole::Count, TlvType(241), &s).unwrap_err(),
            "--ber-count-code 250 disagrees with the type code 241 in force for ber-count"
        );
        let s = PluginSettings::new();
        assert_eq!(
            BerHandler::from_settings(BerRole::Burst, TlvType(240), &s).unwrap_err(),
            "BER TLV codes must differ: pattern 240, count 241, burst 240"
        );
    }

    fn decode(role: BerRole, flags: TlvFlags, sent: &[u8], value: &[u8]) -> TlvReport {
        let meta = reply_meta(None);
        let ctx = DecodeContext {
            meta: &meta,
            sent_value: Some(sent),
            reflector_format: TimestampFormat::Ntp,
        };
        handler(role).decode(flags, value, &ctx)
    }

    #[test]
    fn decode_reports() {
        let r = decode(BerRole::Count, TlvFlags::NONE, &[0; 4], &[0, 0, 1, 2]);
        assert_eq!((r.name, r.summary.as_str()), ("ber", "errors 258"));
        assert_eq!(r.fields["errors"], 258);
        let r = decode(BerRole::Burst, TlvFlags::NONE, &[0; 4], &[0, 0, 0, 3]);
        assert_eq!((r.name, r.summary.as_str()), ("ber-burst", "burst 3"));
        let r = decode(BerRole::Pattern, TlvFlags::NONE, &[0xFF, 0], &[0xFF, 0]);
        assert_eq!(
            (r.name, r.summary.as_str()),
            ("ber-pattern", "pattern ff00")
        );
        let r = decode(BerRole::Pattern, TlvFlags::NONE, &[0xFF, 0], &[0xFF, 1]);
        assert_eq!(r.summary, "pattern ff01 (differs from the request)");
        let r = decode(BerRole::Count, TlvFlags::C, &[0; 4], &[0; 4]);
        assert_eq!(r.summary, NOT_MEASURED);
        assert_eq!(r.fields["conformant"], false);
        let r = decode(BerRole::Count, TlvFlags::NONE, &[0; 4], &[0; 3]);
        assert_eq!(r.summary, "malformed: 3 octets (must be 4)");
    }
}
