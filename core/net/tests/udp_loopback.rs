//! UdpTransport over real loopback sockets (127.0.0.1 and ::1): what the
//! receive metadata reports, per-datagram TOS and source address on send,
//! batching, jumbo datagrams and truncation.
// The crate's own dependencies (nix, socket2, ...) are not used here.
#![allow(unused_crate_dependencies)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stamp_core::clock::TimestampSource;
use stamp_core::transport::{RecvMeta, SendMeta, Transport};
use stamp_net::{UdpOptions, UdpTransport};
use stamp_wire::MAX_DATAGRAM;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

fn buffers(n: usize) -> Vec<Box<[u8]>> {
    (0..n)
        .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
        .collect()
}

fn wall_clock_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Bind, or `None` when the host has no IPv6 loopback (the test then
/// passes vacuously and says so).
fn bind_or_skip(addr: SocketAddr, opts: &UdpOptions) -> Option<UdpTransport> {
    match UdpTransport::bind(addr, opts) {
        Ok(t) => Some(t),
        Err(e) if addr.is_ipv6() => {
            eprintln!("skipping: cannot bind {addr}: {e}");
            None
        }
        Err(e) => panic!("bind {addr}: {e}"),
    }
}

async fn send_one(tx: &UdpTransport, payload: &[u8], meta: SendMeta) {
    let mut buf = vec![0u8; payload.len().max(1)].into_boxed_slice();
    buf[..payload.len()].copy_from_slice(payload);
    let sent = timeout(WAIT, tx.send_batch(&[buf], &[meta]))
        .await
        .expect("send timed out")
        .expect("send");
    assert_eq!(sent, 1);
}

async fn recv_one(rx: &UdpTransport) -> (Box<[u8]>, RecvMeta) {
    let mut bufs = buffers(4);
    let mut metas = [RecvMeta::default(); 4];
    let n = timeout(WAIT, rx.recv_batch(&mut bufs, &mut metas))
        .await
        .expect("receive timed out")
        .expect("receive");
    assert_eq!(n, 1, "expected exactly one datagram");
    (bufs.swap_remove(0), metas[0])
}

#[tokio::test]
async fn ipv4_round_trip_reports_source_destination_ttl_tos_and_kernel_time() {
    // Bound to the wildcard, it must still report 127.0.0.1 as destination.
    let rx = UdpTransport::bind("0.0.0.0:0".parse().unwrap(), &UdpOptions::default()).unwrap();
    let tx_opts = UdpOptions {
        ttl: Some(37),
        ..UdpOptions::default()
    };
    let tx = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &tx_opts).unwrap();
    let caps = rx.capabilities();
    assert!(caps.ttl && caps.tos && caps.dst_addr, "{caps:?}");
    assert_eq!(caps.rx_timestamp, Some(TimestampSource::Kernel));

    let port = rx.local_addr().unwrap().port();
    let mut meta = SendMeta::new(5, SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    meta.tos = Some(0xB8);
    let before = wall_clock_nanos();
    send_one(&tx, b"hello", meta).await;
    let (buf, got) = recv_one(&rx).await;
    let after = wall_clock_nanos();

    assert_eq!(&buf[..got.len], b"hello");
    assert_eq!(got.src, tx.local_addr().unwrap());
    assert_eq!(got.dst, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!(got.dst_port, port);
    assert_ne!(got.ifindex, 0);
    assert_eq!(got.ttl, Some(37));
    assert_eq!(got.tos, Some(0xB8));
    let (t, source) = got.rx_time.expect("kernel receive timestamp");
    assert_eq!(source, TimestampSource::Kernel);
    // Taken between the send and the end of the receive (1 ms of slack for
    // the clocks' granularity).
    assert!(
        t.0 + 1_000_000 >= before && t.0 <= after + 1_000_000,
        "{before} <= {} <= {after}",
        t.0
    );
}

#[tokio::test]
async fn default_options_send_with_ttl_255_and_the_socket_tos() {
    let rx = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &UdpOptions::default()).unwrap();
    let tx_opts = UdpOptions {
        tos: Some(0x28),
        ..UdpOptions::default()
    };
    let tx = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &tx_opts).unwrap();
    send_one(&tx, b"x", SendMeta::new(1, rx.local_addr().unwrap())).await;
    let (_, got) = recv_one(&rx).await;
    assert_eq!(got.ttl, Some(255));
    assert_eq!(got.tos, Some(0x28));
}

