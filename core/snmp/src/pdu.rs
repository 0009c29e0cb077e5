//! AgentX PDUs (RFC 2741 §6): the 20-octet header, object identifiers,
//! octet strings, varbinds and search ranges, in either byte order (the
//! header's NETWORK_BYTE_ORDER flag says which; we always send big-endian
//! with the flag set, §6.1).
//!
//! Only what a read-only sub-agent needs is decoded: the master's Get,
//! GetNext, GetBulk, TestSet/CommitSet/UndoSet/CleanupSet (refused) and
//! Close requests and the Response PDUs to our Open, Register and Ping.

use std::fmt;

/// AgentX protocol version (§6.1).
pub const VERSION: u8 = 1;
/// Header length in octets.
pub const HEADER_LEN: usize = 20;
/// Largest payload accepted from the master (a walk's GetBulk is a few
/// hundred octets; this only bounds a broken peer).
pub const MAX_PAYLOAD: usize = 1 << 20;

/// Header flags (§6.1).
pub mod flags {
    /// Register: an instance registration.
    pub const INSTANCE_REGISTRATION: u8 = 0x01;
    /// IndexAllocate: a new index.
    pub const NEW_INDEX: u8 = 0x02;
    /// IndexAllocate: any index.
    pub const ANY_INDEX: u8 = 0x04;
    /// A context octet string follows the header.
    pub const NON_DEFAULT_CONTEXT: u8 = 0x08;
    /// Multi-octet integers are big-endian.
    pub const NETWORK_BYTE_ORDER: u8 = 0x10;
}

/// PDU types (§6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PduType {
    /// agentx-Open-PDU.
    Open = 1,
    /// agentx-Close-PDU.
    Close = 2,
    /// agentx-Register-PDU.
    Register = 3,
    /// agentx-Unregister-PDU.
    Unregister = 4,
    /// agentx-Get-PDU.
    Get = 5,
    /// agentx-GetNext-PDU.
    GetNext = 6,
    /// agentx-GetBulk-PDU.
    GetBulk = 7,
    /// agentx-TestSet-PDU.
    TestSet = 8,
    /// agentx-CommitSet-PDU.
    CommitSet = 9,
    /// agentx-UndoSet-PDU.
    UndoSet = 10,
    /// agentx-CleanupSet-PDU.
    CleanupSet = 11,
    /// agentx-Notify-PDU.
    Notify = 12,
    /// agentx-Ping-PDU.
    Ping = 13,
    /// agentx-IndexAllocate-PDU.
    IndexAllocate = 14,
    /// agentx-IndexDeallocate-PDU.
    IndexDeallocate = 15,
    /// agentx-AddAgentCaps-PDU.
    AddAgentCaps = 16,
    /// agentx-RemoveAgentCaps-PDU.
    RemoveAgentCaps = 17,
    /// agentx-Response-PDU.
    Response = 18,
}

impl PduType {
    fn from_u8(v: u8) -> Option<Self> {
        use PduType::*;
        Some(match v {
            1 => Open,
            2 => Close,
            3 => Register,
            4 => Unregister,
            5 => Get,
            6 => GetNext,
            7 => GetBulk,
            8 => TestSet,
            9 => CommitSet,
            10 => UndoSet,
            11 => CleanupSet,
            12 => Notify,
            13 => Ping,
            14 => IndexAllocate,
            15 => IndexDeallocate,
            16 => AddAgentCaps,
            17 => RemoveAgentCaps,
            18 => Response,
            _ => return None,
        })
    }
}

/// `res.error` values of a Response (§6.2.16) that we send or read.
pub mod error {
    /// No error.
    pub const NO_ERROR: u16 = 0;
    /// SNMP notWritable: every object here is read-only.
    pub const NOT_WRITABLE: u16 = 17;
    /// The master refused the Open.
    pub const OPEN_FAILED: u16 = 256;
    /// The session is not open.
    pub const NOT_OPEN: u16 = 257;
    /// Someone else registered the same subtree and priority.
    pub const DUPLICATE_REGISTRATION: u16 = 263;
    /// The PDU could not be parsed.
    pub const PARSE_ERROR: u16 = 266;
    /// The request cannot be served.
    pub const PROCESSING_ERROR: u16 = 268;
}

