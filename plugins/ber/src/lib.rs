//! STAMP bit error rate measurement, draft-gandhi-ippm-stamp-ber-07
//! (WIRE.md §7.15).
//!
//! | Key | Default code | Module | Draft |
//! | --- | --- | --- | --- |
//! | `ber-pattern` | 240 | [`tlvs`] | Bit Pattern in Padding |
//! | `ber-count` | 241 | [`tlvs`] | Bit Error Count in Padding |
//! | `ber-burst` | 242 | [`tlvs`] | Maximum Bit Error Burst Size |
//!
//! No code is assigned by IANA: all three are configurable
//! (`--tlv-code ber-count=N`). Because each handler must find its siblings
//! in the packet, a moved code must also be given to the factories as the
//! plugin settings `ber-pattern-code`, `ber-count-code`, `ber-burst-code`
//! (a handler refuses a setting that disagrees with its own code).
//! Beware: teaparty uses 242 for an unrelated Heartbeat TLV.
//!
//! Sender options ([`SENDER_OPTION_KEYS`]): `ber` (flag), `ber-pattern`
//! (hex, default `FF00`), `ber-padding-size` (octets, default 64, a whole
//! multiple of the pattern).
//!
//! # The Extra Padding TLV
//!
//! The measured bits travel in an Extra Padding TLV (type 1), which belongs
//! to the RFC 8972 plugin; a handler can only emit its own TLV. So a BER
//! session needs the sender's Extra Padding TLV to be `ber-padding-size`
//! octets of the pattern repeated. Ways to get there:
//! 1. the RFC 8972 Extra Padding handler's `request()` honours the `ber`,
//!    `ber-pattern`, `ber-padding-size` options (length and content, the
//!    fill rule of [`fill_padding`]) — no core change; or
//! 2. the sender driver calls [`fill_request_padding`] on the request's TLV
//!    area after `build_request` (padding sits after the HMAC TLV, so no
//!    HMAC TLV is invalidated; the Extra Padding decode then reports that
//!    the content differs from its template).
//!
//! # Reverse direction
//!
//! The reflector repairs the padding before replying, so errors in the
//! reply's padding arose on the reverse path. The Bit Error Count handler
//! overrides `TlvHandler::decode_in_packet`, which sees the reply's whole
//! TLV area, and adds [`reverse_errors`] (count and longest burst) to its
//! report (`reverse_errors`, `reverse_burst`).
//!
//! Linking: a binary must name this crate (`use stamp_tlv_ber as _;`) or its
//! registrations are not linked.
#![forbid(unsafe_code)]

pub mod measure;
pub mod options;
pub mod tlvs;

pub use measure::{
    count_bit_errors, fill_padding, fill_request_padding, reverse_errors, BerCodes, BitErrors,
    DEFAULT_PATTERN,
};

#[cfg(test)]
mod end_to_end;
#[cfg(test)]
mod test_support;

/// Every sender option key the handlers of this crate read.
pub const SENDER_OPTION_KEYS: [&str; 3] = [
    options::OPT_BER,
    options::OPT_BER_PATTERN,
    options::OPT_BER_PADDING_SIZE,
];

/// Every plugin setting the factories of this crate read (sender and
/// reflector alike).
pub const PLUGIN_SETTING_KEYS: [&str; 3] = [
    measure::SETTING_PATTERN_CODE,
    measure::SETTING_COUNT_CODE,
    measure::SETTING_BURST_CODE,
];
