//! The sans-I/O Session-Reflector (RFC 8762 §4.3, RFC 8972 §4).
//!
//! [`Reflector::process`] takes one request, its receive metadata, the
//! monotonic time and a clock, and writes the reply into a caller-owned
//! buffer. It never allocates on this path: sessions are created in a
//! pre-sized table and handlers are called through the registry's table.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use stamp_wire::tlv::{emit_header, HEADER_LEN};
use stamp_wire::Timestamp;
use stamp_wire::{
    AuthMode, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr, Tlv, TlvError, TlvFlags,
    TlvType, HMAC_COVERAGE, MIN_TWAMP_LIGHT_REQUEST,
};

use crate::clock::{Clock, TimestampMethod, TimestampSource, UnixNanos};
use crate::handler::{ClockFacts, ReflectContext, ReplyPlan, SessionCounters, TlvSlot, TlvVerdict};
use crate::hmac::{HmacKey, TAG_LEN};
use crate::provision::Provisioning;
use crate::ratelimit::{GlobalLimit, Limited, RateLimiter};
use crate::registry::Registry;
use crate::session::{SessionHandle, SessionKey, SessionTable};
use crate::transport::RecvMeta;

/// What the reflector does with the TLVs of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlvMode {
    /// Process them as RFC 8972 says and echo them.
    #[default]
    Echo,
    /// Strip them: the reply keeps the request's length with the TLV area
    /// zeroed.
    Ignore,
}

/// Reflector configuration.
#[derive(Debug, Clone)]
pub struct ReflectorConfig {
    /// Open or authenticated mode.
    pub mode: AuthMode,
    /// Keep per-session state (RFC 8762 §4.3.2) and number replies per session.
    pub stateful: bool,
    /// Idle time after which a stateful session is forgotten.
    pub session_timeout: Duration,
    /// Most stateful sessions kept at once.
    pub max_sessions: usize,
    /// TLV processing.
    pub tlv_mode: TlvMode,
    /// Verify the HMAC TLV in unauthenticated mode too.
    pub verify_tlv_hmac: bool,
    /// Key for the base HMAC and the HMAC TLV (for an SSID without its own
    /// key in `ssid_keys`).
    pub key: Option<HmacKey>,
    /// Per-SSID keys (`--hmac-key-dir`: `<ssid>.key`): a request carrying
    /// one of these SSIDs is verified, and its reply signed, with that key.
    pub ssid_keys: HashMap<u16, HmacKey>,
    /// TTL reported when the transport cannot read it (RFC 5357 §4.2.1).
    pub unknown_ttl: u8,
    /// Requests per second accepted from one source, an IPv4 address or an
    /// IPv6 /64 (`--max-pps`); `None` = unlimited. See [`crate::ratelimit`].
    pub max_pps: Option<u64>,
    /// Burst above `max_pps`, in requests (`--reflector-rate-burst`);
    /// `None` = one second's worth.
    pub rate_burst: Option<u64>,
    /// Requests per second accepted from all sources together; `None` =
    /// unlimited. Each [`Reflector`] made from this config gets its own
    /// bucket unless [`global_limit`](Self::global_limit) is set.
    pub global_max_pps: Option<u64>,
    /// A global cap shared with other reflectors (the workers of one
    /// process, `--global-max-pps`); takes precedence over `global_max_pps`.
    pub global_limit: Option<GlobalLimit>,
    /// Provisioned sessions (RFC 8972 §3, `--allow-session`): when any is
    /// given, requests that match none are dropped. Empty = answer all.
    pub provisioning: Provisioning,
}

impl ReflectorConfig {
    /// The key for requests with this SSID: its own, else the default.
    #[inline]
    pub fn key_for(&self, ssid: u16) -> Option<&HmacKey> {
        if self.ssid_keys.is_empty() {
            return self.key.as_ref();
        }
        self.ssid_keys.get(&ssid).or(self.key.as_ref())
    }
}

impl Default for ReflectorConfig {
    fn default() -> Self {
        ReflectorConfig {
            mode: AuthMode::Open,
            stateful: false,
            session_timeout: Duration::from_secs(300),
            max_sessions: 65_536,
            tlv_mode: TlvMode::Echo,
            verify_tlv_hmac: false,
            key: None,
            ssid_keys: HashMap::new(),
            unknown_ttl: 255,
            max_pps: None,
            rate_burst: None,
            global_max_pps: None,
            global_limit: None,
            provisioning: Provisioning::default(),
        }
    }
}

