//! NIC hardware timestamping (Linux, Documentation/networking/timestamping.rst
//! §3.1): detected per interface with the ETHTOOL_GET_TS_INFO ioctl, switched
//! on with SIOCSHWTSTAMP (transmit on, receive filter "all packets"), never
//! assumed. Loopback and most virtual interfaces offer software timestamps
//! only.

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use crate::plain::{zeroed, Plain};

/// `SIOCETHTOOL` (linux/sockios.h).
const SIOCETHTOOL: libc::c_ulong = 0x8946;
/// `ETHTOOL_GET_TS_INFO` (linux/ethtool.h).
const ETHTOOL_GET_TS_INFO: u32 = 0x41;

/// `struct ethtool_ts_info` (linux/ethtool.h).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct EthtoolTsInfo {
    cmd: u32,
    so_timestamping: u32,
    phc_index: i32,
    tx_types: u32,
    tx_reserved: [u32; 3],
    rx_filters: u32,
    rx_reserved: [u32; 3],
}

/// `struct ifreq` with the `ifr_data` member of the union (linux/if.h):
/// 16 octets of name, then a union of 24 octets on 64-bit systems.
#[repr(C)]
#[derive(Clone, Copy)]
struct IfreqData {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 24 - size_of::<usize>()],
}

// Safety: `#[repr(C)]` structs of integers, arrays and a raw pointer.
unsafe impl Plain for EthtoolTsInfo {}
// Safety: as above.
unsafe impl Plain for IfreqData {}
// Safety: libc's `#[repr(C)]` struct of integers.
unsafe impl Plain for libc::hwtstamp_config {}

/// What an interface says it can timestamp (ETHTOOL_GET_TS_INFO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsInfo {
    /// SOF_TIMESTAMPING_* capabilities.
    pub so_timestamping: u32,
    /// PTP hardware clock index, −1 for none.
    pub phc_index: i32,
    /// Bit mask of HWTSTAMP_TX_* types.
    pub tx_types: u32,
    /// Bit mask of HWTSTAMP_FILTER_* receive filters.
    pub rx_filters: u32,
}

impl TsInfo {
    /// Hardware transmit and receive timestamps of any UDP datagram: raw
    /// hardware timestamps, the TX_ON type and the "all" receive filter
    /// (PTP-only filters do not match STAMP packets).
    pub fn hardware_usable(&self) -> bool {
        let need = libc::SOF_TIMESTAMPING_TX_HARDWARE
            | libc::SOF_TIMESTAMPING_RX_HARDWARE
            | libc::SOF_TIMESTAMPING_RAW_HARDWARE;
        self.so_timestamping & need == need
            && self.tx_types & (1 << libc::HWTSTAMP_TX_ON) != 0
            && self.rx_filters & (1 << libc::HWTSTAMP_FILTER_ALL) != 0
    }

    /// Why [`TsInfo::hardware_usable`] is false, in a few words.
    pub fn why_not(&self) -> &'static str {
        if self.so_timestamping & libc::SOF_TIMESTAMPING_RAW_HARDWARE == 0 {
            "software timestamps only"
        } else if self.tx_types & (1 << libc::HWTSTAMP_TX_ON) == 0 {
            "no hardware transmit timestamps"
        } else if self.rx_filters & (1 << libc::HWTSTAMP_FILTER_ALL) == 0 {
            "hardware receive timestamps for PTP only"
        } else {
            "usable"
        }
    }
}

fn ifreq(name: &str, data: *mut libc::c_void) -> io::Result<IfreqData> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let bytes = c.as_bytes_with_nul();
    if bytes.len() > libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    let mut req: IfreqData = zeroed();
    for (d, s) in req.name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    req.data = data;
    Ok(req)
}

/// ETHTOOL_GET_TS_INFO of interface `name`.
pub fn query(name: &str) -> io::Result<TsInfo> {
    let sock = UdpSocket::bind("0.0.0.0:0").or_else(|_| UdpSocket::bind("[::]:0"))?;
    let mut info: EthtoolTsInfo = zeroed();
    info.cmd = ETHTOOL_GET_TS_INFO;
    let mut req = ifreq(name, std::ptr::from_mut(&mut info).cast())?;
    // Safety: `req` names the interface and points at a live
    // ethtool_ts_info that the kernel fills; both outlive the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TsInfo {
        so_timestamping: info.so_timestamping,
        phc_index: info.phc_index,
        tx_types: info.tx_types,
        rx_filters: info.rx_filters,
    })
}

/// The interface's current hardware timestamping configuration
/// (SIOCGHWTSTAMP): `(tx_type, rx_filter)` as HWTSTAMP_TX_* and
/// HWTSTAMP_FILTER_* values.
pub fn current(name: &str) -> io::Result<(u32, u32)> {
    let sock = UdpSocket::bind("0.0.0.0:0").or_else(|_| UdpSocket::bind("[::]:0"))?;
    let mut cfg: libc::hwtstamp_config = zeroed();
    let mut req = ifreq(name, std::ptr::from_mut(&mut cfg).cast())?;
    // Safety: as in `query`, with a hwtstamp_config the kernel fills.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGHWTSTAMP as _, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cfg.tx_type as u32, cfg.rx_filter as u32))
}