#[tokio::test]
async fn ipv4_reply_leaves_from_the_chosen_source_address() {
    // 127.0.0.0/8 is all local: send from 127.0.0.2 to 127.0.0.3 through
    // wildcard-bound sockets, with the source picked per datagram.
    let rx = UdpTransport::bind("0.0.0.0:0".parse().unwrap(), &UdpOptions::default()).unwrap();
    let tx = UdpTransport::bind("0.0.0.0:0".parse().unwrap(), &UdpOptions::default()).unwrap();
    assert!(tx.capabilities().set_src);
    let port = rx.local_addr().unwrap().port();
    let mut meta = SendMeta::new(3, SocketAddr::from((Ipv4Addr::new(127, 0, 0, 3), port)));
    meta.src = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    send_one(&tx, b"abc", meta).await;
    let (_, got) = recv_one(&rx).await;
    assert_eq!(
        got.src,
        SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), tx.local_addr().unwrap().port()))
    );
    assert_eq!(got.dst, Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))));
}

#[tokio::test]
async fn ipv6_round_trip_reports_hop_limit_traffic_class_and_kernel_time() {
    let Some(rx) = bind_or_skip("[::]:0".parse().unwrap(), &UdpOptions::default()) else {
        return;
    };
    let tx_opts = UdpOptions {
        ttl: Some(37),
        ..UdpOptions::default()
    };
    let Some(tx) = bind_or_skip("[::1]:0".parse().unwrap(), &tx_opts) else {
        return;
    };
    let port = rx.local_addr().unwrap().port();
    let mut meta = SendMeta::new(4, SocketAddr::from((Ipv6Addr::LOCALHOST, port)));
    meta.tos = Some(0xB8);
    let before = wall_clock_nanos();
    send_one(&tx, b"six!", meta).await;
    let (buf, got) = recv_one(&rx).await;
    let after = wall_clock_nanos();

    assert_eq!(&buf[..got.len], b"six!");
    assert_eq!(got.src, tx.local_addr().unwrap());
    assert_eq!(got.dst, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(got.dst_port, port);
    assert_eq!(got.ttl, Some(37));
    assert_eq!(got.tos, Some(0xB8));
    let (t, source) = got.rx_time.expect("kernel receive timestamp");
    assert_eq!(source, TimestampSource::Kernel);
    assert!(t.0 + 1_000_000 >= before && t.0 <= after + 1_000_000);
}

#[tokio::test]
async fn dual_stack_socket_reports_and_reaches_ipv4_peers_as_ipv4() {
    let Some(reflector) = bind_or_skip("[::]:0".parse().unwrap(), &UdpOptions::default()) else {
        return;
    };
    let sender_opts = UdpOptions {
        ttl: Some(41),
        ..UdpOptions::default()
    };
    let sender = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &sender_opts).unwrap();
    let port = reflector.local_addr().unwrap().port();

    let mut meta = SendMeta::new(4, SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    meta.tos = Some(0x04);
    send_one(&sender, b"ping", meta).await;
    let (_, got) = recv_one(&reflector).await;
    assert_eq!(
        got.src,
        sender.local_addr().unwrap(),
        "v4-mapped source must be shown as IPv4"
    );
    assert_eq!(got.dst, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!(got.ttl, Some(41));
    assert_eq!(got.tos, Some(0x04));

    // Reply to the plain IPv4 address, from the address the request went
    // to, with a TOS of its own and the reflector's TTL 255.
    let mut reply = SendMeta::new(4, got.src);
    reply.src = got.dst;
    reply.tos = Some(0xB8);
    send_one(&reflector, b"pong", reply).await;
    let (buf, back) = recv_one(&sender).await;
    assert_eq!(&buf[..back.len], b"pong");
    assert_eq!(back.src, SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    assert_eq!(back.tos, Some(0xB8));
    assert_eq!(back.ttl, Some(255));
}

#[tokio::test]
async fn twenty_datagrams_in_one_send_batch_arrive_in_few_receive_calls() {
    let rx = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &UdpOptions::default()).unwrap();
    let tx = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &UdpOptions::default()).unwrap();
    let dst = rx.local_addr().unwrap();
    let out: Vec<Box<[u8]>> = (0..20u8).map(|i| vec![i; 44].into_boxed_slice()).collect();
    let metas: Vec<SendMeta> = (0..20).map(|_| SendMeta::new(44, dst)).collect();
    let sent = timeout(WAIT, tx.send_batch(&out, &metas))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent, 20);

    let mut bufs = buffers(32);
    let mut got = [RecvMeta::default(); 32];
    let mut seen = Vec::new();
    let mut calls = 0;
    while seen.len() < 20 {
        let n = timeout(WAIT, rx.recv_batch(&mut bufs, &mut got))
            .await
            .expect("timed out")
            .unwrap();
        calls += 1;
        for (buf, meta) in bufs.iter().zip(&got).take(n) {
            assert_eq!(meta.len, 44);
            seen.push(buf[0]);
        }
    }
    assert_eq!(seen, (0..20u8).collect::<Vec<_>>());
    assert!(calls <= 3, "{calls} receive calls for 20 queued datagrams");
}

