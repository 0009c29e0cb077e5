//! The sender's IPv6 Destination Options header (RFC 8200 §4.6): a sticky
//! IPV6_DSTOPTS option (RFC 3542 §6.1, ipv6(7)) puts the same header into
//! every datagram sent on the socket, so a reflector that reflects
//! extension headers (draft-ietf-ippm-stamp-ext-hdr) has one to return.
//! Setting it needs CAP_NET_RAW on Linux.
//!
//! Also the reflector's SRv6 return path (RFC 9503 §4.1.3.2): a reply sent
//! with a Segment Routing Header (RFC 8754) through a sticky IPV6_RTHDR set
//! for that one datagram ([`send_with_srh`]).

use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Option type used to fill the header: 0x1E, an experimental option
/// (RFC 4727 §5.1.3) whose two high bits say "skip if unknown" and whose
/// third says "does not change en route".
pub const EXPERIMENTAL_OPTION: u8 = 0x1E;

/// A Destination Options header of `len` octets (a multiple of 8, 8..=2048)
/// whose options are [`EXPERIMENTAL_OPTION`]s carrying the octets 0, 1, 2, …
/// (one counter across the header; a Pad1 closes an odd remainder). The
/// first octet (Next Header) is left 0: the kernel fills it in.
pub fn destination_options(len: usize) -> Option<Vec<u8>> {
    if !(8..=2048).contains(&len) || len % 8 != 0 {
        return None;
    }
    let mut h = vec![0u8; len];
    h[1] = (len / 8 - 1) as u8;
    let mut off = 2;
    let mut counter = 0u8;
    while off < len {
        let room = len - off;
        if room == 1 {
            h[off] = 0; // Pad1
            break;
        }
        let data = (room - 2).min(255);
        h[off] = EXPERIMENTAL_OPTION;
        h[off + 1] = data as u8;
        for b in &mut h[off + 2..off + 2 + data] {
            *b = counter;
            counter = counter.wrapping_add(1);
        }
        off += 2 + data;
    }
    Some(h)
}

/// Set `header` (a whole Destination Options header) as the sticky
/// IPV6_DSTOPTS of the IPv6 socket `fd`.
#[cfg(target_os = "linux")]
pub fn set_destination_options(fd: BorrowedFd<'_>, header: &[u8]) -> io::Result<()> {
    let len = libc::socklen_t::try_from(header.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // Safety: `header` is valid for reads of `len` octets during the call;
    // the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_DSTOPTS,
            header.as_ptr().cast(),
            len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Not available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn set_destination_options(fd: BorrowedFd<'_>, header: &[u8]) -> io::Result<()> {
    let _ = (fd.as_raw_fd(), header);
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "IPv6 destination options need Linux",
    ))
}

/// A Segment Routing Header (RFC 8754 §2) for a datagram that visits
/// `sids` in order and then its destination: Segment List[0] is left for
/// the kernel to fill with the destination (`ipv6_push_rthdr4`), [1..] are
/// the SIDs last first; Segments Left = Last Entry = `sids.len()`. `None`
/// for no SID or more than 126.
pub fn segment_routing_header(sids: &[Ipv6Addr]) -> Option<Vec<u8>> {
    let n = sids.len();
    if n == 0 || n > 126 {
        return None;
    }
    let mut h = vec![0u8; 8 + 16 * (n + 1)];
    h[1] = (2 * (n + 1)) as u8; // Hdr Ext Len, 8-octet units after the first 8
    h[2] = 4; // Routing Type: SRH
    h[3] = n as u8; // Segments Left
    h[4] = n as u8; // Last Entry
    for (i, sid) in sids.iter().rev().enumerate() {
        let at = 8 + 16 * (i + 1);
        h[at..at + 16].copy_from_slice(&sid.octets());
    }
    Some(h)
}

/// Send `data` to `dst` on the IPv6 UDP socket `fd` with the Segment
/// Routing Header `srh` ([`segment_routing_header`]): set it as the sticky
/// IPV6_RTHDR (ipv6(7); the ancillary-data form accepts only type 2 on
/// Linux), send, and clear it again, so no other datagram carries it. For
/// a single-threaded driver (the option is per socket). The kernel fills
/// Segment List[0] with `dst`, sends to the first SID and computes the UDP
/// checksum for the final destination.
#[cfg(target_os = "linux")]
pub fn send_with_srh(
    fd: BorrowedFd<'_>,
    data: &[u8],
    dst: SocketAddrV6,
    srh: &[u8],
) -> io::Result<usize> {
    set_rthdr(fd, srh)?;
    let sent = socket2::SockRef::from(&fd).send_to(data, &dst.into());
    let cleared = set_rthdr(fd, &[]);
    let n = sent?;
    cleared?;
    Ok(n)
}

/// Not available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn send_with_srh(
    fd: BorrowedFd<'_>,
    data: &[u8],
    dst: SocketAddrV6,
    srh: &[u8],
) -> io::Result<usize> {
    let _ = (fd.as_raw_fd(), data, dst, srh);
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "segment routing headers need Linux",
    ))
}

