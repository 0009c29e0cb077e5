//! UDP segmentation offload on send (UDP_SEGMENT): consecutive datagrams
//! to one destination with the same size and control messages leave as one
//! message, and the receiver sees exactly what one-by-one sends give it:
//! every datagram on its own, in order, with its size, payload, TOS and
//! TTL. The kernel's refusal (here provoked with SO_NO_CHECK) turns the
//! offload off and loses nothing.
#![cfg(target_os = "linux")]
// The crate's own dependencies (nix, socket2, ...) are not used here.
#![allow(unused_crate_dependencies)]
// stamp-net is the crate allowed `unsafe`: one setsockopt(2) below.
#![allow(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use stamp_core::transport::{RecvMeta, SendMeta};
use stamp_net::{BlockingUdpTransport, UdpOptions};

const WAKE: Duration = Duration::from_millis(50);

fn bind(addr: &str, opts: &UdpOptions) -> Option<BlockingUdpTransport> {
    match BlockingUdpTransport::bind(addr.parse().unwrap(), opts, WAKE) {
        Ok(t) => Some(t),
        Err(e) if addr.starts_with('[') => {
            eprintln!("skipping: cannot bind {addr}: {e}");
            None
        }
        Err(e) => panic!("bind {addr}: {e}"),
    }
}

/// Datagram `i` of a test: `len` octets, every one `i`.
fn datagram(i: usize, len: usize) -> Box<[u8]> {
    vec![i as u8; len].into_boxed_slice()
}

/// Send all of `metas` (with their datagrams) through `tx`.
fn send_all(tx: &BlockingUdpTransport, bufs: &[Box<[u8]>], metas: &[SendMeta]) {
    let mut sent = 0;
    while sent < metas.len() {
        let n = tx
            .send_batch(&bufs[sent..], &metas[sent..])
            .expect("send_batch");
        assert!(n > 0, "send_batch made no progress at {sent}");
        sent += n;
    }
}

/// Receive `n` datagrams (or fail after 5 s): (payload, metadata) in order.
fn recv_n(rx: &BlockingUdpTransport, n: usize) -> Vec<(Vec<u8>, RecvMeta)> {
    let mut bufs: Vec<Box<[u8]>> = (0..64)
        .map(|_| vec![0u8; 9216].into_boxed_slice())
        .collect();
    let mut metas = vec![RecvMeta::default(); 64];
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} datagrams arrived",
            out.len()
        );
        let got = rx.recv_batch(&mut bufs, &mut metas, None).expect("recv");
        for (b, m) in bufs.iter().zip(&metas).take(got) {
            out.push((b[..m.len].to_vec(), *m));
        }
    }
    // Nothing more than what was sent.
    let extra = rx.recv_batch(&mut bufs, &mut metas, None).expect("recv");
    assert_eq!(extra, 0, "more datagrams arrived than were sent");
    out
}

fn check_payloads(got: &[(Vec<u8>, RecvMeta)], sizes: &[usize]) {
    assert_eq!(got.len(), sizes.len());
    for (i, ((payload, meta), &size)) in got.iter().zip(sizes).enumerate() {
        assert_eq!(meta.len, size, "datagram {i}: length");
        assert!(
            payload.iter().all(|&b| b == i as u8),
            "datagram {i}: payload of another datagram"
        );
    }
}

#[test]
fn equal_sized_datagrams_to_one_peer_leave_as_trains_and_arrive_one_by_one() {
    let opts = UdpOptions::default();
    let rx = bind("127.0.0.1:0", &opts).unwrap();
    let tx = bind("127.0.0.1:0", &opts).unwrap();
    assert!(
        tx.gso().active,
        "this kernel has UDP_SEGMENT (Linux >= 4.18)"
    );
    // 30 of 140, a short one that ends the first train, 9 of 140.
    let mut sizes = vec![140; 30];
    sizes.push(100);
    sizes.extend([140; 9]);
    let bufs: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(i, &l)| datagram(i, l))
        .collect();
    let dst = rx.local_addr();
    let metas: Vec<_> = sizes.iter().map(|&l| SendMeta::new(l, dst)).collect();
    send_all(&tx, &bufs, &metas);
    let got = recv_n(&rx, sizes.len());
    check_payloads(&got, &sizes);
    for (_, m) in &got {
        assert_eq!(m.src, tx.local_addr());
        assert_eq!(m.ttl, Some(255), "every segment has its own IP header");
    }
    assert_eq!(tx.gso().segmented, 40, "all 40 in two trains");
    assert!(tx.gso().active);
}

