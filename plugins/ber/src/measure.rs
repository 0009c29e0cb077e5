//! Bit error counting over the Extra Padding TLV, independent of any
//! handler (draft-gandhi-ippm-stamp-ber-07 §3–§5; WIRE.md §7.15), so the
//! reflector handlers, a sender driver and tests share one implementation.
//!
//! * [`fill_padding`]: fill a padding Value with the repeating pattern
//!   (sender, and the reflector's repair before replying).
//! * [`count_bit_errors`]: XOR a received padding against the repeating
//!   pattern; number of differing bits and the longest run of consecutive
//!   differing bits (bit order: most significant bit of each octet first,
//!   runs continue across octet boundaries).
//! * [`analyse`]: find the one Extra Padding TLV and the BER TLVs in a TLV
//!   area, and check the conformance rules (exactly one padding, no
//!   duplicate BER TLV, padding a non-empty whole multiple of the pattern).
//! * [`fill_request_padding`] / [`reverse_errors`]: the same over a whole
//!   request / reply TLV area, for a sender driver.

use std::fmt;

use stamp_core::registry::PluginSettings;
use stamp_wire::tlv::HEADER_LEN;
use stamp_wire::{TlvIter, TlvType};

/// The pattern used when the request carries no Bit Pattern TLV (draft §4).
pub const DEFAULT_PATTERN: [u8; 2] = [0xFF, 0x00];

/// Default code of the Bit Pattern in Padding TLV (experimental; used by
/// stamp-suite and teaparty).
pub const DEFAULT_PATTERN_CODE: u8 = 240;
/// Default code of the Bit Error Count in Padding TLV (experimental; used by
/// stamp-suite and teaparty).
pub const DEFAULT_COUNT_CODE: u8 = 241;
/// Default code of the Maximum Bit Error Burst Size TLV (experimental;
/// stamp-suite's choice — teaparty uses 242 for an unrelated Heartbeat TLV).
pub const DEFAULT_BURST_CODE: u8 = 242;

/// Plugin setting / sender option: code of the Bit Pattern TLV, when moved
/// with `--tlv-code ber-pattern=N` (the factories of the sibling TLVs need
/// to know it).
pub const SETTING_PATTERN_CODE: &str = "ber-pattern-code";
/// Plugin setting / sender option: code of the Bit Error Count TLV.
pub const SETTING_COUNT_CODE: &str = "ber-count-code";
/// Plugin setting / sender option: code of the Maximum Bit Error Burst TLV.
pub const SETTING_BURST_CODE: &str = "ber-burst-code";

/// The type codes of the three BER TLVs in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BerCodes {
    /// Bit Pattern in Padding.
    pub pattern: TlvType,
    /// Bit Error Count in Padding.
    pub count: TlvType,
    /// Maximum Bit Error Burst Size.
    pub burst: TlvType,
}

impl Default for BerCodes {
    fn default() -> Self {
        BerCodes {
            pattern: TlvType(DEFAULT_PATTERN_CODE),
            count: TlvType(DEFAULT_COUNT_CODE),
            burst: TlvType(DEFAULT_BURST_CODE),
        }
    }
}

impl BerCodes {
    /// The codes from [`SETTING_PATTERN_CODE`], [`SETTING_COUNT_CODE`] and
    /// [`SETTING_BURST_CODE`], defaults for those absent. They must be three
    /// distinct codes other than 0, 1 (Extra Padding), 8 (HMAC) and 255.
    pub fn from_settings(settings: &PluginSettings) -> Result<Self, String> {
        let get = |key: &str, default: u8| -> Result<TlvType, String> {
            match settings.get(key) {
                None => Ok(TlvType(default)),
                Some(raw) => raw
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|c| ![0, 1, 8, 255].contains(c))
                    .map(TlvType)
                    .ok_or_else(|| {
                        format!("--{key} {raw}: expected a TLV type code 2..254 other than 8")
                    }),
            }
        };
        let codes = BerCodes {
            pattern: get(SETTING_PATTERN_CODE, DEFAULT_PATTERN_CODE)?,
            count: get(SETTING_COUNT_CODE, DEFAULT_COUNT_CODE)?,
            burst: get(SETTING_BURST_CODE, DEFAULT_BURST_CODE)?,
        };
        codes.check()?;
        Ok(codes)
    }

    /// Refuse codes that coincide.
    pub fn check(&self) -> Result<(), String> {
        if self.pattern == self.count || self.pattern == self.burst || self.count == self.burst {
            return Err(format!(
                "BER TLV codes must differ: pattern {}, count {}, burst {}",
                self.pattern.0, self.count.0, self.burst.0
            ));
        }
        Ok(())
    }
}

