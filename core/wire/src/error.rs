use core::fmt;

/// Why a buffer could not be viewed as a STAMP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The buffer is shorter than the base packet of the configured mode.
    Truncated,
    /// A field holds a value the format does not allow.
    Malformed,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("packet shorter than the STAMP base packet"),
            WireError::Malformed => f.write_str("malformed field in STAMP packet"),
        }
    }
}

impl core::error::Error for WireError {}