#[tokio::test]
async fn jumbo_datagram_of_9000_octets_arrives_whole() {
    let rx = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &UdpOptions::default()).unwrap();
    let tx = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &UdpOptions::default()).unwrap();
    let payload: Vec<u8> = (0..9000u32).map(|i| (i % 251) as u8).collect();
    send_one(
        &tx,
        &payload,
        SendMeta::new(payload.len(), rx.local_addr().unwrap()),
    )
    .await;
    let (buf, got) = recv_one(&rx).await;
    assert_eq!(got.len, 9000);
    assert_eq!(&buf[..9000], &payload[..]);
    assert_eq!(rx.truncated(), 0);
}

#[tokio::test]
async fn datagram_larger_than_its_buffer_is_dropped_and_counted() {
    let rx = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &UdpOptions::default()).unwrap();
    let tx = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &UdpOptions::default()).unwrap();
    let dst = rx.local_addr().unwrap();
    let out = vec![
        vec![1u8; MAX_DATAGRAM + 100].into_boxed_slice(),
        vec![2u8; 10].into_boxed_slice(),
    ];
    let metas = [
        SendMeta::new(MAX_DATAGRAM + 100, dst),
        SendMeta::new(10, dst),
    ];
    assert_eq!(
        timeout(WAIT, tx.send_batch(&out, &metas))
            .await
            .unwrap()
            .unwrap(),
        2
    );
    let (buf, got) = recv_one(&rx).await;
    assert_eq!((got.len, buf[0]), (10, 2));
    assert_eq!(rx.truncated(), 1);
}

#[tokio::test]
async fn without_kernel_timestamps_rx_time_is_left_to_the_caller() {
    let opts = UdpOptions {
        kernel_timestamps: false,
        ..UdpOptions::default()
    };
    let rx = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &opts).unwrap();
    assert_eq!(rx.capabilities().rx_timestamp, None);
    let tx = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &UdpOptions::default()).unwrap();
    send_one(&tx, b"t", SendMeta::new(1, rx.local_addr().unwrap())).await;
    let (_, got) = recv_one(&rx).await;
    assert_eq!(got.rx_time, None);
    assert_eq!(got.ttl, Some(255));
}

#[tokio::test]
async fn send_metadata_longer_than_its_buffer_is_refused() {
    let tx = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &UdpOptions::default()).unwrap();
    let buf = vec![0u8; 8].into_boxed_slice();
    let meta = SendMeta::new(9, SocketAddr::from((Ipv4Addr::LOCALHOST, 9)));
    let err = timeout(WAIT, tx.send_batch(&[buf], &[meta]))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn idle_receive_waits_without_returning() {
    // No datagram: the receive must stay pending (and the timeout must be
    // able to cancel it) rather than return empty or error.
    let rx = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &UdpOptions::default()).unwrap();
    let mut bufs = buffers(2);
    let mut metas = [RecvMeta::default(); 2];
    let r = timeout(
        Duration::from_millis(100),
        rx.recv_batch(&mut bufs, &mut metas),
    )
    .await;
    assert!(r.is_err(), "recv_batch returned without a datagram: {r:?}");
}

