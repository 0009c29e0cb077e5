#![no_main]
//! See [`targets::tlv_iter`].

use libfuzzer_sys::fuzz_target;

#[path = "targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::tlv_iter(data));
