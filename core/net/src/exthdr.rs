//! The sender's IPv6 Destination Options header (RFC 8200 §4.6): a sticky
//! IPV6_DSTOPTS option (RFC 3542 §6.1, ipv6(7)) puts the same header into
//! every datagram sent on the socket, so a reflector that reflects
//! extension headers (draft-ietf-ippm-stamp-ext-hdr) has one to return.
//! Setting it needs CAP_NET_RAW on Linux.

use std::io;
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

#[cfg(test)]
mod tests {
    use super::*;

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
