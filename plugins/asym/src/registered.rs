//! The plugin record this crate links in: one configurable draft code.

use std::collections::BTreeMap;

use stamp_core::registry::{linked_plugins, PluginSettings};
use stamp_core::Registry;
use stamp_wire::TlvType;

#[test]
fn one_configurable_type_12_is_registered() {
    let mine: Vec<(&str, u8, bool)> = linked_plugins()
        .into_iter()
        .filter(|p| p.crate_name == env!("CARGO_PKG_NAME"))
        .map(|p| (p.key, p.code, p.configurable_code))
        .collect();
    assert_eq!(mine, [("reflected-test-packet-control", 12, true)]);
    for p in linked_plugins() {
        assert!(
            p.spec.starts_with("draft-ietf-ippm-asymmetrical-pkts-14 §"),
            "{}: {}",
            p.key,
            p.spec
        );
    }
}

#[test]
fn the_code_can_be_moved() {
    let mut ov = BTreeMap::new();
    ov.insert("reflected-test-packet-control".to_string(), 250u8);
    let reg = Registry::from_linked(&PluginSettings::new(), &ov).unwrap();
    assert!(reg.get(TlvType(12)).is_none());
    assert_eq!(
        reg.get(TlvType(250)).map(|h| h.tlv_type()),
        Some(TlvType(250))
    );
}

#[test]
fn bad_settings_fail_the_registry_with_the_plugin_named() {
    for (k, v, msg) in [
        (
            "reflected-control-max-size",
            "9001",
            "--reflected-control-max-size 9001: must be 1..9000 octets",
        ),
        (
            "local-addresses",
            "x",
            "--local-addresses x: \"x\": expected an IPv4 or IPv6 address",
        ),
    ] {
        let mut s = PluginSettings::new();
        s.set(k, v);
        let e = Registry::from_linked(&s, &BTreeMap::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("TLV plugin reflected-test-packet-control: {msg}")
        );
    }
}

#[test]
fn option_key_lists_are_exact() {
    assert_eq!(
        crate::SENDER_OPTION_KEYS,
        [
            "reflected-control-count",
            "reflected-control-length",
            "reflected-control-interval-ns",
            "reflected-control-l3-group",
        ]
    );
    assert_eq!(
        crate::PLUGIN_SETTING_KEYS,
        [
            "reflected-control-enabled",
            "reflected-control-max-count",
            "reflected-control-max-size",
            "reflected-control-min-interval-ns",
            "local-addresses",
        ]
    );
}
