//! Linux batch I/O: recvmmsg(2) and sendmmsg(2), each datagram with its own
//! control messages (cmsg(3); ip(7) IP_PKTINFO, IP_TTL, IP_TOS; ipv6(7)
//! IPV6_PKTINFO, IPV6_HOPLIMIT, IPV6_TCLASS; socket(7) SO_TIMESTAMPING,
//! SO_TIMESTAMPNS).
//!
//! libc rather than nix for the two calls: nix's `MultiHeaders` does not
//! reset `msg_controllen` / `msg_namelen` between calls, so a reused header
//! set truncates later control messages, and its `sendmmsg` shares one set
//! of control messages across the batch, where a reflector needs a source
//! address and a TOS per reply. nix still sets the socket options.
//!
//! All headers, address slots and control buffers are allocated once per
//! transport (they grow if a caller passes a larger batch, then stay), so the
//! steady state allocates nothing per datagram.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use libc::{c_int, c_uint};
use socket2::{SockAddr, Socket};
use stamp_core::clock::{TimestampSource, UnixNanos};
use stamp_core::transport::{RecvMeta, SendMeta, TransportCapabilities};

use super::{map_for_socket, unmap};
use crate::plain::{zeroed, Plain};

/// Header slots allocated up front; a larger batch grows them once.
const INITIAL_SLOTS: usize = 64;
/// The kernel handles at most UIO_MAXIOV messages per call.
const MAX_BATCH: usize = 1024;

/// CMSG_SPACE(3): header plus padded payload.
const fn cmsg_space(payload: usize) -> usize {
    // Safety: CMSG_SPACE is arithmetic on its argument, nothing is read.
    unsafe { libc::CMSG_SPACE(payload as c_uint) as usize }
}

/// CMSG_LEN(3): header plus unpadded payload; CMSG_LEN(0) is the payload offset.
const fn cmsg_len(payload: usize) -> usize {
    // Safety: CMSG_LEN is arithmetic on its argument, nothing is read.
    unsafe { libc::CMSG_LEN(payload as c_uint) as usize }
}

/// Room for every control message a datagram can bring: both packet-info
/// kinds (a dual-stack socket gets both for IPv4 peers), TTL, TOS, Hop
/// Limit, Traffic Class and both timestamp kinds, plus slack for anything a
/// future kernel adds.
const RECV_CMSG_SPACE: usize = cmsg_space(size_of::<libc::in6_pktinfo>())
    + cmsg_space(size_of::<libc::in_pktinfo>())
    + 4 * cmsg_space(size_of::<c_int>())
    + cmsg_space(size_of::<[libc::timespec; 3]>())
    + cmsg_space(size_of::<libc::timespec>())
    + 64;

/// Room for what we send: one packet-info, one TOS / Traffic Class, one
/// SO_TIMESTAMPING request and one UDP_SEGMENT size.
const SEND_CMSG_SPACE: usize = cmsg_space(size_of::<libc::in6_pktinfo>())
    + cmsg_space(size_of::<c_int>())
    + cmsg_space(size_of::<u32>())
    + cmsg_space(size_of::<u16>());

/// udp(7) UDP_SEGMENT (Linux 4.18): not in libc's glibc bindings.
const UDP_SEGMENT: c_int = 103;
/// Segments of one UDP_SEGMENT send: the kernel's UDP_MAX_SEGMENTS (64
/// before Linux 6.9, 128 since).
const GSO_MAX_SEGMENTS: usize = 64;
/// Payload octets of one UDP_SEGMENT send: the datagram must fit the IP
/// length field with its headers.
const GSO_MAX_PAYLOAD: usize = 65_000;
/// Largest segment sent as part of a train: a 1500-octet Ethernet MTU less
/// the IPv6 and UDP headers. Larger replies go one by one (the kernel
/// refuses a segment above the path MTU, where a single datagram would be
/// fragmented instead).
const GSO_MAX_SEGMENT: usize = 1452;

// Checked at compile time: what we send fits, and buffers end on a cmsg boundary.
const _: () = assert!(
    SEND_CMSG_SPACE >= cmsg_space(size_of::<libc::in_pktinfo>()) + cmsg_space(size_of::<c_int>())
);
const _: () = assert!(RECV_CMSG_SPACE % size_of::<usize>() == 0);

/// A control buffer aligned for `cmsghdr` (the alignment of `size_t`).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct ControlBuf<const N: usize>([u8; N]);

