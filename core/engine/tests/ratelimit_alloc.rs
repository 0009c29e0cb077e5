//! The rate limiter allocates nothing per packet after warm-up: a counting
//! global allocator watches `Reflector::process` with per-source and global
//! limits while more sources than the table holds arrive (so every packet
//! past the first few thousand evicts one) and most of them are refused.
// A global allocator is an `unsafe impl`; this one only counts and forwards
// (the same pattern as tests/e2e/perf_alloc.rs).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stamp_core::clock::{ManualClock, UnixNanos};
use stamp_core::reflector::{Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::Registry;
use stamp_core::transport::RecvMeta;
use stamp_wire::{TimestampFormat, MAX_DATAGRAM};

struct Counting;

thread_local! {
    // Only this thread's allocations count (the harness has its own threads).
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// Safety: every call is forwarded unchanged to the system allocator; the
// counters are const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // Safety: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // Safety: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // Safety: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCATIONS.with(|n| n.get()))
}

#[test]
fn rate_limited_path_allocates_nothing_after_warm_up() {
    let clock = ManualClock::new(UnixNanos(1_763_800_000_000_000_000), TimestampFormat::Ntp);
    let cfg = ReflectorConfig {
        max_pps: Some(10),
        rate_burst: Some(2),
        global_max_pps: Some(50_000),
        ..Default::default()
    };
    let mut r = Reflector::new(cfg, Registry::empty());
    let mut req = vec![0u8; 44];
    let mut reply = vec![0u8; MAX_DATAGRAM];
    let t0 = Instant::now();
    let src = |i: u32| SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 9000));
    // Warm-up: the first packet allocates the source table.
    let first = RecvMeta::new(44, src(0));
    r.process(&req, &first, t0, &clock, &mut reply);

    let ((), allocations) = counted(|| {
        // 200 000 sources, three packets each, 1 µs apart: far more sources
        // than the 65 536 the table holds, most packets over a limit.
        for i in 0..600_000u32 {
            req[0..4].copy_from_slice(&i.to_be_bytes());
            let m = RecvMeta::new(44, src(i / 3));
            let now = t0 + Duration::from_micros(u64::from(i));
            let _ = r.process(&req, &m, now, &clock, &mut reply);
        }
    });
    assert_eq!(allocations, 0, "allocations on the rate-limited path");
    let st = r.stats();
    assert!(st.dropped_rate_limited > 0);
    assert!(st.reflected > 0);
    let l = r.rate_limiter().unwrap();
    assert!(l.stats().evictions > 0);
    assert!(l.tracked_sources() <= l.max_sources());
    assert!(matches!(
        r.process(
            &req,
            &first,
            t0 + Duration::from_secs(10),
            &clock,
            &mut reply
        ),
        Outcome::Reply { .. }
    ));
}
