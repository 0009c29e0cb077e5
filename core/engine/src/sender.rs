//! The sans-I/O Session-Sender (RFC 8762 §4.2, RFC 8972 §4).
//!
//! [`SenderSession::build_request`] writes test packet number `seq` into a
//! buffer; [`SenderSession::on_reply`] matches a reply by Sequence Number and
//! SSID, computes RTT = (T4 − T1) − (T3 − T2), decodes every reflected TLV
//! and feeds the statistics; [`SenderSession::expire`] declares packets lost
//! after the timeout. Time is passed in.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use stamp_wire::tlv::{emit_header, HEADER_LEN};
use stamp_wire::{
    AuthMode, ErrorEstimate, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr, Timestamp,
    TlvFlags, TlvIter, TlvType, HMAC_COVERAGE,
};

use crate::clock::{Clock, TimestampSource, UnixNanos};
use crate::handler::{DecodeContext, RequestContext, TlvOptions, TlvReport, TlvTemplate};
use crate::hmac::{HmacKey, TAG_LEN};
use crate::measure::{
    hops_from_ttl, seq_diff, HopStats, Ipdv, PathChange, PdvSummary, Reorder, SeenWindow,
};
use crate::registry::Registry;
use crate::stats::{DelayStats, DelaySummary};
use crate::transport::RecvMeta;

/// Shortest reply accepted in unauthenticated mode: through the
/// Session-Sender Sequence Number (octets 24..28).
pub const MIN_TWAMP_LIGHT_REPLY: usize = 28;

/// Sender configuration.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Open or authenticated mode.
    pub mode: AuthMode,
    /// SSID (0 = none).
    pub ssid: u16,
    /// Key for authenticated mode and the HMAC TLV.
    pub key: Option<HmacKey>,
    /// Add an HMAC TLV in unauthenticated mode too.
    pub tlv_hmac: bool,
    /// A packet with no reply after this long is lost.
    pub timeout: Duration,
    /// First Sequence Number (0 per RFC 8762 §4.2.1).
    pub first_seq: u32,
    /// Both clocks are known to be synchronized: report one-way delays even
    /// when the Error Estimates do not say so.
    pub assume_synchronized: bool,
    /// What to do when replies to requests carrying an SSID come back with
    /// SSID 0, from a reflector without RFC 8972 (§3: the sender "MUST
    /// support control of its behavior in such a scenario").
    pub zero_ssid: ZeroSsidPolicy,
}

/// RFC 8972 §3: a Session-Sender's behaviour when a reflector returns a
/// zeroed SSID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroSsidPolicy {
    /// Keep measuring (the replies are used; they are counted).
    #[default]
    Continue,
    /// Stop the session at the first such reply: send nothing more, wait
    /// for the replies in flight, report.
    Stop,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            mode: AuthMode::Open,
            ssid: 0,
            key: None,
            tlv_hmac: false,
            timeout: Duration::from_secs(5),
            first_seq: 0,
            assume_synchronized: false,
            zero_ssid: ZeroSsidPolicy::Continue,
        }
    }
}

/// Why a received datagram was not used as a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejected {
    /// Came from an address other than the reflector's.
    WrongAddress,
    /// Came from the reflector's address but another port.
    WrongPort,
    /// Shorter than the reflector base packet.
    Truncated,
    /// Base HMAC failed.
    AuthFailed,
    /// SSID differs from ours.
    WrongSsid,
    /// Sequence Number not one we sent.
    Unknown,
    /// A reply to a packet we sent, after its timeout (the packet stays lost).
    Late,
    /// Timestamps that cannot be right: T3 before T2, or a round-trip time
    /// below zero (a corrupted reply in open mode).
    Implausible,
}

impl Rejected {
    /// Every reason, in the order reports list them.
    pub const ALL: [Rejected; 8] = [
        Rejected::WrongAddress,
        Rejected::WrongPort,
        Rejected::Truncated,
        Rejected::AuthFailed,
        Rejected::WrongSsid,
        Rejected::Unknown,
        Rejected::Late,
        Rejected::Implausible,
    ];

    /// The snake_case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Rejected::WrongAddress => "wrong_address",
            Rejected::WrongPort => "wrong_port",
            Rejected::Truncated => "truncated",
            Rejected::AuthFailed => "auth_failed",
            Rejected::WrongSsid => "wrong_ssid",
            Rejected::Unknown => "unknown",
            Rejected::Late => "late",
            Rejected::Implausible => "implausible",
        }
    }
}

/// Largest negative round-trip time still taken as rounding, not as a
/// corrupted reply: 1 µs.
const RTT_TOLERANCE_NS: i64 = 1_000;

/// Replies held to put them back in the reflector's receive order (T2)
/// before the forward reordering test: exact as long as no reply comes
/// back more than this many packets late.
pub const FORWARD_REORDER_BUFFER: usize = 64;

/// Path changes kept in [`SenderStats::path_changes`] (the latest ones).
pub const PATH_CHANGES_KEPT: usize = 16;

