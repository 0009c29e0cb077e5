//! HMAC-SHA-256 truncated to 128 bits (RFC 8762 §4.4, RFC 8972 §4.8,
//! RFC 4868 §2.3). The key schedule runs once per key; each packet clones
//! the keyed state, so no per-packet key setup and no allocation.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of the truncated tag on the wire.
pub const TAG_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// A keyed HMAC-SHA-256 state.
#[derive(Clone)]
pub struct HmacKey {
    keyed: HmacSha256,
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

impl HmacKey {
    /// Key the HMAC. Any length is accepted here; the command line enforces
    /// its own minimum (captures from other peers use short keys).
    pub fn new(key: &[u8]) -> Self {
        // HMAC accepts keys of any length (RFC 2104 §3), so this cannot fail.
        let keyed = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
        HmacKey { keyed }
    }

    /// The 16-octet tag over the concatenation of `parts`.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; TAG_LEN] {
        let mut mac = self.keyed.clone();
        for p in parts {
            mac.update(p);
        }
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&full[..TAG_LEN]);
        out
    }

    /// Check a 16-octet tag over `parts` in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        if tag.len() != TAG_LEN {
            return false;
        }
        let mut mac = self.keyed.clone();
        for p in parts {
            mac.update(p);
        }
        mac.verify_truncated_left(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    #[test]
    fn matches_rfc4231_case_2_truncated() {
        let k = HmacKey::new(b"Jefe");
        let tag = k.tag(&[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex::encode(tag), "5bdcc146bf60754e6a042426089575c7");
        assert!(k.verify(&[b"what do ya want for nothing?"], &tag));
    }

    #[test]
    fn rejects_a_flipped_bit_and_wrong_lengths() {
        let k = HmacKey::new(&[7u8; 32]);
        let mut tag = k.tag(&[b"abc"]);
        tag[15] ^= 1;
        assert!(!k.verify(&[b"abc"], &tag));
        assert!(!k.verify(&[b"abc"], &tag[..15]));
    }
}
