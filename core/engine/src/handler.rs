//! The TLV handler trait: one object per TLV type, used by both roles.
//!
//! Reflector side: a handler updates its TLV's Value in place in the reply,
//! from a [`ReflectContext`] (receive metadata, session counters, clock
//! facts) and may ask the driver to change how the reply is sent through the
//! [`ReplyPlan`]. Outcomes map to TLV flags ([`TlvVerdict`]), never to a
//! panic. Called once per packet: no allocation, no blocking, no async.
//!
//! Sender side: which TLVs to put in a request and with what Value
//! ([`TlvHandler::request`]), per-packet refresh, and what to make of the
//! reflected Value ([`TlvHandler::decode`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde_json::{Map, Value};
use stamp_wire::tlv::HEADER_LEN;
use stamp_wire::{AuthMode, ErrorEstimate, Timestamp, TimestampFormat, TlvFlags, TlvType};

use crate::clock::{SyncSource, TimestampMethod, UnixNanos};
use crate::transport::RecvMeta;

/// What the reflector does with a TLV after its handler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlvVerdict {
    /// Processed: U, M and I cleared.
    Processed,
    /// Processed, but the request could not be honoured: C set (U cleared).
    Conformance,
    /// Recognized but refused or not usable here: U set (RFC 9503 style).
    Unrecognized,
    /// Length or content not valid for the type: M set, TLV processing
    /// stops and the rest of the packet is copied unchanged (RFC 8972 §4).
    Malformed,
    /// The whole request must be discarded (e.g. RFC 9534 member-link
    /// mismatch). Counted by the reflector; no reply.
    Discard,
}

/// An SRv6 segment list the reply must follow (RFC 9503 §4.1.3.2): `count`
/// 16-octet SIDs, first segment first, stored in the reply itself (the
/// echoed Return Path sub-TLV). While handlers run, `offset` is the
/// position of the first SID in the TLV area; once
/// [`crate::reflector::Reflector::process`] returns it is the position in
/// the reply buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Srv6Route {
    /// Offset of the first SID.
    pub offset: u16,
    /// Number of SIDs.
    pub count: u8,
}

/// How the driver sends the reply. Handlers adjust it; the driver carries it
/// out. Plugins never see sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyPlan {
    /// Destination (default: the request's source).
    pub dst: SocketAddr,
    /// Source address (default: the request's destination address).
    pub src: Option<IpAddr>,
    /// TOS / Traffic Class of the reply (None = the socket default).
    pub tos: Option<u8>,
    /// Send nothing (RFC 9503 Control Code "no reply").
    pub suppress: bool,
    /// Total number of replies to send (asymmetrical packets; 1 = normal).
    pub copies: u16,
    /// Interval between copies, nanoseconds.
    pub copy_interval_ns: u32,
    /// Length of each reply (0 = the length the reflector computed).
    pub reply_len: usize,
    /// Ask the transport for a transmit timestamp of this reply, so that
    /// the session's next reply can report it (Follow-Up Telemetry,
    /// RFC 8972 §4.7; [`crate::Reflector::set_reply_transmit_time`]).
    pub tx_timestamp: bool,
    /// Send the reply with an SRv6 Segment Routing Header along these
    /// segments, then to `dst` (only set by a handler whose plugin settings
    /// say the driver can: `srv6-return-path`).
    pub srv6_route: Option<Srv6Route>,
}

impl ReplyPlan {
    /// The default plan: one reply back to `meta.src`, from `meta.dst`.
    pub fn for_request(meta: &RecvMeta) -> Self {
        ReplyPlan {
            dst: meta.src,
            src: meta.dst,
            tos: None,
            suppress: false,
            copies: 1,
            copy_interval_ns: 0,
            reply_len: 0,
            tx_timestamp: false,
            srv6_route: None,
        }
    }
}