/// Turn on the receive metadata (ip(7), ipv6(7), socket(7)) and say what
/// took. A refused option is logged at debug level and left out.
///
/// `fixed_dst` is set when the socket is bound to one address: every
/// datagram it receives was sent to that address, so IP_PKTINFO /
/// IPV6_PKTINFO are not asked for (one control message less for the kernel
/// to build per datagram) and the address is filled in from the bind.
pub(super) fn enable_recv_metadata(
    socket: &Socket,
    v6: bool,
    dual_stack: bool,
    opts: &super::UdpOptions,
    fixed_dst: bool,
) -> TransportCapabilities {
    use nix::sys::socket::{setsockopt, sockopt};
    use std::os::fd::AsRawFd;

    let on = |result: nix::Result<()>, option: &'static str| match result {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!(option, %error, "socket option refused");
            false
        }
    };
    let (mut ttl, mut tos, mut dst_addr) = (true, true, true);
    if v6 {
        ttl &= on(
            setsockopt(socket, sockopt::Ipv6RecvHopLimit, &true),
            "IPV6_RECVHOPLIMIT",
        );
        tos &= on(
            setsockopt(socket, sockopt::Ipv6RecvTClass, &true),
            "IPV6_RECVTCLASS",
        );
        if !fixed_dst {
            dst_addr &= on(
                setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true),
                "IPV6_RECVPKTINFO",
            );
        }
    }
    if !v6 || dual_stack {
        // On a dual-stack socket the IPv6 options report no TTL or TOS of
        // IPv4 peers; Linux delivers the IPv4 ones there too.
        ttl &= on(
            setsockopt(socket, sockopt::Ipv4RecvTtl, &true),
            "IP_RECVTTL",
        );
        tos &= on(setsockopt(socket, sockopt::IpRecvTos, &true), "IP_RECVTOS");
        if !fixed_dst {
            let pktinfo = on(
                setsockopt(socket, sockopt::Ipv4PacketInfo, &true),
                "IP_PKTINFO",
            );
            // A dual-stack socket reports IPv4 destinations through
            // IPV6_PKTINFO (v4-mapped) already.
            dst_addr &= pktinfo || v6;
        }
    }
    // One SO_TIMESTAMPING value covers receive and transmit timestamps.
    // OPT_ID and OPT_TSONLY are set either way (they only shape transmit
    // timestamps), so a per-datagram request later numbers from 0.
    let flags = crate::txstamp::socket_flags(opts.tx_timestamps, opts.hardware_timestamps);
    let timestamping = opts.kernel_timestamps
        && on(
            crate::txstamp::set_socket_flags(socket.as_raw_fd(), flags)
                .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))),
            "SO_TIMESTAMPING",
        );
    let rx_timestamp = timestamping
        || (opts.kernel_timestamps
            && on(
                setsockopt(socket, sockopt::ReceiveTimestampns, &true),
                "SO_TIMESTAMPNS",
            ));
    let tx_source = if opts.hardware_timestamps {
        TimestampSource::Hardware
    } else {
        TimestampSource::Kernel
    };
    TransportCapabilities {
        ttl,
        tos,
        dst_addr,
        set_tos: true,
        set_src: true,
        rx_timestamp: rx_timestamp.then_some(if timestamping && opts.hardware_timestamps {
            TimestampSource::Hardware
        } else {
            TimestampSource::Kernel
        }),
        tx_timestamp: (timestamping && opts.tx_timestamps).then_some(tx_source),
        ip_header: false,
    }
}

/// The preallocated state of one transport's batch calls.
pub(super) struct Batch {
    v6_socket: bool,
    /// The one local address of a socket bound to a specific address
    /// (IPv4-mapped shown as IPv4): reported as every datagram's
    /// destination without IP_PKTINFO, and a reply asking for it as source
    /// needs no IP_PKTINFO either (the bind already fixes it).
    fixed_dst: Option<IpAddr>,
    /// SOF_TIMESTAMPING_* record flags of a per-datagram transmit
    /// timestamp request ([`SendMeta::tx_timestamp`]).
    tx_record: u32,
    /// Consecutive replies to one peer with the same size and control
    /// messages leave as one UDP_SEGMENT (GSO) send. Cleared for good when
    /// the kernel refuses one for a reason no segment size avoids (EIO: no
    /// checksum offload on the route's device, IPsec; ENOPROTOOPT,
    /// EOPNOTSUPP: no support), or after [`GSO_MAX_REFUSALS`] refusals
    /// over the size.
    gso: AtomicBool,
    /// Largest segment still sent in trains: [`GSO_MAX_SEGMENT`], lowered
    /// below a size the kernel refused (EMSGSIZE, EINVAL: a segment above
    /// a path MTU lower than Ethernet's).
    max_segment: AtomicUsize,
    /// Refusals over the segment size so far.
    refusals: AtomicUsize,
    /// Datagrams that left as segments of a UDP_SEGMENT message.
    segmented: AtomicU64,
    recv: Mutex<RecvSlots>,
    send: Mutex<SendSlots>,
}

