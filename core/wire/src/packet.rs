//! Views and representations of the four STAMP base packets.

use crate::field::{
    reflector_auth as ra, reflector_open as ro, sender_auth as sa, sender_open as so, Field,
};
use crate::{ErrorEstimate, Timestamp, WireError};

/// Largest datagram the suite handles: a full 9000-octet jumbo frame payload
/// with room to spare, so nothing is ever truncated.
pub const MAX_DATAGRAM: usize = 9216;

/// Shortest request a reflector answers: the 14 octets a TWAMP sender must
/// send (RFC 4656 §4.1.2: sequence, timestamp, error estimate). Shorter
/// requests get a base-size reply with the missing fields read as zero
/// (RFC 8762 §4.6).
pub const MIN_TWAMP_LIGHT_REQUEST: usize = 14;

/// Octets covered by the base-packet HMAC (RFC 8762 §4.4).
pub const HMAC_COVERAGE: usize = 96;
/// Length of the truncated HMAC-SHA-256 field.
pub const HMAC_LEN: usize = 16;

/// Unauthenticated or authenticated mode. Not signalled in the packet: both
/// ends are configured for it (RFC 8972 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AuthMode {
    /// Unauthenticated: 44-octet base packets.
    #[default]
    Open,
    /// Authenticated: 112-octet base packets with an HMAC over octets 0..96.
    Authenticated,
}

impl AuthMode {
    /// Length of the base packet (sender and reflector alike) in this mode.
    pub const fn base_len(self) -> usize {
        match self {
            AuthMode::Open => so::BASE_LEN,
            AuthMode::Authenticated => sa::BASE_LEN,
        }
    }
}

#[inline]
fn get_u32(b: &[u8], f: Field) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[f]);
    u32::from_be_bytes(a)
}
#[inline]
fn get_u16(b: &[u8], f: Field) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[f]);
    u16::from_be_bytes(a)
}
#[inline]
fn get_u64(b: &[u8], f: Field) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[f]);
    u64::from_be_bytes(a)
}

struct SenderLayout {
    timestamp: Field,
    error_estimate: Field,
    ssid: Field,
}

const fn sender_layout(mode: AuthMode) -> SenderLayout {
    match mode {
        AuthMode::Open => SenderLayout {
            timestamp: so::TIMESTAMP,
            error_estimate: so::ERROR_ESTIMATE,
            ssid: so::SSID,
        },
        AuthMode::Authenticated => SenderLayout {
            timestamp: sa::TIMESTAMP,
            error_estimate: sa::ERROR_ESTIMATE,
            ssid: sa::SSID,
        },
    }
}

/// A Session-Sender test packet (RFC 8762 §4.2; RFC 8972 Figures 1 and 3).
#[derive(Debug, Clone)]
pub struct SenderPacket<T> {
    buffer: T,
    mode: AuthMode,
}

