//! Wire formats of STAMP: the four base packets of RFC 8762 (with the SSID of
//! RFC 8972 §3), the TLV framing of RFC 8972 §4, NTP and PTP timestamps and the
//! Error Estimate (RFC 4656 §4.1.2, RFC 8186 §2.3).
//!
//! Views follow the smoltcp pattern: `Packet<T: AsRef<[u8]>>` with
//! `new_checked`, getters on `AsRef`, setters on `AsMut`, and a plain `Repr`
//! with `parse` / `emit` / `buffer_len`. After a successful check no accessor
//! can panic. Nothing here allocates; the crate is `no_std`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

mod error;
mod error_estimate;
pub mod field;
mod packet;
mod timestamp;
pub mod tlv;

pub use error::WireError;
pub use error_estimate::ErrorEstimate;
pub use packet::{
    AuthMode, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr, HMAC_COVERAGE, HMAC_LEN,
    MAX_DATAGRAM, MIN_TWAMP_LIGHT_REQUEST,
};
pub use timestamp::{Timestamp, TimestampFormat, NTP_UNIX_OFFSET_SECS};
pub use tlv::{Tlv, TlvError, TlvFlags, TlvIter, TlvRef, TlvType};
