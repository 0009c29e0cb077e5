//! Prometheus metrics (feature `metrics`, `--metrics --metrics-addr`).
//!
//! The drivers own plain atomics ([`WorkerMetrics`] per reflector worker,
//! [`TargetMetrics`] per sender target) and update them with relaxed stores
//! and adds: no lock, no allocation, no contention between workers (each
//! has its own cache-line-aligned slot; a scrape sums them). A scrape renders
//! the text exposition format 0.0.4 on demand.
//!
//! Why hand-written rather than `prometheus-client` (or `prometheus`): the
//! format is a few lines of text per family, the endpoint answers two paths,
//! and neither crate ships an HTTP server, so they would add a registry and
//! encoder layer on top of the atomics we need anyway, plus hyper/axum for
//! the server — a heavy dependency tree for ~200 lines. The server here is a
//! bounded HTTP/1.1 responder on the tokio runtime the binary already runs:
//! one task per connection (at most [`MAX_CONNECTIONS`] at once), at most
//! [`MAX_REQUEST`] octets of request head read within [`REQUEST_TIMEOUT`],
//! one response, then the connection is closed.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stamp_core::reflector::{DropReason, ReflectorStats};
use stamp_core::sender::{PacketRecord, SenderStats};
use stamp_core::session::SessionTable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head read (request line and headers).
const MAX_REQUEST: usize = 8 * 1024;
/// A client has this long to send its request and read the response.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; further ones are closed at once.
const MAX_CONNECTIONS: usize = 64;

/// Upper bounds (ns) of the reflector's processing-time buckets: 1 µs .. 10 ms.
const PROCESSING_BUCKETS_NS: &[u64] = &[
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    10_000_000,
];

/// Upper bounds (ns) of the sender's delay buckets: 50 µs .. 1 s.
const DELAY_BUCKETS_NS: &[u64] = &[
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
];