/// Bit errors found in a padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BitErrors {
    /// Bits that differ from the pattern.
    pub errors: u64,
    /// Longest run of consecutive differing bits.
    pub burst: u64,
}

impl BitErrors {
    /// The count as the 32-bit Value of the Bit Error Count TLV (saturating).
    pub fn errors_u32(&self) -> u32 {
        u32::try_from(self.errors).unwrap_or(u32::MAX)
    }
    /// The burst as the 32-bit Value of the Maximum Bit Error Burst TLV.
    pub fn burst_u32(&self) -> u32 {
        u32::try_from(self.burst).unwrap_or(u32::MAX)
    }
}

/// Fill `area` (an Extra Padding Value) with `pattern` repeated; the last
/// repetition is cut short if `area` is not a whole multiple. An empty
/// pattern leaves `area` unchanged.
///
/// For the sender driver: call it on the Extra Padding Value of every
/// request when the session uses BER (see the crate documentation).
pub fn fill_padding(area: &mut [u8], pattern: &[u8]) {
    if pattern.is_empty() {
        return;
    }
    for chunk in area.chunks_mut(pattern.len()) {
        chunk.copy_from_slice(&pattern[..chunk.len()]);
    }
}

/// Compare `received` with `pattern` repeated (draft §5: XOR, count the set
/// bits; the burst is the longest run of consecutive erroneous bits).
pub fn count_bit_errors(received: &[u8], pattern: &[u8]) -> BitErrors {
    let mut out = BitErrors::default();
    if pattern.is_empty() {
        return out;
    }
    let mut run = 0u64;
    for (i, &b) in received.iter().enumerate() {
        let x = b ^ pattern[i % pattern.len()];
        out.errors += u64::from(x.count_ones());
        match x {
            0 => run = 0,
            0xFF => run += 8,
            _ => {
                for bit in (0..8).rev() {
                    if x >> bit & 1 == 1 {
                        run += 1;
                        out.burst = out.burst.max(run);
                    } else {
                        run = 0;
                    }
                }
            }
        }
        out.burst = out.burst.max(run);
    }
    out
}

/// Why a packet's BER TLVs cannot be measured (draft §5: the reflector
/// answers with C set on the BER TLVs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nonconformance {
    /// No Extra Padding TLV in the packet.
    MissingPadding,
    /// More than one Extra Padding TLV.
    DuplicatePadding,
    /// A BER TLV type appears more than once.
    DuplicateBerTlv(TlvType),
    /// The Bit Pattern TLV is empty.
    EmptyPattern,
    /// The padding is empty or not a whole multiple of the pattern.
    PaddingLength {
        /// Padding octets.
        padding: usize,
        /// Pattern octets.
        pattern: usize,
    },
}

impl fmt::Display for Nonconformance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Nonconformance::MissingPadding => f.write_str("no Extra Padding TLV"),
            Nonconformance::DuplicatePadding => f.write_str("more than one Extra Padding TLV"),
            Nonconformance::DuplicateBerTlv(t) => write!(f, "BER TLV type {} repeated", t.0),
            Nonconformance::EmptyPattern => f.write_str("empty bit pattern"),
            Nonconformance::PaddingLength { padding, pattern } => write!(
                f,
                "{padding} padding octets are not a whole multiple of the {pattern}-octet pattern"
            ),
        }
    }
}

/// Where the padding and the BER TLVs are in a TLV area. Ranges are
/// `(offset, len)`: Value offsets for the padding and the pattern, TLV
/// (header) offsets for count and burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BerLayout {
    /// Value of the Extra Padding TLV.
    pub padding: (usize, usize),
    /// Value of the Bit Pattern TLV, if present.
    pub pattern: Option<(usize, usize)>,
    /// The Bit Error Count TLV: header offset and Value length.
    pub count: Option<(usize, usize)>,
    /// The Maximum Bit Error Burst TLV: header offset and Value length.
    pub burst: Option<(usize, usize)>,
}

