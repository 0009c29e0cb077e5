//! The reflector's rate limits, driven through `Reflector::process` with a
//! hand-driven monotonic time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stamp_core::clock::{ManualClock, UnixNanos};
use stamp_core::hmac::HmacKey;
use stamp_core::reflector::{DropReason, Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::Registry;
use stamp_wire::{AuthMode, TimestampFormat, MAX_DATAGRAM};

const T0: u64 = 1_763_800_000_000_000_000;

fn meta(len: usize, src: [u8; 4], port: u16) -> stamp_core::transport::RecvMeta {
    stamp_core::transport::RecvMeta::new(len, SocketAddr::from((src, port)))
}

fn request(seq: u32) -> Vec<u8> {
    let mut v = vec![0u8; 44];
    v[0..4].copy_from_slice(&seq.to_be_bytes());
    v
}

fn run(r: &mut Reflector, src: [u8; 4], port: u16, now: Instant, clock: &ManualClock) -> Outcome {
    let req = request(1);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    r.process(&req, &meta(req.len(), src, port), now, clock, &mut buf)
}

#[test]
fn per_source_limit_counts_drops_and_recovers_with_time() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let cfg = ReflectorConfig {
        max_pps: Some(100),
        rate_burst: Some(10),
        ..Default::default()
    };
    let mut r = Reflector::new(cfg, Registry::empty());
    let t0 = Instant::now();
    // A burst of 50 at one instant: the burst of 10 passes.
    let replies = (0..50)
        .filter(|i| {
            matches!(
                run(&mut r, [192, 0, 2, 1], 40000 + i, t0, &clock),
                Outcome::Reply { .. }
            )
        })
        .count();
    assert_eq!(replies, 10);
    assert_eq!(r.stats().dropped_rate_limited, 40);
    assert_eq!(r.stats().dropped(DropReason::RateLimited), 40);
    assert_eq!(DropReason::RateLimited.label(), "rate_limited");
    // Another source is not affected.
    assert!(matches!(
        run(&mut r, [192, 0, 2, 2], 40000, t0, &clock),
        Outcome::Reply { .. }
    ));
    // One second at 100 pps, paced every 10 ms: every request answered.
    for i in 1..=100u64 {
        let now = t0 + Duration::from_millis(10 * i);
        assert!(matches!(
            run(&mut r, [192, 0, 2, 1], 40000, now, &clock),
            Outcome::Reply { .. }
        ));
    }
    // Twice the rate for a second: about half refused once the burst is gone.
    let before = r.stats().dropped_rate_limited;
    let t1 = t0 + Duration::from_millis(1_000);
    for i in 1..=200u64 {
        let now = t1 + Duration::from_millis(5 * i);
        let _ = run(&mut r, [192, 0, 2, 1], 40000, now, &clock);
    }
    let refused = r.stats().dropped_rate_limited - before;
    assert!((95..=105).contains(&refused), "{refused}");
    let st = r.stats();
    assert_eq!(
        st.received,
        st.reflected + DropReason::ALL.iter().map(|d| st.dropped(*d)).sum::<u64>()
    );
}

#[test]
fn global_cap_limits_many_sources_together() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let cfg = ReflectorConfig {
        global_max_pps: Some(20),
        ..Default::default()
    };
    let mut r = Reflector::new(cfg, Registry::empty());
    let t0 = Instant::now();
    let replies = (0..200u16)
        .filter(|i| {
            let src = [10, 0, (i >> 8) as u8, *i as u8];
            matches!(run(&mut r, src, 5000, t0, &clock), Outcome::Reply { .. })
        })
        .count();
    assert_eq!(replies, 20);
    assert_eq!(r.stats().dropped_global_rate_limited, 180);
    assert_eq!(r.stats().dropped(DropReason::GlobalRateLimited), 180);
    assert_eq!(r.stats().dropped_rate_limited, 0);
    let l = r.rate_limiter().unwrap();
    assert_eq!(l.stats().global, 180);
    assert_eq!(l.stats().per_source, 0);
}

