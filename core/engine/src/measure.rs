//! Derived metrics with bounded memory: delay variation (IPDV, RFC 3393 /
//! RFC 5481; PDV, RFC 5481), reordering (RFC 4737), path length from the
//! received TTL, and a sliding sequence-number window for duplicates.
//!
//! Every structure here keeps a fixed footprint whatever the run length:
//! the windows are rings of [`WINDOW`] entries, the distributions
//! HdrHistograms (see [`crate::stats`]).

use std::collections::VecDeque;

use serde::Serialize;

use crate::stats::{DelayStats, DelaySummary};

/// Packets remembered by the sequence-number windows (IPDV pairs,
/// reordering extent, reflector duplicates).
pub const WINDOW: usize = 1024;

/// Signed distance `a − b` of two 32-bit sequence numbers, wrap-aware.
pub fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

/// A ring keyed by sequence number: slot `seq % WINDOW` holds the value of
/// `seq` until a sequence number `WINDOW` later takes the slot.
#[derive(Debug, Clone)]
struct SeqRing<T: Copy> {
    slots: Vec<Option<(u32, T)>>,
}

impl<T: Copy> SeqRing<T> {
    fn new() -> Self {
        SeqRing {
            slots: vec![None; WINDOW],
        }
    }

    fn get(&self, seq: u32) -> Option<T> {
        match self.slots[seq as usize % WINDOW] {
            Some((s, v)) if s == seq => Some(v),
            _ => None,
        }
    }

    /// Insert; returns false if `seq` was already there.
    fn insert(&mut self, seq: u32, v: T) -> bool {
        let slot = &mut self.slots[seq as usize % WINDOW];
        if matches!(slot, Some((s, _)) if *s == seq) {
            return false;
        }
        *slot = Some((seq, v));
        true
    }
}

/// Inter-Packet Delay Variation (RFC 3393 §2.4, RFC 5481 §4.1): for each
/// pair of packets consecutive in sending order (sequence numbers `n − 1`
/// and `n`) that were both received, `IPDV(n) = D(n) − D(n − 1)`. Pairs
/// are formed whatever order the replies arrive in, as long as the two
/// are within [`WINDOW`] sequence numbers of each other.
#[derive(Debug, Clone)]
pub struct Ipdv {
    delays: SeqRing<i64>,
    abs: DelayStats,
    signed_sum: i128,
}

impl Default for Ipdv {
    fn default() -> Self {
        Ipdv::new()
    }
}

/// Summary of the IPDV samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IpdvSummary {
    /// Pairs.
    pub count: u64,
    /// Mean of the signed IPDV (near 0 unless the delay drifts).
    pub mean_ms: f64,
    /// Smallest |IPDV|.
    pub min_abs_ms: f64,
    /// Largest |IPDV|.
    pub max_abs_ms: f64,
    /// Mean |IPDV|.
    pub mean_abs_ms: f64,
    /// Median |IPDV|.
    pub p50_abs_ms: f64,
    /// 95th percentile of |IPDV|.
    pub p95_abs_ms: f64,
    /// 99th percentile of |IPDV|.
    pub p99_abs_ms: f64,
}

impl Ipdv {
    /// No samples.
    pub fn new() -> Self {
        Ipdv {
            delays: SeqRing::new(),
            abs: DelayStats::new(),
            signed_sum: 0,
        }
    }

    fn add(&mut self, v: i64) {
        self.abs.record(v.abs());
        self.signed_sum += i128::from(v);
    }

    /// The delay of packet `seq`; returns `IPDV(seq)` when `seq − 1` was
    /// seen (and records `IPDV(seq + 1)` when `seq + 1` came first).
    pub fn record(&mut self, seq: u32, delay_ns: i64) -> Option<i64> {
        if !self.delays.insert(seq, delay_ns) {
            return None;
        }
        let before = self
            .delays
            .get(seq.wrapping_sub(1))
            .map(|prev| delay_ns - prev);
        if let Some(v) = before {
            self.add(v);
        }
        if let Some(next) = self.delays.get(seq.wrapping_add(1)) {
            self.add(next - delay_ns);
        }
        before
    }

