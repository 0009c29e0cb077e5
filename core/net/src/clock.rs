//! The system clock as a STAMP [`Clock`]: timestamps in NTP (UTC) or PTP
//! (TAI) format (RFC 8762 §4.2.1), with the Error Estimate (RFC 4656
//! §4.1.2: S from the kernel's synchronization state, Z from the format,
//! RFC 8186 §2.3) and the synchronization source of the Timestamp
//! Information TLV (RFC 8972 §4.3, §5.4).
//!
//! The kernel's view of its own synchronization comes from adjtimex(2)
//! (read-only, modes 0): an NTP or PTP daemon that disciplines the clock
//! clears STA_UNSYNC and keeps `esterror` / `maxerror` current. It is read
//! at most once per second and cached in atomics, so the per-packet calls
//! take no lock and make no extra system call.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU16, AtomicU64, Ordering};
use std::time::Instant;

use stamp_core::clock::{Clock, SyncSource, UnixNanos};
use stamp_wire::{ErrorEstimate, TimestampFormat};

const NANOS_PER_SEC: u64 = 1_000_000_000;
/// How often the kernel's sync state and TAI offset are re-read.
const REFRESH_NANOS: u64 = NANOS_PER_SEC;
/// TAI − UTC since 2017-01-01 (IERS Bulletin C). Used when the kernel's TAI
/// offset is unset (0), which it is unless a time daemon sets it (chrony's
/// `leapsectz`, ptp4l, ntpd with a leap-second file): CLOCK_TAI then equals
/// CLOCK_REALTIME and PTP timestamps would be 37 s off.
const DEFAULT_TAI_OFFSET_S: i64 = 37;
/// Above this the kernel's `maxerror` means "no idea" (NTP_PHASE_LIMIT,
/// 16 s, is where the kernel parks it when unsynchronized).
const SANE_MAX_ERROR_NANOS: u64 = 16 * NANOS_PER_SEC;
/// The kernel reports errors in microseconds: "0" means "below 1 µs".
const MIN_ERROR_NANOS: u64 = 1_000;

/// Values that replace what [`SystemClock`] measures, for hosts whose sync
/// state the kernel does not know (a clock disciplined from outside) or
/// for tests. `None` keeps the measured value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockOverrides {
    /// The Error Estimate's S bit and the synchronization source.
    pub synchronized: Option<bool>,
    /// The Error Estimate's Scale (6 bits).
    pub scale: Option<u8>,
    /// The Error Estimate's Multiplier.
    pub multiplier: Option<u8>,
}

/// The kernel's clock state as last measured, for reports (overrides are
/// not applied; [`Clock::error_estimate`] gives what goes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockStatus {
    /// The kernel says the clock is synchronized (adjtimex: STA_UNSYNC clear
    /// and state not TIME_ERROR).
    pub synchronized: bool,
    /// Estimated error (adjtimex `esterror`), nanoseconds.
    pub est_error_ns: u64,
    /// Maximum error (adjtimex `maxerror`), nanoseconds; `u64::MAX` when the
    /// kernel cannot be asked.
    pub max_error_ns: u64,
    /// TAI − UTC in seconds as used for PTP timestamps: the kernel's
    /// (CLOCK_TAI − CLOCK_REALTIME), or 37 when the kernel's is unset.
    pub tai_offset_s: i64,
}

/// The system clock: CLOCK_REALTIME for NTP timestamps, CLOCK_TAI for PTP
/// timestamps (clock_gettime(2)).
#[derive(Debug)]
pub struct SystemClock {
    format: TimestampFormat,
    overrides: ClockOverrides,
    /// Base of the refresh deadline.
    started: Instant,
    /// CLOCK_MONOTONIC_COARSE at `started` (0 where there is none).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    started_coarse_nanos: u64,
    /// When (nanoseconds after `started`) the cache is due for a refresh.
    refresh_due: AtomicU64,
    synchronized: AtomicBool,
    est_error_ns: AtomicU64,
    max_error_ns: AtomicU64,
    /// TAI − UTC in effect.
    tai_offset_s: AtomicI64,
    /// Seconds to add to CLOCK_TAI: 0 when the kernel keeps the offset,
    /// [`DEFAULT_TAI_OFFSET_S`] when it does not.
    tai_correction_s: AtomicI64,
    /// The wire Error Estimate with overrides applied.
    estimate: AtomicU16,
}

