//! Wall-clock time for packet timestamps (RFC 8762 §4.2.1) and what the
//! Timestamp Information TLV (RFC 8972 §4.3) says about it.
//!
//! Monotonic time for timers is passed to the state machines separately as
//! [`std::time::Instant`], so tests can drive both by hand.

use std::sync::atomic::{AtomicU64, Ordering};

use stamp_wire::{ErrorEstimate, Timestamp, TimestampFormat};

/// Nanoseconds since 1970-01-01 on the clock's own timescale (UTC for NTP
/// timestamps, TAI for PTP timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
#[serde(transparent)]
pub struct UnixNanos(pub u64);

impl UnixNanos {
    /// Signed difference `self - earlier` in nanoseconds.
    pub fn diff(self, earlier: UnixNanos) -> i64 {
        self.0.wrapping_sub(earlier.0) as i64
    }
}

/// "STAMP Synchronization Sources" (RFC 8972 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncSource(pub u8);

impl SyncSource {
    /// NTP.
    pub const NTP: SyncSource = SyncSource(1);
    /// PTP.
    pub const PTP: SyncSource = SyncSource(2);
    /// SSU/BITS.
    pub const SSU_BITS: SyncSource = SyncSource(3);
    /// GPS, GLONASS, LORAN-C, BDS, Galileo.
    pub const GNSS: SyncSource = SyncSource(4);
    /// Local free-running oscillator.
    pub const LOCAL: SyncSource = SyncSource(5);

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "NTP",
            2 => "PTP",
            3 => "SSU/BITS",
            4 => "GNSS",
            5 => "local",
            0 | 255 => "reserved",
            _ => "other",
        }
    }
}

/// "STAMP Timestamping Methods" (RFC 8972 §5.5): how a timestamp was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TimestampMethod(pub u8);

impl TimestampMethod {
    /// Not known / not taken (Reserved value 0).
    pub const UNKNOWN: TimestampMethod = TimestampMethod(0);
    /// Hardware assist (NIC timestamp).
    pub const HW_ASSIST: TimestampMethod = TimestampMethod(1);
    /// Software, local (kernel or user space).
    pub const SW_LOCAL: TimestampMethod = TimestampMethod(2);
    /// Control plane.
    pub const CONTROL_PLANE: TimestampMethod = TimestampMethod(3);

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "hw-assist",
            2 => "sw-local",
            3 => "control-plane",
            0 => "unknown",
            _ => "other",
        }
    }
}

/// Where a receive or transmit timestamp came from, finer than the RFC code:
/// reports say whether the kernel or user space took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampSource {
    /// Read from the clock in user space after/before the system call.
    #[default]
    UserSpace,
    /// Kernel software timestamp (SO_TIMESTAMPING / SO_TIMESTAMPNS).
    Kernel,
    /// NIC hardware timestamp.
    Hardware,
}

impl TimestampSource {
    /// The RFC 8972 §5.5 method this source corresponds to.
    pub fn method(self) -> TimestampMethod {
        match self {
            TimestampSource::UserSpace | TimestampSource::Kernel => TimestampMethod::SW_LOCAL,
            TimestampSource::Hardware => TimestampMethod::HW_ASSIST,
        }
    }
    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            TimestampSource::UserSpace => "user",
            TimestampSource::Kernel => "kernel",
            TimestampSource::Hardware => "hardware",
        }
    }
}

/// The wall clock packets are stamped with.
pub trait Clock: Send + Sync {
    /// Current time on this clock's timescale.
    fn now(&self) -> UnixNanos;
    /// Timestamp format this clock writes.
    fn format(&self) -> TimestampFormat;
    /// Error Estimate for timestamps of this clock (S from the real sync
    /// state, Z from the format).
    fn error_estimate(&self) -> ErrorEstimate;
    /// Synchronization source for the Timestamp Information TLV.
    fn sync_source(&self) -> SyncSource;
    /// Convert a kernel CLOCK_REALTIME reading (UTC) to this clock's
    /// timescale. PTP clocks add the UTC–TAI offset.
    #[allow(clippy::wrong_self_convention)] // a conversion by the clock, not of it
    fn from_realtime(&self, realtime: UnixNanos) -> UnixNanos {
        realtime
    }
    /// Encode a time of this clock as a wire timestamp.
    fn encode(&self, t: UnixNanos) -> Timestamp {
        Timestamp::from_unix_nanos(self.format(), t.0)
    }
}

/// A clock driven by hand, for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicU64,
    format: TimestampFormat,
    estimate: ErrorEstimate,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: UnixNanos, format: TimestampFormat) -> Self {
        ManualClock {
            now: AtomicU64::new(start.0),
            format,
            estimate: ErrorEstimate::new(false, format, 0, 1),
        }
    }
    /// Set the Error Estimate it reports.
    pub fn with_error_estimate(mut self, e: ErrorEstimate) -> Self {
        self.estimate = e;
        self
    }
    /// Move the clock forward.
    pub fn advance(&self, nanos: u64) {
        self.now.fetch_add(nanos, Ordering::SeqCst);
    }
    /// Set the clock.
    pub fn set(&self, t: UnixNanos) {
        self.now.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixNanos {
        UnixNanos(self.now.load(Ordering::SeqCst))
    }
    fn format(&self) -> TimestampFormat {
        self.format
    }
    fn error_estimate(&self) -> ErrorEstimate {
        self.estimate
    }
    fn sync_source(&self) -> SyncSource {
        SyncSource::LOCAL
    }
}
