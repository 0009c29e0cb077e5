//! Link-only facade over the TLV plugin crates.
//!
//! A plugin crate that is only named in Cargo.toml is not linked, and the
//! `inventory` records it submits silently vanish. Each enabled plugin is
//! therefore named here with `use … as _;`, and `unused_crate_dependencies`
//! is denied so a plugin added to Cargo.toml but not here fails the build.
#![forbid(unsafe_code)]
#![deny(unused_crate_dependencies)]

use stamp_core as _;

#[cfg(feature = "asym")]
use stamp_tlv_asym as _;
#[cfg(feature = "ber")]
use stamp_tlv_ber as _;
#[cfg(feature = "ext-hdr")]
use stamp_tlv_ext_hdr as _;
#[cfg(feature = "rfc8972")]
use stamp_tlv_rfc8972 as _;
#[cfg(feature = "rfc9503")]
use stamp_tlv_rfc9503 as _;
#[cfg(feature = "rfc9534")]
use stamp_tlv_rfc9534 as _;

/// Plugin keys this facade links, with their default type codes, for the
/// enabled features (what `--list-tlvs` must show).
pub fn expected_plugins() -> Vec<(&'static str, u8)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, u8)> = Vec::new();
    #[cfg(feature = "rfc8972")]
    v.extend([
        ("extra-padding", 1),
        ("location", 2),
        ("timestamp-information", 3),
        ("class-of-service", 4),
        ("direct-measurement", 5),
        ("access-report", 6),
        ("follow-up-telemetry", 7),
    ]);
    #[cfg(feature = "rfc9503")]
    v.extend([("destination-node-address", 9), ("return-path", 10)]);
    #[cfg(feature = "rfc9534")]
    v.push(("micro-session-id", 11));
    #[cfg(feature = "asym")]
    v.push(("reflected-test-packet-control", 12));
    #[cfg(feature = "ber")]
    v.extend([("ber-pattern", 240), ("ber-count", 241), ("ber-burst", 242)]);
    #[cfg(feature = "ext-hdr")]
    v.extend([
        ("reflected-ipv6-ext-header", 246),
        ("reflected-fixed-header", 247),
    ]);
    v
}

/// Make sure the linker keeps the plugin crates: call once at start-up.
pub fn link() {}