impl<T: AsRef<[u8]>> SenderPacket<T> {
    /// View `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T, mode: AuthMode) -> Self {
        SenderPacket { buffer, mode }
    }

    /// View `buffer`, which must hold at least the base packet of `mode`.
    pub fn new_checked(buffer: T, mode: AuthMode) -> Result<Self, WireError> {
        if buffer.as_ref().len() < mode.base_len() {
            return Err(WireError::Truncated);
        }
        Ok(Self::new_unchecked(buffer, mode))
    }

    /// The mode this view was made for.
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Sequence Number.
    pub fn sequence_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), so::SEQ)
    }
    /// Timestamp (T1).
    pub fn timestamp(&self) -> Timestamp {
        Timestamp(get_u64(
            self.buffer.as_ref(),
            sender_layout(self.mode).timestamp,
        ))
    }
    /// Error Estimate of T1.
    pub fn error_estimate(&self) -> ErrorEstimate {
        ErrorEstimate(get_u16(
            self.buffer.as_ref(),
            sender_layout(self.mode).error_estimate,
        ))
    }
    /// Session-Sender Identifier (0 = none).
    pub fn ssid(&self) -> u16 {
        get_u16(self.buffer.as_ref(), sender_layout(self.mode).ssid)
    }
    /// The HMAC field (authenticated mode only).
    pub fn hmac(&self) -> Option<&[u8]> {
        match self.mode {
            AuthMode::Open => None,
            AuthMode::Authenticated => Some(&self.buffer.as_ref()[sa::HMAC]),
        }
    }
    /// The octets the base HMAC covers.
    pub fn hmac_input(&self) -> &[u8] {
        &self.buffer.as_ref()[..HMAC_COVERAGE.min(self.buffer.as_ref().len())]
    }
    /// Everything after the base packet: the TLV area.
    pub fn tlv_area(&self) -> &[u8] {
        &self.buffer.as_ref()[self.mode.base_len()..]
    }
    /// Are all MBZ octets zero?
    pub fn mbz_is_zero(&self) -> bool {
        let b = self.buffer.as_ref();
        match self.mode {
            AuthMode::Open => b[so::MBZ].iter().all(|&x| x == 0),
            AuthMode::Authenticated => b[sa::MBZ1].iter().chain(&b[sa::MBZ2]).all(|&x| x == 0),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SenderPacket<T> {
    /// Set the Sequence Number.
    pub fn set_sequence_number(&mut self, v: u32) {
        self.buffer.as_mut()[so::SEQ].copy_from_slice(&v.to_be_bytes());
    }
    /// Set the Timestamp (T1).
    pub fn set_timestamp(&mut self, v: Timestamp) {
        let f = sender_layout(self.mode).timestamp;
        self.buffer.as_mut()[f].copy_from_slice(&v.0.to_be_bytes());
    }
    /// Set the Error Estimate.
    pub fn set_error_estimate(&mut self, v: ErrorEstimate) {
        let f = sender_layout(self.mode).error_estimate;
        self.buffer.as_mut()[f].copy_from_slice(&v.0.to_be_bytes());
    }
    /// Set the SSID.
    pub fn set_ssid(&mut self, v: u16) {
        let f = sender_layout(self.mode).ssid;
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }
    /// Zero every MBZ octet of the base packet.
    pub fn clear_mbz(&mut self) {
        let b = self.buffer.as_mut();
        match self.mode {
            AuthMode::Open => b[so::MBZ].fill(0),
            AuthMode::Authenticated => {
                b[sa::MBZ1].fill(0);
                b[sa::MBZ2].fill(0);
            }
        }
    }
    /// The HMAC field, writable (authenticated mode only).
    pub fn hmac_mut(&mut self) -> Option<&mut [u8]> {
        match self.mode {
            AuthMode::Open => None,
            AuthMode::Authenticated => Some(&mut self.buffer.as_mut()[sa::HMAC]),
        }
    }
    /// The TLV area, writable.
    pub fn tlv_area_mut(&mut self) -> &mut [u8] {
        let base = self.mode.base_len();
        &mut self.buffer.as_mut()[base..]
    }
}

/// The fields of a Session-Sender packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderRepr {
    /// Sequence Number.
    pub sequence_number: u32,
    /// Timestamp (T1).
    pub timestamp: Timestamp,
    /// Error Estimate.
    pub error_estimate: ErrorEstimate,
    /// SSID (0 = none).
    pub ssid: u16,
}

impl SenderRepr {
    /// Read the fields of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &SenderPacket<T>) -> Self {
        SenderRepr {
            sequence_number: p.sequence_number(),
            timestamp: p.timestamp(),
            error_estimate: p.error_estimate(),
            ssid: p.ssid(),
        }
    }
    /// Length of the base packet in `mode`.
    pub const fn buffer_len(mode: AuthMode) -> usize {
        mode.base_len()
    }
    /// Write the fields and zero the MBZ octets (the HMAC is left alone).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut SenderPacket<T>) {
        p.clear_mbz();
        p.set_sequence_number(self.sequence_number);
        p.set_timestamp(self.timestamp);
        p.set_error_estimate(self.error_estimate);
        p.set_ssid(self.ssid);
    }
}

