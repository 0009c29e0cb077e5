#![no_main]
//! SenderSession::on_reply on arbitrary datagrams (octet 0 picks the mode
//! and the TLVs requested; the rest is split at 0xFF 0xFF 0xFF 0xFF into
//! several datagrams): never a panic, and a rejected or duplicate datagram
//! changes neither the received count nor the RTT statistics.

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use stamp_core::clock::{Clock, ManualClock, TimestampSource, UnixNanos};
use stamp_core::hmac::HmacKey;
use stamp_core::sender::{request_templates, ReplyEvent, SenderConfig, SenderSession};
use stamp_core::TlvOptions;
use stamp_wire::{AuthMode, TimestampFormat, MAX_DATAGRAM};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
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
});
