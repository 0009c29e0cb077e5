//! The two 64-bit timestamp formats STAMP carries (RFC 8762 §4.2.1).
//!
//! * NTP (Z = 0): 32-bit seconds since 1900-01-01 and a 32-bit binary
//!   fraction (RFC 5905 §6). The seconds field wraps in 2036; we unfold it with
//!   the RFC 4330 §3 rule: a set MSB means era 0 (1968–2036), a clear MSB era 1.
//! * PTPv2 truncated (Z = 1, RFC 8186): the low 32 bits of the seconds since the
//!   PTP epoch (1970-01-01 TAI) and 32 bits of nanoseconds. The caller supplies
//!   TAI time when it has it; the format itself cannot say.

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Which format a timestamp field uses; carried in the Z bit of the Error
/// Estimate that accompanies it (RFC 8186 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampFormat {
    /// NTP 64-bit, the default and mandatory format.
    #[default]
    Ntp,
    /// IEEE 1588v2 truncated 64-bit.
    Ptp,
}

impl TimestampFormat {
    /// The short name used on the command line (`NTP` / `PTP`).
    pub const fn name(self) -> &'static str {
        match self {
            TimestampFormat::Ntp => "NTP",
            TimestampFormat::Ptp => "PTP",
        }
    }
}

/// A raw 64-bit timestamp field as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Encode a time given in nanoseconds since 1970-01-01 (UTC for NTP, TAI
    /// for PTP) in `format`.
    pub const fn from_unix_nanos(format: TimestampFormat, nanos: u64) -> Self {
        let secs = nanos / NANOS_PER_SEC;
        let sub = nanos % NANOS_PER_SEC;
        match format {
            TimestampFormat::Ntp => {
                let ntp_secs = (secs + NTP_UNIX_OFFSET_SECS) as u32;
                // Round to the nearest 2^-32 s. For sub <= 999_999_999 the
                // result is at most 0xFFFF_FFFC, so it never carries.
                let frac = ((sub << 32) + NANOS_PER_SEC / 2) / NANOS_PER_SEC;
                Timestamp(((ntp_secs as u64) << 32) | frac)
            }
            TimestampFormat::Ptp => Timestamp(((secs as u32 as u64) << 32) | sub),
        }
    }

    /// Decode into nanoseconds since 1970-01-01. `None` when the value cannot
    /// be a timestamp of that format (PTP nanoseconds ≥ 10^9, NTP before 1970).
    pub const fn to_unix_nanos(self, format: TimestampFormat) -> Option<u64> {
        let hi = self.0 >> 32;
        let lo = self.0 & 0xFFFF_FFFF;
        match format {
            TimestampFormat::Ntp => {
                // RFC 4330 §3: MSB clear means the 2036-2104 era.
                let secs_1900 = if hi & 0x8000_0000 == 0 {
                    hi + (1 << 32)
                } else {
                    hi
                };
                if secs_1900 < NTP_UNIX_OFFSET_SECS {
                    return None;
                }
                let sub = (lo * NANOS_PER_SEC + (1 << 31)) >> 32;
                Some((secs_1900 - NTP_UNIX_OFFSET_SECS) * NANOS_PER_SEC + sub)
            }
            TimestampFormat::Ptp => {
                if lo >= NANOS_PER_SEC {
                    return None;
                }
                Some(hi * NANOS_PER_SEC + lo)
            }
        }
    }

    /// The seconds part (upper 32 bits).
    pub const fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The fraction (NTP) or nanoseconds (PTP) part (lower 32 bits).
    pub const fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// Is the field all zeros (not filled in)?
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_round_trips_within_one_nanosecond() {
        for nanos in [
            0u64,
            1,
            999_999_999,
            1_700_000_000_123_456_789,
            2_085_978_495_999_999_999,
        ] {
            let ts = Timestamp::from_unix_nanos(TimestampFormat::Ntp, nanos);
            let back = ts.to_unix_nanos(TimestampFormat::Ntp).unwrap();
            assert!(back.abs_diff(nanos) <= 1, "{nanos} -> {back}");
        }
    }

    #[test]
    fn ntp_epoch_offset_is_rfc5905() {
        let ts = Timestamp::from_unix_nanos(TimestampFormat::Ntp, 0);
        assert_eq!(ts.seconds(), 2_208_988_800);
        assert_eq!(ts.fraction(), 0);
        // half a second is 0x8000_0000 in the fraction
        let ts = Timestamp::from_unix_nanos(TimestampFormat::Ntp, 500_000_000);
        assert_eq!(ts.fraction(), 0x8000_0000);
    }

    #[test]
    fn ntp_unfolds_the_2036_era() {
        // 2040-01-01T00:00:00Z = 2208988800 unix; NTP seconds wrap to era 1.
        let unix = 2_208_988_800u64;
        let ts = Timestamp::from_unix_nanos(TimestampFormat::Ntp, unix * NANOS_PER_SEC);
        assert_eq!(
            ts.seconds() as u64,
            (unix + NTP_UNIX_OFFSET_SECS) - (1 << 32)
        );
        assert_eq!(
            ts.to_unix_nanos(TimestampFormat::Ntp),
            Some(unix * NANOS_PER_SEC)
        );
    }

    #[test]
    fn ntp_fraction_of_the_last_nanosecond_stays_in_its_second() {
        let ts = Timestamp::from_unix_nanos(TimestampFormat::Ntp, 999_999_999_999);
        assert_eq!(ts.fraction(), 0xFFFF_FFFC);
        assert_eq!(ts.seconds() as u64, 999 + NTP_UNIX_OFFSET_SECS);
    }

    #[test]
    fn ptp_is_seconds_and_nanoseconds() {
        let ts = Timestamp::from_unix_nanos(TimestampFormat::Ptp, 37_000_000_123);
        assert_eq!(ts.0, (37u64 << 32) | 123);
        assert_eq!(ts.to_unix_nanos(TimestampFormat::Ptp), Some(37_000_000_123));
    }

    #[test]
    fn ptp_rejects_nanoseconds_past_one_second() {
        assert_eq!(
            Timestamp((1 << 32) | 1_000_000_000).to_unix_nanos(TimestampFormat::Ptp),
            None
        );
    }

    #[test]
    fn ntp_before_1970_is_not_a_unix_time() {
        assert_eq!(
            Timestamp(0x8000_0000_0000_0000).to_unix_nanos(TimestampFormat::Ntp),
            None
        );
    }
}