struct ReflectorLayout {
    timestamp: Field,
    error_estimate: Field,
    ssid: Field,
    receive_timestamp: Field,
    sender_seq: Field,
    sender_timestamp: Field,
    sender_error_estimate: Field,
    sender_ttl: usize,
}

const fn reflector_layout(mode: AuthMode) -> ReflectorLayout {
    match mode {
        AuthMode::Open => ReflectorLayout {
            timestamp: ro::TIMESTAMP,
            error_estimate: ro::ERROR_ESTIMATE,
            ssid: ro::SSID,
            receive_timestamp: ro::RECEIVE_TIMESTAMP,
            sender_seq: ro::SENDER_SEQ,
            sender_timestamp: ro::SENDER_TIMESTAMP,
            sender_error_estimate: ro::SENDER_ERROR_ESTIMATE,
            sender_ttl: ro::SENDER_TTL,
        },
        AuthMode::Authenticated => ReflectorLayout {
            timestamp: ra::TIMESTAMP,
            error_estimate: ra::ERROR_ESTIMATE,
            ssid: ra::SSID,
            receive_timestamp: ra::RECEIVE_TIMESTAMP,
            sender_seq: ra::SENDER_SEQ,
            sender_timestamp: ra::SENDER_TIMESTAMP,
            sender_error_estimate: ra::SENDER_ERROR_ESTIMATE,
            sender_ttl: ra::SENDER_TTL,
        },
    }
}

/// A Session-Reflector test packet (RFC 8762 §4.3; RFC 8972 Figures 2 and 4).
#[derive(Debug, Clone)]
pub struct ReflectorPacket<T> {
    buffer: T,
    mode: AuthMode,
}

