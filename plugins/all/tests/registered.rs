//! The registry holds exactly the plugins of the enabled features: a plugin
//! whose crate silently failed to link (its `inventory` records vanish) or
//! an unexpected extra one fails here. CI runs this for every feature set.

use std::collections::BTreeMap;

use stamp_core::registry::{linked_plugins, Registry};
use stamp_core::TlvOptions;

#[test]
fn registry_holds_exactly_the_enabled_plugins() {
    stamp_plugins::link();
    let mut linked: Vec<(&str, u8)> = linked_plugins().iter().map(|p| (p.key, p.code)).collect();
    linked.sort();
    let mut expected = stamp_plugins::expected_plugins();
    expected.sort();
    assert_eq!(linked, expected);
    let reg = Registry::from_linked(&TlvOptions::new(), &BTreeMap::new())
        .expect("no duplicate or reserved code");
    assert_eq!(reg.entries().len(), expected.len());
    for (key, code) in expected {
        assert_eq!(reg.code_of(key).map(|t| t.0), Some(code), "{key}");
    }
}