/// One answered test packet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PacketRecord {
    /// Session-Sender Sequence Number.
    pub seq: u32,
    /// Reflector Sequence Number.
    pub reflector_seq: u32,
    /// T1, sender transmit time.
    pub t1: UnixNanos,
    /// T2, reflector receive time (reflector's timescale).
    pub t2: UnixNanos,
    /// T3, reflector transmit time.
    pub t3: UnixNanos,
    /// T4, sender receive time.
    pub t4: UnixNanos,
    /// Round-trip time without the reflector's residence time, ns.
    pub rtt_ns: i64,
    /// Reflector residence time T3 − T2, ns.
    pub residence_ns: i64,
    /// Forward one-way delay T2 − T1, ns (only when both clocks are synchronized).
    pub forward_ns: Option<i64>,
    /// Backward one-way delay T4 − T3, ns (only when both clocks are synchronized).
    pub backward_ns: Option<i64>,
    /// Session-Sender TTL the reflector saw.
    pub sender_ttl: u8,
    /// TTL / Hop Limit of the reply as we received it.
    pub reply_ttl: Option<u8>,
    /// TOS of the reply as we received it.
    pub reply_tos: Option<u8>,
    /// The reflector's Error Estimate.
    pub reflector_error_estimate: u16,
    /// SSID in the reply.
    pub ssid: u16,
    /// Reply length.
    pub len: usize,
    /// Where T1 came from ("user", or "kernel" / "hardware" when a
    /// transmit timestamp replaced the user-space reading).
    pub t1_source: &'static str,
    /// Where T4 came from.
    pub t4_source: &'static str,
    /// Hops sender → reflector, from the Session-Sender TTL field.
    pub forward_hops: Option<u8>,
    /// Hops reflector → sender, from the reply's TTL as received.
    pub backward_hops: Option<u8>,
    /// RTT IPDV against the previous packet (RFC 3393), when both arrived.
    pub ipdv_ns: Option<i64>,
    /// RFC 4737 reordering extent when this reply came out of order.
    pub reorder_extent: Option<u64>,
    /// Path length changes this reply showed.
    #[serde(skip)]
    pub path_changes: Vec<PathChange>,
    /// Decoded reflected TLVs.
    #[serde(serialize_with = "serialize_tlvs")]
    pub tlvs: Vec<TlvReport>,
    /// Problem with the reflected TLVs (integrity, malformed), if any.
    pub tlv_error: Option<&'static str>,
}

fn serialize_tlvs<S: serde::Serializer>(tlvs: &[TlvReport], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(tlvs.len()))?;
    for t in tlvs {
        let mut m = serde_json::Map::new();
        m.insert("type".into(), t.tlv_type.0.into());
        m.insert("name".into(), t.name.into());
        m.insert("flags".into(), t.flags.to_string().into());
        m.insert("summary".into(), t.summary.clone().into());
        for (k, v) in &t.fields {
            m.insert(k.clone(), v.clone());
        }
        seq.serialize_element(&m)?;
    }
    seq.end()
}

/// What a received datagram turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyEvent {
    /// First reply to one of our packets.
    Matched(Box<PacketRecord>),
    /// A further reply of a reflected train (asymmetrical packets: the
    /// request asked for several replies); each carries its own T3.
    TrainReply(Box<PacketRecord>),
    /// Another reply to a packet already answered.
    Duplicate(u32),
    /// Not a usable reply.
    Rejected(Rejected),
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    t1: UnixNanos,
    t1_source: TimestampSource,
    sent_at: Instant,
    answered: bool,
    /// Replies of a reflected train seen so far, and the last one's T3.
    train_seen: u16,
    last_t3: u64,
    /// T3 of the latest distinct replies (a reply copied by the network
    /// repeats one of them), newest at `t3_seen % T3_KEPT`.
    t3s: [u64; T3_KEPT],
    t3_seen: usize,
}

/// Distinct T3 values remembered per packet in flight.
const T3_KEPT: usize = 4;

impl InFlight {
    fn saw_t3(&self, t3: u64) -> bool {
        self.t3s[..self.t3_seen.min(T3_KEPT)].contains(&t3)
    }

    fn add_t3(&mut self, t3: u64) {
        self.t3s[self.t3_seen % T3_KEPT] = t3;
        self.t3_seen += 1;
    }
}