/// A histogram with fixed bucket bounds, in atomics. Buckets are stored
/// non-cumulative (one add per observation) and summed when rendered; the
/// count is the sum of the buckets, so `_count` always equals the `+Inf`
/// bucket even while observations race with a scrape.
pub struct Histogram {
    bounds_ns: &'static [u64],
    /// One per bound, plus `+Inf`.
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Histogram {
    fn new(bounds_ns: &'static [u64]) -> Self {
        Histogram {
            bounds_ns,
            buckets: (0..=bounds_ns.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Record one value in nanoseconds (negative values count as 0).
    pub fn observe_ns(&self, ns: i64) {
        let ns = u64::try_from(ns).unwrap_or(0);
        let i = self
            .bounds_ns
            .iter()
            .position(|b| ns <= *b)
            .unwrap_or(self.bounds_ns.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    /// Cumulative bucket counts and the sum, added into `acc` (for summing
    /// several workers' histograms).
    fn accumulate(&self, acc: &mut [u64], sum: &mut u64) {
        let mut running = 0;
        for (a, b) in acc.iter_mut().zip(self.buckets.iter()) {
            running += b.load(Relaxed);
            *a += running;
        }
        *sum += self.sum_ns.load(Relaxed);
    }
}

/// Render one histogram series (`labels` is `k="v",` pairs or empty).
fn render_histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    bounds_ns: &[u64],
    cumulative: &[u64],
    sum_ns: u64,
) {
    for (i, c) in cumulative.iter().enumerate() {
        let le = match bounds_ns.get(i) {
            Some(b) => seconds(*b),
            None => "+Inf".to_string(),
        };
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {c}");
    }
    let labels = labels.trim_end_matches(',');
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", seconds(sum_ns));
    let _ = writeln!(
        out,
        "{name}_count{braces} {}",
        cumulative.last().copied().unwrap_or(0)
    );
}

/// Nanoseconds as a decimal number of seconds.
fn seconds(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    if frac == 0 {
        return s.to_string();
    }
    let f = format!("{frac:09}");
    format!("{s}.{}", f.trim_end_matches('0'))
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped for the exposition format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

// ---------------------------------------------------------------------------
// Reflector

const REASONS: usize = DropReason::ALL.len();

/// One reflector worker's counters: it publishes its [`ReflectorStats`]
/// after each batch (plain stores: one writer per slot).
#[repr(align(128))]
pub struct WorkerMetrics {
    received: AtomicU64,
    reflected: AtomicU64,
    dropped: [AtomicU64; REASONS],
    tlv_unrecognized: AtomicU64,
    tlv_malformed: AtomicU64,
    tlv_integrity: AtomicU64,
    tlv_conformance: AtomicU64,
    sessions_created: AtomicU64,
    sessions_expired: AtomicU64,
    sessions_evicted: AtomicU64,
    sessions_active: AtomicU64,
    send_errors: AtomicU64,
    gso_segmented: AtomicU64,
    /// Per-request processing time (`Reflector::process`).
    pub processing: Histogram,
    /// Session rows copied out on request (the SNMP session table).
    sessions: SessionBoard,
}

/// Most session rows one worker copies out per request.
pub const MAX_SESSION_ROWS: usize = 10_000;

/// One stateful session as the SNMP session table shows it.
#[derive(Debug, Clone, Copy)]
pub struct SessionRow {
    /// Session-Sender address and port.
    pub peer: SocketAddr,
    /// SSID.
    pub ssid: u16,
    /// Requests received.
    pub rx: u64,
    /// Replies sent.
    pub tx: u64,
    /// Last request.
    pub last_seen: Instant,
}

/// A worker's session rows: a reader raises `requested`; the worker copies
/// at most [`MAX_SESSION_ROWS`] rows after its next batch or expiry tick,
/// taking the lock only with `try_lock` (a reader holding it makes the
/// worker try again next time, never wait), and bumps `generation`.
#[derive(Default)]
struct SessionBoard {
    requested: AtomicBool,
    generation: AtomicU64,
    rows: Mutex<Vec<SessionRow>>,
}

impl WorkerMetrics {
    fn new() -> Self {
        WorkerMetrics {
            received: AtomicU64::new(0),
            reflected: AtomicU64::new(0),
            dropped: std::array::from_fn(|_| AtomicU64::new(0)),
            tlv_unrecognized: AtomicU64::new(0),
            tlv_malformed: AtomicU64::new(0),
            tlv_integrity: AtomicU64::new(0),
            tlv_conformance: AtomicU64::new(0),
            sessions_created: AtomicU64::new(0),
            sessions_expired: AtomicU64::new(0),
            sessions_evicted: AtomicU64::new(0),
            sessions_active: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            gso_segmented: AtomicU64::new(0),
            processing: Histogram::new(PROCESSING_BUCKETS_NS),
            sessions: SessionBoard::default(),
        }
    }

    /// Whether a reader asked for this worker's session rows (one relaxed
    /// load).
    #[inline]
    pub fn sessions_wanted(&self) -> bool {
        self.sessions.requested.load(Relaxed)
    }

    /// Copy the session rows out, if the board is free; the buffer is
    /// reused, so this allocates only while it grows.
    pub fn publish_sessions(&self, table: &SessionTable) {
        let Ok(mut rows) = self.sessions.rows.try_lock() else {
            return;
        };
        rows.clear();
        rows.extend(
            table
                .iter()
                .take(MAX_SESSION_ROWS)
                .map(|(k, st)| SessionRow {
                    peer: k.peer,
                    ssid: k.ssid,
                    rx: st.rx_packets,
                    tx: st.tx_packets,
                    last_seen: st.last_seen,
                }),
        );
        drop(rows);
        self.sessions.generation.fetch_add(1, Relaxed);
        self.sessions.requested.store(false, Relaxed);
    }

    /// Copy the worker's counters (cheap: a few relaxed stores).
    pub fn publish(
        &self,
        st: &ReflectorStats,
        active: usize,
        send_errors: u64,
        gso_segmented: u64,
    ) {
        self.received.store(st.received, Relaxed);
        self.reflected.store(st.reflected, Relaxed);
        for (slot, reason) in self.dropped.iter().zip(DropReason::ALL) {
            slot.store(st.dropped(reason), Relaxed);
        }
        self.tlv_unrecognized.store(st.tlv_unrecognized, Relaxed);
        self.tlv_malformed.store(st.tlv_malformed, Relaxed);
        self.tlv_integrity.store(st.tlv_integrity_failed, Relaxed);
        self.tlv_conformance.store(st.tlv_conformance, Relaxed);
        self.sessions_created.store(st.sessions_created, Relaxed);
        self.sessions_expired.store(st.sessions_expired, Relaxed);
        self.sessions_evicted.store(st.sessions_evicted, Relaxed);
        self.sessions_active.store(active as u64, Relaxed);
        self.send_errors.store(send_errors, Relaxed);
        self.gso_segmented.store(gso_segmented, Relaxed);
    }
}

/// Every worker's slot.
pub struct ReflectorMetrics {
    workers: Box<[WorkerMetrics]>,
}

impl ReflectorMetrics {
    /// Slots for `workers` workers.
    pub fn new(workers: usize) -> Arc<Self> {
        Arc::new(ReflectorMetrics {
            workers: (0..workers).map(|_| WorkerMetrics::new()).collect(),
        })
    }

    /// Worker `id`'s slot.
    pub fn worker(&self, id: usize) -> &WorkerMetrics {
        &self.workers[id]
    }

    fn sum(&self, f: impl Fn(&WorkerMetrics) -> &AtomicU64) -> u64 {
        self.workers.iter().map(|w| f(w).load(Relaxed)).sum()
    }

    /// The counters summed over the workers (what a scrape shows).
    pub fn totals(&self) -> ReflectorTotals {
        ReflectorTotals {
            received: self.sum(|w| &w.received),
            reflected: self.sum(|w| &w.reflected),
            dropped: std::array::from_fn(|i| self.sum(|w| &w.dropped[i])),
            tlv_unrecognized: self.sum(|w| &w.tlv_unrecognized),
            tlv_malformed: self.sum(|w| &w.tlv_malformed),
            tlv_integrity: self.sum(|w| &w.tlv_integrity),
            tlv_conformance: self.sum(|w| &w.tlv_conformance),
            sessions_created: self.sum(|w| &w.sessions_created),
            sessions_expired: self.sum(|w| &w.sessions_expired),
            sessions_evicted: self.sum(|w| &w.sessions_evicted),
            sessions_active: self.sum(|w| &w.sessions_active),
            send_errors: self.sum(|w| &w.send_errors),
        }
    }

    /// Every worker's session rows: ask each worker, wait up to `wait` for
    /// the ones holding sessions to answer (a worker answers after its next
    /// batch or expiry tick, every 100 ms while it holds sessions), then
    /// take what each published last. A worker with no session adds none.
    pub fn session_rows(&self, wait: Duration) -> Vec<SessionRow> {
        let before: Vec<u64> = self
            .workers
            .iter()
            .map(|w| {
                let g = w.sessions.generation.load(Relaxed);
                w.sessions.requested.store(true, Relaxed);
                g
            })
            .collect();
        let deadline = Instant::now() + wait;
        loop {
            let pending = self.workers.iter().zip(&before).any(|(w, g)| {
                w.sessions_active.load(Relaxed) > 0 && w.sessions.generation.load(Relaxed) == *g
            });
            if !pending || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut out = Vec::new();
        for w in self.workers.iter() {
            if w.sessions_active.load(Relaxed) == 0 {
                continue;
            }
            let rows = w.sessions.rows.lock().unwrap_or_else(|e| e.into_inner());
            out.extend_from_slice(&rows);
        }
        out
    }
}

/// Reflector counters summed over the workers.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReflectorTotals {
    pub received: u64,
    pub reflected: u64,
    /// In the order of [`DropReason::ALL`].
    pub dropped: [u64; REASONS],
    pub tlv_unrecognized: u64,
    pub tlv_malformed: u64,
    pub tlv_integrity: u64,
    pub tlv_conformance: u64,
    pub sessions_created: u64,
    pub sessions_expired: u64,
    pub sessions_evicted: u64,
    pub sessions_active: u64,
    pub send_errors: u64,
}

impl ReflectorTotals {
    /// Drops for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.dropped[i])
    }

    /// Base-packet HMAC failures plus HMAC TLV failures.
    pub fn hmac_failures(&self) -> u64 {
        self.dropped(DropReason::AuthFailed) + self.tlv_integrity
    }
}

impl Render for ReflectorMetrics {
    fn render(&self, out: &mut String) {
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            header(out, name, "counter", help);
            let _ = writeln!(out, "{name} {v}");
        };
        counter(
            out,
            "stamp_reflector_packets_received_total",
            "Datagrams received by the Session-Reflector.",
            self.sum(|w| &w.received),
        );
        counter(
            out,
            "stamp_reflector_packets_reflected_total",
            "Replies produced by the Session-Reflector.",
            self.sum(|w| &w.reflected),
        );
        let name = "stamp_reflector_packets_dropped_total";
        header(
            out,
            name,
            "counter",
            "Requests that got no reply, by reason (suppressed: the request asked for none).",
        );
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            let v = self.sum(|w| &w.dropped[i]);
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {v}", reason.label());
        }
        let auth = DropReason::ALL
            .iter()
            .position(|r| *r == DropReason::AuthFailed)
            .map_or(0, |i| self.sum(|w| &w.dropped[i]));
        counter(
            out,
            "stamp_reflector_hmac_failures_total",
            "Requests whose HMAC did not verify (base-packet HMAC, dropped, plus HMAC TLV, reflected with I set).",
            auth + self.sum(|w| &w.tlv_integrity),
        );
        let name = "stamp_reflector_tlv_flags_total";
        header(
            out,
            name,
            "counter",
            "Reflected TLVs flagged U (unrecognized), M (malformed), C (conformance); I counts requests whose HMAC TLV failed.",
        );
        for (flag, v) in [
            ("U", self.sum(|w| &w.tlv_unrecognized)),
            ("M", self.sum(|w| &w.tlv_malformed)),
            ("I", self.sum(|w| &w.tlv_integrity)),
            ("C", self.sum(|w| &w.tlv_conformance)),
        ] {
            let _ = writeln!(out, "{name}{{flag=\"{flag}\"}} {v}");
        }
        let name = "stamp_reflector_sessions_active";
        header(out, name, "gauge", "Stateful sessions currently held.");
        let _ = writeln!(out, "{name} {}", self.sum(|w| &w.sessions_active));
        counter(
            out,
            "stamp_reflector_sessions_created_total",
            "Stateful sessions created.",
            self.sum(|w| &w.sessions_created),
        );
        counter(
            out,
            "stamp_reflector_sessions_expired_total",
            "Stateful sessions expired after the idle timeout.",
            self.sum(|w| &w.sessions_expired),
        );
        counter(
            out,
            "stamp_reflector_sessions_evicted_total",
            "Stateful sessions evicted, least recently used first, to make room in a full table (--max-sessions).",
            self.sum(|w| &w.sessions_evicted),
        );
        counter(
            out,
            "stamp_reflector_send_errors_total",
            "Replies the socket refused to send.",
            self.sum(|w| &w.send_errors),
        );
        counter(
            out,
            "stamp_reflector_gso_segmented_total",
            "Replies sent as segments of UDP segmentation offload trains (--gso).",
            self.sum(|w| &w.gso_segmented),
        );
        let name = "stamp_reflector_processing_seconds";
        header(
            out,
            name,
            "histogram",
            "Time to process one request (parse, verify, build the reply), per request.",
        );
        let mut acc = vec![0u64; PROCESSING_BUCKETS_NS.len() + 1];
        let mut sum = 0;
        for w in self.workers.iter() {
            w.processing.accumulate(&mut acc, &mut sum);
        }
        render_histogram(out, name, "", PROCESSING_BUCKETS_NS, &acc, sum);
    }
}

// ---------------------------------------------------------------------------
// Sender

/// One sender target's counters and histograms.
pub struct TargetMetrics {
    sent: AtomicU64,
    received: AtomicU64,
    lost: AtomicU64,
    duplicates: AtomicU64,
    rtt: Histogram,
    /// Smallest and largest RTT observed (ns); min is `u64::MAX` until then.
    rtt_min_ns: AtomicU64,
    rtt_max_ns: AtomicU64,
    forward: Histogram,
    backward: Histogram,
}

impl TargetMetrics {
    fn new() -> Self {
        TargetMetrics {
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            rtt: Histogram::new(DELAY_BUCKETS_NS),
            rtt_min_ns: AtomicU64::new(u64::MAX),
            rtt_max_ns: AtomicU64::new(0),
            forward: Histogram::new(DELAY_BUCKETS_NS),
            backward: Histogram::new(DELAY_BUCKETS_NS),
        }
    }

    /// Copy the session's counters (call with the session locked, so the
    /// values never go backwards).
    pub fn publish(&self, st: &SenderStats) {
        self.sent.store(st.sent, Relaxed);
        self.received.store(st.received, Relaxed);
        self.lost.store(st.lost, Relaxed);
        self.duplicates.store(st.duplicates, Relaxed);
    }

    /// Only the sent counter (the pacing thread, session locked).
    pub fn publish_sent(&self, sent: u64) {
        self.sent.store(sent, Relaxed);
    }

    /// Record the delays of a first reply.
    pub fn observe(&self, rec: &PacketRecord) {
        self.rtt.observe_ns(rec.rtt_ns);
        let rtt = u64::try_from(rec.rtt_ns).unwrap_or(0);
        self.rtt_min_ns.fetch_min(rtt, Relaxed);
        self.rtt_max_ns.fetch_max(rtt, Relaxed);
        if let Some(f) = rec.forward_ns {
            self.forward.observe_ns(f);
        }
        if let Some(b) = rec.backward_ns {
            self.backward.observe_ns(b);
        }
    }
}

impl TargetMetrics {
    /// The counters and RTT figures (what a scrape shows).
    pub fn totals(&self) -> TargetTotals {
        let count = self.rtt.count();
        let sum = self.rtt.sum_ns.load(Relaxed);
        let min = self.rtt_min_ns.load(Relaxed);
        TargetTotals {
            sent: self.sent.load(Relaxed),
            received: self.received.load(Relaxed),
            lost: self.lost.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            rtt_min_ns: if min == u64::MAX { 0 } else { min },
            rtt_avg_ns: sum.checked_div(count).unwrap_or(0),
            rtt_max_ns: self.rtt_max_ns.load(Relaxed),
        }
    }
}

/// One target's counters and RTT figures (0 while nothing was answered).
#[derive(Debug, Clone, Copy, Default)]
pub struct TargetTotals {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub rtt_min_ns: u64,
    pub rtt_avg_ns: u64,
    pub rtt_max_ns: u64,
}

/// Which counter of a target a family shows.
type Field = fn(&TargetMetrics) -> &AtomicU64;

/// Every target's metrics, labelled `target="ADDR:PORT"`.
pub struct SenderMetrics {
    targets: Vec<(String, Arc<TargetMetrics>)>,
}

impl SenderMetrics {
    /// Metrics for these targets, in order.
    pub fn new(targets: &[SocketAddr]) -> Arc<Self> {
        Arc::new(SenderMetrics {
            targets: targets
                .iter()
                .map(|t| (escape(&t.to_string()), Arc::new(TargetMetrics::new())))
                .collect(),
        })
    }

    /// Target `i`'s metrics.
    pub fn target(&self, i: usize) -> Arc<TargetMetrics> {
        self.targets[i].1.clone()
    }

    /// Every target's figures, in order.
    pub fn totals(&self) -> Vec<TargetTotals> {
        self.targets.iter().map(|(_, t)| t.totals()).collect()
    }
}

impl Render for SenderMetrics {
    fn render(&self, out: &mut String) {
        let counters: [(&str, &str, Field); 4] = [
            (
                "stamp_sender_packets_sent_total",
                "Test packets sent.",
                |t| &t.sent,
            ),
            (
                "stamp_sender_packets_received_total",
                "Test packets answered (first reply).",
                |t| &t.received,
            ),
            (
                "stamp_sender_packets_lost_total",
                "Test packets declared lost after the timeout.",
                |t| &t.lost,
            ),
            (
                "stamp_sender_duplicates_total",
                "Extra replies to packets already answered.",
                |t| &t.duplicates,
            ),
        ];
        for (name, help, field) in counters {
            header(out, name, "counter", help);
            for (target, t) in &self.targets {
                let _ = writeln!(
                    out,
                    "{name}{{target=\"{target}\"}} {}",
                    field(t).load(Relaxed)
                );
            }
        }
        let bounds = DELAY_BUCKETS_NS;
        let name = "stamp_sender_rtt_seconds";
        header(
            out,
            name,
            "histogram",
            "Round-trip time of answered packets, without the reflector's residence time.",
        );
        for (target, t) in &self.targets {
            let mut acc = vec![0u64; bounds.len() + 1];
            let mut sum = 0;
            t.rtt.accumulate(&mut acc, &mut sum);
            let labels = format!("target=\"{target}\",");
            render_histogram(out, name, &labels, bounds, &acc, sum);
        }
        // One-way delay only exists when both clocks are synchronized: the
        // family appears once a target has a sample.
        let owd = self
            .targets
            .iter()
            .any(|(_, t)| t.forward.count() > 0 || t.backward.count() > 0);
        if owd {
            let name = "stamp_sender_one_way_delay_seconds";
            header(
                out,
                name,
                "histogram",
                "One-way delay (forward T2-T1, backward T4-T3), when both clocks are synchronized.",
            );
            for (target, t) in &self.targets {
                for (direction, h) in [("forward", &t.forward), ("backward", &t.backward)] {
                    let mut acc = vec![0u64; bounds.len() + 1];
                    let mut sum = 0;
                    h.accumulate(&mut acc, &mut sum);
                    let labels = format!("target=\"{target}\",direction=\"{direction}\",");
                    render_histogram(out, name, &labels, bounds, &acc, sum);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP

/// Something that renders metric families in the text format.
pub trait Render: Send + Sync + 'static {
    /// Append the exposition text.
    fn render(&self, out: &mut String);
}

/// Bind the endpoint (before the driver starts, so a bad address is an
/// error at once) and serve it on the current runtime until it stops.
pub async fn start(addr: SocketAddr, source: Arc<dyn Render>) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(address = %bound, "metrics endpoint listening");
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::debug!(%peer, "metrics: too many connections");
                drop(stream);
                continue;
            };
            let source = source.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, handle(stream, &*source)).await;
                drop(permit);
            });
        }
    });
    Ok(bound)
}

