//! The sender driver: per target, a pacing thread that sends the requests on
//! a precise schedule, and a task that receives replies and times out lost
//! packets.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use stamp_config::{OutputFormat, Settings};
use stamp_core::clock::{Clock, TimestampSource};
use stamp_core::hmac::HmacKey;
use stamp_core::registry::Registry;
use stamp_core::sender::{
    request_templates, ReplyEvent, SenderConfig, SenderSession, SenderStats, ZeroSsidPolicy,
};
use stamp_core::transport::{RecvMeta, Transport};
use stamp_net::{ClockOverrides, SystemClock, UdpOptions, UdpTransport};
use stamp_wire::MAX_DATAGRAM;
use tokio::sync::{watch, Notify};

use crate::console::Console;
use crate::metrics::{SenderMetrics, TargetMetrics};
use crate::plot::{self, PlotData};
use crate::report::{self, Kind};

use crate::pacing;

const RX_BATCH: usize = 16;

#[derive(Clone)]
struct Plan {
    count: u64,
    delay: Duration,
    local_addr: Option<IpAddr>,
    local_port: Option<u16>,
    tos: Option<u8>,
    format: OutputFormat,
    per_packet: bool,
    multi: bool,
    report_interval: Option<Duration>,
    histogram: bool,
    plot: bool,
    first_seq: u32,
    hwtstamp: stamp_config::HwTimestamping,
    dest_opt_len: Option<u16>,
}