/// Sender counters and statistics.
#[derive(Debug, Clone, Default)]
pub struct SenderStats {
    /// Test packets sent.
    pub sent: u64,
    /// Distinct packets answered.
    pub received: u64,
    /// Packets declared lost after the timeout.
    pub lost: u64,
    /// Extra replies to packets already answered.
    pub duplicates: u64,
    /// Of those, replies the reflector sent again (a new T3: the request
    /// was duplicated on the way out).
    pub duplicates_forward: u64,
    /// Of those, copies of a reply (same T3: duplicated on the way back).
    pub duplicates_backward: u64,
    /// Replies rejected, by reason.
    pub rejected: BTreeMap<Rejected, u64>,
    /// Replies with SSID 0 to requests that carried one: the reflector does
    /// not implement RFC 8972 §3.
    pub zero_ssid_replies: u64,
    /// Round-trip time.
    pub rtt: DelayStats,
    /// Forward one-way delay.
    pub forward: DelayStats,
    /// Backward one-way delay.
    pub backward: DelayStats,
    /// Reflector residence time.
    pub residence: DelayStats,
    /// Session-Sender TTL seen by the reflector: min, max, last.
    pub ttl: Option<(u8, u8, u8)>,
    /// RTT IPDV (RFC 3393 / RFC 5481).
    pub ipdv_rtt: Ipdv,
    /// Forward one-way IPDV (synchronized clocks only).
    pub ipdv_forward: Ipdv,
    /// Backward one-way IPDV (synchronized clocks only).
    pub ipdv_backward: Ipdv,
    /// Round-trip reordering (RFC 4737) of the Session-Sender Sequence
    /// Numbers in the order the replies arrived.
    pub reorder: Reorder,
    /// Backward reordering: RFC 4737 on the reflector's transmit
    /// timestamps (T3, its sending order) in the order the replies arrive,
    /// so it works against stateless and stateful reflectors alike.
    pub reorder_backward: Reorder,
    /// Forward reordering: RFC 4737 on our Sequence Numbers in the order
    /// the reflector received them (its T2), rebuilt from the replies with
    /// a [`FORWARD_REORDER_BUFFER`]-packet buffer.
    pub reorder_forward: Reorder,
    /// Replies not yet fed to `reorder_forward`: (T2, seq), smallest first.
    forward_order: std::collections::BinaryHeap<std::cmp::Reverse<(u64, u32)>>,
    /// Hops sender → reflector.
    pub forward_hops: HopStats,
    /// Hops reflector → sender.
    pub backward_hops: HopStats,
    /// Path length changes (both directions).
    pub path_change_count: u64,
    /// The latest [`PATH_CHANGES_KEPT`] path length changes.
    pub path_changes: VecDeque<PathChange>,
    /// Replies whose reflected TLVs failed integrity or were malformed.
    pub tlv_errors: u64,
    /// Where T1 of the answered packets came from.
    pub t1_sources: SourceTally,
    /// Where T4 of the answered packets came from.
    pub t4_sources: SourceTally,
    /// Replies requested per test packet (Reflected Test Packet Control).
    pub train_len: u16,
    /// Further replies of reflected trains received (beyond the first).
    pub train_replies: u64,
    /// Further replies the answered requests asked for.
    pub train_expected: u64,
    /// RTT of the further train replies.
    pub train_rtt: DelayStats,
    /// Per TLV type: the last decoded report and how many replies carried it
    /// (and how many of those with U, M, I or C set).
    pub tlvs: std::collections::BTreeMap<u8, TlvTally>,
    /// Lowest and highest answered sender seq and reflector seq, for
    /// directional loss.
    span: Option<SeqSpan>,
    /// Replies whose reflector seq differed from the sender seq.
    stateful_replies: u64,
    /// Answered packets within the span.
    span_received: u64,
    /// Forward duplicates seen (each took a reflector sequence number).
    span_forward_dups: u64,
    /// Sequence Number of the first request.
    first_seq: u32,
}

#[derive(Debug, Clone, Copy)]
struct SeqSpan {
    s_lo: u32,
    s_hi: u32,
    r_lo: u32,
    r_hi: u32,
}

impl SeqSpan {
    fn widen(span: Option<SeqSpan>, s: u32, r: u32) -> SeqSpan {
        let Some(mut x) = span else {
            return SeqSpan {
                s_lo: s,
                s_hi: s,
                r_lo: r,
                r_hi: r,
            };
        };
        if seq_diff(s, x.s_lo) < 0 {
            x.s_lo = s;
        }
        if seq_diff(s, x.s_hi) > 0 {
            x.s_hi = s;
        }
        if seq_diff(r, x.r_lo) < 0 {
            x.r_lo = r;
        }
        if seq_diff(r, x.r_hi) > 0 {
            x.r_hi = r;
        }
        x
    }
}

/// How many timestamps of a kind came from each source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SourceTally {
    /// Read from the clock in user space.
    pub user: u64,
    /// Kernel software timestamps.
    pub kernel: u64,
    /// NIC hardware timestamps.
    pub hardware: u64,
}

impl SourceTally {
    /// Count one timestamp.
    pub fn add(&mut self, source: TimestampSource) {
        match source {
            TimestampSource::UserSpace => self.user += 1,
            TimestampSource::Kernel => self.kernel += 1,
            TimestampSource::Hardware => self.hardware += 1,
        }
    }