impl Batch {
    pub(super) fn new(
        v6_socket: bool,
        fixed_dst: Option<IpAddr>,
        hardware: bool,
        gso: bool,
    ) -> Self {
        let tx_record = if hardware {
            libc::SOF_TIMESTAMPING_TX_SOFTWARE | libc::SOF_TIMESTAMPING_TX_HARDWARE
        } else {
            libc::SOF_TIMESTAMPING_TX_SOFTWARE
        };
        Batch {
            v6_socket,
            fixed_dst,
            tx_record,
            gso: AtomicBool::new(gso),
            max_segment: AtomicUsize::new(GSO_MAX_SEGMENT),
            refusals: AtomicUsize::new(0),
            segmented: AtomicU64::new(0),
            recv: Mutex::new(RecvSlots::with_slots(INITIAL_SLOTS)),
            send: Mutex::new(SendSlots::with_slots(INITIAL_SLOTS)),
        }
    }

    /// One recvmmsg(2) call with `flags` (0 on a non-blocking socket;
    /// MSG_WAITFORONE on a blocking one: wait for the first datagram, then
    /// take what is queued): fill `bufs` / `metas` from the front with the
    /// datagrams that are queued. Truncated datagrams are dropped (and
    /// counted), the rest moved forward so the result stays contiguous.
    pub(super) fn recv(
        &self,
        fd: RawFd,
        flags: c_int,
        local_port: u16,
        bufs: &mut [Box<[u8]>],
        metas: &mut [RecvMeta],
        truncated: &AtomicU64,
    ) -> io::Result<usize> {
        let local = Local {
            port: local_port,
            dst: self.fixed_dst,
        };
        lock(&self.recv).recv(fd, flags, local, bufs, metas, truncated)
    }

    /// One sendmmsg(2) call for a prefix of the batch; returns how many
    /// datagrams went.
    pub(super) fn send(
        &self,
        fd: RawFd,
        bufs: &[Box<[u8]>],
        metas: &[SendMeta],
    ) -> io::Result<usize> {
        let mut how = SendHow {
            v6_socket: self.v6_socket,
            fixed_src: self.fixed_dst,
            tx_record: self.tx_record,
            max_segment: if self.gso.load(Ordering::Relaxed) {
                self.max_segment.load(Ordering::Relaxed)
            } else {
                0
            },
        };
        let mut slots = lock(&self.send);
        let sent = match slots.send(fd, how, bufs, metas) {
            Err(SendError {
                error,
                segment: Some(size),
            }) if gso_refused(&error) => {
                // The first message was a train and the kernel refused the
                // segmentation itself. Over the size (a path MTU below
                // Ethernet's): trains of this size and more go one by
                // one. Otherwise, or after a few such refusals: one by
                // one from now on. Either way this call's datagrams are
                // sent again, singly.
                let over_size = matches!(error.raw_os_error(), Some(libc::EMSGSIZE | libc::EINVAL));
                let refusals = self.refusals.fetch_add(1, Ordering::Relaxed) + 1;
                if over_size && refusals < GSO_MAX_REFUSALS && size > 1 {
                    self.max_segment.fetch_min(size - 1, Ordering::Relaxed);
                    tracing::info!(%error, size, "UDP segmentation offload refused for this segment size: larger replies go one by one");
                } else {
                    self.gso.store(false, Ordering::Relaxed);
                    tracing::info!(%error, "UDP segmentation offload refused: one datagram per message from now on");
                }
                how.max_segment = 0;
                slots.send(fd, how, bufs, metas)
            }
            r => r,
        }
        .map_err(|e| e.error)?;
        if slots.segmented > 0 {
            self.segmented
                .fetch_add(slots.segmented as u64, Ordering::Relaxed);
        }
        Ok(sent)
    }

    /// Whether datagrams may still leave as UDP_SEGMENT trains, and how
    /// many have so far.
    pub(super) fn gso_state(&self) -> super::GsoState {
        super::GsoState {
            active: self.gso.load(Ordering::Relaxed),
            segmented: self.segmented.load(Ordering::Relaxed),
        }
    }
}

/// Errors with which the kernel refuses a UDP_SEGMENT send as such (udp(7),
/// `udp_send_skb`): no checksum offload or IPsec on the route (EIO), a
/// segment above the path MTU or too many segments (EINVAL, EMSGSIZE), no
/// support at all (ENOPROTOOPT, EOPNOTSUPP).
fn gso_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EMSGSIZE | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

/// Refusals over the segment size after which trains stop altogether (a
/// socket the kernel refuses whatever the size, e.g. with SO_NO_CHECK).
const GSO_MAX_REFUSALS: usize = 4;

/// A failed send: the error, and the segment size when the message it
/// failed on was a train.
struct SendError {
    error: io::Error,
    segment: Option<usize>,
}

