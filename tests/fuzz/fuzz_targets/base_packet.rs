#![no_main]
//! See [`targets::base_packet`].

use libfuzzer_sys::fuzz_target;

#[path = "targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::base_packet(data));
