//! Request rate limiting for the reflector: a token bucket per source
//! address and one global bucket, checked before any authentication work so
//! a flood costs one table lookup per packet.
//!
//! * Sans-I/O: time is the `now: Instant` the caller passes in.
//! * A source is an IPv4 address or an IPv6 /64.
//! * Bounded memory, no allocation per packet after warm-up: the per-source
//!   table is a fixed array of 8-way sets, allocated once on the first
//!   packet. A new source takes a free way of its set or evicts the way seen
//!   least recently (LRU within the set). The set is chosen with a randomly
//!   keyed hash, so nobody can aim evictions at a chosen victim; an evicted
//!   source simply starts again with a full bucket.
//! * Token arithmetic is integral: a token is 10^9 units and a bucket gains
//!   `rate` units per nanosecond, so any rate from 1 pps up is exact.
//!
//! * The global bucket is a [`GlobalLimit`]: one atomic word (GCRA, the
//!   virtual-scheduling form of a token bucket), shared by every worker of
//!   a reflector through an `Arc`, so `--global-max-pps` caps the process,
//!   not each worker. Taking a token is one compare-and-swap.
//!
//! Spoofed sources defeat any per-source limit; the global bucket is what
//! bounds the reflector's total output in that case.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Default number of source addresses tracked at once.
pub const DEFAULT_MAX_SOURCES: usize = 65_536;

/// Ways per set of the per-source table.
const WAYS: usize = 8;

/// Units per token (one token = one request).
const UNIT: u64 = 1_000_000_000;

/// Highest rate and burst honoured (10^9 requests per second); above that
/// the limit is effectively off, and the arithmetic stays within u64.
const MAX_RATE: u64 = 1_000_000_000;

/// Why the limiter refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limited {
    /// The source address exceeded its own rate.
    PerSource,
    /// The reflector-wide rate was exceeded.
    Global,
}

/// A token bucket: `rate` tokens per second, at most `burst` tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Refill rate, tokens (requests) per second.
    rate: u64,
    /// Capacity in units.
    capacity: u64,
}

impl Bucket {
    /// A bucket of `rate` requests per second and `burst` requests of
    /// capacity (a burst of 0 is taken as 1: one request must always fit).
    pub fn new(rate: u64, burst: u64) -> Self {
        Bucket {
            rate: rate.clamp(1, MAX_RATE),
            capacity: burst.clamp(1, MAX_RATE) * UNIT,
        }
    }

    /// Requests per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Burst, in requests.
    pub fn burst(&self) -> u64 {
        self.capacity / UNIT
    }

    /// Units held after refilling `units` (as of `last_ns`) up to `now_ns`.
    #[inline]
    fn refill(&self, units: u64, last_ns: u64, now_ns: u64) -> u64 {
        let elapsed = now_ns.saturating_sub(last_ns) as u128;
        let gained = elapsed * self.rate as u128;
        (units as u128 + gained).min(self.capacity as u128) as u64
    }
}

/// A reflector-wide request rate cap shared by every worker (clones share
/// the same bucket): `rate` requests per second with a burst of `burst`.
///
/// GCRA: the bucket is one theoretical arrival time `tat` in nanoseconds
/// since the first request; a request at `t` is allowed when
/// `max(tat, t) + T <= t + burst × T` (T = 1/rate) and then moves `tat` to
/// `max(tat, t) + T`. A refused request changes nothing.
#[derive(Debug, Clone)]
pub struct GlobalLimit {
    inner: Arc<Gcra>,
}

#[derive(Debug)]
struct Gcra {
    bucket: Bucket,
    /// Emission interval T, ns (at least 1).
    interval_ns: u64,
    /// Burst tolerance, burst × T, ns.
    tolerance_ns: u64,
    tat: AtomicU64,
    epoch: OnceLock<Instant>,
}

impl GlobalLimit {
    /// A shared cap of `rate` requests per second, `burst` at once.
    pub fn new(bucket: Bucket) -> Self {
        let interval_ns = (1_000_000_000 / bucket.rate).max(1);
        GlobalLimit {
            inner: Arc::new(Gcra {
                bucket,
                interval_ns,
                tolerance_ns: interval_ns.saturating_mul(bucket.burst()),
                tat: AtomicU64::new(0),
                epoch: OnceLock::new(),
            }),
        }
    }

    /// `rate` requests per second with one second's worth of burst.
    pub fn per_second(rate: u64) -> Self {
        Self::new(Bucket::new(rate, rate))
    }

    /// The bucket's parameters.
    pub fn bucket(&self) -> Bucket {
        self.inner.bucket
    }

