//! Kernel transmit timestamps over loopback (Linux): every datagram sent on
//! a socket opened with `tx_timestamps` gets one, numbered from 0 in send
//! order, taken between the user-space clock readings around the send.
#![cfg(target_os = "linux")]

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use stamp_core::clock::{TimestampSource, UnixNanos};
use stamp_net::txstamp::{drain, TxStamp};
use stamp_net::{BlockingUdpTransport, UdpOptions};

fn realtime() -> UnixNanos {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    UnixNanos(d.as_nanos() as u64)
}

#[test]
fn every_datagram_gets_a_kernel_transmit_timestamp_in_order() {
    let opts = UdpOptions {
        tx_timestamps: true,
        ..UdpOptions::default()
    };
    let t = BlockingUdpTransport::bind(
        "127.0.0.1:0".parse().unwrap(),
        &opts,
        Duration::from_millis(50),
    )
    .unwrap();
    assert_eq!(
        t.capabilities().tx_timestamp,
        Some(TimestampSource::Kernel),
        "{:?}",
        t.capabilities()
    );
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dst: SocketAddr = peer.local_addr().unwrap();
    let mut got: Vec<(TxStamp, UnixNanos, UnixNanos)> = Vec::new();
    for i in 0..20u8 {
        let before = realtime();
        t.socket().send_to(&[i; 44], dst).unwrap();
        let after = realtime();
        let mut stamps = Vec::new();
        drain(t.socket().as_raw_fd(), |s| stamps.push(s)).unwrap();
        assert_eq!(stamps.len(), 1, "datagram {i}: {stamps:?}");
        got.push((stamps[0], before, after));
    }
    for (i, (s, before, after)) in got.iter().enumerate() {
        assert_eq!(s.key, i as u32, "{got:?}");
        assert_eq!(s.source, TimestampSource::Kernel);
        assert!(
            *before <= s.time && s.time <= *after,
            "datagram {i}: {before:?} <= {:?} <= {after:?}",
            s.time
        );
    }
}

#[test]
fn without_the_option_nothing_is_queued() {
    let t = BlockingUdpTransport::bind(
        "127.0.0.1:0".parse().unwrap(),
        &UdpOptions::default(),
        Duration::from_millis(50),
    )
    .unwrap();
    assert_eq!(t.capabilities().tx_timestamp, None);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    t.socket()
        .send_to(&[0; 44], peer.local_addr().unwrap())
        .unwrap();
    assert_eq!(drain(t.socket().as_raw_fd(), |_| {}).unwrap(), 0);
}
