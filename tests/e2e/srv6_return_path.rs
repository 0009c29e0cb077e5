//! RFC 9503 Return Path with an SRv6 Segment List, honoured with a Segment
//! Routing Header (RFC 8754) on the reply, in network namespaces:
//!
//! sender (fd01::1) -- router (fd01::fe | fd02::fe, SRv6 enabled) -- reflector (fd02::2)
//!
//! The reflector has no route back to fd01::/64: a normal reply cannot
//! leave it (the control run gets nothing back). With `--return-srv6-sids
//! fd02::fe` the reply goes to the router's SID first (on-link), the router
//! processes the SRH (Segments Left 1 → 0) and forwards it to the sender.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use stamp_tests::netns::{self, Netns};
use stamp_tests::{bin, json_lines, run_command, Reflector};

fn send(ns: &Netns, port: u16, count: u32, extra: &[&str]) -> (Output, Vec<Value>) {
    let mut c = ns.cmd(bin("stamp-suite"));
    c.args(["-r", "fd02::2", "-p", &port.to_string(), "-d", "20"]);
    c.args(["-c", &count.to_string()]);
    // Lost runs wait 1 s; answered ones up to 5 s (neighbour discovery).
    let wait = if count < 5 { "1" } else { "5" };
    c.args(["-L", wait, "-R", "--output-format", "json"]);
    c.args(extra);
    let out = run_command(&mut c, Duration::from_secs(30));
    let lines = json_lines(&String::from_utf8_lossy(&out.stdout));
    (out, lines)
}

fn enable_srv6(ns: &Netns, ifname: &str) {
    ns.run(&["sysctl", "-q", "-w", "net.ipv6.conf.all.seg6_enabled=1"]);
    ns.run(&[
        "sysctl",
        "-q",
        "-w",
        &format!("net.ipv6.conf.{ifname}.seg6_enabled=1"),
    ]);
}

#[test]
fn reply_follows_the_srv6_segment_list() {
    if !netns::require(&["ip", "sysctl"]) {
        return;
    }
    let sender = Netns::new("srs");
    let router = Netns::new("srr");
    let reflector = Netns::new("srf");
    netns::veth(&sender, "s0", "fd01::1/64", &router, "r0", "fd01::fe/64");
    netns::veth(&router, "r1", "fd02::fe/64", &reflector, "f0", "fd02::2/64");
    router.enable_forwarding();
    sender.run(&["ip", "-6", "route", "add", "default", "via", "fd01::fe"]);
    // No route from the reflector to fd01::/64.
    enable_srv6(&router, "r1");
    enable_srv6(&sender, "s0");

    let refl = Reflector::start_in(&reflector, &["-S", "::"]);
    let port = refl.addr.port();

    // Control: the plain reply has no way back.
    let (_, lines) = send(&sender, port, 2, &[]);
    let summary = lines.iter().find(|v| v["type"] == "summary").unwrap();
    assert_eq!(summary["received"], 0, "{summary}");

    // Along the segment list through the router's SID.
    let (out, lines) = send(
        &sender,
        port,
        5,
        &["--ssid", "7", "--return-srv6-sids", "fd02::fe"],
    );
    let packets: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "packet" && v["status"] == "received")
        .collect();
    assert_eq!(
        packets.len(),
        5,
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for p in packets {
        let rp = p["tlvs"]
            .as_array()
            .and_then(|a| a.iter().find(|t| t["name"] == "return-path"))
            .unwrap_or_else(|| panic!("{p}"));
        assert_eq!(rp["flags"], "-", "processed, not refused: {rp}");
        // One router on the way back.
        assert_eq!(p["reply_ttl"], 254, "{p}");
    }

    // SR-MPLS cannot be honoured: U, and (no route) no reply.
    let (_, lines) = send(&sender, port, 1, &["--return-sr-mpls-labels", "100"]);
    let summary = lines.iter().find(|v| v["type"] == "summary").unwrap();
    assert_eq!(summary["received"], 0, "{summary}");

    let (status, text, _) = refl.interrupt();
    assert!(status.success());
    assert!(text.contains("Packets received: 8"), "{text}");
}
