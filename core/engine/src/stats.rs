//! Delay statistics with bounded memory: exact min / max / mean and an
//! HdrHistogram (3 significant digits) for the quantiles, so a run of any
//! length keeps a fixed footprint. Negative samples (one-way delays between
//! clocks a little apart) go to a second histogram of their magnitudes, so
//! the quantiles stay right across zero.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest delay the histograms track: one hour, in nanoseconds.
const MAX_TRACKED_NS: u64 = 3_600_000_000_000;

/// A stream of delay samples in nanoseconds (may be negative for one-way
/// delays between unsynchronized clocks).
#[derive(Debug, Clone)]
pub struct DelayStats {
    count: u64,
    min: i64,
    max: i64,
    sum: i128,
    sum_sq: f64,
    hist: Histogram<u64>,
    /// Magnitudes of the negative samples (created on the first one).
    neg_hist: Option<Histogram<u64>>,
    negative: u64,
}

fn new_hist() -> Histogram<u64> {
    // 3 significant digits: quantiles within 0.1 %.
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("valid histogram bounds")
}

impl Default for DelayStats {
    fn default() -> Self {
        DelayStats::new()
    }
}

/// A summary of a [`DelayStats`], in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DelaySummary {
    /// Samples.
    pub count: u64,
    /// Minimum.
    pub min_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Mean.
    pub avg_ms: f64,
    /// Standard deviation.
    pub stddev_ms: f64,
    /// Median.
    pub median_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

impl DelayStats {
    /// Empty statistics.
    pub fn new() -> Self {
        let hist = new_hist();
        DelayStats {
            count: 0,
            min: i64::MAX,
            max: i64::MIN,
            sum: 0,
            sum_sq: 0.0,
            hist,
            neg_hist: None,
            negative: 0,
        }
    }

    /// Add a sample in nanoseconds.
    pub fn record(&mut self, ns: i64) {
        self.count += 1;
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
        self.sum += ns as i128;
        self.sum_sq += (ns as f64) * (ns as f64);
        if ns < 0 {
            self.negative += 1;
            let m = ns.unsigned_abs().min(MAX_TRACKED_NS);
            self.neg_hist
                .get_or_insert_with(new_hist)
                .saturating_record(m);
        } else {
            let v = (ns.max(1) as u64).min(MAX_TRACKED_NS);
            self.hist.saturating_record(v);
        }
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Samples below zero.
    pub fn negative(&self) -> u64 {
        self.negative
    }

    /// Quantile `q` in 0..=1, nanoseconds (negative samples included),
    /// clamped into the exact [min, max].
    pub fn quantile_ns(&self, q: f64) -> i64 {
        if self.count == 0 {
            return 0;
        }
        let (n, k) = (self.count, self.negative);
        // 1-based rank of the sample wanted.
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).clamp(1, n);
        // The quantile of the `r`-th of `m` samples, half a sample early so
        // that rounding never moves it to the next one.
        let at = |r: u64, m: u64| (r as f64 - 0.5) / m as f64;
        let v = match &self.neg_hist {
            Some(neg) if rank <= k => {
                // The rank-th smallest negative sample is the one with the
                // (k − rank + 1)-th smallest magnitude.
                -(neg.value_at_quantile(at(k - rank + 1, k)) as i64)
            }
            _ => self.hist.value_at_quantile(at(rank - k, n - k)) as i64,
        };
        v.clamp(self.min, self.max)
    }

    /// Summary, or `None` without samples.
    pub fn summary(&self) -> Option<DelaySummary> {
        if self.count == 0 {
            return None;
        }
        let n = self.count as f64;
        let mean = self.sum as f64 / n;
        let var = (self.sum_sq / n - mean * mean).max(0.0);
        // Quantiles are clamped into the exact [min, max] so that a
        // histogram bucket edge never reports outside the observed range.
        let q = |x: f64| self.quantile_ns(x) as f64 / 1e6;
        Some(DelaySummary {
            count: self.count,
            min_ms: self.min as f64 / 1e6,
            max_ms: self.max as f64 / 1e6,
            avg_ms: mean / 1e6,
            stddev_ms: var.sqrt() / 1e6,
            median_ms: q(0.5),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
        })
    }

    /// Add another stream's samples (totals over targets).
    pub fn merge(&mut self, o: &DelayStats) {
        if o.count == 0 {
            return;
        }
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
        self.negative += o.negative;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.hist.add(&o.hist);
        if let Some(on) = &o.neg_hist {
            let _ = self.neg_hist.get_or_insert_with(new_hist).add(on);
        }
    }