/// Close reasons (§6.2.2).
pub mod close_reason {
    /// Other.
    pub const OTHER: u8 = 1;
    /// Parse error.
    pub const PARSE_ERROR: u8 = 2;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u8 = 3;
    /// The sub-agent is shutting down.
    pub const SHUTDOWN: u8 = 5;
}

/// A decoding failure: the PDU is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed AgentX PDU: {}", self.0)
    }
}

impl std::error::Error for ParseError {}

/// An object identifier: its sub-identifiers.
pub type Oid = Vec<u32>;

/// The common header (§6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// PDU type (raw: an unknown type is answered, not dropped).
    pub ty: u8,
    /// Flags.
    pub flags: u8,
    /// Session ID.
    pub session_id: u32,
    /// Transaction ID.
    pub transaction_id: u32,
    /// Packet ID.
    pub packet_id: u32,
    /// Payload length.
    pub payload_len: u32,
}

impl Header {
    /// Decode a header from exactly [`HEADER_LEN`] octets.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Result<Header, ParseError> {
        if b[0] != VERSION {
            return Err(ParseError("unsupported version"));
        }
        let big = b[2] & flags::NETWORK_BYTE_ORDER != 0;
        let u32_at = |i: usize| read_u32([b[i], b[i + 1], b[i + 2], b[i + 3]], big);
        let payload_len = u32_at(16);
        if payload_len % 4 != 0 {
            return Err(ParseError("payload length not a multiple of 4"));
        }
        Ok(Header {
            ty: b[1],
            flags: b[2],
            session_id: u32_at(4),
            transaction_id: u32_at(8),
            packet_id: u32_at(12),
            payload_len,
        })
    }

    /// The PDU type, if known.
    pub fn pdu_type(&self) -> Option<PduType> {
        PduType::from_u8(self.ty)
    }

    fn big_endian(&self) -> bool {
        self.flags & flags::NETWORK_BYTE_ORDER != 0
    }
}

fn read_u32(b: [u8; 4], big: bool) -> u32 {
    if big {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// A value in a varbind (§5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// INTEGER / Integer32 (type 2).
    Integer(i32),
    /// OCTET STRING (type 4).
    OctetString(Vec<u8>),
    /// NULL (type 5).
    Null,
    /// OBJECT IDENTIFIER (type 6).
    ObjectIdentifier(Oid),
    /// IpAddress (type 64).
    IpAddress([u8; 4]),
    /// Counter32 (type 65).
    Counter32(u32),
    /// Gauge32 / Unsigned32 (type 66).
    Gauge32(u32),
    /// TimeTicks, hundredths of a second (type 67).
    TimeTicks(u32),
    /// Counter64 (type 70).
    Counter64(u64),
    /// noSuchObject (type 128).
    NoSuchObject,
    /// noSuchInstance (type 129).
    NoSuchInstance,
    /// endOfMibView (type 130).
    EndOfMibView,
}

impl Value {
    fn type_code(&self) -> u16 {
        match self {
            Value::Integer(_) => 2,
            Value::OctetString(_) => 4,
            Value::Null => 5,
            Value::ObjectIdentifier(_) => 6,
            Value::IpAddress(_) => 64,
            Value::Counter32(_) => 65,
            Value::Gauge32(_) => 66,
            Value::TimeTicks(_) => 67,
            Value::Counter64(_) => 70,
            Value::NoSuchObject => 128,
            Value::NoSuchInstance => 129,
            Value::EndOfMibView => 130,
        }
    }
}

/// A search range (§5.2): `start` (inclusive when `include`) up to `end`
/// (exclusive; empty = no bound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRange {
    /// Where the search starts.
    pub start: Oid,
    /// Whether `start` itself may be returned.
    pub include: bool,
    /// Upper bound, exclusive (empty: none).
    pub end: Oid,
}

