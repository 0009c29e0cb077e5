//! Plain C structs read from or handed to the kernel.

/// A C struct for which every bit pattern, all zeros included, is a valid
/// value: integers, arrays of integers, and structs of those (no references,
/// no enums, no `bool`). Raw pointers qualify too (any address is a valid
/// pointer value; only dereferencing needs care).
///
/// # Safety
///
/// Implement only for types that satisfy the above.
pub(crate) unsafe trait Plain: Copy {}

/// The all-zero value of a plain C struct, the usual way to build the libc
/// structs whose private padding fields rule out a struct literal.
pub(crate) fn zeroed<T: Plain>() -> T {
    // Safety: `T: Plain` promises that all zeros is a valid `T`.
    unsafe { std::mem::zeroed() }
}

// Safety (for all impls below): libc's definitions of these types are
// `#[repr(C)]` structs of integers, integer arrays and raw pointers only.
#[cfg(target_os = "linux")]
unsafe impl Plain for libc::timex {}
unsafe impl Plain for libc::c_int {}
unsafe impl Plain for u8 {}
unsafe impl Plain for u16 {}
unsafe impl Plain for u32 {}
unsafe impl Plain for libc::timespec {}
unsafe impl Plain for [libc::timespec; 3] {}
unsafe impl Plain for libc::sockaddr_storage {}
unsafe impl Plain for libc::sockaddr_in {}
unsafe impl Plain for libc::sockaddr_in6 {}
unsafe impl Plain for libc::iovec {}
unsafe impl Plain for libc::msghdr {}
unsafe impl Plain for libc::cmsghdr {}
#[cfg(target_os = "linux")]
unsafe impl Plain for libc::mmsghdr {}
#[cfg(target_os = "linux")]
unsafe impl Plain for libc::in_pktinfo {}
#[cfg(target_os = "linux")]
unsafe impl Plain for libc::in6_pktinfo {}
