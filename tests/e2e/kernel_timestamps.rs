//! Issue 4, timestamps: the sender takes T1 from the kernel's transmit
//! timestamp and T4 from the kernel's receive timestamp and says so per
//! packet and in the summary; the reflector's Timestamp Information TLV says
//! how it took T2 / T3; `--hwtstamp on` fails with one clear line on
//! loopback (no NIC clock) and `auto` falls back to software.

use std::time::Duration;

use stamp_tests::{json_lines, run, sender, Reflector};

#[test]
fn sender_reports_kernel_tx_and_rx_timestamps_per_packet_and_in_the_summary() {
    let r = Reflector::start(&["-S", "127.0.0.1", "--workers", "1"]);
    let out = sender(
        "127.0.0.1",
        &r.port(),
        &[
            "-c",
            "40",
            "-d",
            "2",
            "--timestamp-info",
            "-R",
            "--output-format",
            "json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines = json_lines(&text);
    let packets: Vec<_> = lines.iter().filter(|v| v["type"] == "packet").collect();
    assert_eq!(packets.len(), 40, "{text}");
    for p in &packets {
        assert_eq!(p["t1_source"], "kernel", "{p}");
        assert_eq!(p["t4_source"], "kernel", "{p}");
        let ts = p["tlvs"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == "tsinfo"))
            .unwrap_or_else(|| panic!("no Timestamp Information TLV in {p}"));
        // RFC 8972 §5.5: kernel software timestamps are "SW Local".
        assert_eq!(ts["timestamp_in"], "sw-local", "{p}");
        assert_eq!(ts["timestamp_out"], "sw-local", "{p}");
        // Kernel T1 comes before kernel T4, and the RTT is what they say.
        let (t1, t4) = (p["t1"].as_u64().unwrap(), p["t4"].as_u64().unwrap());
        assert!(t1 < t4, "{p}");
    }
    let summary = lines
        .iter()
        .find(|v| v["type"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {text}"));
    let ts = &summary["timestamps"];
    assert_eq!(ts["t1"], "kernel-tx", "{summary}");
    assert_eq!(ts["t4"], "kernel-rx", "{summary}");
    assert_eq!(ts["t2"], "sw-local", "{summary}");
    assert_eq!(ts["t3"], "sw-local", "{summary}");
    assert_eq!(ts["t1_sources"]["kernel"], 40, "{summary}");
    assert_eq!(ts["t1_sources"]["user"], 0, "{summary}");

    // The text summary says the same in one line.
    let out = sender("127.0.0.1", &r.port(), &["-c", "10", "-d", "2"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("Timestamps: "))
        .unwrap_or_else(|| panic!("no Timestamps line in {text}"));
    assert_eq!(
        line,
        "Timestamps: T1 kernel-tx, T2/T3 not reported (no Timestamp Information TLV), T4 kernel-rx"
    );
    let _ = r.interrupt();
}

#[test]
fn hwtstamp_on_fails_on_loopback_with_one_clear_line() {
    // Sender: the route to 127.0.0.1 goes through lo.
    let out = run(
        "stamp-suite",
        &["-r", "127.0.0.1", "-p", "9", "-c", "1", "--hwtstamp", "on"],
        &[],
        Duration::from_secs(20),
    );
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        ["stamp-suite: --hwtstamp on: interface lo has no hardware timestamping (software timestamps only)"],
        "{err}"
    );
    // Reflector bound to loopback: the same refusal, before it listens.
    let out = run(
        "stamp-suite",
        &["-i", "-S", "127.0.0.1", "-o", "0", "--hwtstamp", "on"],
        &[],
        Duration::from_secs(20),
    );
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--hwtstamp on: interface lo has no hardware timestamping"),
        "{err}"
    );
    assert!(!err.contains("listening"), "{err}");
}

#[test]
fn hwtstamp_auto_falls_back_to_kernel_software_timestamps() {
    let r = Reflector::start(&["-S", "127.0.0.1", "--workers", "1", "--hwtstamp", "auto"]);
    let out = sender(
        "127.0.0.1",
        &r.port(),
        &[
            "-c",
            "10",
            "-d",
            "2",
            "--hwtstamp",
            "auto",
            "--output-format",
            "json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = json_lines(&text)
        .into_iter()
        .find(|v| v["type"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {text}"));
    assert_eq!(summary["received"], 10, "{summary}");
    assert_eq!(summary["timestamps"]["t1"], "kernel-tx", "{summary}");
    assert_eq!(summary["timestamps"]["t4"], "kernel-rx", "{summary}");
    let _ = r.interrupt();
}

/// A stateful reflector reports each reply's kernel transmit timestamp in
/// the session's next Follow-Up Telemetry TLV (RFC 8972 §4.7): later than
/// the T3 written into that reply (read before the send), and before the
/// sender's kernel receive timestamp of it (T4).
#[test]
fn follow_up_telemetry_carries_the_kernel_transmit_time_of_the_previous_reply() {
    let r = Reflector::start(&["-S", "127.0.0.1", "--workers", "1", "--stateful-reflector"]);
    let out = sender(
        "127.0.0.1",
        &r.port(),
        &[
            "-c",
            "30",
            "-d",
            "5",
            "--follow-up-telemetry",
            "-R",
            "--output-format",
            "json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let packets: Vec<_> = json_lines(&text)
        .into_iter()
        .filter(|v| v["type"] == "packet")
        .collect();
    assert_eq!(packets.len(), 30, "{text}");
    let mut later = 0;
    for w in packets.windows(2) {
        let (prev, this) = (&w[0], &w[1]);
        let fut = this["tlvs"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == "fut"))
            .unwrap_or_else(|| panic!("no Follow-Up Telemetry TLV in {this}"));
        assert_eq!(fut["prev_seq"], prev["reflector_seq"], "{this}");
        assert_eq!(fut["mode"], "sw-local", "{this}");
        let ts = fut["ts_ns"].as_u64().unwrap_or_else(|| panic!("{this}"));
        let (t3, t4) = (prev["t3"].as_u64().unwrap(), prev["t4"].as_u64().unwrap());
        assert!(
            t3 <= ts && ts <= t4,
            "T3 {t3} <= follow-up {ts} <= T4 {t4}: {this}"
        );
        if ts > t3 {
            later += 1;
        }
    }
    // A user-space copy of T3 would be equal every time; the kernel's
    // transmit timestamp comes after the clock read, by at least the
    // nanoseconds of a send system call.
    assert!(
        later >= 28,
        "only {later} of 29 follow-ups after T3: {text}"
    );
    let _ = r.interrupt();
}

/// The reflector's Error Estimate (RFC 8762 §4.3.1, RFC 4656 §4.1.2) comes
/// from the clock state unless the operator overrides its parts.
#[test]
fn error_estimate_overrides_reach_the_wire() {
    let estimate_of = |args: &[&str]| -> u64 {
        let mut a = vec!["-S", "127.0.0.1", "--workers", "1"];
        a.extend_from_slice(args);
        let r = Reflector::start(&a);
        let out = sender(
            "127.0.0.1",
            &r.port(),
            &["-c", "2", "-d", "5", "-R", "--output-format", "json"],
        );
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let p = json_lines(&text)
            .into_iter()
            .find(|v| v["type"] == "packet")
            .unwrap_or_else(|| panic!("no packet in {text}"));
        let _ = r.interrupt();
        p["reflector_error_estimate"].as_u64().unwrap()
    };
    // S set, Z clear (NTP), Scale 20, Multiplier 3: 0x8000 | 20 << 8 | 3.
    assert_eq!(
        estimate_of(&[
            "--clock-synchronized",
            "--error-scale",
            "20",
            "--error-multiplier",
            "3"
        ]),
        0x9403
    );
    // S cleared by hand; Z set by the PTP format.
    let e = estimate_of(&["--clock-synchronized=false", "-K", "PTP"]);
    assert_eq!(e & 0xC000, 0x4000, "{e:#06x}");
    assert_ne!(
        e & 0xFF,
        0,
        "a zero multiplier means corrupt (RFC 4656): {e:#06x}"
    );
}
