//! The sender's memory stays bounded on a run of any length: the live heap
//! after 300,000 packets (with losses, reordering and duplicates, so every
//! window and table is exercised) is what it was after 30,000.
//!
//! One test in this binary, so no other test's allocations are counted.
// A global allocator is an `unsafe impl`; this one only counts and forwards.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use stamp_core::clock::{Clock, ManualClock, TimestampSource, UnixNanos};
use stamp_core::reflector::{Outcome, Reflector, ReflectorConfig};
use stamp_core::registry::Registry;
use stamp_core::sender::{SenderConfig, SenderSession};
use stamp_core::transport::RecvMeta;
use stamp_wire::{ErrorEstimate, TimestampFormat, MAX_DATAGRAM};

struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        // SAFETY: same layout, passed through.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        // SAFETY: allocated by System.alloc with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as i64 - l.size() as i64, Ordering::Relaxed);
        // SAFETY: as for dealloc, new size from the caller.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn live_heap_is_flat_from_30k_to_300k_packets() {
    let est = ErrorEstimate::new(true, TimestampFormat::Ptp, 0, 1);
    let clock = ManualClock::new(UnixNanos(1_763_800_000_000_000_000), TimestampFormat::Ptp)
        .with_error_estimate(est);
    let mut s = SenderSession::new(
        SenderConfig {
            timeout: Duration::from_millis(500),
            ..Default::default()
        },
        Registry::empty(),
        vec![],
    )
    .unwrap();
    let mut r = Reflector::new(
        ReflectorConfig {
            stateful: true,
            ..Default::default()
        },
        Registry::empty(),
    );
    let peer = SocketAddr::from(([192, 0, 2, 1], 40000));
    let start = Instant::now();
    let mut req = vec![0u8; MAX_DATAGRAM];
    let mut rep = vec![0u8; MAX_DATAGRAM];
    // A held-back reply, released a few packets later (reordering).
    let mut held: Option<(Vec<u8>, u32)> = None;
    let mut live_at = Vec::new();
    for i in 0..300_000u32 {
        let now = start + Duration::from_millis(u64::from(i));
        clock.advance(1_000_000);
        let n = s.build_request(&mut req, now, &clock);
        if i % 97 == 0 {
            continue; // lost forward
        }
        let m = RecvMeta::new(n, peer);
        let Outcome::Reply { len, .. } = r.process(&req[..n], &m, now, &clock, &mut rep) else {
            panic!()
        };
        clock.advance(200_000);
        let mut meta = RecvMeta::new(len, peer);
        // The path length changes now and then: events are bounded too.
        meta.ttl = Some(if (i / 5_000) % 2 == 0 { 255 } else { 254 });
        if i % 89 == 0 {
            continue; // lost backward
        }
        if i % 101 == 0 && held.is_none() {
            held = Some((rep[..len].to_vec(), i));
            continue;
        }
        let t4 = clock.now();
        s.on_reply(&rep[..len], &meta, t4, TimestampSource::Kernel, est);
        if i % 113 == 0 {
            s.on_reply(&rep[..len], &meta, t4, TimestampSource::Kernel, est); // duplicate
        }
        if let Some((b, at)) = held.take_if(|(_, at)| i >= *at + 3) {
            let _ = at;
            s.on_reply(&b, &meta, clock.now(), TimestampSource::Kernel, est);
        }
        s.expire(now);
        if i == 30_000 || i == 299_999 {
            live_at.push(LIVE.load(Ordering::Relaxed));
        }
    }
    let st = s.stats();
    assert!(st.lost > 5_000 && st.reorder.reordered() > 1_000 && st.duplicates > 1_000);
    assert!(st.path_change_count > 50);
    let growth = live_at[1] - live_at[0];
    eprintln!("live heap {live_at:?}, growth {growth} bytes");
    assert!(
        growth < 64 * 1024,
        "live heap grew by {growth} bytes from 30k to 300k packets ({live_at:?})"
    );
}
