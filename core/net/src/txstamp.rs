//! Kernel transmit timestamps (Linux, Documentation/networking/timestamping.rst).
//!
//! With SOF_TIMESTAMPING_TX_SOFTWARE the kernel takes a timestamp when a
//! datagram leaves for the device (the driver's `skb_tx_timestamp`, or
//! `dev_queue_xmit` on loopback) and queues it on the socket's error queue;
//! OPT_ID numbers the timestamped datagrams of the socket 0, 1, 2, … (the
//! counter only moves for datagrams that ask for a timestamp, and comes back
//! when a send fails), and OPT_TSONLY returns the timestamp without a copy
//! of the packet. [`drain`] reads them with recvmsg(2, MSG_ERRQUEUE).
//!
//! A transmit timestamp is always known after the datagram has gone, so it
//! cannot be written into that datagram: the sender, which keeps T1 itself,
//! replaces its user-space T1 with it for the RTT; the reflector can report
//! it for the previous reply in a Follow-Up Telemetry TLV (RFC 8972 §4.7).

use std::io;
use std::mem::size_of;
use std::os::fd::RawFd;
use std::ptr;

use libc::{c_int, c_uint};
use stamp_core::clock::{TimestampSource, UnixNanos};

use crate::plain::{zeroed, Plain};

/// SO_TIMESTAMPING flags of a socket with receive timestamps and transmit
/// timestamps on every datagram (software; `hardware` adds the NIC's raw
/// hardware clock where the interface was switched on, see
/// [`crate::hwtstamp`]).
pub fn socket_flags(tx_every_datagram: bool, hardware: bool) -> c_uint {
    let mut flags = libc::SOF_TIMESTAMPING_RX_SOFTWARE
        | libc::SOF_TIMESTAMPING_SOFTWARE
        | libc::SOF_TIMESTAMPING_OPT_ID
        | libc::SOF_TIMESTAMPING_OPT_TSONLY;
    if tx_every_datagram {
        flags |= libc::SOF_TIMESTAMPING_TX_SOFTWARE;
    }
    if hardware {
        flags |= libc::SOF_TIMESTAMPING_RX_HARDWARE | libc::SOF_TIMESTAMPING_RAW_HARDWARE;
        if tx_every_datagram {
            flags |= libc::SOF_TIMESTAMPING_TX_HARDWARE;
        }
    }
    flags
}

/// Set SO_TIMESTAMPING on `fd` to `flags` (socket(7)).
pub fn set_socket_flags(fd: RawFd, flags: c_uint) -> io::Result<()> {
    let value = flags as c_int;
    // Safety: a valid pointer to a c_int of the length given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPING,
            ptr::from_ref(&value).cast(),
            size_of::<c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// One transmit timestamp from the error queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxStamp {
    /// The OPT_ID key: the datagram's number among the socket's timestamped
    /// datagrams, from 0.
    pub key: u32,
    /// CLOCK_REALTIME when the datagram left (the NIC's clock for hardware).
    pub time: UnixNanos,
    /// Kernel software or NIC hardware.
    pub source: TimestampSource,
}

/// `SCM_TSTAMP_SND` (linux/errqueue.h): the timestamp taken when the
/// datagram was handed to the device.
const SCM_TSTAMP_SND: u32 = 0;

#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Control([u8; 256]);

// Safety: a byte array.
unsafe impl Plain for Control {}
// Safety: `#[repr(C)]` struct of integers (libc).
unsafe impl Plain for libc::sock_extended_err {}

/// Read every transmit timestamp queued on `fd`'s error queue without
/// waiting, handing each to `f`; returns how many were read. Error-queue
/// entries that are not transmit timestamps (ICMP errors with IP_RECVERR)
/// are consumed and skipped.
pub fn drain(fd: RawFd, mut f: impl FnMut(TxStamp)) -> io::Result<usize> {
    let mut count = 0;
    // Bounded: the error queue is limited by the socket's receive buffer,
    // but a loop without end on a misbehaving kernel would be worse.
    for _ in 0..4096 {
        let mut control: Control = zeroed();
        let mut data = [0u8; 64];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        let mut hdr: libc::msghdr = zeroed();
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = control.0.as_mut_ptr().cast();
        hdr.msg_controllen = control.0.len() as _;
        // Safety: `hdr` points at a live iovec and control buffer of the
        // lengths given; MSG_DONTWAIT returns at once.
        let rc = unsafe { libc::recvmsg(fd, &mut hdr, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(count),
                io::ErrorKind::Interrupted => continue,
                _ if count > 0 => Ok(count),
                _ => Err(e),
            };
        }
        if let Some(stamp) = parse(&hdr) {
            f(stamp);
            count += 1;
        }
    }
    Ok(count)
}