/// A request from the master agent, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Get: the ranges' `start` OIDs, exactly.
    Get(Vec<SearchRange>),
    /// GetNext.
    GetNext(Vec<SearchRange>),
    /// GetBulk.
    GetBulk {
        /// Ranges answered once.
        non_repeaters: u16,
        /// Repetitions of the other ranges.
        max_repetitions: u16,
        /// Every range.
        ranges: Vec<SearchRange>,
    },
    /// TestSet (refused: notWritable).
    TestSet,
    /// CommitSet, UndoSet (answered with no error: nothing was set).
    CommitOrUndo,
    /// CleanupSet (no response).
    CleanupSet,
    /// The master closes the session.
    Close(u8),
    /// A Response to one of our requests.
    Response {
        /// `res.error`.
        error: u16,
        /// `res.index`.
        index: u16,
    },
    /// Anything else a master should not send a sub-agent.
    Other,
}

/// A cursor over a payload in the header's byte order.
struct Reader<'a> {
    b: &'a [u8],
    big: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        if self.b.len() < n {
            return Err(ParseError("payload too short"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }

    fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ParseError> {
        let b = self.take(2)?;
        let b = [b[0], b[1]];
        Ok(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&mut self) -> Result<u32, ParseError> {
        let b = self.take(4)?;
        Ok(read_u32([b[0], b[1], b[2], b[3]], self.big))
    }

    /// An object identifier (§5.1): (OID, include).
    fn oid(&mut self) -> Result<(Oid, bool), ParseError> {
        let n = self.u8()? as usize;
        let prefix = self.u8()?;
        let include = self.u8()? != 0;
        self.take(1)?;
        if n > 128 {
            return Err(ParseError("more than 128 sub-identifiers"));
        }
        let mut oid = Vec::with_capacity(n + 5);
        if prefix != 0 {
            oid.extend_from_slice(&[1, 3, 6, 1, u32::from(prefix)]);
        }
        for _ in 0..n {
            oid.push(self.u32()?);
        }
        Ok((oid, include))
    }

    fn octet_string(&mut self) -> Result<&'a [u8], ParseError> {
        let len = self.u32()? as usize;
        if len > self.b.len() {
            return Err(ParseError("octet string longer than the payload"));
        }
        let s = self.take(len)?;
        self.take((4 - len % 4) % 4)?;
        Ok(s)
    }

    fn search_ranges(&mut self) -> Result<Vec<SearchRange>, ParseError> {
        let mut out = Vec::new();
        while !self.b.is_empty() {
            let (start, include) = self.oid()?;
            let (end, _) = self.oid()?;
            out.push(SearchRange {
                start,
                include,
                end,
            });
        }
        Ok(out)
    }
}

/// Decode the payload of a PDU whose header is `h`.
pub fn decode_request(h: &Header, payload: &[u8]) -> Result<Request, ParseError> {
    let mut r = Reader {
        b: payload,
        big: h.big_endian(),
    };
    let context = |r: &mut Reader<'_>| -> Result<(), ParseError> {
        if h.flags & flags::NON_DEFAULT_CONTEXT != 0 {
            r.octet_string()?;
        }
        Ok(())
    };
    Ok(match h.pdu_type() {
        Some(PduType::Get) => {
            context(&mut r)?;
            Request::Get(r.search_ranges()?)
        }
        Some(PduType::GetNext) => {
            context(&mut r)?;
            Request::GetNext(r.search_ranges()?)
        }
        Some(PduType::GetBulk) => {
            context(&mut r)?;
            let non_repeaters = r.u16()?;
            let max_repetitions = r.u16()?;
            Request::GetBulk {
                non_repeaters,
                max_repetitions,
                ranges: r.search_ranges()?,
            }
        }
        Some(PduType::TestSet) => Request::TestSet,
        Some(PduType::CommitSet | PduType::UndoSet) => Request::CommitOrUndo,
        Some(PduType::CleanupSet) => Request::CleanupSet,
        Some(PduType::Close) => Request::Close(r.u8()?),
        Some(PduType::Response) => {
            let _uptime = r.u32()?;
            let error = r.u16()?;
            let index = r.u16()?;
            Request::Response { error, index }
        }
        _ => Request::Other,
    })
}