impl<T: AsRef<[u8]>> ReflectorPacket<T> {
    /// View `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T, mode: AuthMode) -> Self {
        ReflectorPacket { buffer, mode }
    }
    /// View `buffer`, which must hold at least the base packet of `mode`.
    pub fn new_checked(buffer: T, mode: AuthMode) -> Result<Self, WireError> {
        if buffer.as_ref().len() < mode.base_len() {
            return Err(WireError::Truncated);
        }
        Ok(Self::new_unchecked(buffer, mode))
    }
    /// The mode this view was made for.
    pub fn mode(&self) -> AuthMode {
        self.mode
    }
    /// The whole datagram.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Sequence Number (reflector's own in stateful mode).
    pub fn sequence_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), ro::SEQ)
    }
    /// Timestamp (T3).
    pub fn timestamp(&self) -> Timestamp {
        Timestamp(get_u64(
            self.buffer.as_ref(),
            reflector_layout(self.mode).timestamp,
        ))
    }
    /// Error Estimate of T2 and T3.
    pub fn error_estimate(&self) -> ErrorEstimate {
        ErrorEstimate(get_u16(
            self.buffer.as_ref(),
            reflector_layout(self.mode).error_estimate,
        ))
    }
    /// SSID echoed from the request.
    pub fn ssid(&self) -> u16 {
        get_u16(self.buffer.as_ref(), reflector_layout(self.mode).ssid)
    }
    /// Receive Timestamp (T2).
    pub fn receive_timestamp(&self) -> Timestamp {
        Timestamp(get_u64(
            self.buffer.as_ref(),
            reflector_layout(self.mode).receive_timestamp,
        ))
    }
    /// Session-Sender Sequence Number.
    pub fn sender_sequence_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), reflector_layout(self.mode).sender_seq)
    }
    /// Session-Sender Timestamp (T1).
    pub fn sender_timestamp(&self) -> Timestamp {
        Timestamp(get_u64(
            self.buffer.as_ref(),
            reflector_layout(self.mode).sender_timestamp,
        ))
    }
    /// Session-Sender Error Estimate.
    pub fn sender_error_estimate(&self) -> ErrorEstimate {
        ErrorEstimate(get_u16(
            self.buffer.as_ref(),
            reflector_layout(self.mode).sender_error_estimate,
        ))
    }
    /// Session-Sender TTL / Hop Limit as the reflector received it.
    pub fn sender_ttl(&self) -> u8 {
        self.buffer.as_ref()[reflector_layout(self.mode).sender_ttl]
    }
    /// The HMAC field (authenticated mode only).
    pub fn hmac(&self) -> Option<&[u8]> {
        match self.mode {
            AuthMode::Open => None,
            AuthMode::Authenticated => Some(&self.buffer.as_ref()[ra::HMAC]),
        }
    }
    /// The octets the base HMAC covers.
    pub fn hmac_input(&self) -> &[u8] {
        &self.buffer.as_ref()[..HMAC_COVERAGE.min(self.buffer.as_ref().len())]
    }
    /// The TLV area.
    pub fn tlv_area(&self) -> &[u8] {
        &self.buffer.as_ref()[self.mode.base_len()..]
    }
    /// Are all MBZ octets zero?
    pub fn mbz_is_zero(&self) -> bool {
        let b = self.buffer.as_ref();
        match self.mode {
            AuthMode::Open => b[ro::MBZ1].iter().chain(&b[ro::MBZ2]).all(|&x| x == 0),
            AuthMode::Authenticated => ra::MBZ.iter().all(|f| b[f.clone()].iter().all(|&x| x == 0)),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ReflectorPacket<T> {
    /// Set the Sequence Number.
    pub fn set_sequence_number(&mut self, v: u32) {
        self.buffer.as_mut()[ro::SEQ].copy_from_slice(&v.to_be_bytes());
    }
    /// Set the Timestamp (T3).
    pub fn set_timestamp(&mut self, v: Timestamp) {
        let f = reflector_layout(self.mode).timestamp;
        self.buffer.as_mut()[f].copy_from_slice(&v.0.to_be_bytes());
    }
    /// Set the Error Estimate.
    pub fn set_error_estimate(&mut self, v: ErrorEstimate) {
        let f = reflector_layout(self.mode).error_estimate;
        self.buffer.as_mut()[f].copy_from_slice(&v.0.to_be_bytes());
    }
    /// Set the SSID.
    pub fn set_ssid(&mut self, v: u16) {
        let f = reflector_layout(self.mode).ssid;
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }
    /// Set the Receive Timestamp (T2).
    pub fn set_receive_timestamp(&mut self, v: Timestamp) {
        let f = reflector_layout(self.mode).receive_timestamp;
        self.buffer.as_mut()[f].copy_from_slice(&v.0.to_be_bytes());
    }
    /// Set the Session-Sender Sequence Number.
    pub fn set_sender_sequence_number(&mut self, v: u32) {
        let f = reflector_layout(self.mode).sender_seq;
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }
    /// Set the Session-Sender Timestamp.
    pub fn set_sender_timestamp(&mut self, v: Timestamp) {
        let f = reflector_layout(self.mode).sender_timestamp;
        self.buffer.as_mut()[f].copy_from_slice(&v.0.to_be_bytes());
    }
    /// Set the Session-Sender Error Estimate.
    pub fn set_sender_error_estimate(&mut self, v: ErrorEstimate) {
        let f = reflector_layout(self.mode).sender_error_estimate;
        self.buffer.as_mut()[f].copy_from_slice(&v.0.to_be_bytes());
    }
    /// Set the Session-Sender TTL.
    pub fn set_sender_ttl(&mut self, v: u8) {
        let at = reflector_layout(self.mode).sender_ttl;
        self.buffer.as_mut()[at] = v;
    }
    /// Zero every MBZ octet of the base packet.
    pub fn clear_mbz(&mut self) {
        let b = self.buffer.as_mut();
        match self.mode {
            AuthMode::Open => {
                b[ro::MBZ1].fill(0);
                b[ro::MBZ2].fill(0);
            }
            AuthMode::Authenticated => {
                for f in ra::MBZ {
                    b[f].fill(0);
                }
            }
        }
    }
    /// The HMAC field, writable (authenticated mode only).
    pub fn hmac_mut(&mut self) -> Option<&mut [u8]> {
        match self.mode {
            AuthMode::Open => None,
            AuthMode::Authenticated => Some(&mut self.buffer.as_mut()[ra::HMAC]),
        }
    }
    /// The TLV area, writable.
    pub fn tlv_area_mut(&mut self) -> &mut [u8] {
        let base = self.mode.base_len();
        &mut self.buffer.as_mut()[base..]
    }
}

/// The fields of a Session-Reflector packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReflectorRepr {
    /// Sequence Number.
    pub sequence_number: u32,
    /// Timestamp (T3).
    pub timestamp: Timestamp,
    /// Error Estimate (of T2 and T3).
    pub error_estimate: ErrorEstimate,
    /// SSID.
    pub ssid: u16,
    /// Receive Timestamp (T2).
    pub receive_timestamp: Timestamp,
    /// Session-Sender Sequence Number.
    pub sender_sequence_number: u32,
    /// Session-Sender Timestamp (T1).
    pub sender_timestamp: Timestamp,
    /// Session-Sender Error Estimate.
    pub sender_error_estimate: ErrorEstimate,
    /// Session-Sender TTL.
    pub sender_ttl: u8,
}

impl ReflectorRepr {
    /// Read the fields of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &ReflectorPacket<T>) -> Self {
        ReflectorRepr {
            sequence_number: p.sequence_number(),
            timestamp: p.timestamp(),
            error_estimate: p.error_estimate(),
            ssid: p.ssid(),
            receive_timestamp: p.receive_timestamp(),
            sender_sequence_number: p.sender_sequence_number(),
            sender_timestamp: p.sender_timestamp(),
            sender_error_estimate: p.sender_error_estimate(),
            sender_ttl: p.sender_ttl(),
        }
    }
    /// Length of the base packet in `mode`.
    pub const fn buffer_len(mode: AuthMode) -> usize {
        mode.base_len()
    }
    /// Write the fields and zero the MBZ octets (the HMAC is left alone).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut ReflectorPacket<T>) {
        p.clear_mbz();
        p.set_sequence_number(self.sequence_number);
        p.set_timestamp(self.timestamp);
        p.set_error_estimate(self.error_estimate);
        p.set_ssid(self.ssid);
        p.set_receive_timestamp(self.receive_timestamp);
        p.set_sender_sequence_number(self.sender_sequence_number);
        p.set_sender_timestamp(self.sender_timestamp);
        p.set_sender_error_estimate(self.sender_error_estimate);
        p.set_sender_ttl(self.sender_ttl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TimestampFormat;

    // WIRE.md §11: sequence 7, NTP 0xE9E10000.80000000, S=0 Z=0 Scale 0 Mult 1, SSID 0x1234.
    const SENDER_OPEN: [u8; 44] = [
        0x00, 0x00, 0x00, 0x07, 0xE9, 0xE1, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x01, 0x12,
        0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn sender_open_parses_fixed_bytes() {
        let p = SenderPacket::new_checked(&SENDER_OPEN[..], AuthMode::Open).unwrap();
        let r = SenderRepr::parse(&p);
        assert_eq!(r.sequence_number, 7);
        assert_eq!(r.timestamp, Timestamp(0xE9E1_0000_8000_0000));
        assert_eq!(r.error_estimate, ErrorEstimate(0x0001));
        assert_eq!(r.ssid, 0x1234);
        assert!(p.mbz_is_zero());
        assert!(p.tlv_area().is_empty());
        assert!(p.hmac().is_none());
    }

    #[test]
    fn sender_open_emits_the_same_bytes() {
        let r = SenderRepr {
            sequence_number: 7,
            timestamp: Timestamp(0xE9E1_0000_8000_0000),
            error_estimate: ErrorEstimate::new(false, TimestampFormat::Ntp, 0, 1),
            ssid: 0x1234,
        };
        let mut buf = [0xAAu8; 44];
        r.emit(&mut SenderPacket::new_checked(&mut buf[..], AuthMode::Open).unwrap());
        assert_eq!(buf, SENDER_OPEN);
    }

    #[test]
    fn sender_rejects_short_buffers() {
        assert_eq!(
            SenderPacket::new_checked(&SENDER_OPEN[..43], AuthMode::Open).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            SenderPacket::new_checked(&[0u8; 111][..], AuthMode::Authenticated).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn sender_auth_fields_sit_at_rfc8972_figure3_offsets() {
        let mut buf = [0u8; 112];
        let mut p = SenderPacket::new_checked(&mut buf[..], AuthMode::Authenticated).unwrap();
        SenderRepr {
            sequence_number: 0x01020304,
            timestamp: Timestamp(0x1112_1314_1516_1718),
            error_estimate: ErrorEstimate(0x8001),
            ssid: 0xBEEF,
        }
        .emit(&mut p);
        p.hmac_mut().unwrap().fill(0xCC);
        assert_eq!(&buf[0..4], &[1, 2, 3, 4]);
        assert!(buf[4..16].iter().all(|&b| b == 0));
        assert_eq!(
            &buf[16..24],
            &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]
        );
        assert_eq!(&buf[24..26], &[0x80, 0x01]);
        assert_eq!(&buf[26..28], &[0xBE, 0xEF]);
        assert!(buf[28..96].iter().all(|&b| b == 0));
        assert!(buf[96..112].iter().all(|&b| b == 0xCC));
    }

    #[test]
    fn reflector_open_round_trip_and_offsets() {
        let r = ReflectorRepr {
            sequence_number: 9,
            timestamp: Timestamp(0x0303_0303_0303_0303),
            error_estimate: ErrorEstimate(0x0001),
            ssid: 0x1234,
            receive_timestamp: Timestamp(0x0202_0202_0202_0202),
            sender_sequence_number: 7,
            sender_timestamp: Timestamp(0x0101_0101_0101_0101),
            sender_error_estimate: ErrorEstimate(0x8002),
            sender_ttl: 64,
        };
        let mut buf = [0xFFu8; 44];
        let mut p = ReflectorPacket::new_checked(&mut buf[..], AuthMode::Open).unwrap();
        r.emit(&mut p);
        assert_eq!(ReflectorRepr::parse(&p), r);
        assert!(p.mbz_is_zero());
        assert_eq!(&buf[14..16], &[0x12, 0x34]);
        assert_eq!(buf[16], 0x02);
        assert_eq!(&buf[24..28], &[0, 0, 0, 7]);
        assert_eq!(buf[28], 0x01);
        assert_eq!(&buf[36..38], &[0x80, 0x02]);
        assert_eq!(&buf[38..40], &[0, 0]);
        assert_eq!(buf[40], 64);
        assert_eq!(&buf[41..44], &[0, 0, 0]);
    }

    #[test]
    fn reflector_auth_round_trip_and_offsets() {
        let r = ReflectorRepr {
            sequence_number: 1,
            timestamp: Timestamp(3),
            error_estimate: ErrorEstimate(0x4001),
            ssid: 5,
            receive_timestamp: Timestamp(2),
            sender_sequence_number: 0xAABBCCDD,
            sender_timestamp: Timestamp(1),
            sender_error_estimate: ErrorEstimate(0x0001),
            sender_ttl: 255,
        };
        let mut buf = [0xFFu8; 112];
        let mut p = ReflectorPacket::new_checked(&mut buf[..], AuthMode::Authenticated).unwrap();
        r.emit(&mut p);
        assert_eq!(ReflectorRepr::parse(&p), r);
        assert!(p.mbz_is_zero());
        assert_eq!(&buf[26..28], &[0, 5]);
        assert_eq!(buf[39], 2);
        assert_eq!(&buf[48..52], &[0xAA, 0xBB, 0xCC, 0xDD]);
        assert_eq!(buf[71], 1);
        assert_eq!(buf[80], 255);
        // HMAC left untouched by emit
        assert!(buf[96..112].iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn tlv_area_starts_after_the_base_packet() {
        let mut buf = [0u8; 120];
        buf[112] = 0x80;
        let p = SenderPacket::new_checked(&buf[..], AuthMode::Authenticated).unwrap();
        assert_eq!(p.tlv_area().len(), 8);
        assert_eq!(p.tlv_area()[0], 0x80);
        let p = SenderPacket::new_checked(&buf[..], AuthMode::Open).unwrap();
        assert_eq!(p.tlv_area().len(), 76);
    }
}
