//! Faults on namespaced test hosts (issue 7): a sender in one network
//! namespace, the reflector in another, joined by a veth pair.
//!
//! * The reflector's link goes down for a known time, then up again.
//! * The reflector is killed (SIGKILL) and restarted on the same port.
//!
//! In both the sender keeps sending at its interval, reports the packets of
//! the gap as lost (their count matches the gap over the interval, and
//! every lost packet was sent inside the gap), answers resume after it, and
//! it exits 0 (documented: at least one reply was received).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stamp_tests::netns::{self, veth, Netns};
use stamp_tests::{bin, json_lines, Reflector};

/// Sender interval and packet count: 6 s of packets.
const INTERVAL_MS: u64 = 20;
const COUNT: u64 = 300;
/// When the fault starts (after the sender started) and how long it lasts.
const FAULT_AT: Duration = Duration::from_millis(2000);
const GAP: Duration = Duration::from_millis(1000);

fn unix_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

struct Hosts {
    sender: Netns,
    reflector: Netns,
}

fn hosts(tag: &str) -> Hosts {
    let sender = Netns::new(&format!("{tag}s"));
    let reflector = Netns::new(&format!("{tag}r"));
    veth(
        &sender,
        "snd0",
        "10.77.0.1/24",
        &reflector,
        "rfl0",
        "10.77.0.2/24",
    );
    // Static neighbour entries both ways: while the link is down, packets
    // are dropped at the interface rather than parked in the ARP queue of an
    // unresolved neighbour (which would deliver them late, not lose them).
    let mac = |ns: &Netns, ifname: &str| {
        let out = ns.run(&["cat", &format!("/sys/class/net/{ifname}/address")]);
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (smac, rmac) = (mac(&sender, "snd0"), mac(&reflector, "rfl0"));
    sender.run(&[
        "ip",
        "neigh",
        "replace",
        "10.77.0.2",
        "lladdr",
        &rmac,
        "dev",
        "snd0",
        "nud",
        "permanent",
    ]);
    reflector.run(&[
        "ip",
        "neigh",
        "replace",
        "10.77.0.1",
        "lladdr",
        &smac,
        "dev",
        "rfl0",
        "nud",
        "permanent",
    ]);
    Hosts { sender, reflector }
}

/// The sender, in its namespace, with one JSON line per packet.
fn start_sender(h: &Hosts) -> Child {
    h.sender
        .cmd(bin("stamp-suite"))
        .args([
            "-r",
            "10.77.0.2",
            "-p",
            "862",
            "-c",
            &COUNT.to_string(),
            "-d",
            &INTERVAL_MS.to_string(),
            "-L",
            "1",
            "-R",
            "--output-format",
            "json",
        ])
        .env_remove("STAMP_HMAC_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sender")
}

/// Wait for the sender and check its report against a gap between
/// `gap_from` and `gap_to` (Unix ns).
fn check_sender(child: Child, gap_from: i128, gap_to: i128, slack_ms: i128) {
    // Read its output while it runs (a full pipe would stall it).
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("sender did not finish within 30 s");
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "sender exit code (documented: 0 when any reply came)\n{stderr}"
    );
    let lines = json_lines(&stdout);
    let packets: Vec<&serde_json::Value> = lines.iter().filter(|v| v["type"] == "packet").collect();
    let summary = lines
        .iter()
        .find(|v| v["type"] == "summary")
        .unwrap_or_else(|| panic!("no summary in\n{stdout}\n{stderr}"));
    assert_eq!(summary["sent"], COUNT, "{summary}");
    let lost: Vec<&serde_json::Value> = packets
        .iter()
        .copied()
        .filter(|p| p["status"] != "received")
        .collect();
    let received = summary["received"].as_u64().unwrap();
    assert_eq!(
        summary["lost"].as_u64().unwrap(),
        lost.len() as u64,
        "{summary}"
    );
    assert_eq!(received + lost.len() as u64, COUNT, "{summary}");
    // The gap, in packets: its length over the interval (plus what was in
    // flight and the time to come back, bounded by the slack).
    let gap_ms = (gap_to - gap_from) / 1_000_000;
    let expect = (gap_ms / INTERVAL_MS as i128) as u64;
    let most = ((gap_ms + slack_ms) / INTERVAL_MS as i128) as u64 + 2;
    eprintln!(
        "fault: gap {gap_ms} ms, {} lost (expected about {expect}, at most {most}), {received} received",
        lost.len()
    );
    assert!(
        (expect * 8 / 10..=most).contains(&(lost.len() as u64)),
        "{} lost for a {gap_ms} ms gap at {INTERVAL_MS} ms\n{summary}",
        lost.len()
    );
    // When each packet left: lost ones carry no timestamps, but the sender
    // paces on a fixed schedule, so seq × interval from the first answered
    // packet's T1 places them (within the pacing jitter, well under 10 ms).
    let first = packets
        .iter()
        .find(|p| p["status"] == "received")
        .expect("an answered packet");
    let interval_ns = INTERVAL_MS as i128 * 1_000_000;
    let base = first["t1"].as_i64().unwrap() as i128
        - first["seq"].as_i64().unwrap() as i128 * interval_ns;
    let sent_at = |p: &serde_json::Value| base + p["seq"].as_i64().unwrap() as i128 * interval_ns;
    // Every lost packet was sent inside the gap.
    let slack = slack_ms * 1_000_000;
    for p in &lost {
        let t = sent_at(p);
        assert!(
            t >= gap_from - 50_000_000 && t <= gap_to + slack,
            "packet {} lost but sent {} ms from the gap's start",
            p["seq"],
            (t - gap_from) / 1_000_000
        );
    }
    // It carried on: everything sent well after the gap was answered...
    let tail: Vec<&&serde_json::Value> = packets
        .iter()
        .filter(|p| sent_at(p) > gap_to + slack)
        .collect();
    assert!(tail.len() > 50, "only {} packets after the gap", tail.len());
    assert!(tail.iter().all(|p| p["status"] == "received"));
    // ...and everything well before it.
    let head: Vec<&&serde_json::Value> = packets
        .iter()
        .filter(|p| sent_at(p) < gap_from - 50_000_000)
        .collect();
    assert!(
        head.len() > 50,
        "only {} packets before the gap",
        head.len()
    );
    assert!(head.iter().all(|p| p["status"] == "received"));
}

