//! Property tests of the wire layer: every representation survives emit then
//! parse, timestamps round-trip, and TLV iteration is total on any input.
//! These run on the stable toolchain in CI and cover the same ground as the
//! `base_packet` and `tlv_iter` fuzz targets under `tests/fuzz`.

use proptest::prelude::*;
use stamp_wire::tlv::{emit_header, HEADER_LEN};
use stamp_wire::{
    AuthMode, ErrorEstimate, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr, Timestamp,
    TimestampFormat, Tlv, TlvError, TlvFlags, TlvIter, TlvType,
};

fn mode() -> impl Strategy<Value = AuthMode> {
    prop_oneof![Just(AuthMode::Open), Just(AuthMode::Authenticated)]
}

fn sender_repr() -> impl Strategy<Value = SenderRepr> {
    (any::<u32>(), any::<u64>(), any::<u16>(), any::<u16>()).prop_map(|(s, t, e, id)| SenderRepr {
        sequence_number: s,
        timestamp: Timestamp(t),
        error_estimate: ErrorEstimate(e),
        ssid: id,
    })
}

fn reflector_repr() -> impl Strategy<Value = ReflectorRepr> {
    (
        (any::<u32>(), any::<u64>(), any::<u16>(), any::<u16>()),
        (
            any::<u64>(),
            any::<u32>(),
            any::<u64>(),
            any::<u16>(),
            any::<u8>(),
        ),
    )
        .prop_map(|((s, t, e, id), (rt, ss, st, se, ttl))| ReflectorRepr {
            sequence_number: s,
            timestamp: Timestamp(t),
            error_estimate: ErrorEstimate(e),
            ssid: id,
            receive_timestamp: Timestamp(rt),
            sender_sequence_number: ss,
            sender_timestamp: Timestamp(st),
            sender_error_estimate: ErrorEstimate(se),
            sender_ttl: ttl,
        })
}