    fn now_ns(&self, now: Instant) -> u64 {
        let epoch = *self.inner.epoch.get_or_init(|| now);
        now.saturating_duration_since(epoch)
            .as_nanos()
            .min(u64::MAX as u128) as u64
    }

    /// Take one request's worth at `now`; `false` (nothing taken) when the
    /// cap is reached.
    pub fn try_take(&self, now: Instant) -> bool {
        let now_ns = self.now_ns(now);
        self.take_at(now_ns)
    }

    fn take_at(&self, now_ns: u64) -> bool {
        let g = &*self.inner;
        let mut tat = g.tat.load(Ordering::Relaxed);
        loop {
            let next = tat.max(now_ns).saturating_add(g.interval_ns);
            if next - now_ns.min(next) > g.tolerance_ns {
                return false;
            }
            match g
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => tat = seen,
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// Source address (IPv4 as IPv4-mapped IPv6).
    addr: [u8; 16],
    /// Units in the bucket as of `last_ns`.
    units: u64,
    /// Time of the last request, ns since the limiter's epoch.
    last_ns: u64,
    used: bool,
}

/// Counters of the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimitStats {
    /// Requests refused by a per-source bucket.
    pub per_source: u64,
    /// Requests refused by the global bucket.
    pub global: u64,
    /// Sources evicted from the table to make room for new ones.
    pub evictions: u64,
}

/// Per-source and global token buckets. See the module documentation.
#[derive(Debug)]
pub struct RateLimiter {
    per_source: Option<Bucket>,
    global: Option<GlobalLimit>,
    /// Lazily allocated `sets * WAYS` entries.
    table: Vec<Entry>,
    sets: usize,
    hasher: RandomState,
    epoch: Option<Instant>,
    stats: RateLimitStats,
}

impl RateLimiter {
    /// A limiter with a per-source bucket of `max_pps` requests per second
    /// and `burst` requests (default: one second's worth), a global bucket of
    /// `global_max_pps` (burst one second's worth), tracking up to
    /// [`DEFAULT_MAX_SOURCES`] sources. `None` when neither limit is set.
    pub fn from_limits(
        max_pps: Option<u64>,
        burst: Option<u64>,
        global_max_pps: Option<u64>,
    ) -> Option<Self> {
        Self::with_shared_global(max_pps, burst, global_max_pps.map(GlobalLimit::per_second))
    }

    /// Like [`from_limits`](Self::from_limits), with a global cap shared
    /// with other limiters (one per reflector worker).
    pub fn with_shared_global(
        max_pps: Option<u64>,
        burst: Option<u64>,
        global: Option<GlobalLimit>,
    ) -> Option<Self> {
        if max_pps.is_none() && global.is_none() {
            return None;
        }
        let per_source = max_pps.map(|r| Bucket::new(r, burst.unwrap_or(r)));
        Some(Self::with_global(per_source, global, DEFAULT_MAX_SOURCES))
    }

    /// A limiter with the given buckets, tracking up to `max_sources`
    /// sources (rounded up to a power of two, at least one set of 8).
    pub fn new(per_source: Option<Bucket>, global: Option<Bucket>, max_sources: usize) -> Self {
        Self::with_global(per_source, global.map(GlobalLimit::new), max_sources)
    }

    fn with_global(
        per_source: Option<Bucket>,
        global: Option<GlobalLimit>,
        max_sources: usize,
    ) -> Self {
        let sets = max_sources.div_ceil(WAYS).max(1).next_power_of_two();
        RateLimiter {
            per_source,
            global,
            table: Vec::new(),
            sets,
            hasher: RandomState::new(),
            epoch: None,
            stats: RateLimitStats::default(),
        }
    }

    /// The per-source bucket parameters.
    pub fn per_source(&self) -> Option<Bucket> {
        self.per_source
    }

    /// The global bucket parameters.
    pub fn global(&self) -> Option<Bucket> {
        self.global.as_ref().map(GlobalLimit::bucket)
    }

    /// Most sources tracked at once.
    pub fn max_sources(&self) -> usize {
        self.sets * WAYS
    }

    /// Sources tracked now.
    pub fn tracked_sources(&self) -> usize {
        self.table.iter().filter(|e| e.used).count()
    }

    /// Counters so far.
    pub fn stats(&self) -> &RateLimitStats {
        &self.stats
    }

