//! The bodies of the fuzz targets, one function each, shared by the
//! cargo-fuzz binaries next to this file (nightly, long runs:
//! `scripts/fuzz.sh`) and the stable harness that CI runs briefly
//! (`tests/e2e/fuzz_stable.rs`, which includes this file).
#![allow(dead_code)]

#[path = "common.rs"]
pub mod common;

/// Base packet views and representations on arbitrary bytes: checked views
/// never panic, and parse then emit reproduces the fields.
pub fn base_packet(data: &[u8]) {
    use stamp_wire::{AuthMode, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr};

    for mode in [AuthMode::Open, AuthMode::Authenticated] {
        if let Ok(p) = SenderPacket::new_checked(data, mode) {
            let r = SenderRepr::parse(&p);
            let _ = (p.mbz_is_zero(), p.hmac(), p.hmac_input(), p.tlv_area());
            let mut copy = data.to_vec();
            let mut q = SenderPacket::new_checked(&mut copy[..], mode).unwrap();
            r.emit(&mut q);
            assert!(q.mbz_is_zero());
            assert_eq!(SenderRepr::parse(&q), r);
            if p.mbz_is_zero() {
                assert_eq!(copy, data, "emit changed a well-formed sender packet");
            }
        } else {
            assert!(data.len() < mode.base_len());
        }
        if let Ok(p) = ReflectorPacket::new_checked(data, mode) {
            let r = ReflectorRepr::parse(&p);
            let _ = (p.mbz_is_zero(), p.hmac(), p.hmac_input(), p.tlv_area());
            let mut copy = data.to_vec();
            let mut q = ReflectorPacket::new_checked(&mut copy[..], mode).unwrap();
            r.emit(&mut q);
            assert!(q.mbz_is_zero());
            assert_eq!(ReflectorRepr::parse(&q), r);
            if p.mbz_is_zero() {
                assert_eq!(copy, data, "emit changed a well-formed reflector packet");
            }
        } else {
            assert!(data.len() < mode.base_len());
        }
    }
}

/// TlvIter on arbitrary bytes: terminates, and the TLVs it yields tile the
/// area from offset 0 up to the first error (or the end).
pub fn tlv_iter(data: &[u8]) {
    use stamp_wire::tlv::HEADER_LEN;
    use stamp_wire::{Tlv, TlvError, TlvIter};

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
}

/// Every registered TLV handler's `reflect` on arbitrary Values, through
/// `Reflector::process` with the linked registry: input octet 0 picks the
/// reflector variant, octet 1 the handler, octet 2 the flags, the rest is
/// the Value (and whatever TLVs follow it).
pub fn tlv_handlers(data: &[u8]) {
    use stamp_wire::tlv::emit_header;
    use stamp_wire::{TlvFlags, TlvType};

    if data.len() < 3 {
        return;
    }
    let (sel, pick, flags, rest) = (data[0] & !1, data[1], data[2], &data[3..]);
    // Open mode (the HMAC-less path reaches every handler).
    let reg = common::registry(sel & 8 != 0);
    let entries = reg.entries();
    if entries.is_empty() {
        return;
    }
    let code = entries[pick as usize % entries.len()].code;
    // Value length: the next two octets bound it by what is left.
    let (vlen, body) = match rest {
        [a, b, body @ ..] => (
            (u16::from_be_bytes([*a, *b]) as usize).min(body.len()),
            body,
        ),
        _ => (0, rest),
    };
    let mut req = vec![0u8; 44];
    req[0..4].copy_from_slice(&[0, 0, 0, pick]);
    req[14..16].copy_from_slice(&[0x12, 0x34]);
    let at = req.len();
    req.resize(at + 4, 0);
    emit_header(&mut req[at..], TlvFlags(flags), TlvType(code), vlen as u16);
    req.extend_from_slice(body);
    common::step_and_check(sel, &req);
}

/// The whole reflector step: request bytes in (octet 0 picks the variant:
/// mode, stateful, TLV HMAC, asymmetrical policy, TTL), reply out,
/// re-parsed and checked.
pub fn reflector_step(data: &[u8]) {
    let Some((&sel, request)) = data.split_first() else {
        return;
    };
    common::step_and_check(sel, request);
}

