#![no_main]
//! Base packet views and representations on arbitrary bytes: checked views
//! never panic, and parse then emit reproduces the fields.

use libfuzzer_sys::fuzz_target;
use stamp_wire::{AuthMode, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr};

fuzz_target!(|data: &[u8]| {
    for mode in [AuthMode::Open, AuthMode::Authenticated] {
        if let Ok(p) = SenderPacket::new_checked(data, mode) {
            let r = SenderRepr::parse(&p);
            let _ = (p.mbz_is_zero(), p.hmac(), p.hmac_input(), p.tlv_area());
            let mut copy = data.to_vec();
            let mut q = SenderPacket::new_checked(&mut copy[..], mode).unwrap();
            r.emit(&mut q);
            assert!(q.mbz_is_zero());
            assert_eq!(SenderRepr::parse(&q), r);
            if p.mbz_is_zero() {
                assert_eq!(copy, data, "emit changed a well-formed sender packet");
            }
        } else {
            assert!(data.len() < mode.base_len());
        }
        if let Ok(p) = ReflectorPacket::new_checked(data, mode) {
            let r = ReflectorRepr::parse(&p);
            let _ = (p.mbz_is_zero(), p.hmac(), p.hmac_input(), p.tlv_area());
            let mut copy = data.to_vec();
            let mut q = ReflectorPacket::new_checked(&mut copy[..], mode).unwrap();
            r.emit(&mut q);
            assert!(q.mbz_is_zero());
            assert_eq!(ReflectorRepr::parse(&q), r);
            if p.mbz_is_zero() {
                assert_eq!(copy, data, "emit changed a well-formed reflector packet");
            }
        } else {
            assert!(data.len() < mode.base_len());
        }
    }
});
