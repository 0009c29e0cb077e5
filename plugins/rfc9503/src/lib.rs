//! STAMP TLV handlers for segment-routing networks, RFC 9503.
//!
//! | Key | Code | Module | RFC 9503 |
//! | --- | --- | --- | --- |
//! | `destination-node-address` | 9 | [`destination_node_address`] | §3 |
//! | `return-path` | 10 | [`return_path`] | §4 (sub-TLVs §4.1) |
//!
//! Both codes are assigned by IANA (§7), so neither is configurable.
//!
//! Sender options ([`SENDER_OPTION_KEYS`]): `dest-node-addr`,
//! `return-path-cc`, `return-address`, `return-sr-mpls-labels`,
//! `return-srv6-sids`. Reflector plugin settings ([`PLUGIN_SETTING_KEYS`]):
//! `local-addresses`, the host's own addresses that a Destination Node
//! Address may name (the driver fills it from the interfaces; the address a
//! request arrived on always counts).
//!
//! SRv6 segment lists are honoured with a Segment Routing Header when the
//! plugin setting `srv6-return-path` is true (the Linux binaries set it;
//! the driver sends such replies with a sticky IPV6_RTHDR). What a
//! UDP-socket reflector cannot do (see [`return_path`]): reply along an
//! SR-MPLS label stack; such requests are answered on the normal path with
//! U on the Return Path TLV (§4).
//!
//! Linking: a binary must name this crate (`use stamp_tlv_rfc9503 as _;`) or
//! its registrations are not linked.
#![forbid(unsafe_code)]

pub mod destination_node_address;
pub mod return_path;

mod options;

#[cfg(test)]
mod end_to_end;
#[cfg(test)]
mod registered;
#[cfg(test)]
mod test_support;

/// Every sender option key the handlers of this crate read.
pub const SENDER_OPTION_KEYS: [&str; 5] = [
    destination_node_address::OPT_DEST_NODE_ADDR,
    return_path::OPT_RETURN_PATH_CC,
    return_path::OPT_RETURN_ADDRESS,
    return_path::OPT_RETURN_SR_MPLS_LABELS,
    return_path::OPT_RETURN_SRV6_SIDS,
];

/// Every reflector plugin setting the factories of this crate read.
pub const PLUGIN_SETTING_KEYS: [&str; 3] = [
    destination_node_address::SETTING_LOCAL_ADDRESSES,
    return_path::SETTING_SRV6_RETURN_PATH,
    return_path::SETTING_RETURN_ADDRESS_REDIRECT,
];