/// A transmit timestamp out of one error-queue message: SCM_TIMESTAMPING
/// (software, deprecated, hardware) and the IP_RECVERR / IPV6_RECVERR
/// extended error that carries the key (origin SO_EE_ORIGIN_TIMESTAMPING,
/// errno ENOMSG, info SCM_TSTAMP_SND).
// The length fields are size_t on glibc but socklen_t on musl.
#[allow(clippy::unnecessary_cast)]
fn parse(hdr: &libc::msghdr) -> Option<TxStamp> {
    let mut times: Option<[libc::timespec; 3]> = None;
    let mut key = None;
    let end = hdr.msg_control as usize + hdr.msg_controllen as usize;
    // Safety: `hdr` describes our own control buffer; CMSG_FIRSTHDR /
    // CMSG_NXTHDR return null or headers inside it.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !cmsg.is_null() {
        // Safety: a header inside the buffer; unaligned read.
        let c: libc::cmsghdr = unsafe { ptr::read_unaligned(cmsg) };
        // Safety: CMSG_LEN(0) is arithmetic.
        let start = cmsg as usize + unsafe { libc::CMSG_LEN(0) } as usize;
        let stop = (cmsg as usize).saturating_add(c.cmsg_len as usize).min(end);
        let len = stop.saturating_sub(start);
        match (c.cmsg_level, c.cmsg_type) {
            (libc::SOL_SOCKET, libc::SO_TIMESTAMPING)
                if len >= size_of::<[libc::timespec; 3]>() =>
            {
                // Safety: the payload holds three timespecs; unaligned read.
                times = Some(unsafe { ptr::read_unaligned(start as *const [libc::timespec; 3]) });
            }
            (libc::SOL_IP, libc::IP_RECVERR) | (libc::SOL_IPV6, libc::IPV6_RECVERR)
                if len >= size_of::<libc::sock_extended_err>() =>
            {
                // Safety: the payload holds a sock_extended_err; unaligned read.
                let ee: libc::sock_extended_err =
                    unsafe { ptr::read_unaligned(start as *const libc::sock_extended_err) };
                if ee.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING
                    && ee.ee_errno == libc::ENOMSG as u32
                    && ee.ee_info == SCM_TSTAMP_SND
                {
                    key = Some(ee.ee_data);
                }
            }
            _ => {}
        }
        // Safety: `cmsg` is inside the buffer `hdr` describes.
        cmsg = unsafe { libc::CMSG_NXTHDR(hdr, cmsg) };
    }
    let times = times?;
    let key = key?;
    let (ts, source) = if nonzero(times[2]) {
        (times[2], TimestampSource::Hardware)
    } else {
        (times[0], TimestampSource::Kernel)
    };
    Some(TxStamp {
        key,
        time: unix_nanos(ts)?,
        source,
    })
}

fn nonzero(ts: libc::timespec) -> bool {
    ts.tv_sec != 0 || ts.tv_nsec != 0
}

fn unix_nanos(ts: libc::timespec) -> Option<UnixNanos> {
    let secs = u64::try_from(ts.tv_sec).ok().filter(|&s| s > 0)?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(UnixNanos(secs * 1_000_000_000 + nanos))
}

/// Which request a transmit timestamp belongs to: a ring of the last
/// [`KeyRing::SLOTS`] OPT_ID keys and what the caller sent under each.
#[derive(Debug)]
pub struct KeyRing<T: Copy> {
    next_key: u32,
    slots: Box<[Option<(u32, T)>]>,
}

impl<T: Copy> Default for KeyRing<T> {
    fn default() -> Self {
        KeyRing {
            next_key: 0,
            slots: vec![None; Self::SLOTS].into_boxed_slice(),
        }
    }
}

impl<T: Copy> KeyRing<T> {
    /// Keys remembered; a timestamp older than this is ignored.
    pub const SLOTS: usize = 4096;

    /// Record that the next timestamped datagram (sent successfully)
    /// carried `what`.
    pub fn sent(&mut self, what: T) {
        let key = self.next_key;
        self.slots[key as usize % Self::SLOTS] = Some((key, what));
        self.next_key = key.wrapping_add(1);
    }

    /// The datagram announced last with [`KeyRing::sent`] did not go: the
    /// kernel does not use its key (it hands a key back when a send fails).
    pub fn unsent(&mut self) {
        self.next_key = self.next_key.wrapping_sub(1);
        self.slots[self.next_key as usize % Self::SLOTS] = None;
    }

    /// What was sent under `key`, left in place: with hardware timestamps
    /// on, the kernel queues a software and a hardware timestamp for the
    /// same key, and the later hardware one should still find it.
    pub fn get(&self, key: u32) -> Option<T> {
        match self.slots[key as usize % Self::SLOTS] {
            Some((k, what)) if k == key => Some(what),
            _ => None,
        }
    }

    /// What was sent under `key`, once.
    pub fn take(&mut self, key: u32) -> Option<T> {
        let slot = &mut self.slots[key as usize % Self::SLOTS];
        match *slot {
            Some((k, what)) if k == key => {
                *slot = None;
                Some(what)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ring_matches_keys_and_forgets_old_ones() {
        let mut r = KeyRing::<u32>::default();
        for seq in 100..100 + KeyRing::<u32>::SLOTS as u32 + 10 {
            r.sent(seq);
        }
        // Key 5 was overwritten by key 5 + SLOTS.
        assert_eq!(r.take(5), None);
        assert_eq!(r.get(12), Some(112));
        assert_eq!(r.take(12), Some(112));
        assert_eq!(r.take(12), None, "taken once");
        let last = KeyRing::<u32>::SLOTS as u32 + 9;
        assert_eq!(r.take(last), Some(100 + last));
        r.sent(7);
        r.unsent();
        r.sent(8);
        assert_eq!(
            r.take(last + 1),
            Some(8),
            "the key of a failed send is reused"
        );
    }

    #[test]
    fn socket_flags_keep_receive_timestamps() {
        let f = socket_flags(true, false);
        assert_ne!(f & libc::SOF_TIMESTAMPING_RX_SOFTWARE, 0);
        assert_ne!(f & libc::SOF_TIMESTAMPING_TX_SOFTWARE, 0);
        assert_eq!(f & libc::SOF_TIMESTAMPING_RAW_HARDWARE, 0);
        assert_eq!(
            socket_flags(false, false) & libc::SOF_TIMESTAMPING_TX_SOFTWARE,
            0
        );
        assert_ne!(
            socket_flags(true, true) & libc::SOF_TIMESTAMPING_TX_HARDWARE,
            0
        );
    }
}