/// SenderSession::on_reply on arbitrary datagrams (octet 0 picks the mode
/// and the TLVs requested; the rest is split at 0xFF 0xFF 0xFF 0xFF into
/// several datagrams): never a panic, and a rejected or duplicate datagram
/// changes neither the received count nor the RTT statistics.
pub fn sender_reply(data: &[u8]) {
    use stamp_core::clock::{Clock, ManualClock, TimestampSource, UnixNanos};
    use stamp_core::hmac::HmacKey;
    use stamp_core::sender::{request_templates, ReplyEvent, SenderConfig, SenderSession};
    use stamp_core::TlvOptions;
    use stamp_wire::{AuthMode, TimestampFormat, MAX_DATAGRAM};
    use std::time::Instant;

    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mode = if sel & 1 != 0 {
        AuthMode::Authenticated
    } else {
        AuthMode::Open
    };
    let mut opts = TlvOptions::new();
    if sel & 2 != 0 {
        opts.set("cos", "true");
        opts.set("dscp", "46");
        opts.set("location", "true");
        opts.set("timestamp-info", "true");
        opts.set("direct-measurement", "true");
        opts.set("follow-up-telemetry", "true");
        opts.set("access-report", "1");
        opts.set("padding", "32");
    }
    let reg = common::registry(false);
    let templates = request_templates(&reg, &opts).unwrap_or_default();
    let cfg = SenderConfig {
        mode,
        ssid: 0x1234,
        key: (mode == AuthMode::Authenticated || sel & 4 != 0).then(|| HmacKey::new(common::KEY)),
        tlv_hmac: sel & 4 != 0,
        ..SenderConfig::default()
    };
    let Ok(mut s) = SenderSession::new(cfg, reg, templates) else {
        return;
    };
    let clock = ManualClock::new(UnixNanos(common::T0), TimestampFormat::Ntp);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    for _ in 0..4 {
        s.build_request(&mut buf, Instant::now(), &clock);
    }
    let m = common::meta(0, Some(64), None);
    for dgram in rest.split(|&b| b == 0xFF).filter(|d| !d.is_empty()) {
        let before = (
            s.stats().received,
            s.stats().rtt.count(),
            s.stats().residence.count(),
        );
        clock.advance(1_000);
        let ev = s.on_reply(
            dgram,
            &m,
            clock.now(),
            TimestampSource::UserSpace,
            clock.error_estimate(),
        );
        let after = (
            s.stats().received,
            s.stats().rtt.count(),
            s.stats().residence.count(),
        );
        match ev {
            ReplyEvent::Matched(_) => assert_eq!(after, (before.0 + 1, before.1 + 1, before.2 + 1)),
            _ => assert_eq!(after, before, "statistics changed by {ev:?}"),
        }
        assert!(s.stats().received <= s.stats().sent);
    }
    let _ = s.stats().directional_loss();
    s.finish();
}

/// stamp_config::load with a TOML config file taken from the input: any
/// content gives settings or a one-line error, never a panic.
pub fn config_loader(data: &[u8]) {
    use clap::Parser;
    use stamp_config::{load, Cli, Role};
    use std::io::Write;
    use std::path::PathBuf;
    use std::sync::OnceLock;
    fn path() -> &'static PathBuf {
        static PATH: OnceLock<PathBuf> = OnceLock::new();
        PATH.get_or_init(|| {
            let dir =
                std::env::temp_dir().join(format!("stamp-fuzz-config-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            dir.join("stamp.toml")
        })
    }

    let Some((&sel, toml)) = data.split_first() else {
        return;
    };
    let p = path();
    {
        let mut f = std::fs::File::create(p).unwrap();
        f.write_all(toml).unwrap();
    }
    let mut args = vec![
        "stamp-suite".to_string(),
        "--config".into(),
        p.display().to_string(),
    ];
    if sel & 1 != 0 {
        args.push("-i".into());
    }
    let Ok(cli) = Cli::try_parse_from(&args) else {
        return;
    };
    let hint = if sel & 1 != 0 {
        Some(Role::Reflector)
    } else {
        None
    };
    match load(&cli, hint) {
        Ok(s) => {
            let _ = format!("{s:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
