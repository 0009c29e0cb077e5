//! The sender driver: one task per target, each pacing its requests,
//! receiving replies and timing out lost packets.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stamp_config::{OutputFormat, Settings};
use stamp_core::clock::{Clock, TimestampSource};
use stamp_core::hmac::HmacKey;
use stamp_core::registry::Registry;
use stamp_core::sender::{request_templates, ReplyEvent, SenderConfig, SenderSession, SenderStats};
use stamp_core::transport::{RecvMeta, SendMeta, Transport};
use stamp_net::{ClockOverrides, SystemClock, UdpOptions, UdpTransport};
use stamp_wire::MAX_DATAGRAM;
use tokio::sync::watch;

use crate::report;

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
    let shutdown = crate::shutdown::signal();
    let mut tasks = tokio::task::JoinSet::new();
    for target in targets.iter().copied() {
        let session = SenderSession::new(config.clone(), registry.clone(), templates.clone())?;
        let (plan, clock, shutdown) = (plan.clone(), clock.clone(), shutdown.clone());
        tasks.spawn(async move {
            run_target(target, session, plan, clock, shutdown)
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

async fn run_target(
    target: SocketAddr,
    mut session: SenderSession,
    plan: Plan,
    clock: Arc<SystemClock>,
    mut shutdown: watch::Receiver<bool>,
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
        tos: plan.tos,
        ..UdpOptions::default()
    };
    let transport =
        UdpTransport::bind(local, &opts).map_err(|e| format!("cannot bind {local}: {e}"))?;
    session.set_remote(target);
    tracing::info!(%target, local = %transport.local_addr().map_err(|e| e.to_string())?, len = session.packet_len(), "sending");

    let mut tx = vec![vec![0u8; MAX_DATAGRAM].into_boxed_slice()];
    let mut rx: Vec<Box<[u8]>> = (0..RX_BATCH)
        .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
        .collect();
    let mut metas = vec![RecvMeta::default(); RX_BATCH];
    let mut ticker = tokio::time::interval(plan.delay.max(Duration::from_micros(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sending = true;
    let mut sent = 0u64;
    let stdout = std::io::stdout();
    let show = plan.per_packet || plan.format == OutputFormat::Csv;

    loop {
        let deadline = session.next_deadline();
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
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
                    match session.on_reply(&rx[i][..m.len], m, t4, src, clock.error_estimate()) {
                        ReplyEvent::Matched(rec) if show => report::packet(&mut stdout.lock(), plan.format, target, plan.multi, &rec),
                        ReplyEvent::Matched(_) => {}
                        ReplyEvent::Duplicate(seq) => tracing::debug!(seq, "duplicate reply"),
                        ReplyEvent::Rejected(why) => tracing::debug!(?why, peer = %m.src, "reply rejected"),
                    }
                }
            }
            _ = ticker.tick(), if sending => {
                let len = session.build_request(&mut tx[0], Instant::now(), &*clock);
                let mut meta = SendMeta::new(len, target);
                meta.tos = plan.tos;
                if let Err(e) = transport.send_batch(&tx, &[meta]).await {
                    tracing::warn!(error = %e, %target, "send failed");
                }
                sent += 1;
                if plan.count != 0 && sent >= plan.count {
                    sending = false;
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                for seq in session.expire(Instant::now()) {
                    if show {
                        report::lost(&mut stdout.lock(), plan.format, target, plan.multi, seq);
                    }
                }
            }
        }
        if !sending && session.outstanding() == 0 {
            break;
        }
    }
    for seq in session.finish() {
        if show {
            report::lost(&mut stdout.lock(), plan.format, target, plan.multi, seq);
        }
    }
    let _ = stdout.lock().flush();
    Ok(session.stats().clone())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
