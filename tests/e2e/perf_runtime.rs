//! Runtime behaviour of issue 5 through the real binaries: `--workers N`
//! reflects every packet of several senders and merges its counters; an idle
//! sender and an idle reflector use (almost) no CPU; Ctrl-C stops either
//! within a second.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stamp_tests::{bin, count, cpu_ticks, json_record, sender, Reflector};

/// Names of the threads of `pid` (/proc/PID/task/*/comm).
fn thread_names(pid: u32) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
                .map(|s| s.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn two_workers_answer_every_packet_of_several_senders_and_merge_counters() {
    let r = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "--workers",
        "2",
        "--stateful-reflector",
        "--output-format",
        "json",
    ]);
    let names = thread_names(r.pid());
    for w in ["reflector-0", "reflector-1"] {
        assert!(names.iter().any(|n| n == w), "{names:?}");
    }
    let port = r.port();
    let senders: Vec<_> = (0..4)
        .map(|i| {
            let port = port.clone();
            std::thread::spawn(move || {
                let ssid = (100 + i).to_string();
                sender(
                    "127.0.0.1",
                    &port,
                    &["-c", "100", "-d", "2", "--ssid", &ssid],
                )
            })
        })
        .collect();
    for s in senders {
        let out = s.join().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(count(&text, "Packets received"), 100, "{text}");
    }
    let (status, out, took) = r.interrupt();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let summary = json_record(&out, "reflector_summary");
    assert_eq!(summary["received"], 400, "{summary}");
    assert_eq!(summary["reflected"], 400, "{summary}");
    assert_eq!(summary["sessions_created"], 4, "{summary}");
    assert_eq!(summary["active_sessions"], 4, "{summary}");
}

#[test]
fn workers_default_to_one_per_cpu_and_stop_on_ctrl_c_under_load() {
    let r = Reflector::start(&["-S", "127.0.0.1"]);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = thread_names(r.pid())
        .iter()
        .filter(|n| n.starts_with("reflector-"))
        .count();
    assert_eq!(workers, cpus);
    // Keep it busy while it is interrupted.
    let port = r.port();
    let load = std::thread::spawn(move || {
        sender("127.0.0.1", &port, &["-c", "3000", "-d", "0.1", "-L", "1"])
    });
    std::thread::sleep(Duration::from_millis(150));
    let (status, out, took) = r.interrupt();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(out.contains("Packets reflected: "), "{out}");
    let _ = load.join();
}

#[test]
fn idle_reflector_uses_no_cpu() {
    let r = Reflector::start(&["-S", "127.0.0.1", "--stateful-reflector"]);
    let before = cpu_ticks(r.pid());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(r.pid()) - before;
    // Clock ticks are 10 ms: a busy loop would burn about 200.
    assert!(used <= 3, "idle reflector used {used} ticks in 2 s");
    let (status, _, took) = r.interrupt();
    assert!(
        status.success() && took < Duration::from_secs(1),
        "{took:?}"
    );
}

#[test]
fn idle_sender_uses_no_cpu_and_stops_on_ctrl_c_with_a_summary() {
    let r = Reflector::start(&["-S", "127.0.0.1"]);
    let mut child = Command::new(bin("stamp-suite"))
        .args(["-r", "127.0.0.1", "-p", &r.port(), "-c", "0", "-d", "1000"])
        .env_remove("STAMP_HMAC_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sender");
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(200));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    assert!(used <= 3, "idle sender used {used} ticks in 2 s");

    let t0 = Instant::now();
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("sender ignored SIGINT");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(status.success(), "{status:?}");
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let sent = count(&text, "Packets sent");
    assert!((2..=4).contains(&sent), "{text}");
    assert_eq!(count(&text, "Packets received"), sent, "{text}");
}

/// Requests queued while the reflector is stopped (SIGSTOP) are taken in
/// batches when it resumes; `--gso on` (the default) sends each batch's
/// replies to the one sender as UDP segmentation offload trains, `off` one
/// datagram per message. Either way the sender gets every reply on its
/// own, whole and in order, and the summary says how many went in trains.
#[test]
fn replies_to_a_queued_burst_leave_in_gso_trains_and_arrive_whole_in_order() {
    use stamp_wire::{AuthMode, ReflectorPacket};
    use std::net::UdpSocket;

    const N: u32 = 300;
    for (mode, bind) in [("off", "127.0.0.1"), ("on", "127.0.0.1"), ("on", "::1")] {
        let r = Reflector::start(&[
            "-S",
            bind,
            "--workers",
            "1",
            "--output-format",
            "json",
            "--gso",
            mode,
        ]);
        let to: std::net::SocketAddr = if bind.contains(':') {
            format!("[{bind}]:{}", r.port())
        } else {
            format!("{bind}:{}", r.port())
        }
        .parse()
        .unwrap();
        let sock = UdpSocket::bind((bind, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        // Room for the whole burst: 300 replies back to back outrun a
        // reader on the default 208 KiB buffer (as they would one by one
        // from a faster reflector).
        nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::RcvBuf, &(2 << 20)).unwrap();
        r.signal("STOP");
        for seq in 0..N {
            let mut v = vec![0u8; 44];
            v[0..4].copy_from_slice(&seq.to_be_bytes());
            sock.send_to(&v, to).unwrap();
        }
        r.signal("CONT");
        let mut buf = [0u8; 2048];
        for seq in 0..N {
            let (n, from) = sock
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("--gso {mode} {bind}: reply {seq} of {N}: {e}"));
            assert_eq!(from, to);
            assert_eq!(
                n, 44,
                "--gso {mode}: reply {seq} is one datagram of its own"
            );
            let p = ReflectorPacket::new_checked(&buf[..n], AuthMode::Open).unwrap();
            assert_eq!(p.sender_sequence_number(), seq, "--gso {mode}: in order");
            assert_eq!(
                p.sequence_number(),
                seq,
                "stateless: reflector seq = sender's"
            );
        }
        let (status, out, _) = r.interrupt();
        assert!(status.success());
        let summary = json_record(&out, "reflector_summary");
        assert_eq!(summary["reflected"], u64::from(N), "{summary}");
        let segmented = summary["gso_segmented"].as_u64().unwrap();
        if mode == "on" {
            // 300 queued requests come in batches of up to 32 replies.
            assert!(
                segmented >= u64::from(N) / 2,
                "{bind}: only {segmented} of {N} replies in trains"
            );
        } else {
            assert_eq!(segmented, 0);
        }
    }
}

