//! A blocking variant of [`super::UdpTransport`] for a thread that does
//! nothing but move datagrams: the reflector's workers.
//!
//! Under load the async transport pays a readiness round trip per batch:
//! tokio's `async_io` tries recvmmsg(2), which ends in EAGAIN once the queue
//! is drained, goes back to epoll_wait(2), and the runtime polls its task
//! again. A blocking recvmmsg(2) with MSG_WAITFORONE sleeps in the socket's
//! own wait queue until a datagram comes and returns with what is queued:
//! one system call per batch, the way the baseline echo of stamp-bench
//! works. SO_RCVTIMEO bounds each wait (`wake_every`), so the thread looks
//! at its stop flag and timers that often even when no datagram comes; an
//! idle socket costs one wake-up per `wake_every`, no spinning.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stamp_core::transport::{RecvMeta, SendMeta, TransportCapabilities};

use super::{open_socket, UdpOptions};

/// A UDP socket in blocking mode with batched, bounded-time calls.
pub struct BlockingUdpTransport {
    socket: std::net::UdpSocket,
    local: SocketAddr,
    caps: TransportCapabilities,
    wake_every: Duration,
    truncated: AtomicU64,
    #[cfg(target_os = "linux")]
    batch: super::mmsg::Batch,
}

impl std::fmt::Debug for BlockingUdpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingUdpTransport")
            .field("local", &self.local)
            .field("caps", &self.caps)
            .field("wake_every", &self.wake_every)
            .finish_non_exhaustive()
    }
}

impl BlockingUdpTransport {
    /// Open a UDP socket bound to `addr` with `opts` (as
    /// [`super::UdpTransport::bind`]), in blocking mode, whose receive calls
    /// return after at most `wake_every` (at least 1 ms) without a datagram.
    pub fn bind(addr: SocketAddr, opts: &UdpOptions, wake_every: Duration) -> io::Result<Self> {
        let wake_every = wake_every.max(Duration::from_millis(1));
        let open = open_socket(addr, opts, false)?;
        open.socket.set_read_timeout(Some(wake_every))?;
        let socket: std::net::UdpSocket = open.socket.into();
        let local = socket.local_addr()?;
        Ok(BlockingUdpTransport {
            socket,
            local,
            caps: open.caps,
            wake_every,
            truncated: AtomicU64::new(0),
            #[cfg(target_os = "linux")]
            batch: super::mmsg::Batch::new(open.v6, open.fixed_dst, open.hardware, open.gso),
        })
    }

    /// What this transport reports and controls.
    pub fn capabilities(&self) -> TransportCapabilities {
        self.caps
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Datagrams dropped because they did not fit their receive buffer.
    pub fn truncated(&self) -> u64 {
        self.truncated.load(Ordering::Relaxed)
    }

    /// UDP segmentation offload on this transport's sends.
    pub fn gso(&self) -> super::GsoState {
        #[cfg(target_os = "linux")]
        return self.batch.gso_state();
        #[cfg(not(target_os = "linux"))]
        super::GsoState::default()
    }

    /// The std socket underneath.
    pub fn socket(&self) -> &std::net::UdpSocket {
        &self.socket
    }

    /// Wait for a datagram until `deadline` (at most `wake_every` from now,
    /// whichever comes first), then take every queued one that fits:
    /// `Ok(0)` when none came in time. `metas[i]` describes `bufs[i]`.
    pub fn recv_batch(
        &self,
        bufs: &mut [Box<[u8]>],
        metas: &mut [RecvMeta],
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        if bufs.is_empty() || metas.is_empty() {
            return Ok(0);
        }
        let now = Instant::now();
        let limit = now + self.wake_every;
        match deadline {
            // A timer is due before the socket's own timeout: wait for
            // readability no longer than that, then read without blocking.
            Some(d) if d < limit => {
                if !wait_readable(&self.socket, d.saturating_duration_since(now))? {
                    return Ok(0);
                }
                self.recv_once(bufs, metas, false)
            }
            _ => self.recv_once(bufs, metas, true),
        }
    }

    #[cfg(target_os = "linux")]
    fn recv_once(
        &self,
        bufs: &mut [Box<[u8]>],
        metas: &mut [RecvMeta],
        wait: bool,
    ) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let flags = if wait {
            libc::MSG_WAITFORONE
        } else {
            libc::MSG_DONTWAIT
        };
        let got = self.batch.recv(
            self.socket.as_raw_fd(),
            flags,
            self.local.port(),
            bufs,
            metas,
            &self.truncated,
        );
        match got {
            Ok(n) => Ok(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Portable fallback: one datagram per call, source address only.
    #[cfg(not(target_os = "linux"))]
    fn recv_once(
        &self,
        bufs: &mut [Box<[u8]>],
        metas: &mut [RecvMeta],
        wait: bool,
    ) -> io::Result<usize> {
        self.socket.set_nonblocking(!wait)?;
        match self.socket.recv_from(&mut bufs[0]) {
            Ok((len, src)) => {
                let mut meta = RecvMeta::new(len, super::unmap(src));
                meta.dst_port = self.local.port();
                metas[0] = meta;
                Ok(1)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Send `bufs[i][..metas[i].len]` in order, blocking while the socket's
    /// buffer is full; stops early on an error once some datagrams went
    /// (the count says how far it got).
    #[cfg(target_os = "linux")]
    pub fn send_batch(&self, bufs: &[Box<[u8]>], metas: &[SendMeta]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        if bufs.len() < metas.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "fewer buffers than send metadata",
            ));
        }
        let fd = self.socket.as_raw_fd();
        let mut sent = 0;
        while sent < metas.len() {
            match self.batch.send(fd, &bufs[sent..], &metas[sent..]) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) if sent > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    /// Portable fallback: one datagram per call, socket defaults.
    #[cfg(not(target_os = "linux"))]
    pub fn send_batch(&self, bufs: &[Box<[u8]>], metas: &[SendMeta]) -> io::Result<usize> {
        let v6 = self.local.is_ipv6();
        self.socket.set_nonblocking(false)?;
        for (i, meta) in metas.iter().enumerate() {
            let Some(data) = bufs.get(i).and_then(|b| b.get(..meta.len)) else {
                return if i > 0 {
                    Ok(i)
                } else {
                    Err(io::Error::from(io::ErrorKind::InvalidInput))
                };
            };
            if let Err(e) = self
                .socket
                .send_to(data, super::map_for_socket(meta.dst, v6))
            {
                return if i > 0 { Ok(i) } else { Err(e) };
            }
        }
        Ok(metas.len())
    }
}

/// poll(2) for readability for at most `timeout`; `false` when it ran out.
#[cfg(target_os = "linux")]
fn wait_readable(socket: &std::net::UdpSocket, timeout: Duration) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // Safety: one valid pollfd, a valid timespec, no signal mask.
    let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(rc > 0)
}

#[cfg(not(target_os = "linux"))]
fn wait_readable(socket: &std::net::UdpSocket, timeout: Duration) -> io::Result<bool> {
    socket.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
    let mut b = [0u8; 1];
    match socket.peek_from(&mut b) {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