impl From<io::Error> for SendError {
    fn from(error: io::Error) -> Self {
        SendError {
            error,
            segment: None,
        }
    }
}

/// How many datagrams from `start` can leave as one UDP_SEGMENT message:
/// the same destination, source, interface and TOS, no transmit timestamp
/// asked for (the kernel stamps only the last segment), the same length
/// (the last may be shorter), at most GSO_MAX_SEGMENTS and GSO_MAX_PAYLOAD
/// in all. 1 means: send it alone.
fn gso_run(
    bufs: &[Box<[u8]>],
    metas: &[SendMeta],
    start: usize,
    end: usize,
    max_segment: usize,
) -> usize {
    let first = &metas[start];
    let size = first.len;
    if first.tx_timestamp || size == 0 || size > max_segment || bufs[start].len() < size {
        return 1;
    }
    let mut k = 1;
    let mut total = size;
    while start + k < end && k < GSO_MAX_SEGMENTS {
        let m = &metas[start + k];
        if m.tx_timestamp
            || m.dst != first.dst
            || m.src != first.src
            || m.ifindex != first.ifindex
            || m.tos != first.tos
            || m.len == 0
            || m.len > size
            || total + m.len > GSO_MAX_PAYLOAD
            || bufs[start + k].len() < m.len
        {
            break;
        }
        total += m.len;
        k += 1;
        if m.len < size {
            // Only the last segment may be short.
            break;
        }
    }
    k
}

/// What every datagram of a send call shares.
#[derive(Clone, Copy)]
struct SendHow {
    v6_socket: bool,
    fixed_src: Option<IpAddr>,
    tx_record: u32,
    /// Largest segment of a train; 0 = no trains.
    max_segment: usize,
}

/// What the socket's bind says about every datagram it receives.
#[derive(Clone, Copy)]
struct Local {
    port: u16,
    dst: Option<IpAddr>,
}

/// The slots hold no invariant across calls (every field is rewritten before
/// use), so a panic elsewhere while locked leaves nothing to repair.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct RecvSlots {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_storage>,
    control: Vec<ControlBuf<RECV_CMSG_SPACE>>,
}

// Safety: the raw pointers in `hdrs` and `iovs` point into this struct's own
// vectors and the caller's buffers; they are rewritten before each system
// call, used only during it (with the mutex held), and are dead values in
// between. Nothing in them is tied to a thread.
unsafe impl Send for RecvSlots {}

impl RecvSlots {
    fn with_slots(n: usize) -> Self {
        let mut slots = RecvSlots {
            hdrs: Vec::new(),
            iovs: Vec::new(),
            names: Vec::new(),
            control: Vec::new(),
        };
        slots.grow(n);
        slots
    }

    fn grow(&mut self, n: usize) {
        if self.hdrs.len() < n {
            self.hdrs.resize(n, zeroed());
            self.iovs.resize(n, zeroed());
            self.names.resize(n, zeroed());
            self.control.resize(n, ControlBuf([0; RECV_CMSG_SPACE]));
        }
    }

