//! TLV handler plugins and the registry built from them.
//!
//! A plugin crate declares one [`TlvPlugin`] record per TLV type with
//! [`register_tlv!`](crate::register_tlv); `inventory` collects the records
//! of every crate linked into the binary. At start-up [`Registry`] builds a
//! 256-slot table from them, refusing duplicate codes and the codes the core
//! owns (0 and 255 are reserved, 8 is the HMAC TLV, handled by the engine).
//!
//! Linking pitfall: a plugin crate only named in Cargo.toml is not linked and
//! its records vanish. Name it with `use plugin_crate as _;`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use stamp_wire::TlvType;

use crate::handler::TlvHandler;

/// Settings given to plugin factories on the reflector (`key -> value`, for
/// example `reflector-member-link-id -> 7`).
pub type PluginSettings = crate::handler::TlvOptions;

/// Builds a handler for the (possibly reconfigured) type `code`.
pub type HandlerFactory =
    fn(code: TlvType, settings: &PluginSettings) -> Result<Box<dyn TlvHandler>, String>;

/// The record a plugin submits for one TLV type.
#[derive(Debug)]
pub struct TlvPlugin {
    /// Stable key (`class-of-service`), used to reconfigure draft codes.
    pub key: &'static str,
    /// Type code used unless reconfigured.
    pub code: u8,
    /// Human name.
    pub name: &'static str,
    /// Specification and section.
    pub spec: &'static str,
    /// Crate that registered it.
    pub crate_name: &'static str,
    /// The code is experimental / not assigned by IANA and may be changed
    /// with a code override.
    pub configurable_code: bool,
    /// Factory.
    pub factory: HandlerFactory,
}

inventory::collect!(TlvPlugin);

/// Register a TLV handler plugin. Call it at module level in a plugin crate:
///
/// ```ignore
/// stamp_core::register_tlv! {
///     key: "class-of-service",
///     code: 4,
///     name: "Class of Service",
///     spec: "RFC 8972 §4.4",
///     configurable_code: false,
///     factory: |code, _settings| Ok(Box::new(CosHandler { code })),
/// }
/// ```
#[macro_export]
macro_rules! register_tlv {
    (key: $key:expr, code: $code:expr, name: $name:expr, spec: $spec:expr, configurable_code: $cfg:expr, factory: $factory:expr $(,)?) => {
        $crate::inventory::submit! {
            $crate::registry::TlvPlugin {
                key: $key,
                code: $code,
                name: $name,
                spec: $spec,
                crate_name: env!("CARGO_PKG_NAME"),
                configurable_code: $cfg,
                factory: $factory,
            }
        }
    };
}

/// Every plugin record linked into this binary.
pub fn linked_plugins() -> Vec<&'static TlvPlugin> {
    let mut v: Vec<_> = inventory::iter::<TlvPlugin>.into_iter().collect();
    v.sort_by_key(|p| (p.code, p.key));
    v
}

/// Why a registry could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two plugins claim the same code.
    #[error("TLV type {code} is claimed by both {first} and {second}")]
    Duplicate {
        /// The code.
        code: u8,
        /// The plugin registered first.
        first: String,
        /// The plugin refused.
        second: String,
    },
    /// A plugin claims 0, 255 or 8.
    #[error("TLV type {code} ({key}) is reserved for the core")]
    Reserved {
        /// The code.
        code: u8,
        /// The plugin.
        key: String,
    },
    /// A code override names an unknown plugin or a fixed code.
    #[error("cannot set the TLV code of {key:?}: {reason}")]
    Override {
        /// The plugin key in the override.
        key: String,
        /// Why.
        reason: String,
    },
    /// A factory refused its settings.
    #[error("TLV plugin {key}: {reason}")]
    Factory {
        /// The plugin.
        key: String,
        /// Its message.
        reason: String,
    },
}

/// One row of `--list-tlvs`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistryEntry {
    /// Type code in effect.
    pub code: u8,
    /// Plugin key.
    pub key: &'static str,
    /// Human name.
    pub name: &'static str,
    /// Specification.
    pub spec: &'static str,
    /// Crate.
    pub crate_name: &'static str,
}

/// Codes the engine handles itself.
pub const CORE_CODES: [u8; 3] = [0, 8, 255];

/// The handler table: 256 slots, one per type code.
#[derive(Clone)]
pub struct Registry {
    slots: Vec<Option<Arc<dyn TlvHandler>>>,
    entries: Vec<RegistryEntry>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("entries", &self.entries)
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::empty()
    }
}

impl Registry {
    /// A registry with no handler: every TLV but HMAC comes back with U.
    pub fn empty() -> Self {
        Registry {
            slots: vec![None; 256],
            entries: Vec::new(),
        }
    }

    /// Build from every plugin linked into the binary.
    pub fn from_linked(
        settings: &PluginSettings,
        overrides: &BTreeMap<String, u8>,
    ) -> Result<Self, RegistryError> {
        Self::from_plugins(linked_plugins(), settings, overrides)
    }