    /// The cumulative distribution at `points` quantiles (0 < q ≤ 1):
    /// `(delay ns, q)`, for plotting a CDF.
    pub fn cdf(&self, points: usize) -> Vec<(i64, f64)> {
        if self.count == 0 || points == 0 {
            return Vec::new();
        }
        (1..=points)
            .map(|i| {
                let q = i as f64 / points as f64;
                (self.quantile_ns(q), q)
            })
            .collect()
    }

    /// Histogram buckets `(upper bound ns, count)` with `buckets` linear steps
    /// between min and max (for `--histogram`).
    pub fn linear_buckets(&self, buckets: usize) -> Vec<(u64, u64)> {
        if self.count == 0 || buckets == 0 {
            return Vec::new();
        }
        let lo = self.min.max(1) as u64;
        let hi = (self.max.max(1) as u64).max(lo + 1);
        let step = (hi - lo).div_ceil(buckets as u64).max(1);
        let mut out = Vec::with_capacity(buckets);
        let mut prev = 0u64;
        for i in 1..=buckets as u64 {
            let upper = lo + step * i;
            let c = self.hist.count_between(prev, upper)
                - if prev == 0 {
                    0
                } else {
                    self.hist.count_at(prev)
                };
            out.push((upper, c));
            prev = upper;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_samples() {
        let mut s = DelayStats::new();
        for ms in 1..=100i64 {
            s.record(ms * 1_000_000);
        }
        let x = s.summary().unwrap();
        assert_eq!(x.count, 100);
        assert_eq!(x.min_ms, 1.0);
        assert_eq!(x.max_ms, 100.0);
        assert!((x.avg_ms - 50.5).abs() < 1e-9);
        assert!((x.median_ms - 50.0).abs() < 0.1, "{}", x.median_ms);
        assert!((x.p95_ms - 95.0).abs() < 0.1, "{}", x.p95_ms);
        assert!((x.p99_ms - 99.0).abs() < 0.1, "{}", x.p99_ms);
        assert!((x.stddev_ms - 28.866).abs() < 0.01, "{}", x.stddev_ms);
    }

    #[test]
    fn merge_adds_samples() {
        let mut a = DelayStats::new();
        let mut b = DelayStats::new();
        a.record(1_000_000);
        b.record(3_000_000);
        a.merge(&b);
        let s = a.summary().unwrap();
        assert_eq!((s.count, s.min_ms, s.max_ms, s.avg_ms), (2, 1.0, 3.0, 2.0));
        let c = a.cdf(2);
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].1, 1.0);
        assert!((c[1].0 - 3_000_000).abs() < 3_000);
    }

    #[test]
    fn empty_has_no_summary() {
        assert!(DelayStats::new().summary().is_none());
    }

    #[test]
    fn negative_samples_are_counted_and_kept_in_min() {
        let mut s = DelayStats::new();
        s.record(-5_000);
        s.record(10_000);
        assert_eq!(s.negative(), 1);
        assert_eq!(s.summary().unwrap().min_ms, -0.005);
    }

    #[test]
    fn quantiles_across_zero() {
        // One-way delays of clocks 4 ms apart: −5, −3, 1, 2, 10 ms.
        let mut s = DelayStats::new();
        for ms in [-5i64, -3, 1, 2, 10] {
            s.record(ms * 1_000_000);
        }
        let ms = |q: f64| s.quantile_ns(q) as f64 / 1e6;
        let close = |a: f64, b: f64| (a - b).abs() <= b.abs() * 1e-3;
        assert!(close(ms(0.2), -5.0), "{}", ms(0.2));
        assert!(close(ms(0.4), -3.0), "{}", ms(0.4));
        assert!(close(ms(0.5), 1.0), "{}", ms(0.5));
        assert!(close(ms(0.8), 2.0), "{}", ms(0.8));
        assert!(close(ms(1.0), 10.0), "{}", ms(1.0));
        let x = s.summary().unwrap();
        assert!(close(x.median_ms, 1.0) && x.min_ms == -5.0 && x.max_ms == 10.0);
        // All negative.
        let mut s = DelayStats::new();
        for ms in [-9i64, -7, -1] {
            s.record(ms * 1_000_000);
        }
        let x = s.summary().unwrap();
        assert!(close(x.median_ms, -7.0), "{}", x.median_ms);
        assert!(close(x.p99_ms, -1.0), "{}", x.p99_ms);
        // Merged totals keep the negative side.
        let mut t = DelayStats::new();
        t.record(4_000_000);
        t.merge(&s);
        assert!(close(t.summary().unwrap().median_ms, -7.0));
    }

    #[test]
    fn buckets_cover_every_sample() {
        let mut s = DelayStats::new();
        for v in [1_000_000i64, 2_000_000, 2_000_000, 9_000_000] {
            s.record(v);
        }
        let b = s.linear_buckets(4);
        assert_eq!(b.len(), 4);
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), 4);
    }
}
