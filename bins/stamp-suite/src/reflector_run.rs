//! The reflector driver: `--workers N` threads (default: one per CPU), each
//! with its own blocking SO_REUSEPORT socket on the same address and its own
//! sans-I/O [`Reflector`] (so its own shard of
//! the stateful sessions: the kernel spreads senders over the sockets by a
//! hash of their addresses and ports, so one sender always meets the same
//! worker). A worker receives a batch, runs each request through its
//! reflector and sends the replies as one batch. Ctrl-C stops every worker;
//! their counters are merged into one summary.
//!
//! Workers block in recvmmsg(2) (MSG_WAITFORONE, [`BlockingUdpTransport`])
//! rather than wait on a runtime's epoll: under load that is one system call
//! per batch instead of a readiness round trip (recvmmsg → EAGAIN →
//! epoll_wait → task poll) per batch. Each wait is bounded by [`WAKE_EVERY`]
//! so the stop flag and the idle-expiry step are looked at that often; an
//! idle worker sleeps in the kernel between those wake-ups.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use stamp_config::{OutputFormat, Settings, TransportKind};
use stamp_core::clock::TimestampSource;
use stamp_core::hmac::HmacKey;
use stamp_core::ratelimit::GlobalLimit;
use stamp_core::reflector::{
    DropReason, Outcome, Reflector, ReflectorConfig, ReflectorStats, SentReply,
};
use stamp_core::registry::Registry;
use stamp_core::transport::{RecvMeta, SendMeta};
use stamp_net::{BlockingUdpTransport, ClockOverrides, SystemClock, UdpOptions};
use stamp_wire::MAX_DATAGRAM;

use crate::metrics::{ReflectorMetrics, WorkerMetrics};

/// Datagrams moved per system call.
const BATCH: usize = 32;

/// How often a stateful worker runs a bounded step of idle expiry
/// ([`stamp_core::session::SessionTable::expire`]).
const EXPIRY_TICK: Duration = Duration::from_millis(100);

/// Longest a worker sleeps in the kernel without looking at its stop flag
/// and timers: Ctrl-C stops it within this (plus one batch).
const WAKE_EVERY: Duration = Duration::from_millis(100);

/// What a worker hands back when it stops.
#[derive(Debug, Default)]
struct WorkerReport {
    stats: ReflectorStats,
    active: usize,
    send_errors: u64,
    truncated: u64,
    /// Replies that left as segments of UDP segmentation offload trains.
    gso_segmented: u64,
}

/// Everything a worker needs to build its socket, clock and reflector.
#[derive(Clone)]
struct WorkerSpec {
    transport: TransportKind,
    opts: UdpOptions,
    config: ReflectorConfig,
    registry: Registry,
    clock_format: stamp_wire::TimestampFormat,
    clock_overrides: ClockOverrides,
    /// Shared counters for the metrics endpoint (`--metrics`).
    metrics: Option<Arc<ReflectorMetrics>>,
    /// With `--max-pps` and several workers: steer each source to one
    /// worker (of this many), so its rate is limited in one place.
    steer: Option<u32>,
}