/// Why a request got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than a TWAMP-Light request (open) or the 112-octet base
    /// packet (authenticated).
    Truncated,
    /// The base-packet HMAC did not verify.
    AuthFailed,
    /// The session table had no room. Not produced since the table evicts
    /// its least recently used session instead (counted as
    /// [`ReflectorStats::sessions_evicted`]); kept so the label set of
    /// summaries and metrics stays stable.
    SessionLimit,
    /// A TLV handler asked for the packet to be discarded.
    TlvDiscard,
    /// The request asked for no reply (RFC 9503 Control Code).
    Suppressed,
    /// Over the per-source request rate (`--max-pps`).
    RateLimited,
    /// Over the reflector-wide request rate (`--global-max-pps`).
    GlobalRateLimited,
    /// Sessions are provisioned (`--allow-session`) and the request matches
    /// none of them (RFC 8972 §3: MUST discard).
    NotProvisioned,
}

impl DropReason {
    /// Every reason, for reports.
    pub const ALL: [DropReason; 8] = [
        DropReason::Truncated,
        DropReason::AuthFailed,
        DropReason::SessionLimit,
        DropReason::TlvDiscard,
        DropReason::Suppressed,
        DropReason::RateLimited,
        DropReason::GlobalRateLimited,
        DropReason::NotProvisioned,
    ];

    /// Label used in summaries and metrics.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::AuthFailed => "auth_failed",
            DropReason::SessionLimit => "session_limit",
            DropReason::TlvDiscard => "tlv_discard",
            DropReason::Suppressed => "suppressed",
            DropReason::RateLimited => "rate_limited",
            DropReason::GlobalRateLimited => "global_rate_limited",
            DropReason::NotProvisioned => "not_provisioned",
        }
    }
}

/// End of the SSID field in an unauthenticated request (octets 14..16).
const OPEN_SSID_END: usize = 16;

/// The result of processing one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Send `reply[..len]` as the plan says.
    Reply {
        /// Reply length.
        len: usize,
        /// How to send it.
        plan: ReplyPlan,
    },
    /// Send nothing.
    Drop(DropReason),
}

/// Reflector counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ReflectorStats {
    /// Datagrams handed to the reflector.
    pub received: u64,
    /// Replies produced.
    pub reflected: u64,
    /// Requests shorter than the minimum.
    pub dropped_truncated: u64,
    /// Base HMAC failures.
    pub dropped_auth_failed: u64,
    /// Requests refused because the session table was full.
    pub dropped_session_limit: u64,
    /// Requests a TLV handler discarded.
    pub dropped_tlv_discard: u64,
    /// Requests that asked for no reply.
    pub suppressed: u64,
    /// Requests refused by the per-source rate limit.
    pub dropped_rate_limited: u64,
    /// Requests refused by the global rate cap.
    pub dropped_global_rate_limited: u64,
    /// Requests matching no provisioned session.
    pub dropped_not_provisioned: u64,
    /// TLVs returned with U set.
    pub tlv_unrecognized: u64,
    /// TLVs returned with M set.
    pub tlv_malformed: u64,
    /// Requests whose HMAC TLV failed (I set on their TLVs).
    pub tlv_integrity_failed: u64,
    /// TLVs returned with C set.
    pub tlv_conformance: u64,
    /// Stateful sessions created.
    pub sessions_created: u64,
    /// Stateful sessions expired.
    pub sessions_expired: u64,
    /// Stateful sessions evicted (least recently used first) to make room
    /// for a new one in a full table (`--max-sessions`).
    pub sessions_evicted: u64,
}

