#![no_main]
//! Every registered TLV handler's `reflect` on arbitrary Values, through
//! `Reflector::process` with the linked registry: input octet 0 picks the
//! reflector variant, octet 1 the handler, octet 2 the flags, the rest is
//! the Value (and whatever TLVs follow it).

use libfuzzer_sys::fuzz_target;
use stamp_wire::tlv::emit_header;
use stamp_wire::{TlvFlags, TlvType};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (sel, pick, flags, rest) = (data[0] & !1, data[1], data[2], &data[3..]);
    // Open mode (the HMAC-less path reaches every handler).
    let reg = common::registry(sel & 8 != 0);
    let entries = reg.entries();
    if entries.is_empty() {
        return;
    }
    let code = entries[pick as usize % entries.len()].code;
    // Value length: the next two octets bound it by what is left.
    let (vlen, body) = match rest {
        [a, b, body @ ..] => (
            (u16::from_be_bytes([*a, *b]) as usize).min(body.len()),
            body,
        ),
        _ => (0, rest),
    };
    let mut req = vec![0u8; 44];
    req[0..4].copy_from_slice(&[0, 0, 0, pick]);
    req[14..16].copy_from_slice(&[0x12, 0x34]);
    let at = req.len();
    req.resize(at + 4, 0);
    emit_header(&mut req[at..], TlvFlags(flags), TlvType(code), vlen as u16);
    req.extend_from_slice(body);
    common::step_and_check(sel, &req);
});