/// Per-session counters a stateful reflector keeps (stateless reflectors
/// report reflector-wide counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionCounters {
    /// Test packets received in this session, this one included.
    pub rx_packets: u64,
    /// Replies sent in this session before this one.
    pub tx_packets: u64,
    /// Sequence Number and T3 of the previous reply, if any.
    pub previous_reply: Option<(u32, Timestamp)>,
    /// How T3 of the previous reply was taken.
    pub previous_reply_method: TimestampMethod,
    /// Is this a stateful session (RFC 8762 §4.3.2)?
    pub stateful: bool,
}

/// Facts about the reflector's clock and timestamps for this reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockFacts {
    /// Timestamp format of T2/T3.
    pub format: TimestampFormat,
    /// Error Estimate the reply carries.
    pub error_estimate: ErrorEstimate,
    /// Clock synchronization source.
    pub sync_source: SyncSource,
    /// How T2 was taken.
    pub rx_method: TimestampMethod,
    /// How T3 will be taken.
    pub tx_method: TimestampMethod,
}

/// Everything a handler may read or change while the reflector builds a reply.
#[derive(Debug)]
pub struct ReflectContext<'a> {
    /// Receive metadata of the request.
    pub meta: &'a RecvMeta,
    /// Authentication mode of the session.
    pub mode: AuthMode,
    /// Sequence Number of the request.
    pub request_seq: u32,
    /// Sequence Number the reply will carry.
    pub reply_seq: u32,
    /// SSID of the request.
    pub ssid: u16,
    /// Session or reflector-wide counters.
    pub counters: SessionCounters,
    /// Clock facts.
    pub clock: ClockFacts,
    /// T2 of this request.
    pub receive_time: UnixNanos,
    /// How the reply is sent.
    pub plan: &'a mut ReplyPlan,
    /// The request's IP header as received (IPv4 header, or IPv6 fixed
    /// header plus extension headers), when the transport sees whole
    /// packets (raw socket); `None` over a UDP socket.
    pub ip_header: Option<&'a [u8]>,
}

/// A TLV inside the reply's TLV area, handed to a handler.
#[derive(Debug)]
pub struct TlvSlot<'a> {
    area: &'a mut [u8],
    offset: usize,
    len: usize,
}

impl<'a> TlvSlot<'a> {
    /// The TLV at `offset` of `area` whose Value is `len` octets (the caller
    /// has checked that it fits).
    pub fn new(area: &'a mut [u8], offset: usize, len: usize) -> Self {
        debug_assert!(offset + HEADER_LEN + len <= area.len());
        TlvSlot { area, offset, len }
    }
    /// The TLV type.
    pub fn tlv_type(&self) -> TlvType {
        TlvType(self.area[self.offset + 1])
    }
    /// The flags as received.
    pub fn flags(&self) -> TlvFlags {
        TlvFlags(self.area[self.offset])
    }
    /// The Value.
    pub fn value(&self) -> &[u8] {
        &self.area[self.offset + HEADER_LEN..self.offset + HEADER_LEN + self.len]
    }
    /// The Value, writable.
    pub fn value_mut(&mut self) -> &mut [u8] {
        &mut self.area[self.offset + HEADER_LEN..self.offset + HEADER_LEN + self.len]
    }
    /// Offset of this TLV in the TLV area.
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// The whole TLV area (for TLVs whose meaning depends on others, such as
    /// bit-error-rate counting over an Extra Padding TLV).
    pub fn area_mut(&mut self) -> &mut [u8] {
        self.area
    }
}

/// Options a sender passes to TLV handlers: flag or config-key name to value
/// (`"dscp" -> "46"`, `"location" -> "true"`). Plugins parse their own keys,
/// so a third-party plugin needs no change in the core.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlvOptions(BTreeMap<String, String>);

impl TlvOptions {
    /// Empty options.
    pub fn new() -> Self {
        TlvOptions(BTreeMap::new())
    }
    /// Set `key` (later values replace earlier ones).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.insert(key.into(), value.into());
        self
    }
    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    /// Is `key` present and not "false"/"0"?
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some(v) if v != "false" && v != "0")
    }
    /// Parse `key` with `FromStr`; an error names the key.
    pub fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|e| format!("invalid value {v:?} for {key}: {e}")),
        }
    }
    /// Every key and value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A TLV a sender puts in every request of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlvTemplate {
    /// The type code.
    pub tlv_type: TlvType,
    /// The initial Value (refreshed per packet by [`TlvHandler::refresh`]).
    pub value: Vec<u8>,
}

