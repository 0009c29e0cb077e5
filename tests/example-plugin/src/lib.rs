//! An example third-party TLV plugin. It needs stamp-core alone: it defines
//! a handler and registers it with `stamp_core::register_tlv!`; nothing in
//! the core or the shipped binaries changes.
//!
//! The "Reflection Counter" TLV (experimental type 251, Length 4): the
//! sender sends zeros; the reflector writes how many requests carrying this
//! TLV it has answered so far, this one included.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use stamp_core::{
    DecodeContext, ReflectContext, TlvHandler, TlvOptions, TlvReport, TlvSlot, TlvTemplate,
    TlvVerdict,
};
use stamp_wire::{TlvFlags, TlvType};

/// The handler.
pub struct ReflectionCounter {
    code: TlvType,
    seen: AtomicU32,
}

impl TlvHandler for ReflectionCounter {
    fn tlv_type(&self) -> TlvType {
        self.code
    }

    fn reflect(&self, slot: &mut TlvSlot<'_>, _ctx: &mut ReflectContext<'_>) -> TlvVerdict {
        if slot.value().len() != 4 {
            return TlvVerdict::Malformed;
        }
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        slot.value_mut().copy_from_slice(&n.to_be_bytes());
        TlvVerdict::Processed
    }

    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        Ok(opts.flag("example-counter").then(|| TlvTemplate {
            tlv_type: self.code,
            value: vec![0; 4],
        }))
    }

    fn decode(&self, flags: TlvFlags, value: &[u8], _ctx: &DecodeContext<'_>) -> TlvReport {
        let n = <[u8; 4]>::try_from(value)
            .map(u32::from_be_bytes)
            .unwrap_or(0);
        TlvReport::new(
            self.code,
            "example",
            flags,
            format!("reflector answered {n}"),
        )
        .field("count", n)
    }
}

stamp_core::register_tlv! {
    key: "example-counter",
    code: 251,
    name: "Reflection Counter (example)",
    spec: "tests/example-plugin",
    configurable_code: true,
    factory: |code, _settings| Ok(Box::new(ReflectionCounter { code, seen: AtomicU32::new(0) })),
}
