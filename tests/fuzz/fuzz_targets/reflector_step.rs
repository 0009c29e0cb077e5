#![no_main]
//! See [`targets::reflector_step`].

use libfuzzer_sys::fuzz_target;

#[path = "targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::reflector_step(data));
