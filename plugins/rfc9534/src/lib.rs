//! STAMP Micro-session ID TLV for LAG member links, RFC 9534.
//!
//! | Key | Code | Module | RFC 9534 |
//! | --- | --- | --- | --- |
//! | `micro-session-id` | 11 | [`micro_session`] | §3 |
//!
//! The code is assigned by IANA, so it is not configurable.
//!
//! Sender options ([`SENDER_OPTION_KEYS`]): `micro-session-id` (the sender's
//! member-link ID) and `reflector-member-link-id` (the reflector's ID the
//! sender expects; `--tlv-opt` on the sender). Reflector plugin settings
//! ([`PLUGIN_SETTING_KEYS`]): `reflector-member-link-id`,
//! `reflector-member-link-id-by-addr` (`ADDR=ID,…`),
//! `reflector-member-link-id-by-ifindex` (`IFINDEX=ID,…`).
//!
//! Sending each micro session on its member link (RFC 9534 §3.1) is the
//! driver's job (binding the socket to the member interface); this crate
//! only fills and checks the IDs.
//!
//! Linking: a binary must name this crate (`use stamp_tlv_rfc9534 as _;`) or
//! its registration is not linked.
#![forbid(unsafe_code)]

pub mod micro_session;

mod options;

#[cfg(test)]
mod end_to_end;
#[cfg(test)]
mod test_support;

/// Every sender option key the handler of this crate reads.
pub const SENDER_OPTION_KEYS: [&str; 2] = [
    micro_session::OPT_MICRO_SESSION_ID,
    micro_session::OPT_REFLECTOR_ID,
];

/// Every reflector plugin setting the factory of this crate reads.
pub const PLUGIN_SETTING_KEYS: [&str; 3] = [
    micro_session::SETTING_REFLECTOR_ID,
    micro_session::SETTING_ID_BY_ADDR,
    micro_session::SETTING_ID_BY_IFINDEX,
];
