//! Reflected IPv6 Extension Header Data TLV (draft-ietf-ippm-stamp-ext-hdr
//! -13+; code TBA1, 246 here and configurable).
//!
//! ```text
//! | Requested (8) | Reflected (Length - 8) |
//! ```
//! Length is the size of the targeted extension header, so a filled Value
//! is the whole header: its first 8 octets as the selector the sender gave
//! (or zeros), then the rest as received. (-11 used a 4-octet Requested
//! field; the two revisions do not interoperate.)
//!
//! Reflector, for each TLV of this type in packet order, walking the
//! extension headers outer to inner: the TLV takes the first header after
//! the one the previous TLV of this type took whose length equals Length
//! and, when Requested is not all zeros, whose first 8 octets equal it.
//! Without the received header (UDP transport) → U; an IPv4 request, a
//! Length under 8, or no matching header (including requests out of header
//! order) → C with the Value unchanged.

use serde_json::Value;
use stamp_core::{
    DecodeContext, ReflectContext, TlvHandler, TlvOptions, TlvReport, TlvSlot, TlvTemplate,
    TlvVerdict,
};
use stamp_wire::tlv::TlvIter;
use stamp_wire::{TlvFlags, TlvType};

use crate::headers::{self, ExtHeader};
use crate::options;

/// Sender option (flag): add the Reflected IPv6 Extension Header Data TLV.
pub const OPT_EXT: &str = "reflected-ipv6-ext-hdr";
/// Sender option: size of the extension header to reflect, octets.
pub const OPT_EXT_LEN: &str = "reflected-ipv6-ext-hdr-len";
/// Sender option: the 8-octet Requested selector, hex.
pub const OPT_EXT_SELECTOR: &str = "reflected-ipv6-ext-hdr-selector";
/// Length of the Requested field (-13 and later).
pub const REQUESTED_LEN: usize = 8;
/// Largest extension header (Hdr Ext Len 255 → 2048 octets).
pub const MAX_EXT_LEN: usize = 2048;

/// Handler of the Reflected IPv6 Extension Header Data TLV.
#[derive(Debug)]
pub struct ExtHeaderHandler {
    code: TlvType,
}

impl ExtHeaderHandler {
    /// A handler for type `code`.
    pub fn new(code: TlvType) -> Self {
        ExtHeaderHandler { code }
    }
}

stamp_core::register_tlv! {
    key: "reflected-ipv6-ext-header",
    code: 246,
    name: "Reflected IPv6 Extension Header Data",
    spec: "draft-ietf-ippm-stamp-ext-hdr (TBA1)",
    configurable_code: true,
    factory: |code, _settings| Ok(Box::new(ExtHeaderHandler::new(code))),
}

/// The extension header a request with `requested` and `len` takes, among
/// the headers of `hdr` from index `from` on; returns its index too.
fn find(hdr: &[u8], from: usize, requested: &[u8], len: usize) -> Option<(usize, ExtHeader)> {
    let any = requested.iter().all(|&b| b == 0);
    headers::extension_headers(hdr)
        .enumerate()
        .skip(from)
        .find(|(_, h)| {
            h.len == len && (any || hdr[h.offset..h.offset + REQUESTED_LEN] == *requested)
        })
}

/// The reflector's rule for the TLV of type `code` at `offset` of the TLV
/// `area`, against the received header `hdr`.
pub fn reflect_ext(area: &mut [u8], offset: usize, code: TlvType, hdr: &[u8]) -> TlvVerdict {
    if headers::version(hdr) != Some(6) {
        return TlvVerdict::Conformance;
    }
    // Headers taken by the TLVs of this type before this one (their
    // Requested fields and Lengths are as received).
    let mut from = 0;
    let mut mine = None;
    for t in TlvIter::new(area).map_while(Result::ok) {
        if t.tlv_type != code || t.value.len() < REQUESTED_LEN {
            if t.offset == offset {
                return TlvVerdict::Conformance;
            }
            continue;
        }
        let found = find(hdr, from, &t.value[..REQUESTED_LEN], t.value.len());
        if t.offset == offset {
            mine = found;
            break;
        }
        if let Some((i, _)) = found {
            from = i + 1;
        }
    }
    let Some((_, h)) = mine else {
        return TlvVerdict::Conformance;
    };
    let start = offset + stamp_wire::tlv::HEADER_LEN + REQUESTED_LEN;
    area[start..start + h.len - REQUESTED_LEN]
        .copy_from_slice(&hdr[h.offset + REQUESTED_LEN..h.offset + h.len]);
    TlvVerdict::Processed
}

impl TlvHandler for ExtHeaderHandler {
    fn tlv_type(&self) -> TlvType {
        self.code
    }

    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        let Some(hdr) = ctx.ip_header else {
            return TlvVerdict::Unrecognized;
        };
        let offset = slot.offset();
        reflect_ext(slot.area_mut(), offset, self.code, hdr)
    }

    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        if !opts.flag(OPT_EXT) {
            return Ok(None);
        }
        if !options::target_is_v6(opts)? {
            return Err(format!("--{OPT_EXT} needs an IPv6 target"));
        }
        let key = if opts.get(OPT_EXT_LEN).is_some() {
            OPT_EXT_LEN
        } else {
            options::OPT_DEST_OPT_LEN
        };
        let len = match opts.get(key) {
            None => 8,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(n) if (REQUESTED_LEN..=MAX_EXT_LEN).contains(&n) && n % 8 == 0 => n,
                _ => {
                    return Err(format!(
                        "--{key} {raw}: expected a multiple of 8 from 8 to {MAX_EXT_LEN}"
                    ))
                }
            },
        };
        let mut value = vec![0u8; len];
        if let Some(sel) = options::selector(opts, OPT_EXT_SELECTOR, REQUESTED_LEN)? {
            value[..REQUESTED_LEN].copy_from_slice(&sel);
        }
        Ok(Some(TlvTemplate {
            tlv_type: self.code,
            value,
        }))
    }

    fn decodes_refusals(&self) -> bool {
        true
    }

    fn decode(&self, flags: TlvFlags, value: &[u8], _ctx: &DecodeContext<'_>) -> TlvReport {
        decode_ext(self.code, flags, value)
    }
}

/// Decode a reflected extension header Value.
pub fn decode_ext(code: TlvType, flags: TlvFlags, value: &[u8]) -> TlvReport {
    let report = |summary: String| TlvReport::new(code, "ext-hdr", flags, summary);
    if flags.unrecognized() {
        return report("not reflected: the reflector cannot see IP headers (U)".into())
            .field("available", false);
    }
    if flags.0 & TlvFlags::C.0 != 0 || value.len() < REQUESTED_LEN {
        return report(format!(
            "not reflected: no matching {}-octet extension header (C)",
            value.len()
        ))
        .field("available", false)
        .field("length", value.len());
    }
    let (req, data) = value.split_at(REQUESTED_LEN);
    let selected = req.iter().any(|&b| b != 0);
    let mut r = report(format!(
        "len={} requested={} reflected={}",
        value.len(),
        options::hex(req),
        options::hex(data)
    ))
    .field("available", true)
    .field("length", value.len())
    .field("requested", options::hex(req))
    .field("reflected", options::hex(data));
    if selected {
        // With a selector the whole header is known: its Next Header.
        r = r.field("next_header", Value::from(req[0]));
    }
    r
}