    fn recv(
        &mut self,
        fd: RawFd,
        flags: c_int,
        local: Local,
        bufs: &mut [Box<[u8]>],
        metas: &mut [RecvMeta],
        truncated: &AtomicU64,
    ) -> io::Result<usize> {
        let n = bufs.len().min(metas.len()).min(MAX_BATCH);
        if n == 0 {
            return Ok(0);
        }
        self.grow(n);
        for (i, buf) in bufs.iter_mut().take(n).enumerate() {
            self.iovs[i] = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            // The kernel shrinks these three to what it wrote: reset them.
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = ptr::from_mut(&mut self.names[i]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = self.control[i].0.as_mut_ptr().cast();
            h.msg_controllen = RECV_CMSG_SPACE as _;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // Safety: the first `n` headers point at `n` live, exclusively
        // borrowed buffers (`bufs`), address slots and control buffers with
        // the lengths given; all of them outlive the call. The socket is
        // non-blocking or has a receive timeout (MSG_WAITFORONE), so the
        // call returns at once or after that timeout.
        let rc = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                n as c_uint,
                flags,
                ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut out = 0;
        for i in 0..rc as usize {
            let h = &self.hdrs[i].msg_hdr;
            if h.msg_flags & libc::MSG_TRUNC != 0 {
                truncated.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Some(src) = socket_addr(&self.names[i], h.msg_namelen) else {
                continue;
            };
            let mut meta = RecvMeta::new(self.hdrs[i].msg_len as usize, src);
            meta.dst_port = local.port;
            meta.dst = local.dst;
            parse_cmsgs(h, &mut meta);
            if out != i {
                // Close the gap a dropped datagram left; swapping boxes
                // moves no payload and allocates nothing.
                bufs.swap(out, i);
            }
            metas[out] = meta;
            out += 1;
        }
        Ok(out)
    }
}

/// Send headers: `hdrs`, `names` and `control` per message, `iovs` per
/// datagram (a UDP_SEGMENT message points at several), `first[m]` the index
/// of message `m`'s first datagram.
struct SendSlots {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    names: Vec<SockAddr>,
    control: Vec<ControlBuf<SEND_CMSG_SPACE>>,
    first: Vec<usize>,
    /// Of the last call's datagrams that went, those in trains.
    segmented: usize,
}

// Safety: as for `RecvSlots`: the pointers are rewritten before each call
// and only used during it, with the mutex held.
unsafe impl Send for SendSlots {}

impl SendSlots {
    fn with_slots(n: usize) -> Self {
        let mut slots = SendSlots {
            hdrs: Vec::new(),
            iovs: Vec::new(),
            names: Vec::new(),
            control: Vec::new(),
            first: Vec::new(),
            segmented: 0,
        };
        slots.grow(n);
        slots
    }

    fn grow(&mut self, n: usize) {
        if self.hdrs.len() < n {
            self.hdrs.resize(n, zeroed());
            self.iovs.resize(n, zeroed());
            self.names.resize(
                n,
                SockAddr::from(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))),
            );
            self.control.resize(n, ControlBuf([0; SEND_CMSG_SPACE]));
            self.first.resize(n + 1, 0);
        }
    }

    /// One sendmmsg(2) for a prefix of `metas`; the count is in datagrams.
    /// The error says whether the message it came from was segmented.
    fn send(
        &mut self,
        fd: RawFd,
        how: SendHow,
        bufs: &[Box<[u8]>],
        metas: &[SendMeta],
    ) -> Result<usize, SendError> {
        self.segmented = 0;
        let n = metas.len().min(bufs.len()).min(MAX_BATCH);
        if n == 0 {
            return Ok(0);
        }
        self.grow(n);
        // A datagram we cannot describe ends the batch before it; if it is
        // the first, its error is the result.
        let (mut msgs, mut next) = (0, 0);
        while next < n {
            let k = if how.max_segment > 0 {
                gso_run(bufs, metas, next, n, how.max_segment)
            } else {
                1
            };
            if let Err(e) = self.prepare(msgs, next, k, bufs, metas, how) {
                if msgs == 0 {
                    return Err(e.into());
                }
                break;
            }
            self.first[msgs] = next;
            msgs += 1;
            next += k;
        }
        self.first[msgs] = next;
        // Safety: the first `msgs` headers point at live buffers (`bufs`,
        // borrowed for the call), iovec, address and control slots of the
        // lengths given. The kernel only reads through them.
        let rc = unsafe { libc::sendmmsg(fd, self.hdrs.as_mut_ptr(), msgs as c_uint, 0) };
        if rc < 0 {
            let error = io::Error::last_os_error();
            let segment = (self.first[1] - self.first[0] > 1).then(|| metas[self.first[0]].len);
            return Err(SendError { error, segment });
        }
        let rc = rc as usize;
        self.segmented = (0..rc)
            .map(|m| self.first[m + 1] - self.first[m])
            .filter(|&k| k > 1)
            .sum();
        Ok(self.first[rc])
    }

    /// Describe message `m`: datagrams `j .. j + k` (one, or a UDP_SEGMENT
    /// train of equal sizes) to one destination in the socket's family, and
    /// IP_PKTINFO / IPV6_PKTINFO (source address, interface) and IP_TOS /
    /// IPV6_TCLASS when asked for. IPv4 destinations, also those sent from
    /// a dual-stack socket, take the IPv4 control messages: Linux sends them
    /// down the IPv4 path, which reads only those.
    ///
    /// On a socket bound to one address (`fixed_src`), a source equal to it
    /// with no interface asked for is what the kernel uses anyway: no
    /// IP_PKTINFO then (it costs the kernel a route lookup per datagram).
    fn prepare(
        &mut self,
        m: usize,
        j: usize,
        k: usize,
        bufs: &[Box<[u8]>],
        metas: &[SendMeta],
        how: SendHow,
    ) -> io::Result<()> {
        let (v6_socket, fixed_src) = (how.v6_socket, how.fixed_src);
        let meta = &metas[j];
        for i in j..j + k {
            let data = bufs[i]
                .get(..metas[i].len)
                .ok_or_else(|| invalid("datagram length exceeds its buffer"))?;
            self.iovs[i] = libc::iovec {
                iov_base: data.as_ptr().cast_mut().cast(),
                iov_len: data.len(),
            };
        }
        let dst = map_for_socket(meta.dst, v6_socket);
        let v4_path = match dst {
            SocketAddr::V4(_) => true,
            SocketAddr::V6(a) => a.ip().to_ipv4_mapped().is_some(),
        };
        let control = &mut self.control[m].0;
        let mut used = 0;
        let implied =
            meta.ifindex == 0 && fixed_src.is_some() && meta.src.map(unmap_ip) == fixed_src;
        if (meta.src.is_some() || meta.ifindex != 0) && !implied {
            used += if v4_path {
                let src = match meta.src {
                    None => Ipv4Addr::UNSPECIFIED,
                    Some(IpAddr::V4(a)) => a,
                    Some(IpAddr::V6(a)) => a
                        .to_ipv4_mapped()
                        .ok_or_else(|| invalid("IPv6 source for an IPv4 destination"))?,
                };
                let info = libc::in_pktinfo {
                    ipi_ifindex: meta.ifindex as c_int,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(src).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                put_cmsg(control, libc::IPPROTO_IP, libc::IP_PKTINFO, info)
            } else {
                let src = match meta.src {
                    None => Ipv6Addr::UNSPECIFIED,
                    Some(IpAddr::V6(a)) => a,
                    Some(IpAddr::V4(_)) => {
                        return Err(invalid("IPv4 source for an IPv6 destination"))
                    }
                };
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: src.octets(),
                    },
                    ipi6_ifindex: meta.ifindex,
                };
                put_cmsg(control, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, info)
            };
        }
        if let Some(tos) = meta.tos {
            let (level, kind) = if v4_path {
                (libc::IPPROTO_IP, libc::IP_TOS)
            } else {
                (libc::IPPROTO_IPV6, libc::IPV6_TCLASS)
            };
            used += put_cmsg(&mut control[used..], level, kind, c_int::from(tos));
        }
        if meta.tx_timestamp {
            // socket(7) SO_TIMESTAMPING as a control message: a transmit
            // timestamp for this datagram alone, numbered by the socket's
            // OPT_ID counter.
            used += put_cmsg(
                &mut control[used..],
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPING,
                how.tx_record,
            );
        }
        if k > 1 {
            // udp(7) UDP_SEGMENT: the kernel cuts the payload into datagrams
            // of this size (the last one may be shorter), each with its own
            // UDP and IP header, and walks the stack once for all of them.
            let size = u16::try_from(meta.len).map_err(|_| invalid("segment too large"))?;
            used += put_cmsg(&mut control[used..], libc::SOL_UDP, UDP_SEGMENT, size);
        }
        self.names[m] = SockAddr::from(dst);
        let h = &mut self.hdrs[m].msg_hdr;
        // sendmsg(2) only reads the name and payload: casting away const is sound.
        h.msg_name = self.names[m].as_ptr().cast_mut().cast();
        h.msg_namelen = self.names[m].len();
        h.msg_iov = &mut self.iovs[j];
        h.msg_iovlen = k as _;
        h.msg_control = if used == 0 {
            ptr::null_mut()
        } else {
            control.as_mut_ptr().cast()
        };
        h.msg_controllen = used as _;
        h.msg_flags = 0;
        self.hdrs[m].msg_len = 0;
        Ok(())
    }
}

