//! STAMP reflected IP header TLVs, draft-ietf-ippm-stamp-ext-hdr (-13/-15;
//! WIRE.md §7.16).
//!
//! | Key | Default code | Module | Value |
//! | --- | --- | --- | --- |
//! | `reflected-ipv6-ext-header` | 246 | [`ipv6_ext`] | Requested (8) ‖ Reflected (Length − 8) |
//! | `reflected-fixed-header` | 247 | [`fixed`] | Requested (4) ‖ Reflected (Length − 4) |
//!
//! The draft's codes are TBA1 / TBA2; 246 / 247 are the values other
//! implementations use from the Experimental range. Both are configurable
//! (`--tlv-code reflected-fixed-header=N`); the handlers need no knowledge
//! of each other's code.
//!
//! # Where the IP header comes from
//!
//! A UDP socket does not give the received IP header; a transport that sees
//! whole packets (the raw-socket transport of `stamp-net`, feature `raw`)
//! stores it after the datagram and the engine hands it to the handlers as
//! [`stamp_core::ReflectContext::ip_header`]: the IPv4 header (options
//! included) or the IPv6 fixed header plus every extension header up to the
//! UDP header. Without it (UDP transport) both TLVs come back with **U**
//! set: the reflector recognizes them but cannot act (the draft's "cannot
//! fulfil → C" is kept for requests that a header-seeing reflector cannot
//! match; see `doc/rfc-coverage.md`).
//!
//! Sender options ([`SENDER_OPTION_KEYS`]): `reflected-fixed-hdr` (flag),
//! `reflected-fixed-hdr-selector` (hex, 4 octets, or `auto` for IPv4), `reflected-ipv6-ext-hdr`
//! (flag), `reflected-ipv6-ext-hdr-len` (octets, default the
//! `ipv6-dest-opt-len` option or 8), `reflected-ipv6-ext-hdr-selector` (hex,
//! 8 octets), and `target-family` (`ipv4` / `ipv6`, set per target by the
//! sender driver: the fixed header is 20 or 40 octets).
//!
//! Linking: a binary must name this crate (`use stamp_tlv_ext_hdr as _;`)
//! or its registrations are not linked.
#![forbid(unsafe_code)]

pub mod fixed;
pub mod headers;
pub mod ipv6_ext;
mod options;

#[cfg(test)]
mod tests;

/// Every sender option key the handlers of this crate read.
pub const SENDER_OPTION_KEYS: [&str; 7] = [
    fixed::OPT_FIXED,
    fixed::OPT_FIXED_SELECTOR,
    ipv6_ext::OPT_EXT,
    ipv6_ext::OPT_EXT_LEN,
    ipv6_ext::OPT_EXT_SELECTOR,
    options::OPT_DEST_OPT_LEN,
    options::OPT_TARGET_FAMILY,
];
