//! The 16-bit Error Estimate (RFC 4656 §4.1.2, Z bit from RFC 8186 §2.3).
//!
//! ```text
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |S|Z|   Scale   |   Multiplier  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use crate::TimestampFormat;

/// An Error Estimate field. Error in seconds = Multiplier × 2^(Scale − 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ErrorEstimate(pub u16);

impl ErrorEstimate {
    const S: u16 = 0x8000;
    const Z: u16 = 0x4000;

    /// Build from its parts; `scale` is masked to 6 bits.
    pub const fn new(
        synchronized: bool,
        format: TimestampFormat,
        scale: u8,
        multiplier: u8,
    ) -> Self {
        let mut v = ((scale as u16 & 0x3F) << 8) | multiplier as u16;
        if synchronized {
            v |= Self::S;
        }
        if matches!(format, TimestampFormat::Ptp) {
            v |= Self::Z;
        }
        ErrorEstimate(v)
    }

    /// The smallest estimate (scale, multiplier) that bounds `error_nanos`,
    /// never with a zero multiplier (RFC 4656 calls that corrupt).
    pub fn from_error_nanos(synchronized: bool, format: TimestampFormat, error_nanos: u64) -> Self {
        // units of 2^-32 s, rounded up
        let units = ((error_nanos as u128) << 32).div_ceil(1_000_000_000);
        let mut scale = 0u8;
        let mut mult = units;
        while mult > 255 && scale < 63 {
            scale += 1;
            mult = units.div_ceil(1u128 << scale);
        }
        let mult = mult.clamp(1, 255) as u8;
        Self::new(synchronized, format, scale, mult)
    }

    /// S: the clock is synchronized to UTC by an external source.
    pub const fn is_synchronized(self) -> bool {
        self.0 & Self::S != 0
    }

    /// Z: the timestamp format this estimate describes.
    pub const fn format(self) -> TimestampFormat {
        if self.0 & Self::Z != 0 {
            TimestampFormat::Ptp
        } else {
            TimestampFormat::Ntp
        }
    }

    /// The 6-bit Scale.
    pub const fn scale(self) -> u8 {
        ((self.0 >> 8) & 0x3F) as u8
    }

    /// The 8-bit Multiplier.
    pub const fn multiplier(self) -> u8 {
        self.0 as u8
    }

    /// The estimated error in seconds.
    pub fn error_seconds(self) -> f64 {
        let scale = self.scale() as i32 - 32;
        self.multiplier() as f64 * pow2(scale)
    }
}

fn pow2(exp: i32) -> f64 {
    // f64::powi is not in core; build 2^exp from the exponent bits.
    f64::from_bits(((exp + 1023) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_msb_first() {
        let e = ErrorEstimate::new(true, TimestampFormat::Ptp, 0x3F, 0xAB);
        assert_eq!(e.0, 0xFFAB);
        let e = ErrorEstimate::new(false, TimestampFormat::Ntp, 1, 1);
        assert_eq!(e.0, 0x0101);
        assert!(!e.is_synchronized());
        assert_eq!(e.format(), TimestampFormat::Ntp);
        assert!(ErrorEstimate(0x8000).is_synchronized());
        assert_eq!(ErrorEstimate(0x4000).format(), TimestampFormat::Ptp);
    }

    #[test]
    fn error_seconds_follows_rfc4656() {
        // Multiplier 1, Scale 0 -> 2^-32 s
        assert_eq!(
            ErrorEstimate::new(false, TimestampFormat::Ntp, 0, 1).error_seconds(),
            1.0 / 4_294_967_296.0
        );
        // Multiplier 1, Scale 32 -> 1 s
        assert_eq!(
            ErrorEstimate::new(false, TimestampFormat::Ntp, 32, 1).error_seconds(),
            1.0
        );
        assert_eq!(
            ErrorEstimate::new(false, TimestampFormat::Ntp, 33, 3).error_seconds(),
            6.0
        );
    }

    #[test]
    fn from_error_bounds_the_error() {
        for nanos in [
            0u64,
            1,
            999,
            1_000,
            250_000,
            1_000_000,
            16_000_000,
            1_000_000_000,
        ] {
            let e = ErrorEstimate::from_error_nanos(true, TimestampFormat::Ntp, nanos);
            assert!(e.multiplier() >= 1);
            assert!(
                e.error_seconds() * 1e9 >= nanos as f64 * 0.999_999,
                "{nanos}: {e:?}"
            );
            // and not grossly over: within a factor of 2 once above the 2^-32 floor
            if nanos > 100 {
                assert!(
                    e.error_seconds() * 1e9 <= nanos as f64 * 2.0,
                    "{nanos}: {e:?}"
                );
            }
        }
    }
}
