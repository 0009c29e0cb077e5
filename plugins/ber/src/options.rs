//! Sender options of a BER session: every error names the option and its
//! value, as the command line would show it.

use stamp_core::TlvOptions;

use crate::measure::DEFAULT_PATTERN;

/// Sender option (flag): send the BER TLVs.
pub const OPT_BER: &str = "ber";
/// Sender option: the bit pattern, hex (optional `0x`), default `FF00`.
pub const OPT_BER_PATTERN: &str = "ber-pattern";
/// Sender option: octets of Extra Padding carrying the pattern, default 64;
/// a whole multiple of the pattern length.
pub const OPT_BER_PADDING_SIZE: &str = "ber-padding-size";

/// Default padding size, octets.
pub const DEFAULT_PADDING_SIZE: usize = 64;

/// What a BER session sends: the pattern and the padding size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BerSession {
    /// The bit pattern.
    pub pattern: Vec<u8>,
    /// Extra Padding octets (a whole multiple of the pattern).
    pub padding_size: usize,
}

/// Parse hex digits, with an optional `0x`.
pub fn decode_hex(s: &str) -> Result<Vec<u8>, &'static str> {
    let s = s.trim();
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if digits.is_empty() {
        return Err("expected hex digits, got nothing");
    }
    if digits.len() % 2 != 0 {
        return Err("expected an even number of hex digits");
    }
    digits
        .as_bytes()
        .chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or("expected hex digits")
        })
        .collect()
}

/// The BER session `opts` ask for, or `None` without `--ber`.
pub fn session(opts: &TlvOptions) -> Result<Option<BerSession>, String> {
    let pattern = match opts.get(OPT_BER_PATTERN) {
        None => None,
        Some(raw) => Some(decode_hex(raw).map_err(|r| invalid(OPT_BER_PATTERN, raw, r))?),
    };
    let size = match opts.get(OPT_BER_PADDING_SIZE) {
        None => None,
        Some(raw) => Some(
            raw.trim()
                .parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| invalid(OPT_BER_PADDING_SIZE, raw, "must be 1..65535 octets"))?,
        ),
    };
    if !opts.flag(OPT_BER) {
        for (set, key) in [
            (pattern.is_some(), OPT_BER_PATTERN),
            (size.is_some(), OPT_BER_PADDING_SIZE),
        ] {
            if set {
                return Err(format!("--{key}: needs --{OPT_BER}"));
            }
        }
        return Ok(None);
    }
    let pattern = pattern.unwrap_or_else(|| DEFAULT_PATTERN.to_vec());
    let padding_size = size.map_or(DEFAULT_PADDING_SIZE, usize::from);
    if padding_size % pattern.len() != 0 {
        return Err(invalid(
            OPT_BER_PADDING_SIZE,
            &padding_size.to_string(),
            &format!(
                "must be a whole multiple of the {}-octet bit pattern",
                pattern.len()
            ),
        ));
    }
    Ok(Some(BerSession {
        pattern,
        padding_size,
    }))
}

/// The error message for `--key raw`.
pub(crate) fn invalid(key: &str, raw: &str, rule: &str) -> String {
    format!("--{key} {raw}: {rule}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> TlvOptions {
        let mut o = TlvOptions::new();
        for (k, v) in pairs {
            o.set(*k, *v);
        }
        o
    }

    #[test]
    fn hex_accepts_prefix_and_case() {
        assert_eq!(decode_hex("FF00"), Ok(vec![0xFF, 0]));
        assert_eq!(decode_hex(" 0xaB "), Ok(vec![0xAB]));
        assert_eq!(decode_hex("0x"), Err("expected hex digits, got nothing"));
        assert_eq!(
            decode_hex("abc"),
            Err("expected an even number of hex digits")
        );
        assert_eq!(decode_hex("zz"), Err("expected hex digits"));
    }

    #[test]
    fn defaults_are_ff00_and_64_octets() {
        assert_eq!(
            session(&opts(&[("ber", "true")])).unwrap(),
            Some(BerSession {
                pattern: vec![0xFF, 0],
                padding_size: 64
            })
        );
        assert_eq!(session(&opts(&[])).unwrap(), None);
        assert_eq!(session(&opts(&[("ber", "false")])).unwrap(), None);
    }

    #[test]
    fn pattern_and_size_are_checked() {
        assert_eq!(
            session(&opts(&[
                ("ber", "1"),
                ("ber-pattern", "a5a5a5"),
                ("ber-padding-size", "9")
            ]))
            .unwrap(),
            Some(BerSession {
                pattern: vec![0xA5; 3],
                padding_size: 9
            })
        );
        assert_eq!(
            session(&opts(&[("ber", "1"), ("ber-pattern", "a5a5a5")])).unwrap_err(),
            "--ber-padding-size 64: must be a whole multiple of the 3-octet bit pattern"
        );
        assert_eq!(
            session(&opts(&[("ber", "1"), ("ber-padding-size", "0")])).unwrap_err(),
            "--ber-padding-size 0: must be 1..65535 octets"
        );
        assert_eq!(
            session(&opts(&[("ber", "1"), ("ber-pattern", "xy")])).unwrap_err(),
            "--ber-pattern xy: expected hex digits"
        );
        assert_eq!(
            session(&opts(&[("ber-pattern", "ff")])).unwrap_err(),
            "--ber-pattern: needs --ber"
        );
        assert_eq!(
            session(&opts(&[("ber-padding-size", "8")])).unwrap_err(),
            "--ber-padding-size: needs --ber"
        );
    }
}
