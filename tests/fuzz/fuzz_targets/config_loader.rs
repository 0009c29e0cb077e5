#![no_main]
//! See [`targets::config_loader`].

use libfuzzer_sys::fuzz_target;

#[path = "targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::config_loader(data));
