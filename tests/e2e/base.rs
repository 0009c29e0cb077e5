//! Base STAMP (RFC 8762) end to end: the real binaries over real UDP
//! sockets on 127.0.0.1 and ::1.

use std::net::UdpSocket;
use std::time::Duration;

use stamp_tests::{count, cpu_ticks, field, json_lines, run, sender, Reflector};

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn open_mode_ipv4_all_packets_answered_with_seed_summary_layout() {
    let r = Reflector::start(&["-S", "127.0.0.1"]);
    let out = sender("127.0.0.1", &r.port(), &["-c", "20", "-d", "5", "-L", "2"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "--- STAMP Statistics ---")
        .expect("header");
    assert!(lines[at + 1].starts_with("Packets sent: "));
    assert!(lines[at + 2].starts_with("Packets received: "));
    assert!(lines[at + 3].starts_with("Packets lost: "));
    assert!(lines[at + 4].starts_with("Min RTT: ") && lines[at + 4].ends_with(" ms"));
    assert!(lines[at + 5].starts_with("Max RTT: "));
    assert!(lines[at + 6].starts_with("Avg RTT: "));
    assert_eq!(count(&text, "Packets sent"), 20);
    assert_eq!(count(&text, "Packets received"), 20);
    assert_eq!(field(&text, "Packets lost"), Some("0 (0.0%)"));
    for k in ["Median RTT", "P95 RTT", "P99 RTT"] {
        let v: f64 = field(&text, k)
            .unwrap()
            .trim_end_matches(" ms")
            .parse()
            .unwrap();
        assert!(v > 0.0 && v < 50.0, "{k} = {v}");
    }
}

#[test]
fn open_mode_ipv6_with_per_packet_lines() {
    let r = Reflector::start(&["-S", "::1"]);
    let out = sender("::1", &r.port(), &["-c", "5", "-d", "5", "-R"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let per_packet: Vec<&str> = text.lines().filter(|l| l.starts_with("seq=")).collect();
    assert_eq!(per_packet.len(), 5, "{text}");
    for (i, l) in per_packet.iter().enumerate() {
        assert!(l.starts_with(&format!("seq={i} rtt=")), "{l}");
        // our sender transmits with hop limit 255; on loopback it arrives unchanged
        assert!(l.contains(" ttl=255 "), "{l}");
        assert!(l.contains(" t2=") && l.contains(" t3="), "{l}");
    }
    assert_eq!(count(&text, "Packets received"), 5);
}

#[test]
fn stateful_reflector_numbers_replies_per_session_json() {
    let r = Reflector::start(&["-S", "127.0.0.1", "--stateful-reflector"]);
    let out = sender(
        "127.0.0.1",
        &r.port(),
        &[
            "-c",
            "4",
            "-d",
            "5",
            "-R",
            "--output-format",
            "json",
            "--ssid",
            "77",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let v = json_lines(&stdout(&out));
    let pkts: Vec<_> = v.iter().filter(|x| x["type"] == "packet").collect();
    assert_eq!(pkts.len(), 4);
    for (i, p) in pkts.iter().enumerate() {
        assert_eq!(p["seq"], i as u64);
        assert_eq!(p["reflector_seq"], i as u64);
        assert_eq!(p["ssid"], 77);
        assert!(p["rtt_ms"].as_f64().unwrap() > 0.0);
    }
    let sum = v.iter().find(|x| x["type"] == "summary").unwrap();
    assert_eq!(sum["received"], 4);
    assert_eq!(sum["forward_lost"], 0);
    assert_eq!(sum["backward_lost"], 0);
    for k in [
        "min_ms",
        "max_ms",
        "avg_ms",
        "median_ms",
        "p95_ms",
        "p99_ms",
    ] {
        assert!(sum["rtt"][k].as_f64().is_some(), "{k}");
    }
}

#[test]
fn authenticated_mode_round_trip_and_wrong_key_dropped_and_counted() {
    let r = Reflector::start(&["-S", "127.0.0.1", "-A", "A", "--hmac-key", KEY]);
    let ok = sender(
        "127.0.0.1",
        &r.port(),
        &["-c", "3", "-d", "5", "-A", "A", "--hmac-key", KEY],
    );
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(count(&stdout(&ok), "Packets received"), 3);

    let wrong = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    let bad = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &r.port(),
            "-c",
            "2",
            "-d",
            "5",
            "-L",
            "0.3",
            "-A",
            "A",
        ],
        &[("STAMP_HMAC_KEY", wrong)],
        Duration::from_secs(20),
    );
    assert_eq!(
        bad.status.code(),
        Some(1),
        "no reply at all exits 1: {bad:?}"
    );
    assert_eq!(count(&stdout(&bad), "Packets received"), 0);

    let (status, summary, _) = r.interrupt();
    assert!(status.success());
    assert_eq!(count(&summary, "Packets received"), 5);
    assert_eq!(count(&summary, "Packets reflected"), 3);
    assert!(
        field(&summary, "Packets dropped")
            .unwrap()
            .starts_with("2 (auth_failed 2)"),
        "{summary}"
    );
}

#[test]
fn short_keys_and_bad_flags_get_one_line_and_nonzero_exit() {
    let o = run(
        "stamp-suite",
        &["-r", "127.0.0.1", "-A", "A", "--hmac-key", "0011"],
        &[],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("16"), "{err}");

    let o = run(
        "stamp-suite",
        &["--no-such-flag"],
        &[],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--no-such-flag"), "{err}");
}

#[test]
fn truncated_garbage_and_jumbo_datagrams() {
    let r = Reflector::start(&["-S", "127.0.0.1"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.connect(r.addr).unwrap();
    // too short to be a request: dropped and counted
    for len in [0usize, 1, 5, 13] {
        sock.send(&vec![0xA5; len]).unwrap();
    }
    // random garbage of request length: answered (malformed TLVs flagged), no crash
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for len in [44usize, 60, 200] {
        let garbage: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        sock.send(&garbage).unwrap();
        let mut buf = [0u8; 9216];
        let n = sock
            .recv(&mut buf)
            .expect("garbage of valid length is answered");
        assert_eq!(n, len);
    }
    // a 1500-octet zero-padded request comes back at the same length
    let mut req = vec![0u8; 1500];
    req[3] = 42;
    sock.send(&req).unwrap();
    let mut buf = [0u8; 9216];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(n, 1500);
    assert_eq!(
        &buf[24..28],
        &[0, 0, 0, 42],
        "Session-Sender Sequence Number echoed"
    );
    // a 9000-octet jumbo request is not truncated
    let jumbo = vec![0u8; 9000];
    sock.send(&jumbo).unwrap();
    assert_eq!(sock.recv(&mut buf).unwrap(), 9000);

    std::thread::sleep(Duration::from_millis(100));
    let (status, summary, _) = r.interrupt();
    assert!(status.success());
    assert_eq!(count(&summary, "Packets received"), 9, "{summary}");
    assert_eq!(count(&summary, "Packets reflected"), 5);
    assert!(
        field(&summary, "Packets dropped")
            .unwrap()
            .starts_with("4 (truncated 4)"),
        "{summary}"
    );
}

#[test]
fn ctrl_c_stops_a_busy_reflector_within_a_second_with_summary() {
    let r = Reflector::start(&["-S", "127.0.0.1"]);
    let out = sender("127.0.0.1", &r.port(), &["-c", "10", "-d", "2"]);
    assert_eq!(count(&stdout(&out), "Packets received"), 10);
    let (status, summary, took) = r.interrupt();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(
        summary.contains("--- STAMP Reflector Statistics ---"),
        "{summary}"
    );
    assert_eq!(count(&summary, "Packets reflected"), 10);
}

#[test]
fn idle_reflector_uses_no_cpu() {
    let r = Reflector::start(&["-S", "127.0.0.1"]);
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(r.pid());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(r.pid()) - before;
    // one tick is 10 ms; a spinning loop would burn ~200 ticks
    assert!(used <= 2, "idle reflector used {used} ticks in 2 s");
}

#[test]
fn sender_reports_loss_when_nobody_answers() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap(); // a port that never answers
    let port = sock.local_addr().unwrap().port().to_string();
    let out = sender(
        "127.0.0.1",
        &port,
        &["-c", "3", "-d", "5", "-L", "0.2", "-R"],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert_eq!(count(&text, "Packets lost"), 3);
    assert_eq!(field(&text, "Packets lost"), Some("3 (100.0%)"));
    assert_eq!(
        text.lines().filter(|l| l.ends_with(" lost")).count(),
        3,
        "{text}"
    );
}

#[test]
fn stamp_reflector_and_stamp_sender_binaries_share_the_code() {
    let r = Reflector::start_with("stamp-reflector", &["-S", "127.0.0.1"], &[]);
    let out = run(
        "stamp-sender",
        &[
            "-r",
            &format!("127.0.0.1:{}", r.port()),
            "-c",
            "2",
            "-d",
            "5",
        ],
        &[],
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(count(&stdout(&out), "Packets received"), 2);
}

#[test]
fn ptp_timestamps_on_both_sides_and_mixed_formats() {
    for (refl, send) in [("PTP", "PTP"), ("NTP", "PTP"), ("PTP", "NTP")] {
        let r = Reflector::start(&["-S", "127.0.0.1", "-K", refl]);
        let out = sender(
            "127.0.0.1",
            &r.port(),
            &[
                "-c",
                "3",
                "-d",
                "5",
                "-K",
                send,
                "--output-format",
                "json",
                "-R",
            ],
        );
        assert!(out.status.success(), "{refl}/{send}: {out:?}");
        let v = json_lines(&stdout(&out));
        let pkts: Vec<_> = v.iter().filter(|x| x["type"] == "packet").collect();
        assert_eq!(pkts.len(), 3, "{refl}/{send}");
        for p in pkts {
            // each timestamp is decoded with the format its own Error
            // Estimate names, so RTT stays a loopback RTT whatever mix
            let rtt = p["rtt_ms"].as_f64().unwrap();
            assert!(rtt > 0.0 && rtt < 50.0, "{refl}/{send}: rtt {rtt}");
            let z = p["reflector_error_estimate"].as_u64().unwrap() & 0x4000 != 0;
            assert_eq!(z, refl == "PTP", "Z bit names the reflector's format");
        }
    }
}

#[test]
fn location_reports_the_real_destination_on_a_wildcard_bind() {
    // bound to 0.0.0.0 and ::, the reflector still learns the address each
    // request was sent to (IP_PKTINFO / IPV6_PKTINFO) for the Location TLV
    for (bind, target, expect) in [
        ("0.0.0.0", "127.0.0.1", "dst 127.0.0.1:"),
        ("::", "::1", "dst [::1]:"),
    ] {
        let r = Reflector::start(&["-S", bind]);
        let out = sender(target, &r.port(), &["-c", "1", "-R", "--location"]);
        assert!(out.status.success(), "{out:?}");
        let t = stdout(&out);
        assert!(
            t.contains(&format!("[location: {expect}{}", r.port())),
            "{bind}: {t}"
        );
    }
}
