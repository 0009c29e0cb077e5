//! Shared by the reflector-side fuzz targets: linked registries, the
//! reflector step and the checks every reply must pass.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use stamp_core::clock::{ManualClock, UnixNanos};
use stamp_core::hmac::HmacKey;
use stamp_core::provision::Provisioning;
use stamp_core::reflector::{DropReason, Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::Registry;
use stamp_core::transport::RecvMeta;
use stamp_core::TlvOptions;
use stamp_wire::{
    AuthMode, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr, TimestampFormat,
    HMAC_COVERAGE, MAX_DATAGRAM,
};

// Link every plugin so its inventory records are present.
use stamp_plugins as _;

pub const T0: u64 = 1_763_800_000_000_000_000;
pub const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
/// The own key of [`SSID_WITH_KEY`] when bit 6 of the selector is set
/// (`--hmac-key-dir`: `<ssid>.key` beside `default.key` = [`KEY`]).
pub const SSID_KEY: &[u8] = b"fedcba9876543210fedcba9876543210";
pub const SSID_WITH_KEY: u16 = 0x1234;
/// Largest reply the asymmetrical-packets policy of [`registry`] allows.
pub const ASYM_MAX_SIZE: usize = 1500;

/// The linked registry: with default plugin settings (`asym = false`), or
/// with reflected trains and longer replies allowed (`asym = true`).
pub fn registry(asym: bool) -> Registry {
    static PLAIN: OnceLock<Registry> = OnceLock::new();
    static ASYM: OnceLock<Registry> = OnceLock::new();
    let cell = if asym { &ASYM } else { &PLAIN };
    cell.get_or_init(|| {
        let mut s = TlvOptions::new();
        if asym {
            s.set("reflected-control-enabled", "true");
            s.set("reflected-control-max-count", "4");
            s.set("reflected-control-max-size", ASYM_MAX_SIZE.to_string());
        }
        Registry::from_linked(&s, &BTreeMap::new()).expect("linked registry")
    })
    .clone()
}

pub fn meta(len: usize, ttl: Option<u8>, tos: Option<u8>) -> RecvMeta {
    let mut m = RecvMeta::new(len, SocketAddr::from(([192, 0, 2, 1], 40000)));
    m.dst = Some([198, 51, 100, 7].into());
    m.dst_port = 862;
    m.ifindex = 3;
    m.ttl = ttl;
    m.tos = tos;
    m
}

/// Reflector variants chosen by one octet of the input.
pub fn config(sel: u8) -> ReflectorConfig {
    let mode = if sel & 1 != 0 {
        AuthMode::Authenticated
    } else {
        AuthMode::Open
    };
    ReflectorConfig {
        mode,
        stateful: sel & 2 != 0,
        verify_tlv_hmac: sel & 4 != 0,
        key: (mode == AuthMode::Authenticated || sel & 4 != 0).then(|| HmacKey::new(KEY)),
        ssid_keys: if sel & 64 != 0 {
            [(SSID_WITH_KEY, HmacKey::new(SSID_KEY))]
                .into_iter()
                .collect()
        } else {
            Default::default()
        },
        max_sessions: 16,
        // Bit 7: only SSID 1 is provisioned (RFC 8972 §3).
        provisioning: if sel & 128 != 0 {
            Provisioning::new([PROVISIONED_SSID.to_string().parse().expect("spec")])
        } else {
            Provisioning::default()
        },
        ..ReflectorConfig::default()
    }
}

/// The one SSID provisioned under bit 7 of `sel`.
pub const PROVISIONED_SSID: u16 = 1;

/// The key a request or reply with this SSID is signed with under `sel`.
pub fn key_for(sel: u8, ssid: u16) -> &'static [u8] {
    if sel & 64 != 0 && ssid == SSID_WITH_KEY {
        SSID_KEY
    } else {
        KEY
    }
}

