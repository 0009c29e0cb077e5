//! STAMP asymmetrical packets: the Reflected Test Packet Control TLV of
//! draft-ietf-ippm-asymmetrical-pkts-14 (WIRE.md §7.14).
//!
//! | Key | Default code | Module | Draft |
//! | --- | --- | --- | --- |
//! | `reflected-test-packet-control` | 12 | [`reflected_control`] | §3 (sub-TLVs [`sub_tlvs`]) |
//!
//! The code is "TBA" in the draft, so it is configurable
//! (`--tlv-code reflected-test-packet-control=N`).
//!
//! A request asks the reflector for N replies of L octets, I ns apart. The
//! handler only decides; it writes the decision into the reply plan
//! (`ReplyPlan::copies`, `copy_interval_ns`, `reply_len`, `suppress`) and
//! the reflector driver carries it out: send `copies` replies, the first
//! as soon as it is built, each next one `copy_interval_ns` after the
//! previous, each `reply_len` octets long, grown with an Extra Padding TLV.
//!
//! Reflector plugin settings ([`PLUGIN_SETTING_KEYS`], see [`policy`]):
//! `reflected-control-enabled` (default false), `reflected-control-max-count`
//! (default 1), `reflected-control-max-size` (default: the request's own
//! length), `reflected-control-min-interval-ns` (default 1 ms), and
//! `local-addresses` (for Layer 3 Address Groups; the binary fills it).
//! By default nothing is amplified: one reply, no larger than the request,
//! with C set on the TLV.
//!
//! Sender options ([`SENDER_OPTION_KEYS`]): `reflected-control-count`,
//! `reflected-control-length`, `reflected-control-interval-ns`,
//! `reflected-control-l3-group`.
//!
//! Linking: a binary must name this crate (`use stamp_tlv_asym as _;`) or
//! its registration is not linked.
#![forbid(unsafe_code)]

pub mod policy;
pub mod reflected_control;
pub mod sub_tlvs;

mod options;

pub use policy::{Grant, Policy, Request};
pub use reflected_control::ReflectedControlHandler;

#[cfg(test)]
mod end_to_end;
#[cfg(test)]
mod registered;
#[cfg(test)]
mod test_support;

/// Every sender option key the handler of this crate reads.
pub const SENDER_OPTION_KEYS: [&str; 4] = [
    reflected_control::OPT_COUNT,
    reflected_control::OPT_LENGTH,
    reflected_control::OPT_INTERVAL_NS,
    reflected_control::OPT_L3_GROUP,
];

/// Every reflector plugin setting the factory of this crate reads.
pub const PLUGIN_SETTING_KEYS: [&str; 5] = [
    policy::SETTING_ENABLED,
    policy::SETTING_MAX_COUNT,
    policy::SETTING_MAX_SIZE,
    policy::SETTING_MIN_INTERVAL_NS,
    reflected_control::SETTING_LOCAL_ADDRESSES,
];