/// An address as reported: IPv4-mapped IPv6 as plain IPv4.
pub(super) fn unmap_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

/// Write one control message at the start of `buf`; returns the space used.
/// Panics if `buf` is too small, which the fixed buffer sizes rule out.
fn put_cmsg<T: Plain>(buf: &mut [u8], level: c_int, kind: c_int, value: T) -> usize {
    let space = cmsg_space(size_of::<T>());
    let buf = &mut buf[..space];
    buf.fill(0);
    let mut hdr: libc::cmsghdr = zeroed();
    hdr.cmsg_len = cmsg_len(size_of::<T>()) as _;
    hdr.cmsg_level = level;
    hdr.cmsg_type = kind;
    // Safety: `buf` holds CMSG_SPACE(size_of::<T>()) octets, room for the
    // header at offset 0 and the payload at CMSG_LEN(0); unaligned writes
    // need no alignment.
    unsafe {
        ptr::write_unaligned(buf.as_mut_ptr().cast::<libc::cmsghdr>(), hdr);
        ptr::write_unaligned(buf.as_mut_ptr().add(cmsg_len(0)).cast::<T>(), value);
    }
    space
}

/// Read a control-message payload as `T`, if it is long enough.
fn read_payload<T: Plain>(data: &[u8]) -> Option<T> {
    (data.len() >= size_of::<T>()).then(|| {
        // Safety: `data` holds at least size_of::<T>() octets, any bit
        // pattern is a valid `T` (`Plain`), and the read is unaligned.
        unsafe { ptr::read_unaligned(data.as_ptr().cast::<T>()) }
    })
}