/// Run one request through a fresh reflector and check the reply. With
/// bit 5 of `sel` in authenticated mode, the request's base HMAC is signed
/// first (with its SSID's key), so the fuzzer explores what lies past
/// authentication; bit 6 gives one SSID a key of its own.
pub fn step_and_check(sel: u8, request: &[u8]) {
    let cfg = config(sel);
    let mode = cfg.mode;
    let mut signed;
    let request = if mode == AuthMode::Authenticated && sel & 32 != 0 && request.len() >= 112 {
        signed = request.to_vec();
        let ssid = u16::from_be_bytes([signed[26], signed[27]]);
        let tag = HmacKey::new(key_for(sel, ssid)).tag(&[&signed[..HMAC_COVERAGE]]);
        signed[96..112].copy_from_slice(&tag);
        &signed[..]
    } else {
        request
    };
    let asym = sel & 8 != 0;
    let mut r = Reflector::new(cfg, registry(asym));
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let ttl = (sel & 16 != 0).then_some(request.len() as u8);
    let m = meta(request.len(), ttl, Some(sel));
    let mut reply = vec![0u8; MAX_DATAGRAM];
    let out = r.process(request, &m, Instant::now(), &clock, &mut reply);
    check(sel, request, &m, out, &reply, asym, &r);
}

/// The invariants of one reflector step.
pub fn check(
    sel: u8,
    request: &[u8],
    m: &RecvMeta,
    out: Outcome,
    reply: &[u8],
    asym: bool,
    r: &Reflector,
) {
    let mode = r.config().mode;
    let st = r.stats();
    let dropped: u64 = DropReason::ALL.iter().map(|d| st.dropped(*d)).sum();
    assert_eq!(
        st.received,
        st.reflected + dropped,
        "every request counted once"
    );
    let base = mode.base_len();
    // With sessions provisioned, a request of another SSID is dropped as
    // such and nothing else happens (a TWAMP-Light request too short for
    // an SSID has SSID 0).
    if sel & 128 != 0 {
        let at = if mode == AuthMode::Authenticated {
            26
        } else {
            14
        };
        let ssid = request
            .get(at..at + 2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        let long_enough = request.len() <= MAX_DATAGRAM
            && (request.len() >= base || (mode == AuthMode::Open && request.len() >= 14));
        if long_enough && ssid != PROVISIONED_SSID {
            assert_eq!(
                out,
                Outcome::Drop(DropReason::NotProvisioned),
                "SSID {ssid}"
            );
            assert_eq!(r.sessions().len(), 0, "state for an unprovisioned request");
            return;
        }
        assert_ne!(out, Outcome::Drop(DropReason::NotProvisioned));
    }
    // The base HMAC verdict is exactly "signed with the key of its SSID".
    if mode == AuthMode::Authenticated && request.len() >= base {
        let ssid = u16::from_be_bytes([request[26], request[27]]);
        let good = HmacKey::new(key_for(sel, ssid))
            .verify(&[&request[..HMAC_COVERAGE]], &request[96..112]);
        assert_eq!(
            out == Outcome::Drop(DropReason::AuthFailed),
            !good,
            "authentication verdict for SSID {ssid:#x}"
        );
    }
    let (len, plan) = match out {
        Outcome::Reply { len, plan } => (len, plan),
        Outcome::Drop(DropReason::AuthFailed) => {
            assert_eq!(r.sessions().len(), 0, "state created for a failed HMAC");
            return;
        }
        Outcome::Drop(_) => return,
    };
    // Never longer than the request unless the asymmetrical policy allows it.
    let sym = request.len().max(base);
    if asym {
        assert!(
            len == sym || len <= ASYM_MAX_SIZE,
            "reply {len} for request {}",
            request.len()
        );
    } else {
        assert_eq!(len, sym, "reply longer than the request");
    }
    assert_eq!(plan.reply_len, len);
    assert!(len <= MAX_DATAGRAM);
    let reply = &reply[..len];
    let p = ReflectorPacket::new_checked(reply, mode).expect("reply holds a base packet");
    assert!(p.mbz_is_zero(), "MBZ octets set in the reply");
    let mut req = request.to_vec();
    req.resize(req.len().max(base), 0);
    let q = SenderRepr::parse(&SenderPacket::new_checked(&req[..], mode).unwrap());
    let x = ReflectorRepr::parse(&p);
    assert_eq!(x.sender_sequence_number, q.sequence_number);
    assert_eq!(x.sender_timestamp, q.timestamp);
    assert_eq!(x.sender_error_estimate, q.error_estimate);
    assert_eq!(x.ssid, q.ssid);
    assert_eq!(x.sender_ttl, m.ttl.unwrap_or(255));
    if mode == AuthMode::Authenticated {
        assert!(
            HmacKey::new(key_for(sel, x.ssid)).verify(&[&reply[..HMAC_COVERAGE]], &reply[96..112]),
            "reply base HMAC does not verify with the key of its SSID"
        );
    }
    // The TLV area still iterates without panicking.
    for _ in stamp_wire::TlvIter::new(p.tlv_area()) {}
}
