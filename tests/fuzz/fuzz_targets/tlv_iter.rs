#![no_main]
//! TlvIter on arbitrary bytes: terminates, and the TLVs it yields tile the
//! area from offset 0 up to the first error (or the end).

use libfuzzer_sys::fuzz_target;
use stamp_wire::tlv::HEADER_LEN;
use stamp_wire::{Tlv, TlvError, TlvIter};

fuzz_target!(|data: &[u8]| {
    let mut expect = 0usize;
    let mut errored = false;
    let mut steps = 0usize;
    for item in TlvIter::new(data) {
        steps += 1;
        assert!(
            steps <= data.len() / HEADER_LEN + 1,
            "iteration does not terminate"
        );
        assert!(!errored, "item after an error");
        match item {
            Ok(t) => {
                assert_eq!(t.offset, expect);
                let view = Tlv::new_checked(&data[t.offset..]).unwrap();
                assert_eq!(view.value(), t.value);
                assert_eq!(view.flags(), t.flags);
                assert_eq!(view.tlv_type(), t.tlv_type);
                expect += t.total_len();
                assert!(expect <= data.len());
                // Sub-TLVs of the value iterate too.
                for _ in TlvIter::new(t.value) {}
            }
            Err((off, e)) => {
                assert_eq!(off, expect);
                let rest = data.len() - off;
                match e {
                    TlvError::TruncatedHeader => assert!(rest < HEADER_LEN),
                    TlvError::ValueOverrun => assert!(rest >= HEADER_LEN),
                }
                errored = true;
            }
        }
    }
    if !errored {
        assert_eq!(expect, data.len());
    }
});