/// Number of workers: `--workers`, else one per CPU.
fn worker_count(s: &Settings) -> usize {
    if s.transport == TransportKind::Raw {
        if s.workers.is_some_and(|w| w > 1) {
            tracing::warn!("--transport raw runs one worker; --workers ignored");
        }
        return 1;
    }
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
    // --hwtstamp: NIC timestamps for T2 where every interface of the bind
    // offers them (`on` refuses to start otherwise).
    let hardware = crate::hwts::decide(s.hwtstamp, local.ip(), None)?;
    let spec = WorkerSpec {
        transport: s.transport,
        opts: UdpOptions {
            hardware_timestamps: hardware,
            recv_buffer: Some(4 << 20),
            send_buffer: Some(4 << 20),
            // Several sockets on one port, one per worker (socket(7)).
            reuse_port: workers > 1,
            gso: s.gso == stamp_config::Gso::On,
            ..UdpOptions::default()
        },
        config: ReflectorConfig {
            mode: s.auth_mode,
            stateful: s.stateful_reflector,
            session_timeout: s.session_timeout,
            // The cap is for the process: each worker holds its share.
            max_sessions: s.max_sessions.div_ceil(workers),
            provisioning: stamp_core::provision::Provisioning::new(
                s.allow_sessions.iter().copied(),
            ),
            ssid_keys: s
                .ssid_keys
                .iter()
                .map(|(ssid, k)| (*ssid, HmacKey::new(k)))
                .collect(),
            tlv_mode: s.tlv_mode,
            verify_tlv_hmac: s.verify_tlv_hmac,
            // Keyed once here; every worker clones the keyed state, and
            // every packet clones it again (no key schedule per packet).
            key: s.hmac_key.as_deref().map(HmacKey::new),
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
        steer: (s.max_pps.is_some() && workers > 1)
            .then(|| u32::try_from(workers).unwrap_or(u32::MAX)),
    };
    let shutdown_rx = crate::shutdown::signal();
    // Workers stop when either Ctrl-C arrives or this driver gives up.
    let stop = Arc::new(AtomicBool::new(false));
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
        stop.store(true, Ordering::Relaxed);
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
        let worker_stop = stop.clone();
        let handle = match std::thread::Builder::new()
            .name(format!("reflector-{id}"))
            .spawn(move || worker(id, addr, spec, ready_tx, go_rx, &worker_stop))
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
        provisioned_sessions = s.allow_sessions.len(),
        "reflector listening"
    );
    // Scripts and tests learn the port from this line when they ask for port 0.
    eprintln!("stamp reflector listening on {bound}");

    let mut shutdown = shutdown_rx;
    let _ = shutdown.wait_for(|stop| *stop).await;
    stop.store(true, Ordering::Relaxed);

    let mut total = WorkerReport::default();
    let mut failure = None;
    for (id, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(r)) => {
                total.stats.merge(&r.stats);
                total.active += r.active;
                total.send_errors += r.send_errors;
                total.truncated += r.truncated;
                total.gso_segmented += r.gso_segmented;
            }
            Ok(Err(e)) => failure = Some(format!("worker {id}: {e}")),
            Err(_) => failure = Some(format!("worker {id} panicked")),
        }
    }
    print_summary(s, &total, started.elapsed());
    match failure {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

type Ready =
    mpsc::Sender<Result<(SocketAddr, stamp_core::transport::TransportCapabilities), String>>;

/// One worker thread: its own socket and reflector.
fn worker(
    id: usize,
    addr: SocketAddr,
    spec: WorkerSpec,
    ready: Ready,
    go: mpsc::Receiver<()>,
    stop: &AtomicBool,
) -> Result<WorkerReport, String> {
    match spec.transport {
        TransportKind::Udp => {
            let t = BlockingUdpTransport::bind(addr, &spec.opts, WAKE_EVERY);
            if let (Ok(t), Some(n), 0) = (&t, spec.steer, id) {
                steer(t, n);
            }
            run_worker(id, t, spec, ready, go, stop)
        }
        TransportKind::Raw => {
            #[cfg(all(feature = "ttl-pnet", target_os = "linux"))]
            {
                let t = raw_io::RawIo::bind(addr, &spec.opts);
                run_worker(id, t, spec, ready, go, stop)
            }
            #[cfg(not(all(feature = "ttl-pnet", target_os = "linux")))]
            {
                let e = "--transport raw needs Linux and the ttl-pnet feature".to_string();
                let _ = ready.send(Err(e.clone()));
                Err(e)
            }
        }
    }
}

/// `--max-pps` with several workers: the kernel hands all of a source's
/// requests to one worker (SO_REUSEPORT program on the group, attached
/// through the first socket), so the per-source limit holds for the
/// process, not per worker. Where the kernel refuses, the limit stays per
/// worker, as without steering.
fn steer(t: &BlockingUdpTransport, workers: u32) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsFd;
        match stamp_net::bpf::steer_by_source(t.socket().as_fd(), workers) {
            Ok(()) => tracing::debug!(workers, "requests steered to workers by source"),
            Err(error) => tracing::warn!(
                %error,
                "cannot steer sources to workers: --max-pps holds per worker"
            ),
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (t, workers);
}

/// What a worker needs from its transport: blocking batches with a wake-up
/// deadline, and the UDP socket replies leave from (for its error queue and
/// for replies sent one by one).
trait WorkerIo {
    /// Wait for datagrams until `deadline` (or the transport's own wake-up
    /// period); `Ok(0)` when none came.
    fn recv_batch(
        &self,
        bufs: &mut [Box<[u8]>],
        metas: &mut [RecvMeta],
        deadline: Option<Instant>,
    ) -> std::io::Result<usize>;
    /// Send a batch; how many left.
    fn send_batch(&self, bufs: &[Box<[u8]>], metas: &[SendMeta]) -> std::io::Result<usize>;
    fn local_addr(&self) -> SocketAddr;
    fn capabilities(&self) -> stamp_core::transport::TransportCapabilities;
    /// Datagrams dropped for their size.
    fn truncated(&self) -> u64;
    /// Replies sent as segments of UDP segmentation offload trains.
    fn gso_segmented(&self) -> u64;
    /// Replies may still leave as trains.
    fn gso_active(&self) -> bool;
    /// The socket replies leave from.
    fn reply_fd(&self) -> std::os::fd::BorrowedFd<'_>;
}

impl WorkerIo for BlockingUdpTransport {
    fn recv_batch(
        &self,
        bufs: &mut [Box<[u8]>],
        metas: &mut [RecvMeta],
        deadline: Option<Instant>,
    ) -> std::io::Result<usize> {
        BlockingUdpTransport::recv_batch(self, bufs, metas, deadline)
    }
    fn send_batch(&self, bufs: &[Box<[u8]>], metas: &[SendMeta]) -> std::io::Result<usize> {
        BlockingUdpTransport::send_batch(self, bufs, metas)
    }
    fn local_addr(&self) -> SocketAddr {
        BlockingUdpTransport::local_addr(self)
    }
    fn capabilities(&self) -> stamp_core::transport::TransportCapabilities {
        BlockingUdpTransport::capabilities(self)
    }
    fn truncated(&self) -> u64 {
        BlockingUdpTransport::truncated(self)
    }
    fn gso_segmented(&self) -> u64 {
        BlockingUdpTransport::gso(self).segmented
    }
    fn gso_active(&self) -> bool {
        BlockingUdpTransport::gso(self).active
    }
    fn reply_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.socket().as_fd()
    }
}

