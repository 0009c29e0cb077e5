//! The six cargo-fuzz targets (tests/fuzz), run on the stable toolchain as
//! CI's short fuzz run: the same target functions
//! (tests/fuzz/fuzz_targets/targets.rs) driven by a small mutational
//! fuzzer: seeds taken from the captures in tests/fixtures/vectors (as
//! scripts/fuzz.sh seeds libFuzzer) and the example config, then mutants of
//! them (bit flips, random and boundary octets, insertions, deletions,
//! truncation, duplication, splices) and purely random inputs.
//!
//! Time per target: `STAMP_FUZZ_SECS` (default 4); `STAMP_FUZZ_SEED` picks
//! the run (default 1, so CI is reproducible). A panic prints the target,
//! seed and the input in hex; write it to a file and replay it with
//! `cargo +nightly fuzz run <target> <file>` (scripts/fuzz.sh for long runs).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

#[path = "../fuzz/fuzz_targets/targets.rs"]
mod targets;

// The fuzz targets link every plugin through the registry.
use stamp_plugins as _;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One mutation of `seed` (sometimes spliced with `other`).
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            2 if len > 0 => {
                const EDGE: [u8; 6] = [0, 1, 0x7F, 0x80, 0xFE, 0xFF];
                let i = rng.below(len);
                v[i] = EDGE[rng.below(EDGE.len())];
            }
            3 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(i..i, bytes);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(32));
                v.drain(i..i + n);
            }
            5 => v.truncate(rng.below(len + 1)),
            6 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk = v[i..i + n].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, chunk);
            }
            7 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            _ => {
                // A 16-bit length field somewhere: big, zero or off by one.
                if len >= 2 {
                    let i = rng.below(len - 1);
                    let val = [0u16, 1, 3, 4, 0x7FFF, 0xFFFF][rng.below(6)];
                    v[i..i + 2].copy_from_slice(&val.to_be_bytes());
                }
            }
        }
    }
    v.truncate(9216);
    v
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Run `target` on every seed, then on mutants and random inputs until the
/// time is up. Returns the number of inputs run.
fn fuzz(name: &str, target: fn(&[u8]), seeds: &[Vec<u8>]) -> u64 {
    let secs = env_u64("STAMP_FUZZ_SECS", 4);
    let seed = env_u64("STAMP_FUZZ_SEED", 1);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let run = |input: &[u8]| {
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| target(input))) {
            eprintln!(
                "fuzz target {name} failed (STAMP_FUZZ_SEED={seed}) on input ({} octets):\n{}",
                input.len(),
                hex::encode(input)
            );
            std::panic::resume_unwind(e);
        }
    };
    let mut n = 0u64;
    for s in seeds {
        run(s);
        n += 1;
    }
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        for _ in 0..32 {
            let input = if seeds.is_empty() || rng.below(10) == 0 {
                let max = if rng.below(4) == 0 { 9000 } else { 300 };
                let len = rng.below(max);
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                let a = &seeds[rng.below(seeds.len())];
                let b = &seeds[rng.below(seeds.len())];
                mutate(&mut rng, a, b)
            };
            run(&input);
            n += 1;
        }
    }
    eprintln!(
        "fuzz {name}: {n} inputs ({} seeds) in {secs} s",
        seeds.len()
    );
    assert!(n > seeds.len() as u64, "{name}: no mutant ran");
    n
}

/// UDP payloads of every capture this harness can read.
fn payloads() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for name in [
        "teaparty-auth.pcap",
        "teaparty-tlvs.pcap",
        "teaparty-asym-ber.pcap",
        "rfc8762cli.pcap",
        "twampy.pcap",
    ] {
        // A capture with a framing the loader does not know is skipped.
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let got = catch_unwind(|| stamp_tests::load_vectors(name));
        std::panic::set_hook(prev);
        if let Ok(d) = got {
            out.extend(d.into_iter().map(|d| d.payload));
        }
    }
    out.sort();
    out.dedup();
    assert!(out.len() > 20, "only {} captured payloads", out.len());
    out
}