/// What the sender knows when it builds request number `seq`.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    /// Sequence Number of this request.
    pub seq: u32,
    /// Requests sent before this one in the session.
    pub sent_before: u64,
    /// SSID of the session.
    pub ssid: u16,
    /// Length of the request (the UDP payload), octets.
    pub packet_len: usize,
}

/// What the sender knows when it decodes a reflected TLV.
#[derive(Debug, Clone, Copy)]
pub struct DecodeContext<'a> {
    /// Receive metadata of the reply.
    pub meta: &'a RecvMeta,
    /// The TLV Value this sender put in the request.
    pub sent_value: Option<&'a [u8]>,
    /// Timestamp format of the reflector's timestamps (its Error Estimate Z).
    pub reflector_format: TimestampFormat,
}

/// A decoded reflected TLV, for per-packet lines and JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct TlvReport {
    /// The type code.
    pub tlv_type: TlvType,
    /// Short name used in text output (`cos`, `dm`, `location`).
    pub name: &'static str,
    /// The flags the reflector set.
    pub flags: TlvFlags,
    /// One-line human summary (`dscp 46->46 ecn 2->2`).
    pub summary: String,
    /// Structured fields for JSON / CSV.
    pub fields: Map<String, Value>,
}

impl TlvReport {
    /// A report with a summary and no structured fields.
    pub fn new(
        tlv_type: TlvType,
        name: &'static str,
        flags: TlvFlags,
        summary: impl Into<String>,
    ) -> Self {
        TlvReport {
            tlv_type,
            name,
            flags,
            summary: summary.into(),
            fields: Map::new(),
        }
    }
    /// Add a structured field.
    pub fn field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_string(), value.into());
        self
    }
}

/// One handler per TLV type. See the module documentation.
pub trait TlvHandler: Send + Sync + 'static {
    /// The type code this handler was built for.
    fn tlv_type(&self) -> TlvType;

    /// Reflector: process the TLV in the reply (already a copy of the
    /// request's TLV). The reflector sets the flags from the verdict.
    fn reflect(&self, slot: &mut TlvSlot<'_>, ctx: &mut ReflectContext<'_>) -> TlvVerdict;

    /// Sender: the TLV to include in every request of a session configured
    /// with `opts`, or `None` when the options do not ask for it.
    fn request(&self, opts: &TlvOptions) -> Result<Option<TlvTemplate>, String> {
        let _ = opts;
        Ok(None)
    }

    /// Sender: update the Value for request `ctx.seq` (counters and the like).
    fn refresh(&self, value: &mut [u8], ctx: &RequestContext) {
        let _ = (value, ctx);
    }

    /// Sender: does U on this TLV mean "recognized but refused" (RFC 9503
    /// uses it so), so that [`TlvHandler::decode`] should still run? By
    /// default U means the reflector did not process the TLV and the report
    /// just says so (RFC 8972 §4: skip it).
    fn decodes_refusals(&self) -> bool {
        false
    }

    /// Sender: decode the reflected Value of a TLV that sits in the reply's
    /// TLV area `tlv_area`, for TLVs whose meaning depends on other TLVs of
    /// the packet (bit error rate counting over the Extra Padding TLV on the
    /// reverse path). By default the area is not looked at.
    fn decode_in_packet(
        &self,
        flags: TlvFlags,
        value: &[u8],
        ctx: &DecodeContext<'_>,
        tlv_area: &[u8],
    ) -> TlvReport {
        let _ = tlv_area;
        self.decode(flags, value, ctx)
    }

    /// Sender: decode the reflected Value.
    fn decode(&self, flags: TlvFlags, value: &[u8], ctx: &DecodeContext<'_>) -> TlvReport {
        let _ = ctx;
        TlvReport::new(
            self.tlv_type(),
            "tlv",
            flags,
            format!("{} octets", value.len()),
        )
    }
}
