//! RFC 9503 Return Path with the real binaries on loopback: a Return
//! Address sends the reply to a second local socket; an operator can refuse
//! that (`--tlv-opt return-address-redirect=false`: U, reply to the
//! source); a Control Code without the Reply Request bit suppresses the
//! reply.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use serde_json::Value;
use stamp_tests::{json_lines, json_record, sender, Reflector};

fn summary(stdout: &[u8]) -> Value {
    json_record(&String::from_utf8_lossy(stdout), "summary")
}

fn reflector_summary(stdout: &str) -> Value {
    json_record(stdout, "reflector_summary")
}

/// Datagrams that arrive at `sock` within `wait`.
fn drain(sock: &UdpSocket, wait: Duration) -> Vec<Vec<u8>> {
    let end = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return got;
        }
        sock.set_read_timeout(Some(left)).unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => got.push(buf[..n].to_vec()),
            Err(_) => return got,
        }
    }
}

/// A socket on 127.0.0.2 and a port the sender can use on 127.0.0.1.
fn second_socket() -> (UdpSocket, String) {
    let s = UdpSocket::bind("127.0.0.2:0").expect("127.0.0.2 (loopback /8)");
    let port = s.local_addr().unwrap().port().to_string();
    (s, port)
}

#[test]
fn return_address_sends_the_reply_to_a_second_local_socket() {
    let refl = Reflector::start(&["-S", "127.0.0.1", "--output-format", "json"]);
    let (other, port) = second_socket();
    let out = sender(
        "127.0.0.1",
        &refl.port(),
        &[
            "-S",
            "127.0.0.1",
            "-o",
            &port,
            "-c",
            "3",
            "-d",
            "20",
            "-L",
            "1",
            "--return-address",
            "127.0.0.2",
            "--output-format",
            "json",
        ],
    );
    // Nothing came back to the sender: every reply went to 127.0.0.2.
    let s = summary(&out.stdout);
    assert_eq!(s["received"], 0, "{s}");
    assert_eq!(out.status.code(), Some(1), "no reply at all: exit 1");
    let got = drain(&other, Duration::from_millis(500));
    assert_eq!(got.len(), 3, "replies at the Return Address");
    let mut seqs: Vec<u32> = got
        .iter()
        .map(|p| u32::from_be_bytes(p[24..28].try_into().unwrap()))
        .collect();
    seqs.sort();
    assert_eq!(seqs, [0, 1, 2], "Session-Sender Sequence Numbers reflected");
    for p in &got {
        // Return Path TLV after the 44-octet base: no U, and the Return
        // Address sub-TLV acted upon (flags clear).
        assert_eq!(&p[44..48], &[0x00, 10, 0, 8], "{p:?}");
        assert_eq!(&p[48..56], &[0x00, 2, 0, 4, 127, 0, 0, 2], "{p:?}");
    }
    let (_, text, _) = refl.interrupt();
    let r = reflector_summary(&text);
    assert_eq!(r["reflected"], 3, "{r}");
}

#[test]
fn refused_return_address_gets_u_and_the_reply_goes_back() {
    let refl = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "--tlv-opt",
        "return-address-redirect=false",
        "--output-format",
        "json",
    ]);
    let (other, port) = second_socket();
    let out = sender(
        "127.0.0.1",
        &refl.port(),
        &[
            "-S",
            "127.0.0.1",
            "-o",
            &port,
            "-c",
            "3",
            "-d",
            "20",
            "-L",
            "1",
            "-R",
            "--return-address",
            "127.0.0.2",
            "--output-format",
            "json",
        ],
    );
    let s = summary(&out.stdout);
    assert_eq!(s["received"], 3, "{s}");
    assert!(drain(&other, Duration::from_millis(300)).is_empty());
    let text = String::from_utf8_lossy(&out.stdout);
    let packets: Vec<Value> = json_lines(&text)
        .into_iter()
        .filter(|v| v["type"] == "packet")
        .collect();
    assert_eq!(packets.len(), 3);
    for p in &packets {
        let t = &p["tlvs"][0];
        assert_eq!(t["type"], 10, "{p}");
        assert!(t["flags"].as_str().unwrap().contains('U'), "{p}");
    }
}

#[test]
fn control_code_without_reply_request_suppresses_the_reply() {
    let refl = Reflector::start(&["-S", "127.0.0.1", "--output-format", "json"]);
    let out = sender(
        "127.0.0.1",
        &refl.port(),
        &[
            "-c",
            "4",
            "-d",
            "20",
            "-L",
            "1",
            "--return-path-cc",
            "0",
            "--output-format",
            "json",
        ],
    );
    let s = summary(&out.stdout);
    assert_eq!(
        (s["sent"].as_u64(), s["received"].as_u64()),
        (Some(4), Some(0)),
        "{s}"
    );
    assert_eq!(out.status.code(), Some(1));
    let (_, text, _) = refl.interrupt();
    let r = reflector_summary(&text);
    assert_eq!(r["received"], 4, "{r}");
    assert_eq!(r["suppressed"], 4, "{r}");
    assert_eq!(r["reflected"], 0, "{r}");
    // With the Reply Request bit set, the same session is answered.
    let refl = Reflector::start(&["-S", "127.0.0.1"]);
    let out = sender(
        "127.0.0.1",
        &refl.port(),
        &[
            "-c",
            "2",
            "-d",
            "20",
            "--return-path-cc",
            "1",
            "--output-format",
            "json",
        ],
    );
    assert_eq!(summary(&out.stdout)["received"], 2);
}