impl ReflectorStats {
    /// Count of drops for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::Truncated => self.dropped_truncated,
            DropReason::AuthFailed => self.dropped_auth_failed,
            DropReason::SessionLimit => self.dropped_session_limit,
            DropReason::TlvDiscard => self.dropped_tlv_discard,
            DropReason::Suppressed => self.suppressed,
            DropReason::RateLimited => self.dropped_rate_limited,
            DropReason::GlobalRateLimited => self.dropped_global_rate_limited,
            DropReason::NotProvisioned => self.dropped_not_provisioned,
        }
    }
    fn count_drop(&mut self, reason: DropReason) {
        match reason {
            DropReason::Truncated => self.dropped_truncated += 1,
            DropReason::AuthFailed => self.dropped_auth_failed += 1,
            DropReason::SessionLimit => self.dropped_session_limit += 1,
            DropReason::TlvDiscard => self.dropped_tlv_discard += 1,
            DropReason::Suppressed => self.suppressed += 1,
            DropReason::RateLimited => self.dropped_rate_limited += 1,
            DropReason::GlobalRateLimited => self.dropped_global_rate_limited += 1,
            DropReason::NotProvisioned => self.dropped_not_provisioned += 1,
        }
    }
    /// Add another worker's counters.
    pub fn merge(&mut self, o: &ReflectorStats) {
        self.received += o.received;
        self.reflected += o.reflected;
        self.dropped_truncated += o.dropped_truncated;
        self.dropped_auth_failed += o.dropped_auth_failed;
        self.dropped_session_limit += o.dropped_session_limit;
        self.dropped_tlv_discard += o.dropped_tlv_discard;
        self.suppressed += o.suppressed;
        self.dropped_rate_limited += o.dropped_rate_limited;
        self.dropped_global_rate_limited += o.dropped_global_rate_limited;
        self.dropped_not_provisioned += o.dropped_not_provisioned;
        self.tlv_unrecognized += o.tlv_unrecognized;
        self.tlv_malformed += o.tlv_malformed;
        self.tlv_integrity_failed += o.tlv_integrity_failed;
        self.tlv_conformance += o.tlv_conformance;
        self.sessions_created += o.sessions_created;
        self.sessions_expired += o.sessions_expired;
        self.sessions_evicted += o.sessions_evicted;
    }
}

/// The Session-Reflector state machine.
#[derive(Debug)]
pub struct Reflector {
    config: ReflectorConfig,
    registry: Registry,
    sessions: SessionTable,
    stats: ReflectorStats,
    /// Reflector-wide counters for stateless mode.
    global: SessionCounters,
    /// Per-source and global request rate limits, when configured.
    limiter: Option<RateLimiter>,
    /// The stateful reply [`Reflector::process`] built last.
    last_sent: Option<SentReply>,
}

/// A reply of a stateful session, to attach its transmit timestamp to once
/// the transport has it ([`Reflector::set_reply_transmit_time`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentReply {
    session: SessionHandle,
    seq: u32,
    t3: Timestamp,
}

enum TlvOutcome {
    Done,
    Discard,
}

impl Reflector {
    /// A reflector with the given configuration and TLV handlers.
    pub fn new(config: ReflectorConfig, registry: Registry) -> Self {
        let sessions = SessionTable::new(config.max_sessions, config.session_timeout);
        let global = config
            .global_limit
            .clone()
            .or_else(|| config.global_max_pps.map(GlobalLimit::per_second));
        let limiter = RateLimiter::with_shared_global(config.max_pps, config.rate_burst, global);
        Reflector {
            limiter,
            config,
            registry,
            sessions,
            stats: ReflectorStats::default(),
            global: SessionCounters::default(),
            last_sent: None,
        }
    }

    /// Configuration in force.
    pub fn config(&self) -> &ReflectorConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> &ReflectorStats {
        &self.stats
    }

    /// Stateful sessions.
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    /// The rate limiter, when a limit is configured.
    pub fn rate_limiter(&self) -> Option<&RateLimiter> {
        self.limiter.as_ref()
    }

    /// Forget idle sessions. Call it now and then (once a second is plenty).
    pub fn expire_sessions(&mut self, now: Instant) -> usize {
        let n = self.sessions.expire(now);
        self.stats.sessions_expired += n as u64;
        n
    }

    /// Process one request and build its reply in `reply` (which must hold
    /// `max(request.len(), base length)` octets; [`stamp_wire::MAX_DATAGRAM`]
    /// always does).
    pub fn process(
        &mut self,
        request: &[u8],
        meta: &RecvMeta,
        now: Instant,
        clock: &dyn Clock,
        reply: &mut [u8],
    ) -> Outcome {
        self.process_with_header(request, None, meta, now, clock, reply)
    }

