//! Classic BPF programs attached to sockets (socket(7), filter.txt "Linux
//! Socket Filtering"): the raw transport's packet filter, and the
//! reflector's SO_REUSEPORT steering by source.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// One classic BPF instruction.
pub(crate) fn insn(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Attach the classic BPF program `prog` to `fd` with the socket option
/// `option` (SO_ATTACH_FILTER, SO_ATTACH_REUSEPORT_CBPF).
pub(crate) fn attach(
    fd: BorrowedFd<'_>,
    option: libc::c_int,
    prog: &[libc::sock_filter],
) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        filter: prog.as_ptr().cast_mut(),
    };
    // Safety: `fprog` points at `prog`, which outlives the call; the kernel
    // only reads the program, copying it before returning.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            std::ptr::addr_of!(fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The SO_REUSEPORT program of [`steer_by_source`]: the socket index is a
/// hash of the source (the IPv4 address, or the first 64 bits of the IPv6
/// address: the unit `--max-pps` limits) modulo `sockets`.
fn source_steering(sockets: u32) -> Vec<libc::sock_filter> {
    use libc::{
        BPF_ABS, BPF_ALU, BPF_B, BPF_JA, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_MISC, BPF_MOD,
        BPF_MUL, BPF_RET, BPF_RSH, BPF_TAX, BPF_W, BPF_X, BPF_XOR,
    };
    // Offsets from the network header (the program runs with the packet's
    // data at the UDP payload).
    let net = |off: i32| (libc::SKF_NET_OFF + off) as u32;
    vec![
        /* 0 */ insn(BPF_LD | BPF_B | BPF_ABS, 0, 0, net(0)),
        /* 1 */ insn(BPF_ALU | BPF_RSH | BPF_K, 0, 0, 4), // IP version
        /* 2 */ insn(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 6),
        /* 3 */ insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, net(12)), // IPv4 source
        /* 4 */ insn(BPF_JMP | BPF_JA, 0, 0, 4),
        /* 5 */ insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, net(8)), // IPv6 source, /64
        /* 6 */ insn(BPF_MISC | BPF_TAX, 0, 0, 0),
        /* 7 */ insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, net(12)),
        /* 8 */ insn(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0),
        // Multiplicative hashing (Knuth): the high half is well mixed.
        /* 9 */
        insn(BPF_ALU | BPF_MUL | BPF_K, 0, 0, 0x9E37_79B1),
        /* 10 */ insn(BPF_ALU | BPF_RSH | BPF_K, 0, 0, 16),
        /* 11 */ insn(BPF_ALU | BPF_MOD | BPF_K, 0, 0, sockets.max(1)),
        /* 12 */ insn(BPF_RET | libc::BPF_A, 0, 0, 0),
    ]
}

/// Make the kernel hand every datagram from one source (an IPv4 address,
/// an IPv6 /64) to the same socket of `fd`'s SO_REUSEPORT group of
/// `sockets` sockets, instead of hashing the whole 4-tuple
/// (SO_ATTACH_REUSEPORT_CBPF, Linux 4.5). Sockets are numbered in the order
/// they joined the group; an index beyond the group's size falls back to
/// the kernel's hash (while the group is still being built).
pub fn steer_by_source(fd: BorrowedFd<'_>, sockets: u32) -> io::Result<()> {
    attach(
        fd,
        libc::SO_ATTACH_REUSEPORT_CBPF,
        &source_steering(sockets),
    )
}

#[cfg(test)]
mod tests {
    use super::source_steering;

    #[test]
    fn jumps_land_inside_the_program_on_the_right_instruction() {
        let p = source_steering(4);
        // 2: IPv6 -> 5, else 3. 4: IPv4 done -> 9, past the IPv6 part.
        assert_eq!((p[2].jt, p[2].jf), (2, 0));
        assert_eq!(2 + 1 + usize::from(p[2].jt), 5);
        assert_eq!(4 + 1 + p[4].k as usize, 9);
        assert_eq!(p[9].k, 0x9E37_79B1, "the hash step");
        assert_eq!(p[11].k, 4);
        assert_eq!(source_steering(0)[11].k, 1, "never a division by zero");
    }
}
