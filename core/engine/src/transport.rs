//! The datagram transport the drivers run the state machines over.
//!
//! Batch-shaped from the start: one call moves a slice of buffers with a
//! slice of metadata, so recvmmsg/sendmmsg and kernel timestamps fit. What a
//! transport can observe (TTL, TOS, destination address, timestamp kind) is
//! queried through [`TransportCapabilities`], not assumed.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::clock::{TimestampSource, UnixNanos};

/// What a transport reports about each received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    /// Datagram length (octets in the buffer).
    pub len: usize,
    /// Source address and port.
    pub src: SocketAddr,
    /// Local address the datagram was sent to (IP_PKTINFO / IPV6_PKTINFO).
    pub dst: Option<IpAddr>,
    /// Local port the datagram arrived on.
    pub dst_port: u16,
    /// Interface index it arrived on (0 = unknown).
    pub ifindex: u32,
    /// IPv4 TTL / IPv6 Hop Limit as received.
    pub ttl: Option<u8>,
    /// IPv4 TOS / IPv6 Traffic Class as received (DSCP << 2 | ECN).
    pub tos: Option<u8>,
    /// Receive time (CLOCK_REALTIME) and where it came from.
    pub rx_time: Option<(UnixNanos, TimestampSource)>,
    /// Octets of the received IP header (IPv4 header with options, or IPv6
    /// fixed header plus extension headers, up to the UDP header) that a
    /// transport seeing whole packets placed in the receive buffer right
    /// after the datagram: `buf[len..len + ip_header_len]`. 0 = not
    /// available (a UDP socket cannot see it). Read it with
    /// [`RecvMeta::ip_header`].
    pub ip_header_len: u16,
}

impl RecvMeta {
    /// Metadata with only the mandatory fields set.
    pub fn new(len: usize, src: SocketAddr) -> Self {
        RecvMeta {
            len,
            src,
            dst: None,
            dst_port: 0,
            ifindex: 0,
            ttl: None,
            tos: None,
            rx_time: None,
            ip_header_len: 0,
        }
    }

    /// The received IP header, when the transport stored one after the
    /// datagram in `buf` (the buffer this metadata describes).
    pub fn ip_header<'b>(&self, buf: &'b [u8]) -> Option<&'b [u8]> {
        if self.ip_header_len == 0 {
            return None;
        }
        buf.get(self.len..self.len + usize::from(self.ip_header_len))
    }
}

impl Default for RecvMeta {
    fn default() -> Self {
        RecvMeta::new(0, SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

/// How to send one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendMeta {
    /// Datagram length (octets of the buffer to send).
    pub len: usize,
    /// Destination.
    pub dst: SocketAddr,
    /// Source address to use (IP_PKTINFO), when the reply must come from the
    /// address the request was sent to.
    pub src: Option<IpAddr>,
    /// Interface to send on (0 = let routing decide).
    pub ifindex: u32,
    /// IPv4 TOS / IPv6 Traffic Class for this datagram (None = socket default).
    pub tos: Option<u8>,
    /// Ask for a kernel transmit timestamp of this datagram (Linux:
    /// SO_TIMESTAMPING control message; read back from the error queue).
    pub tx_timestamp: bool,
}

impl SendMeta {
    /// Send `len` octets to `dst` with socket defaults.
    pub fn new(len: usize, dst: SocketAddr) -> Self {
        SendMeta {
            len,
            dst,
            src: None,
            ifindex: 0,
            tos: None,
            tx_timestamp: false,
        }
    }
}

impl Default for SendMeta {
    fn default() -> Self {
        SendMeta::new(0, SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

/// What a transport can observe and control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransportCapabilities {
    /// Received TTL / Hop Limit is reported.
    pub ttl: bool,
    /// Received TOS / Traffic Class is reported.
    pub tos: bool,
    /// Local destination address is reported.
    pub dst_addr: bool,
    /// Per-datagram TOS can be set on send.
    pub set_tos: bool,
    /// Per-datagram source address can be chosen on send.
    pub set_src: bool,
    /// Best receive timestamp source available.
    pub rx_timestamp: Option<TimestampSource>,
    /// Best transmit timestamp source available (reported after the fact).
    pub tx_timestamp: Option<TimestampSource>,
    /// The transport sees whole IP packets (raw socket).
    pub ip_header: bool,
}

/// A datagram transport. Futures are `Send` so drivers can run on any
/// runtime thread; the trait uses native `async fn` (no boxing per call).
pub trait Transport: Send + Sync {
    /// What this transport can do.
    fn capabilities(&self) -> TransportCapabilities;
    /// Bound local address.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Wait for at least one datagram, then fill as many buffers as are
    /// ready without waiting again. Returns the number filled; `metas[i]`
    /// describes `bufs[i]`.
    fn recv_batch(
        &self,
        bufs: &mut [Box<[u8]>],
        metas: &mut [RecvMeta],
    ) -> impl Future<Output = io::Result<usize>> + Send;
    /// Send `metas.len()` datagrams, `bufs[i][..metas[i].len]` each. Returns
    /// how many were handed to the kernel.
    fn send_batch(
        &self,
        bufs: &[Box<[u8]>],
        metas: &[SendMeta],
    ) -> impl Future<Output = io::Result<usize>> + Send;
}