    /// [`Reflector::process`] for a datagram as a transport stored it:
    /// the request is `buf[..meta.len]`, and the received IP header, when
    /// the transport saw one, follows it ([`RecvMeta::ip_header`]); TLV
    /// handlers read it from [`ReflectContext::ip_header`].
    pub fn process_received(
        &mut self,
        buf: &[u8],
        meta: &RecvMeta,
        now: Instant,
        clock: &dyn Clock,
        reply: &mut [u8],
    ) -> Outcome {
        let request = &buf[..meta.len.min(buf.len())];
        self.process_with_header(request, meta.ip_header(buf), meta, now, clock, reply)
    }

    fn process_with_header(
        &mut self,
        request: &[u8],
        ip_header: Option<&[u8]>,
        meta: &RecvMeta,
        now: Instant,
        clock: &dyn Clock,
        reply: &mut [u8],
    ) -> Outcome {
        self.stats.received += 1;
        self.last_sent = None;
        match self.process_inner(request, ip_header, meta, now, clock, reply) {
            Ok(out) => out,
            Err(reason) => {
                self.stats.count_drop(reason);
                Outcome::Drop(reason)
            }
        }
    }

    fn process_inner(
        &mut self,
        request: &[u8],
        ip_header: Option<&[u8]>,
        meta: &RecvMeta,
        now: Instant,
        clock: &dyn Clock,
        reply: &mut [u8],
    ) -> Result<Outcome, DropReason> {
        let mode = self.config.mode;
        let base = mode.base_len();
        let min = match mode {
            AuthMode::Open => MIN_TWAMP_LIGHT_REQUEST,
            AuthMode::Authenticated => base,
        };
        if request.len() < min {
            return Err(DropReason::Truncated);
        }
        let reply_len = request.len().max(base);
        if reply.len() < reply_len {
            return Err(DropReason::Truncated);
        }

        // RFC 8972 §3: with sessions provisioned, a request that belongs to
        // none is discarded, before any other work. The SSID sits at the
        // same place in a TWAMP-Light request; one too short to hold it
        // has none (it is zero-extended below).
        if !self.config.provisioning.is_empty() {
            let ssid = if mode == AuthMode::Open && request.len() < OPEN_SSID_END {
                0
            } else {
                SenderPacket::new_unchecked(request, mode).ssid()
            };
            if !self.config.provisioning.allows(ssid, meta.src) {
                return Err(DropReason::NotProvisioned);
            }
        }

        // Rate limits before any HMAC work: a flood costs one table lookup
        // per packet and creates no session state.
        if let Some(limiter) = &mut self.limiter {
            limiter.check(meta.src.ip(), now).map_err(|l| match l {
                Limited::PerSource => DropReason::RateLimited,
                Limited::Global => DropReason::GlobalRateLimited,
            })?;
        }

        // RFC 8762 §4.4: verify the HMAC before anything else; no state is
        // touched for a packet that fails. The SSID (inside the HMAC's
        // coverage) picks the key.
        if mode == AuthMode::Authenticated {
            // At least the base packet long: checked above.
            let ssid = SenderPacket::new_unchecked(request, mode).ssid();
            let key = self.config.key_for(ssid).ok_or(DropReason::AuthFailed)?;
            if !key.verify(
                &[&request[..HMAC_COVERAGE]],
                &request[HMAC_COVERAGE..HMAC_COVERAGE + TAG_LEN],
            ) {
                return Err(DropReason::AuthFailed);
            }
        }

        // Symmetric size (RFC 8762 §4.3): copy the request; a TWAMP-Light
        // request shorter than the base packet is padded with zeros.
        let (reply, spare) = reply.split_at_mut(reply_len);
        reply[..request.len()].copy_from_slice(request);
        reply[request.len()..].fill(0);
        let req = SenderRepr::parse(&SenderPacket::new_unchecked(&*reply, mode));
        let ssid = req.ssid;

        // Receive time: kernel timestamp where the transport had one.
        let (rx_time, rx_method) = match meta.rx_time {
            Some((t, src)) if src != TimestampSource::UserSpace => {
                (clock.from_realtime(t), src.method())
            }
            Some((t, _)) => (clock.from_realtime(t), TimestampMethod::SW_LOCAL),
            None => (clock.now(), TimestampMethod::SW_LOCAL),
        };

        let mut session = None;
        let counters = if self.config.stateful {
            let key = SessionKey {
                peer: meta.src,
                local: meta.dst,
                local_port: meta.dst_port,
                ssid: req.ssid,
            };
            let (h, created) = self
                .sessions
                .get_or_create_handle(key, now)
                .ok_or(DropReason::SessionLimit)?;
            if created {
                self.stats.sessions_created += 1;
                self.stats.sessions_evicted = self.sessions.evictions();
            }
            session = Some(h);
            let s = self.sessions.state_mut(h);
            s.rx_packets += 1;
            s.last_seen = now;
            SessionCounters {
                rx_packets: s.rx_packets,
                tx_packets: s.tx_packets,
                previous_reply: s.last_reply,
                previous_reply_method: s.last_reply_method,
                stateful: true,
            }
        } else {
            self.global.rx_packets += 1;
            SessionCounters {
                stateful: false,
                previous_reply: None,
                ..self.global
            }
        };
        let reply_seq = if self.config.stateful {
            counters.tx_packets as u32
        } else {
            req.sequence_number
        };

        let mut plan = ReplyPlan::for_request(meta);
        let facts = ClockFacts {
            format: clock.format(),
            error_estimate: clock.error_estimate(),
            sync_source: clock.sync_source(),
            rx_method,
            tx_method: TimestampMethod::SW_LOCAL,
        };
        let mut ctx = ReflectContext {
            meta,
            mode,
            request_seq: req.sequence_number,
            reply_seq,
            ssid: req.ssid,
            counters,
            clock: facts,
            receive_time: rx_time,
            plan: &mut plan,
            ip_header,
        };
        let seq_bytes = reply_seq.to_be_bytes();
        let req_seq_bytes = req.sequence_number.to_be_bytes();
        let (head, area) = reply.split_at_mut(base);
        if let TlvOutcome::Discard =
            self.process_tlvs(area, ssid, &req_seq_bytes, &seq_bytes, &mut ctx)
        {
            return Err(DropReason::TlvDiscard);
        }
        if plan.suppress {
            return Err(DropReason::Suppressed);
        }
        // The segment list's offset is the TLV area's; make it the reply's.
        if let Some(r) = &mut plan.srv6_route {
            r.offset = r.offset.saturating_add(base as u16);
        }

        let mut out = ReflectorPacket::new_unchecked(head, mode);
        let mut repr = ReflectorRepr {
            sequence_number: reply_seq,
            timestamp: Default::default(),
            error_estimate: facts.error_estimate,
            ssid: req.ssid,
            receive_timestamp: clock.encode(rx_time),
            sender_sequence_number: req.sequence_number,
            sender_timestamp: req.timestamp,
            sender_error_estimate: req.error_estimate,
            sender_ttl: meta.ttl.unwrap_or(self.config.unknown_ttl),
        };
        // T3 as late as possible: after all TLV work, before the HMAC
        // (RFC 8762 §4.3.1; the HMAC covers it, WIRE.md §8.2).
        let t3 = clock.encode(clock.now());
        repr.timestamp = t3;
        repr.emit(&mut out);
        if mode == AuthMode::Authenticated {
            if let Some(key) = self.config.key_for(ssid) {
                let tag = key.tag(&[&out.as_bytes()[..HMAC_COVERAGE]]);
                if let Some(h) = out.hmac_mut() {
                    h.copy_from_slice(&tag);
                }
            }
        }

        if let Some(h) = session {
            // The handle found at the start of this request: nothing
            // expires or removes sessions in between.
            let s = self.sessions.state_mut(h);
            s.tx_packets += 1;
            s.next_seq = s.tx_packets as u32;
            s.last_reply = Some((reply_seq, t3));
            s.last_reply_method = TimestampMethod::SW_LOCAL;
            s.last_request_seq = Some(req.sequence_number);
            self.last_sent = Some(SentReply {
                session: h,
                seq: reply_seq,
                t3,
            });
        } else {
            self.global.tx_packets += 1;
        }
        self.stats.reflected += 1;
        // A longer reply asked for by a handler (asymmetrical packets) grows
        // by an Extra Padding TLV at the end: after the HMAC TLV, where RFC
        // 8972 §4.8 allows it, and outside the base HMAC's octets 0..96.
        let mut len = reply_len;
        if plan.reply_len > reply_len {
            let grow = plan.reply_len - reply_len;
            if grow >= HEADER_LEN && grow <= spare.len() && grow - HEADER_LEN <= u16::MAX as usize {
                emit_header(
                    spare,
                    TlvFlags::NONE,
                    TlvType::EXTRA_PADDING,
                    (grow - HEADER_LEN) as u16,
                );
                spare[HEADER_LEN..grow].fill(0);
                len = plan.reply_len;
            }
        }
        plan.reply_len = len;
        Ok(Outcome::Reply { len, plan })
    }