/// Two senders' requests queued alternately (A, B, A, B, …): the reflector
/// regroups each batch's replies by peer (keeping each peer's order), so
/// they still leave as trains; each sender gets all of its replies, whole
/// and in order.
#[test]
fn interleaved_senders_still_get_trains_and_their_replies_in_order() {
    use stamp_wire::{AuthMode, ReflectorPacket};
    use std::net::UdpSocket;

    const N: u32 = 150;
    let r = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "--workers",
        "1",
        "--output-format",
        "json",
    ]);
    let to: std::net::SocketAddr = format!("127.0.0.1:{}", r.port()).parse().unwrap();
    let socks: Vec<UdpSocket> = (0..2)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBuf, &(2 << 20))
                .unwrap();
            s
        })
        .collect();
    r.signal("STOP");
    for seq in 0..N {
        for s in &socks {
            let mut v = vec![0u8; 44];
            v[0..4].copy_from_slice(&seq.to_be_bytes());
            s.send_to(&v, to).unwrap();
        }
    }
    r.signal("CONT");
    let mut buf = [0u8; 2048];
    for (k, s) in socks.iter().enumerate() {
        for seq in 0..N {
            let (n, _) = s
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("sender {k}: reply {seq}: {e}"));
            assert_eq!(n, 44);
            let p = ReflectorPacket::new_checked(&buf[..n], AuthMode::Open).unwrap();
            assert_eq!(p.sender_sequence_number(), seq, "sender {k}: in order");
        }
    }
    let (status, out, _) = r.interrupt();
    assert!(status.success());
    let summary = json_record(&out, "reflector_summary");
    assert_eq!(summary["reflected"], u64::from(2 * N), "{summary}");
    let segmented = summary["gso_segmented"].as_u64().unwrap();
    assert!(
        segmented >= u64::from(N),
        "only {segmented} of {} replies in trains: interleaved peers were not regrouped",
        2 * N
    );
}

/// A path MTU below Ethernet's (loopback at 1300 in a namespace): the
/// kernel refuses a train of 1400-octet replies; those are sent again one
/// by one (fragmented, all delivered), and trains of small replies still
/// go afterwards: the refusal lowers the train size, it does not end the
/// offload.
#[test]
fn a_train_above_the_path_mtu_goes_singly_and_small_trains_continue() {
    use stamp_tests::netns::{self, Netns};
    use stamp_tests::{bin, run_command};
    if !netns::require(&[]) {
        return;
    }
    let ns = Netns::new("gsomtu");
    ns.run(&["ip", "link", "set", "lo", "mtu", "1300"]);
    let r = Reflector::start_in(
        &ns,
        &[
            "-S",
            "127.0.0.1",
            "--workers",
            "1",
            "--output-format",
            "json",
        ],
    );
    let port = r.port();
    // A burst of 40 requests queued while the reflector is stopped, so its
    // replies leave as one batch.
    let burst = |extra: &[&str]| {
        let mut c = ns.cmd(bin("stamp-suite"));
        c.args([
            "-r",
            "127.0.0.1",
            "-p",
            &port,
            "-c",
            "40",
            "-d",
            "1",
            "-L",
            "5",
        ])
        .args(extra);
        r.signal("STOP");
        let sender = std::thread::spawn(move || run_command(&mut c, Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(300));
        r.signal("CONT");
        let o = sender.join().unwrap();
        count(&String::from_utf8_lossy(&o.stdout), "Packets received")
    };
    // 44 + 4 + 1352 = 1400 octets: above the 1300-octet MTU.
    assert_eq!(
        burst(&["--padding", "1352"]),
        40,
        "large replies, sent singly"
    );
    assert_eq!(burst(&[]), 40, "small replies");
    let (status, out, _) = r.interrupt();
    assert!(status.success());
    let summary = json_record(&out, "reflector_summary");
    assert_eq!(summary["reflected"], 80, "{summary}");
    assert_eq!(summary["send_errors"], 0, "{summary}");
    let segmented = summary["gso_segmented"].as_u64().unwrap();
    assert!(
        (20..=40).contains(&segmented),
        "{segmented}: the small replies should have left in trains, the large ones not"
    );
}