/// A PDU being built, big-endian, with NETWORK_BYTE_ORDER set.
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Start a PDU: the header with a zero payload length, fixed by
    /// [`Writer::finish`].
    pub fn new(ty: PduType, session_id: u32, transaction_id: u32, packet_id: u32) -> Writer {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&[VERSION, ty as u8, flags::NETWORK_BYTE_ORDER, 0]);
        buf.extend_from_slice(&session_id.to_be_bytes());
        buf.extend_from_slice(&transaction_id.to_be_bytes());
        buf.extend_from_slice(&packet_id.to_be_bytes());
        buf.extend_from_slice(&[0; 4]);
        Writer { buf }
    }

    /// Append one octet.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Append a 16-bit integer.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Append a 32-bit integer.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Append an object identifier (§5.1), with the 1.3.6.1.X prefix
    /// compressed where it applies.
    pub fn oid(&mut self, oid: &[u32], include: bool) -> &mut Self {
        let (prefix, rest) = match oid {
            [1, 3, 6, 1, p, rest @ ..] if *p > 0 && *p <= 255 => (*p as u8, rest),
            _ => (0, oid),
        };
        // At most 128 sub-identifiers (§5.1); longer ones are cut (we never
        // make such an OID: ours are a dozen long).
        let rest = &rest[..rest.len().min(128)];
        self.buf
            .extend_from_slice(&[rest.len() as u8, prefix, u8::from(include), 0]);
        for s in rest {
            self.u32(*s);
        }
        self
    }

    /// Append an octet string (§5.3), padded to a multiple of 4.
    pub fn octet_string(&mut self, s: &[u8]) -> &mut Self {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s);
        let pad = (4 - s.len() % 4) % 4;
        self.buf.extend_from_slice(&[0; 3][..pad]);
        self
    }

    /// Append a varbind (§5.4).
    pub fn varbind(&mut self, name: &[u32], value: &Value) -> &mut Self {
        self.u16(value.type_code()).u16(0).oid(name, false);
        match value {
            Value::Integer(v) => {
                self.u32(*v as u32);
            }
            Value::OctetString(s) => {
                self.octet_string(s);
            }
            Value::ObjectIdentifier(o) => {
                self.oid(o, false);
            }
            Value::IpAddress(a) => {
                self.octet_string(a);
            }
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => {
                self.u32(*v);
            }
            Value::Counter64(v) => {
                self.u32((v >> 32) as u32).u32(*v as u32);
            }
            Value::Null | Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView => {}
        }
        self
    }

    /// The finished PDU with its payload length set.
    pub fn finish(mut self) -> Vec<u8> {
        let len = (self.buf.len() - HEADER_LEN) as u32;
        self.buf[16..20].copy_from_slice(&len.to_be_bytes());
        self.buf
    }
}

/// agentx-Open-PDU (§6.2.1).
pub fn open(packet_id: u32, timeout_s: u8, id: &[u32], descr: &str) -> Vec<u8> {
    let mut w = Writer::new(PduType::Open, 0, 0, packet_id);
    w.u8(timeout_s).u8(0).u8(0).u8(0);
    w.oid(id, false).octet_string(descr.as_bytes());
    w.finish()
}

/// agentx-Register-PDU (§6.2.3) for one subtree, default context.
pub fn register(session_id: u32, packet_id: u32, subtree: &[u32], priority: u8) -> Vec<u8> {
    let mut w = Writer::new(PduType::Register, session_id, 0, packet_id);
    // timeout 0 (the session's), priority, range_subid 0, reserved.
    w.u8(0).u8(priority).u8(0).u8(0);
    w.oid(subtree, false);
    w.finish()
}

/// agentx-Ping-PDU (§6.2.13), default context.
pub fn ping(session_id: u32, packet_id: u32) -> Vec<u8> {
    Writer::new(PduType::Ping, session_id, 0, packet_id).finish()
}

