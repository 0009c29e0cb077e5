//! Field offsets of the four base packets, in octets from the start of the
//! UDP payload (RFC 8762 §4.2–§4.3, RFC 8972 §3 Figures 1–4).

/// A half-open octet range.
pub type Field = core::ops::Range<usize>;

/// Session-Sender packet, unauthenticated mode (RFC 8972 Figure 1).
pub mod sender_open {
    use super::Field;
    /// Sequence Number.
    pub const SEQ: Field = 0..4;
    /// Timestamp (T1).
    pub const TIMESTAMP: Field = 4..12;
    /// Error Estimate.
    pub const ERROR_ESTIMATE: Field = 12..14;
    /// Session-Sender Identifier.
    pub const SSID: Field = 14..16;
    /// Must Be Zero.
    pub const MBZ: Field = 16..44;
    /// Length of the base packet.
    pub const BASE_LEN: usize = 44;
}

/// Session-Sender packet, authenticated mode (RFC 8972 Figure 3).
pub mod sender_auth {
    use super::Field;
    /// Sequence Number.
    pub const SEQ: Field = 0..4;
    /// Must Be Zero.
    pub const MBZ1: Field = 4..16;
    /// Timestamp (T1).
    pub const TIMESTAMP: Field = 16..24;
    /// Error Estimate.
    pub const ERROR_ESTIMATE: Field = 24..26;
    /// Session-Sender Identifier.
    pub const SSID: Field = 26..28;
    /// Must Be Zero.
    pub const MBZ2: Field = 28..96;
    /// HMAC-SHA-256 truncated to 128 bits, over octets 0..96.
    pub const HMAC: Field = 96..112;
    /// Length of the base packet.
    pub const BASE_LEN: usize = 112;
}

/// Session-Reflector packet, unauthenticated mode (RFC 8972 Figure 2).
pub mod reflector_open {
    use super::Field;
    /// Sequence Number.
    pub const SEQ: Field = 0..4;
    /// Timestamp (T3).
    pub const TIMESTAMP: Field = 4..12;
    /// Error Estimate (covers T2 and T3).
    pub const ERROR_ESTIMATE: Field = 12..14;
    /// Session-Sender Identifier (copied).
    pub const SSID: Field = 14..16;
    /// Receive Timestamp (T2).
    pub const RECEIVE_TIMESTAMP: Field = 16..24;
    /// Session-Sender Sequence Number.
    pub const SENDER_SEQ: Field = 24..28;
    /// Session-Sender Timestamp (T1).
    pub const SENDER_TIMESTAMP: Field = 28..36;
    /// Session-Sender Error Estimate.
    pub const SENDER_ERROR_ESTIMATE: Field = 36..38;
    /// Must Be Zero.
    pub const MBZ1: Field = 38..40;
    /// Session-Sender TTL / Hop Limit.
    pub const SENDER_TTL: usize = 40;
    /// Must Be Zero.
    pub const MBZ2: Field = 41..44;
    /// Length of the base packet.
    pub const BASE_LEN: usize = 44;
}

/// Session-Reflector packet, authenticated mode (RFC 8972 Figure 4).
pub mod reflector_auth {
    use super::Field;
    /// Sequence Number.
    pub const SEQ: Field = 0..4;
    /// Timestamp (T3).
    pub const TIMESTAMP: Field = 16..24;
    /// Error Estimate.
    pub const ERROR_ESTIMATE: Field = 24..26;
    /// Session-Sender Identifier (copied).
    pub const SSID: Field = 26..28;
    /// Receive Timestamp (T2).
    pub const RECEIVE_TIMESTAMP: Field = 32..40;
    /// Session-Sender Sequence Number.
    pub const SENDER_SEQ: Field = 48..52;
    /// Session-Sender Timestamp (T1).
    pub const SENDER_TIMESTAMP: Field = 64..72;
    /// Session-Sender Error Estimate.
    pub const SENDER_ERROR_ESTIMATE: Field = 72..74;
    /// Session-Sender TTL / Hop Limit.
    pub const SENDER_TTL: usize = 80;
    /// HMAC over octets 0..96.
    pub const HMAC: Field = 96..112;
    /// Length of the base packet.
    pub const BASE_LEN: usize = 112;
    /// Every Must-Be-Zero range.
    pub const MBZ: [Field; 6] = [4..16, 28..32, 40..48, 52..64, 74..80, 81..96];
}
