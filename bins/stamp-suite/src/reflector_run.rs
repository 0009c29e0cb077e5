//! The reflector driver: `--workers N` threads (default: one per CPU), each
//! with its own current-thread tokio runtime, its own SO_REUSEPORT socket on
//! the same address and its own sans-I/O [`Reflector`] (so its own shard of
//! the stateful sessions: the kernel spreads senders over the sockets by a
//! hash of their addresses and ports, so one sender always meets the same
//! worker). A worker receives a batch, runs each request through its
//! reflector and sends the replies as one batch. Ctrl-C stops every worker;
//! their counters are merged into one summary.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use stamp_config::{OutputFormat, Settings};
use stamp_core::clock::TimestampSource;
use stamp_core::hmac::HmacKey;
use stamp_core::ratelimit::GlobalLimit;
use stamp_core::reflector::{DropReason, Outcome, Reflector, ReflectorConfig, ReflectorStats};
use stamp_core::registry::Registry;
use stamp_core::transport::{RecvMeta, SendMeta, Transport};
use stamp_net::{ClockOverrides, SystemClock, UdpOptions, UdpTransport};
use stamp_wire::MAX_DATAGRAM;
use tokio::sync::watch;

use crate::metrics::{ReflectorMetrics, WorkerMetrics};

/// Datagrams moved per system call.
const BATCH: usize = 32;

/// How often a stateful worker runs a bounded step of idle expiry
/// ([`stamp_core::session::SessionTable::expire`]).
const EXPIRY_TICK: Duration = Duration::from_millis(100);

/// What a worker hands back when it stops.
#[derive(Debug, Default)]
struct WorkerReport {
    stats: ReflectorStats,
    active: usize,
    send_errors: u64,
    truncated: u64,
}

/// Everything a worker needs to build its socket, clock and reflector.
#[derive(Clone)]
struct WorkerSpec {
    opts: UdpOptions,
    config: ReflectorConfig,
    registry: Registry,
    clock_format: stamp_wire::TimestampFormat,
    clock_overrides: ClockOverrides,
    /// Shared counters for the metrics endpoint (`--metrics`).
    metrics: Option<Arc<ReflectorMetrics>>,
}