/// Read one request head, answer it, close.
async fn handle(mut stream: TcpStream, source: &dyn Render) -> std::io::Result<()> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    let complete = loop {
        if len == buf.len() {
            break false;
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            break false;
        }
        len += n;
        let head = &buf[..len];
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break true;
        }
    };
    let (status, content_type, body) = if !complete && len == buf.len() {
        (
            "431 Request Header Fields Too Large",
            "text/plain",
            "request too large\n".to_string(),
        )
    } else if !complete {
        return Ok(());
    } else {
        let line = buf[..len]
            .split(|b| *b == b'\n')
            .next()
            .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
            .unwrap_or_default();
        let mut parts = line.split_ascii_whitespace();
        let method = parts.next().unwrap_or("");
        let path = parts.next().unwrap_or("");
        let path = path.split('?').next().unwrap_or("");
        match (method, path) {
            ("GET", "/metrics") => {
                let mut body = String::with_capacity(8 * 1024);
                source.render(&mut body);
                ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body)
            }
            ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
            _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_format() {
        assert_eq!(seconds(50_000), "0.00005");
        assert_eq!(seconds(1_000_000_000), "1");
        assert_eq!(seconds(2_500_000), "0.0025");
        assert_eq!(seconds(0), "0");
    }

    #[test]
    fn histogram_cumulative() {
        let h = Histogram::new(DELAY_BUCKETS_NS);
        h.observe_ns(10_000);
        h.observe_ns(60_000);
        h.observe_ns(-5);
        h.observe_ns(5_000_000_000);
        let mut acc = vec![0; DELAY_BUCKETS_NS.len() + 1];
        let mut sum = 0;
        h.accumulate(&mut acc, &mut sum);
        assert_eq!(acc[0], 2);
        assert_eq!(acc[1], 3);
        assert_eq!(acc[DELAY_BUCKETS_NS.len() - 1], 3);
        assert_eq!(*acc.last().unwrap(), 4);
        assert_eq!(h.count(), 4);
        assert_eq!(sum, 5_000_070_000);
    }

    /// The session rows a walk asks for: a worker with sessions publishes
    /// them at its next batch (here: by hand), one without is skipped, and
    /// a reader that finds a worker silent gives up after the wait.
    #[test]
    fn session_rows_are_copied_on_request() {
        use stamp_core::session::SessionKey;
        let m = ReflectorMetrics::new(2);
        let mut table = SessionTable::new(16, Duration::from_secs(60));
        let now = Instant::now();
        for (port, ssid) in [(4000u16, 7u16), (4001, 9)] {
            let key = SessionKey {
                peer: SocketAddr::from(([127, 0, 0, 1], port)),
                local: None,
                local_port: 862,
                ssid,
            };
            let (st, created) = table.get_or_create(key, now).unwrap();
            assert!(created);
            st.rx_packets = u64::from(ssid) * 10;
        }
        let st = ReflectorStats::default();
        // Nothing asked yet: nothing to publish, nothing copied.
        assert!(!m.worker(0).sessions_wanted());
        m.worker(0).publish(&st, table.len(), 0, 0);
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| m.session_rows(Duration::from_secs(5)));
            // The "worker": answers once asked.
            let w = m.worker(0);
            let t0 = Instant::now();
            while !w.sessions_wanted() {
                assert!(t0.elapsed() < Duration::from_secs(5));
                std::thread::yield_now();
            }
            w.publish_sessions(&table);
            assert!(!w.sessions_wanted());
            let mut rows = reader.join().unwrap();
            rows.sort_by_key(|r| r.ssid);
            assert_eq!(rows.len(), 2);
            assert_eq!(
                (rows[0].ssid, rows[0].rx, rows[0].peer.port()),
                (7, 70, 4000)
            );
            assert_eq!((rows[1].ssid, rows[1].rx), (9, 90));
        });
        // A worker that holds sessions but does not answer: the reader
        // waits its bound, then shows what was published last.
        let t0 = Instant::now();
        assert_eq!(m.session_rows(Duration::from_millis(50)).len(), 2);
        assert!(t0.elapsed() >= Duration::from_millis(50));
        // No session any more: no rows, no wait.
        m.worker(0).publish(&st, 0, 0, 0);
        let t0 = Instant::now();
        assert!(m.session_rows(Duration::from_secs(5)).is_empty());
        assert!(t0.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn reflector_text_has_every_reason() {
        let m = ReflectorMetrics::new(2);
        let st = ReflectorStats {
            received: 3,
            reflected: 2,
            dropped_truncated: 1,
            sessions_evicted: 4,
            ..ReflectorStats::default()
        };
        m.worker(0).publish(&st, 1, 0, 5);
        m.worker(1).publish(&st, 2, 0, 7);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("stamp_reflector_packets_received_total 6\n"));
        assert!(out.contains("stamp_reflector_sessions_active 3\n"));
        assert!(out.contains("stamp_reflector_sessions_evicted_total 8\n"));
        assert!(out.contains("stamp_reflector_gso_segmented_total 12\n"));
        assert!(out.contains("stamp_reflector_packets_dropped_total{reason=\"truncated\"} 2\n"));
        for r in DropReason::ALL {
            assert!(out.contains(&format!("reason=\"{}\"", r.label())));
        }
        assert!(out.contains("# TYPE stamp_reflector_processing_seconds histogram\n"));
        assert!(out.contains("stamp_reflector_processing_seconds_count 0\n"));
    }
}