    /// Pairs so far.
    pub fn count(&self) -> u64 {
        self.abs.count()
    }

    /// Summary, `None` without pairs.
    pub fn summary(&self) -> Option<IpdvSummary> {
        let a = self.abs.summary()?;
        Some(IpdvSummary {
            count: a.count,
            mean_ms: self.signed_sum as f64 / a.count as f64 / 1e6,
            min_abs_ms: a.min_ms,
            max_abs_ms: a.max_ms,
            mean_abs_ms: a.avg_ms,
            p50_abs_ms: a.median_ms,
            p95_abs_ms: a.p95_ms,
            p99_abs_ms: a.p99_ms,
        })
    }

    /// Add another stream's samples (totals over targets).
    pub fn merge(&mut self, other: &Ipdv) {
        self.abs.merge(&other.abs);
        self.signed_sum += other.signed_sum;
    }
}

/// Packet Delay Variation (RFC 5481 §4.2): `PDV(n) = D(n) − D_min`, the
/// delay above the smallest delay of the run. Its quantiles are the delay
/// quantiles less the minimum, so they come from the delay's histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PdvSummary {
    /// Samples.
    pub count: u64,
    /// Median PDV.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest PDV (max − min delay).
    pub max_ms: f64,
}

impl PdvSummary {
    /// From a delay summary.
    pub fn from_delay(d: &DelaySummary) -> Self {
        // Differences of millisecond figures, rounded back to whole
        // nanoseconds (the resolution of the samples).
        let above = |x: f64| ((x - d.min_ms) * 1e6).round() / 1e6;
        PdvSummary {
            count: d.count,
            p50_ms: above(d.median_ms),
            p95_ms: above(d.p95_ms),
            p99_ms: above(d.p99_ms),
            max_ms: above(d.max_ms),
        }
    }
}

/// Reordering (RFC 4737 §3, §4.2) of a stream of sequence numbers in
/// arrival order. A packet is reordered when its number is below
/// `NextExp` (one more than the largest number seen before it); its
/// extent is `i − j` where `j` is the earliest arrival with a larger
/// number, searched among the last [`WINDOW`] arrivals (an extent beyond
/// the window is recorded as `WINDOW + 1` and counted in
/// `beyond_window`). Feed each packet once (duplicates excluded).
///
/// The keys are 32-bit sequence numbers ([`Reorder::record`], unwrapped
/// against the highest seen so they may wrap) or any other value that
/// grows in sending order, such as a transmit timestamp
/// ([`Reorder::record_key`]).
#[derive(Debug, Clone, Default)]
pub struct Reorder {
    /// Highest key so far (`NextExp − 1`).
    highest: Option<i64>,
    recent: VecDeque<i64>,
    received: u64,
    reordered: u64,
    extent_sum: u64,
    extent_max: u64,
    beyond_window: u64,
}

/// Summary of a [`Reorder`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReorderSummary {
    /// Packets looked at.
    pub received: u64,
    /// Packets reordered (RFC 4737 Type-P-Reordered).
    pub reordered: u64,
    /// reordered / received (RFC 4737 §4.1.3 Type-P-Reordered-Ratio-Stream).
    pub ratio: f64,
    /// Largest reordering extent, in packets.
    pub extent_max: u64,
    /// Mean extent of the reordered packets, in packets.
    pub extent_avg: f64,
    /// Reordered packets whose extent exceeded the window.
    pub beyond_window: u64,
}

impl Reorder {
    /// Nothing seen.
    pub fn new() -> Self {
        Reorder::default()
    }

    /// Packet `seq` arrived; returns its extent when it is reordered.
    pub fn record(&mut self, seq: u32) -> Option<u64> {
        let key = match self.highest {
            None => i64::from(seq),
            // Unwrapped: the nearest value with these low 32 bits.
            Some(h) => h + seq_diff(seq, h as u32),
        };
        self.record_key(key)
    }

