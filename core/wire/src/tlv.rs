//! The TLV framing of RFC 8972 §4.
//!
//! ```text
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |STAMP TLV Flags|     Type      |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                            Value                              ~
//! ```
//! Length counts the Value only. Sub-TLVs use the same header.

use core::fmt;

/// Length of a TLV header (flags, type, length).
pub const HEADER_LEN: usize = 4;

/// The STAMP TLV Flags octet (RFC 8972 §4, §5.2; C from the
/// asymmetrical-packets draft).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TlvFlags(pub u8);

impl TlvFlags {
    /// Unrecognized: the sender sets it on every TLV; the reflector clears it
    /// on TLVs it processed.
    pub const U: TlvFlags = TlvFlags(0x80);
    /// Malformed.
    pub const M: TlvFlags = TlvFlags(0x40);
    /// Integrity check failed.
    pub const I: TlvFlags = TlvFlags(0x20);
    /// Conformant reflected packet: the reflector could not honour a request.
    pub const C: TlvFlags = TlvFlags(0x10);
    /// No flag.
    pub const NONE: TlvFlags = TlvFlags(0);

    /// Is every bit of `other` set?
    pub const fn contains(self, other: TlvFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Union.
    pub const fn union(self, other: TlvFlags) -> TlvFlags {
        TlvFlags(self.0 | other.0)
    }
    /// Without the bits of `other`.
    pub const fn without(self, other: TlvFlags) -> TlvFlags {
        TlvFlags(self.0 & !other.0)
    }
    /// U set?
    pub const fn unrecognized(self) -> bool {
        self.0 & 0x80 != 0
    }
    /// M set?
    pub const fn malformed(self) -> bool {
        self.0 & 0x40 != 0
    }
    /// I set?
    pub const fn integrity_failed(self) -> bool {
        self.0 & 0x20 != 0
    }
    /// C set?
    pub const fn conformance(self) -> bool {
        self.0 & 0x10 != 0
    }
}

impl core::ops::BitOr for TlvFlags {
    type Output = TlvFlags;
    fn bitor(self, rhs: TlvFlags) -> TlvFlags {
        self.union(rhs)
    }
}

impl fmt::Debug for TlvFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TlvFlags {
    /// `U`, `M`, `I`, `C` for the set bits, `-` when none is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 & 0xF0 == 0 {
            return f.write_str("-");
        }
        for (bit, name) in [(0x80, "U"), (0x40, "M"), (0x20, "I"), (0x10, "C")] {
            if self.0 & bit != 0 {
                f.write_str(name)?;
            }
        }
        Ok(())
    }
}

/// A STAMP TLV type code: an open newtype, so unknown and draft codes are
/// values, not errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TlvType(pub u8);

impl TlvType {
    /// Reserved (RFC 8972 §5.1).
    pub const RESERVED: TlvType = TlvType(0);
    /// Extra Padding (RFC 8972 §4.1).
    pub const EXTRA_PADDING: TlvType = TlvType(1);
    /// Location (RFC 8972 §4.2).
    pub const LOCATION: TlvType = TlvType(2);
    /// Timestamp Information (RFC 8972 §4.3).
    pub const TIMESTAMP_INFORMATION: TlvType = TlvType(3);
    /// Class of Service (RFC 8972 §4.4).
    pub const CLASS_OF_SERVICE: TlvType = TlvType(4);
    /// Direct Measurement (RFC 8972 §4.5).
    pub const DIRECT_MEASUREMENT: TlvType = TlvType(5);
    /// Access Report (RFC 8972 §4.6).
    pub const ACCESS_REPORT: TlvType = TlvType(6);
    /// Follow-Up Telemetry (RFC 8972 §4.7).
    pub const FOLLOW_UP_TELEMETRY: TlvType = TlvType(7);
    /// HMAC (RFC 8972 §4.8).
    pub const HMAC: TlvType = TlvType(8);
    /// Destination Node Address (RFC 9503 §3).
    pub const DESTINATION_NODE_ADDRESS: TlvType = TlvType(9);
    /// Return Path (RFC 9503 §4).
    pub const RETURN_PATH: TlvType = TlvType(10);
    /// Micro-session ID (RFC 9534).
    pub const MICRO_SESSION_ID: TlvType = TlvType(11);
    /// Reflected Test Packet Control (draft-ietf-ippm-asymmetrical-pkts).
    pub const REFLECTED_TEST_PACKET_CONTROL: TlvType = TlvType(12);
    /// Reserved (RFC 8972 §5.1).
    pub const RESERVED_255: TlvType = TlvType(255);