/// Number of workers: `--workers`, else one per CPU.
fn worker_count(s: &Settings) -> usize {
    s.workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

pub async fn run(s: &Settings, registry: Registry) -> Result<ExitCode, String> {
    let local = SocketAddr::new(
        s.local_addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        s.local_port.unwrap_or(862),
    );
    let workers = worker_count(s);
    if s.snmp && !crate::snmp::AVAILABLE {
        return Err(crate::snmp::NO_SNMP.to_string());
    }
    // The endpoint binds first: a bad --metrics-addr fails before any worker.
    // The SNMP sub-agent reads the same counters.
    let metrics = if s.metrics || s.snmp {
        let m = ReflectorMetrics::new(workers);
        if s.metrics {
            crate::metrics::start(s.metrics_addr, m.clone()).await?;
        }
        Some(m)
    } else {
        None
    };
    let spec = WorkerSpec {
        opts: UdpOptions {
            recv_buffer: Some(4 << 20),
            send_buffer: Some(4 << 20),
            // Several sockets on one port, one per worker (socket(7)).
            reuse_port: workers > 1,
            ..UdpOptions::default()
        },
        config: ReflectorConfig {
            mode: s.auth_mode,
            stateful: s.stateful_reflector,
            session_timeout: s.session_timeout,
            // The cap is for the process: each worker holds its share.
            max_sessions: s.max_sessions.div_ceil(workers),
            tlv_mode: s.tlv_mode,
            verify_tlv_hmac: s.verify_tlv_hmac,
            // Keyed once here; every worker clones the keyed state, and
            // every packet clones it again (no key schedule per packet).
            key: s.hmac_key.as_deref().map(HmacKey::new),
            ssid_keys: s
                .ssid_keys
                .iter()
                .map(|(ssid, k)| (*ssid, HmacKey::new(k)))
                .collect(),
            unknown_ttl: 255,
            // Per source address, per worker.
            max_pps: s.max_pps,
            rate_burst: s.reflector_rate_burst,
            global_max_pps: s.global_max_pps,
            // One bucket for the process: every worker's clone shares it.
            global_limit: s.global_max_pps.map(GlobalLimit::per_second),
        },
        registry,
        clock_format: s.clock_format,
        clock_overrides: ClockOverrides {
            synchronized: s.clock_synchronized,
            scale: s.error_scale,
            multiplier: s.error_multiplier,
        },
        metrics,
    };
    let shutdown_rx = crate::shutdown::signal();
    // Workers stop when either Ctrl-C arrives or this driver gives up.
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();

    // The first worker binds (port 0 picks a port); the others join its port.
    // Each worker binds, reports, then waits for the go (sent once
    // privileges are dropped) before it reads a single packet.
    let mut handles: Vec<JoinHandle<Result<WorkerReport, String>>> = Vec::with_capacity(workers);
    let mut gos: Vec<mpsc::Sender<()>> = Vec::with_capacity(workers);
    let abort = |gos: Vec<mpsc::Sender<()>>,
                 handles: Vec<JoinHandle<Result<WorkerReport, String>>>,
                 e: String| {
        drop(gos); // a worker waiting for the go sees the channel closed
        let _ = stop_tx.send(true);
        for h in handles {
            let _ = h.join();
        }
        Err(e)
    };
    let mut bound: Option<SocketAddr> = None;
    let mut capabilities = None;
    for id in 0..workers {
        let addr = bound.unwrap_or(local);
        let (ready_tx, ready_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel();
        let spec = spec.clone();
        let (stop, shutdown) = (stop_rx.clone(), shutdown_rx.clone());
        let handle = match std::thread::Builder::new()
            .name(format!("reflector-{id}"))
            .spawn(move || worker(id, addr, spec, ready_tx, go_rx, stop, shutdown))
        {
            Ok(h) => h,
            Err(e) => return abort(gos, handles, format!("cannot start worker {id}: {e}")),
        };
        handles.push(handle);
        gos.push(go_tx);
        match ready_rx.recv() {
            Ok(Ok((addr, caps))) => {
                bound.get_or_insert(addr);
                capabilities.get_or_insert(caps);
            }
            Ok(Err(e)) => return abort(gos, handles, format!("cannot listen on {addr}: {e}")),
            Err(_) => return abort(gos, handles, format!("worker {id} stopped while starting")),
        }
    }
    // Every socket is bound: give up root before the first packet.
    if let Some(name) = &s.user {
        match crate::privdrop::drop_to(name) {
            Ok(d) => tracing::info!(
                user = %d.user,
                uid = d.uid,
                gid = d.gid,
                changed = d.changed,
                "running unprivileged"
            ),
            Err(e) => return abort(gos, handles, e),
        }
    }
    for go in gos {
        let _ = go.send(());
    }
    let bound = bound.unwrap_or(local);
    if s.snmp {
        if let Some(m) = &spec.metrics {
            crate::snmp::start_reflector(s, bound.port(), workers, m.clone())?;
        }
    }
    tracing::info!(
        address = %bound,
        workers,
        mode = ?s.auth_mode,
        stateful = s.stateful_reflector,
        clock = s.clock_format.name(),
        capabilities = ?capabilities,
        "reflector listening"
    );
    // Scripts and tests learn the port from this line when they ask for port 0.
    eprintln!("stamp reflector listening on {bound}");

    let mut shutdown = shutdown_rx;
    let _ = shutdown.wait_for(|stop| *stop).await;
    let _ = stop_tx.send(true);

    let mut total = WorkerReport::default();
    let mut failure = None;
    for (id, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(r)) => {
                total.stats.merge(&r.stats);
                total.active += r.active;
                total.send_errors += r.send_errors;
                total.truncated += r.truncated;
            }
            Ok(Err(e)) => failure = Some(format!("worker {id}: {e}")),
            Err(_) => failure = Some(format!("worker {id} panicked")),
        }
    }
    print_summary(
        s,
        &total.stats,
        total.active,
        started.elapsed(),
        total.send_errors,
        total.truncated,
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

type Ready =
    mpsc::Sender<Result<(SocketAddr, stamp_core::transport::TransportCapabilities), String>>;

/// One worker thread: its own runtime, socket and reflector.
fn worker(
    id: usize,
    addr: SocketAddr,
    spec: WorkerSpec,
    ready: Ready,
    go: mpsc::Receiver<()>,
    stop: watch::Receiver<bool>,
    shutdown: watch::Receiver<bool>,
) -> Result<WorkerReport, String> {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot start the runtime: {e}")));
            return Err(e.to_string());
        }
    };
    rt.block_on(async move {
        let transport = match UdpTransport::bind(addr, &spec.opts) {
            Ok(t) => t,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return Err(e.to_string());
            }
        };
        let bound = transport.local_addr().map_err(|e| e.to_string())?;
        let _ = ready.send(Ok((bound, transport.capabilities())));
        // Nothing is read before the driver says so (after --user).
        if go.recv().is_err() {
            return Ok(WorkerReport::default());
        }
        tracing::debug!(worker = id, address = %bound, "worker ready");
        let clock = SystemClock::new(spec.clock_format, spec.clock_overrides);
        let reflector = Reflector::new(spec.config, spec.registry);
        let slot = spec.metrics.as_deref().map(|m| m.worker(id));
        serve(transport, reflector, clock, stop, shutdown, slot).await
    })
}