#[test]
fn link_down_then_up_is_reported_as_loss_of_the_gap() {
    if !netns::require(&[]) {
        return;
    }
    let h = hosts("fl");
    let r = Reflector::start_in(&h.reflector, &["-o", "862", "--workers", "1"]);
    let sender = start_sender(&h);
    std::thread::sleep(FAULT_AT);
    let down = unix_ns();
    h.reflector.run(&["ip", "link", "set", "rfl0", "down"]);
    std::thread::sleep(GAP);
    h.reflector.run(&["ip", "link", "set", "rfl0", "up"]);
    let up = unix_ns();
    // Back up: carrier and neighbour resolution take a moment.
    check_sender(sender, down, up, 400);
    let (status, out, _) = r.interrupt();
    assert!(status.success(), "{out}");
}

#[test]
fn reflector_killed_and_restarted_is_reported_as_loss_of_the_gap() {
    if !netns::require(&[]) {
        return;
    }
    let h = hosts("fk");
    let r = Reflector::start_in(&h.reflector, &["-o", "862", "--workers", "1"]);
    let sender = start_sender(&h);
    std::thread::sleep(FAULT_AT);
    let down = unix_ns();
    let killed = Command::new("kill")
        .args(["-KILL", &r.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    drop(r);
    std::thread::sleep(GAP);
    // Same port, fresh process (no state survives: it starts over).
    let r = Reflector::start_in(&h.reflector, &["-o", "862", "--workers", "1"]);
    let up = unix_ns();
    check_sender(sender, down, up, 300);
    let (status, out, _) = r.interrupt();
    assert!(status.success(), "{out}");
    let reflected = stamp_tests::count(&out, "Packets reflected");
    assert!(reflected > 50, "restarted reflector answered {reflected}");
}