    /// Is this one of the two reserved codes?
    pub const fn is_reserved(self) -> bool {
        self.0 == 0 || self.0 == 255
    }
}

impl fmt::Display for TlvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why TLV iteration stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlvError {
    /// Fewer than four octets left: no complete header.
    TruncatedHeader,
    /// The Length runs past the end of the packet.
    ValueOverrun,
}

impl fmt::Display for TlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlvError::TruncatedHeader => f.write_str("fewer than 4 octets left for a TLV header"),
            TlvError::ValueOverrun => f.write_str("TLV length runs past the end of the packet"),
        }
    }
}

impl core::error::Error for TlvError {}

/// A view of one TLV at the start of `buffer`.
#[derive(Debug, Clone)]
pub struct Tlv<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tlv<T> {
    /// View without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Tlv { buffer }
    }
    /// View `buffer`; header and value must fit.
    pub fn new_checked(buffer: T) -> Result<Self, TlvError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(TlvError::TruncatedHeader);
        }
        let len = u16::from_be_bytes([b[2], b[3]]) as usize;
        if b.len() < HEADER_LEN + len {
            return Err(TlvError::ValueOverrun);
        }
        Ok(Tlv { buffer })
    }
    /// Flags.
    pub fn flags(&self) -> TlvFlags {
        TlvFlags(self.buffer.as_ref()[0])
    }
    /// Type.
    pub fn tlv_type(&self) -> TlvType {
        TlvType(self.buffer.as_ref()[1])
    }
    /// Length of the Value.
    pub fn length(&self) -> usize {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]]) as usize
    }
    /// Header plus Value.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.length()
    }
    /// The Value.
    pub fn value(&self) -> &[u8] {
        let len = self.length();
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + len]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tlv<T> {
    /// Set the flags octet.
    pub fn set_flags(&mut self, flags: TlvFlags) {
        self.buffer.as_mut()[0] = flags.0;
    }
    /// Set the type.
    pub fn set_tlv_type(&mut self, t: TlvType) {
        self.buffer.as_mut()[1] = t.0;
    }
    /// Set the Length (the caller keeps it within the buffer).
    pub fn set_length(&mut self, len: u16) {
        self.buffer.as_mut()[2..4].copy_from_slice(&len.to_be_bytes());
    }
    /// The Value, writable.
    pub fn value_mut(&mut self) -> &mut [u8] {
        let len = self.length();
        &mut self.buffer.as_mut()[HEADER_LEN..HEADER_LEN + len]
    }
}

/// Write a TLV header at the start of `buf` (which must hold 4 octets).
/// Returns the total length `4 + len`.
pub fn emit_header(buf: &mut [u8], flags: TlvFlags, tlv_type: TlvType, len: u16) -> usize {
    buf[0] = flags.0;
    buf[1] = tlv_type.0;
    buf[2..4].copy_from_slice(&len.to_be_bytes());
    HEADER_LEN + len as usize
}

/// One TLV found by [`TlvIter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlvRef<'a> {
    /// Offset of the TLV header from the start of the iterated area.
    pub offset: usize,
    /// Flags octet.
    pub flags: TlvFlags,
    /// Type.
    pub tlv_type: TlvType,
    /// Value.
    pub value: &'a [u8],
}

impl TlvRef<'_> {
    /// Header plus value length.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.value.len()
    }
}