/// The receive / reflect / send loop of one worker. Nothing here allocates
/// per packet: buffers and metadata are allocated once, the reflector works
/// in place, and the transport's batch headers are reused.
async fn serve(
    transport: UdpTransport,
    mut reflector: Reflector,
    clock: SystemClock,
    mut stop: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
    metrics: Option<&WorkerMetrics>,
) -> Result<WorkerReport, String> {
    let mut rx_bufs: Vec<Box<[u8]>> = (0..BATCH)
        .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
        .collect();
    let mut rx_meta = vec![RecvMeta::default(); BATCH];
    let mut tx_bufs: Vec<Box<[u8]>> = (0..BATCH)
        .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
        .collect();
    let mut tx_meta: Vec<SendMeta> = Vec::with_capacity(BATCH);
    let stateful = reflector.config().stateful;
    let mut expiry = tokio::time::interval(EXPIRY_TICK);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut send_errors = 0u64;
    let mut trains = Trains::default();

    loop {
        // An idle stateless reflector (or one with no sessions) has no timer
        // armed: it sleeps in epoll until a datagram or a signal comes.
        let expiring = stateful && !reflector.sessions().is_empty();
        let next_copy = trains.next_due();
        let n = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            _ = stop.changed() => break,
            _ = sleep_until(next_copy), if next_copy.is_some() => {
                trains.send_due(&transport, &reflector, &clock, &mut send_errors).await;
                continue;
            }
            _ = expiry.tick(), if expiring => {
                // A bounded step (SessionTable::expire): never a stall.
                reflector.expire_sessions(Instant::now());
                if let Some(m) = metrics {
                    m.publish(reflector.stats(), reflector.sessions().len(), send_errors);
                    if m.sessions_wanted() {
                        m.publish_sessions(reflector.sessions());
                    }
                }
                continue;
            }
            r = transport.recv_batch(&mut rx_bufs, &mut rx_meta) => match r {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "receive failed");
                    continue;
                }
            },
        };
        let now = Instant::now();
        // With metrics on, one more clock read per request times it.
        let mut mark = now;
        tx_meta.clear();
        for i in 0..n {
            let meta = &mut rx_meta[i];
            if meta.rx_time.is_none() {
                meta.rx_time = Some((crate::report::realtime_now(), TimestampSource::UserSpace));
            }
            let k = tx_meta.len();
            match reflector.process(&rx_bufs[i][..meta.len], meta, now, &clock, &mut tx_bufs[k]) {
                Outcome::Reply { len, plan } => {
                    let mut m = SendMeta::new(len, plan.dst);
                    m.src = plan.src;
                    // The routing table picks the way back (the path may be
                    // asymmetric); only a link-local peer needs the
                    // interface the request came in on.
                    m.ifindex = if plan.src.is_some() && link_local(plan.dst.ip()) {
                        meta.ifindex
                    } else {
                        0
                    };
                    m.tos = plan.tos;
                    tx_meta.push(m);
                    if plan.copies > 1 {
                        trains.add(
                            &tx_bufs[k][..len],
                            m,
                            plan.copies - 1,
                            plan.copy_interval_ns,
                            now,
                        );
                    }
                }
                Outcome::Drop(reason) => {
                    tracing::debug!(peer = %meta.src, reason = reason.label(), "request dropped");
                }
            }
            if let Some(m) = metrics {
                let t = Instant::now();
                let ns = i64::try_from((t - mark).as_nanos()).unwrap_or(i64::MAX);
                m.processing.observe_ns(ns);
                mark = t;
            }
        }
        let mut sent = 0;
        while sent < tx_meta.len() {
            match transport
                .send_batch(&tx_bufs[sent..], &tx_meta[sent..])
                .await
            {
                Ok(0) => break,
                Ok(k) => sent += k,
                Err(e) => {
                    send_errors += 1;
                    tracing::warn!(error = %e, peer = %tx_meta[sent].dst, "send failed");
                    sent += 1;
                }
            }
        }
        // After each batch: a few relaxed stores into this worker's slot
        // (and, when the SNMP sub-agent asked, a bounded copy of the
        // session rows).
        if let Some(m) = metrics {
            m.publish(reflector.stats(), reflector.sessions().len(), send_errors);
            if m.sessions_wanted() {
                m.publish_sessions(reflector.sessions());
            }
        }
    }

    Ok(WorkerReport {
        stats: *reflector.stats(),
        active: reflector.sessions().len(),
        send_errors,
        truncated: transport.truncated(),
    })
}

