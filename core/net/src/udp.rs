//! UDP transport for STAMP test packets (RFC 8762 §4: STAMP runs over UDP,
//! port 862 by default).
//!
//! On Linux every call moves a batch with one system call, recvmmsg(2) or
//! sendmmsg(2), and each datagram carries its own control messages
//! (cmsg(3), ip(7), ipv6(7)): the received TTL / Hop Limit (the reflector
//! copies it into "Session-Sender TTL", RFC 8762 §4.3.1), TOS / Traffic Class
//! (Class of Service TLV, RFC 8972 §5.2), the local destination address
//! (replies leave from the address the request was sent to), and a kernel
//! receive timestamp (SO_TIMESTAMPING, Documentation/networking/timestamping.rst)
//! for T2 and T4. Elsewhere a small portable fallback moves one datagram per
//! call and reports the source address only.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicU64, Ordering};

use socket2::{Domain, Protocol, Socket, Type};
use stamp_core::transport::{RecvMeta, SendMeta, Transport, TransportCapabilities};
use tokio::net::UdpSocket;

mod blocking;
#[cfg(target_os = "linux")]
mod mmsg;

pub use blocking::BlockingUdpTransport;

/// How to open a [`UdpTransport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpOptions {
    /// Set SO_REUSEPORT, so several reflector processes can share a port
    /// (socket(7)).
    pub reuse_port: bool,
    /// SO_RCVBUF in octets (None = system default).
    pub recv_buffer: Option<usize>,
    /// SO_SNDBUF in octets (None = system default).
    pub send_buffer: Option<usize>,
    /// Default IPv4 TOS / IPv6 Traffic Class (DSCP << 2 | ECN) of outgoing
    /// datagrams; [`SendMeta::tos`] overrides it per datagram.
    pub tos: Option<u8>,
    /// Unicast TTL / Hop Limit of outgoing datagrams (IP_TTL,
    /// IPV6_UNICAST_HOPS). The default is 255, so a peer can count the hops
    /// from the TTL it receives (RFC 8762 §4.3.1, RFC 5357 §4.2.1); `None`
    /// keeps the system default (usually 64).
    pub ttl: Option<u8>,
    /// IPV6_V6ONLY for an IPv6 socket. `None` = false: a wildcard `[::]` bind
    /// also serves IPv4 (dual stack, ipv6(7)), and IPv4 peers show up as
    /// plain IPv4 addresses.
    pub v6_only: Option<bool>,
    /// Ask the kernel for software receive timestamps (SO_TIMESTAMPING with
    /// SOF_TIMESTAMPING_RX_SOFTWARE, falling back to SO_TIMESTAMPNS).
    pub kernel_timestamps: bool,
    /// Also ask for a kernel transmit timestamp of every datagram sent
    /// (SOF_TIMESTAMPING_TX_SOFTWARE with OPT_ID and OPT_TSONLY), to be read
    /// from the error queue with [`crate::txstamp::drain`] (Linux; needs
    /// `kernel_timestamps`).
    pub tx_timestamps: bool,
    /// Ask for NIC hardware timestamps too (the interface must have been
    /// switched on, [`crate::hwtstamp::enable`]); software ones remain the
    /// fallback per datagram.
    pub hardware_timestamps: bool,
    /// Send consecutive datagrams to one destination with the same size and
    /// control messages as one UDP_SEGMENT (GSO) message (udp(7), Linux
    /// 4.18): the kernel builds the headers of all of them in one pass
    /// through the stack. Off for good on a socket the first time the kernel
    /// refuses it.
    pub gso: bool,
}

/// UDP segmentation offload ([`UdpOptions::gso`]) on a transport's sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GsoState {
    /// Datagrams may still leave as trains: asked for, known to the kernel
    /// and not refused by it yet.
    pub active: bool,
    /// Datagrams sent so far as segments of trains.
    pub segmented: u64,
}

impl Default for UdpOptions {
    fn default() -> Self {
        UdpOptions {
            reuse_port: false,
            recv_buffer: None,
            send_buffer: None,
            tos: None,
            ttl: Some(255),
            v6_only: None,
            kernel_timestamps: true,
            tx_timestamps: false,
            hardware_timestamps: false,
            gso: true,
        }
    }
}

