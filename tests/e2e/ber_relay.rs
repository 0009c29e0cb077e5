//! Bit error rate TLVs (draft-gandhi-ippm-stamp-ber) through the impairment
//! relay: the relay flips known bits of the Extra Padding on the way to the
//! reflector and/or back, and the sender's report must equal the relay's
//! record exactly, packet by packet: the reflector's Bit Error Count and
//! Maximum Bit Error Burst (forward path), and the sender's own count of the
//! reply's padding against the pattern (reverse path: the reflector repairs
//! the padding before replying, draft §5).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use stamp_tests::relay::{Action, Impairment, Record, Relay};
use stamp_tests::{json_lines, run, Reflector};

/// `--ber` with the default 64 octets of FF00: base 44, Bit Pattern TLV 6,
/// Bit Error Count 8, Maximum Burst 8, Extra Padding header 4, so the
/// padding is octets 70..134 of the datagram, both ways.
const LEN: usize = 134;
const PADDING: (usize, usize) = (70, 134);
const PACKETS: usize = 12;

fn corrupting(bits: u32, probability: f64) -> Impairment {
    Impairment {
        corrupt: probability,
        corrupt_bits: bits,
        corrupt_range: PADDING,
        ..Impairment::none()
    }
}

/// Errors and longest run of consecutive flipped bits of one datagram.
fn expected(a: &Action) -> (u64, u64) {
    let mut burst = 0u64;
    let mut run = 0u64;
    let mut prev: Option<usize> = None;
    for &b in &a.flipped {
        run = if prev.is_some_and(|p| p + 1 == b) {
            run + 1
        } else {
            1
        };
        burst = burst.max(run);
        prev = Some(b);
    }
    (a.flipped.len() as u64, burst)
}

/// Run the sender through `forward` / `backward`; returns the received
/// packet lines (by sequence number) and the relay's record.
fn measure(forward: Impairment, backward: Impairment, seed: u64) -> (Vec<Value>, Record) {
    let refl = Reflector::start(&["-S", "127.0.0.1"]);
    let relay = Relay::start(
        "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        refl.addr,
        forward,
        backward,
        seed,
    );
    let out = run(
        "stamp-suite",
        &[
            "-r",
            &relay.addr().to_string(),
            "-c",
            &PACKETS.to_string(),
            "-d",
            "20",
            "-L",
            "2",
            "--ber",
            "-R",
            "--output-format",
            "json",
        ],
        &[],
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = relay.stop();
    let mut packets: Vec<Value> = json_lines(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .filter(|v| v["type"] == "packet" && v["status"] == "received")
        .collect();
    packets.sort_by_key(|p| p["seq"].as_u64());
    assert_eq!(packets.len(), PACKETS, "every packet answered once");
    for p in &packets {
        assert_eq!(p["len"], LEN, "padding layout assumed by the relay range");
    }
    (packets, record)
}

fn tlv<'a>(p: &'a Value, name: &str) -> &'a Value {
    p["tlvs"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {p}"))
}

#[test]
fn forward_bit_errors_counted_by_the_reflector_equal_the_relay_record() {
    let (packets, record) = measure(corrupting(24, 0.75), Impairment::none(), 7);
    assert_eq!(record.forward.seen(), PACKETS);
    let mut total = 0;
    let mut longest = 0;
    for p in &packets {
        let seq = p["seq"].as_u64().unwrap() as usize;
        let (errors, burst) = expected(&record.forward.0[seq]);
        let ber = tlv(p, "ber");
        assert_eq!(ber["flags"], "-", "{p}");
        assert_eq!(ber["errors"], errors, "seq {seq}: {ber}");
        assert_eq!(tlv(p, "ber-burst")["burst"], burst, "seq {seq}");
        // Nothing flipped on the way back: the repaired padding is clean.
        assert_eq!(ber["reverse_errors"], 0, "seq {seq}: {ber}");
        total += errors;
        longest = longest.max(burst);
    }
    // The relay really did something (and clean packets count 0).
    assert_eq!(total, record.forward.bits_flipped() as u64);
    assert!(total >= 24, "{total}");
    assert!(
        record.forward.0.iter().any(|a| a.flipped.is_empty()),
        "some packets pass clean"
    );
    // Adjacent flips happened (a burst longer than one bit was measured).
    assert!(longest >= 2, "{longest}");
}

#[test]
fn reverse_bit_errors_counted_by_the_sender_equal_the_relay_record() {
    // Different bits both ways; each direction's count must be its own.
    let (packets, record) = measure(corrupting(5, 1.0), corrupting(40, 0.8), 11);
    assert_eq!(record.backward.seen(), PACKETS);
    let mut reverse_total = 0;
    for p in &packets {
        let seq = p["seq"].as_u64().unwrap() as usize;
        let (errors, burst) = expected(&record.forward.0[seq]);
        let ber = tlv(p, "ber");
        assert_eq!(ber["errors"], errors, "seq {seq}: {ber}");
        assert_eq!(tlv(p, "ber-burst")["burst"], burst, "seq {seq}");
        // Replies pass the relay in sequence order on loopback.
        let (rev, rev_burst) = expected(&record.backward.0[seq]);
        assert_eq!(ber["reverse_errors"], rev, "seq {seq}: {ber}");
        assert_eq!(ber["reverse_burst"], rev_burst, "seq {seq}: {ber}");
        reverse_total += rev;
    }
    assert_eq!(reverse_total, record.backward.bits_flipped() as u64);
    assert!(reverse_total >= 40);
}
