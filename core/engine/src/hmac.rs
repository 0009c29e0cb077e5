//! HMAC-SHA-256 truncated to 128 bits (RFC 8762 §4.4, RFC 8972 §4.8,
//! RFC 4868 §2.3). The key schedule runs once per key; each packet clones
//! the keyed state, so no per-packet key setup and no allocation.

use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};

/// Length of the truncated tag on the wire.
pub const TAG_LEN: usize = 16;

/// SHA-256 block length.
const BLOCK: usize = 64;

/// SHA-256 initial hash value (FIPS 180-4 §5.3.3).
const H0: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// A keyed HMAC-SHA-256 state (RFC 2104 §2): the SHA-256 chaining values
/// after the inner (key ⊕ ipad) and outer (key ⊕ opad) blocks, computed
/// once per key. A tag then costs the compressions of the message, its
/// padding and one outer block, run straight on `sha2::compress256`
/// (SHA-NI where the CPU has it) over a stack buffer: no state clone, no
/// buffered-digest bookkeeping. Cross-checked against the `hmac` crate in
/// the tests.
#[derive(Clone)]
pub struct HmacKey {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

fn compress(state: &mut [u32; 8], block: &[u8; BLOCK]) {
    sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

impl HmacKey {
    /// Key the HMAC. Any length is accepted here (RFC 2104 §3: a key longer
    /// than a block is hashed first); the command line enforces its own
    /// minimum (captures from other peers use short keys).
    pub fn new(key: &[u8]) -> Self {
        let mut k = [0u8; BLOCK];
        if key.len() > BLOCK {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| {
            let mut b = [0u8; BLOCK];
            for (d, s) in b.iter_mut().zip(k) {
                *d = s ^ byte;
            }
            let mut state = H0;
            compress(&mut state, &b);
            state
        };
        HmacKey {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    /// The full 32-octet HMAC-SHA-256 over the concatenation of `parts`.
    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut state = self.inner;
        let mut buf = [0u8; BLOCK];
        let mut fill = 0;
        // The key block counts towards the message length.
        let mut total = BLOCK as u64;
        for part in parts {
            let mut p: &[u8] = part;
            total += p.len() as u64;
            if fill > 0 {
                let take = (BLOCK - fill).min(p.len());
                buf[fill..fill + take].copy_from_slice(&p[..take]);
                fill += take;
                p = &p[take..];
                if fill < BLOCK {
                    continue;
                }
                compress(&mut state, &buf);
            }
            let mut blocks = p.chunks_exact(BLOCK);
            for b in &mut blocks {
                compress(&mut state, b.try_into().expect("64-octet chunk"));
            }
            let rest = blocks.remainder();
            buf[..rest.len()].copy_from_slice(rest);
            fill = rest.len();
        }
        // FIPS 180-4 §5.1.1: 0x80, zeros, the length in bits.
        buf[fill] = 0x80;
        buf[fill + 1..].fill(0);
        if fill + 1 > BLOCK - 8 {
            compress(&mut state, &buf);
            buf = [0u8; BLOCK];
        }
        buf[BLOCK - 8..].copy_from_slice(&(total * 8).to_be_bytes());
        compress(&mut state, &buf);

        let mut outer_block = [0u8; BLOCK];
        for (d, w) in outer_block.chunks_exact_mut(4).zip(state) {
            d.copy_from_slice(&w.to_be_bytes());
        }
        outer_block[32] = 0x80;
        outer_block[BLOCK - 8..].copy_from_slice(&(((BLOCK + 32) as u64) * 8).to_be_bytes());
        let mut out_state = self.outer;
        compress(&mut out_state, &outer_block);
        let mut out = [0u8; 32];
        for (d, w) in out.chunks_exact_mut(4).zip(out_state) {
            d.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// The 16-octet tag over the concatenation of `parts`.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; TAG_LEN] {
        let full = self.mac(parts);
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&full[..TAG_LEN]);
        out
    }

    /// Check a 16-octet tag over `parts` in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        if tag.len() != TAG_LEN {
            return false;
        }
        let full = self.mac(parts);
        // Every octet is compared whatever the first difference; black_box
        // keeps the compiler from turning the fold into an early exit.
        let diff = full[..TAG_LEN]
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| std::hint::black_box(acc | (a ^ b)));
        diff == 0
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

    // RFC 4231 test case 6: a 131-octet key (hashed first).
    #[test]
    fn matches_rfc4231_case_6_long_key() {
        let k = HmacKey::new(&[0xaa; 131]);
        let tag = k.tag(&[b"Test Using Larger Than Block-Size Key - Hash Key First"]);
        assert_eq!(hex::encode(tag), "60e431591ee0b67f0d8a26aacbf5b77f");
    }

    /// Against the `hmac` crate for every message length around the block
    /// and padding boundaries, split into parts at odd places.
    #[test]
    fn agrees_with_the_hmac_crate() {
        use hmac::{Hmac, Mac};
        for key_len in [0usize, 1, 16, 32, 63, 64, 65, 200] {
            let key: Vec<u8> = (0..key_len).map(|i| (i * 7 + 3) as u8).collect();
            let ours = HmacKey::new(&key);
            for len in 0..200usize {
                let msg: Vec<u8> = (0..len).map(|i| (i * 31 + key_len) as u8).collect();
                let mut theirs = Hmac::<Sha256>::new_from_slice(&key).unwrap();
                theirs.update(&msg);
                let want = theirs.finalize().into_bytes();
                let cut = len / 3;
                let cut2 = (2 * len) / 3;
                let got = ours.tag(&[&msg[..cut], &msg[cut..cut2], &[], &msg[cut2..]]);
                assert_eq!(&got[..], &want[..TAG_LEN], "key {key_len} len {len}");
                assert!(ours.verify(&[&msg], &want[..TAG_LEN]));
            }
        }
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