/// Walks the TLVs of an area (a packet's TLV area, or a TLV's sub-TLVs). It
/// yields each well-framed TLV, then at most one error at the first malformed
/// one, and stops there (RFC 8972 §4: processing stops at a malformed TLV).
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    data: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> TlvIter<'a> {
    /// Iterate the TLVs in `data`.
    pub const fn new(data: &'a [u8]) -> Self {
        TlvIter {
            data,
            offset: 0,
            done: false,
        }
    }
    /// Offset of the next TLV (or of the error) from the start of the area.
    pub const fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<TlvRef<'a>, (usize, TlvError)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.offset >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.offset..];
        match Tlv::new_checked(rest) {
            Ok(t) => {
                let item = TlvRef {
                    offset: self.offset,
                    flags: t.flags(),
                    tlv_type: t.tlv_type(),
                    value: &rest[HEADER_LEN..t.total_len()],
                };
                self.offset += t.total_len();
                Some(Ok(item))
            }
            Err(e) => {
                self.done = true;
                Some(Err((self.offset, e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn flags_masks_are_msb_first() {
        assert_eq!(TlvFlags::U.0, 0x80);
        assert_eq!(TlvFlags::M.0, 0x40);
        assert_eq!(TlvFlags::I.0, 0x20);
        assert_eq!(TlvFlags::C.0, 0x10);
        let f = TlvFlags::U | TlvFlags::I;
        assert!(f.unrecognized() && f.integrity_failed() && !f.malformed());
        assert_eq!(std::format!("{f}"), "UI");
        assert_eq!(std::format!("{}", TlvFlags::NONE), "-");
        assert_eq!(f.without(TlvFlags::U), TlvFlags::I);
    }

    #[test]
    fn iterates_well_formed_tlvs() {
        // CoS (4, len 4) then padding (1, len 3)
        let area = [0x80, 4, 0, 4, 0xB8, 0, 0, 0, 0x80, 1, 0, 3, 9, 9, 9];
        let v: Vec<_> = TlvIter::new(&area).collect();
        assert_eq!(v.len(), 2);
        let a = v[0].unwrap();
        assert_eq!(
            (a.offset, a.tlv_type, a.flags, a.value),
            (0, TlvType::CLASS_OF_SERVICE, TlvFlags::U, &area[4..8])
        );
        let b = v[1].unwrap();
        assert_eq!(
            (b.offset, b.tlv_type, b.value.len()),
            (8, TlvType::EXTRA_PADDING, 3)
        );
    }

    #[test]
    fn stops_at_value_overrun() {
        let area = [
            0x80, 4, 0, 4, 0, 0, 0, 0, 0x80, 1, 0, 9, 1, 2, 0x80, 1, 0, 0,
        ];
        let v: Vec<_> = TlvIter::new(&area).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1], Err((8, TlvError::ValueOverrun)));
    }

    #[test]
    fn stops_at_truncated_header() {
        let area = [0x80, 1, 0, 0, 0x80, 1];
        let v: Vec<_> = TlvIter::new(&area).collect();
        assert_eq!(
            v,
            [
                Ok(TlvRef {
                    offset: 0,
                    flags: TlvFlags::U,
                    tlv_type: TlvType(1),
                    value: &[]
                }),
                Err((4, TlvError::TruncatedHeader))
            ]
        );
    }

    #[test]
    fn empty_area_yields_nothing() {
        assert_eq!(TlvIter::new(&[]).count(), 0);
    }

    #[test]
    fn view_setters_write_the_header() {
        let mut buf = [0u8; 8];
        let total = emit_header(&mut buf, TlvFlags::U, TlvType::CLASS_OF_SERVICE, 4);
        assert_eq!(total, 8);
        let mut t = Tlv::new_checked(&mut buf[..]).unwrap();
        t.set_flags(TlvFlags::M);
        t.value_mut()[0] = 0xB8;
        assert_eq!(buf, [0x40, 4, 0, 4, 0xB8, 0, 0, 0]);
    }

    #[test]
    fn checked_view_rejects_bad_lengths() {
        assert_eq!(
            Tlv::new_checked(&[0u8, 1, 0][..]).unwrap_err(),
            TlvError::TruncatedHeader
        );
        assert_eq!(
            Tlv::new_checked(&[0u8, 1, 0, 1][..]).unwrap_err(),
            TlvError::ValueOverrun
        );
    }
}