/// Walk the control messages of a received datagram into `meta`.
// The length fields are size_t on glibc but socklen_t on musl.
#[allow(clippy::unnecessary_cast)]
fn parse_cmsgs(hdr: &libc::msghdr, meta: &mut RecvMeta) {
    let control_start = hdr.msg_control as usize;
    let control_end = control_start + hdr.msg_controllen as usize;
    // Safety: `msg_control` / `msg_controllen` describe a buffer we own
    // (or are null / zero); CMSG_FIRSTHDR returns null or a header that lies
    // inside it.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !cmsg.is_null() {
        // Safety: CMSG_FIRSTHDR / CMSG_NXTHDR only return headers that lie
        // inside the control buffer; the read is unaligned.
        let c: libc::cmsghdr = unsafe { ptr::read_unaligned(cmsg) };
        let data_start = cmsg as usize + cmsg_len(0);
        let data_end = (cmsg as usize)
            .saturating_add(c.cmsg_len as usize)
            .min(control_end);
        let data: &[u8] = if data_end > data_start {
            // Safety: [data_start, data_end) lies inside the control buffer
            // (clipped to msg_controllen above), which outlives this loop.
            unsafe { std::slice::from_raw_parts(data_start as *const u8, data_end - data_start) }
        } else {
            &[]
        };
        apply_cmsg(c.cmsg_level, c.cmsg_type, data, meta);
        // Safety: `cmsg` is a header inside the buffer `hdr` describes;
        // CMSG_NXTHDR checks the next one against msg_controllen.
        cmsg = unsafe { libc::CMSG_NXTHDR(hdr, cmsg) };
    }
}

/// One control message into `meta` (ip(7), ipv6(7), socket(7) "SO_TIMESTAMPING").
fn apply_cmsg(level: c_int, kind: c_int, data: &[u8], meta: &mut RecvMeta) {
    match (level, kind) {
        (libc::IPPROTO_IP, libc::IP_TTL) => {
            meta.ttl = read_payload::<c_int>(data).map(|v| v as u8);
        }
        // IP_TOS arrives as one octet (ip(7)).
        (libc::IPPROTO_IP, libc::IP_TOS) => meta.tos = read_payload::<u8>(data),
        (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
            if let Some(info) = read_payload::<libc::in_pktinfo>(data) {
                meta.dst = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    info.ipi_addr.s_addr,
                ))));
                meta.ifindex = info.ipi_ifindex as u32;
            }
        }
        (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
            meta.ttl = read_payload::<c_int>(data).map(|v| v as u8);
        }
        (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) => {
            meta.tos = read_payload::<c_int>(data).map(|v| v as u8);
        }
        (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
            if let Some(info) = read_payload::<libc::in6_pktinfo>(data) {
                let ip = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                meta.dst = Some(match ip.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => IpAddr::V6(ip),
                });
                meta.ifindex = info.ipi6_ifindex;
            }
        }
        // SCM_TIMESTAMPING: [software, deprecated, hardware]; the hardware
        // one is there only when the NIC took it (--hwtstamp), else zero.
        (libc::SOL_SOCKET, libc::SO_TIMESTAMPING) => {
            if let Some(ts) = read_payload::<[libc::timespec; 3]>(data) {
                meta.rx_time = match unix_nanos(ts[2]) {
                    Some(hw) => Some((hw, TimestampSource::Hardware)),
                    None => unix_nanos(ts[0]).map(|t| (t, TimestampSource::Kernel)),
                };
            }
        }
        (libc::SOL_SOCKET, libc::SO_TIMESTAMPNS) => {
            if let Some(ts) = read_payload::<libc::timespec>(data).and_then(unix_nanos) {
                meta.rx_time = Some((ts, TimestampSource::Kernel));
            }
        }
        _ => {}
    }
}

/// A CLOCK_REALTIME timespec as [`UnixNanos`]; zero means "no timestamp".
fn unix_nanos(ts: libc::timespec) -> Option<UnixNanos> {
    let secs = u64::try_from(ts.tv_sec).ok().filter(|&s| s > 0)?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(UnixNanos(secs * 1_000_000_000 + nanos))
}

