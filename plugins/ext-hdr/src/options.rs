//! Sender option parsing; errors name the option as the command line shows it.

use stamp_core::TlvOptions;

/// Sender option set by the driver per target: `ipv4` or `ipv6`.
pub const OPT_TARGET_FAMILY: &str = "target-family";

/// Sender option: length of the Destination Options header the sender adds
/// to its IPv6 requests (`--ipv6-dest-opt-len`), the default length of the
/// extension header the Reflected IPv6 Extension Header TLV asks for.
pub const OPT_DEST_OPT_LEN: &str = "ipv6-dest-opt-len";

/// Is the target IPv6? (`target-family`, default IPv4.)
pub(crate) fn target_is_v6(opts: &TlvOptions) -> Result<bool, String> {
    match opts.get(OPT_TARGET_FAMILY).map(str::trim) {
        None | Some("ipv4") => Ok(false),
        Some("ipv6") => Ok(true),
        Some(other) => Err(format!(
            "--tlv-opt {OPT_TARGET_FAMILY}={other}: expected ipv4 or ipv6"
        )),
    }
}

/// A selector of exactly `len` octets in hex under `key`.
pub(crate) fn selector(
    opts: &TlvOptions,
    key: &str,
    len: usize,
) -> Result<Option<Vec<u8>>, String> {
    let Some(raw) = opts.get(key) else {
        return Ok(None);
    };
    let digits = raw.trim();
    let digits = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .unwrap_or(digits);
    let bytes =
        decode_hex(digits).ok_or_else(|| format!("--{key} {raw}: expected {len} octets in hex"))?;
    if bytes.len() != len {
        return Err(format!("--{key} {raw}: expected {len} octets in hex"));
    }
    Ok(Some(bytes))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Lower-case hex of `b`.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