/// agentx-Close-PDU (§6.2.2).
pub fn close(session_id: u32, packet_id: u32, reason: u8) -> Vec<u8> {
    let mut w = Writer::new(PduType::Close, session_id, 0, packet_id);
    w.u8(reason).u8(0).u8(0).u8(0);
    w.finish()
}

/// agentx-Response-PDU (§6.2.16) answering the request with header `h`.
pub fn response(h: &Header, uptime: u32, error: u16, index: u16, vbs: &[(Oid, Value)]) -> Vec<u8> {
    let mut w = Writer::new(
        PduType::Response,
        h.session_id,
        h.transaction_id,
        h.packet_id,
    );
    w.u32(uptime).u16(error).u16(index);
    for (name, value) in vbs {
        w.varbind(name, value);
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(bytes: &[u8]) -> Header {
        Header::decode(bytes[..HEADER_LEN].try_into().unwrap()).unwrap()
    }

    #[test]
    fn open_pdu_layout() {
        let id = [1, 3, 6, 1, 4, 1, 32473];
        let b = open(7, 5, &id, "stamp");
        // Header: version 1, type Open, network byte order, packet ID 7.
        assert_eq!(&b[..4], &[1, 1, 0x10, 0]);
        assert_eq!(&b[12..16], &7u32.to_be_bytes());
        let h = header(&b);
        assert_eq!(h.payload_len as usize, b.len() - HEADER_LEN);
        assert_eq!(h.pdu_type(), Some(PduType::Open));
        // Payload: timeout, reserved x3, OID with prefix 4: 2 sub-ids.
        assert_eq!(&b[20..24], &[5, 0, 0, 0]);
        assert_eq!(&b[24..28], &[2, 4, 0, 0]);
        assert_eq!(&b[28..32], &1u32.to_be_bytes());
        assert_eq!(&b[32..36], &32473u32.to_be_bytes());
        // Octet string "stamp": length 5, padded to 8.
        assert_eq!(&b[36..40], &5u32.to_be_bytes());
        assert_eq!(&b[40..48], b"stamp\0\0\0");
        assert_eq!(b.len(), 48);
    }

    #[test]
    fn oid_without_prefix_and_empty() {
        let mut w = Writer::new(PduType::Ping, 0, 0, 0);
        w.oid(&[1, 2, 840], true).oid(&[], false);
        let b = w.finish();
        let mut r = Reader {
            b: &b[HEADER_LEN..],
            big: true,
        };
        assert_eq!(r.oid().unwrap(), (vec![1, 2, 840], true));
        assert_eq!(r.oid().unwrap(), (vec![], false));
        assert!(r.b.is_empty());
    }

    /// A GetNext as a little-endian master (flag clear) would send it,
    /// with a non-default context.
    #[test]
    fn getnext_little_endian_with_context() {
        let mut p = Vec::new();
        p.extend_from_slice(&3u32.to_le_bytes());
        p.extend_from_slice(b"ctx\0");
        // start 1.3.6.1.4.1.32473.1 include=1, end 1.3.6.1.4.1.32474
        p.extend_from_slice(&[3, 4, 1, 0]);
        for s in [1u32, 32473, 1] {
            p.extend_from_slice(&s.to_le_bytes());
        }
        p.extend_from_slice(&[2, 4, 0, 0]);
        for s in [1u32, 32474] {
            p.extend_from_slice(&s.to_le_bytes());
        }
        let mut hb = vec![1, 6, flags::NON_DEFAULT_CONTEXT, 0];
        for v in [9u32, 10, 11, p.len() as u32] {
            hb.extend_from_slice(&v.to_le_bytes());
        }
        let h = header(&hb);
        assert_eq!((h.session_id, h.transaction_id, h.packet_id), (9, 10, 11));
        let req = decode_request(&h, &p).unwrap();
        assert_eq!(
            req,
            Request::GetNext(vec![SearchRange {
                start: vec![1, 3, 6, 1, 4, 1, 32473, 1],
                include: true,
                end: vec![1, 3, 6, 1, 4, 1, 32474],
            }])
        );
    }

    #[test]
    fn getbulk_and_response_decode() {
        let mut w = Writer::new(PduType::GetBulk, 1, 2, 3);
        w.u16(1).u16(10);
        w.oid(&[1, 3, 6, 1, 2, 1, 1], false).oid(&[], false);
        w.oid(&[1, 3, 6, 1, 4, 1, 5], false).oid(&[], false);
        let b = w.finish();
        let h = header(&b);
        let Request::GetBulk {
            non_repeaters,
            max_repetitions,
            ranges,
        } = decode_request(&h, &b[HEADER_LEN..]).unwrap()
        else {
            panic!("not a GetBulk");
        };
        assert_eq!((non_repeaters, max_repetitions, ranges.len()), (1, 10, 2));
        assert_eq!(ranges[1].start, vec![1, 3, 6, 1, 4, 1, 5]);

        let r = response(&h, 100, error::DUPLICATE_REGISTRATION, 0, &[]);
        let rh = header(&r);
        assert_eq!((rh.session_id, rh.transaction_id, rh.packet_id), (1, 2, 3));
        assert_eq!(
            decode_request(&rh, &r[HEADER_LEN..]).unwrap(),
            Request::Response {
                error: error::DUPLICATE_REGISTRATION,
                index: 0
            }
        );
    }

    #[test]
    fn varbind_encodings() {
        let mut w = Writer::new(PduType::Response, 0, 0, 0);
        w.varbind(&[1, 3, 6, 1, 4, 1, 9, 0], &Value::Counter64(0x1_0000_0002));
        w.varbind(
            &[1, 3, 6, 1, 4, 1, 9, 1],
            &Value::OctetString(b"ab".to_vec()),
        );
        w.varbind(&[1, 3, 6, 1, 4, 1, 9, 2], &Value::EndOfMibView);
        let b = w.finish();
        let p = &b[HEADER_LEN..];
        // type 70, reserved, OID (4 + 3*4), then high and low words.
        assert_eq!(&p[..4], &[0, 70, 0, 0]);
        assert_eq!(&p[4..8], &[3, 4, 0, 0]);
        assert_eq!(&p[20..28], &[0, 0, 0, 1, 0, 0, 0, 2]);
        // type 4, OID, length 2, "ab", 2 octets of padding.
        assert_eq!(&p[28..32], &[0, 4, 0, 0]);
        assert_eq!(&p[48..56], &[0, 0, 0, 2, b'a', b'b', 0, 0]);
        // type 130 and its name only.
        assert_eq!(&p[56..60], &[0, 130, 0, 0]);
        assert_eq!(p.len(), 60 + 16);
    }

    #[test]
    fn malformed_payloads_are_errors() {
        let mut w = Writer::new(PduType::GetNext, 0, 0, 0);
        w.u8(200).u8(0).u8(0).u8(0);
        let b = w.finish();
        let h = header(&b);
        assert!(decode_request(&h, &b[HEADER_LEN..]).is_err());
        // Truncated OID: says 3 sub-ids, carries one.
        let mut w = Writer::new(PduType::Get, 0, 0, 0);
        w.u8(3).u8(0).u8(0).u8(0).u32(1);
        let b = w.finish();
        assert!(decode_request(&header(&b), &b[HEADER_LEN..]).is_err());
        // Octet string longer than the payload.
        let mut w = Writer::new(PduType::Get, 0, 0, 0);
        w.u32(1000);
        let mut b = w.finish();
        b[2] |= flags::NON_DEFAULT_CONTEXT;
        assert!(decode_request(&header(&b), &b[HEADER_LEN..]).is_err());
        // Bad version, odd payload length.
        let mut hb = [0u8; HEADER_LEN];
        hb[0] = 2;
        assert!(Header::decode(&hb).is_err());
        hb[0] = 1;
        hb[2] = flags::NETWORK_BYTE_ORDER;
        hb[19] = 3;
        assert!(Header::decode(&hb).is_err());
    }
}