impl SystemClock {
    /// A clock writing `format` timestamps; samples the kernel's state now.
    pub fn new(format: TimestampFormat, overrides: ClockOverrides) -> Self {
        let clock = SystemClock {
            format,
            overrides,
            started: Instant::now(),
            started_coarse_nanos: coarse_now_nanos(),
            refresh_due: AtomicU64::new(REFRESH_NANOS),
            synchronized: AtomicBool::new(false),
            est_error_ns: AtomicU64::new(0),
            max_error_ns: AtomicU64::new(0),
            tai_offset_s: AtomicI64::new(DEFAULT_TAI_OFFSET_S),
            tai_correction_s: AtomicI64::new(DEFAULT_TAI_OFFSET_S),
            estimate: AtomicU16::new(0),
        };
        clock.refresh();
        clock
    }

    /// The kernel's clock state (refreshed at most once per second).
    pub fn sync_status(&self) -> ClockStatus {
        self.refresh_if_due();
        ClockStatus {
            synchronized: self.synchronized.load(Ordering::Relaxed),
            est_error_ns: self.est_error_ns.load(Ordering::Relaxed),
            max_error_ns: self.max_error_ns.load(Ordering::Relaxed),
            tai_offset_s: self.tai_offset_s.load(Ordering::Relaxed),
        }
    }

    /// Whether timestamps are marked synchronized (overrides applied).
    fn effective_synchronized(&self) -> bool {
        self.overrides
            .synchronized
            .unwrap_or_else(|| self.synchronized.load(Ordering::Relaxed))
    }

    /// Refresh the cache when it is a second old. One caller wins the
    /// compare-exchange and re-reads; the others keep using the cache.
    ///
    /// Called for every packet (Error Estimate, sync source), so the time
    /// check reads CLOCK_MONOTONIC_COARSE: a load from the vDSO page, no
    /// clock read (its tick resolution is plenty for a one-second period).
    fn refresh_if_due(&self) {
        let now = self.elapsed_coarse_nanos();
        let due = self.refresh_due.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        if self
            .refresh_due
            .compare_exchange(
                due,
                now + REFRESH_NANOS,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.refresh();
        }
    }