/// The peer address the kernel wrote, v4-mapped shown as IPv4.
fn socket_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    let base = ptr::from_ref(storage);
    match c_int::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // Safety: sockaddr_storage is larger and at least as aligned as
            // sockaddr_in, and any bit pattern is a valid sockaddr_in.
            let sin: libc::sockaddr_in = unsafe { ptr::read(base.cast()) };
            Some(SocketAddr::from((
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // Safety: as above, for sockaddr_in6.
            let sin6: libc::sockaddr_in6 = unsafe { ptr::read(base.cast()) };
            let addr = SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            );
            Some(unmap(SocketAddr::V6(addr)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control buffer laid out as the kernel would, parsed through a msghdr.
    fn parse(control: &mut ControlBuf<RECV_CMSG_SPACE>, used: usize) -> RecvMeta {
        let mut hdr: libc::msghdr = zeroed();
        hdr.msg_control = control.0.as_mut_ptr().cast();
        hdr.msg_controllen = used as _;
        let mut meta = RecvMeta::new(10, SocketAddr::from((Ipv4Addr::LOCALHOST, 862)));
        parse_cmsgs(&hdr, &mut meta);
        meta
    }

    #[test]
    fn ipv4_ttl_tos_pktinfo_and_timestamping_fill_the_metadata() {
        let mut control = ControlBuf([0; RECV_CMSG_SPACE]);
        let mut used = put_cmsg(&mut control.0, libc::IPPROTO_IP, libc::IP_TTL, 37 as c_int);
        used += put_cmsg(
            &mut control.0[used..],
            libc::IPPROTO_IP,
            libc::IP_TOS,
            0xB8u8,
        );
        let info = libc::in_pktinfo {
            ipi_ifindex: 3,
            ipi_spec_dst: libc::in_addr { s_addr: 0 },
            ipi_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::new(192, 0, 2, 1)).to_be(),
            },
        };
        used += put_cmsg(
            &mut control.0[used..],
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            info,
        );
        let mut ts: [libc::timespec; 3] = zeroed();
        ts[0].tv_sec = 1_700_000_000;
        ts[0].tv_nsec = 123;
        used += put_cmsg(
            &mut control.0[used..],
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPING,
            ts,
        );

        let meta = parse(&mut control, used);
        assert_eq!(meta.ttl, Some(37));
        assert_eq!(meta.tos, Some(0xB8));
        assert_eq!(meta.dst, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
        assert_eq!(meta.ifindex, 3);
        assert_eq!(
            meta.rx_time,
            Some((
                UnixNanos(1_700_000_000_000_000_123),
                TimestampSource::Kernel
            ))
        );
    }

    #[test]
    fn ipv6_pktinfo_with_a_v4_mapped_address_reports_ipv4() {
        let mut control = ControlBuf([0; RECV_CMSG_SPACE]);
        let info = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: Ipv4Addr::new(198, 51, 100, 9).to_ipv6_mapped().octets(),
            },
            ipi6_ifindex: 7,
        };
        let mut used = put_cmsg(&mut control.0, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, info);
        used += put_cmsg(
            &mut control.0[used..],
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            250 as c_int,
        );
        used += put_cmsg(
            &mut control.0[used..],
            libc::IPPROTO_IPV6,
            libc::IPV6_TCLASS,
            0x2E as c_int,
        );
        let meta = parse(&mut control, used);
        assert_eq!(meta.dst, Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9))));
        assert_eq!(meta.ifindex, 7);
        assert_eq!(meta.ttl, Some(250));
        assert_eq!(meta.tos, Some(0x2E));
    }

    #[test]
    fn zero_timestamp_means_none() {
        let mut control = ControlBuf([0; RECV_CMSG_SPACE]);
        let ts: [libc::timespec; 3] = zeroed();
        let used = put_cmsg(&mut control.0, libc::SOL_SOCKET, libc::SO_TIMESTAMPING, ts);
        assert_eq!(parse(&mut control, used).rx_time, None);
    }

    #[test]
    fn short_payload_is_ignored_not_over_read() {
        let mut control = ControlBuf([0; RECV_CMSG_SPACE]);
        // An IPV6_PKTINFO that claims only 4 octets of payload.
        let used = put_cmsg(
            &mut control.0,
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            1 as c_int,
        );
        assert_eq!(parse(&mut control, used).dst, None);
    }

    #[test]
    fn empty_control_leaves_metadata_unset() {
        let mut control = ControlBuf([0; RECV_CMSG_SPACE]);
        let meta = parse(&mut control, 0);
        assert_eq!(
            (meta.ttl, meta.tos, meta.dst, meta.rx_time),
            (None, None, None, None)
        );
    }

    #[test]
    fn kernel_sockaddr_in6_with_mapped_address_becomes_ipv4() {
        let mut storage: libc::sockaddr_storage = zeroed();
        let mut sin6: libc::sockaddr_in6 = zeroed();
        sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        sin6.sin6_port = 862u16.to_be();
        sin6.sin6_addr.s6_addr = Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped().octets();
        // Safety: sockaddr_storage has room for a sockaddr_in6.
        unsafe { ptr::write(ptr::from_mut(&mut storage).cast(), sin6) };
        let len = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        assert_eq!(
            socket_addr(&storage, len),
            Some(SocketAddr::from((Ipv4Addr::new(192, 0, 2, 7), 862)))
        );
    }
}
