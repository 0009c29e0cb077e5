//! The plugin records this crate links in: seven fixed IANA codes, none of
//! them the engine's HMAC TLV (8).

use std::collections::BTreeMap;

use stamp_core::registry::{linked_plugins, PluginSettings};
use stamp_core::Registry;
use stamp_wire::TlvType;

#[test]
fn seven_rfc8972_tlvs_are_registered_with_fixed_codes() {
    let mine: Vec<(&str, u8, bool)> = linked_plugins()
        .into_iter()
        .filter(|p| p.crate_name == env!("CARGO_PKG_NAME"))
        .map(|p| (p.key, p.code, p.configurable_code))
        .collect();
    assert_eq!(
        mine,
        [
            ("extra-padding", 1, false),
            ("location", 2, false),
            ("timestamp-information", 3, false),
            ("class-of-service", 4, false),
            ("direct-measurement", 5, false),
            ("access-report", 6, false),
            ("follow-up-telemetry", 7, false),
        ]
    );
}

#[test]
fn registry_builds_and_each_handler_owns_its_code() {
    let reg = Registry::from_linked(&PluginSettings::new(), &BTreeMap::new()).unwrap();
    for code in 1..=7u8 {
        assert_eq!(
            reg.get(TlvType(code)).map(|h| h.tlv_type()),
            Some(TlvType(code)),
            "type {code}"
        );
    }
    assert!(reg.get(TlvType::HMAC).is_none());
    for p in linked_plugins() {
        assert!(p.spec.starts_with("RFC 8972 §4."), "{}: {}", p.key, p.spec);
    }
}

#[test]
fn bad_plugin_setting_fails_the_registry_with_the_plugin_named() {
    let mut s = PluginSettings::new();
    s.set(crate::class_of_service::SETTING_ALLOWED_DSCP, "99");
    let e = Registry::from_linked(&s, &BTreeMap::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "TLV plugin class-of-service: --cos-allowed-dscp 99: DSCP must be 0..63"
    );
}

#[test]
fn option_key_lists_are_exact() {
    assert_eq!(
        crate::SENDER_OPTION_KEYS,
        [
            "padding",
            "padding-random",
            "location",
            "timestamp-info",
            "cos",
            "dscp",
            "ecn",
            "direct-measurement",
            "access-report",
            "access-return-code",
            "follow-up-telemetry",
        ]
    );
    assert_eq!(
        crate::PLUGIN_SETTING_KEYS,
        ["cos-allowed-dscp", "location-hide"]
    );
}
