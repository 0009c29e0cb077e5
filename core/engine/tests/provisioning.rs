//! Provisioned sessions (RFC 8972 §3) through `Reflector::process`: with
//! sessions provisioned, requests that match none are discarded and
//! counted, before any HMAC or session work; without, all are answered.

use std::net::SocketAddr;
use std::time::Instant;

use stamp_core::clock::{ManualClock, UnixNanos};
use stamp_core::hmac::HmacKey;
use stamp_core::provision::{Provisioning, SessionSpec};
use stamp_core::reflector::{DropReason, Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::Registry;
use stamp_core::transport::RecvMeta;
use stamp_wire::{AuthMode, TimestampFormat, MAX_DATAGRAM};

const T0: u64 = 1_763_800_000_000_000_000;

/// An unauthenticated request of `len` octets with `ssid` at octets 14..16.
fn open_request(len: usize, ssid: u16) -> Vec<u8> {
    let mut v = vec![0u8; len];
    if len >= 16 {
        v[14..16].copy_from_slice(&ssid.to_be_bytes());
    }
    v
}

fn provisioned(specs: &[&str]) -> Provisioning {
    Provisioning::new(specs.iter().map(|s| s.parse::<SessionSpec>().unwrap()))
}

fn send(r: &mut Reflector, req: &[u8], src: &str) -> Outcome {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let src: SocketAddr = src.parse().unwrap();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    r.process(
        req,
        &RecvMeta::new(req.len(), src),
        Instant::now(),
        &clock,
        &mut buf,
    )
}

fn answered(o: Outcome) -> bool {
    matches!(o, Outcome::Reply { .. })
}

#[test]
fn only_provisioned_sessions_are_answered_and_the_rest_counted() {
    let cfg = ReflectorConfig {
        stateful: true,
        provisioning: provisioned(&["5@192.0.2.0/24", "6@[2001:db8::1]:4000", "0@198.51.100.7"]),
        ..Default::default()
    };
    let mut r = Reflector::new(cfg, Registry::empty());
    assert!(answered(send(
        &mut r,
        &open_request(44, 5),
        "192.0.2.10:5000"
    )));
    assert!(answered(send(
        &mut r,
        &open_request(44, 6),
        "[2001:db8::1]:4000"
    )));
    assert!(answered(send(
        &mut r,
        &open_request(44, 0),
        "198.51.100.7:862"
    )));
    // A base STAMP (no SSID) TWAMP-Light request too short to hold one.
    assert!(answered(send(
        &mut r,
        &open_request(14, 0),
        "198.51.100.7:862"
    )));
    for (req, src) in [
        (open_request(44, 5), "192.0.3.10:5000"), // outside the prefix
        (open_request(44, 6), "[2001:db8::1]:4001"), // other port
        (open_request(44, 7), "192.0.2.10:5000"), // SSID not provisioned
        (open_request(44, 0), "192.0.2.10:5000"), // no SSID, other host
        (open_request(14, 0), "192.0.2.10:5000"),
    ] {
        assert_eq!(
            send(&mut r, &req, src),
            Outcome::Drop(DropReason::NotProvisioned),
            "{src}"
        );
    }
    let st = r.stats();
    assert_eq!(st.reflected, 4);
    assert_eq!(st.dropped_not_provisioned, 5);
    assert_eq!(st.dropped(DropReason::NotProvisioned), 5);
    assert_eq!(DropReason::NotProvisioned.label(), "not_provisioned");
    // No session was created for a discarded request.
    assert_eq!(st.sessions_created, 3, "5, 6 and the base-packet sender");
}

#[test]
fn nothing_provisioned_answers_every_request() {
    let mut r = Reflector::new(ReflectorConfig::default(), Registry::empty());
    for ssid in [0, 5, 7, 65535] {
        assert!(answered(send(
            &mut r,
            &open_request(44, ssid),
            "203.0.113.1:1"
        )));
    }
    assert_eq!(r.stats().dropped_not_provisioned, 0);
}

#[test]
fn authenticated_requests_are_matched_on_their_ssid_before_the_hmac() {
    let key = HmacKey::new(&[7u8; 32]);
    let cfg = ReflectorConfig {
        mode: AuthMode::Authenticated,
        key: Some(key.clone()),
        provisioning: provisioned(&["9"]),
        ..Default::default()
    };
    let mut r = Reflector::new(cfg, Registry::empty());
    // Authenticated request: SSID at octets 26..28, HMAC over 0..96 at 96.
    let request = |ssid: u16| {
        let mut v = vec![0u8; 112];
        v[26..28].copy_from_slice(&ssid.to_be_bytes());
        let tag = key.tag(&[&v[..96]]);
        v[96..112].copy_from_slice(&tag);
        v
    };
    assert!(answered(send(&mut r, &request(9), "192.0.2.1:1")));
    assert_eq!(
        send(&mut r, &request(8), "192.0.2.1:1"),
        Outcome::Drop(DropReason::NotProvisioned)
    );
    // A provisioned SSID with a bad HMAC is still an authentication failure.
    let mut forged = request(9);
    forged[100] ^= 1;
    assert_eq!(
        send(&mut r, &forged, "192.0.2.1:1"),
        Outcome::Drop(DropReason::AuthFailed)
    );
}