impl BerLayout {
    /// Header offset of the first of the count / burst TLVs: the one whose
    /// handler measures (once per packet).
    pub fn measuring_tlv(&self) -> Option<usize> {
        match (self.count, self.burst) {
            (Some((c, _)), Some((b, _))) => Some(c.min(b)),
            (Some((c, _)), None) => Some(c),
            (None, Some((b, _))) => Some(b),
            (None, None) => None,
        }
    }

    /// The pattern in force: the Bit Pattern TLV's Value or the default.
    pub fn pattern<'a>(&self, area: &'a [u8]) -> &'a [u8] {
        match self.pattern {
            Some((off, len)) => &area[off..off + len],
            None => &DEFAULT_PATTERN,
        }
    }
}

/// Walk the TLVs of `area` as the reflector engine does (stopping at
/// trailing zero padding or broken framing) and check the BER rules.
pub fn analyse(area: &[u8], codes: &BerCodes) -> Result<BerLayout, Nonconformance> {
    let mut padding = None;
    let mut pattern = None;
    let mut count = None;
    let mut burst = None;
    for item in TlvIter::new(area) {
        let Ok(t) = item else { break };
        if area[t.offset..].iter().all(|&b| b == 0) {
            break;
        }
        let value_at = t.offset + HEADER_LEN;
        let len = t.value.len();
        let (slot, entry) = if t.tlv_type == TlvType::EXTRA_PADDING {
            if padding.is_some() {
                return Err(Nonconformance::DuplicatePadding);
            }
            (&mut padding, (value_at, len))
        } else if t.tlv_type == codes.pattern {
            (&mut pattern, (value_at, len))
        } else if t.tlv_type == codes.count {
            (&mut count, (t.offset, len))
        } else if t.tlv_type == codes.burst {
            (&mut burst, (t.offset, len))
        } else {
            continue;
        };
        if slot.replace(entry).is_some() {
            return Err(Nonconformance::DuplicateBerTlv(t.tlv_type));
        }
    }
    let padding = padding.ok_or(Nonconformance::MissingPadding)?;
    let pattern_len = pattern.map_or(DEFAULT_PATTERN.len(), |(_, l)| l);
    if pattern_len == 0 {
        return Err(Nonconformance::EmptyPattern);
    }
    if padding.1 == 0 || padding.1 % pattern_len != 0 {
        return Err(Nonconformance::PaddingLength {
            padding: padding.1,
            pattern: pattern_len,
        });
    }
    Ok(BerLayout {
        padding,
        pattern,
        count,
        burst,
    })
}

/// The padding Value, writable, and the pattern in force, from one area.
fn padding_and_pattern<'a>(area: &'a mut [u8], l: &BerLayout) -> (&'a mut [u8], &'a [u8]) {
    let (p_off, p_len) = l.padding;
    match l.pattern {
        None => (&mut area[p_off..p_off + p_len], &DEFAULT_PATTERN),
        Some((t_off, t_len)) if t_off < p_off => {
            let (head, tail) = area.split_at_mut(p_off);
            (&mut tail[..p_len], &head[t_off..t_off + t_len])
        }
        Some((t_off, t_len)) => {
            let (head, tail) = area.split_at_mut(t_off);
            (&mut head[p_off..p_off + p_len], &tail[..t_len])
        }
    }
}

/// Reflector measurement (draft §5): count the bit errors of the padding,
/// write the count and burst into their TLVs (those with a 4-octet Value),
/// and repair the padding so the reverse path can be measured too.
pub fn measure_and_repair(area: &mut [u8], layout: &BerLayout) -> BitErrors {
    let (padding, pattern) = padding_and_pattern(area, layout);
    let found = count_bit_errors(padding, pattern);
    fill_padding(padding, pattern);
    for (tlv, value) in [
        (layout.count, found.errors_u32()),
        (layout.burst, found.burst_u32()),
    ] {
        if let Some((off, 4)) = tlv {
            area[off + HEADER_LEN..off + HEADER_LEN + 4].copy_from_slice(&value.to_be_bytes());
        }
    }
    found
}

/// Sender driver: fill the Extra Padding TLV of a built request's TLV area
/// with the pattern of its Bit Pattern TLV (or the default). Returns false,
/// changing nothing, when the area does not conform (see [`analyse`]).
pub fn fill_request_padding(tlv_area: &mut [u8], codes: &BerCodes) -> bool {
    let Ok(layout) = analyse(tlv_area, codes) else {
        return false;
    };
    let (padding, pattern) = padding_and_pattern(tlv_area, &layout);
    fill_padding(padding, pattern);
    true
}

