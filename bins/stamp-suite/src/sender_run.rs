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
use stamp_core::sender::{request_templates, ReplyEvent, SenderConfig, SenderSession, SenderStats};
use stamp_core::transport::{RecvMeta, Transport};
use stamp_net::{ClockOverrides, SystemClock, UdpOptions, UdpTransport};
use stamp_wire::MAX_DATAGRAM;
use tokio::sync::{watch, Notify};

use crate::metrics::{SenderMetrics, TargetMetrics};
use crate::report;

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
}

pub async fn run(s: &Settings, registry: Registry) -> Result<ExitCode, String> {
    if s.snmp && !crate::snmp::AVAILABLE {
        return Err(crate::snmp::NO_SNMP.to_string());
    }
    let templates = request_templates(&registry, &s.tlv_options)?;
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
        first_seq: 0,
        assume_synchronized: s.clock_synchronized == Some(true),
    };
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
    let mut tasks = tokio::task::JoinSet::new();
    for (i, target) in targets.iter().copied().enumerate() {
        let session = SenderSession::new(config.clone(), registry.clone(), templates.clone())?;
        let (plan, clock, shutdown) = (plan.clone(), clock.clone(), shutdown.clone());
        let metrics = metrics.as_ref().map(|m| m.target(i));
        tasks.spawn(async move {
            run_target(target, session, plan, clock, shutdown, metrics)
                .await
                .map(|st| (target, st))
        });
    }
    let mut results = Vec::new();
    while let Some(r) = tasks.join_next().await {
        results.push(r.map_err(|e| e.to_string())??);
    }
    results.sort_by_key(|(t, _)| targets.iter().position(|x| x == t));
    let mut any_reply = false;
    let stdout = std::io::stdout();
    for (target, st) in &results {
        any_reply |= st.received > 0;
        match plan.format {
            OutputFormat::Json => println!("{}", report::summary_json(*target, st)),
            // CSV keeps stdout machine-readable; the summary goes to stderr.
            OutputFormat::Csv => {
                report::summary_text(&mut std::io::stderr(), *target, plan.multi, st)
            }
            OutputFormat::Text => report::summary_text(&mut stdout.lock(), *target, plan.multi, st),
        }
    }
    let nothing_sent = results.iter().all(|(_, st)| st.sent == 0);
    Ok(if any_reply || nothing_sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
) -> Result<SenderStats, String> {
    let unspecified = if target.is_ipv6() {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let local = SocketAddr::new(
        plan.local_addr.unwrap_or(unspecified),
        plan.local_port.unwrap_or(0),
    );
    let opts = UdpOptions {
        // The socket default carries the DSCP / ECN of every request.
        tos: plan.tos,
        ..UdpOptions::default()
    };
    let transport =
        UdpTransport::bind(local, &opts).map_err(|e| format!("cannot bind {local}: {e}"))?;
    let mut session = session;
    session.set_remote(target);
    tracing::info!(%target, local = %transport.local_addr().map_err(|e| e.to_string())?, len = session.packet_len(), "sending");

    // The pacing thread sends through its own handle on the same socket
    // (a dup of the descriptor, non-blocking like the original).
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
        let (count, delay) = (plan.count, plan.delay);
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name(format!("pacing-{target}"))
            .spawn(move || {
                let m = metrics.as_deref();
                pace(
                    &session, &tx_socket, target, &clock, count, delay, &shared, m,
                )
            })
            .map_err(|e| format!("cannot start the pacing thread: {e}"))?
    };

    let mut rx: Vec<Box<[u8]>> = (0..RX_BATCH)
        .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
        .collect();
    let mut metas = vec![RecvMeta::default(); RX_BATCH];
    let stdout = std::io::stdout();
    let show = plan.per_packet || plan.format == OutputFormat::Csv;

    loop {
        let (deadline, outstanding) = {
            let s = lock(&session);
            // Counters published under the lock, so they never go backwards;
            // the receive task yields (and a scrape runs) only after this.
            if let Some(m) = &metrics {
                m.publish(s.stats());
            }
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
                        ReplyEvent::Matched(rec) if show => report::packet(&mut stdout.lock(), plan.format, target, plan.multi, &rec),
                        ReplyEvent::Matched(_) => {}
                        ReplyEvent::TrainReply(rec) if show => report::packet(&mut stdout.lock(), plan.format, target, plan.multi, &rec),
                        ReplyEvent::TrainReply(_) => {}
                        ReplyEvent::Duplicate(seq) => tracing::debug!(seq, "duplicate reply"),
                        ReplyEvent::Rejected(why) => tracing::debug!(?why, peer = %m.src, "reply rejected"),
                    }
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                let lost = lock(&session).expire(Instant::now());
                for seq in lost {
                    if show {
                        report::lost(&mut stdout.lock(), plan.format, target, plan.multi, seq);
                    }
                }
            }
        }
    }
    shared.stop.store(true, Ordering::Release);
    // The pacing thread notices within one short sleep (100 ms at most).
    let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
    let mut session = lock(&session);
    for seq in session.finish() {
        if show {
            report::lost(&mut stdout.lock(), plan.format, target, plan.multi, seq);
        }
    }
    if let Some(m) = &metrics {
        m.publish(session.stats());
    }
    let _ = stdout.lock().flush();
    Ok(session.stats().clone())
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

/// The pacing thread: at each slot of the schedule, build the request (T1
/// read inside, as late as possible) and send it.
#[allow(clippy::too_many_arguments)]
fn pace(
    session: &Mutex<SenderSession>,
    socket: &std::net::UdpSocket,
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
        let (len, was_quiet) = {
            let mut s = lock(session);
            let quiet = s.outstanding() == 0;
            let len = s.build_request(&mut buf, Instant::now(), clock);
            if let Some(m) = metrics {
                m.publish_sent(s.stats().sent);
            }
            (len, quiet)
        };
        send_now(socket, &buf[..len], target, &shared.stop);
        late_sent.record(slot, Instant::now());
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

/// Send one datagram on the non-blocking socket; when the kernel's buffer is
/// full, retry shortly (the packet is late rather than lost on our side).
fn send_now(socket: &std::net::UdpSocket, data: &[u8], target: SocketAddr, stop: &AtomicBool) {
    for _ in 0..1000 {
        match socket.send_to(data, target) {
            Ok(_) => return,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_micros(50));
            }
            Err(e) => {
                tracing::warn!(error = %e, %target, "send failed");
                return;
            }
        }
    }
    tracing::warn!(%target, "send buffer full, request dropped");
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
