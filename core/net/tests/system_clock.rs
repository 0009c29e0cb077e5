//! SystemClock against the host's own clock.
// The crate's own dependencies (nix, socket2, ...) are not used here.
#![allow(unused_crate_dependencies)]

use std::time::{SystemTime, UNIX_EPOCH};

use stamp_core::clock::{Clock, SyncSource, UnixNanos};
use stamp_net::{ClockOverrides, SystemClock};
use stamp_wire::TimestampFormat;

const SECOND: i64 = 1_000_000_000;

fn system_time_nanos() -> UnixNanos {
    UnixNanos(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    )
}

#[test]
fn ntp_now_is_within_one_second_of_system_time() {
    let clock = SystemClock::new(TimestampFormat::Ntp, ClockOverrides::default());
    let diff = clock.now().diff(system_time_nanos());
    assert!(diff.abs() < SECOND, "{diff} ns");
}

#[test]
fn ptp_now_is_ahead_of_utc_by_the_tai_offset() {
    let clock = SystemClock::new(TimestampFormat::Ptp, ClockOverrides::default());
    let offset = clock.sync_status().tai_offset_s;
    assert!(
        (30..100).contains(&offset),
        "implausible TAI offset {offset}"
    );
    let diff = clock.now().diff(system_time_nanos()) - offset * SECOND;
    assert!(diff.abs() < SECOND, "{diff} ns");
}

#[test]
fn from_realtime_adds_the_tai_offset_for_ptp_only() {
    let t = UnixNanos(1_700_000_000 * SECOND as u64);
    let ntp = SystemClock::new(TimestampFormat::Ntp, ClockOverrides::default());
    assert_eq!(ntp.from_realtime(t), t);
    let ptp = SystemClock::new(TimestampFormat::Ptp, ClockOverrides::default());
    let offset = ptp.sync_status().tai_offset_s;
    assert_eq!(ptp.from_realtime(t).diff(t), offset * SECOND);
}

#[test]
fn error_estimate_z_bit_matches_the_format() {
    for format in [TimestampFormat::Ntp, TimestampFormat::Ptp] {
        let clock = SystemClock::new(format, ClockOverrides::default());
        let e = clock.error_estimate();
        assert_eq!(e.format(), format);
        assert_eq!(clock.format(), format);
        assert_ne!(
            e.multiplier(),
            0,
            "RFC 4656 §4.1.2: a zero multiplier is invalid"
        );
        assert_eq!(e.is_synchronized(), clock.sync_status().synchronized);
    }
}

#[test]
fn overrides_replace_sync_state_scale_and_multiplier() {
    let o = ClockOverrides {
        synchronized: Some(true),
        scale: Some(20),
        multiplier: Some(3),
    };
    let clock = SystemClock::new(TimestampFormat::Ptp, o);
    let e = clock.error_estimate();
    assert!(e.is_synchronized());
    assert_eq!(
        (e.scale(), e.multiplier(), e.format()),
        (20, 3, TimestampFormat::Ptp)
    );
    assert_eq!(clock.sync_source(), SyncSource::PTP);

    let ntp = SystemClock::new(TimestampFormat::Ntp, o);
    assert_eq!(ntp.sync_source(), SyncSource::NTP);
}

#[test]
fn unsynchronized_clock_names_a_local_source() {
    let o = ClockOverrides {
        synchronized: Some(false),
        ..ClockOverrides::default()
    };
    for format in [TimestampFormat::Ntp, TimestampFormat::Ptp] {
        let clock = SystemClock::new(format, o);
        assert_eq!(clock.sync_source(), SyncSource::LOCAL);
        assert!(!clock.error_estimate().is_synchronized());
    }
}

#[test]
fn clock_is_shareable_across_threads() {
    let clock = std::sync::Arc::new(SystemClock::new(
        TimestampFormat::Ntp,
        ClockOverrides::default(),
    ));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let c = clock.clone();
            std::thread::spawn(move || (0..1000).all(|_| c.error_estimate().multiplier() != 0))
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap());
    }
}