    /// Nanoseconds since `started`, at tick resolution where the system
    /// offers a cheap coarse clock.
    #[cfg(target_os = "linux")]
    fn elapsed_coarse_nanos(&self) -> u64 {
        use nix::time::{clock_gettime, ClockId};
        match clock_gettime(ClockId::CLOCK_MONOTONIC_COARSE) {
            Ok(ts) => timespec_nanos(ts).saturating_sub(self.started_coarse_nanos),
            Err(_) => self.started.elapsed().as_nanos() as u64,
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn elapsed_coarse_nanos(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn refresh(&self) {
        let kernel = kernel_sync_state();
        let (synchronized, est, max) = match kernel {
            Some(k) => (k.synchronized, k.est_error_ns, k.max_error_ns),
            None => (false, 0, u64::MAX),
        };
        self.synchronized.store(synchronized, Ordering::Relaxed);
        self.est_error_ns.store(est, Ordering::Relaxed);
        self.max_error_ns.store(max, Ordering::Relaxed);

        let kernel_tai = kernel_tai_offset_s();
        let (offset, correction) = match kernel_tai {
            Some(s) if s != 0 => (s, 0),
            _ => (DEFAULT_TAI_OFFSET_S, DEFAULT_TAI_OFFSET_S),
        };
        self.tai_offset_s.store(offset, Ordering::Relaxed);
        self.tai_correction_s.store(correction, Ordering::Relaxed);

        let estimate = wire_estimate(self.format, self.overrides, synchronized, est, max);
        self.estimate.store(estimate.0, Ordering::Relaxed);
    }
}

/// The Error Estimate for a measured state, overrides applied part by part.
fn wire_estimate(
    format: TimestampFormat,
    overrides: ClockOverrides,
    synchronized: bool,
    est_error_ns: u64,
    max_error_ns: u64,
) -> ErrorEstimate {
    let measured = if synchronized {
        ErrorEstimate::from_error_nanos(true, format, est_error_ns.max(MIN_ERROR_NANOS))
    } else if max_error_ns < SANE_MAX_ERROR_NANOS {
        ErrorEstimate::from_error_nanos(false, format, max_error_ns.max(MIN_ERROR_NANOS))
    } else {
        // No bound known: say about one second (1 × 2^(32−32) s).
        ErrorEstimate::new(false, format, 32, 1)
    };
    ErrorEstimate::new(
        overrides.synchronized.unwrap_or(synchronized),
        format,
        overrides.scale.unwrap_or(measured.scale()),
        overrides.multiplier.unwrap_or(measured.multiplier()),
    )
}

impl Clock for SystemClock {
    fn now(&self) -> UnixNanos {
        match self.format {
            TimestampFormat::Ntp => realtime_now(),
            TimestampFormat::Ptp => {
                let correction = self.tai_correction_s.load(Ordering::Relaxed);
                add_seconds(tai_now(), correction)
            }
        }
    }

    fn format(&self) -> TimestampFormat {
        self.format
    }

    fn error_estimate(&self) -> ErrorEstimate {
        self.refresh_if_due();
        ErrorEstimate(self.estimate.load(Ordering::Relaxed))
    }

    fn sync_source(&self) -> SyncSource {
        self.refresh_if_due();
        match (self.effective_synchronized(), self.format) {
            (true, TimestampFormat::Ptp) => SyncSource::PTP,
            (true, TimestampFormat::Ntp) => SyncSource::NTP,
            (false, _) => SyncSource::LOCAL,
        }
    }

    /// Kernel receive timestamps are CLOCK_REALTIME (UTC); PTP time is TAI.
    fn from_realtime(&self, realtime: UnixNanos) -> UnixNanos {
        match self.format {
            TimestampFormat::Ntp => realtime,
            TimestampFormat::Ptp => {
                add_seconds(realtime, self.tai_offset_s.load(Ordering::Relaxed))
            }
        }
    }
}

fn add_seconds(t: UnixNanos, seconds: i64) -> UnixNanos {
    UnixNanos(t.0.wrapping_add_signed(seconds.wrapping_mul(NANOS_PER_SEC as i64)))
}

#[cfg(target_os = "linux")]
fn coarse_now_nanos() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_MONOTONIC_COARSE).map_or(0, timespec_nanos)
}

#[cfg(not(target_os = "linux"))]
fn coarse_now_nanos() -> u64 {
    0
}

/// What adjtimex(2) says about the clock.
struct KernelSyncState {
    synchronized: bool,
    est_error_ns: u64,
    max_error_ns: u64,
}

#[cfg(target_os = "linux")]
fn timespec_nanos(ts: nix::sys::time::TimeSpec) -> u64 {
    (ts.tv_sec().max(0) as u64) * NANOS_PER_SEC + ts.tv_nsec().max(0) as u64
}

#[cfg(target_os = "linux")]
fn realtime_now() -> UnixNanos {
    use nix::time::{clock_gettime, ClockId};
    // CLOCK_REALTIME cannot fail on Linux; 0 would show up as 1970.
    UnixNanos(
        clock_gettime(ClockId::CLOCK_REALTIME)
            .map(timespec_nanos)
            .unwrap_or(0),
    )
}

#[cfg(target_os = "linux")]
fn tai_now() -> UnixNanos {
    use nix::time::{clock_gettime, ClockId};
    match clock_gettime(ClockId::CLOCK_TAI) {
        Ok(ts) => UnixNanos(timespec_nanos(ts)),
        Err(_) => realtime_now(),
    }
}

/// CLOCK_TAI − CLOCK_REALTIME, rounded to whole seconds (it is whole
/// seconds by definition; rounding absorbs the time between the two reads).
#[cfg(target_os = "linux")]
fn kernel_tai_offset_s() -> Option<i64> {
    use nix::time::{clock_gettime, ClockId};
    let tai = timespec_nanos(clock_gettime(ClockId::CLOCK_TAI).ok()?) as i128;
    let utc = timespec_nanos(clock_gettime(ClockId::CLOCK_REALTIME).ok()?) as i128;
    let half = NANOS_PER_SEC as i128 / 2;
    Some(((tai - utc + half).div_euclid(NANOS_PER_SEC as i128)) as i64)
}

/// adjtimex(2) with modes 0: read the kernel's NTP state, change nothing.
#[cfg(target_os = "linux")]
fn kernel_sync_state() -> Option<KernelSyncState> {
    let mut tx: libc::timex = crate::plain::zeroed();
    // Safety: `tx` is a valid, exclusively borrowed timex; with `modes` 0
    // the kernel only writes the current state into it.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return None;
    }
    // c_long: i64 on 64-bit Linux, i32 on 32-bit.
    #[allow(clippy::useless_conversion)]
    let (est, max) = (i64::from(tx.esterror), i64::from(tx.maxerror));
    Some(sync_state_from(state, tx.status, est, max))
}