/// A [`Transport`] over one UDP socket.
///
/// Receive buffers should be [`stamp_wire::MAX_DATAGRAM`] octets: a datagram
/// larger than its buffer is never handed on cut short, it is dropped and
/// counted in [`UdpTransport::truncated`].
pub struct UdpTransport {
    socket: UdpSocket,
    local: SocketAddr,
    caps: TransportCapabilities,
    truncated: AtomicU64,
    #[cfg(target_os = "linux")]
    batch: mmsg::Batch,
}

impl fmt::Debug for UdpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpTransport")
            .field("local", &self.local)
            .field("caps", &self.caps)
            .field("truncated", &self.truncated())
            .finish_non_exhaustive()
    }
}

impl UdpTransport {
    /// Open a UDP socket bound to `addr` with `opts`, and register it with
    /// the tokio reactor (so it must be called within a tokio runtime).
    ///
    /// Options that were asked for explicitly (buffer sizes, TTL, TOS,
    /// SO_REUSEPORT) fail the call when the system refuses them; receive
    /// metadata the system cannot give is left out, and
    /// [`Transport::capabilities`] says what is there.
    pub fn bind(addr: SocketAddr, opts: &UdpOptions) -> io::Result<Self> {
        let open = open_socket(addr, opts, true)?;
        let socket = UdpSocket::from_std(open.socket.into())?;
        let local = socket.local_addr()?;
        Ok(UdpTransport {
            socket,
            local,
            caps: open.caps,
            truncated: AtomicU64::new(0),
            #[cfg(target_os = "linux")]
            batch: mmsg::Batch::new(open.v6, open.fixed_dst, open.hardware, open.gso),
        })
    }

    /// Datagrams dropped because they did not fit their receive buffer
    /// (MSG_TRUNC, recvmsg(2)), since the transport was opened.
    pub fn truncated(&self) -> u64 {
        self.truncated.load(Ordering::Relaxed)
    }

    /// UDP segmentation offload on this transport's sends.
    pub fn gso(&self) -> GsoState {
        #[cfg(target_os = "linux")]
        return self.batch.gso_state();
        #[cfg(not(target_os = "linux"))]
        GsoState::default()
    }

    /// The tokio socket underneath, for socket options this type does not
    /// cover. Reading or writing it directly bypasses the batching.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }
}

/// A bound socket with its options set, before it is handed to a runtime.
pub(crate) struct Opened {
    pub(crate) socket: Socket,
    pub(crate) caps: TransportCapabilities,
    pub(crate) v6: bool,
    /// The bound address when it is one address (not a wildcard).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fixed_dst: Option<IpAddr>,
    /// NIC hardware timestamps were asked for.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) hardware: bool,
    /// UDP_SEGMENT sends asked for and known to the kernel.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) gso: bool,
}

/// Open a UDP socket bound to `addr` with `opts` (see [`UdpTransport::bind`]).
pub(crate) fn open_socket(
    addr: SocketAddr,
    opts: &UdpOptions,
    nonblocking: bool,
) -> io::Result<Opened> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(nonblocking)?;
    // Restarting a reflector must not wait for old sockets to go away.
    socket.set_reuse_address(true)?;
    if opts.reuse_port {
        socket.set_reuse_port(true)?;
    }
    if let Some(size) = opts.recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(size) = opts.send_buffer {
        socket.set_send_buffer_size(size)?;
    }
    let v6 = addr.is_ipv6();
    let dual_stack = v6 && !opts.v6_only.unwrap_or(false);
    if v6 {
        // Set it either way: the system default (net.ipv6.bindv6only)
        // must not decide whether IPv4 peers are served.
        socket.set_only_v6(!dual_stack)?;
    }
    set_outgoing_defaults(&socket, v6, dual_stack, opts)?;
    // A socket bound to one address receives only datagrams sent to it.
    let fixed_dst = (!addr.ip().is_unspecified()).then(|| unmap(addr).ip());
    #[cfg(target_os = "linux")]
    let caps = mmsg::enable_recv_metadata(&socket, v6, dual_stack, opts, fixed_dst.is_some());
    #[cfg(not(target_os = "linux"))]
    let caps = TransportCapabilities::default();

    socket.bind(&addr.into())?;
    // With every datagram timestamped (a socket-wide transmit timestamp
    // request) the kernel would stamp only a train's last segment.
    let gso = opts.gso && !opts.tx_timestamps && gso_supported(&socket);
    Ok(Opened {
        socket,
        caps,
        v6,
        fixed_dst,
        hardware: opts.hardware_timestamps,
        gso,
    })
}