proptest! {
    /// SenderRepr: emit over any prior buffer content, then parse, gives the
    /// same fields; MBZ is zero; the HMAC and TLV area are left untouched.
    #[test]
    fn sender_repr_emit_parse_is_identity(
        r in sender_repr(),
        m in mode(),
        fill in any::<u8>(),
        extra in 0usize..64,
    ) {
        let len = m.base_len() + extra;
        let mut buf = vec![fill; len];
        let mut p = SenderPacket::new_checked(&mut buf[..], m).unwrap();
        r.emit(&mut p);
        prop_assert!(p.mbz_is_zero());
        prop_assert_eq!(SenderRepr::parse(&p), r);
        if let Some(h) = p.hmac() {
            prop_assert!(h.iter().all(|&b| b == fill));
        }
        prop_assert!(p.tlv_area().iter().all(|&b| b == fill));
        prop_assert_eq!(p.tlv_area().len(), extra);
    }

    /// ReflectorRepr: the same, in both modes.
    #[test]
    fn reflector_repr_emit_parse_is_identity(
        r in reflector_repr(),
        m in mode(),
        fill in any::<u8>(),
        extra in 0usize..64,
    ) {
        let len = m.base_len() + extra;
        let mut buf = vec![fill; len];
        let mut p = ReflectorPacket::new_checked(&mut buf[..], m).unwrap();
        r.emit(&mut p);
        prop_assert!(p.mbz_is_zero());
        prop_assert_eq!(ReflectorRepr::parse(&p), r);
        if let Some(h) = p.hmac() {
            prop_assert!(h.iter().all(|&b| b == fill));
        }
        prop_assert!(p.tlv_area().iter().all(|&b| b == fill));
    }

    /// Parse then emit reproduces any packet whose MBZ octets are zero.
    #[test]
    fn sender_parse_emit_reproduces_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 112..200),
        m in mode(),
    ) {
        let mut orig = bytes.clone();
        SenderPacket::new_checked(&mut orig[..], m).unwrap().clear_mbz();
        let p = SenderPacket::new_checked(&orig[..], m).unwrap();
        let r = SenderRepr::parse(&p);
        let mut out = orig.clone();
        out[..m.base_len()].fill(0xA5);
        if m == AuthMode::Authenticated {
            out[96..112].copy_from_slice(&orig[96..112]);
        }
        r.emit(&mut SenderPacket::new_checked(&mut out[..], m).unwrap());
        prop_assert_eq!(out, orig);
    }

    /// Parse then emit reproduces any reflector packet whose MBZ octets are zero.
    #[test]
    fn reflector_parse_emit_reproduces_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 112..200),
        m in mode(),
    ) {
        let mut orig = bytes.clone();
        ReflectorPacket::new_checked(&mut orig[..], m).unwrap().clear_mbz();
        let p = ReflectorPacket::new_checked(&orig[..], m).unwrap();
        let r = ReflectorRepr::parse(&p);
        let mut out = orig.clone();
        out[..m.base_len()].fill(0x5A);
        if m == AuthMode::Authenticated {
            out[96..112].copy_from_slice(&orig[96..112]);
        }
        r.emit(&mut ReflectorPacket::new_checked(&mut out[..], m).unwrap());
        prop_assert_eq!(out, orig);
    }

    /// new_checked accepts exactly the buffers that hold a base packet, and
    /// every accessor of an accepted view is total.
    #[test]
    fn checked_views_accept_exactly_base_length(
        bytes in proptest::collection::vec(any::<u8>(), 0..160),
        m in mode(),
    ) {
        let ok = bytes.len() >= m.base_len();
        let s = SenderPacket::new_checked(&bytes[..], m);
        prop_assert_eq!(s.is_ok(), ok);
        let r = ReflectorPacket::new_checked(&bytes[..], m);
        prop_assert_eq!(r.is_ok(), ok);
        if let (Ok(s), Ok(r)) = (s, r) {
            let _ = (SenderRepr::parse(&s), s.mbz_is_zero(), s.hmac(), s.hmac_input(), s.tlv_area());
            let _ = (ReflectorRepr::parse(&r), r.mbz_is_zero(), r.hmac(), r.hmac_input(), r.tlv_area());
            prop_assert_eq!(s.tlv_area().len(), bytes.len() - m.base_len());
        }
    }

    /// NTP: any time from 1970 to the end of the window the RFC 4330 §3
    /// unfolding covers (2104) round-trips within 1 ns.
    #[test]
    fn ntp_timestamp_round_trips_within_1ns(nanos in 0u64..4_233_462_144_000_000_000) {
        let ts = Timestamp::from_unix_nanos(TimestampFormat::Ntp, nanos);
        let back = ts.to_unix_nanos(TimestampFormat::Ntp).unwrap();
        prop_assert!(back.abs_diff(nanos) <= 1, "{} -> {:?} -> {}", nanos, ts, back);
    }

    /// PTP: exact for any time whose seconds fit the 32-bit field.
    #[test]
    fn ptp_timestamp_round_trips_exactly(nanos in 0u64..(u32::MAX as u64 + 1) * 1_000_000_000) {
        let ts = Timestamp::from_unix_nanos(TimestampFormat::Ptp, nanos);
        prop_assert!(ts.fraction() < 1_000_000_000);
        prop_assert_eq!(ts.to_unix_nanos(TimestampFormat::Ptp), Some(nanos));
    }

    /// Decoding any raw 64-bit field never panics, and what decodes encodes
    /// back to the same field (NTP within one fraction unit of rounding).
    #[test]
    fn any_raw_timestamp_decodes_without_panic(raw in any::<u64>()) {
        let ts = Timestamp(raw);
        if let Some(n) = ts.to_unix_nanos(TimestampFormat::Ptp) {
            prop_assert_eq!(Timestamp::from_unix_nanos(TimestampFormat::Ptp, n), ts);
        }
        if let Some(n) = ts.to_unix_nanos(TimestampFormat::Ntp) {
            // within 1 ns of the exact value of the field
            let hi = u128::from(ts.seconds());
            let secs_1900 = if hi & 0x8000_0000 == 0 { hi + (1 << 32) } else { hi };
            let exact = (secs_1900 - 2_208_988_800) * 1_000_000_000
                + ((u128::from(ts.fraction()) * 1_000_000_000) >> 32);
            prop_assert!((n as u128).abs_diff(exact) <= 1, "{:?}: {} vs {}", ts, n, exact);
        }
    }

    /// ErrorEstimate: new() puts S, Z, Scale and Multiplier in their bits and
    /// the getters read them back; the raw field round-trips through parts.
    #[test]
    fn error_estimate_bits(s in any::<bool>(), ptp in any::<bool>(), scale in 0u8..64, mult in any::<u8>()) {
        let fmt = if ptp { TimestampFormat::Ptp } else { TimestampFormat::Ntp };
        let e = ErrorEstimate::new(s, fmt, scale, mult);
        prop_assert_eq!(e.is_synchronized(), s);
        prop_assert_eq!(e.format(), fmt);
        prop_assert_eq!(e.scale(), scale);
        prop_assert_eq!(e.multiplier(), mult);
        prop_assert_eq!(e.0 >> 15 == 1, s);
        prop_assert_eq!((e.0 >> 14) & 1 == 1, ptp);
        prop_assert_eq!(ErrorEstimate::new(e.is_synchronized(), e.format(), e.scale(), e.multiplier()), e);
    }

    /// Any raw Error Estimate splits into parts that rebuild it.
    #[test]
    fn raw_error_estimate_rebuilds_from_parts(raw in any::<u16>()) {
        let e = ErrorEstimate(raw);
        prop_assert_eq!(ErrorEstimate::new(e.is_synchronized(), e.format(), e.scale(), e.multiplier()), e);
        prop_assert!(e.error_seconds() >= 0.0);
    }

    /// from_error_nanos never yields a zero multiplier and bounds the error.
    #[test]
    fn error_estimate_from_nanos_bounds_the_error(nanos in 0u64..1_000_000_000_000) {
        let e = ErrorEstimate::from_error_nanos(true, TimestampFormat::Ntp, nanos);
        prop_assert!(e.multiplier() >= 1);
        prop_assert!(e.error_seconds() * 1e9 >= nanos as f64 * 0.999_999);
    }

    /// TLV header: emit then view gives back flags, type and length, and the
    /// value is the octets that follow.
    #[test]
    fn tlv_header_emit_parse(flags in any::<u8>(), ty in any::<u8>(), value in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut buf = vec![0u8; HEADER_LEN + value.len()];
        let total = emit_header(&mut buf, TlvFlags(flags), TlvType(ty), value.len() as u16);
        prop_assert_eq!(total, buf.len());
        buf[HEADER_LEN..].copy_from_slice(&value);
        let t = Tlv::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(t.flags(), TlvFlags(flags));
        prop_assert_eq!(t.tlv_type(), TlvType(ty));
        prop_assert_eq!(t.length(), value.len());
        prop_assert_eq!(t.total_len(), total);
        prop_assert_eq!(t.value(), &value[..]);
        // one octet short of the value is an overrun
        if !value.is_empty() {
            prop_assert_eq!(Tlv::new_checked(&buf[..buf.len() - 1]).unwrap_err(), TlvError::ValueOverrun);
        }
    }

    /// A sequence of emitted TLVs is iterated back exactly.
    #[test]
    fn tlv_sequence_round_trips(tlvs in proptest::collection::vec((any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..12)) {
        let mut area = Vec::new();
        for (f, t, v) in &tlvs {
            let at = area.len();
            area.resize(at + HEADER_LEN + v.len(), 0);
            emit_header(&mut area[at..], TlvFlags(*f), TlvType(*t), v.len() as u16);
            area[at + HEADER_LEN..].copy_from_slice(v);
        }
        let got: Vec<_> = TlvIter::new(&area).collect();
        prop_assert_eq!(got.len(), tlvs.len());
        for (g, (f, t, v)) in got.iter().zip(&tlvs) {
            let g = g.unwrap();
            prop_assert_eq!(g.flags, TlvFlags(*f));
            prop_assert_eq!(g.tlv_type, TlvType(*t));
            prop_assert_eq!(g.value, &v[..]);
        }
    }

    /// TlvIter on arbitrary bytes: never panics, terminates, yields TLVs that
    /// tile the area from offset 0 without gap or overlap, then at most one
    /// error at exactly the offset where tiling stopped; with no error the
    /// TLVs cover the whole area.
    #[test]
    fn tlv_iter_tiles_arbitrary_bytes(area in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut expect = 0usize;
        let mut error = None;
        let mut steps = 0usize;
        for item in TlvIter::new(&area) {
            steps += 1;
            prop_assert!(steps <= area.len() / HEADER_LEN + 1);
            prop_assert!(error.is_none(), "item after an error");
            match item {
                Ok(t) => {
                    prop_assert_eq!(t.offset, expect);
                    let len = u16::from_be_bytes([area[t.offset + 2], area[t.offset + 3]]) as usize;
                    prop_assert_eq!(t.value.len(), len);
                    prop_assert_eq!(t.flags.0, area[t.offset]);
                    prop_assert_eq!(t.tlv_type.0, area[t.offset + 1]);
                    prop_assert_eq!(t.value, &area[t.offset + HEADER_LEN..t.offset + t.total_len()]);
                    expect += t.total_len();
                    prop_assert!(expect <= area.len());
                }
                Err((off, e)) => {
                    prop_assert_eq!(off, expect);
                    let rest = area.len() - off;
                    match e {
                        TlvError::TruncatedHeader => prop_assert!(rest < HEADER_LEN),
                        TlvError::ValueOverrun => {
                            prop_assert!(rest >= HEADER_LEN);
                            let len = u16::from_be_bytes([area[off + 2], area[off + 3]]) as usize;
                            prop_assert!(rest < HEADER_LEN + len);
                        }
                    }
                    error = Some(e);
                }
            }
        }
        if error.is_none() {
            prop_assert_eq!(expect, area.len());
        }
    }
}