/// adjtimex(2)'s answer as a sync state: synchronized when the clock state
/// is not TIME_ERROR and STA_UNSYNC is clear; `esterror` / `maxerror` are
/// microseconds (negative read as 0).
#[cfg(target_os = "linux")]
fn sync_state_from(
    state: libc::c_int,
    status: libc::c_int,
    esterror_us: i64,
    maxerror_us: i64,
) -> KernelSyncState {
    let micros_to_nanos = |us: i64| (us.max(0) as u64).saturating_mul(1_000);
    KernelSyncState {
        synchronized: state != libc::TIME_ERROR && status & libc::STA_UNSYNC == 0,
        est_error_ns: micros_to_nanos(esterror_us),
        max_error_ns: micros_to_nanos(maxerror_us),
    }
}

#[cfg(not(target_os = "linux"))]
fn realtime_now() -> UnixNanos {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    UnixNanos(since_epoch.as_nanos() as u64)
}

/// Without CLOCK_TAI: UTC, and the default offset is added on top.
#[cfg(not(target_os = "linux"))]
fn tai_now() -> UnixNanos {
    realtime_now()
}

#[cfg(not(target_os = "linux"))]
fn kernel_tai_offset_s() -> Option<i64> {
    None
}

/// Without adjtimex the sync state is unknown: unsynchronized unless
/// overridden.
#[cfg(not(target_os = "linux"))]
fn kernel_sync_state() -> Option<KernelSyncState> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synchronized_estimate_comes_from_esterror() {
        let e = wire_estimate(
            TimestampFormat::Ntp,
            ClockOverrides::default(),
            true,
            1_000_000,
            50_000_000,
        );
        assert!(e.is_synchronized());
        assert!(
            e.error_seconds() >= 0.001 && e.error_seconds() < 0.0011,
            "{}",
            e.error_seconds()
        );
    }

    #[test]
    fn unsynchronized_estimate_uses_a_sane_maxerror() {
        let e = wire_estimate(
            TimestampFormat::Ptp,
            ClockOverrides::default(),
            false,
            0,
            2_000_000_000,
        );
        assert!(!e.is_synchronized());
        assert_eq!(e.format(), TimestampFormat::Ptp);
        assert!(
            e.error_seconds() >= 2.0 && e.error_seconds() < 2.1,
            "{}",
            e.error_seconds()
        );
    }

    #[test]
    fn unsynchronized_estimate_without_a_bound_says_one_second() {
        let e = wire_estimate(
            TimestampFormat::Ntp,
            ClockOverrides::default(),
            false,
            0,
            16_000_000_000,
        );
        assert_eq!((e.scale(), e.multiplier()), (32, 1));
        assert_eq!(e.error_seconds(), 1.0);
    }

    #[test]
    fn zero_esterror_is_not_reported_as_sub_nanosecond() {
        let e = wire_estimate(TimestampFormat::Ntp, ClockOverrides::default(), true, 0, 0);
        assert!(e.error_seconds() >= 1e-6);
    }

    #[test]
    fn overrides_replace_each_part_alone() {
        let o = ClockOverrides {
            synchronized: Some(true),
            scale: None,
            multiplier: Some(9),
        };
        let e = wire_estimate(TimestampFormat::Ntp, o, false, 0, u64::MAX);
        assert!(e.is_synchronized());
        assert_eq!((e.scale(), e.multiplier()), (32, 9));
    }

    /// The measured state as the wire carries it, no overrides.
    #[cfg(target_os = "linux")]
    fn estimate_for(
        state: libc::c_int,
        status: libc::c_int,
        est_us: i64,
        max_us: i64,
    ) -> ErrorEstimate {
        let k = sync_state_from(state, status, est_us, max_us);
        wire_estimate(
            TimestampFormat::Ntp,
            ClockOverrides::default(),
            k.synchronized,
            k.est_error_ns,
            k.max_error_ns,
        )
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sta_unsync_clears_s_and_uses_maxerror() {
        // An NTP daemon lost its peers: STA_UNSYNC set, maxerror grown to 250 ms.
        let e = estimate_for(
            libc::TIME_OK,
            libc::STA_UNSYNC | libc::STA_PLL,
            800,
            250_000,
        );
        assert!(!e.is_synchronized());
        assert!(
            e.error_seconds() >= 0.25 && e.error_seconds() < 0.26,
            "{}",
            e.error_seconds()
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn synchronized_clock_reports_s_and_esterror() {
        // chrony / ntpd in sync: STA_UNSYNC clear, esterror 37 µs.
        let e = estimate_for(libc::TIME_OK, libc::STA_PLL, 37, 5_000);
        assert!(e.is_synchronized());
        assert_eq!(e.format(), TimestampFormat::Ntp, "Z clear");
        assert!(
            e.error_seconds() >= 37e-6 && e.error_seconds() < 38e-6,
            "{}",
            e.error_seconds()
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn time_error_state_is_unsynchronized_even_without_sta_unsync() {
        let e = estimate_for(libc::TIME_ERROR, 0, 10, 16_000_000);
        assert!(!e.is_synchronized());
        // maxerror 16 s is the kernel's "no idea": about one second.
        assert_eq!((e.scale(), e.multiplier()), (32, 1));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn negative_errors_read_as_zero_then_one_microsecond() {
        let k = sync_state_from(libc::TIME_OK, 0, -5, -5);
        assert_eq!((k.est_error_ns, k.max_error_ns), (0, 0));
        let e = estimate_for(libc::TIME_OK, 0, -5, -5);
        assert!(e.error_seconds() >= 1e-6 && e.error_seconds() < 1.1e-6);
    }

    #[test]
    fn scale_and_multiplier_overrides_apply_to_a_synchronized_clock() {
        let o = ClockOverrides {
            synchronized: None,
            scale: Some(20),
            multiplier: Some(3),
        };
        let e = wire_estimate(TimestampFormat::Ptp, o, true, 1_000, 1_000);
        assert!(e.is_synchronized());
        assert_eq!((e.scale(), e.multiplier()), (20, 3));
        assert_eq!(e.format(), TimestampFormat::Ptp);
        // 3 × 2^(20−32) s.
        assert!((e.error_seconds() - 3.0 / 4096.0).abs() < 1e-12);
    }

    #[test]
    fn add_seconds_handles_negative_offsets() {
        assert_eq!(
            add_seconds(UnixNanos(5 * NANOS_PER_SEC), -2),
            UnixNanos(3 * NANOS_PER_SEC)
        );
    }
}