#[test]
fn rate_limit_is_checked_before_authentication_and_creates_no_state() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let cfg = ReflectorConfig {
        mode: AuthMode::Authenticated,
        key: Some(HmacKey::new(b"0123456789abcdef0123456789abcdef")),
        stateful: true,
        max_pps: Some(1),
        rate_burst: Some(2),
        ..Default::default()
    };
    let mut r = Reflector::new(cfg, Registry::empty());
    let t0 = Instant::now();
    let junk = vec![0xABu8; 112];
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let m = meta(112, [198, 51, 100, 1], 862);
    let outs: Vec<_> = (0..5)
        .map(|_| r.process(&junk, &m, t0, &clock, &mut buf))
        .collect();
    // Two tokens spent on HMAC checks that fail, then cheap refusals.
    assert_eq!(outs[0], Outcome::Drop(DropReason::AuthFailed));
    assert_eq!(outs[1], Outcome::Drop(DropReason::AuthFailed));
    assert!(outs[2..]
        .iter()
        .all(|o| *o == Outcome::Drop(DropReason::RateLimited)));
    assert_eq!(r.stats().dropped_auth_failed, 2);
    assert_eq!(r.stats().dropped_rate_limited, 3);
    assert_eq!(r.sessions().len(), 0);
    // Truncated requests are refused before the limiter: they cost no token.
    let short = vec![0u8; 20];
    let m2 = meta(20, [198, 51, 100, 2], 862);
    for _ in 0..5 {
        assert_eq!(
            r.process(&short, &m2, t0, &clock, &mut buf),
            Outcome::Drop(DropReason::Truncated)
        );
    }
    assert_eq!(r.rate_limiter().unwrap().tracked_sources(), 1);
}

#[test]
fn no_limit_by_default() {
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    let mut r = Reflector::new(ReflectorConfig::default(), Registry::empty());
    assert!(r.rate_limiter().is_none());
    let t0 = Instant::now();
    for _ in 0..10_000 {
        assert!(matches!(
            run(&mut r, [192, 0, 2, 1], 1, t0, &clock),
            Outcome::Reply { .. }
        ));
    }
    assert_eq!(r.stats().dropped_rate_limited, 0);
}

#[test]
fn merged_stats_add_rate_limited_drops() {
    let mut a = stamp_core::reflector::ReflectorStats {
        dropped_rate_limited: 3,
        ..Default::default()
    };
    let b = stamp_core::reflector::ReflectorStats {
        dropped_rate_limited: 4,
        ..Default::default()
    };
    a.merge(&b);
    assert_eq!(a.dropped(DropReason::RateLimited), 7);
}

#[test]
fn a_shared_global_cap_holds_across_workers() {
    use stamp_core::ratelimit::GlobalLimit;
    let clock = ManualClock::new(UnixNanos(T0), TimestampFormat::Ntp);
    // Two workers of one process: each gets a clone of the config, and so
    // the same bucket.
    let cfg = ReflectorConfig {
        global_max_pps: Some(30),
        global_limit: Some(GlobalLimit::per_second(30)),
        ..Default::default()
    };
    let mut a = Reflector::new(cfg.clone(), Registry::empty());
    let mut b = Reflector::new(cfg, Registry::empty());
    let t0 = Instant::now();
    let mut replies = 0;
    for i in 0..100u16 {
        let r = if i % 2 == 0 { &mut a } else { &mut b };
        let src = [10, 1, (i >> 8) as u8, i as u8];
        if matches!(run(r, src, 5000, t0, &clock), Outcome::Reply { .. }) {
            replies += 1;
        }
    }
    assert_eq!(replies, 30, "30 for the process, not 30 per worker");
    let dropped = a.stats().dropped_global_rate_limited + b.stats().dropped_global_rate_limited;
    assert_eq!(dropped, 70);
    // The cap refills for both: 30 pps is one request per 33.3 ms.
    let later = t0 + Duration::from_millis(100);
    let more = (0..10u16)
        .filter(|i| {
            let r = if i % 2 == 0 { &mut a } else { &mut b };
            matches!(
                run(r, [10, 2, 0, *i as u8], 5000, later, &clock),
                Outcome::Reply { .. }
            )
        })
        .count();
    assert_eq!(more, 3);
}
