//! The load generator: sendmmsg(2) / recvmmsg(2) in batches on a connected
//! UDP socket, so that it can offer more than either server can reflect
//! (one datagram per syscall topped out near 90 000 pps on the 2-core
//! machine, below both servers).
//!
//! Two modes:
//! * closed loop ([`closed_loop`]): one thread per flow keeps up to `window`
//!   requests in flight, sends a batch whenever a batch fits in the window
//!   and blocks in recvmmsg when it does not (so it leaves the CPU to the
//!   server instead of spinning);
//! * open loop ([`open_loop`]): batches paced to a fixed offered rate, or
//!   back to back ("as fast as possible"), replies counted by a second
//!   thread.
//!
//! Raw libc calls (and so `unsafe`), like the baseline echo: the point is to
//! spend as little as possible in the generator.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stamp_suite::pacing;

/// Datagrams per sendmmsg / recvmmsg call.
pub const BATCH: usize = 32;
/// Largest batch of the paced mode.
const MAX_PACED_BATCH: usize = 64;
/// Receive buffer per datagram (replies are at most 1400 octets here; a
/// longer one is truncated, which still counts as a reply).
const RX_BUF: usize = 2048;
/// A flow whose replies stop for this long writes its in-flight requests
/// off as lost.
const STALL: Duration = Duration::from_millis(20);

/// A UDP socket connected to `target`, 4 MiB buffers, a receive timeout.
pub fn client(target: SocketAddr) -> Result<UdpSocket, String> {
    let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    s.connect(target).map_err(|e| e.to_string())?;
    let r = socket2::SockRef::from(&s);
    let _ = r.set_recv_buffer_size(4 << 20);
    let _ = r.set_send_buffer_size(4 << 20);
    s.set_read_timeout(Some(STALL)).map_err(|e| e.to_string())?;
    Ok(s)
}

/// Sends requests from a set of templates in batches.
struct Sender {
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    next: usize,
}

impl Sender {
    fn new() -> Self {
        Sender {
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                MAX_PACED_BATCH
            ],
            // Safety: all-zero is a valid value of this plain C struct.
            hdrs: vec![unsafe { std::mem::zeroed() }; MAX_PACED_BATCH],
            next: 0,
        }
    }

    /// Send the next `n` (≤ [`MAX_PACED_BATCH`]) requests; returns how many
    /// the kernel took.
    fn send(&mut self, fd: i32, reqs: &[Vec<u8>], n: usize) -> io::Result<usize> {
        let n = n.min(MAX_PACED_BATCH);
        for i in 0..n {
            let r = &reqs[(self.next + i) % reqs.len()];
            // sendmmsg only reads the buffers.
            self.iovs[i] = libc::iovec {
                iov_base: r.as_ptr() as *mut libc::c_void,
                iov_len: r.len(),
            };
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = std::ptr::null_mut();
            h.msg_namelen = 0;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
        }
        let mut sent = 0;
        while sent < n {
            // Safety: the first `n` headers point at live iovecs describing
            // the request templates, which outlive the call; the socket is
            // connected, so no destination address is needed.
            let rc =
                unsafe { libc::sendmmsg(fd, self.hdrs[sent..].as_mut_ptr(), (n - sent) as u32, 0) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if sent == 0 {
                    return Err(e);
                }
                break;
            }
            if rc == 0 {
                break;
            }
            sent += rc as usize;
        }
        self.next = (self.next + sent) % reqs.len();
        Ok(sent)
    }
}

/// Receives replies in batches.
struct Receiver {
    _bufs: Vec<Box<[u8]>>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Receiver {
    fn new() -> Self {
        let mut bufs: Vec<Box<[u8]>> = (0..BATCH)
            .map(|_| vec![0u8; RX_BUF].into_boxed_slice())
            .collect();
        let mut iovs: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: RX_BUF,
            })
            .collect();
        // Safety: all-zero is a valid value of this plain C struct.
        let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BATCH];
        for (h, iov) in hdrs.iter_mut().zip(iovs.iter_mut()) {
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
        }
        Receiver {
            _bufs: bufs,
            iovs,
            hdrs,
        }
    }

    /// Receive up to [`BATCH`] replies. `wait`: block (up to the socket's
    /// receive timeout) for the first one; otherwise return at once.
    /// Returns 0 when nothing arrived.
    fn recv(&mut self, fd: i32, wait: bool) -> io::Result<usize> {
        for (h, iov) in self.hdrs.iter_mut().zip(self.iovs.iter_mut()) {
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_name = std::ptr::null_mut();
            h.msg_hdr.msg_namelen = 0;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
        }
        let flags = if wait {
            libc::MSG_WAITFORONE
        } else {
            libc::MSG_DONTWAIT
        };
        // Safety: the headers point at BATCH live iovecs, each describing a
        // live RX_BUF-octet buffer owned by `self`.
        let rc = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as u32,
                flags,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                // A reply-less ICMP error (server gone): nothing to count.
                io::ErrorKind::ConnectionRefused => Ok(0),
                _ => Err(e),
            };
        }
        Ok(rc as usize)
    }
}

/// What one run of the generator did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub sent: u64,
    pub received: u64,
}