/// Whether the kernel knows UDP_SEGMENT (Linux 4.18): reading the option
/// fails with ENOPROTOOPT where it does not.
#[cfg(target_os = "linux")]
fn gso_supported(socket: &Socket) -> bool {
    use std::os::fd::AsRawFd;
    let mut size: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // Safety: a valid socket, and an int with its length for the kernel to
    // write into.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            103, // UDP_SEGMENT
            std::ptr::from_mut(&mut size).cast(),
            &mut len,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
fn gso_supported(_: &Socket) -> bool {
    false
}

/// IP_TTL / IPV6_UNICAST_HOPS and IP_TOS / IPV6_TCLASS (ip(7), ipv6(7)).
/// A dual-stack socket sends to IPv4 peers through the IPv4 code path, which
/// reads the IPv4 options, so it gets both; Linux accepts IPPROTO_IP options
/// on an AF_INET6 UDP socket.
#[cfg(target_os = "linux")]
fn set_outgoing_defaults(
    socket: &Socket,
    v6: bool,
    dual_stack: bool,
    opts: &UdpOptions,
) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    if let Some(ttl) = opts.ttl {
        let ttl = libc::c_int::from(ttl);
        if v6 {
            setsockopt(socket, sockopt::Ipv6Ttl, &ttl)?;
        }
        if !v6 || dual_stack {
            setsockopt(socket, sockopt::Ipv4Ttl, &ttl)?;
        }
    }
    if let Some(tos) = opts.tos {
        let tos = libc::c_int::from(tos);
        if v6 {
            setsockopt(socket, sockopt::Ipv6TClass, &tos)?;
        }
        if !v6 || dual_stack {
            setsockopt(socket, sockopt::Ipv4Tos, &tos)?;
        }
    }
    Ok(())
}

/// Portable subset: TTL / Hop Limit everywhere, TOS on IPv4 only.
#[cfg(not(target_os = "linux"))]
fn set_outgoing_defaults(
    socket: &Socket,
    v6: bool,
    _dual_stack: bool,
    opts: &UdpOptions,
) -> io::Result<()> {
    if let Some(ttl) = opts.ttl {
        if v6 {
            socket.set_unicast_hops_v6(u32::from(ttl))?;
        } else {
            socket.set_ttl_v4(u32::from(ttl))?;
        }
    }
    if let Some(tos) = opts.tos {
        if v6 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "traffic class needs Linux",
            ));
        }
        socket.set_tos_v4(u32::from(tos))?;
    }
    Ok(())
}

