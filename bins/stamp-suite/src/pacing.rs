//! Precise pacing for a dedicated sender thread: sleep to shortly before the
//! scheduled time, then spin for the last stretch.
//!
//! Why not a tokio interval: tokio's timer wheel has 1 ms resolution, so a
//! 1 ms interval fires about 1.5 ms late and intervals below 1 ms are not
//! honoured at all. Here the thread sleeps with `clock_nanosleep(2)` to an
//! absolute CLOCK_MONOTONIC time (the clock `Instant` reads on Linux) with
//! its timer slack at 1 ns (`PR_SET_TIMERSLACK`, prctl(2)), waking `spin`
//! before the deadline, and spins on the clock for the rest. The schedule is
//! absolute (`start + k × interval`), so lateness does not accumulate.
//!
//! The spin (default 50 µs) is configurable with the environment variable
//! `STAMP_PACING_SPIN_US` (0 = pure sleep); an interval shorter than the
//! spin makes the pacing thread spin all the time, which is what intervals
//! of tens of microseconds need.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Default spin before each deadline.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// Longest single sleep, so a stop request is seen within this time even at
/// a 1 packet per second (or slower) rate.
const MAX_SLEEP: Duration = Duration::from_millis(100);

/// The spin from `STAMP_PACING_SPIN_US`, or [`DEFAULT_SPIN`].
pub fn spin_from_env() -> Duration {
    std::env::var("STAMP_PACING_SPIN_US")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_SPIN, Duration::from_micros)
}

/// Make the calling thread's timers fire on time: timer slack 1 ns (the
/// default 50 µs would eat the spin margin). Best effort.
pub fn precise_timers() {
    #[cfg(target_os = "linux")]
    {
        if let Err(e) = nix::sys::prctl::set_timerslack(1) {
            tracing::debug!(error = %e, "PR_SET_TIMERSLACK refused");
        }
    }
}

/// An absolute schedule `start + k × interval`.
#[derive(Debug, Clone)]
pub struct Pacer {
    next: Instant,
    interval: Duration,
    spin: Duration,
}

impl Pacer {
    /// A schedule whose first slot is `start`.
    pub fn new(start: Instant, interval: Duration, spin: Duration) -> Self {
        Pacer {
            next: start,
            interval,
            spin,
        }
    }

    /// The next scheduled time.
    #[allow(dead_code)] // the tests and stamp-bench (which includes this file) use it
    pub fn next(&self) -> Instant {
        self.next
    }

    /// Wait for the next slot and return it (the scheduled time, so the
    /// caller can measure how late it is); `None` when `stop` was raised.
    pub fn wait(&mut self, stop: &AtomicBool) -> Option<Instant> {
        let deadline = self.next;
        loop {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                return Some(deadline);
            }
            let left = deadline - now;
            if left > self.spin {
                sleep_for((left - self.spin).min(MAX_SLEEP));
            } else {
                while Instant::now() < deadline {
                    std::hint::spin_loop();
                }
                return Some(deadline);
            }
        }
    }

    /// Move to the next slot. When more than one interval behind (the thread
    /// was descheduled, the machine stalled), restart the schedule from now
    /// instead of sending the missed packets as a burst.
    pub fn advance(&mut self) {
        self.next += self.interval;
        let now = Instant::now();
        if now > self.next + self.interval {
            self.next = now;
        }
    }
}

/// How late sends were against the schedule: 1 µs buckets up to 10 ms,
/// allocated once, so recording costs nothing on the pacing path.
#[derive(Debug, Clone)]
pub struct Lateness {
    buckets: Vec<u32>,
    over: u64,
    count: u64,
    max_ns: u64,
}

impl Default for Lateness {
    fn default() -> Self {
        Lateness {
            buckets: vec![0; 10_000],
            over: 0,
            count: 0,
            max_ns: 0,
        }
    }
}

impl Lateness {
    /// Record one send at `actual` for the slot `scheduled`.
    pub fn record(&mut self, scheduled: Instant, actual: Instant) {
        let ns = actual.saturating_duration_since(scheduled).as_nanos() as u64;
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
        match self.buckets.get_mut((ns / 1000) as usize) {
            Some(b) => *b += 1,
            None => self.over += 1,
        }
    }

    /// Sends recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile in µs (bucket upper bound; 10 000 when beyond).
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let want = ((self.count as f64 * q).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += u64::from(*b);
            if seen >= want {
                return (i + 1) as f64;
            }
        }
        self.buckets.len() as f64
    }

    /// The largest lateness in µs.
    pub fn max_us(&self) -> f64 {
        self.max_ns as f64 / 1000.0
    }
}

/// Sleep for `d` with `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`
/// (restarted after a signal, to the same absolute time).
#[cfg(target_os = "linux")]
fn sleep_for(d: Duration) {
    use nix::time::{clock_gettime, clock_nanosleep, ClockId, ClockNanosleepFlags};
    let Ok(now) = clock_gettime(ClockId::CLOCK_MONOTONIC) else {
        std::thread::sleep(d);
        return;
    };
    let target = now + nix::sys::time::TimeSpec::from_duration(d);
    while let Err(nix::errno::Errno::EINTR) = clock_nanosleep(
        ClockId::CLOCK_MONOTONIC,
        ClockNanosleepFlags::TIMER_ABSTIME,
        &target,
    ) {}
}

#[cfg(not(target_os = "linux"))]
fn sleep_for(d: Duration) {
    std::thread::sleep(d);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_absolute_and_skips_missed_slots() {
        let start = Instant::now();
        let mut p = Pacer::new(start, Duration::from_millis(1), Duration::ZERO);
        p.advance();
        assert_eq!(p.next(), start + Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        p.advance();
        // Far behind: restarted from now, not 2 ms after start.
        assert!(p.next() >= start + Duration::from_millis(5));
    }

    #[test]
    fn wait_returns_at_or_after_the_slot_and_honours_stop() {
        let stop = AtomicBool::new(false);
        let start = Instant::now() + Duration::from_millis(2);
        let mut p = Pacer::new(start, Duration::from_micros(100), DEFAULT_SPIN);
        precise_timers();
        let slot = p.wait(&stop).unwrap();
        assert_eq!(slot, start);
        assert!(Instant::now() >= start);
        stop.store(true, Ordering::Relaxed);
        p.advance();
        assert_eq!(p.wait(&stop), None);
    }
}