    /// Build from the given records (tests build registries by hand).
    pub fn from_plugins<'a>(
        plugins: impl IntoIterator<Item = &'a TlvPlugin>,
        settings: &PluginSettings,
        overrides: &BTreeMap<String, u8>,
    ) -> Result<Self, RegistryError> {
        let plugins: Vec<&TlvPlugin> = plugins.into_iter().collect();
        for key in overrides.keys() {
            match plugins.iter().find(|p| p.key == key) {
                None => {
                    return Err(RegistryError::Override {
                        key: key.clone(),
                        reason: "no such TLV plugin is linked".into(),
                    })
                }
                Some(p) if !p.configurable_code => {
                    return Err(RegistryError::Override {
                        key: key.clone(),
                        reason: format!("type {} is assigned by IANA and fixed", p.code),
                    })
                }
                Some(_) => {}
            }
        }
        let mut reg = Registry::empty();
        for p in plugins {
            let code = overrides.get(p.key).copied().unwrap_or(p.code);
            let handler =
                (p.factory)(TlvType(code), settings).map_err(|reason| RegistryError::Factory {
                    key: p.key.to_string(),
                    reason,
                })?;
            reg.insert(p.key, p.name, p.spec, p.crate_name, code, handler)?;
        }
        Ok(reg)
    }

    /// Add one handler.
    pub fn insert(
        &mut self,
        key: &'static str,
        name: &'static str,
        spec: &'static str,
        crate_name: &'static str,
        code: u8,
        handler: Box<dyn TlvHandler>,
    ) -> Result<(), RegistryError> {
        if CORE_CODES.contains(&code) {
            return Err(RegistryError::Reserved {
                code,
                key: key.to_string(),
            });
        }
        if let Some(first) = self.entries.iter().find(|e| e.code == code) {
            return Err(RegistryError::Duplicate {
                code,
                first: format!("{} ({})", first.key, first.crate_name),
                second: format!("{key} ({crate_name})"),
            });
        }
        self.slots[code as usize] = Some(Arc::from(handler));
        self.entries.push(RegistryEntry {
            code,
            key,
            name,
            spec,
            crate_name,
        });
        self.entries.sort_by_key(|e| e.code);
        Ok(())
    }

    /// The handler for `t`, if any.
    #[inline]
    pub fn get(&self, t: TlvType) -> Option<&dyn TlvHandler> {
        self.slots[t.0 as usize].as_deref()
    }

    /// The listing, ordered by code.
    pub fn entries(&self) -> &[RegistryEntry] {
        &self.entries
    }

    /// Handlers in code order.
    pub fn handlers(&self) -> impl Iterator<Item = (&RegistryEntry, &dyn TlvHandler)> {
        self.entries
            .iter()
            .filter_map(|e| self.slots[e.code as usize].as_deref().map(|h| (e, h)))
    }

    /// Code of the plugin `key`, if registered.
    pub fn code_of(&self, key: &str) -> Option<TlvType> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| TlvType(e.code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::{ReflectContext, TlvSlot, TlvVerdict};

    struct Nop(TlvType);
    impl TlvHandler for Nop {
        fn tlv_type(&self) -> TlvType {
            self.0
        }
        fn reflect(&self, _: &mut TlvSlot<'_>, _: &mut ReflectContext<'_>) -> TlvVerdict {
            TlvVerdict::Processed
        }
    }

    fn plugin(key: &'static str, code: u8, configurable: bool) -> TlvPlugin {
        TlvPlugin {
            key,
            code,
            name: key,
            spec: "test",
            crate_name: "test",
            configurable_code: configurable,
            factory: |code, _| Ok(Box::new(Nop(code))),
        }
    }

    #[test]
    fn refuses_duplicate_codes() {
        let a = plugin("a", 200, false);
        let b = plugin("b", 200, false);
        let e =
            Registry::from_plugins([&a, &b], &PluginSettings::new(), &BTreeMap::new()).unwrap_err();
        assert!(
            matches!(e, RegistryError::Duplicate { code: 200, .. }),
            "{e}"
        );
    }

    #[test]
    fn refuses_core_codes() {
        for code in CORE_CODES {
            let a = plugin("a", code, false);
            let e =
                Registry::from_plugins([&a], &PluginSettings::new(), &BTreeMap::new()).unwrap_err();
            assert!(matches!(e, RegistryError::Reserved { .. }), "{code}: {e}");
        }
    }

    #[test]
    fn overrides_move_configurable_codes_only() {
        let a = plugin("draft", 241, true);
        let b = plugin("fixed", 4, false);
        let mut ov = BTreeMap::new();
        ov.insert("draft".to_string(), 250u8);
        let r = Registry::from_plugins([&a, &b], &PluginSettings::new(), &ov).unwrap();
        assert!(r.get(TlvType(250)).is_some());
        assert!(r.get(TlvType(241)).is_none());
        assert_eq!(r.get(TlvType(250)).unwrap().tlv_type(), TlvType(250));
        ov.insert("fixed".to_string(), 5u8);
        assert!(matches!(
            Registry::from_plugins([&a, &b], &PluginSettings::new(), &ov),
            Err(RegistryError::Override { .. })
        ));
        let mut ov = BTreeMap::new();
        ov.insert("nope".to_string(), 5u8);
        assert!(matches!(
            Registry::from_plugins([&a], &PluginSettings::new(), &ov),
            Err(RegistryError::Override { .. })
        ));
    }

    #[test]
    fn lists_entries_in_code_order() {
        let a = plugin("z", 9, false);
        let b = plugin("y", 3, false);
        let r = Registry::from_plugins([&a, &b], &PluginSettings::new(), &BTreeMap::new()).unwrap();
        let codes: Vec<u8> = r.entries().iter().map(|e| e.code).collect();
        assert_eq!(codes, [3, 9]);
    }
}
