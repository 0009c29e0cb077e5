//! The plugin records this crate links in: two fixed IANA codes.

use std::collections::BTreeMap;

use stamp_core::registry::{linked_plugins, PluginSettings};
use stamp_core::Registry;
use stamp_wire::TlvType;

#[test]
fn two_rfc9503_tlvs_are_registered_with_fixed_codes() {
    let mine: Vec<(&str, u8, bool)> = linked_plugins()
        .into_iter()
        .filter(|p| p.crate_name == env!("CARGO_PKG_NAME"))
        .map(|p| (p.key, p.code, p.configurable_code))
        .collect();
    assert_eq!(
        mine,
        [
            ("destination-node-address", 9, false),
            ("return-path", 10, false)
        ]
    );
    for p in linked_plugins() {
        assert!(p.spec.starts_with("RFC 9503 §"), "{}: {}", p.key, p.spec);
    }
}

#[test]
fn registry_builds_and_each_handler_owns_its_code() {
    let reg = Registry::from_linked(&PluginSettings::new(), &BTreeMap::new()).unwrap();
    for code in [9u8, 10] {
        assert_eq!(
            reg.get(TlvType(code)).map(|h| h.tlv_type()),
            Some(TlvType(code))
        );
    }
}

#[test]
fn bad_local_addresses_fail_the_registry_with_the_plugin_named() {
    let mut s = PluginSettings::new();
    s.set(
        crate::destination_node_address::SETTING_LOCAL_ADDRESSES,
        "x",
    );
    let e = Registry::from_linked(&s, &BTreeMap::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "TLV plugin destination-node-address: --local-addresses x: \"x\": expected an IPv4 or IPv6 address"
    );
}

#[test]
fn option_key_lists_are_exact() {
    assert_eq!(
        crate::SENDER_OPTION_KEYS,
        [
            "dest-node-addr",
            "return-path-cc",
            "return-address",
            "return-sr-mpls-labels",
            "return-srv6-sids",
        ]
    );
    assert_eq!(
        crate::PLUGIN_SETTING_KEYS,
        [
            "local-addresses",
            "srv6-return-path",
            "return-address-redirect"
        ]
    );
}