    /// A packet with ordering key `key` arrived; returns its extent when it
    /// is reordered.
    pub fn record_key(&mut self, key: i64) -> Option<u64> {
        self.received += 1;
        let out = match self.highest {
            // Equal keys: a duplicate (never fed) or a timestamp tie.
            Some(h) if key < h => {
                let n = self.recent.len();
                // With a full window whose oldest entry is already larger,
                // the earliest larger arrival may have scrolled out.
                let extent = match self.recent.iter().position(|&s| s > key) {
                    Some(j) if !(j == 0 && n == WINDOW) => (n - j) as u64,
                    _ => {
                        self.beyond_window += 1;
                        WINDOW as u64 + 1
                    }
                };
                self.reordered += 1;
                self.extent_sum += extent;
                self.extent_max = self.extent_max.max(extent);
                Some(extent)
            }
            _ => {
                self.highest = Some(key);
                None
            }
        };
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(key);
        out
    }

    /// Packets reordered.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// Summary, `None` before any packet.
    pub fn summary(&self) -> Option<ReorderSummary> {
        (self.received > 0).then(|| ReorderSummary {
            received: self.received,
            reordered: self.reordered,
            ratio: self.reordered as f64 / self.received as f64,
            extent_max: self.extent_max,
            extent_avg: if self.reordered == 0 {
                0.0
            } else {
                self.extent_sum as f64 / self.reordered as f64
            },
            beyond_window: self.beyond_window,
        })
    }

    /// Add another stream's counters (totals over targets).
    pub fn merge(&mut self, o: &Reorder) {
        self.received += o.received;
        self.reordered += o.reordered;
        self.extent_sum += o.extent_sum;
        self.extent_max = self.extent_max.max(o.extent_max);
        self.beyond_window += o.beyond_window;
    }
}

/// Whether a sequence number was seen recently (a sliding window).
#[derive(Debug, Clone)]
pub struct SeenWindow {
    ring: SeqRing<()>,
}

impl Default for SeenWindow {
    fn default() -> Self {
        SeenWindow {
            ring: SeqRing::new(),
        }
    }
}

impl SeenWindow {
    /// Mark `seq`; true if it was new.
    pub fn insert(&mut self, seq: u32) -> bool {
        self.ring.insert(seq, ())
    }
}

/// Hop count from a received TTL / Hop Limit: the initial value is guessed
/// as the smallest of 32, 64, 128 and 255 not below it (the common
/// defaults), hops = initial − received. `None` for TTL 0 (not reported).
pub fn hops_from_ttl(ttl: u8) -> Option<u8> {
    if ttl == 0 {
        return None;
    }
    let initial = [32u8, 64, 128, 255].into_iter().find(|&i| i >= ttl)?;
    Some(initial - ttl)
}

/// Hop counts of one direction over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct HopStats {
    /// Fewest hops seen.
    pub min: Option<u8>,
    /// Most hops seen.
    pub max: Option<u8>,
    /// Hops of the last packet.
    pub last: Option<u8>,
    /// Times the hop count changed between consecutive replies.
    pub changes: u64,
    /// Packets with a known hop count.
    pub samples: u64,
}

impl HopStats {
    /// Record the hop count of a packet; returns `(old, new)` on a change.
    pub fn record(&mut self, hops: u8) -> Option<(u8, u8)> {
        self.samples += 1;
        self.min = Some(self.min.map_or(hops, |m| m.min(hops)));
        self.max = Some(self.max.map_or(hops, |m| m.max(hops)));
        let change = match self.last {
            Some(l) if l != hops => {
                self.changes += 1;
                Some((l, hops))
            }
            _ => None,
        };
        self.last = Some(hops);
        change
    }