/// The raw transport (async, on tokio) driven from the worker's blocking
/// loop through a current-thread runtime of its own.
#[cfg(all(feature = "ttl-pnet", target_os = "linux"))]
mod raw_io {
    use std::io;
    use std::net::SocketAddr;
    use std::time::Instant;

    use stamp_core::transport::{RecvMeta, SendMeta, Transport, TransportCapabilities};
    use stamp_net::{RawTransport, UdpOptions};

    use super::{WorkerIo, WAKE_EVERY};

    pub(super) struct RawIo {
        rt: tokio::runtime::Runtime,
        t: RawTransport,
    }

    impl RawIo {
        pub(super) fn bind(addr: SocketAddr, opts: &UdpOptions) -> io::Result<RawIo> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let t = {
                let _guard = rt.enter();
                RawTransport::bind(addr, opts)?
            };
            Ok(RawIo { rt, t })
        }
    }

    impl WorkerIo for RawIo {
        fn recv_batch(
            &self,
            bufs: &mut [Box<[u8]>],
            metas: &mut [RecvMeta],
            deadline: Option<Instant>,
        ) -> io::Result<usize> {
            let limit = Instant::now() + WAKE_EVERY;
            let until = deadline.map_or(limit, |d| d.min(limit));
            self.rt.block_on(async {
                let wait = tokio::time::Instant::from_std(until);
                match tokio::time::timeout_at(wait, self.t.recv_batch(bufs, metas)).await {
                    Ok(r) => r,
                    Err(_) => Ok(0),
                }
            })
        }
        fn send_batch(&self, bufs: &[Box<[u8]>], metas: &[SendMeta]) -> io::Result<usize> {
            self.rt.block_on(self.t.send_batch(bufs, metas))
        }
        fn local_addr(&self) -> SocketAddr {
            Transport::local_addr(&self.t).expect("bound")
        }
        fn capabilities(&self) -> TransportCapabilities {
            Transport::capabilities(&self.t)
        }
        fn truncated(&self) -> u64 {
            self.t.truncated()
        }
        fn gso_segmented(&self) -> u64 {
            self.t.reply_socket().gso().segmented
        }
        fn gso_active(&self) -> bool {
            self.t.reply_socket().gso().active
        }
        fn reply_fd(&self) -> std::os::fd::BorrowedFd<'_> {
            use std::os::fd::AsFd;
            self.t.reply_socket().socket().as_fd()
        }
    }
}

