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
    let refuse = |why: String| -> Result<bool, String> {
        if mode == HwTimestamping::On {
            Err(format!("--hwtstamp on: {why}"))
        } else {
            tracing::info!(reason = %why, "no hardware timestamps, using kernel software timestamps");
            Ok(false)
        }
    };
    let names = match hwtstamp::interfaces_for(local, peer) {
        Ok(n) if !n.is_empty() => n,
        Ok(_) => return refuse(format!("no interface holds {local}")),
        Err(e) => return refuse(format!("cannot list interfaces: {e}")),
    };
    for name in &names {
        match hwtstamp::query(name) {
            Ok(info) if info.hardware_usable() => {}
            Ok(info) => {
                return refuse(format!(
                    "interface {name} has no hardware timestamping ({})",
                    info.why_not()
                ))
            }
            Err(e) => return refuse(format!("interface {name}: ETHTOOL_GET_TS_INFO failed: {e}")),
        }
    }
    for name in &names {
        // Never reconfigure a NIC clock someone else set up (ptp4l with
        // one-step sync or PTP-only receive filters).
        match hwtstamp::current(name).map(|(tx, rx)| hwtstamp::setup_for(tx, rx)) {
            Ok(hwtstamp::Setup::Ready) => continue,
            Ok(hwtstamp::Setup::Busy) => {
                return refuse(format!(
                    "interface {name}: hardware timestamping is configured by another program (SIOCGHWTSTAMP), left alone"
                ))
            }
            Ok(hwtstamp::Setup::Enable) | Err(_) => {}
        }
        if let Err(e) = hwtstamp::enable(name) {
            return refuse(format!(
                "interface {name}: cannot switch hardware timestamps on (SIOCSHWTSTAMP): {e}"
            ));
        }
    }
    tracing::info!(interfaces = ?names, "hardware timestamps on");
    Ok(true)
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