    /// Add another target's figures (the total keeps no `last`).
    pub fn merge(&mut self, o: &HopStats) {
        let pick = |a: Option<u8>, b: Option<u8>, f: fn(u8, u8) -> u8| match (a, b) {
            (Some(x), Some(y)) => Some(f(x, y)),
            (x, y) => x.or(y),
        };
        self.min = pick(self.min, o.min, u8::min);
        self.max = pick(self.max, o.max, u8::max);
        self.last = None;
        self.changes += o.changes;
        self.samples += o.samples;
    }
}

/// A change of path length seen in the replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PathChange {
    /// `forward` (sender → reflector, from the Session-Sender TTL field) or
    /// `backward` (reflector → sender, from the reply's TTL).
    pub direction: &'static str,
    /// Session-Sender Sequence Number of the reply that showed it.
    pub seq: u32,
    /// Hops before.
    pub from_hops: u8,
    /// Hops now.
    pub to_hops: u8,
    /// TTL received.
    pub ttl: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= b.abs() * 1e-3 + 1e-9
    }

    #[test]
    fn ipdv_of_known_delays() {
        // D = 10, 12, 11, 15, 15 ms: IPDV = +2, −1, +4, 0.
        let mut x = Ipdv::new();
        let got: Vec<_> = [10, 12, 11, 15, 15]
            .iter()
            .enumerate()
            .map(|(i, d)| x.record(i as u32, d * MS))
            .collect();
        assert_eq!(
            got,
            vec![None, Some(2 * MS), Some(-MS), Some(4 * MS), Some(0)]
        );
        let s = x.summary().unwrap();
        assert_eq!(s.count, 4);
        assert_eq!(s.mean_ms, 1.25);
        assert_eq!(s.min_abs_ms, 0.0);
        assert_eq!(s.max_abs_ms, 4.0);
        assert_eq!(s.mean_abs_ms, 1.75);
        assert!(close(s.p50_abs_ms, 1.0), "{}", s.p50_abs_ms);
        assert!(close(s.p99_abs_ms, 4.0), "{}", s.p99_abs_ms);
    }

    #[test]
    fn ipdv_pairs_only_consecutive_received_packets_in_any_arrival_order() {
        let mut x = Ipdv::new();
        // Packet 2 lost; 4 arrives before 3.
        assert_eq!(x.record(0, 10 * MS), None);
        assert_eq!(x.record(1, 13 * MS), Some(3 * MS));
        assert_eq!(x.record(4, 20 * MS), None);
        assert_eq!(x.record(3, 16 * MS), None); // 3 has no predecessor...
        assert_eq!(x.count(), 2); // ...but IPDV(4) = 20 − 16 was recorded
        let s = x.summary().unwrap();
        assert_eq!(s.mean_ms, 3.5);
        assert_eq!(s.max_abs_ms, 4.0);
        // A duplicate adds nothing.
        assert_eq!(x.record(1, 99 * MS), None);
        assert_eq!(x.count(), 2);
    }

    #[test]
    fn ipdv_across_sequence_wrap() {
        let mut x = Ipdv::new();
        x.record(u32::MAX, 5 * MS);
        assert_eq!(x.record(0, 7 * MS), Some(2 * MS));
    }

    #[test]
    fn pdv_is_delay_above_the_minimum() {
        let mut d = DelayStats::new();
        for v in 1..=100 {
            d.record((10 + v) * MS); // 11..=110 ms
        }
        let p = PdvSummary::from_delay(&d.summary().unwrap());
        assert_eq!(p.count, 100);
        assert!(close(p.max_ms, 99.0));
        assert!((p.p50_ms - 49.0).abs() < 0.1, "{}", p.p50_ms);
        assert!((p.p95_ms - 94.0).abs() < 0.1, "{}", p.p95_ms);
        assert!((p.p99_ms - 98.0).abs() < 0.1, "{}", p.p99_ms);
    }

    #[test]
    fn rfc4737_example_extents() {
        // RFC 4737 §4.2.2-style: arrivals 1 2 4 5 3 6 7 → 3 is reordered
        // with extent 2 (4 and 5 arrived before it).
        let mut r = Reorder::new();
        let ext: Vec<_> = [1u32, 2, 4, 5, 3, 6, 7]
            .iter()
            .map(|&s| r.record(s))
            .collect();
        assert_eq!(ext, vec![None, None, None, None, Some(2), None, None]);
        let s = r.summary().unwrap();
        assert_eq!((s.received, s.reordered, s.extent_max), (7, 1, 2));
        assert!(close(s.ratio, 1.0 / 7.0));
    }

    #[test]
    fn reordering_counts_every_late_packet_with_its_own_extent() {
        // 1 5 2 3 4 6: 2, 3, 4 are below NextExp = 6 → three reordered,
        // each with extent measured back to 5 (1, 2, 3 arrivals after it).
        let mut r = Reorder::new();
        let ext: Vec<_> = [1u32, 5, 2, 3, 4, 6].iter().map(|&s| r.record(s)).collect();
        assert_eq!(ext, vec![None, None, Some(1), Some(2), Some(3), None]);
        let s = r.summary().unwrap();
        assert_eq!((s.reordered, s.extent_max), (3, 3));
        assert!(close(s.extent_avg, 2.0));
        assert!(close(s.ratio, 0.5));
        // In order: nothing reordered.
        let mut r = Reorder::new();
        for s in 10..20 {
            assert_eq!(r.record(s), None);
        }
        assert_eq!(r.summary().unwrap().reordered, 0);
    }

    #[test]
    fn reorder_window_is_bounded() {
        let mut r = Reorder::new();
        r.record(0);
        for s in 2..(WINDOW as u32 + 10) {
            r.record(s);
        }
        // 1 arrives more than WINDOW packets late.
        assert_eq!(r.record(1), Some(WINDOW as u64 + 1));
        assert_eq!(r.summary().unwrap().beyond_window, 1);
        assert!(r.recent.len() <= WINDOW);
    }

    #[test]
    fn reorder_across_wrap() {
        let mut r = Reorder::new();
        let ext: Vec<_> = [u32::MAX - 1, 0, u32::MAX, 1]
            .iter()
            .map(|&s| r.record(s))
            .collect();
        assert_eq!(ext, vec![None, None, Some(1), None]);
    }

    #[test]
    fn reorder_by_timestamp_keys() {
        let mut r = Reorder::new();
        let ext: Vec<_> = [100i64, 300, 200, 400, 400]
            .iter()
            .map(|&k| r.record_key(k))
            .collect();
        assert_eq!(ext, vec![None, None, Some(1), None, None]);
        assert_eq!(r.reordered(), 1);
    }

    #[test]
    fn hop_guess() {
        assert_eq!(hops_from_ttl(255), Some(0));
        assert_eq!(hops_from_ttl(253), Some(2));
        assert_eq!(hops_from_ttl(64), Some(0));
        assert_eq!(hops_from_ttl(63), Some(1));
        assert_eq!(hops_from_ttl(128), Some(0));
        assert_eq!(hops_from_ttl(120), Some(8));
        assert_eq!(hops_from_ttl(30), Some(2));
        assert_eq!(hops_from_ttl(0), None);
    }

    #[test]
    fn hop_changes() {
        let mut h = HopStats::default();
        assert_eq!(h.record(0), None);
        assert_eq!(h.record(0), None);
        assert_eq!(h.record(1), Some((0, 1)));
        assert_eq!(h.record(0), Some((1, 0)));
        assert_eq!(
            (h.min, h.max, h.last, h.changes, h.samples),
            (Some(0), Some(1), Some(0), 2, 4)
        );
    }

    #[test]
    fn seen_window() {
        let mut w = SeenWindow::default();
        assert!(w.insert(5));
        assert!(!w.insert(5));
        assert!(w.insert(5 + WINDOW as u32));
        assert!(w.insert(5)); // fell out of the window
    }
}