    /// The stateful reply the last [`Reflector::process`] built, if any: the
    /// driver keeps it with the datagram and hands it back with the
    /// datagram's transmit timestamp.
    pub fn sent_reply(&self) -> Option<SentReply> {
        self.last_sent
    }

    /// The kernel (or NIC) timestamped reply `r` when it left (`realtime`,
    /// CLOCK_REALTIME): the session's next Follow-Up Telemetry TLV
    /// (RFC 8972 §4.7) reports this instead of the T3 written into the
    /// reply, which had to be read before the send. Call it before the next
    /// [`Reflector::expire_sessions`] (which may move sessions); a session
    /// that has replied again since, or is gone, is left alone. Returns
    /// whether the session took it.
    pub fn set_reply_transmit_time(
        &mut self,
        r: SentReply,
        realtime: UnixNanos,
        source: TimestampSource,
        clock: &dyn Clock,
    ) -> bool {
        if r.session.index() >= self.sessions.len() {
            return false;
        }
        let s = self.sessions.state_mut(r.session);
        if s.last_reply != Some((r.seq, r.t3)) {
            return false;
        }
        s.last_reply = Some((r.seq, clock.encode(clock.from_realtime(realtime))));
        s.last_reply_method = source.method();
        true
    }

    /// Give another copy of a reply (a reflected train) its own transmit
    /// time: T3 = now, and the base HMAC recomputed in authenticated mode.
    /// The HMAC TLV does not cover T3 and stays valid.
    pub fn restamp(&self, reply: &mut [u8], clock: &dyn Clock) {
        let mode = self.config.mode;
        let Ok(mut p) = ReflectorPacket::new_checked(reply, mode) else {
            return;
        };
        p.set_timestamp(clock.encode(clock.now()));
        if mode == AuthMode::Authenticated {
            if let Some(key) = self.config.key_for(p.ssid()) {
                let tag = key.tag(&[&p.as_bytes()[..HMAC_COVERAGE]]);
                if let Some(h) = p.hmac_mut() {
                    h.copy_from_slice(&tag);
                }
            }
        }
    }

