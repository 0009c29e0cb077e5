//! The reflector driver: receive a batch, run each request through the
//! sans-I/O [`Reflector`], send the replies as one batch.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use stamp_config::{OutputFormat, Settings};
use stamp_core::clock::TimestampSource;
use stamp_core::hmac::HmacKey;
use stamp_core::reflector::{DropReason, Outcome, Reflector, ReflectorConfig, ReflectorStats};
use stamp_core::registry::Registry;
use stamp_core::transport::{RecvMeta, SendMeta, Transport};
use stamp_net::{ClockOverrides, SystemClock, UdpOptions, UdpTransport};
use stamp_wire::MAX_DATAGRAM;

/// Datagrams moved per system call.
const BATCH: usize = 32;

pub async fn run(s: &Settings, registry: Registry) -> Result<ExitCode, String> {
    let local = SocketAddr::new(
        s.local_addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        s.local_port.unwrap_or(862),
    );
    let opts = UdpOptions {
        recv_buffer: Some(4 << 20),
        send_buffer: Some(4 << 20),
        ..UdpOptions::default()
    };
    let transport =
        UdpTransport::bind(local, &opts).map_err(|e| format!("cannot listen on {local}: {e}"))?;
    let bound = transport.local_addr().map_err(|e| e.to_string())?;
    let clock = SystemClock::new(
        s.clock_format,
        ClockOverrides {
            synchronized: s.clock_synchronized,
            scale: s.error_scale,
            multiplier: s.error_multiplier,
        },
    );
    let config = ReflectorConfig {
        mode: s.auth_mode,
        stateful: s.stateful_reflector,
        session_timeout: s.session_timeout,
        max_sessions: s.max_sessions,
        tlv_mode: s.tlv_mode,
        verify_tlv_hmac: s.verify_tlv_hmac,
        key: s.hmac_key.as_deref().map(HmacKey::new),
        unknown_ttl: 255,
    };
    let mut reflector = Reflector::new(config, registry);
    tracing::info!(
        address = %bound,
        mode = ?s.auth_mode,
        stateful = s.stateful_reflector,
        clock = s.clock_format.name(),
        capabilities = ?transport.capabilities(),
        "reflector listening"
    );
    // Scripts and tests learn the port from this line when they ask for port 0.
    eprintln!("stamp reflector listening on {bound}");

    let mut shutdown = crate::shutdown::signal();
    let started = Instant::now();
    let mut rx_bufs: Vec<Box<[u8]>> = (0..BATCH)
        .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
        .collect();
    let mut rx_meta = vec![RecvMeta::default(); BATCH];
    let mut tx_bufs: Vec<Box<[u8]>> = (0..BATCH)
        .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
        .collect();
    let mut tx_meta: Vec<SendMeta> = Vec::with_capacity(BATCH);
    let mut expiry = tokio::time::interval(Duration::from_secs(1));
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut send_errors = 0u64;

    loop {
        let n = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            _ = expiry.tick() => {
                reflector.expire_sessions(Instant::now());
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
                    m.ifindex = if plan.src.is_some() { meta.ifindex } else { 0 };
                    m.tos = plan.tos;
                    tx_meta.push(m);
                }
                Outcome::Drop(reason) => {
                    tracing::debug!(peer = %meta.src, reason = reason.label(), "request dropped");
                }
            }
        }
        if !tx_meta.is_empty() {
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
        }
    }

    let stats = *reflector.stats();
    print_summary(
        s,
        &stats,
        reflector.sessions().len(),
        started.elapsed(),
        send_errors,
        transport.truncated(),
    );
    Ok(ExitCode::SUCCESS)
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
            "Sessions: created {} expired {} active {}",
            st.sessions_created, st.sessions_expired, active
        );
    }
    if send_errors > 0 || truncated > 0 {
        println!("Send errors: {send_errors}, oversized datagrams dropped: {truncated}");
    }
    println!("Uptime: {:.3} s", elapsed.as_secs_f64());
}