fn run_worker<T: WorkerIo>(
    id: usize,
    transport: std::io::Result<T>,
    spec: WorkerSpec,
    ready: Ready,
    go: mpsc::Receiver<()>,
    stop: &AtomicBool,
) -> Result<WorkerReport, String> {
    let transport = match transport {
        Ok(t) => t,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return Err(e.to_string());
        }
    };
    let bound = transport.local_addr();
    let _ = ready.send(Ok((bound, transport.capabilities())));
    // Nothing is read before the driver says so (after --user).
    if go.recv().is_err() {
        return Ok(WorkerReport::default());
    }
    tracing::debug!(worker = id, address = %bound, "worker ready");
    let clock = SystemClock::new(spec.clock_format, spec.clock_overrides);
    let reflector = Reflector::new(spec.config, spec.registry);
    let slot = spec.metrics.as_deref().map(|m| m.worker(id));
    Ok(serve(transport, reflector, clock, stop, slot))
}

/// The receive / reflect / send loop of one worker. Nothing here allocates
/// per packet: buffers and metadata are allocated once, the reflector works
/// in place, and the transport's batch headers are reused.
fn serve<T: WorkerIo>(
    transport: T,
    mut reflector: Reflector,
    clock: SystemClock,
    stop: &AtomicBool,
    metrics: Option<&WorkerMetrics>,
) -> WorkerReport {
    let mut rx_bufs: Vec<Box<[u8]>> = (0..BATCH)
        .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
        .collect();
    let mut rx_meta = vec![RecvMeta::default(); BATCH];
    let mut tx_bufs: Vec<Box<[u8]>> = (0..BATCH)
        .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
        .collect();
    let mut tx_meta: Vec<SendMeta> = Vec::with_capacity(BATCH);
    let stateful = reflector.config().stateful;
    let mut next_expiry = Instant::now() + EXPIRY_TICK;
    let mut send_errors = 0u64;
    let mut trains = Trains::default();
    let mut follow = FollowUps::new();

    while !stop.load(Ordering::Relaxed) {
        // Waits at most WAKE_EVERY, or until the next copy of a reflected
        // train is due.
        let n = match transport.recv_batch(&mut rx_bufs, &mut rx_meta, trains.next_due()) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "receive failed");
                0
            }
        };
        let now = Instant::now();
        if n > 0 {
            reflect_batch(
                &mut reflector,
                &clock,
                &transport,
                (&rx_bufs[..n], &mut rx_meta[..n]),
                (&mut tx_bufs, &mut tx_meta),
                &mut trains,
                &mut follow,
                &mut send_errors,
                now,
                metrics,
            );
        }
        follow.collect(&transport, &mut reflector, &clock, now);
        if trains.next_due().is_some_and(|d| d <= now) {
            trains.send_due(&transport, &reflector, &clock, &mut send_errors);
        }
        // A bounded step (SessionTable::expire), only while sessions exist:
        // never a stall, and nothing to do for an idle stateless worker.
        if stateful && now >= next_expiry {
            next_expiry = now + EXPIRY_TICK;
            if !reflector.sessions().is_empty() {
                reflector.expire_sessions(now);
            }
            if let Some(m) = metrics {
                m.publish(
                    reflector.stats(),
                    reflector.sessions().len(),
                    send_errors,
                    transport.gso_segmented(),
                );
                if m.sessions_wanted() {
                    m.publish_sessions(reflector.sessions());
                }
            }
        }
    }

    WorkerReport {
        stats: *reflector.stats(),
        active: reflector.sessions().len(),
        send_errors,
        truncated: transport.truncated(),
        gso_segmented: transport.gso_segmented(),
    }
}

