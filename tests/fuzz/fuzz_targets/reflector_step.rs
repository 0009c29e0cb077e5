#![no_main]
//! The whole reflector step: request bytes in (octet 0 picks the variant:
//! mode, stateful, TLV HMAC, asymmetrical policy, TTL), reply out,
//! re-parsed and checked.

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, request)) = data.split_first() else {
        return;
    };
    common::step_and_check(sel, request);
});
