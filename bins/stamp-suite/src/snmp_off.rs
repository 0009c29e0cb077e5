//! Stand-in for [`crate::snmp`] when the `snmp` feature is off (or not on
//! Unix): `--snmp` is refused with one line.

use std::net::SocketAddr;
use std::sync::Arc;

use stamp_config::Settings;

use crate::metrics::{ReflectorMetrics, SenderMetrics};

/// The refusal, said before anything starts.
pub const NO_SNMP: &str = "--snmp: this build has no SNMP support (feature `snmp`, Unix only)";

/// Whether `--snmp` works in this build.
pub const AVAILABLE: bool = false;

/// Refuses.
pub fn start_reflector(
    _s: &Settings,
    _port: u16,
    _workers: usize,
    _m: Arc<ReflectorMetrics>,
) -> Result<(), String> {
    Err(NO_SNMP.to_string())
}

/// Refuses.
pub fn start_sender(
    _s: &Settings,
    _targets: &[SocketAddr],
    _m: Arc<SenderMetrics>,
) -> Result<(), String> {
    Err(NO_SNMP.to_string())
}