    /// Take one token for a request from `src` at `now`, from its own
    /// bucket and the global one; refuse (taking nothing) when either is
    /// empty.
    pub fn check(&mut self, src: IpAddr, now: Instant) -> Result<(), Limited> {
        let epoch = *self.epoch.get_or_insert(now);
        let now_ns = now
            .saturating_duration_since(epoch)
            .as_nanos()
            .min(u64::MAX as u128) as u64;

        let global_ns = self.global.as_ref().map(|g| g.now_ns(now));

        if let Some(b) = self.per_source {
            let i = self.slot(src, b, now_ns);
            let e = &mut self.table[i];
            let units = b.refill(e.units, e.last_ns, now_ns);
            e.units = units;
            e.last_ns = e.last_ns.max(now_ns);
            if units < UNIT {
                self.stats.per_source += 1;
                return Err(Limited::PerSource);
            }
            if let (Some(g), Some(t)) = (&self.global, global_ns) {
                if !g.take_at(t) {
                    self.stats.global += 1;
                    return Err(Limited::Global);
                }
            }
            self.table[i].units -= UNIT;
        } else if let (Some(g), Some(t)) = (&self.global, global_ns) {
            if !g.take_at(t) {
                self.stats.global += 1;
                return Err(Limited::Global);
            }
        }
        Ok(())
    }

