//! STAMP TLV handlers for the TLVs of RFC 8972 §4.1–§4.7.
//!
//! One module per TLV, each with a [`stamp_core::TlvHandler`] registered with
//! [`stamp_core::register_tlv!`]:
//!
//! | Key | Code | Module | RFC 8972 |
//! | --- | --- | --- | --- |
//! | `extra-padding` | 1 | [`extra_padding`] | §4.1 |
//! | `location` | 2 | [`location`] | §4.2 |
//! | `timestamp-information` | 3 | [`timestamp_information`] | §4.3 |
//! | `class-of-service` | 4 | [`class_of_service`] | §4.4 |
//! | `direct-measurement` | 5 | [`direct_measurement`] | §4.5 |
//! | `access-report` | 6 | [`access_report`] | §4.6 |
//! | `follow-up-telemetry` | 7 | [`follow_up_telemetry`] | §4.7 |
//!
//! The HMAC TLV (type 8, §4.8) belongs to the engine and is not registered
//! here. All codes are assigned by IANA (§5.1), so none is configurable.
//!
//! Sender options (see [`SENDER_OPTION_KEYS`]) are read from
//! [`stamp_core::TlvOptions`]; the reflector plugin settings (see
//! [`PLUGIN_SETTING_KEYS`]) are [`class_of_service::SETTING_ALLOWED_DSCP`]
//! and [`location::SETTING_HIDE`].
//!
//! Linking: a binary must name this crate (`use stamp_tlv_rfc8972 as _;`) or
//! its registrations are not linked.
#![forbid(unsafe_code)]

pub mod access_report;
pub mod class_of_service;
pub mod direct_measurement;
pub mod extra_padding;
pub mod follow_up_telemetry;
pub mod location;
pub mod timestamp_information;

mod options;

#[cfg(test)]
mod end_to_end;
#[cfg(test)]
mod registered;
#[cfg(test)]
mod test_support;

/// Every sender option key the handlers of this crate read.
pub const SENDER_OPTION_KEYS: [&str; 11] = [
    extra_padding::OPT_PADDING,
    extra_padding::OPT_PADDING_RANDOM,
    location::OPT_LOCATION,
    timestamp_information::OPT_TIMESTAMP_INFO,
    class_of_service::OPT_COS,
    class_of_service::OPT_DSCP,
    class_of_service::OPT_ECN,
    direct_measurement::OPT_DIRECT_MEASUREMENT,
    access_report::OPT_ACCESS_REPORT,
    access_report::OPT_ACCESS_RETURN_CODE,
    follow_up_telemetry::OPT_FOLLOW_UP_TELEMETRY,
];

/// Every reflector plugin setting the factories of this crate read.
pub const PLUGIN_SETTING_KEYS: [&str; 2] = [
    class_of_service::SETTING_ALLOWED_DSCP,
    location::SETTING_HIDE,
];