/// Sender driver: bit errors on the reverse path, from a reply's TLV area
/// (the reflector repaired the padding before replying, so any difference
/// from the pattern arose on the way back). `None` when the reply has no
/// conformant padding.
pub fn reverse_errors(reply_tlv_area: &[u8], codes: &BerCodes) -> Option<BitErrors> {
    let layout = analyse(reply_tlv_area, codes).ok()?;
    let (off, len) = layout.padding;
    Some(count_bit_errors(
        &reply_tlv_area[off..off + len],
        layout.pattern(reply_tlv_area),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes() -> BerCodes {
        BerCodes::default()
    }

    #[test]
    fn fill_repeats_the_pattern() {
        let mut b = [0u8; 7];
        fill_padding(&mut b, &[1, 2, 3]);
        assert_eq!(b, [1, 2, 3, 1, 2, 3, 1]);
        fill_padding(&mut b, &[]);
        assert_eq!(b, [1, 2, 3, 1, 2, 3, 1]);
    }

    #[test]
    fn counting_xors_against_the_repeating_pattern() {
        let p = DEFAULT_PATTERN;
        assert_eq!(
            count_bit_errors(&[0xFF, 0, 0xFF, 0], &p),
            BitErrors::default()
        );
        // One bit in the first octet, three in the fourth (not adjacent to it).
        assert_eq!(
            count_bit_errors(&[0xFE, 0, 0xFF, 0x07], &p),
            BitErrors {
                errors: 4,
                burst: 3
            }
        );
    }

    #[test]
    fn bursts_run_across_octet_boundaries() {
        // 0x00 0x00 pattern; errors: last 3 bits of octet 0, all of octet 1,
        // first 2 of octet 2 → one run of 13.
        let r = count_bit_errors(&[0x07, 0xFF, 0xC0, 0x80], &[0]);
        assert_eq!(
            r,
            BitErrors {
                errors: 14,
                burst: 13
            }
        );
        assert_eq!(count_bit_errors(&[0xAA], &[0]).burst, 1);
        assert_eq!(count_bit_errors(&[0xFF; 3], &[0]).burst, 24);
    }

    #[test]
    fn counts_saturate_into_32_bits() {
        let b = BitErrors {
            errors: u64::from(u32::MAX) + 5,
            burst: 9,
        };
        assert_eq!((b.errors_u32(), b.burst_u32()), (u32::MAX, 9));
    }

    /// [count 241][pattern 240: AA][padding 1: 4 octets][burst 242]
    fn area() -> Vec<u8> {
        vec![
            0x80, 241, 0, 4, 0, 0, 0, 0, //
            0x80, 240, 0, 1, 0xAA, //
            0x80, 1, 0, 4, 0xAA, 0xAA, 0xAA, 0xAA, //
            0x80, 242, 0, 4, 0, 0, 0, 0,
        ]
    }

    #[test]
    fn analyse_finds_everything() {
        let l = analyse(&area(), &codes()).unwrap();
        assert_eq!(l.padding, (17, 4));
        assert_eq!(l.pattern, Some((12, 1)));
        assert_eq!(l.count, Some((0, 4)));
        assert_eq!(l.burst, Some((21, 4)));
        assert_eq!(l.measuring_tlv(), Some(0));
        assert_eq!(l.pattern(&area()), [0xAA]);
    }

    #[test]
    fn analyse_refuses_what_the_draft_forbids() {
        let c = codes();
        // Missing padding.
        assert_eq!(
            analyse(&[0x80, 241, 0, 4, 0, 0, 0, 0], &c),
            Err(Nonconformance::MissingPadding)
        );
        // Duplicate padding.
        let mut a = area();
        a.extend_from_slice(&[0x80, 1, 0, 1, 0xAA]);
        assert_eq!(analyse(&a, &c), Err(Nonconformance::DuplicatePadding));
        // Duplicate BER TLV.
        let mut a = area();
        a.extend_from_slice(&[0x80, 241, 0, 4, 0, 0, 0, 0]);
        assert_eq!(
            analyse(&a, &c),
            Err(Nonconformance::DuplicateBerTlv(TlvType(241)))
        );
        // Padding not a multiple of the default two-octet pattern.
        assert_eq!(
            analyse(&[0x80, 1, 0, 3, 0xFF, 0, 0xFF], &c),
            Err(Nonconformance::PaddingLength {
                padding: 3,
                pattern: 2
            })
        );
        // Empty padding, empty pattern.
        assert!(matches!(
            analyse(&[0x80, 1, 0, 0], &c),
            Err(Nonconformance::PaddingLength { padding: 0, .. })
        ));
        assert_eq!(
            analyse(&[0x80, 240, 0, 0, 0x80, 1, 0, 2, 0xFF, 0], &c),
            Err(Nonconformance::EmptyPattern)
        );
    }

    #[test]
    fn analyse_stops_at_trailing_zeros_like_the_engine() {
        let mut a = vec![0x80, 1, 0, 2, 0xFF, 0];
        a.extend_from_slice(&[0; 8]);
        assert_eq!(analyse(&a, &codes()).unwrap().padding, (4, 2));
    }

    #[test]
    fn measure_writes_count_and_burst_and_repairs() {
        let mut a = area();
        a[18] ^= 0x0F; // 4 errors in a row
        a[20] ^= 0x80; // 1 more
        let l = analyse(&a, &codes()).unwrap();
        let r = measure_and_repair(&mut a, &l);
        assert_eq!(
            r,
            BitErrors {
                errors: 5,
                burst: 4
            }
        );
        assert_eq!(&a[4..8], &[0, 0, 0, 5]);
        assert_eq!(&a[25..29], &[0, 0, 0, 4]);
        assert_eq!(&a[17..21], &[0xAA; 4], "padding repaired");
    }

    #[test]
    fn measure_with_the_pattern_after_the_padding_and_default_pattern() {
        let mut a = vec![0x80, 1, 0, 2, 0x00, 0x00, 0x80, 240, 0, 1, 0x0F];
        let l = analyse(&a, &codes()).unwrap();
        assert_eq!(measure_and_repair(&mut a, &l).errors, 8);
        assert_eq!(&a[4..6], &[0x0F, 0x0F]);
        let mut a = vec![0x80, 1, 0, 2, 0xFF, 0x01, 0x80, 241, 0, 4, 0, 0, 0, 0];
        let l = analyse(&a, &codes()).unwrap();
        assert_eq!(measure_and_repair(&mut a, &l).errors, 1);
        assert_eq!(&a[4..6], &DEFAULT_PATTERN);
        assert_eq!(&a[10..14], &[0, 0, 0, 1]);
    }

    #[test]
    fn request_filling_and_reverse_counting() {
        let mut a = vec![0x80, 240, 0, 2, 0x12, 0x34, 0x80, 1, 0, 4, 0, 0, 0, 0];
        assert!(fill_request_padding(&mut a, &codes()));
        assert_eq!(&a[10..14], &[0x12, 0x34, 0x12, 0x34]);
        assert_eq!(reverse_errors(&a, &codes()), Some(BitErrors::default()));
        a[13] ^= 0x03;
        assert_eq!(
            reverse_errors(&a, &codes()),
            Some(BitErrors {
                errors: 2,
                burst: 2
            })
        );
        let mut bad = vec![0x80, 1, 0, 3, 0, 0, 0];
        assert!(!fill_request_padding(&mut bad, &codes()));
        assert_eq!(bad, [0x80, 1, 0, 3, 0, 0, 0]);
        assert_eq!(reverse_errors(&bad, &codes()), None);
    }

    #[test]
    fn codes_come_from_settings_and_must_differ() {
        let mut s = PluginSettings::new();
        assert_eq!(BerCodes::from_settings(&s).unwrap(), BerCodes::default());
        s.set(SETTING_COUNT_CODE, "250");
        assert_eq!(BerCodes::from_settings(&s).unwrap().count, TlvType(250));
        s.set(SETTING_BURST_CODE, "250");
        assert_eq!(
            BerCodes::from_settings(&s).unwrap_err(),
            "BER TLV codes must differ: pattern 240, count 250, burst 250"
        );
        s.set(SETTING_BURST_CODE, "1");
        assert_eq!(
            BerCodes::from_settings(&s).unwrap_err(),
            "--ber-burst-code 1: expected a TLV type code 2..254 other than 8"
        );
    }
}
