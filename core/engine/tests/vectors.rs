//! Captures from independent implementations (teaparty, twampy,
//! RFC8762-CLI): every request parses, every reply is accepted by our
//! sender-side parser, and our reflector answers every request the way the
//! RFCs ask (same length, sender fields echoed, SSID echoed, MBZ zero).

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use pcap_file::pcapng::{Block, PcapNgReader};
use stamp_core::clock::{ManualClock, UnixNanos};
use stamp_core::hmac::HmacKey;
use stamp_core::reflector::{DropReason, Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::Registry;
use stamp_core::transport::RecvMeta;
use stamp_wire::{
    AuthMode, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr, TimestampFormat, TlvIter,
    MAX_DATAGRAM,
};

#[derive(Debug, Clone)]
struct Datagram {
    src: SocketAddr,
    dst: SocketAddr,
    ttl: u8,
    tos: u8,
    payload: Vec<u8>,
}

fn load(name: &str) -> Vec<Datagram> {
    let path = format!(
        "{}/../../tests/fixtures/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut r =
        PcapNgReader::new(File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap();
    let mut out = Vec::new();
    while let Some(block) = r.next_block() {
        let data = match block.unwrap() {
            Block::EnhancedPacket(p) => p.data.into_owned(),
            _ => continue,
        };
        let ethertype = u16::from_be_bytes([data[12], data[13]]);
        let ip = &data[14..];
        let (src, dst, ttl, tos, udp): (IpAddr, IpAddr, u8, u8, &[u8]) = match ethertype {
            0x0800 => {
                let ihl = (ip[0] & 0x0F) as usize * 4;
                let s: [u8; 4] = ip[12..16].try_into().unwrap();
                let d: [u8; 4] = ip[16..20].try_into().unwrap();
                (s.into(), d.into(), ip[8], ip[1], &ip[ihl..])
            }
            0x86DD => {
                let s: [u8; 16] = ip[8..24].try_into().unwrap();
                let d: [u8; 16] = ip[24..40].try_into().unwrap();
                (
                    s.into(),
                    d.into(),
                    ip[7],
                    (ip[0] << 4) | (ip[1] >> 4),
                    &ip[40..],
                )
            }
            other => panic!("ethertype {other:#x}"),
        };
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        let dport = u16::from_be_bytes([udp[2], udp[3]]);
        let ulen = u16::from_be_bytes([udp[4], udp[5]]) as usize;
        out.push(Datagram {
            src: SocketAddr::new(src, sport),
            dst: SocketAddr::new(dst, dport),
            ttl,
            tos,
            payload: udp[8..ulen].to_vec(),
        });
    }
    out
}

/// Requests go to the reflector port: the lower-numbered well-known side.
fn split(d: &[Datagram], reflector_port: u16) -> (Vec<&Datagram>, Vec<&Datagram>) {
    d.iter().partition(|x| x.dst.port() == reflector_port)
}

fn meta_of(d: &Datagram) -> RecvMeta {
    let mut m = RecvMeta::new(d.payload.len(), d.src);
    m.dst = Some(d.dst.ip());
    m.dst_port = d.dst.port();
    m.ttl = Some(d.ttl);
    m.tos = Some(d.tos);
    m
}

fn check_reflection(mode: AuthMode, req: &[u8], rep: &[u8], ttl: u8) {
    let base = mode.base_len();
    assert_eq!(rep.len(), req.len().max(base), "symmetric size");
    let padded = {
        let mut v = req.to_vec();
        v.resize(req.len().max(base), 0);
        v
    };
    let q = SenderRepr::parse(&SenderPacket::new_checked(&padded[..], mode).unwrap());
    let p = ReflectorPacket::new_checked(rep, mode).unwrap();
    let r = ReflectorRepr::parse(&p);
    assert_eq!(r.sender_sequence_number, q.sequence_number);
    assert_eq!(r.sender_timestamp, q.timestamp);
    assert_eq!(r.sender_error_estimate, q.error_estimate);
    assert_eq!(r.ssid, q.ssid);
    assert_eq!(r.sender_ttl, ttl);
    assert!(p.mbz_is_zero());
}

fn replay(
    name: &str,
    reflector_port: u16,
    cfg: ReflectorConfig,
) -> Vec<(Datagram, Outcome, Vec<u8>)> {
    let clock = ManualClock::new(UnixNanos(1_763_800_000_000_000_000), TimestampFormat::Ntp);
    let mut r = Reflector::new(cfg, Registry::empty());
    let all = load(name);
    let (reqs, _) = split(&all, reflector_port);
    let mut out = Vec::new();
    for d in reqs {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let o = r.process(&d.payload, &meta_of(d), Instant::now(), &clock, &mut buf);
        if let Outcome::Reply { len, .. } = o {
            buf.truncate(len);
        } else {
            buf.clear();
        }
        out.push((d.clone(), o, buf));
    }
    out
}

#[test]
fn rfc8762cli_requests_parse_and_replies_are_valid_reflector_packets() {
    let all = load("rfc8762cli.pcap");
    let (reqs, reps) = split(&all, 8862);
    assert_eq!((reqs.len(), reps.len()), (5, 5));
    for (q, p) in reqs.iter().zip(&reps) {
        let q =
            SenderRepr::parse(&SenderPacket::new_checked(&q.payload[..], AuthMode::Open).unwrap());
        let r = ReflectorRepr::parse(
            &ReflectorPacket::new_checked(&p.payload[..], AuthMode::Open).unwrap(),
        );
        assert_eq!(r.sender_sequence_number, q.sequence_number);
        assert_eq!(r.sender_timestamp, q.timestamp);
        assert_eq!(r.sender_ttl, 255, "their sender sends with TTL 255");
        assert!(r.receive_timestamp <= r.timestamp);
        assert!(r.timestamp.to_unix_nanos(TimestampFormat::Ntp).is_some());
    }
}

#[test]
fn rfc8762cli_replayed_through_our_reflector() {
    for (d, o, rep) in replay("rfc8762cli.pcap", 8862, ReflectorConfig::default()) {
        assert!(matches!(o, Outcome::Reply { .. }), "{o:?}");
        check_reflection(AuthMode::Open, &d.payload, &rep, 255);
    }
}

#[test]
fn twampy_41_octet_requests_get_44_octet_replies() {
    let all = load("twampy.pcap");
    let (reqs, reps) = split(&all, 20001);
    assert!(reqs.iter().all(|d| d.payload.len() == 41));
    assert!(
        reps.iter().all(|d| d.payload.len() == 38),
        "twampy replies are TWAMP-Light sized"
    );
    let out = replay("twampy.pcap", 20001, ReflectorConfig::default());
    assert_eq!(out.len(), 10);
    for (d, o, rep) in out {
        assert!(matches!(o, Outcome::Reply { len: 44, .. }), "{o:?}");
        check_reflection(AuthMode::Open, &d.payload, &rep, 64);
    }
}

#[test]
fn teaparty_unauthenticated_requests_replayed() {
    let out = replay("teaparty-tlvs.pcap", 8863, ReflectorConfig::default());
    assert_eq!(out.len(), 12);
    for (d, o, rep) in &out {
        assert!(matches!(o, Outcome::Reply { .. }), "{o:?}");
        check_reflection(AuthMode::Open, &d.payload, rep, 64);
        // With no plugin linked every TLV comes back with U set and its
        // bytes unchanged; zero padding comes back untouched.
        let area = &rep[44..];
        if area.iter().all(|&b| b == 0) {
            assert!(d.payload.len() <= 44 || d.payload[44..].iter().all(|&b| b == 0));
            continue;
        }
        for t in TlvIter::new(area) {
            let t = t.unwrap();
            assert!(
                t.flags.unrecognized(),
                "type {} at {}",
                t.tlv_type,
                t.offset
            );
            let q = &d.payload[44 + t.offset + 4..44 + t.offset + 4 + t.value.len()];
            assert_eq!(t.value, q);
        }
    }
    let zero_padded = out
        .iter()
        .find(|(d, ..)| d.payload.len() == 100 && d.payload[44..].iter().all(|&b| b == 0));
    assert!(
        zero_padded.is_some(),
        "the capture holds a zero-padded 100-octet request"
    );
    let short = out
        .iter()
        .find(|(d, ..)| d.payload.len() == 41)
        .expect("41-octet request");
    assert_eq!(short.2.len(), 44);
}

#[test]
fn teaparty_replies_are_valid_reflector_packets() {
    let all = load("teaparty-tlvs.pcap");
    let (reqs, reps) = split(&all, 8863);
    assert!(reps.len() >= 9);
    for p in reps {
        let r = ReflectorRepr::parse(
            &ReflectorPacket::new_checked(&p.payload[..], AuthMode::Open).unwrap(),
        );
        let q = reqs
            .iter()
            .find(|q| q.src == p.dst && q.payload[..4] == r.sender_sequence_number.to_be_bytes())
            .unwrap();
        assert_eq!(p.payload.len(), q.payload.len());
        assert_eq!(r.sender_timestamp.0.to_be_bytes(), q.payload[4..12]);
        // teaparty's stateful counter starts at the first sequence + 1
        assert_ne!(r.sequence_number, r.sender_sequence_number);
        for t in TlvIter::new(&p.payload[44..]) {
            t.unwrap();
        }
    }
}

#[test]
fn teaparty_authenticated_exchange_verifies_with_key_testing() {
    let all = load("teaparty-auth.pcap");
    assert_eq!(all.len(), 3);
    let key = HmacKey::new(b"testing");
    // frames 1 and 2: request and reply whose base HMAC verifies
    for d in &all[..2] {
        assert!(
            key.verify(&[&d.payload[..96]], &d.payload[96..112]),
            "{:?}",
            d.src
        );
    }
    // frame 3 does not verify (and got no reply)
    assert!(!key.verify(&[&all[2].payload[..96]], &all[2].payload[96..112]));

    let cfg = ReflectorConfig {
        mode: AuthMode::Authenticated,
        key: Some(key.clone()),
        ..Default::default()
    };
    let out = replay("teaparty-auth.pcap", 8863, cfg);
    assert_eq!(out.len(), 2);
    let (d, o, rep) = &out[0];
    assert!(matches!(o, Outcome::Reply { len: 208, .. }), "{o:?}");
    check_reflection(AuthMode::Authenticated, &d.payload, rep, 64);
    assert_eq!(
        ReflectorRepr::parse(
            &ReflectorPacket::new_checked(&rep[..], AuthMode::Authenticated).unwrap()
        )
        .ssid,
        5
    );
    assert!(
        key.verify(&[&rep[..96]], &rep[96..112]),
        "our reply's base HMAC verifies with the same key"
    );
    assert_eq!(out[1].1, Outcome::Drop(DropReason::AuthFailed));
}

#[test]
fn twampy_38_octet_replies_are_accepted_by_our_sender() {
    use stamp_core::clock::{Clock, TimestampSource};
    use stamp_core::sender::{ReplyEvent, SenderConfig, SenderSession};
    let all = load("twampy.pcap");
    let (_, reps) = split(&all, 20001);
    let clock = ManualClock::new(UnixNanos(1_763_800_000_000_000_000), TimestampFormat::Ntp);
    let mut s = SenderSession::new(SenderConfig::default(), Registry::empty(), vec![]).unwrap();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    for _ in 0..reps.len() {
        s.build_request(&mut buf, Instant::now(), &clock);
    }
    for p in &reps {
        let ev = s.on_reply(
            &p.payload,
            &meta_of(p),
            clock.now(),
            TimestampSource::UserSpace,
            clock.error_estimate(),
        );
        let ReplyEvent::Matched(rec) = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(rec.sender_ttl, 0, "twampy returns no TTL");
        assert_eq!(rec.residence_ns, 0, "twampy sets T3 = T2");
    }
    assert_eq!(s.stats().received, 10);
}
