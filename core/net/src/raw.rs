//! Raw-socket transport for the reflector (feature `raw`; Linux; needs
//! CAP_NET_RAW): it receives whole IP packets, so TLV handlers can read the
//! received IPv4 header or IPv6 fixed and extension headers
//! (draft-ietf-ippm-stamp-ext-hdr), which a UDP socket never shows.
//!
//! # How
//!
//! * **Receive**: one `AF_PACKET` / `SOCK_DGRAM` socket for all protocols
//!   (packet(7)): every frame arrives without its link-layer header, that
//!   is as the IPv4 or IPv6 packet, with `sockaddr_ll` telling the protocol,
//!   the interface and the packet type. IPv6 needs this: an `AF_INET6` raw
//!   socket never hands over the IPv6 header (RFC 3542 §3). The packets are
//!   parsed with pnet's packet views (`pnet_packet`): IPv4 header, IPv6
//!   extension header chain, UDP header and checksum. Kept: unicast packets
//!   to this host (`PACKET_HOST`), UDP to the listening port (and address,
//!   when bound to one), checksum correct, not fragmented. The buffer is
//!   then rearranged in place (one rotation, no allocation) so the UDP
//!   payload comes first and the IP header right after it, as
//!   [`RecvMeta::ip_header`] expects.
//! * **Kernel filter**: a classic BPF program on the packet socket drops,
//!   in the kernel, everything but incoming (`PACKET_HOST`) IPv6 packets and
//!   IPv4 UDP to the listening port; what queued before it was attached is
//!   drained at bind time.
//! * **No double replies on loopback**: a packet socket also sees every
//!   packet the host sends (`PACKET_OUTGOING`); on `lo` each request shows
//!   up twice, once going out of the sender and once coming in. Only
//!   `PACKET_HOST` copies are kept, and our own replies never match anyway
//!   (their destination port is the sender's).
//! * **Send and no ICMP port unreachable**: a normal UDP socket
//!   ([`UdpTransport`]) stays bound to the listening address and port. The
//!   kernel therefore delivers the requests to a socket instead of
//!   answering them with ICMP port unreachable (RFC 1122 §4.1.3.1), and the
//!   replies leave from that socket: from the listening port, from the
//!   address the request was sent to (IP_PKTINFO), with the plan's TOS, TTL
//!   255, and a UDP checksum computed by the kernel. That socket is never
//!   read: a classic BPF program that drops everything is attached to it
//!   (SO_ATTACH_FILTER, socket(7)), so its receive queue stays empty
//!   instead of filling up with copies of the requests.
//! * One transport per reflector: every packet socket sees every packet, so
//!   several workers would each answer every request. The driver runs one
//!   worker with this transport.
//!
//! Receive timestamps: SO_TIMESTAMPNS on the packet socket (the kernel's
//! software receive time of the packet, as for the UDP transport).

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::udp::{self, UdpPacket};
use socket2::{Domain, Protocol, Socket, Type};
use stamp_core::clock::{TimestampSource, UnixNanos};
use stamp_core::transport::{RecvMeta, SendMeta, Transport, TransportCapabilities};
use tokio::io::unix::AsyncFd;

use crate::bpf::{attach, insn};
use crate::plain::{zeroed, Plain};
use crate::udp::{UdpOptions, UdpTransport};

// Safety: libc's sockaddr_ll is a #[repr(C)] struct of integers and an
// integer array.
unsafe impl Plain for libc::sockaddr_ll {}

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const UDP_HEADER: usize = 8;
/// Packets read per wake-up at most, matching or not, so a busy host cannot
/// keep one receive call going forever.
const MAX_READS_PER_CALL: usize = 256;

/// Why a packet seen by the packet socket was not handed on.
#[derive(Debug, Default)]
pub struct RawCounters {
    /// UDP to our port whose checksum was wrong.
    pub bad_checksum: AtomicU64,
    /// Fragments (IPv4 MF / offset, IPv6 Fragment header): not reassembled.
    pub fragments: AtomicU64,
    /// Longer than the receive buffer (which holds the IP and UDP headers
    /// too: the largest payload is the buffer less those).
    pub oversized: AtomicU64,
}

/// The raw-socket [`Transport`]; see the module documentation.
pub struct RawTransport {
    rx: AsyncFd<Socket>,
    udp: UdpTransport,
    local: SocketAddr,
    caps: TransportCapabilities,
    counters: RawCounters,
}