#[test]
fn a_train_breaks_at_another_peer_another_tos_and_a_timestamp_request() {
    let opts = UdpOptions::default();
    let a = bind("127.0.0.1:0", &opts).unwrap();
    let b = bind("127.0.0.1:0", &opts).unwrap();
    let tx = bind("127.0.0.1:0", &opts).unwrap();
    let (da, db) = (a.local_addr(), b.local_addr());
    // Interleaved peers: no two neighbours share a destination.
    let alternating: Vec<SendMeta> = (0..8)
        .map(|i| SendMeta::new(64, if i % 2 == 0 { da } else { db }))
        .collect();
    let bufs: Vec<_> = (0..8).map(|i| datagram(i, 64)).collect();
    send_all(&tx, &bufs, &alternating);
    assert_eq!(tx.gso().segmented, 0, "alternating peers make no train");
    let (ga, gb) = (recv_n(&a, 4), recv_n(&b, 4));
    assert!(ga.iter().zip([0u8, 2, 4, 6]).all(|((p, _), i)| p[0] == i));
    assert!(gb.iter().zip([1u8, 3, 5, 7]).all(|((p, _), i)| p[0] == i));

    // To one peer: 4 with TOS 0, 4 with TOS 0xB8 (Class of Service), one
    // with a transmit-timestamp request, 3 more: trains of 4, 4, none, 3.
    let mut metas: Vec<SendMeta> = (0..12).map(|_| SendMeta::new(64, da)).collect();
    for m in &mut metas[4..8] {
        m.tos = Some(0xB8);
    }
    metas[8].tx_timestamp = true;
    let bufs: Vec<_> = (0..12).map(|i| datagram(i, 64)).collect();
    send_all(&tx, &bufs, &metas);
    let got = recv_n(&a, 12);
    check_payloads(&got, &[64; 12]);
    let tos: Vec<_> = got.iter().map(|(_, m)| m.tos.unwrap_or(0)).collect();
    assert_eq!(tos, [0, 0, 0, 0, 0xB8, 0xB8, 0xB8, 0xB8, 0, 0, 0, 0]);
    assert_eq!(
        tx.gso().segmented,
        11,
        "the timestamped datagram went alone"
    );
}

#[test]
fn datagrams_above_an_ethernet_mtu_are_never_segmented() {
    let opts = UdpOptions::default();
    let rx = bind("127.0.0.1:0", &opts).unwrap();
    let tx = bind("127.0.0.1:0", &opts).unwrap();
    let sizes = [1452, 1452, 1453, 1453, 9000, 9000];
    let bufs: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(i, &l)| datagram(i, l))
        .collect();
    let metas: Vec<_> = sizes
        .iter()
        .map(|&l| SendMeta::new(l, rx.local_addr()))
        .collect();
    send_all(&tx, &bufs, &metas);
    check_payloads(&recv_n(&rx, 6), &sizes);
    assert_eq!(tx.gso().segmented, 2, "only the two 1452-octet datagrams");
}

#[test]
fn ipv6_trains_arrive_whole() {
    let opts = UdpOptions::default();
    let Some(rx) = bind("[::1]:0", &opts) else {
        return;
    };
    let tx = bind("[::1]:0", &opts).unwrap();
    let sizes = [200; 16];
    let bufs: Vec<_> = (0..16).map(|i| datagram(i, 200)).collect();
    let metas: Vec<_> = sizes
        .iter()
        .map(|&l| SendMeta::new(l, rx.local_addr()))
        .collect();
    send_all(&tx, &bufs, &metas);
    let got = recv_n(&rx, 16);
    check_payloads(&got, &sizes);
    assert!(got.iter().all(|(_, m)| m.ttl == Some(255)));
    assert_eq!(tx.gso().segmented, 16);
}