pub async fn run(s: &Settings, registry: Registry) -> Result<ExitCode, String> {
    if s.snmp && !crate::snmp::AVAILABLE {
        return Err(crate::snmp::NO_SNMP.to_string());
    }
    let mut targets = Vec::new();
    for r in &s.remotes {
        let port = r.port.unwrap_or(s.remote_port);
        let host = r.host.trim_start_matches('[').trim_end_matches(']');
        let addr = match host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| format!("cannot resolve {host}: {e}"))?
                .next()
                .ok_or_else(|| format!("{host} has no address"))?,
        };
        targets.push(addr);
    }
    let tos = match (s.dscp, s.ecn) {
        (None, None) => None,
        (d, e) => Some((d.unwrap_or(0) << 2) | e.unwrap_or(0)),
    };
    let plan = Plan {
        count: s.count,
        delay: s.send_delay,
        local_addr: s.local_addr,
        local_port: s.local_port,
        tos,
        format: s.output_format,
        per_packet: s.per_packet,
        multi: targets.len() > 1,
        report_interval: s.report_interval,
        histogram: s.histogram,
        plot: s.plot.is_some(),
        first_seq: 0,
        hwtstamp: s.hwtstamp,
        dest_opt_len: s.ipv6_dest_opt_len,
    };
    let clock = Arc::new(SystemClock::new(
        s.clock_format,
        ClockOverrides {
            synchronized: s.clock_synchronized,
            scale: s.error_scale,
            multiplier: s.error_multiplier,
        },
    ));
    let config = SenderConfig {
        mode: s.auth_mode,
        ssid: s.ssid,
        key: s.hmac_key.as_deref().map(HmacKey::new),
        // On a sender, --verify-tlv-hmac adds the HMAC TLV to unauthenticated
        // requests and verifies the reflector's (RFC 8972 §4.8 asks for a
        // switch); authenticated mode adds it whenever TLVs are present.
        tlv_hmac: s.verify_tlv_hmac || s.tlv_options.flag("tlv-hmac"),
        timeout: s.timeout,
        first_seq: plan.first_seq,
        // One-way delays need the S bit in both Error Estimates: ours
        // (which --clock-synchronized sets) and the reflector's. Never
        // assumed for the reflector.
        assume_synchronized: false,
        zero_ssid: match s.zero_ssid {
            stamp_config::ZeroSsid::Continue => ZeroSsidPolicy::Continue,
            stamp_config::ZeroSsid::Stop => ZeroSsidPolicy::Stop,
        },
    };
    // A plot that cannot be written fails now, not after a long run.
    if let Some(path) = &s.plot {
        std::fs::File::create(path)
            .map_err(|e| format!("--plot: cannot create {}: {e}", path.display()))?;
    }
    if plan.format == OutputFormat::Csv {
        println!("{}", report::CSV_HEADER);
    }
    // Per target, labelled target="ADDR:PORT"; bound before any packet.
    // The SNMP sub-agent reads the same counters.
    let metrics = if s.metrics || s.snmp {
        let m = SenderMetrics::new(&targets);
        if s.metrics {
            crate::metrics::start(s.metrics_addr, m.clone()).await?;
        }
        if s.snmp {
            crate::snmp::start_sender(s, &targets, m.clone())?;
        }
        Some(m)
    } else {
        None
    };
    let shutdown = crate::shutdown::signal();
    let console = Arc::new(Console::new(
        s.count.saturating_mul(targets.len() as u64),
        targets.len(),
        true,
    ));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, target) in targets.iter().copied().enumerate() {
        // Per target: the reflected fixed header's length is the family's.
        let opts = crate::sender_ext::target_options(&s.tlv_options, target);
        let templates = request_templates(&registry, &opts)?;
        let templates = crate::sender_ext::order_templates(&registry, templates);
        let templates = crate::sender_ext::fit_path_mtu(
            &registry,
            &config,
            templates,
            target,
            plan.dest_opt_len,
        )?;
        let session = SenderSession::new(config.clone(), registry.clone(), templates.clone())?;
        let (plan, clock, shutdown) = (plan.clone(), clock.clone(), shutdown.clone());
        let metrics = metrics.as_ref().map(|m| m.target(i));
        let console = console.clone();
        tasks.spawn(async move {
            let out = Output {
                index: i,
                console,
                started,
            };
            run_target(target, session, plan, clock, shutdown, metrics, out)
                .await
                .map(|(st, plot)| (target, st, plot))
        });
    }
    let mut results = Vec::new();
    while let Some(r) = tasks.join_next().await {
        results.push(r.map_err(|e| e.to_string())??);
    }
    console.finish();
    results.sort_by_key(|(t, _, _)| targets.iter().position(|x| x == t));
    let mut any_reply = false;
    let print = |name: &str, kind: Kind, st: &SenderStats| match plan.format {
        OutputFormat::Json => {
            console.out(|w| {
                let _ = writeln!(
                    w,
                    "{}",
                    report::summary_json(name, kind, st, plan.histogram)
                );
            });
        }
        // CSV keeps stdout machine-readable; the summary goes to stderr.
        OutputFormat::Csv => {
            console.err(|w| report::summary_text(w, name, plan.multi, kind, st, plan.histogram))
        }
        OutputFormat::Text => {
            console.out(|w| report::summary_text(w, name, plan.multi, kind, st, plan.histogram))
        }
    };
    for (target, st, _) in &results {
        any_reply |= st.received > 0;
        print(&target.to_string(), Kind::Final, st);
    }
    if plan.multi {
        let mut total = SenderStats::default();
        for (_, st, _) in &results {
            total.merge(st);
        }
        print(
            "total",
            Kind::Total {
                targets: results.len(),
            },
            &total,
        );
    }
    if let Some(path) = &s.plot {
        let labels: Vec<String> = results
            .iter()
            .map(|(t, _, _)| {
                if plan.multi {
                    format!(" {t}")
                } else {
                    String::new()
                }
            })
            .collect();
        let series: Vec<plot::Series<'_>> = results
            .iter()
            .zip(&labels)
            .map(|((_, st, data), label)| plot::Series {
                label: label.clone(),
                data,
                rtt: &st.rtt,
                forward: &st.forward,
                backward: &st.backward,
            })
            .collect();
        plot::render(path, &series)?;
        tracing::info!(path = %path.display(), "plot written");
    }
    let nothing_sent = results.iter().all(|(_, st, _)| st.sent == 0);
    Ok(if any_reply || nothing_sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Where one target's task prints.
struct Output {
    index: usize,
    console: Arc<Console>,
    started: Instant,
}

/// One target: a dedicated pacing thread builds and sends the requests on
/// schedule (see [`pacing`]); this task receives the replies (tokio,
/// `async_io` readiness, so it sleeps in epoll while nothing arrives) and
/// times out lost packets. Both share the [`SenderSession`] through a mutex
/// held only for one `build_request` or one `on_reply`.
async fn run_target(
    target: SocketAddr,
    session: SenderSession,
    plan: Plan,
    clock: Arc<SystemClock>,
    mut shutdown: watch::Receiver<bool>,
    metrics: Option<Arc<TargetMetrics>>,
    out: Output,
) -> Result<(SenderStats, PlotData), String> {
    let unspecified = if target.is_ipv6() {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let local = SocketAddr::new(
        plan.local_addr.unwrap_or(unspecified),
        plan.local_port.unwrap_or(0),
    );
    let hardware = crate::hwts::decide(plan.hwtstamp, local.ip(), Some(target))?;
    let opts = UdpOptions {
        // The socket default carries the DSCP / ECN of every request.
        tos: plan.tos,
        // T1 from the kernel's (or NIC's) transmit timestamp of each request.
        tx_timestamps: true,
        hardware_timestamps: hardware,
        // Replies to a burst of requests can come back as a burst (a
        // reflector answers a batch at once): room for thousands, where the
        // system default holds some 250 small datagrams (capped by
        // net.core.rmem_max).
        recv_buffer: Some(4 << 20),
        ..UdpOptions::default()
    };
    let transport =
        UdpTransport::bind(local, &opts).map_err(|e| format!("cannot bind {local}: {e}"))?;
    crate::sender_ext::set_destination_options(&transport, plan.dest_opt_len, target)?;
    let mut session = session;
    session.set_remote(target);
    tracing::info!(%target, local = %transport.local_addr().map_err(|e| e.to_string())?, len = session.packet_len(), "sending");

    // The pacing thread sends through its own handle on the same socket
    // (a dup of the descriptor, non-blocking like the original).
    // Shared: the pacing thread records what it sent and reads the error
    // queue after each send; the receive task reads it again before it
    // handles replies, so a timestamp queued a little late still beats the
    // reply it belongs to.
    let tx_stamps = Arc::new(Mutex::new(TxStamps::new(
        transport.capabilities().tx_timestamp.is_some(),
    )));
    let tx_socket = {
        use std::os::fd::AsFd;
        let fd = transport
            .socket()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| format!("cannot share the socket with the pacing thread: {e}"))?;
        std::net::UdpSocket::from(fd)
    };
    let session = Arc::new(Mutex::new(session));
    let shared = Arc::new(PacingShared {
        stop: AtomicBool::new(false),
        done: AtomicBool::new(false),
        wake: Notify::new(),
    });
    let pacer = {
        let (session, shared, clock) = (session.clone(), shared.clone(), clock.clone());
        let tx_stamps = tx_stamps.clone();
        let (count, delay) = (plan.count, plan.delay);
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name(format!("pacing-{target}"))
            .spawn(move || {
                let m = metrics.as_deref();
                pace(
                    &session, &tx_socket, &tx_stamps, target, &clock, count, delay, &shared, m,
                )
            })
            .map_err(|e| format!("cannot start the pacing thread: {e}"))?
    };

    let mut rx: Vec<Box<[u8]>> = (0..RX_BATCH)
        .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
        .collect();
    let mut metas = vec![RecvMeta::default(); RX_BATCH];
    let show = plan.per_packet || plan.format == OutputFormat::Csv;
    let console = &*out.console;
    let mut plot_data = PlotData::default();
    // The plot's time zero: about when the pacing thread starts.
    let origin = report::realtime_now();
    // Time a lost packet was (about to be) sent: its slot in the schedule.
    let lost_at = |seq: u32| seq.wrapping_sub(plan.first_seq) as f64 * plan.delay.as_secs_f64();
    let mut interim = plan.report_interval.map(|d| {
        let mut i = tokio::time::interval_at((Instant::now() + d).into(), d);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut progress = console.has_bar().then(|| {
        let mut i = tokio::time::interval(Duration::from_millis(200));
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let print_packet = |rec: &stamp_core::sender::PacketRecord| {
        if show {
            console.out(|w| report::packet(w, plan.format, target, plan.multi, rec));
        }
        for c in &rec.path_changes {
            let f = plan.format;
            if f == OutputFormat::Csv {
                console.err(|w| report::path_change(w, OutputFormat::Text, target, plan.multi, c));
            } else {
                console.out(|w| report::path_change(w, f, target, plan.multi, c));
            }
        }
    };
    let print_lost = |seq: u32| {
        if show {
            console.out(|w| report::lost(w, plan.format, target, plan.multi, seq));
        }
    };

    loop {
        let (deadline, outstanding) = {
            let s = lock(&session);
            // Counters published under the lock, so they never go backwards;
            // the receive task yields (and a scrape runs) only after this.
            if let Some(m) = &metrics {
                m.publish(s.stats());
            }
            let st = s.stats();
            console.progress(out.index, st.sent, st.received, st.lost);
            (s.next_deadline(), s.outstanding())
        };
        if shared.done.load(Ordering::Acquire) && outstanding == 0 {
            break;
        }
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            // The pacing thread sent a first packet after a quiet spell (a
            // new deadline) or finished.
            _ = shared.wake.notified() => {}
            r = transport.recv_batch(&mut rx, &mut metas) => {
                let n = match r {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "receive failed");
                        continue;
                    }
                };
                let user_t4 = clock.now();
                {
                    use std::os::fd::AsFd;
                    lock_tx(&tx_stamps).collect(transport.socket().as_fd(), &session, &clock);
                }
                for i in 0..n {
                    let m = &metas[i];
                    let (t4, src) = match m.rx_time {
                        Some((t, src)) => (clock.from_realtime(t), src),
                        None => (user_t4, TimestampSource::UserSpace),
                    };
                    let event = lock(&session).on_reply(&rx[i][..m.len], m, t4, src, clock.error_estimate());
                    if let (Some(mx), ReplyEvent::Matched(rec)) = (&metrics, &event) {
                        mx.observe(rec);
                    }
                    match event {
                        ReplyEvent::Matched(rec) => {
                            if plan.plot {
                                let f = |x: Option<i64>| x.map(|v| v as f64 / 1e6);
                                plot_data.add(
                                    rec.t1.diff(origin) as f64 / 1e9,
                                    rec.rtt_ns as f64 / 1e6,
                                    f(rec.forward_ns),
                                    f(rec.backward_ns),
                                );
                            }
                            print_packet(&rec);
                        }
                        ReplyEvent::TrainReply(rec) => print_packet(&rec),
                        ReplyEvent::Duplicate(seq) => tracing::debug!(seq, "duplicate reply"),
                        ReplyEvent::Rejected(why) => tracing::debug!(?why, peer = %m.src, "reply rejected"),
                    }
                }
                // RFC 8972 §3, --zero-ssid stop: the reflector does not
                // know SSIDs; send nothing more, wait for what is in flight.
                if !shared.stop.load(Ordering::Relaxed) && lock(&session).stop_requested() {
                    shared.stop.store(true, Ordering::Release);
                    console.err(|w| {
                        let _ = writeln!(
                            w,
                            "{target}: the reflector returned SSID 0 (no RFC 8972 support): stopping (--zero-ssid stop)"
                        );
                    });
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                let lost = lock(&session).expire(Instant::now());
                for seq in lost {
                    if plan.plot {
                        plot_data.add_lost(lost_at(seq));
                    }
                    print_lost(seq);
                }
            }
            _ = tick(&mut interim), if interim.is_some() => {
                let st = lock(&session).stats().clone();
                let kind = Kind::Interim { elapsed_s: out.started.elapsed().as_secs_f64() };
                let name = target.to_string();
                match plan.format {
                    OutputFormat::Json => console.out(|w| {
                        let _ = writeln!(w, "{}", report::summary_json(&name, kind, &st, plan.histogram));
                    }),
                    OutputFormat::Csv => console.err(|w| report::summary_text(w, &name, plan.multi, kind, &st, plan.histogram)),
                    OutputFormat::Text => console.out(|w| report::summary_text(w, &name, plan.multi, kind, &st, plan.histogram)),
                }
            }
            _ = tick(&mut progress), if progress.is_some() => {}
        }
    }
    shared.stop.store(true, Ordering::Release);
    // The pacing thread notices within one short sleep (100 ms at most).
    let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
    let mut session = lock(&session);
    for seq in session.finish() {
        if plan.plot {
            plot_data.add_lost(lost_at(seq));
        }
        print_lost(seq);
    }
    if let Some(m) = &metrics {
        m.publish(session.stats());
    }
    let st = session.stats();
    console.progress(out.index, st.sent, st.received, st.lost);
    Ok((st.clone(), plot_data))
}

async fn tick(i: &mut Option<tokio::time::Interval>) {
    match i {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// What the receive task and the pacing thread share besides the session.
struct PacingShared {
    /// Raised by the receive task: stop sending.
    stop: AtomicBool,
    /// Raised by the pacing thread: every packet is sent.
    done: AtomicBool,
    /// Wakes the receive task (a new deadline, or done).
    wake: Notify,
}

fn lock(session: &Mutex<SenderSession>) -> MutexGuard<'_, SenderSession> {
    session.lock().unwrap_or_else(PoisonError::into_inner)
}

fn lock_tx(tx: &Mutex<TxStamps>) -> MutexGuard<'_, TxStamps> {
    tx.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The pacing thread: at each slot of the schedule, build the request (T1
/// read inside, as late as possible) and send it.
#[allow(clippy::too_many_arguments)]
fn pace(
    session: &Mutex<SenderSession>,
    socket: &std::net::UdpSocket,
    tx_stamps: &Mutex<TxStamps>,
    target: SocketAddr,
    clock: &SystemClock,
    count: u64,
    delay: Duration,
    shared: &PacingShared,
    metrics: Option<&TargetMetrics>,
) {
    pacing::precise_timers();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut pacer = pacing::Pacer::new(Instant::now(), delay, pacing::spin_from_env());
    let mut sent = 0u64;
    // Lateness when the request starts (T1 is read a few µs later), and
    // when the send system call has returned.
    let (mut late, mut late_sent) = (pacing::Lateness::default(), pacing::Lateness::default());
    while count == 0 || sent < count {
        let Some(slot) = pacer.wait(&shared.stop) else {
            break;
        };
        late.record(slot, Instant::now());
        let (len, seq, was_quiet) = {
            let mut s = lock(session);
            let quiet = s.outstanding() == 0;
            let seq = s.next_seq();
            let len = s.build_request(&mut buf, Instant::now(), clock);
            if let Some(m) = metrics {
                m.publish_sent(s.stats().sent);
            }
            (len, seq, quiet)
        };
        // The key is claimed before the send: the reply (and the receive
        // task's look at the error queue) can come before this thread runs
        // again.
        lock_tx(tx_stamps).sending(seq);
        let went = send_now(socket, &buf[..len], target, &shared.stop);
        late_sent.record(slot, Instant::now());
        {
            use std::os::fd::AsFd;
            let mut tx = lock_tx(tx_stamps);
            if !went {
                tx.not_sent();
            }
            tx.collect(socket.as_fd(), session, clock);
        }
        sent += 1;
        if was_quiet {
            shared.wake.notify_one();
        }
        pacer.advance();
    }
    shared.done.store(true, Ordering::Release);
    shared.wake.notify_one();
    // Against the schedule; stamp-bench reads this line (STAMP_LOG=info).
    tracing::info!(
        %target,
        packets = late.count(),
        late_median_us = late.quantile_us(0.5),
        late_p99_us = late.quantile_us(0.99),
        late_max_us = late.max_us(),
        sent_median_us = late_sent.quantile_us(0.5),
        sent_p99_us = late_sent.quantile_us(0.99),
        "pacing schedule"
    );
}

/// Kernel transmit timestamps of the requests (T1), read from the socket's
/// error queue after each send (`stamp_net::txstamp`): on loopback and with
/// most drivers the kernel queues it before `send` returns. A request whose
/// timestamp comes after its reply keeps its user-space T1.
struct TxStamps {
    enabled: bool,
    #[cfg(target_os = "linux")]
    keys: stamp_net::txstamp::KeyRing<u32>,
    #[cfg(target_os = "linux")]
    got: Vec<(u32, stamp_core::clock::UnixNanos, TimestampSource)>,
}

impl TxStamps {
    fn new(enabled: bool) -> Self {
        TxStamps {
            enabled,
            #[cfg(target_os = "linux")]
            keys: Default::default(),
            #[cfg(target_os = "linux")]
            got: Vec::with_capacity(64),
        }
    }

    /// Request `seq` is about to be sent: it gets the next OPT_ID key.
    fn sending(&mut self, seq: u32) {
        #[cfg(target_os = "linux")]
        if self.enabled {
            self.keys.sent(seq);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = seq;
    }

    /// The send announced by [`TxStamps::sending`] failed: the kernel gives
    /// the key back.
    fn not_sent(&mut self) {
        #[cfg(target_os = "linux")]
        if self.enabled {
            self.keys.unsent();
        }
    }

    /// Read what the error queue holds and correct T1 of those requests.
    fn collect(
        &mut self,
        socket: std::os::fd::BorrowedFd<'_>,
        session: &Mutex<SenderSession>,
        clock: &SystemClock,
    ) {
        #[cfg(target_os = "linux")]
        if self.enabled {
            use std::os::fd::AsRawFd;
            let (keys, got) = (&mut self.keys, &mut self.got);
            got.clear();
            let _ = stamp_net::txstamp::drain(socket.as_raw_fd(), |st| {
                // `get`, not `take`: a hardware timestamp of the same
                // datagram may follow the software one and replaces it.
                if let Some(seq) = keys.get(st.key) {
                    got.push((seq, clock.from_realtime(st.time), st.source));
                }
            });
            if !got.is_empty() {
                let mut s = lock(session);
                for &(seq, t1, source) in got.iter() {
                    s.set_transmit_time(seq, t1, source);
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (socket, session, clock);
    }
}

/// Send one datagram on the non-blocking socket; when the kernel's buffer is
/// full, retry shortly (the packet is late rather than lost on our side).
/// Returns whether it went.
fn send_now(
    socket: &std::net::UdpSocket,
    data: &[u8],
    target: SocketAddr,
    stop: &AtomicBool,
) -> bool {
    for _ in 0..1000 {
        match socket.send_to(data, target) {
            Ok(_) => return true,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
                std::thread::sleep(Duration::from_micros(50));
            }
            Err(e) => {
                tracing::warn!(error = %e, %target, "send failed");
                return false;
            }
        }
    }
    tracing::warn!(%target, "send buffer full, request dropped");
    false
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