impl fmt::Debug for RawTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawTransport")
            .field("local", &self.local)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl RawTransport {
    /// Bind the UDP socket to `addr` (port 0 picks one) with `opts`, then
    /// open the packet socket. Needs CAP_NET_RAW (EPERM otherwise) and a
    /// tokio runtime.
    pub fn bind(addr: SocketAddr, opts: &UdpOptions) -> io::Result<Self> {
        let udp = UdpTransport::bind(addr, opts)?;
        drop_everything(udp.socket().as_fd())?;
        let local = udp.local_addr()?;
        let proto = Protocol::from(i32::from((libc::ETH_P_ALL as u16).to_be()));
        let rx = Socket::new(
            Domain::PACKET,
            Type::DGRAM.nonblocking().cloexec(),
            Some(proto),
        )
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("packet socket (the raw transport needs CAP_NET_RAW): {e}"),
            )
        })?;
        let _ = rx.set_recv_buffer_size(4 << 20);
        // PACKET_AUXDATA: tells whether a packet's checksum is still to be
        // computed (checksum offload on lo / veth), see recv_packet.
        set_int_option(rx.as_fd(), libc::SOL_PACKET, libc::PACKET_AUXDATA, 1)?;
        // Kernel receive timestamps for T2 (socket(7)); optional.
        let timestamps =
            set_int_option(rx.as_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1).is_ok();
        // Only incoming unicast IPv6, and IPv4 UDP to our port, wake us up.
        attach(
            rx.as_fd(),
            libc::SO_ATTACH_FILTER,
            &port_filter(local.port()),
        )?;
        // What queued before the filter was attached (the socket receives
        // from its creation on) passed no filter: drop it. The reflector
        // has not announced itself yet, so no request is lost.
        let mut scratch = [0u8; 64];
        while recv_packet(rx.as_raw_fd(), &mut scratch).is_ok() {}
        let udp_caps = udp.capabilities();
        let caps = TransportCapabilities {
            ttl: true,
            tos: true,
            dst_addr: true,
            set_tos: udp_caps.set_tos,
            set_src: udp_caps.set_src,
            rx_timestamp: timestamps.then_some(TimestampSource::Kernel),
            tx_timestamp: None,
            ip_header: true,
        };
        Ok(RawTransport {
            // Safety: a socket2 `Socket` owns its descriptor, which stays
            // open and the same until the `AsyncFd` (its owner) is dropped.
            rx: unsafe { AsyncFd::register(rx) }?,
            udp,
            local,
            caps,
            counters: RawCounters::default(),
        })
    }

    /// The bound UDP socket the replies leave from.
    pub fn reply_socket(&self) -> &UdpTransport {
        &self.udp
    }

    /// Packets refused after parsing (checksum, fragments, size).
    pub fn counters(&self) -> &RawCounters {
        &self.counters
    }

    /// Datagrams dropped for their size (the [`UdpTransport`] counter's
    /// counterpart).
    pub fn truncated(&self) -> u64 {
        self.counters.oversized.load(Ordering::Relaxed)
    }

    /// Read packets until the socket is empty, `bufs` is full or
    /// [`MAX_READS_PER_CALL`] reads were made. `WouldBlock` when nothing
    /// was kept and the socket is empty (so readiness is cleared).
    fn recv_some(
        &self,
        fd: RawFd,
        bufs: &mut [Box<[u8]>],
        metas: &mut [RecvMeta],
    ) -> io::Result<usize> {
        let want = bufs.len().min(metas.len());
        let mut kept = 0;
        for _ in 0..MAX_READS_PER_CALL {
            if kept == want {
                break;
            }
            let buf = &mut bufs[kept];
            let got = match recv_packet(fd, buf) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && kept > 0 => break,
                Err(e) => return Err(e),
            };
            let (n, sll) = (got.len, got.sll);
            if usize::from(sll.sll_pkttype) != usize::from(libc::PACKET_HOST) {
                continue;
            }
            let proto = u16::from_be(sll.sll_protocol);
            if n > buf.len() {
                // MSG_TRUNC reports the real length. The kernel filter let
                // through only IPv4 UDP to our port and IPv6: counted as
                // ours (a foreign IPv6 packet this large is unlikely).
                self.counters.oversized.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Some(found) = self.classify(proto, &buf[..n], got.skip_checksum) else {
                continue;
            };
            let meta = &mut metas[kept];
            *meta = found.meta;
            meta.ifindex = u32::try_from(sll.sll_ifindex).unwrap_or(0);
            meta.rx_time = got.rx_time.map(|t| (t, TimestampSource::Kernel));
            // Payload first, then the IP header (the UDP header after it is
            // left over and ignored).
            let end = found.payload_at + found.meta.len;
            buf[..end].rotate_left(found.payload_at);
            kept += 1;
        }
        if kept == 0 {
            // Only foreign packets so far; more may be queued. Report
            // nothing kept without clearing readiness: the caller tries
            // again.
            return Ok(0);
        }
        Ok(kept)
    }

    /// Is `pkt` (an IPv4 or IPv6 packet) a UDP datagram for us? Returns its
    /// metadata with `ip_header_len` set and where the payload starts.
    fn classify(&self, proto: u16, pkt: &[u8], skip_checksum: bool) -> Option<Found> {
        match proto {
            ETH_P_IP => self.classify_v4(pkt, skip_checksum),
            ETH_P_IPV6 => self.classify_v6(pkt, skip_checksum),
            _ => None,
        }
    }

    fn classify_v4(&self, pkt: &[u8], skip_checksum: bool) -> Option<Found> {
        let ip = Ipv4Packet::new(pkt)?;
        let hl = usize::from(ip.get_header_length()) * 4;
        let total = usize::from(ip.get_total_length());
        if ip.get_version() != 4
            || hl < 20
            || total < hl + UDP_HEADER
            || total > pkt.len()
            || ip.get_next_level_protocol() != IpNextHeaderProtocols::Udp
        {
            return None;
        }
        let (src, dst) = (ip.get_source(), ip.get_destination());
        let u = UdpPacket::new(&pkt[hl..total])?;
        if !self.for_us(IpAddr::V4(dst), u.get_destination()) {
            return None;
        }
        // MF set or a non-zero offset: a fragment (flags 0b001 = MF).
        if ip.get_flags() & 0b001 != 0 || ip.get_fragment_offset() != 0 {
            self.counters.fragments.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let ulen = usize::from(u.get_length());
        if ulen < UDP_HEADER || hl + ulen > total {
            return None;
        }
        let u = UdpPacket::new(&pkt[hl..hl + ulen])?;
        let sum = u.get_checksum();
        if !skip_checksum && sum != 0 && sum != udp::ipv4_checksum(&u, &src, &dst) {
            self.counters.bad_checksum.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let mut meta = RecvMeta::new(
            ulen - UDP_HEADER,
            SocketAddr::new(IpAddr::V4(src), u.get_source()),
        );
        meta.dst = Some(IpAddr::V4(dst));
        meta.dst_port = u.get_destination();
        meta.ttl = Some(ip.get_ttl());
        meta.tos = Some((ip.get_dscp() << 2) | ip.get_ecn());
        meta.ip_header_len = u16::try_from(hl).ok()?;
        self.own_reply_guard(&meta)?;
        Some(Found {
            meta,
            payload_at: hl + UDP_HEADER,
        })
    }

    fn classify_v6(&self, pkt: &[u8], skip_checksum: bool) -> Option<Found> {
        let ip = Ipv6Packet::new(pkt)?;
        let end = 40 + usize::from(ip.get_payload_length());
        if ip.get_version() != 6 || end > pkt.len() {
            return None;
        }
        // Walk the extension headers (RFC 8200 §4) to the UDP header.
        let mut next = ip.get_next_header().0;
        let mut off = 40;
        loop {
            match next {
                17 => break,
                44 => {
                    // Fragment header: not reassembled here.
                    self.counters.fragments.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                0 | 43 | 60 | 51 | 135 | 139 | 140 | 253 | 254 => {
                    let h = pkt.get(off..off + 2)?;
                    let len = if next == 51 {
                        (usize::from(h[1]) + 2) * 4
                    } else {
                        (usize::from(h[1]) + 1) * 8
                    };
                    next = h[0];
                    off += len;
                    if off > end {
                        return None;
                    }
                }
                _ => return None,
            }
        }
        let (src, dst) = (ip.get_source(), ip.get_destination());
        let u = UdpPacket::new(pkt.get(off..end)?)?;
        if !self.for_us(IpAddr::V6(dst), u.get_destination()) {
            return None;
        }
        let ulen = usize::from(u.get_length());
        if ulen < UDP_HEADER || off + ulen > end {
            return None;
        }
        let u = UdpPacket::new(&pkt[off..off + ulen])?;
        // IPv6 UDP checksums are mandatory (RFC 8200 §8.1).
        if !skip_checksum && u.get_checksum() != udp::ipv6_checksum(&u, &src, &dst) {
            self.counters.bad_checksum.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let mut meta = RecvMeta::new(
            ulen - UDP_HEADER,
            SocketAddr::new(IpAddr::V6(src), u.get_source()),
        );
        meta.dst = Some(IpAddr::V6(dst));
        meta.dst_port = u.get_destination();
        meta.ttl = Some(ip.get_hop_limit());
        meta.tos = Some(ip.get_traffic_class());
        meta.ip_header_len = u16::try_from(off).ok()?;
        self.own_reply_guard(&meta)?;
        Some(Found {
            meta,
            payload_at: off + UDP_HEADER,
        })
    }

    /// Destination port ours, and the address too when bound to one (a
    /// wildcard bind takes any address the host accepted as its own:
    /// `PACKET_HOST`). A dual-stack `[::]` bind takes IPv4 too; an IPv4
    /// bind takes no IPv6.
    fn for_us(&self, dst: IpAddr, port: u16) -> bool {
        if port != self.local.port() {
            return false;
        }
        match self.local.ip() {
            IpAddr::V4(a) if a == Ipv4Addr::UNSPECIFIED => dst.is_ipv4(),
            IpAddr::V6(a) if a == Ipv6Addr::UNSPECIFIED => true,
            a => a.to_canonical() == dst.to_canonical(),
        }
    }

    /// A datagram from our own address and port to ourselves is one of our
    /// replies (a sender sharing the reflector's port on loopback): never
    /// reflect it.
    fn own_reply_guard(&self, meta: &RecvMeta) -> Option<()> {
        let own = meta.src.port() == self.local.port() && Some(meta.src.ip()) == meta.dst;
        (!own).then_some(())
    }
}

struct Found {
    meta: RecvMeta,
    payload_at: usize,
}

/// What recvmsg(2) on the packet socket tells about one packet.
struct Received {
    /// Real length (MSG_TRUNC: may exceed the buffer).
    len: usize,
    /// Link-level address: protocol, interface, packet type.
    sll: libc::sockaddr_ll,
    /// The UDP checksum is not computed yet (a locally sent packet on `lo`
    /// or `veth`: checksum offload, TP_STATUS_CSUMNOTREADY) or was already
    /// verified by the device (TP_STATUS_CSUM_VALID): do not check it.
    skip_checksum: bool,
    /// Kernel receive time (SO_TIMESTAMPNS), CLOCK_REALTIME.
    rx_time: Option<UnixNanos>,
}

/// Room for the PACKET_AUXDATA and SO_TIMESTAMPNS control messages.
#[repr(C, align(8))]
struct AuxBuf([u8; 128]);

/// One recvmsg(2) on the packet socket, with the PACKET_AUXDATA control
/// message (packet(7)) asked for in [`RawTransport::bind`].
fn recv_packet(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut sll: libc::sockaddr_ll = zeroed();
    let mut aux = AuxBuf([0; 128]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg: libc::msghdr = zeroed();
    msg.msg_name = std::ptr::addr_of_mut!(sll).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = aux.0.as_mut_ptr().cast();
    msg.msg_controllen = aux.0.len() as _;
    // Safety: every pointer in `msg` points at a live local (`sll`, `iov`
    // over `buf`, `aux`) valid for the lengths given; the kernel writes
    // within them.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT | libc::MSG_TRUNC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut skip_checksum = false;
    let mut rx_time = None;
    // Safety: `msg` was filled by recvmsg; CMSG_FIRSTHDR / CMSG_NXTHDR stay
    // within `msg_control[..msg_controllen]`; a PACKET_AUXDATA message's
    // data holds a tpacket_auxdata and an SCM_TIMESTAMPNS one a timespec
    // (both read unaligned, lengths checked).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let hdr = &*c;
            let want = libc::CMSG_LEN(std::mem::size_of::<libc::tpacket_auxdata>() as u32) as usize;
            if hdr.cmsg_level == libc::SOL_PACKET
                && hdr.cmsg_type == libc::PACKET_AUXDATA
                && hdr.cmsg_len as usize >= want
            {
                let a: libc::tpacket_auxdata = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                skip_checksum =
                    a.tp_status & (libc::TP_STATUS_CSUMNOTREADY | libc::TP_STATUS_CSUM_VALID) != 0;
            }
            let want_ts = libc::CMSG_LEN(std::mem::size_of::<libc::timespec>() as u32) as usize;
            if hdr.cmsg_level == libc::SOL_SOCKET
                && hdr.cmsg_type == libc::SO_TIMESTAMPNS
                && hdr.cmsg_len as usize >= want_ts
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                if let (Ok(sec), Ok(nsec)) = (u64::try_from(ts.tv_sec), u64::try_from(ts.tv_nsec)) {
                    rx_time = Some(UnixNanos(sec * 1_000_000_000 + nsec));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(Received {
        len: n as usize,
        sll,
        skip_checksum,
        rx_time,
    })
}

/// setsockopt(2) of one `int`.
fn set_int_option(fd: BorrowedFd<'_>, level: i32, name: i32, v: libc::c_int) -> io::Result<()> {
    // Safety: `v` is a live int for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::addr_of!(v).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The packet socket's kernel filter (filter.txt, "Linux Socket
/// Filtering"): keep `PACKET_HOST` packets that are IPv6 (any: the UDP
/// header's place depends on the extension headers, user space checks it)
/// or IPv4 UDP to `port` (offsets from the network header: a SOCK_DGRAM
/// packet socket has no link header). Everything else is dropped in the
/// kernel, so a busy host does not wake the reflector for foreign traffic.
/// User space checks everything again ([`RawTransport::classify`]).
fn port_filter(port: u16) -> Vec<libc::sock_filter> {
    use libc::{
        BPF_ABS, BPF_B, BPF_H, BPF_IND, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_LDX, BPF_MSH, BPF_RET,
    };
    let ad = |off: i32| (libc::SKF_AD_OFF + off) as u32;
    vec![
        /* 0 */ insn(BPF_LD | BPF_B | BPF_ABS, 0, 0, ad(libc::SKF_AD_PKTTYPE)),
        /* 1 */
        insn(
            BPF_JMP | BPF_JEQ | BPF_K,
            0,
            9,
            u32::from(libc::PACKET_HOST),
        ),
        /* 2 */ insn(BPF_LD | BPF_H | BPF_ABS, 0, 0, ad(libc::SKF_AD_PROTOCOL)),
        /* 3 */ insn(BPF_JMP | BPF_JEQ | BPF_K, 6, 0, u32::from(ETH_P_IPV6)),
        /* 4 */ insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 6, u32::from(ETH_P_IP)),
        /* 5 */ insn(BPF_LD | BPF_B | BPF_ABS, 0, 0, 9), // IPv4 protocol
        /* 6 */ insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 4, 17),
        /* 7 */ insn(BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0), // X = IHL * 4
        /* 8 */ insn(BPF_LD | BPF_H | BPF_IND, 0, 0, 2), // UDP destination port
        /* 9 */ insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, u32::from(port)),
        /* 10 */ insn(BPF_RET | BPF_K, 0, 0, 0x0004_0000), // accept
        /* 11 */ insn(BPF_RET | BPF_K, 0, 0, 0), // drop
    ]
}

/// Attach a classic BPF program that accepts nothing (one instruction:
/// `ret #0`) to `fd`.
fn drop_everything(fd: BorrowedFd<'_>) -> io::Result<()> {
    attach(
        fd,
        libc::SO_ATTACH_FILTER,
        &[insn(libc::BPF_RET | libc::BPF_K, 0, 0, 0)],
    )
}

impl Transport for RawTransport {
    fn capabilities(&self) -> TransportCapabilities {
        self.caps
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    async fn recv_batch(
        &self,
        bufs: &mut [Box<[u8]>],
        metas: &mut [RecvMeta],
    ) -> io::Result<usize> {
        if bufs.is_empty() || metas.is_empty() {
            return Ok(0);
        }
        loop {
            let mut guard = self.rx.readable().await?;
            let fd = self.rx.get_ref().as_raw_fd();
            match guard.try_io(|_| self.recv_some(fd, bufs, metas)) {
                Ok(Ok(0)) => tokio::task::yield_now().await,
                Ok(Ok(n)) => return Ok(n),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(e),
                // Nothing queued: readiness cleared, wait again.
                Err(_would_block) => continue,
            }
        }
    }

    async fn send_batch(&self, bufs: &[Box<[u8]>], metas: &[SendMeta]) -> io::Result<usize> {
        self.udp.send_batch(bufs, metas).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_packet(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        use pnet_packet::ipv4::MutableIpv4Packet;
        use pnet_packet::udp::MutableUdpPacket;
        let total = 20 + 8 + payload.len();
        let mut buf = vec![0u8; total];
        {
            let mut ip = MutableIpv4Packet::new(&mut buf).unwrap();
            ip.set_version(4);
            ip.set_header_length(5);
            ip.set_total_length(total as u16);
            ip.set_ttl(61);
            ip.set_dscp(46);
            ip.set_ecn(1);
            ip.set_next_level_protocol(IpNextHeaderProtocols::Udp);
            ip.set_source(src.into());
            ip.set_destination(dst.into());
        }
        let mut u = MutableUdpPacket::new(&mut buf[20..]).unwrap();
        u.set_source(sport);
        u.set_destination(dport);
        u.set_length((8 + payload.len()) as u16);
        u.set_payload(payload);
        let sum = udp::ipv4_checksum(&u.to_immutable(), &src.into(), &dst.into());
        u.set_checksum(sum);
        buf
    }

    impl RawTransport {
        fn classify_t(&self, proto: u16, pkt: &[u8]) -> Option<Found> {
            self.classify(proto, pkt, false)
        }
    }

    async fn transport() -> Option<RawTransport> {
        match RawTransport::bind("127.0.0.1:0".parse().unwrap(), &UdpOptions::default()) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => None,
            Err(e) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn classify_keeps_our_udp_and_refuses_the_rest() {
        let Some(t) = transport().await else {
            eprintln!("skipped: no CAP_NET_RAW");
            return;
        };
        let port = t.local.port();
        let ok = v4_packet([127, 0, 0, 2], [127, 0, 0, 1], 40000, port, b"hello");
        let f = t.classify_t(ETH_P_IP, &ok).expect("ours");
        assert_eq!(f.meta.len, 5);
        assert_eq!(f.meta.src, "127.0.0.2:40000".parse().unwrap());
        assert_eq!(f.meta.ttl, Some(61));
        assert_eq!(f.meta.tos, Some((46 << 2) | 1));
        assert_eq!(f.meta.ip_header_len, 20);
        assert_eq!(f.payload_at, 28);
        // Other port, other address, bad checksum, fragment, truncated.
        let other = v4_packet([127, 0, 0, 2], [127, 0, 0, 1], 40000, port ^ 1, b"x");
        assert!(t.classify_t(ETH_P_IP, &other).is_none());
        let elsewhere = v4_packet([127, 0, 0, 2], [127, 0, 0, 9], 40000, port, b"x");
        assert!(t.classify_t(ETH_P_IP, &elsewhere).is_none());
        let mut bad = ok.clone();
        bad[30] ^= 1;
        assert!(t.classify_t(ETH_P_IP, &bad).is_none());
        assert_eq!(t.counters.bad_checksum.load(Ordering::Relaxed), 1);
        let mut frag = ok.clone();
        frag[6] = 0x20; // MF
        assert!(t.classify_t(ETH_P_IP, &frag).is_none());
        assert_eq!(t.counters.fragments.load(Ordering::Relaxed), 1);
        assert!(t.classify_t(ETH_P_IP, &ok[..25]).is_none());
        assert!(t.classify_t(ETH_P_IPV6, &ok).is_none());
        // Our own reply to a sender on our own port.
        let own = v4_packet([127, 0, 0, 1], [127, 0, 0, 1], port, port, b"x");
        assert!(t.classify_t(ETH_P_IP, &own).is_none());
    }

    #[tokio::test]
    async fn kernel_filter_lets_through_only_incoming_ipv4_udp_to_our_port() {
        let Some(t) = transport().await else {
            eprintln!("skipped: no CAP_NET_RAW");
            return;
        };
        let port = t.local.port();
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // Foreign: another port (its outgoing and incoming copies, and the
        // ICMP error it causes), then ours.
        let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.send_to(b"foreign", other.local_addr().unwrap()).unwrap();
        s.send_to(b"ours", ("127.0.0.1", port)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let fd = t.rx.get_ref().as_raw_fd();
        let mut buf = vec![0u8; 2048];
        let mut ipv4 = Vec::new();
        while let Ok(got) = recv_packet(fd, &mut buf) {
            assert_eq!(
                got.sll.sll_pkttype,
                libc::PACKET_HOST,
                "outgoing copies are filtered"
            );
            if u16::from_be(got.sll.sll_protocol) == ETH_P_IP {
                ipv4.push(buf[28..got.len].to_vec());
            }
        }
        // (IPv6 from other tests on this host may pass: it is checked in
        // user space.) Exactly one IPv4 packet: ours, once.
        assert_eq!(ipv4, [b"ours".to_vec()]);
    }
}