fn print_summary(
    s: &Settings,
    st: &ReflectorStats,
    active: usize,
    elapsed: Duration,
    send_errors: u64,
    truncated: u64,
) {
    let dropped: u64 = DropReason::ALL
        .iter()
        .filter(|r| **r != DropReason::Suppressed)
        .map(|r| st.dropped(*r))
        .sum();
    if s.output_format == OutputFormat::Json {
        let mut v = serde_json::to_value(st).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("type".into(), "reflector_summary".into());
            o.insert("dropped".into(), dropped.into());
            o.insert("active_sessions".into(), active.into());
            o.insert("send_errors".into(), send_errors.into());
            o.insert("oversized".into(), truncated.into());
            o.insert("elapsed_s".into(), elapsed.as_secs_f64().into());
        }
        println!("{v}");
        return;
    }
    println!("--- STAMP Reflector Statistics ---");
    println!("Packets received: {}", st.received);
    println!("Packets reflected: {}", st.reflected);
    let reasons: Vec<String> = DropReason::ALL
        .iter()
        .filter(|r| **r != DropReason::Suppressed && st.dropped(**r) > 0)
        .map(|r| format!("{} {}", r.label(), st.dropped(*r)))
        .collect();
    if reasons.is_empty() {
        println!("Packets dropped: {dropped}");
    } else {
        println!("Packets dropped: {dropped} ({})", reasons.join(", "));
    }
    if st.suppressed > 0 {
        println!("Replies suppressed on request: {}", st.suppressed);
    }
    println!(
        "TLVs flagged: unrecognized {} malformed {} integrity {} conformance {}",
        st.tlv_unrecognized, st.tlv_malformed, st.tlv_integrity_failed, st.tlv_conformance
    );
    if s.stateful_reflector {
        println!(
            "Sessions: created {} expired {} evicted {} active {}",
            st.sessions_created, st.sessions_expired, st.sessions_evicted, active
        );
    }
    if send_errors > 0 || truncated > 0 {
        println!("Send errors: {send_errors}, oversized datagrams dropped: {truncated}");
    }
    println!("Uptime: {:.3} s", elapsed.as_secs_f64());
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Most reflected trains in flight per worker; more are refused (the first
/// reply still goes out) so a flood of Type 12 requests cannot grow memory.
const MAX_TRAINS: usize = 1024;

/// Further replies of reflected trains (draft-ietf-ippm-asymmetrical-pkts):
/// copy k of a train leaves at first-send + k × interval, each with its own
/// T3 (and base HMAC), the same reflector Sequence Number, and the plan's
/// destination, source and TOS. Only requests a bounded policy allowed get
/// here (the plugin clamps count, size and interval).
#[derive(Default)]
struct Trains {
    pending: Vec<Train>,
    refused: u64,
}

struct Train {
    buf: Box<[u8]>,
    meta: SendMeta,
    remaining: u16,
    interval: Duration,
    next: Instant,
}

impl Trains {
    fn add(&mut self, reply: &[u8], meta: SendMeta, further: u16, interval_ns: u32, now: Instant) {
        if self.pending.len() >= MAX_TRAINS {
            self.refused += 1;
            tracing::debug!(peer = %meta.dst, "reflected train refused: too many in flight");
            return;
        }
        let interval = Duration::from_nanos(u64::from(interval_ns));
        self.pending.push(Train {
            buf: reply.into(),
            meta,
            remaining: further,
            interval,
            next: now + interval,
        });
    }

    fn next_due(&self) -> Option<Instant> {
        self.pending.iter().map(|t| t.next).min()
    }

    async fn send_due(
        &mut self,
        transport: &UdpTransport,
        reflector: &Reflector,
        clock: &SystemClock,
        errors: &mut u64,
    ) {
        let now = Instant::now();
        for t in self.pending.iter_mut().filter(|t| t.next <= now) {
            reflector.restamp(&mut t.buf, clock);
            if let Err(e) = transport
                .send_batch(std::slice::from_ref(&t.buf), std::slice::from_ref(&t.meta))
                .await
            {
                *errors += 1;
                tracing::warn!(error = %e, peer = %t.meta.dst, "train send failed");
            }
            t.remaining -= 1;
            t.next += t.interval;
        }
        self.pending.retain(|t| t.remaining > 0);
    }
}

/// IPv6 link-local (fe80::/10): only reachable through a given interface.
fn link_local(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
        std::net::IpAddr::V4(_) => false,
    }
}