#[tokio::test]
async fn two_sockets_share_a_port_with_reuse_port() {
    let opts = UdpOptions {
        reuse_port: true,
        ..UdpOptions::default()
    };
    let a = UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &opts).unwrap();
    let b = UdpTransport::bind(a.local_addr().unwrap(), &opts);
    assert!(b.is_ok(), "{b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_reflector_runs_in_a_spawned_task_and_replies_from_the_request_address() {
    // tokio::spawn needs the transport's futures to be Send.
    let reflector = std::sync::Arc::new(
        UdpTransport::bind("0.0.0.0:0".parse().unwrap(), &UdpOptions::default()).unwrap(),
    );
    let port = reflector.local_addr().unwrap().port();
    let echo = {
        let reflector = reflector.clone();
        tokio::spawn(async move {
            let mut bufs = buffers(8);
            let mut metas = [RecvMeta::default(); 8];
            let n = reflector.recv_batch(&mut bufs, &mut metas).await?;
            let replies: Vec<SendMeta> = metas[..n]
                .iter()
                .map(|m| SendMeta {
                    src: m.dst,
                    ..SendMeta::new(m.len, m.src)
                })
                .collect();
            reflector.send_batch(&bufs[..n], &replies).await
        })
    };
    let sender =
        UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &UdpOptions::default()).unwrap();
    send_one(
        &sender,
        b"echo",
        SendMeta::new(4, SocketAddr::from((Ipv4Addr::new(127, 0, 0, 9), port))),
    )
    .await;
    let (buf, back) = recv_one(&sender).await;
    assert_eq!(&buf[..back.len], b"echo");
    assert_eq!(
        back.src,
        SocketAddr::from((Ipv4Addr::new(127, 0, 0, 9), port))
    );
    assert_eq!(timeout(WAIT, echo).await.unwrap().unwrap().unwrap(), 1);
}

/// CPU time (user + system, clock ticks) of the calling thread, from
/// proc(5) /proc/thread-self/stat fields 14 and 15.
#[cfg(target_os = "linux")]
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // Fields after the parenthesised command name start at field 3.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn idle_receive_after_a_dropped_datagram_does_not_spin() {
    // A woken-but-empty socket is the trap: readiness must be cleared by
    // try_io, not polled in a loop. A dropped (truncated) datagram wakes the
    // receiver without giving it anything to return. The receiver runs on
    // its own thread: a spinning loop never yields, so no tokio timeout
    // could stop it, but this thread can give up waiting for it.
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = rt.block_on(async {
            let rx =
                UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &UdpOptions::default()).unwrap();
            let tx =
                UdpTransport::bind("127.0.0.1:0".parse().unwrap(), &UdpOptions::default()).unwrap();
            let big = vec![0u8; MAX_DATAGRAM + 1].into_boxed_slice();
            send_one(
                &tx,
                &big,
                SendMeta::new(big.len(), rx.local_addr().unwrap()),
            )
            .await;
            let mut bufs = buffers(2);
            let mut metas = [RecvMeta::default(); 2];
            let before = thread_cpu_ticks();
            let r = timeout(
                Duration::from_millis(500),
                rx.recv_batch(&mut bufs, &mut metas),
            )
            .await;
            (r.is_err(), rx.truncated(), thread_cpu_ticks() - before)
        });
        let _ = done.send(outcome);
    });
    let (still_waiting, truncated, used) = result
        .recv_timeout(WAIT)
        .expect("recv_batch spun without yielding to the runtime");
    assert!(still_waiting, "recv_batch returned without a datagram");
    assert_eq!(truncated, 1);
    // A spinning loop would burn the whole 500 ms (about 50 ticks at 100 Hz).
    assert!(used < 10, "{used} ticks of CPU while idle");
}
