//! Receive timestamps under load (issue 4): T2 read in user space after
//! recvmmsg(2) returns, against T2 from the kernel (SO_TIMESTAMPING receive
//! software timestamp), in one run on the same datagrams.
//!
//! A sender thread sends sequence-numbered datagrams at a fixed rate over
//! loopback with kernel transmit timestamps (the error queue, keyed by
//! OPT_ID = sequence number); a receiver thread reads them in batches the
//! way the reflector does (blocking recvmmsg, 32 per call) and keeps for each
//! the kernel receive timestamp and the user-space clock reading taken right
//! after the call. On loopback the true one-way delay from the kernel's
//! transmit timestamp to its receive timestamp is a few µs of kernel code,
//! so the spread of (T2 − kernel TX) shows how much each way of taking T2
//! adds; (user T2 − kernel T2) is the error a user-space T2 carries.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stamp_core::transport::RecvMeta;
use stamp_net::{BlockingUdpTransport, UdpOptions};

/// Median, p99 and max of a set of differences, µs.
pub struct Spread {
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

fn spread(mut v: Vec<f64>) -> Spread {
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |x: f64| crate::quantile(&v, x);
    Spread {
        median: q(0.5),
        p99: q(0.99),
        max: v.last().copied().unwrap_or(f64::NAN),
    }
}

/// What one run measured.
pub struct Result {
    pub packets: usize,
    pub rate: u64,
    /// User-space T2 minus kernel T2.
    pub user_minus_kernel: Spread,
    /// Kernel T2 minus kernel TX timestamp.
    pub kernel_from_tx: Spread,
    /// User-space T2 minus kernel TX timestamp.
    pub user_from_tx: Spread,
}

fn realtime_ns() -> u64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_nanos() as u64
}

/// Send `count` datagrams at `rate` and compare the two T2s.
pub fn run(count: usize, rate: u64) -> std::result::Result<Result, String> {
    let rx = BlockingUdpTransport::bind(
        "127.0.0.1:0".parse().expect("literal"),
        &UdpOptions {
            recv_buffer: Some(4 << 20),
            ..UdpOptions::default()
        },
        Duration::from_millis(20),
    )
    .map_err(|e| e.to_string())?;
    if rx.capabilities().rx_timestamp.is_none() {
        return Err("no kernel receive timestamps on this system".into());
    }
    let target = rx.local_addr();
    let tx = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    tx.connect(target).map_err(|e| e.to_string())?;
    stamp_net::txstamp::set_socket_flags(
        tx.as_raw_fd(),
        stamp_net::txstamp::socket_flags(true, false),
    )
    .map_err(|e| format!("SO_TIMESTAMPING on the sender: {e}"))?;

    let done = Arc::new(AtomicBool::new(false));
    let receiver = {
        let done = done.clone();
        std::thread::spawn(move || {
            const BATCH: usize = 32;
            let mut bufs: Vec<Box<[u8]>> = (0..BATCH)
                .map(|_| vec![0u8; 2048].into_boxed_slice())
                .collect();
            let mut metas = vec![RecvMeta::default(); BATCH];
            // (sequence number, kernel T2, user-space T2)
            let mut got: Vec<(u32, u64, u64)> = Vec::with_capacity(count);
            while got.len() < count && !done.load(Ordering::Relaxed) {
                let n = rx.recv_batch(&mut bufs, &mut metas, None).unwrap_or(0);
                let user = realtime_ns();
                for (b, m) in bufs.iter().zip(&metas).take(n) {
                    if let (Some((k, _)), true) = (m.rx_time, m.len >= 4) {
                        let seq = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                        got.push((seq, k.0, user));
                    }
                }
            }
            got
        })
    };

    // Paced in batches of 100 µs of traffic, on an absolute schedule.
    let per_batch = ((rate / 10_000).max(1)) as usize;
    let period = Duration::from_nanos(per_batch as u64 * 1_000_000_000 / rate.max(1));
    let mut tx_times = vec![0u64; count];
    let mut payload = [0u8; 44];
    let start = Instant::now();
    let mut next = start;
    let mut sent = 0usize;
    let fd = tx.as_raw_fd();
    let collect = |tx_times: &mut Vec<u64>| {
        let _ = stamp_net::txstamp::drain(fd, |s| {
            if let Some(slot) = tx_times.get_mut(s.key as usize) {
                *slot = s.time.0;
            }
        });
    };
    while sent < count {
        for _ in 0..per_batch.min(count - sent) {
            payload[..4].copy_from_slice(&(sent as u32).to_be_bytes());
            if tx.send(&payload).is_err() {
                // A failed send gives its OPT_ID key back; stop rather than
                // mismatch keys and sequence numbers.
                done.store(true, Ordering::Relaxed);
                return Err("send failed".into());
            }
            sent += 1;
        }
        collect(&mut tx_times);
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    collect(&mut tx_times);
    done.store(true, Ordering::Relaxed);
    let got = receiver.join().map_err(|_| "receiver panicked")?;
    let (mut umk, mut kft, mut uft) = (Vec::new(), Vec::new(), Vec::new());
    for &(seq, k, u) in &got {
        umk.push((u as i64 - k as i64) as f64 / 1000.0);
        if let Some(&t) = tx_times.get(seq as usize).filter(|&&t| t != 0) {
            kft.push((k as i64 - t as i64) as f64 / 1000.0);
            uft.push((u as i64 - t as i64) as f64 / 1000.0);
        }
    }
    if kft.len() < count / 2 {
        return Err(format!(
            "only {} of {count} datagrams had both timestamps",
            kft.len()
        ));
    }
    Ok(Result {
        packets: got.len(),
        rate,
        user_minus_kernel: spread(umk),
        kernel_from_tx: spread(kft),
        user_from_tx: spread(uft),
    })
}