    /// "kernel-tx", "user", "hardware-rx", or a mix with counts
    /// ("kernel-tx 998 user 2"); `direction` is "tx" or "rx".
    pub fn describe(&self, direction: &str) -> String {
        let parts: Vec<(String, u64)> = [
            (format!("hardware-{direction}"), self.hardware),
            (format!("kernel-{direction}"), self.kernel),
            ("user".to_string(), self.user),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
        match parts.as_slice() {
            [] => "none".to_string(),
            [(name, _)] => name.clone(),
            _ => parts
                .iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// What the replies said about one TLV type over a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TlvTally {
    /// Replies carrying it.
    pub count: u64,
    /// Replies where the reflector flagged it (U, M, I or C).
    pub flagged: u64,
    /// The last decoded report.
    pub last: TlvReport,
}

/// Loss split by direction, from a stateful reflector's counter
/// (RFC 8762 §4.3.2), computed from deltas so any starting number works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DirectionalLoss {
    /// Requests that did not reach the reflector.
    pub forward: u64,
    /// Replies that did not come back.
    pub backward: u64,
}

impl SenderStats {
    /// Loss per direction, when the reflector numbers its replies itself.
    ///
    /// Between the lowest and highest answered packets, the sender sent
    /// `S = s_hi − s_lo + 1` requests and the reflector answered
    /// `R = r_hi − r_lo + 1` times (its counter moves once per reply,
    /// forward duplicates included). So `forward = S − (R − dup_fwd)` and
    /// `backward = R − (distinct replies received)`. Losses after the last
    /// answered packet cannot be placed; nor can losses before the first
    /// one, unless the reflector numbered that reply 0 (a stateful
    /// reflector starts each session at 0, RFC 8762 §4.3.2): then every
    /// earlier request was lost on the way out.
    pub fn directional_loss(&self) -> Option<DirectionalLoss> {
        let x = self.span?;
        let s_lo = if x.r_lo == 0 && self.stateful_replies > 0 {
            self.first_seq
        } else {
            x.s_lo
        };
        let sent = u64::from(x.s_hi.wrapping_sub(s_lo)) + 1;
        let refl = u64::from(x.r_hi.wrapping_sub(x.r_lo)) + 1;
        if self.stateful_replies == 0 && self.span_received != sent {
            // Every reply carried our own sequence number: a stateless
            // reflector, or a stateful one that lost nothing forward. With
            // losses in the span the two cannot be told apart.
            return None;
        }
        let dups = self.span_forward_dups;
        Some(DirectionalLoss {
            forward: (sent + dups).saturating_sub(refl),
            backward: refl.saturating_sub(self.span_received + dups),
        })
    }

    /// Add another target's statistics (for the total over targets).
    /// Directional loss stays per target.
    pub fn merge(&mut self, o: &SenderStats) {
        self.sent += o.sent;
        self.received += o.received;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.duplicates_forward += o.duplicates_forward;
        self.duplicates_backward += o.duplicates_backward;
        self.zero_ssid_replies += o.zero_ssid_replies;
        for (k, v) in &o.rejected {
            *self.rejected.entry(*k).or_default() += v;
        }
        self.rtt.merge(&o.rtt);
        self.forward.merge(&o.forward);
        self.backward.merge(&o.backward);
        self.residence.merge(&o.residence);
        self.ipdv_rtt.merge(&o.ipdv_rtt);
        self.ipdv_forward.merge(&o.ipdv_forward);
        self.ipdv_backward.merge(&o.ipdv_backward);
        self.reorder.merge(&o.reorder);
        self.reorder_backward.merge(&o.reorder_backward);
        self.reorder_forward.merge(&o.reorder_forward);
        self.forward_hops.merge(&o.forward_hops);
        self.backward_hops.merge(&o.backward_hops);
        self.path_change_count += o.path_change_count;
        self.tlv_errors += o.tlv_errors;
        self.train_replies += o.train_replies;
        self.train_expected += o.train_expected;
        self.train_rtt.merge(&o.train_rtt);
        self.train_len = self.train_len.max(o.train_len);
        self.ttl = match (self.ttl, o.ttl) {
            (Some((a, b, _)), Some((c, d, l))) => Some((a.min(c), b.max(d), l)),
            (x, y) => x.or(y),
        };
    }

    /// Losses [`Self::directional_loss`] could not place (before the first
    /// or after the last answered packet), or all of them without it.
    pub fn unattributed_loss(&self) -> u64 {
        match self.directional_loss() {
            Some(d) => self.lost.saturating_sub(d.forward + d.backward),
            None => self.lost,
        }
    }

    /// Feed the `n` replies received earliest by the reflector to the
    /// forward reordering test.
    fn release_forward_order(&mut self, n: usize) {
        for _ in 0..n {
            match self.forward_order.pop() {
                Some(std::cmp::Reverse((_, seq))) => {
                    self.reorder_forward.record(seq);
                }
                None => break,
            }
        }
    }

    /// Whether the reflector numbers its replies itself (stateful).
    pub fn reflector_is_stateful(&self) -> bool {
        self.stateful_replies > 0
    }

    /// PDV of the RTT (RFC 5481).
    pub fn pdv_rtt(&self) -> Option<PdvSummary> {
        self.rtt.summary().map(|d| PdvSummary::from_delay(&d))
    }

    /// PDV of the forward delay.
    pub fn pdv_forward(&self) -> Option<PdvSummary> {
        self.forward.summary().map(|d| PdvSummary::from_delay(&d))
    }

    /// PDV of the backward delay.
    pub fn pdv_backward(&self) -> Option<PdvSummary> {
        self.backward.summary().map(|d| PdvSummary::from_delay(&d))
    }

    /// Total of rejected replies.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// RTT summary.
    pub fn rtt_summary(&self) -> Option<DelaySummary> {
        self.rtt.summary()
    }
}

/// One STAMP test session seen from the Session-Sender.
#[derive(Debug)]
pub struct SenderSession {
    config: SenderConfig,
    registry: Registry,
    templates: Vec<TlvTemplate>,
    /// (offset in the TLV area, value length) of each template, and of the HMAC TLV.
    layout: Vec<(usize, usize)>,
    hmac_tlv_at: Option<usize>,
    packet_len: usize,
    next_seq: u32,
    in_flight: HashMap<u32, InFlight>,
    order: VecDeque<u32>,
    unanswered: usize,
    train_len: u16,
    stats: SenderStats,
    remote: Option<SocketAddr>,
    /// Reflector sequence numbers seen lately (forward duplicates).
    refl_seen: SeenWindow,
}

/// Build the TLV templates the options ask for, in type-code order.
pub fn request_templates(
    registry: &Registry,
    opts: &TlvOptions,
) -> Result<Vec<TlvTemplate>, String> {
    let mut out = Vec::new();
    for (_, h) in registry.handlers() {
        if let Some(t) = h.request(opts)? {
            out.push(t);
        }
    }
    Ok(out)
}

impl SenderSession {
    /// A session sending `templates` TLVs in every request.
    pub fn new(
        config: SenderConfig,
        registry: Registry,
        templates: Vec<TlvTemplate>,
    ) -> Result<Self, String> {
        if config.mode == AuthMode::Authenticated && config.key.is_none() {
            return Err("authenticated mode needs an HMAC key".into());
        }
        if config.tlv_hmac && config.key.is_none() {
            return Err("the HMAC TLV needs an HMAC key".into());
        }
        // Extra Padding goes after the HMAC TLV (RFC 8972 §4.8 allows it):
        // it is the one TLV whose content need not be protected, and peers
        // disagree on how to hash padding that precedes the HMAC TLV.
        let (padding, mut ordered): (Vec<_>, Vec<_>) = templates
            .into_iter()
            .partition(|t| t.tlv_type == TlvType::EXTRA_PADDING);
        let needs_hmac_tlv =
            config.tlv_hmac || (config.mode == AuthMode::Authenticated && !ordered.is_empty());
        let mut layout = Vec::new();
        let mut off = 0usize;
        for t in &ordered {
            layout.push((off, t.value.len()));
            off += HEADER_LEN + t.value.len();
        }
        let hmac_tlv_at = if needs_hmac_tlv {
            let at = off;
            off += HEADER_LEN + TAG_LEN;
            Some(at)
        } else {
            None
        };
        for t in &padding {
            layout.push((off, t.value.len()));
            off += HEADER_LEN + t.value.len();
        }
        ordered.extend(padding);
        let packet_len = config.mode.base_len() + off;
        // A Reflected Test Packet Control TLV (draft-ietf-ippm-asymmetrical-pkts)
        // asks for a train of replies: Number of the Reflected Packets at
        // value octets 2..4.
        let rtpc = registry
            .code_of("reflected-test-packet-control")
            .unwrap_or(TlvType::REFLECTED_TEST_PACKET_CONTROL);
        let train_len = ordered
            .iter()
            .find(|t| t.tlv_type == rtpc && t.value.len() >= 4)
            .map(|t| u16::from_be_bytes([t.value[2], t.value[3]]).max(1))
            .unwrap_or(1);
        if packet_len > stamp_wire::MAX_DATAGRAM {
            return Err(format!(
                "test packet of {packet_len} octets exceeds {} octets",
                stamp_wire::MAX_DATAGRAM
            ));
        }
        let first_seq = config.first_seq;
        Ok(SenderSession {
            next_seq: first_seq,
            config,
            registry,
            templates: ordered,
            layout,
            hmac_tlv_at,
            packet_len,
            in_flight: HashMap::new(),
            order: VecDeque::new(),
            unanswered: 0,
            train_len,
            stats: SenderStats {
                train_len,
                first_seq,
                ..SenderStats::default()
            },
            remote: None,
            refl_seen: SeenWindow::default(),
        })
    }

    /// The session asks to stop: a reply came back with SSID 0 and the
    /// policy is [`ZeroSsidPolicy::Stop`].
    pub fn stop_requested(&self) -> bool {
        self.config.zero_ssid == ZeroSsidPolicy::Stop && self.stats.zero_ssid_replies > 0
    }

    /// Only accept replies from this address.
    pub fn set_remote(&mut self, remote: SocketAddr) {
        self.remote = Some(remote);
    }

    /// Length of every test packet.
    pub fn packet_len(&self) -> usize {
        self.packet_len
    }

    /// Configuration.
    pub fn config(&self) -> &SenderConfig {
        &self.config
    }

    /// Statistics so far.
    pub fn stats(&self) -> &SenderStats {
        &self.stats
    }

    /// Packets sent whose replies (the whole train, when the request asked
    /// for several) have not all arrived and which have not expired.
    pub fn outstanding(&self) -> usize {
        self.unanswered
    }

    /// The Sequence Number of the next request.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// Write the next test packet into `buf` and return its length. T1 is
    /// read from `clock` as late as possible (before the HMACs, which cover
    /// it). `now` is the monotonic send time.
    pub fn build_request(&mut self, buf: &mut [u8], now: Instant, clock: &dyn Clock) -> usize {
        let mode = self.config.mode;
        let len = self.packet_len;
        let buf = &mut buf[..len];
        let seq = self.next_seq;
        let (head, area) = buf.split_at_mut(mode.base_len());
        let ctx = RequestContext {
            seq,
            sent_before: self.stats.sent,
            ssid: self.config.ssid,
            packet_len: len,
        };
        for (t, &(off, vlen)) in self.templates.iter().zip(&self.layout) {
            emit_header(&mut area[off..], TlvFlags::U, t.tlv_type, vlen as u16);
            let value = &mut area[off + HEADER_LEN..off + HEADER_LEN + vlen];
            value.copy_from_slice(&t.value);
            if let Some(h) = self.registry.get(t.tlv_type) {
                h.refresh(value, &ctx);
            }
        }
        if let (Some(at), Some(key)) = (self.hmac_tlv_at, &self.config.key) {
            emit_header(&mut area[at..], TlvFlags::U, TlvType::HMAC, TAG_LEN as u16);
            let tag = key.tag(&[&seq.to_be_bytes(), &area[..at]]);
            area[at + HEADER_LEN..at + HEADER_LEN + TAG_LEN].copy_from_slice(&tag);
        }
        let mut p = SenderPacket::new_unchecked(head, mode);
        let t1 = clock.now();
        SenderRepr {
            sequence_number: seq,
            timestamp: clock.encode(t1),
            error_estimate: clock.error_estimate(),
            ssid: self.config.ssid,
        }
        .emit(&mut p);
        if mode == AuthMode::Authenticated {
            if let Some(key) = &self.config.key {
                let tag = key.tag(&[&p.as_bytes()[..HMAC_COVERAGE]]);
                if let Some(h) = p.hmac_mut() {
                    h.copy_from_slice(&tag);
                }
            }
        }
        self.in_flight.insert(
            seq,
            InFlight {
                t1,
                t1_source: TimestampSource::UserSpace,
                sent_at: now,
                answered: false,
                train_seen: 0,
                last_t3: 0,
                t3s: [0; T3_KEPT],
                t3_seen: 0,
            },
        );
        self.order.push_back(seq);
        self.unanswered += 1;
        self.stats.sent += 1;
        self.next_seq = seq.wrapping_add(1);
        len
    }

    /// Correct T1 of packet `seq` after the fact (a kernel or hardware
    /// transmit timestamp, on this clock's timescale); ignored once the
    /// packet was answered, so one packet's RTT never mixes two T1s.
    pub fn set_transmit_time(&mut self, seq: u32, t1: UnixNanos, source: TimestampSource) {
        if let Some(f) = self.in_flight.get_mut(&seq) {
            // A NIC timestamp is not replaced by the kernel's of the same
            // datagram, whichever the error queue gave first.
            let downgrade =
                f.t1_source == TimestampSource::Hardware && source != TimestampSource::Hardware;
            if !f.answered && !downgrade {
                f.t1 = t1;
                f.t1_source = source;
            }
        }
    }

    /// Handle one received datagram. `t4` is the receive time on our clock's
    /// timescale; `t4_source` says who took it.
    pub fn on_reply(
        &mut self,
        buf: &[u8],
        meta: &RecvMeta,
        t4: UnixNanos,
        t4_source: TimestampSource,
        our_estimate: ErrorEstimate,
    ) -> ReplyEvent {
        match self.on_reply_inner(buf, meta, t4, t4_source, our_estimate) {
            Ok(ev) => {
                if let ReplyEvent::Matched(rec) = &ev {
                    if rec.ssid == 0 && self.config.ssid != 0 {
                        self.stats.zero_ssid_replies += 1;
                    }
                }
                ev
            }
            Err(r) => {
                *self.stats.rejected.entry(r).or_default() += 1;
                ReplyEvent::Rejected(r)
            }
        }
    }

    fn on_reply_inner(
        &mut self,
        buf: &[u8],
        meta: &RecvMeta,
        t4: UnixNanos,
        t4_source: TimestampSource,
        our_estimate: ErrorEstimate,
    ) -> Result<ReplyEvent, Rejected> {
        let mode = self.config.mode;
        if let Some(remote) = self.remote {
            if remote.ip() != meta.src.ip() {
                return Err(Rejected::WrongAddress);
            }
            if remote.port() != meta.src.port() {
                return Err(Rejected::WrongPort);
            }
        }
        // TWAMP-Light reflectors may answer with fewer than 44 octets (38 or
        // 41, RFC 5357 §4.2.1); read such a reply zero-extended, as long as
        // it reaches the Session-Sender Sequence Number we match on.
        let mut short = [0u8; 44];
        let buf = if mode == AuthMode::Open && buf.len() < 44 && buf.len() >= MIN_TWAMP_LIGHT_REPLY
        {
            short[..buf.len()].copy_from_slice(buf);
            &short[..]
        } else {
            buf
        };
        let p = ReflectorPacket::new_checked(buf, mode).map_err(|_| Rejected::Truncated)?;
        if mode == AuthMode::Authenticated {
            let key = self.config.key.as_ref().ok_or(Rejected::AuthFailed)?;
            if !key.verify(&[&buf[..HMAC_COVERAGE]], p.hmac().unwrap_or(&[])) {
                return Err(Rejected::AuthFailed);
            }
        }
        let r = ReflectorRepr::parse(&p);
        // A reflector that only implements RFC 8762 returns 0 in the SSID
        // field (RFC 8972 §3); we keep measuring in that case.
        if r.ssid != self.config.ssid && r.ssid != 0 {
            return Err(Rejected::WrongSsid);
        }
        let seq = r.sender_sequence_number;
        let sent_before = self.stats.sent;
        let first_seq = self.config.first_seq;
        let Some(flight) = self.in_flight.get_mut(&seq) else {
            // Sent by us (within the numbers used so far) but no longer
            // waited for: it came after the timeout.
            let age = u64::from(seq.wrapping_sub(first_seq));
            if age < sent_before || sent_before > u64::from(u32::MAX) {
                return Err(Rejected::Late);
            }
            return Err(Rejected::Unknown);
        };
        let train_member =
            flight.answered && flight.train_seen < self.train_len && r.timestamp.0 > flight.last_t3;
        if flight.answered && !train_member {
            // Same T3 as a reply already seen: the network copied the
            // reply. Another T3 beyond the replies asked for: the reflector
            // answered a copy of the request.
            self.stats.duplicates += 1;
            if flight.saw_t3(r.timestamp.0) {
                self.stats.duplicates_backward += 1;
            } else {
                self.stats.duplicates_forward += 1;
                flight.add_t3(r.timestamp.0);
                if self.refl_seen.insert(r.sequence_number) {
                    self.stats.span_forward_dups += 1;
                    self.stats.span = Some(SeqSpan::widen(self.stats.span, seq, r.sequence_number));
                }
            }
            return Ok(ReplyEvent::Duplicate(seq));
        }
        // Timestamps checked before the reply counts as an answer, so a
        // corrupted one neither skews the statistics nor hides a later
        // genuine reply.
        let rformat = r.error_estimate.format();
        let t2 = UnixNanos(r.receive_timestamp.to_unix_nanos(rformat).unwrap_or(0));
        let t3 = UnixNanos(r.timestamp.to_unix_nanos(rformat).unwrap_or(0));
        let residence = t3.diff(t2);
        let rtt = t4.diff(flight.t1) - residence;
        if residence < 0 || rtt < -RTT_TOLERANCE_NS {
            return Err(Rejected::Implausible);
        }
        flight.train_seen += 1;
        flight.last_t3 = r.timestamp.0;
        flight.add_t3(r.timestamp.0);
        let first = !flight.answered;
        flight.answered = true;
        let t1 = flight.t1;
        let t1_source = flight.t1_source;
        if flight.train_seen == self.train_len {
            self.unanswered -= 1;
        }

        let synced = self.config.assume_synchronized
            || (our_estimate.is_synchronized() && r.error_estimate.is_synchronized());
        let (forward, backward) = if synced {
            (Some(t2.diff(t1)), Some(t4.diff(t3)))
        } else {
            (None, None)
        };

        let (tlvs, tlv_error) = self.decode_tlvs(&p, &r, meta);

        if !first {
            self.stats.train_replies += 1;
            self.stats.train_rtt.record(rtt);
            return Ok(ReplyEvent::TrainReply(Box::new(PacketRecord {
                seq,
                reflector_seq: r.sequence_number,
                t1,
                t2,
                t3,
                t4,
                rtt_ns: rtt,
                residence_ns: residence,
                forward_ns: forward,
                backward_ns: backward,
                sender_ttl: r.sender_ttl,
                reply_ttl: meta.ttl,
                reply_tos: meta.tos,
                reflector_error_estimate: r.error_estimate.0,
                ssid: r.ssid,
                len: buf.len(),
                t1_source: t1_source.name(),
                t4_source: t4_source.name(),
                forward_hops: hops_from_ttl(r.sender_ttl),
                backward_hops: meta.ttl.and_then(hops_from_ttl),
                ipdv_ns: None,
                reorder_extent: None,
                path_changes: Vec::new(),
                tlvs,
                tlv_error,
            })));
        }
        self.stats.train_expected += u64::from(self.train_len - 1);

        let st = &mut self.stats;
        st.received += 1;
        st.t1_sources.add(t1_source);
        st.t4_sources.add(t4_source);
        st.rtt.record(rtt);
        st.residence.record(residence);
        if let (Some(f), Some(b)) = (forward, backward) {
            st.forward.record(f);
            st.backward.record(b);
        }
        st.ttl = Some(match st.ttl {
            None => (r.sender_ttl, r.sender_ttl, r.sender_ttl),
            Some((lo, hi, _)) => (lo.min(r.sender_ttl), hi.max(r.sender_ttl), r.sender_ttl),
        });
        let ipdv_ns = st.ipdv_rtt.record(seq, rtt);
        if let (Some(f), Some(b)) = (forward, backward) {
            st.ipdv_forward.record(seq, f);
            st.ipdv_backward.record(seq, b);
        }
        let reorder_extent = st.reorder.record(seq);
        st.reorder_backward.record_key(t3.0 as i64);
        st.forward_order.push(std::cmp::Reverse((t2.0, seq)));
        if st.forward_order.len() > FORWARD_REORDER_BUFFER {
            st.release_forward_order(1);
        }
        let forward_hops = hops_from_ttl(r.sender_ttl);
        let backward_hops = meta.ttl.and_then(hops_from_ttl);
        let mut path_changes = Vec::new();
        for (dir, hops, ttl, h) in [
            ("forward", forward_hops, r.sender_ttl, &mut st.forward_hops),
            (
                "backward",
                backward_hops,
                meta.ttl.unwrap_or(0),
                &mut st.backward_hops,
            ),
        ] {
            if let Some((from, to)) = hops.and_then(|x| h.record(x)) {
                path_changes.push(PathChange {
                    direction: dir,
                    seq,
                    from_hops: from,
                    to_hops: to,
                    ttl,
                });
            }
        }
        for c in &path_changes {
            st.path_change_count += 1;
            if st.path_changes.len() == PATH_CHANGES_KEPT {
                st.path_changes.pop_front();
            }
            st.path_changes.push_back(*c);
        }
        if tlv_error.is_some() {
            st.tlv_errors += 1;
        }
        for t in &tlvs {
            let flagged = u64::from(t.flags.0 & 0xF0 != 0);
            st.tlvs
                .entry(t.tlv_type.0)
                .and_modify(|x| {
                    x.count += 1;
                    x.flagged += flagged;
                    x.last = t.clone();
                })
                .or_insert_with(|| TlvTally {
                    count: 1,
                    flagged,
                    last: t.clone(),
                });
        }
        if r.sequence_number != seq {
            st.stateful_replies += 1;
        }
        st.span_received += 1;
        self.refl_seen.insert(r.sequence_number);
        st.span = Some(SeqSpan::widen(st.span, seq, r.sequence_number));

        Ok(ReplyEvent::Matched(Box::new(PacketRecord {
            seq,
            reflector_seq: r.sequence_number,
            t1,
            t2,
            t3,
            t4,
            rtt_ns: rtt,
            residence_ns: residence,
            forward_ns: forward,
            backward_ns: backward,
            sender_ttl: r.sender_ttl,
            reply_ttl: meta.ttl,
            reply_tos: meta.tos,
            reflector_error_estimate: r.error_estimate.0,
            ssid: r.ssid,
            len: buf.len(),
            t1_source: t1_source.name(),
            t4_source: t4_source.name(),
            forward_hops,
            backward_hops,
            ipdv_ns,
            reorder_extent,
            path_changes,
            tlvs,
            tlv_error,
        })))
    }

    /// RFC 8972 §4 rules for the sender: I on any TLV or a failed HMAC TLV
    /// discards all TLVs; M stops processing; U is reported as such.
    fn decode_tlvs(
        &self,
        p: &ReflectorPacket<&[u8]>,
        r: &ReflectorRepr,
        meta: &RecvMeta,
    ) -> (Vec<TlvReport>, Option<&'static str>) {
        let area = p.tlv_area();
        if area.is_empty() || area.iter().all(|&b| b == 0) {
            return (Vec::new(), None);
        }
        let mut out = Vec::new();
        let mut items = Vec::new();
        for item in TlvIter::new(area) {
            match item {
                Ok(t) => items.push(t),
                Err(_) => return (out, Some("malformed")),
            }
        }
        if items.iter().any(|t| t.flags.integrity_failed()) {
            return (out, Some("integrity"));
        }
        if let Some(h) = items.iter().find(|t| t.tlv_type == TlvType::HMAC) {
            if let Some(key) = &self.config.key {
                if !h.flags.unrecognized()
                    && !key.verify(
                        &[&r.sequence_number.to_be_bytes(), &area[..h.offset]],
                        h.value,
                    )
                {
                    return (out, Some("hmac"));
                }
            }
        }
        let rformat = r.error_estimate.format();
        for t in items {
            if t.tlv_type == TlvType::HMAC {
                continue;
            }
            let sent = self
                .templates
                .iter()
                .zip(&self.layout)
                .find(|(_, &(off, _))| off == t.offset)
                .map(|(tpl, _)| tpl.value.as_slice());
            let ctx = DecodeContext {
                meta,
                sent_value: sent,
                reflector_format: rformat,
            };
            let report = match self.registry.get(t.tlv_type) {
                Some(h) if t.flags.unrecognized() && h.decodes_refusals() => {
                    h.decode_in_packet(t.flags, t.value, &ctx, area)
                }
                _ if t.flags.unrecognized() => TlvReport::new(
                    t.tlv_type,
                    "unrecognized",
                    t.flags,
                    format!("type {} not processed by the reflector", t.tlv_type.0),
                ),
                Some(h) => h.decode_in_packet(t.flags, t.value, &ctx, area),
                None => TlvReport::new(
                    t.tlv_type,
                    "unknown",
                    t.flags,
                    format!("type {} ({} octets)", t.tlv_type.0, t.value.len()),
                ),
            };
            let malformed = t.flags.malformed();
            out.push(report);
            if malformed {
                return (out, Some("malformed"));
            }
        }
        (out, None)
    }

    /// Declare packets older than the timeout lost; returns their sequence
    /// numbers, oldest first.
    pub fn expire(&mut self, now: Instant) -> Vec<u32> {
        let mut lost = Vec::new();
        while let Some(&seq) = self.order.front() {
            let Some(f) = self.in_flight.get(&seq) else {
                self.order.pop_front();
                continue;
            };
            if now.saturating_duration_since(f.sent_at) < self.config.timeout {
                break;
            }
            if !f.answered {
                lost.push(seq);
                self.stats.lost += 1;
            }
            if f.train_seen < self.train_len {
                self.unanswered -= 1;
            }
            self.in_flight.remove(&seq);
            self.order.pop_front();
        }
        lost
    }

    /// Declare every unanswered packet lost now (end of run).
    pub fn finish(&mut self) -> Vec<u32> {
        let held = self.stats.forward_order.len();
        self.stats.release_forward_order(held);
        let mut lost = Vec::new();
        while let Some(seq) = self.order.pop_front() {
            if let Some(f) = self.in_flight.remove(&seq) {
                if !f.answered {
                    lost.push(seq);
                    self.stats.lost += 1;
                }
                if f.train_seen < self.train_len {
                    self.unanswered -= 1;
                }
            }
        }
        lost
    }

    /// When the oldest outstanding packet times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.order
            .front()
            .and_then(|s| self.in_flight.get(s))
            .map(|f| f.sent_at + self.config.timeout)
    }
}

/// Decode a wire timestamp for display (seconds.nanoseconds) or `None`.
pub fn timestamp_nanos(ts: Timestamp, est: ErrorEstimate) -> Option<u64> {
    ts.to_unix_nanos(est.format())
}