#[test]
fn refused_trains_go_singly_then_the_offload_turns_off_and_nothing_is_lost() {
    let opts = UdpOptions::default();
    let rx = bind("127.0.0.1:0", &opts).unwrap();
    let tx = bind("127.0.0.1:0", &opts).unwrap();
    // socket(7) SO_NO_CHECK: no UDP checksum, with which the kernel refuses
    // segmentation whatever the size (EINVAL, which it also gives for a
    // segment above the path MTU).
    let one: libc::c_int = 1;
    // Safety: a valid socket and an int option.
    let rc = unsafe {
        libc::setsockopt(
            tx.socket().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NO_CHECK,
            std::ptr::from_ref(&one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    let round = |size: usize| {
        let bufs: Vec<_> = (0..10).map(|i| datagram(i, size)).collect();
        let metas: Vec<_> = (0..10)
            .map(|_| SendMeta::new(size, rx.local_addr()))
            .collect();
        send_all(&tx, &bufs, &metas);
        check_payloads(&recv_n(&rx, 10), &[size; 10]);
        tx.gso()
    };
    // Refused at 100 octets: these go singly, smaller trains are still tried.
    assert!(round(100).active);
    // 100 octets are no longer tried as a train (no new refusal).
    assert!(round(100).active);
    assert!(round(90).active, "second refusal");
    assert!(round(80).active, "third refusal");
    let g = round(70);
    assert!(!g.active, "the fourth refusal switched the offload off");
    assert_eq!(g.segmented, 0);
    // And it stays off, for every size.
    assert_eq!(round(40), g);
}

#[test]
fn switched_off_by_option_every_datagram_goes_alone() {
    let rx = bind("127.0.0.1:0", &UdpOptions::default()).unwrap();
    let off = UdpOptions {
        gso: false,
        ..UdpOptions::default()
    };
    let tx = bind("127.0.0.1:0", &off).unwrap();
    assert!(!tx.gso().active);
    let bufs: Vec<_> = (0..10).map(|i| datagram(i, 100)).collect();
    let metas: Vec<_> = (0..10)
        .map(|_| SendMeta::new(100, rx.local_addr()))
        .collect();
    send_all(&tx, &bufs, &metas);
    check_payloads(&recv_n(&rx, 10), &[100; 10]);
    assert_eq!(tx.gso().segmented, 0);
}

/// Send `n` datagrams of `size` octets from `tx` to a fresh IPv4 receiver
/// with IP_PKTINFO source `src`: every segment leaves from `src`, with TTL
/// 255, in one train.
fn pktinfo_train(tx: &BlockingUdpTransport, src: IpAddr, n: usize, size: usize) {
    let rx = bind("127.0.0.1:0", &UdpOptions::default()).unwrap();
    let metas: Vec<_> = (0..n)
        .map(|_| SendMeta {
            src: Some(src),
            ..SendMeta::new(size, rx.local_addr())
        })
        .collect();
    let bufs: Vec<_> = (0..n).map(|i| datagram(i, size)).collect();
    send_all(tx, &bufs, &metas);
    let got = recv_n(&rx, n);
    check_payloads(&got, &vec![size; n]);
    for (_, m) in &got {
        assert_eq!(m.src, SocketAddr::new(src, tx.local_addr().port()));
        assert_eq!(m.ttl, Some(255));
    }
    assert_eq!(tx.gso().segmented, n as u64);
    assert!(tx.gso().active);
}

#[test]
fn a_reply_source_given_by_pktinfo_holds_for_every_segment() {
    // A wildcard-bound socket sends with IP_PKTINFO: the whole train leaves
    // from the address asked for.
    let tx = bind("0.0.0.0:0", &UdpOptions::default()).unwrap();
    pktinfo_train(&tx, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), 6, 80);
}

#[test]
fn a_dual_stack_socket_sends_ipv4_trains() {
    // A wildcard [::] bind serves IPv4 peers too (v4-mapped): their replies
    // go down the IPv4 path, UDP_SEGMENT included.
    let Some(tx) = bind("[::]:0", &UdpOptions::default()) else {
        return;
    };
    pktinfo_train(&tx, IpAddr::V4(Ipv4Addr::LOCALHOST), 12, 120);
}