/// Closed loop on `flows` sockets (one thread each) until `seconds` have
/// passed: each keeps up to `window` requests in flight.
pub fn closed_loop(
    target: SocketAddr,
    reqs: &[Vec<u8>],
    window: u64,
    flows: usize,
    seconds: f64,
) -> Result<Counts, String> {
    let sockets = (0..flows.max(1))
        .map(|_| client(target))
        .collect::<Result<Vec<_>, _>>()?;
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let results: Vec<Result<Counts, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = sockets
            .iter()
            .map(|sock| s.spawn(move || one_flow(sock, reqs, window, end)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("flow panicked".into())))
            .collect()
    });
    let mut total = Counts::default();
    for r in results {
        let c = r?;
        total.sent += c.sent;
        total.received += c.received;
    }
    Ok(total)
}

fn one_flow(
    sock: &UdpSocket,
    reqs: &[Vec<u8>],
    window: u64,
    end: Instant,
) -> Result<Counts, String> {
    let fd = sock.as_raw_fd();
    let batch = (BATCH as u64).min(window.max(1));
    let mut tx = Sender::new();
    let mut rx = Receiver::new();
    let (mut sent, mut received, mut written_off) = (0u64, 0u64, 0u64);
    let mut last_reply = Instant::now();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let in_flight = sent - received - written_off.min(sent - received);
        let room = window.saturating_sub(in_flight);
        if room >= batch {
            sent += tx
                .send(fd, reqs, batch as usize)
                .map_err(|e| e.to_string())? as u64;
        }
        // Block for replies only when no further batch fits in the window.
        let n = rx.recv(fd, room < 2 * batch).map_err(|e| e.to_string())? as u64;
        if n > 0 {
            received += n;
            last_reply = now;
        } else if now - last_reply > STALL {
            // Lost requests: stop waiting for them.
            written_off = sent - received;
            last_reply = now;
        }
    }
    Ok(Counts { sent, received })
}

/// Open loop: `pps` requests per second for `seconds` (0 = back to back,
/// as fast as the generator goes), in batches of at least 100 µs of
/// traffic (1 request every 100 µs at 10 000 pps, 10 per batch at 100 000,
/// 64 at most), then a 200 ms drain. Returns the counts and the send time.
pub fn open_loop(
    target: SocketAddr,
    reqs: &[Vec<u8>],
    pps: u64,
    seconds: f64,
) -> Result<(Counts, f64), String> {
    let sock = client(target)?;
    let fd = sock.as_raw_fd();
    let stop = AtomicBool::new(false);
    let got = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        let rx_thread = {
            let (stop, got) = (&stop, got.clone());
            s.spawn(move || {
                let mut rx = Receiver::new();
                while !stop.load(Ordering::Relaxed) {
                    match rx.recv(fd, true) {
                        Ok(n) => {
                            got.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        let mut tx = Sender::new();
        let t0 = Instant::now();
        let mut sent = 0u64;
        let result = if pps == 0 {
            let end = t0 + Duration::from_secs_f64(seconds);
            let mut r = Ok(());
            while Instant::now() < end {
                match tx.send(fd, reqs, BATCH) {
                    Ok(n) => sent += n as u64,
                    Err(e) => {
                        r = Err(e.to_string());
                        break;
                    }
                }
            }
            r
        } else {
            let batch = ((pps as f64 * 100e-6).ceil() as u64).clamp(1, MAX_PACED_BATCH as u64);
            let total = (pps as f64 * seconds) as u64;
            let interval = Duration::from_nanos(batch * 1_000_000_000 / pps);
            pacing::precise_timers();
            // Slot k is at t0 + k × interval and releases batch × (k + 1)
            // requests in all: a late wake-up sends what is due (in chunks
            // of at most MAX_PACED_BATCH), so the offered rate holds when
            // the generator shares its CPUs. Sleep only: no spinning, to
            // leave the CPUs to the server.
            let mut r = Ok(());
            let mut slot = 0u64;
            while sent < total {
                let at = t0 + Duration::from_nanos(slot * interval.as_nanos() as u64);
                let now = Instant::now();
                if at > now {
                    std::thread::sleep(at - now);
                }
                let elapsed_slots = (t0.elapsed().as_nanos() / interval.as_nanos().max(1)) as u64;
                slot = slot.max(elapsed_slots) + 1;
                let due = (slot * batch).min(total);
                while sent < due {
                    let n = ((due - sent) as usize).min(MAX_PACED_BATCH);
                    match tx.send(fd, reqs, n) {
                        Ok(k) => sent += k as u64,
                        Err(e) => {
                            r = Err(e.to_string());
                            break;
                        }
                    }
                }
                if r.is_err() {
                    break;
                }
            }
            r
        };
        let elapsed = t0.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        let _ = rx_thread.join();
        result.map(|()| {
            (
                Counts {
                    sent,
                    received: got.load(Ordering::Relaxed),
                },
                elapsed,
            )
        })
    })
}

/// The generator alone: back to back batches for `seconds` to a socket
/// that never reads (the kernel drops what overflows its queue, after doing
/// the delivery work). The offered rate the generator can reach.
pub fn capacity(reqs: &[Vec<u8>], seconds: f64) -> Result<f64, String> {
    let sink = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let target = sink.local_addr().map_err(|e| e.to_string())?;
    let sock = client(target)?;
    let fd = sock.as_raw_fd();
    let mut tx = Sender::new();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(seconds);
    let mut sent = 0u64;
    while Instant::now() < end {
        sent += tx.send(fd, reqs, BATCH).map_err(|e| e.to_string())? as u64;
    }
    Ok(sent as f64 / t0.elapsed().as_secs_f64())
}