    /// RFC 8972 §4 processing of the reply's TLV area (a copy of the
    /// request's). `req_seq` feeds the HMAC TLV check, `reply_seq` its
    /// recomputation.
    fn process_tlvs(
        &mut self,
        area: &mut [u8],
        ssid: u16,
        req_seq: &[u8; 4],
        reply_seq: &[u8; 4],
        ctx: &mut ReflectContext<'_>,
    ) -> TlvOutcome {
        if area.is_empty() {
            return TlvOutcome::Done;
        }
        if self.config.tlv_mode == TlvMode::Ignore {
            area.fill(0);
            return TlvOutcome::Done;
        }
        // TWAMP-Light zero padding (RFC 8762 §4.6) is copied untouched, not
        // parsed as a run of reserved type-0 TLVs (WIRE.md §3.6).
        if is_zero(area) {
            return TlvOutcome::Done;
        }

        let hmac_at = self.check_tlv_hmac(area, ssid, req_seq);
        let hmac_at = match hmac_at {
            HmacCheck::Failed => {
                // RFC 8972 §4.8: stop, copy every TLV, I set on each.
                self.stats.tlv_integrity_failed += 1;
                let mut off = 0;
                while let Ok(t) = Tlv::new_checked(&area[off..]) {
                    let total = t.total_len();
                    area[off] = TlvFlags::I.0;
                    off += total;
                }
                return TlvOutcome::Done;
            }
            HmacCheck::Absent => None,
            HmacCheck::Verified(at) | HmacCheck::Unverified(at) => Some(at),
        };

        let can_sign = self.config.key_for(ssid).is_some();
        let mut off = 0;
        while off < area.len() {
            if is_zero(&area[off..]) {
                break; // trailing zero padding
            }
            let (tlv_type, len) = match Tlv::new_checked(&area[off..]) {
                Ok(t) => (t.tlv_type(), t.length()),
                Err(TlvError::TruncatedHeader) => break, // no header to flag; copied as is
                Err(TlvError::ValueOverrun) => {
                    area[off] = TlvFlags::M.0;
                    self.stats.tlv_malformed += 1;
                    break;
                }
            };
            let total = HEADER_LEN + len;
            if tlv_type == TlvType::HMAC {
                area[off] = if can_sign && len == TAG_LEN {
                    0
                } else {
                    TlvFlags::U.0
                };
                if area[off] != 0 {
                    self.stats.tlv_unrecognized += 1;
                }
                off += total;
                continue;
            }
            let verdict = match self.registry.get(tlv_type) {
                Some(h) => {
                    let mut slot = TlvSlot::new(area, off, len);
                    h.reflect(&mut slot, ctx)
                }
                None => TlvVerdict::Unrecognized,
            };
            match verdict {
                TlvVerdict::Processed => area[off] = 0,
                TlvVerdict::Conformance => {
                    area[off] = TlvFlags::C.0;
                    self.stats.tlv_conformance += 1;
                }
                TlvVerdict::Unrecognized => {
                    area[off] = TlvFlags::U.0;
                    self.stats.tlv_unrecognized += 1;
                }
                TlvVerdict::Malformed => {
                    area[off] = TlvFlags::M.0;
                    self.stats.tlv_malformed += 1;
                    break;
                }
                TlvVerdict::Discard => return TlvOutcome::Discard,
            }
            off += total;
        }

        // Sign the reply's TLVs: the reply's own Sequence Number and every
        // TLV before the HMAC TLV, as they leave (WIRE.md §7.10).
        if let (Some(at), Some(key)) = (hmac_at, self.config.key_for(ssid)) {
            if area.len() >= at + HEADER_LEN + TAG_LEN && area[at] == 0 {
                let tag = key.tag(&[reply_seq, &area[..at]]);
                area[at + HEADER_LEN..at + HEADER_LEN + TAG_LEN].copy_from_slice(&tag);
            }
        }
        TlvOutcome::Done
    }