#[cfg(target_os = "linux")]
fn set_rthdr(fd: BorrowedFd<'_>, srh: &[u8]) -> io::Result<()> {
    let len = libc::socklen_t::try_from(srh.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let ptr = if srh.is_empty() {
        std::ptr::null()
    } else {
        srh.as_ptr().cast()
    };
    // Safety: `ptr` is null with length 0 (clears the option) or points at
    // `len` readable octets, which the kernel copies during the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_RTHDR,
            ptr,
            len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The MTU of the route toward `target` (IP_MTU / IPV6_MTU, ip(7) and
/// ipv6(7), read from a UDP socket connected to it; nothing is sent): the
/// sender checks that its requests fit (draft-ietf-ippm-stamp-ext-hdr:
/// requests and replies MUST fit the MTU).
#[cfg(target_os = "linux")]
pub fn path_mtu(target: std::net::SocketAddr) -> io::Result<usize> {
    let target = std::net::SocketAddr::new(target.ip().to_canonical(), target.port());
    let (local, level, option): (std::net::SocketAddr, _, _) = if target.is_ipv6() {
        (
            (Ipv6Addr::UNSPECIFIED, 0).into(),
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU,
        )
    } else {
        (
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            libc::IPPROTO_IP,
            libc::IP_MTU,
        )
    };
    let socket = std::net::UdpSocket::bind(local)?;
    socket.connect(target)?;
    let mut mtu: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // Safety: a valid, connected socket, and an int with its length for the
    // kernel to write into.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            level,
            option,
            std::ptr::from_mut(&mut mtu).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    usize::try_from(mtu).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srh_layout() {
        let a: Ipv6Addr = "2001:db8::a".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::b".parse().unwrap();
        let h = segment_routing_header(&[a, b]).unwrap();
        assert_eq!(h.len(), 8 + 48);
        assert_eq!(&h[..8], &[0, 6, 4, 2, 2, 0, 0, 0]);
        assert_eq!(&h[8..24], &[0; 16], "final destination: the kernel's");
        assert_eq!(&h[24..40], &b.octets(), "last segment first");
        assert_eq!(&h[40..56], &a.octets());
        assert!(segment_routing_header(&[]).is_none());
        assert!(segment_routing_header(&vec![a; 127]).is_none());
    }

    #[test]
    fn srh_send_on_loopback_reaches_the_final_destination() {
        use std::os::fd::AsFd;
        let Ok(rx) = std::net::UdpSocket::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback");
            return;
        };
        rx.set_read_timeout(Some(std::time::Duration::from_millis(300)))
            .unwrap();
        let tx = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let std::net::SocketAddr::V6(dst) = rx.local_addr().unwrap() else {
            unreachable!()
        };
        // One segment: ::1 itself, then the final destination ::1.
        let srh = segment_routing_header(&[Ipv6Addr::LOCALHOST]).unwrap();
        match send_with_srh(tx.as_fd(), b"srv6", dst, &srh) {
            Ok(n) => assert_eq!(n, 4),
            Err(e) => {
                eprintln!("skipped: the kernel refused the SRH: {e}");
                return;
            }
        }
        // The option is cleared: a plain datagram still goes out.
        tx.send_to(b"plain", dst).unwrap();
        let mut buf = [0u8; 16];
        let mut got = Vec::new();
        while let Ok(n) = rx.recv(&mut buf) {
            got.push(buf[..n].to_vec());
            if got.len() == 2 {
                break;
            }
        }
        assert!(got.contains(&b"plain".to_vec()), "{got:?}");
    }

    #[test]
    fn header_layout() {
        assert_eq!(
            destination_options(8).unwrap(),
            [0, 0, EXPERIMENTAL_OPTION, 4, 0, 1, 2, 3]
        );
        let h = destination_options(16).unwrap();
        assert_eq!(h[1], 1);
        assert_eq!(&h[2..4], &[EXPERIMENTAL_OPTION, 12]);
        assert_eq!(&h[4..], &(0..12).collect::<Vec<u8>>()[..]);
        // 2048: options of 255 data octets, then what is left.
        let h = destination_options(2048).unwrap();
        assert_eq!(h[1], 255);
        assert_eq!(h[3], 255);
        assert_eq!(h.len(), 2048);
        for bad in [0, 4, 12, 2056] {
            assert!(destination_options(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn sticky_option_is_accepted_on_an_ipv6_socket_when_permitted() {
        let s = std::net::UdpSocket::bind("[::1]:0");
        let Ok(s) = s else {
            eprintln!("skipped: no IPv6 loopback");
            return;
        };
        use std::os::fd::AsFd;
        match set_destination_options(s.as_fd(), &destination_options(16).unwrap()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => eprintln!("skipped: no CAP_NET_RAW"),
            Err(e) => panic!("{e}"),
        }
    }
}
