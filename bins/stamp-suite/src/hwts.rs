//! `--hwtstamp auto|on|off`: NIC hardware timestamps where the interfaces
//! offer them, detected (ETHTOOL_GET_TS_INFO) and switched on (SIOCSHWTSTAMP)
//! by `stamp_net::hwtstamp`, never assumed. `auto` falls back to kernel
//! software timestamps, `on` refuses to start without them, `off` never
//! touches the NIC.

use std::net::{IpAddr, SocketAddr};

use stamp_config::HwTimestamping;

/// Whether to ask the socket for hardware timestamps; `Err` is the one-line
/// reason `--hwtstamp on` cannot be honoured.
#[cfg(target_os = "linux")]
pub fn decide(
    mode: HwTimestamping,
    local: IpAddr,
    peer: Option<SocketAddr>,
) -> Result<bool, String> {
    use stamp_net::hwtstamp;
    if mode == HwTimestamping::Off {
        return Ok(false);
    }
    let names = match hwtstamp::interfaces_for(local, peer) {
        Ok(n) => n,
        Err(e) => return fallback(mode, format!("cannot list interfaces: {e}")),
    };
    // A wildcard reflector receives on every interface: loopback traffic
    // can never carry a NIC timestamp, so it does not count against `on`.
    let wildcard = local.is_unspecified() && peer.is_none();
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| !(wildcard && n == "lo"))
        .collect();
    if names.is_empty() {
        return fallback(mode, format!("no interface to timestamp for {local}"));
    }
    // Per interface: usable and free (or already set up as we need), then
    // switched on. Timestamps are per datagram, so with `auto` the
    // interfaces that cannot give one fall back to the kernel's alone.
    let mut enabled = Vec::new();
    let mut refused = Vec::new();
    for name in &names {
        match prepare(name) {
            Ok(()) => enabled.push(name.clone()),
            Err(why) if mode == HwTimestamping::On => return Err(format!("--hwtstamp on: {why}")),
            Err(why) => refused.push(why),
        }
    }
    if !refused.is_empty() {
        tracing::info!(reasons = ?refused, "no hardware timestamps there: kernel software timestamps");
    }
    if enabled.is_empty() {
        return Ok(false);
    }
    tracing::info!(interfaces = ?enabled, "hardware timestamps on");
    Ok(true)
}

/// `auto` without hardware: software timestamps (logged); `on`: the error.
#[cfg(target_os = "linux")]
fn fallback(mode: HwTimestamping, why: String) -> Result<bool, String> {
    if mode == HwTimestamping::On {
        Err(format!("--hwtstamp on: {why}"))
    } else {
        tracing::info!(reason = %why, "no hardware timestamps, using kernel software timestamps");
        Ok(false)
    }
}

/// Check that interface `name` timestamps any UDP datagram in hardware and
/// switch it on, unless another program configured its clock otherwise
/// (ptp4l with one-step sync or PTP-only receive filters): never
/// reconfigured under its feet.
#[cfg(target_os = "linux")]
fn prepare(name: &str) -> Result<(), String> {
    use stamp_net::hwtstamp;
    match hwtstamp::query(name) {
        Ok(info) if info.hardware_usable() => {}
        Ok(info) => {
            return Err(format!(
                "interface {name} has no hardware timestamping ({})",
                info.why_not()
            ))
        }
        Err(e) => return Err(format!("interface {name}: ETHTOOL_GET_TS_INFO failed: {e}")),
    }
    match hwtstamp::current(name).map(|(tx, rx)| hwtstamp::setup_for(tx, rx)) {
        Ok(hwtstamp::Setup::Ready) => return Ok(()),
        Ok(hwtstamp::Setup::Busy) => {
            return Err(format!(
                "interface {name}: hardware timestamping is configured by another program (SIOCGHWTSTAMP), left alone"
            ))
        }
        Ok(hwtstamp::Setup::Enable) | Err(_) => {}
    }
    hwtstamp::enable(name).map_err(|e| {
        format!("interface {name}: cannot switch hardware timestamps on (SIOCSHWTSTAMP): {e}")
    })
}

#[cfg(not(target_os = "linux"))]
pub fn decide(
    mode: HwTimestamping,
    _local: IpAddr,
    _peer: Option<SocketAddr>,
) -> Result<bool, String> {
    match mode {
        HwTimestamping::On => Err("--hwtstamp on: hardware timestamps need Linux".into()),
        _ => Ok(false),
    }
}
