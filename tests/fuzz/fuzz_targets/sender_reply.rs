#![no_main]
//! See [`targets::sender_reply`].

use libfuzzer_sys::fuzz_target;

#[path = "targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::sender_reply(data));