/// Reflect one received batch and send the replies as one batch.
#[allow(clippy::too_many_arguments)]
fn reflect_batch<T: WorkerIo>(
    reflector: &mut Reflector,
    clock: &SystemClock,
    transport: &T,
    (rx_bufs, rx_meta): (&[Box<[u8]>], &mut [RecvMeta]),
    (tx_bufs, tx_meta): (&mut [Box<[u8]>], &mut Vec<SendMeta>),
    trains: &mut Trains,
    follow: &mut FollowUps,
    send_errors: &mut u64,
    now: Instant,
    metrics: Option<&WorkerMetrics>,
) {
    // With metrics on, one more clock read per request times it.
    let mut mark = now;
    tx_meta.clear();
    follow.batch.clear();
    for (buf, meta) in rx_bufs.iter().zip(rx_meta.iter_mut()) {
        if meta.rx_time.is_none() {
            meta.rx_time = Some((crate::report::realtime_now(), TimestampSource::UserSpace));
        }
        let k = tx_meta.len();
        // The request, and the received IP header after it when the
        // transport saw one (raw transport).
        match reflector.process_received(buf, meta, now, clock, &mut tx_bufs[k]) {
            Outcome::Reply {
                len,
                plan:
                    stamp_core::ReplyPlan {
                        srv6_route: Some(route),
                        dst,
                        ..
                    },
            } => {
                // Sent at once, on its own: the routing header is a
                // per-socket option set for this one datagram.
                if let Err(e) = send_srv6(transport, &tx_bufs[k][..len], dst, route) {
                    *send_errors += 1;
                    tracing::warn!(error = %e, peer = %dst, "SRv6 reply failed");
                }
            }
            Outcome::Reply { len, plan } => {
                let mut m = SendMeta::new(len, plan.dst);
                m.src = plan.src;
                // The routing table picks the way back (the path may be
                // asymmetric); only a link-local peer needs the interface
                // the request came in on.
                m.ifindex = if plan.src.is_some() && link_local(plan.dst.ip()) {
                    meta.ifindex
                } else {
                    0
                };
                m.tos = plan.tos;
                // Follow-Up Telemetry asked for this reply's transmit time.
                let wanted = if plan.tx_timestamp && follow.enabled {
                    reflector.sent_reply()
                } else {
                    None
                };
                m.tx_timestamp = wanted.is_some();
                follow.batch.push(wanted);
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
    if transport.gso_active() {
        group_by_peer(&mut tx_bufs[..tx_meta.len()], tx_meta, &mut follow.batch);
    }
    let mut sent = 0;
    while sent < tx_meta.len() {
        match transport.send_batch(&tx_bufs[sent..], &tx_meta[sent..]) {
            Ok(0) => break,
            Ok(k) => {
                follow.sent(sent..sent + k, now);
                sent += k;
            }
            Err(e) => {
                *send_errors += 1;
                tracing::warn!(error = %e, peer = %tx_meta[sent].dst, "send failed");
                sent += 1;
            }
        }
    }
    // After each batch: a few relaxed stores into this worker's slot.
    if let Some(m) = metrics {
        m.publish(
            reflector.stats(),
            reflector.sessions().len(),
            *send_errors,
            transport.gso_segmented(),
        );
        // When the SNMP sub-agent asked: a bounded copy of the session rows.
        if m.sessions_wanted() {
            m.publish_sessions(reflector.sessions());
        }
    }
}

/// Put the replies of a batch that go to the same peer next to each other,
/// so they can leave as one UDP segmentation offload train: a stable
/// regrouping (replies to one peer keep their order; peers keep the order
/// of their first reply). Every T3 of the batch was read before any reply
/// leaves, so the order across peers changes nothing on the wire but the
/// order of departures within this one system call. In place, no
/// allocation; `follow` (one entry per reply) moves with its reply.
fn group_by_peer<F>(bufs: &mut [Box<[u8]>], metas: &mut [SendMeta], follow: &mut [F]) {
    let n = metas.len().min(bufs.len()).min(follow.len());
    if !a_peer_comes_back(&metas[..n]) {
        return;
    }
    let mut i = 1;
    while i < n {
        let prev = metas[i - 1].dst;
        if metas[i].dst != prev {
            // The next reply to the same peer, further on: move it here.
            if let Some(j) = (i + 1..n).find(|&j| metas[j].dst == prev) {
                bufs[i..=j].rotate_right(1);
                metas[i..=j].rotate_right(1);
                follow[i..=j].rotate_right(1);
            }
        }
        i += 1;
    }
}

/// Whether some peer has replies on both sides of another peer's: only
/// then can [`group_by_peer`] move anything. One pass over a 64-bit filter
/// of the peers (a false alarm only costs the full regrouping pass), so the
/// usual batches (one peer, or many peers once each) skip its quadratic
/// search.
fn a_peer_comes_back(metas: &[SendMeta]) -> bool {
    let mut seen = 0u64;
    for (k, m) in metas.iter().enumerate() {
        if k > 0 && metas[k - 1].dst == m.dst {
            continue;
        }
        let ip = match m.dst.ip() {
            std::net::IpAddr::V4(a) => u64::from(u32::from(a)),
            std::net::IpAddr::V6(a) => {
                let v = u128::from(a);
                (v as u64) ^ ((v >> 64) as u64)
            }
        };
        let key = (ip ^ (u64::from(m.dst.port()) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let bit = 1u64 << (key >> 58);
        if seen & bit != 0 {
            return true;
        }
        seen |= bit;
    }
    false
}

fn print_summary(s: &Settings, total: &WorkerReport, elapsed: Duration) {
    let (st, active) = (&total.stats, total.active);
    let (send_errors, truncated) = (total.send_errors, total.truncated);
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
            o.insert("gso_segmented".into(), total.gso_segmented.into());
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
    if total.gso_segmented > 0 {
        println!(
            "Replies sent in UDP segmentation offload trains: {}",
            total.gso_segmented
        );
    }
    println!("Uptime: {:.3} s", elapsed.as_secs_f64());
}

/// Kernel transmit timestamps of the replies whose session reports them
/// with its next reply (Follow-Up Telemetry, RFC 8972 §4.7, stateful mode
/// only). T3 inside a reply must be read before the send; the kernel's
/// timestamp of the datagram leaving comes after it, from the socket's
/// error queue (`stamp_net::txstamp`), keyed by the socket's OPT_ID counter,
/// and replaces the session's record of that reply's T3. Only replies that
/// asked for it carry the per-datagram request, so nothing else pays.
struct FollowUps {
    enabled: bool,
    /// Per reply of the batch being sent: the stateful reply wanted.
    batch: Vec<Option<SentReply>>,
    #[cfg(target_os = "linux")]
    keys: stamp_net::txstamp::KeyRing<SentReply>,
    /// The error queue is read until this long after the last request.
    pending_until: Option<Instant>,
}

impl FollowUps {
    fn new() -> Self {
        FollowUps {
            enabled: cfg!(target_os = "linux"),
            batch: Vec::with_capacity(BATCH),
            #[cfg(target_os = "linux")]
            keys: Default::default(),
            pending_until: None,
        }
    }

    /// Datagrams `range` of the batch went: the ones that asked for a
    /// timestamp took the next keys, in order.
    fn sent(&mut self, range: std::ops::Range<usize>, now: Instant) {
        for i in range {
            if let Some(Some(r)) = self.batch.get(i) {
                #[cfg(target_os = "linux")]
                self.keys.sent(*r);
                #[cfg(not(target_os = "linux"))]
                let _ = r;
                self.pending_until = Some(now + Duration::from_secs(1));
            }
        }
    }

    /// Read the error queue and hand each timestamp to its session.
    fn collect<T: WorkerIo>(
        &mut self,
        transport: &T,
        reflector: &mut Reflector,
        clock: &SystemClock,
        now: Instant,
    ) {
        match self.pending_until {
            Some(t) if now <= t => {}
            Some(_) => {
                self.pending_until = None;
                return;
            }
            None => return,
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let keys = &mut self.keys;
            let _ = stamp_net::txstamp::drain(transport.reply_fd().as_raw_fd(), |st| {
                if let Some(r) = keys.take(st.key) {
                    reflector.set_reply_transmit_time(r, st.time, st.source, clock);
                }
            });
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (transport, reflector, clock);
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

    fn send_due<T: WorkerIo>(
        &mut self,
        transport: &T,
        reflector: &Reflector,
        clock: &SystemClock,
        errors: &mut u64,
    ) {
        let now = Instant::now();
        for t in self.pending.iter_mut().filter(|t| t.next <= now) {
            reflector.restamp(&mut t.buf, clock);
            if let Err(e) =
                transport.send_batch(std::slice::from_ref(&t.buf), std::slice::from_ref(&t.meta))
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

/// Send a reply along an SRv6 segment list (RFC 9503 Return Path): the
/// SIDs are in the reply itself at `route`; a Segment Routing Header is
/// attached for this one datagram (`stamp_net::exthdr::send_with_srh`).
fn send_srv6<T: WorkerIo>(
    transport: &T,
    reply: &[u8],
    dst: SocketAddr,
    route: stamp_core::Srv6Route,
) -> Result<(), String> {
    let at = usize::from(route.offset);
    let sids: Vec<std::net::Ipv6Addr> = reply
        .get(at..at + 16 * usize::from(route.count))
        .ok_or("segment list outside the reply")?
        .chunks_exact(16)
        .map(|c| <[u8; 16]>::try_from(c).map(std::net::Ipv6Addr::from))
        .collect::<Result<_, _>>()
        .map_err(|_| "bad segment")?;
    let srh = stamp_net::exthdr::segment_routing_header(&sids).ok_or("bad segment list")?;
    let SocketAddr::V6(dst) = dst else {
        return Err(format!(
            "{dst}: an SRv6 return path needs an IPv6 destination"
        ));
    };
    stamp_net::exthdr::send_with_srh(transport.reply_fd(), reply, dst, &srh)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// IPv6 link-local (fe80::/10): only reachable through a given interface.
fn link_local(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
        std::net::IpAddr::V4(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::group_by_peer;
    use stamp_core::transport::SendMeta;
    use std::net::SocketAddr;

    #[test]
    fn replies_to_one_peer_come_together_in_their_order() {
        let a: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:1000".parse().unwrap();
        let c: SocketAddr = "[2001:db8::3]:1000".parse().unwrap();
        let order = [a, b, a, c, b, a, c, a];
        let mut metas: Vec<SendMeta> = order.iter().map(|d| SendMeta::new(44, *d)).collect();
        let mut bufs: Vec<Box<[u8]>> = (0..8u8).map(|i| vec![i; 4].into_boxed_slice()).collect();
        let mut follow: Vec<u8> = (0..8).collect();
        group_by_peer(&mut bufs, &mut metas, &mut follow);
        let dsts: Vec<SocketAddr> = metas.iter().map(|m| m.dst).collect();
        assert_eq!(dsts, [a, a, a, a, b, b, c, c]);
        // Each reply kept its buffer and its follow-up entry, and the
        // replies to one peer their order.
        let ids: Vec<u8> = bufs.iter().map(|b| b[0]).collect();
        assert_eq!(ids, [0, 2, 5, 7, 1, 4, 3, 6]);
        assert_eq!(follow, ids);
    }

    #[test]
    fn only_a_peer_that_comes_back_calls_for_regrouping() {
        use super::a_peer_comes_back;
        let m = |d: &[&str]| -> Vec<SendMeta> {
            d.iter()
                .map(|a| SendMeta::new(44, a.parse().unwrap()))
                .collect()
        };
        assert!(!a_peer_comes_back(&m(&[
            "192.0.2.1:1",
            "192.0.2.1:1",
            "192.0.2.1:1"
        ])));
        assert!(!a_peer_comes_back(&m(&[
            "192.0.2.1:1",
            "192.0.2.2:1",
            "[2001:db8::1]:1"
        ])));
        assert!(a_peer_comes_back(&m(&[
            "192.0.2.1:1",
            "192.0.2.2:1",
            "192.0.2.1:1"
        ])));
        assert!(a_peer_comes_back(&m(&[
            "[2001:db8::1]:7",
            "192.0.2.2:1",
            "[2001:db8::1]:7"
        ])));
    }

    #[test]
    fn an_already_grouped_batch_is_left_alone() {
        let a: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        let b: SocketAddr = "192.0.2.1:1001".parse().unwrap();
        let mut metas: Vec<SendMeta> = [a, a, b, b, b]
            .iter()
            .map(|d| SendMeta::new(44, *d))
            .collect();
        let mut bufs: Vec<Box<[u8]>> = (0..5u8).map(|i| vec![i; 4].into_boxed_slice()).collect();
        let mut follow: Vec<u8> = (0..5).collect();
        group_by_peer(&mut bufs, &mut metas, &mut follow);
        assert_eq!(follow, [0, 1, 2, 3, 4]);
        assert!(bufs.iter().enumerate().all(|(i, b)| b[0] == i as u8));
    }
}
