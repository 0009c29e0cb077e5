//! stamp-net: the I/O half of stamp-suite.
//!
//! * [`UdpTransport`]: the [`stamp_core::transport::Transport`] over a UDP
//!   socket (RFC 8762 §4 runs STAMP over UDP), with the receive metadata the
//!   reflector and sender need (TTL / Hop Limit, TOS / Traffic Class, local
//!   address, kernel receive timestamps) and batched I/O
//!   (recvmmsg(2) / sendmmsg(2) on Linux).
//! * [`SystemClock`]: the [`stamp_core::clock::Clock`] over the system clock,
//!   NTP (UTC) or PTP (TAI) timescale, with the Error Estimate
//!   (RFC 8762 §4.2.1, RFC 4656 §4.1.2) taken from the kernel's sync state.
//! * `RawTransport` (feature `raw`, Linux): the reflector's transport over
//!   a packet socket, which hands TLV handlers the received IP header.
//! * [`exthdr`]: the sender's IPv6 Destination Options header (sticky
//!   IPV6_DSTOPTS).
//!
//! This is the only crate of the workspace allowed `unsafe`: system calls
//! and control messages that neither nix nor socket2 wrap safely. Every
//! `unsafe` block says why it is sound in a `// Safety:` comment.
#![allow(unsafe_code)]
#![warn(missing_docs)]

#[cfg(target_os = "linux")]
pub mod bpf;
pub mod clock;
pub mod exthdr;
#[cfg(target_os = "linux")]
pub mod hwtstamp;
mod plain;
#[cfg(all(feature = "raw", target_os = "linux"))]
pub mod raw;
#[cfg(target_os = "linux")]
pub mod txstamp;
pub mod udp;

pub use clock::{ClockOverrides, ClockStatus, SystemClock};
#[cfg(all(feature = "raw", target_os = "linux"))]
pub use raw::RawTransport;
pub use udp::{BlockingUdpTransport, GsoState, UdpOptions, UdpTransport};