/// What to do about an interface's current configuration `(tx_type,
/// rx_filter)`, so that another user of the NIC clock (ptp4l with one-step
/// sync or PTP-only filters) is never reconfigured under its feet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Already timestamping every datagram: use it as it is.
    Ready,
    /// Switched off: switch it on ([`enable`]).
    Enable,
    /// Configured otherwise by someone else: leave it alone.
    Busy,
}

/// [`Setup`] for a configuration read with [`current`].
pub fn setup_for(tx_type: u32, rx_filter: u32) -> Setup {
    match (tx_type, rx_filter) {
        (t, f) if t == libc::HWTSTAMP_TX_ON && f == libc::HWTSTAMP_FILTER_ALL => Setup::Ready,
        (t, f) if t == libc::HWTSTAMP_TX_OFF && f == libc::HWTSTAMP_FILTER_NONE => Setup::Enable,
        _ => Setup::Busy,
    }
}

/// Switch interface `name` to hardware-timestamp every outgoing datagram
/// that asks for it and every incoming one (SIOCSHWTSTAMP, needs
/// CAP_NET_ADMIN; this is interface-wide and stays after the process ends,
/// as with ptp4l or `hwstamp_ctl`).
pub fn enable(name: &str) -> io::Result<()> {
    let sock = UdpSocket::bind("0.0.0.0:0").or_else(|_| UdpSocket::bind("[::]:0"))?;
    let mut cfg: libc::hwtstamp_config = zeroed();
    cfg.tx_type = libc::HWTSTAMP_TX_ON as _;
    cfg.rx_filter = libc::HWTSTAMP_FILTER_ALL as _;
    let mut req = ifreq(name, std::ptr::from_mut(&mut cfg).cast())?;
    // Safety: as in `query`, with a hwtstamp_config.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSHWTSTAMP as _, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The interfaces a socket bound to `local` sends and receives on: the one
/// holding `local`, or when `local` is a wildcard, the one holding the
/// source address the kernel picks for `peer` (a sender), else every
/// interface that is up (a reflector).
pub fn interfaces_for(local: IpAddr, peer: Option<SocketAddr>) -> io::Result<Vec<String>> {
    let mut local = local;
    if local.is_unspecified() {
        if let Some(peer) = peer {
            // connect(2) on a UDP socket sends nothing; it only routes.
            let bind: SocketAddr = if peer.is_ipv6() {
                "[::]:0".parse().expect("literal")
            } else {
                "0.0.0.0:0".parse().expect("literal")
            };
            let probe = UdpSocket::bind(bind)?;
            probe.connect(peer)?;
            local = probe.local_addr()?.ip();
        }
    }
    let mut names: Vec<String> = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        let up = ifa.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP);
        let addr = ifa.address.as_ref().and_then(|a| {
            a.as_sockaddr_in()
                .map(|s| IpAddr::V4(s.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
        });
        let matches = match addr {
            Some(a) if !local.is_unspecified() => a == local,
            Some(_) => up,
            None => false,
        };
        if matches && !names.contains(&ifa.interface_name) {
            names.push(ifa.interface_name.clone());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_is_the_kernel_size() {
        assert_eq!(size_of::<IfreqData>(), 40);
        assert_eq!(size_of::<EthtoolTsInfo>(), 44);
    }

    #[test]
    fn loopback_has_no_hardware_timestamps() {
        let info = query("lo").expect("ETHTOOL_GET_TS_INFO on lo");
        assert!(!info.hardware_usable(), "{info:?}");
        assert_eq!(info.why_not(), "software timestamps only");
        assert_ne!(info.so_timestamping & libc::SOF_TIMESTAMPING_RX_SOFTWARE, 0);
    }

    #[test]
    fn loopback_address_maps_to_lo() {
        let names = interfaces_for("127.0.0.1".parse().unwrap(), None).unwrap();
        assert_eq!(names, vec!["lo".to_string()]);
    }

    #[test]
    fn another_users_configuration_is_left_alone() {
        assert_eq!(
            setup_for(libc::HWTSTAMP_TX_OFF, libc::HWTSTAMP_FILTER_NONE),
            Setup::Enable
        );
        assert_eq!(
            setup_for(libc::HWTSTAMP_TX_ON, libc::HWTSTAMP_FILTER_ALL),
            Setup::Ready
        );
        // ptp4l: one-step sync, or PTP v2 event packets only.
        assert_eq!(
            setup_for(libc::HWTSTAMP_TX_ONESTEP_SYNC, libc::HWTSTAMP_FILTER_ALL),
            Setup::Busy
        );
        assert_eq!(setup_for(libc::HWTSTAMP_TX_ON, 12), Setup::Busy);
    }

    #[test]
    fn a_nic_with_raw_hardware_and_filter_all_is_usable() {
        let info = TsInfo {
            so_timestamping: libc::SOF_TIMESTAMPING_TX_HARDWARE
                | libc::SOF_TIMESTAMPING_RX_HARDWARE
                | libc::SOF_TIMESTAMPING_RAW_HARDWARE,
            phc_index: 0,
            tx_types: 1 << libc::HWTSTAMP_TX_ON,
            rx_filters: 1 << libc::HWTSTAMP_FILTER_ALL,
        };
        assert!(info.hardware_usable());
        let ptp_only = TsInfo {
            rx_filters: 1 << 12,
            ..info
        };
        assert_eq!(
            ptp_only.why_not(),
            "hardware receive timestamps for PTP only"
        );
    }
}
