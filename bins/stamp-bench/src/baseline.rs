//! The baseline: a UDP echo that does the least a STAMP reflector can —
//! recvmmsg(2) a batch, rewrite the reflector's Sequence Number, T2, T3 and
//! the copied sender fields in place, sendmmsg(2) the batch back. No control
//! messages, no parsing, no sessions, no async runtime: a blocking loop.
//!
//! Raw libc calls (and so `unsafe`) on purpose: any wrapper would add work
//! the baseline is meant to leave out.

use std::io;
use std::mem::size_of;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::Duration;

const BATCH: usize = 32;
const BUF: usize = stamp_wire::MAX_DATAGRAM;

/// NTP timestamp of now (RFC 5905 §6), big-endian.
pub fn ntp_now() -> [u8; 8] {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = (d.as_secs() + 2_208_988_800) as u32;
    let frac = ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000) as u32;
    let mut out = [0; 8];
    out[..4].copy_from_slice(&secs.to_be_bytes());
    out[4..].copy_from_slice(&frac.to_be_bytes());
    out
}

/// Serve on `socket` forever (the bench kills the process).
pub fn serve(socket: UdpSocket) -> io::Result<()> {
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let fd = socket.as_raw_fd();
    let mut bufs: Vec<Box<[u8]>> = (0..BATCH)
        .map(|_| vec![0u8; BUF].into_boxed_slice())
        .collect();
    // Safety: all-zero is a valid value of these plain C structs.
    let mut names: Vec<libc::sockaddr_in6> = vec![unsafe { std::mem::zeroed() }; BATCH];
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: BUF,
        })
        .collect();
    // Safety: as above.
    let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BATCH];
    let mut seq = 0u32;
    loop {
        for i in 0..BATCH {
            iovs[i].iov_len = BUF;
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = (&mut names[i] as *mut libc::sockaddr_in6).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in6>() as u32;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
        }
        // Safety: the headers point at BATCH live buffers, address slots and
        // iovecs owned by this function, with their true lengths.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => continue,
                _ => return Err(e),
            }
        }
        let n = n as usize;
        let t2 = ntp_now();
        for i in 0..n {
            let len = hdrs[i].msg_len as usize;
            iovs[i].iov_len = len;
            let b = &mut bufs[i][..len];
            if len >= 44 {
                // Sender Sequence Number, Timestamp, Error Estimate (RFC 8762 §4.3.1).
                b.copy_within(0..14, 24);
                b[0..4].copy_from_slice(&seq.to_be_bytes());
                b[12..14].copy_from_slice(&[0x80, 0x01]);
                b[16..24].copy_from_slice(&t2);
                b[38..44].copy_from_slice(&[0, 0, 255, 0, 0, 0]);
                b[4..12].copy_from_slice(&ntp_now());
            }
            seq = seq.wrapping_add(1);
        }
        let mut sent = 0;
        while sent < n {
            // Safety: the first `n` headers describe the received datagrams
            // (payload lengths set above) and their sources as destinations.
            let rc = unsafe { libc::sendmmsg(fd, hdrs[sent..].as_mut_ptr(), (n - sent) as u32, 0) };
            if rc <= 0 {
                break;
            }
            sent += rc as usize;
        }
    }
}
