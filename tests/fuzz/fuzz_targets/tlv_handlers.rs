#![no_main]
//! See [`targets::tlv_handlers`].

use libfuzzer_sys::fuzz_target;

#[path = "targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::tlv_handlers(data));