    /// Index of `src`'s entry, claiming a free or the least recently used
    /// way of its set for a new source (which starts with a full bucket).
    fn slot(&mut self, src: IpAddr, bucket: Bucket, now_ns: u64) -> usize {
        if self.table.is_empty() {
            // Warm-up: the one allocation, on the first packet.
            self.table = vec![Entry::default(); self.sets * WAYS];
        }
        let addr = source_key(src);
        let set = (self.hasher.hash_one(addr) as usize) & (self.sets - 1);
        let ways = set * WAYS..set * WAYS + WAYS;
        let mut victim = ways.start;
        let mut victim_key = (true, u64::MAX);
        for i in ways {
            let e = &self.table[i];
            if e.used && e.addr == addr {
                return i;
            }
            // Prefer a free way, then the one idle longest.
            let key = (e.used, e.last_ns);
            if key < victim_key {
                victim = i;
                victim_key = key;
            }
        }
        if self.table[victim].used {
            self.stats.evictions += 1;
        }
        self.table[victim] = Entry {
            addr,
            units: bucket.capacity,
            last_ns: now_ns,
            used: true,
        };
        victim
    }
}

/// The table key of a source: an IPv4 address (also when it arrives
/// IPv4-mapped), or the /64 prefix of an IPv6 address, the smallest block
/// one subscriber is usually given (so one host cannot evade its limit by
/// walking its interface identifiers).
fn source_key(src: IpAddr) -> [u8; 16] {
    match src.to_canonical() {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => {
            let mut o = a.octets();
            o[8..].fill(0);
            o
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn unlimited_when_nothing_is_set() {
        assert!(RateLimiter::from_limits(None, Some(5), None).is_none());
    }

    #[test]
    fn burst_then_steady_rate_per_source() {
        let t0 = Instant::now();
        let mut l = RateLimiter::from_limits(Some(10), Some(3), None).unwrap();
        // A full bucket of 3, then refused.
        for _ in 0..3 {
            assert_eq!(l.check(ip(1), t0), Ok(()));
        }
        assert_eq!(l.check(ip(1), t0), Err(Limited::PerSource));
        // 10 pps: one token per 100 ms.
        assert_eq!(l.check(ip(1), ms(t0, 99)), Err(Limited::PerSource));
        assert_eq!(l.check(ip(1), ms(t0, 100)), Ok(()));
        assert_eq!(l.check(ip(1), ms(t0, 150)), Err(Limited::PerSource));
        assert_eq!(l.check(ip(1), ms(t0, 200)), Ok(()));
        // Idle for a long time: back to the burst, not more.
        let later = ms(t0, 60_000);
        for _ in 0..3 {
            assert_eq!(l.check(ip(1), later), Ok(()));
        }
        assert_eq!(l.check(ip(1), later), Err(Limited::PerSource));
        assert_eq!(l.stats().per_source, 4);
    }

    #[test]
    fn sources_are_limited_independently() {
        let t0 = Instant::now();
        let mut l = RateLimiter::from_limits(Some(1), Some(1), None).unwrap();
        assert_eq!(l.check(ip(1), t0), Ok(()));
        assert_eq!(l.check(ip(1), t0), Err(Limited::PerSource));
        assert_eq!(l.check(ip(2), t0), Ok(()));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(l.check(v6, t0), Ok(()));
        assert_eq!(l.check(v6, t0), Err(Limited::PerSource));
        // IPv6 sources are limited per /64.
        let same64: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        assert_eq!(l.check(same64, t0), Err(Limited::PerSource));
        let other64: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert_eq!(l.check(other64, t0), Ok(()));
        // An IPv4-mapped IPv6 source is the same host as its IPv4 form.
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(l.check(mapped, t0), Err(Limited::PerSource));
    }

    #[test]
    fn default_burst_is_one_second_of_rate() {
        let t0 = Instant::now();
        let mut l = RateLimiter::from_limits(Some(5), None, None).unwrap();
        assert_eq!(l.per_source().unwrap().burst(), 5);
        let ok = (0..10).filter(|_| l.check(ip(1), t0).is_ok()).count();
        assert_eq!(ok, 5);
    }

    #[test]
    fn global_cap_applies_across_sources() {
        let t0 = Instant::now();
        let mut l = RateLimiter::from_limits(None, None, Some(4)).unwrap();
        let ok = (0..20u8).filter(|i| l.check(ip(*i), t0).is_ok()).count();
        assert_eq!(ok, 4);
        assert_eq!(l.stats().global, 16);
        // 4 pps: one more after 250 ms.
        assert_eq!(l.check(ip(100), ms(t0, 250)), Ok(()));
        assert_eq!(l.check(ip(101), ms(t0, 251)), Err(Limited::Global));
        // No per-source table is built when only the global cap is set.
        assert_eq!(l.tracked_sources(), 0);
    }

    #[test]
    fn a_refused_request_takes_no_token_from_either_bucket() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(Some(Bucket::new(1, 1)), Some(Bucket::new(1, 2)), 64);
        assert_eq!(l.check(ip(1), t0), Ok(()));
        // Source 1 is empty: refused without touching the global bucket...
        assert_eq!(l.check(ip(1), t0), Err(Limited::PerSource));
        // ...so source 2 still gets the global bucket's second token.
        assert_eq!(l.check(ip(2), t0), Ok(()));
        // Global is empty now: source 3 is refused, and keeps its own token.
        assert_eq!(l.check(ip(3), t0), Err(Limited::Global));
        assert_eq!(l.check(ip(3), ms(t0, 1_000)), Ok(()));
    }

    #[test]
    fn table_is_bounded_and_evicts_the_least_recently_seen() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(Some(Bucket::new(1, 1)), None, 8);
        assert_eq!(l.max_sources(), 8);
        for i in 0..8u8 {
            assert_eq!(l.check(ip(i), ms(t0, i as u64)), Ok(()));
        }
        assert_eq!(l.tracked_sources(), 8);
        assert_eq!(l.stats().evictions, 0);
        // Source 0 was seen least recently: a ninth source replaces it.
        assert_eq!(l.check(ip(8), ms(t0, 10)), Ok(()));
        assert_eq!(l.tracked_sources(), 8);
        assert_eq!(l.stats().evictions, 1);
        // Source 7 is still tracked and still empty.
        assert_eq!(l.check(ip(7), ms(t0, 11)), Err(Limited::PerSource));
        // Source 0 comes back as new, with a full bucket (evicting source 1).
        assert_eq!(l.check(ip(0), ms(t0, 12)), Ok(()));
        assert_eq!(l.stats().evictions, 2);
        let cap = l.table.capacity();
        for i in 0..=255u8 {
            let _ = l.check(ip(i), ms(t0, 20 + i as u64));
        }
        assert_eq!(l.tracked_sources(), 8);
        assert_eq!(l.table.capacity(), cap, "no allocation after warm-up");
    }

    #[test]
    fn time_going_backwards_neither_panics_nor_refills() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut l = RateLimiter::from_limits(Some(1), Some(1), Some(1)).unwrap();
        assert_eq!(l.check(ip(1), t0), Ok(()));
        let earlier = t0 - Duration::from_secs(5);
        assert!(l.check(ip(1), earlier).is_err());
        assert!(l.check(ip(2), earlier).is_err());
    }

    #[test]
    fn extreme_rates_do_not_overflow() {
        let t0 = Instant::now();
        let mut l =
            RateLimiter::from_limits(Some(u64::MAX), Some(u64::MAX), Some(u64::MAX)).unwrap();
        for i in 0..1000u32 {
            assert_eq!(
                l.check(ip(1), t0 + Duration::from_nanos(u64::from(i))),
                Ok(())
            );
        }
        assert_eq!(
            l.check(ip(1), t0 + Duration::from_secs(100 * 365 * 86_400)),
            Ok(())
        );
        let b = Bucket::new(0, 0);
        assert_eq!((b.rate(), b.burst()), (1, 1));
    }
}