/// A peer address as reported: IPv4-mapped IPv6 addresses (RFC 4291
/// §2.5.5.2) as plain IPv4, so a dual-stack socket reports IPv4 peers the
/// way an IPv4 socket does.
pub(crate) fn unmap(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// A destination as the socket family needs it: IPv4 as v4-mapped on an
/// IPv6 socket, v4-mapped as plain IPv4 on an IPv4 socket.
pub(crate) fn map_for_socket(dst: SocketAddr, v6_socket: bool) -> SocketAddr {
    match (dst, v6_socket) {
        (SocketAddr::V4(a), true) => {
            SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
        }
        (SocketAddr::V6(_), false) => unmap(dst),
        _ => dst,
    }
}

impl Transport for UdpTransport {
    fn capabilities(&self) -> TransportCapabilities {
        self.caps
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Waits for readiness, then reads with `try_io`, so a spurious wake-up
    /// clears tokio's readiness flag instead of spinning (the 100% CPU trap
    /// of reading the raw fd after `readable()`).
    #[cfg(target_os = "linux")]
    async fn recv_batch(
        &self,
        bufs: &mut [Box<[u8]>],
        metas: &mut [RecvMeta],
    ) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        use tokio::io::Interest;
        if bufs.is_empty() || metas.is_empty() {
            return Ok(0);
        }
        let fd = self.socket.as_raw_fd();
        loop {
            // async_io waits for readiness and clears exactly the readiness
            // event it waited on when the read would block, so an idle
            // socket parks in epoll instead of spinning.
            let got = self
                .socket
                .async_io(Interest::READABLE, || {
                    self.batch
                        .recv(fd, 0, self.local.port(), bufs, metas, &self.truncated)
                })
                .await;
            match got {
                // Every datagram of this round was truncated and dropped.
                Ok(0) => continue,
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Portable fallback: one datagram per system call, source address only.
    #[cfg(not(target_os = "linux"))]
    async fn recv_batch(
        &self,
        bufs: &mut [Box<[u8]>],
        metas: &mut [RecvMeta],
    ) -> io::Result<usize> {
        let n = bufs.len().min(metas.len());
        let mut filled = 0;
        while filled < n {
            let got = if filled == 0 {
                self.socket.recv_from(&mut bufs[0]).await
            } else {
                self.socket.try_recv_from(&mut bufs[filled])
            };
            match got {
                Ok((len, src)) => {
                    let mut meta = RecvMeta::new(len, unmap(src));
                    meta.dst_port = self.local.port();
                    metas[filled] = meta;
                    filled += 1;
                }
                Err(e) if filled > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }

    /// Sends in order; stops early on an error once some datagrams were sent
    /// (the count says how far it got, the next call reports the error).
    #[cfg(target_os = "linux")]
    async fn send_batch(&self, bufs: &[Box<[u8]>], metas: &[SendMeta]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        use tokio::io::Interest;
        if bufs.len() < metas.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "fewer buffers than send metadata",
            ));
        }
        let fd = self.socket.as_raw_fd();
        let mut sent = 0;
        while sent < metas.len() {
            // Same readiness handling as recv_batch: async_io clears the
            // event it waited on when the kernel's buffer is full.
            let result = self
                .socket
                .async_io(Interest::WRITABLE, || {
                    self.batch.send(fd, &bufs[sent..], &metas[sent..])
                })
                .await;
            match result {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) if sent > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    /// Portable fallback: one datagram per system call, no per-datagram
    /// source address or TOS.
    #[cfg(not(target_os = "linux"))]
    async fn send_batch(&self, bufs: &[Box<[u8]>], metas: &[SendMeta]) -> io::Result<usize> {
        let v6 = self.local.is_ipv6();
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
                .send_to(data, map_for_socket(meta.dst, v6))
                .await
            {
                return if i > 0 { Ok(i) } else { Err(e) };
            }
        }
        Ok(metas.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn v4_mapped_peer_is_reported_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:862".parse().unwrap();
        assert_eq!(
            unmap(mapped),
            SocketAddr::from((Ipv4Addr::new(192, 0, 2, 7), 862))
        );
        let v6: SocketAddr = "[2001:db8::1]:862".parse().unwrap();
        assert_eq!(unmap(v6), v6);
    }

    #[test]
    fn ipv4_destination_is_mapped_on_a_v6_socket_only() {
        let v4 = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 7), 862));
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:862".parse().unwrap();
        assert_eq!(map_for_socket(v4, true), mapped);
        assert_eq!(map_for_socket(v4, false), v4);
        assert_eq!(map_for_socket(mapped, false), v4);
    }

    #[test]
    fn default_options_send_with_ttl_255_and_ask_for_kernel_timestamps() {
        let o = UdpOptions::default();
        assert_eq!(o.ttl, Some(255));
        assert!(o.kernel_timestamps);
        assert_eq!(o.v6_only, None);
    }
}