fn tlvs(area: &[u8]) -> Vec<(u8, u8, &[u8])> {
    let mut v = Vec::new();
    let mut off = 0;
    while off + 4 <= area.len() {
        let n = u16::from_be_bytes([area[off + 2], area[off + 3]]) as usize;
        if off + 4 + n > area.len() {
            break;
        }
        v.push((area[off], area[off + 1], &area[off + 4..off + 4 + n]));
        off += 4 + n;
    }
    v
}

#[test]
fn fuzz_base_packet() {
    fuzz("base_packet", targets::base_packet, &payloads());
}

#[test]
fn fuzz_tlv_iter() {
    let seeds: Vec<Vec<u8>> = payloads()
        .iter()
        .flat_map(|p| [44, 112].into_iter().filter_map(|b| p.get(b..)))
        .filter(|a| !a.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    fuzz("tlv_iter", targets::tlv_iter, &seeds);
}

#[test]
fn fuzz_tlv_handlers() {
    let mut seeds = Vec::new();
    for p in payloads() {
        for base in [44, 112] {
            for (flags, code, value) in tlvs(p.get(base..).unwrap_or_default()) {
                let mut s = vec![0, code, flags];
                s.extend_from_slice(&(value.len() as u16).to_be_bytes());
                s.extend_from_slice(value);
                seeds.push(s);
            }
        }
    }
    // Every registered handler at least once, with an empty Value.
    for pick in 0..=255u8 {
        seeds.push(vec![0, pick, 0, 0, 0]);
        seeds.push(vec![8, pick, 0, 0, 4, 1, 2, 3, 4]);
    }
    fuzz("tlv_handlers", targets::tlv_handlers, &seeds);
}

#[test]
fn fuzz_reflector_step() {
    let mut seeds = Vec::new();
    for p in payloads() {
        for sel in [
            0u8,
            1,
            2,
            8,
            16 | 2,
            4,
            32 | 1,
            32 | 8 | 4 | 1,
            32 | 2 | 1,
            64 | 32 | 1,
            64 | 32 | 4 | 2 | 1,
        ] {
            let mut s = vec![sel];
            s.extend_from_slice(&p);
            seeds.push(s);
        }
    }
    // Authenticated requests of the SSID that has its own key (bit 6).
    for p in payloads().into_iter().filter(|p| p.len() >= 112) {
        let mut s = vec![64 | 32 | 1];
        s.extend_from_slice(&p);
        s[1 + 26..1 + 28].copy_from_slice(&targets::common::SSID_WITH_KEY.to_be_bytes());
        seeds.push(s);
    }
    fuzz("reflector_step", targets::reflector_step, &seeds);
}

#[test]
fn fuzz_sender_reply() {
    let mut seeds = Vec::new();
    for p in payloads() {
        for sel in [0u8, 1, 2, 4] {
            let mut s = vec![sel];
            s.extend_from_slice(&p);
            seeds.push(s);
        }
    }
    fuzz("sender_reply", targets::sender_reply, &seeds);
}

#[test]
fn fuzz_config_loader() {
    let example =
        std::fs::read(stamp_tests::repo_root().join("packaging/stamp.toml")).expect("stamp.toml");
    let mut seeds = Vec::new();
    for sel in [0u8, 1] {
        let mut s = vec![sel];
        s.extend_from_slice(&example);
        seeds.push(s);
    }
    seeds.push(
        b"\x01stateful_reflector = true\nmax_pps = 100\nreflector_rate_burst = 10\nglobal_max_pps = 1000\nmax_sessions = 4\nuser = \"nobody\"\n".to_vec(),
    );
    seeds.push(b"\x00remote_addr = [\"192.0.2.1\"]\ncount = 5\nsend_delay = 10\n".to_vec());
    fuzz("config_loader", targets::config_loader, &seeds);
}