    fn check_tlv_hmac(&self, area: &[u8], ssid: u16, req_seq: &[u8; 4]) -> HmacCheck {
        let verify = self.config.mode == AuthMode::Authenticated || self.config.verify_tlv_hmac;
        let mut hmac_at = None;
        let mut misplaced = false;
        let mut others = 0usize;
        let mut padding_only = true;
        let mut off = 0;
        while off < area.len() && !is_zero(&area[off..]) {
            let Ok(t) = Tlv::new_checked(&area[off..]) else {
                break;
            };
            let tt = t.tlv_type();
            if tt == TlvType::HMAC {
                if hmac_at.is_some() || t.length() != TAG_LEN {
                    misplaced = true;
                }
                hmac_at.get_or_insert(off);
            } else {
                others += 1;
                if tt != TlvType::EXTRA_PADDING {
                    padding_only = false;
                    if hmac_at.is_some() {
                        misplaced = true; // only Extra Padding may follow the HMAC TLV
                    }
                }
            }
            off += t.total_len();
        }
        if !verify {
            return match hmac_at {
                Some(at) => HmacCheck::Unverified(at),
                None => HmacCheck::Absent,
            };
        }
        let Some(key) = self.config.key_for(ssid) else {
            return HmacCheck::Failed;
        };
        match hmac_at {
            // Authenticated mode: the HMAC TLV is mandatory unless the only
            // TLV is one Extra Padding TLV (RFC 8972 §4.8).
            None if self.config.mode == AuthMode::Authenticated
                && !(padding_only && others <= 1) =>
            {
                HmacCheck::Failed
            }
            None if self.config.mode == AuthMode::Open
                && self.config.verify_tlv_hmac
                && others > 0 =>
            {
                HmacCheck::Failed
            }
            None => HmacCheck::Absent,
            Some(_) if misplaced => HmacCheck::Failed,
            Some(at) => {
                let tag = &area[at + HEADER_LEN..at + HEADER_LEN + TAG_LEN];
                if key.verify(&[req_seq, &area[..at]], tag) {
                    HmacCheck::Verified(at)
                } else {
                    HmacCheck::Failed
                }
            }
        }
    }
}

enum HmacCheck {
    Absent,
    Verified(usize),
    Unverified(usize),
    Failed,
}

fn is_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// Reply TLV area offset for `mode`, for callers that inspect replies.
pub fn tlv_offset(mode: AuthMode) -> usize {
    mode.base_len()
}
