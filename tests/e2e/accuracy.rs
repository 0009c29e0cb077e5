//! Accuracy against injected ground truth, on test hosts in network
//! namespaces the tests create and remove.
//!
//! - delay: the impairment relay adds 10 ms forward and 5 ms backward; the
//!   sender's RTT and one-way medians must be within 0.2 ms of that (both
//!   ends share this machine's clock, so one-way figures are meaningful);
//! - loss: nftables drops about 5% of the test packets entering the
//!   reflector's namespace; the sender must report exactly the dropped
//!   count as forward loss (the rule's counter is the truth) and none as
//!   backward loss;
//! - path length: a router namespace that decrements the TTL is put into
//!   the forward path mid-run; the sender must report the TTL change.
//!
//! All the tests need root and `ip netns`; under `CI` they fail otherwise.

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use stamp_tests::netns::{self, veth, Netns};
use stamp_tests::relay::{Impairment, Relay};
use stamp_tests::{bin, json_lines, json_record, run_command, Reflector};

/// One accuracy test at a time: they measure time, and parallel runs on a
/// 2-core machine would disturb each other.
static SERIAL: Mutex<()> = Mutex::new(());

fn sender_in(ns: &Netns, args: &[&str]) -> Command {
    let mut c = ns.cmd(bin("stamp-suite"));
    c.args(args).env_remove("STAMP_HMAC_KEY");
    c
}

fn summary(stdout: &[u8]) -> Value {
    json_record(&String::from_utf8_lossy(stdout), "summary")
}

fn ms(v: &Value, path: &[&str]) -> f64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

/// Two hosts joined by a veth pair: `a` 10.N.0.1, `b` 10.N.0.2.
fn two_hosts(tag: &str, net: u8) -> (Netns, Netns) {
    let a = Netns::new(&format!("{tag}a"));
    let b = Netns::new(&format!("{tag}b"));
    veth(
        &a,
        "eth0",
        &format!("10.{net}.0.1/24"),
        &b,
        "eth0",
        &format!("10.{net}.0.2/24"),
    );
    (a, b)
}

#[test]
fn injected_delay_10ms_forward_5ms_backward_is_measured_within_0_2ms() {
    if !netns::require(&[]) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (a, b) = two_hosts("dly", 71);
    let refl = Reflector::start_in(
        &b,
        &[
            "-S",
            "10.71.0.2",
            "--stateful-reflector",
            "--clock-synchronized",
        ],
    );
    let upstream = format!("10.71.0.2:{}", refl.port()).parse().unwrap();
    let relay = Relay::start_in(
        &a,
        "10.71.0.1:0".parse().unwrap(),
        upstream,
        Impairment::delay(Duration::from_millis(10)),
        Impairment::delay(Duration::from_millis(5)),
        1,
    );
    let port = relay.addr().port().to_string();
    let out = run_command(
        &mut sender_in(
            &a,
            &[
                "-r",
                "10.71.0.1",
                "-p",
                &port,
                "-c",
                "200",
                "-d",
                "10",
                "-L",
                "1",
                "--clock-synchronized",
                "--output-format",
                "json",
            ],
        ),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    let rec = relay.stop();
    let s = summary(&out.stdout);
    assert_eq!(s["received"], 200, "{s}");
    assert_eq!(rec.forward.seen(), 200);
    let rtt = ms(&s, &["rtt", "median_ms"]);
    let fwd = ms(&s, &["forward", "median_ms"]);
    let bwd = ms(&s, &["backward", "median_ms"]);
    eprintln!("median rtt {rtt:.4} ms, forward {fwd:.4} ms, backward {bwd:.4} ms");
    assert!(
        (rtt - 15.0).abs() <= 0.2,
        "RTT median {rtt} ms, injected 15"
    );
    assert!(
        (fwd - 10.0).abs() <= 0.2,
        "forward median {fwd} ms, injected 10"
    );
    assert!(
        (bwd - 5.0).abs() <= 0.2,
        "backward median {bwd} ms, injected 5"
    );
    // No loss was injected.
    assert_eq!(s["lost"], 0, "{s}");
}

/// The number of packets an nftables rule's counter saw.
fn rule_counter(ns: &Netns, table: &str) -> u64 {
    let out = ns.run(&["nft", "list", "table", "inet", table]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let at = text
        .find("counter packets ")
        .unwrap_or_else(|| panic!("no counter in:\n{text}"));
    text[at + "counter packets ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn five_percent_forward_loss_is_reported_as_forward_loss_only() {
    loss_in_one_direction(true);
}

/// Backward-only loss through a reflector that numbers its replies the
/// way we number requests is indistinguishable from a stateless reflector
/// with round-trip loss: the sender then reports no directional split
/// rather than a guess.
#[test]
fn five_percent_backward_loss_is_not_guessed_into_a_direction() {
    loss_in_one_direction(false);
}

/// nftables in the reflector's namespace drops about 5% of the test
/// packets coming in (`forward`) or of the replies going out.
fn loss_in_one_direction(forward: bool) {
    if !netns::require(&["nft"]) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = if forward { 72 } else { 74 };
    let (a, b) = two_hosts(if forward { "lossf" } else { "lossb" }, net);
    let refl_addr = format!("10.{net}.0.2");
    // --gso off: a train of replies crosses the veth as one packet, and an
    // nftables rule on the sender's host would drop or count it whole
    // (doc/usage.md, `--gso`); this test needs the per-datagram view.
    let refl = Reflector::start_in(
        &b,
        &["-S", &refl_addr, "--stateful-reflector", "--gso", "off"],
    );
    let port = refl.port();
    // Forward: drop on the way into the reflector's host; backward: on the
    // way into the sender's host (an output-hook drop at the reflector would
    // fail its send with EPERM instead of losing the datagram on the path).
    let (host, matcher) = if forward {
        (&b, format!("udp dport {port}"))
    } else {
        (&a, format!("udp sport {port}"))
    };
    let hook = "input";
    host.nft(&format!(
        "table inet impair {{\n  chain c {{\n    type filter hook {hook} priority 0; policy accept;\n    \
         {matcher} numgen random mod 1000 < 50 counter drop\n  }}\n}}\n"
    ));
    let n = 2000u64;
    let out = run_command(
        &mut sender_in(
            &a,
            &[
                "-r",
                &refl_addr,
                "-p",
                &port,
                "-c",
                &n.to_string(),
                "-d",
                "1",
                "-L",
                "1",
                "-R",
                "--output-format",
                "json",
            ],
        ),
        Duration::from_secs(60),
    );
    let dropped = rule_counter(host, "impair");
    let s = summary(&out.stdout);
    assert_eq!(s["sent"], n, "{s}");
    if !forward {
        assert!(s["forward_lost"].is_null(), "{s}");
        assert!(s["backward_lost"].is_null(), "{s}");
        assert_eq!(s["lost"], dropped, "{s}");
        return;
    }
    let fwd = s["forward_lost"].as_u64().unwrap_or_else(|| panic!("{s}"));
    let bwd = s["backward_lost"].as_u64().unwrap_or_else(|| panic!("{s}"));
    let (hit, other) = if forward { (fwd, bwd) } else { (bwd, fwd) };
    let pct = 100.0 * hit as f64 / n as f64;
    eprintln!("nft dropped {dropped}, sender: forward lost {fwd}, backward lost {bwd}");
    // Packets lost after the last reply cannot be told forward from
    // backward (no later reflector sequence number reveals them).
    let text = String::from_utf8_lossy(&out.stdout);
    let packets: Vec<(u64, bool)> = json_lines(&text)
        .iter()
        .filter(|v| v["type"] == "packet")
        .map(|v| (v["seq"].as_u64().unwrap(), v["status"] == "received"))
        .collect();
    assert_eq!(packets.len() as u64, n, "one line per packet");
    let last_reply = packets.iter().filter(|p| p.1).map(|p| p.0).max().unwrap();
    let tail = packets.iter().filter(|p| !p.1 && p.0 > last_reply).count() as u64;
    // The truth is the rule's counter; the issue's bound is ±1.5 points.
    assert_eq!(hit + tail, dropped, "{s}");
    assert!((pct - 5.0).abs() <= 1.5, "loss {pct}%");
    assert_eq!(other, 0, "{s}");
    assert_eq!(s["lost"], dropped, "{s}");
}

#[test]
fn a_router_put_into_the_forward_path_is_reported_as_a_ttl_change() {
    if !netns::require(&[]) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // a --direct-- b, and a -- r -- b through a router. The sender's
    // address 10.73.9.1 (on a's lo) and the reflector's 10.73.9.2 (on b's
    // lo) are reached over the direct link until the test moves a's route
    // to b through the router.
    let a = Netns::new("ttla");
    let b = Netns::new("ttlb");
    let r = Netns::new("ttlr");
    veth(&a, "direct", "10.73.0.1/24", &b, "direct", "10.73.0.2/24");
    veth(&a, "tor", "10.73.1.1/24", &r, "froma", "10.73.1.2/24");
    veth(&r, "tob", "10.73.2.1/24", &b, "fromr", "10.73.2.2/24");
    r.enable_forwarding();
    netns::add_addr(&a, "lo", "10.73.9.1/32");
    netns::add_addr(&b, "lo", "10.73.9.2/32");
    a.run(&["ip", "route", "add", "10.73.9.2/32", "via", "10.73.0.2"]);
    b.run(&["ip", "route", "add", "10.73.9.1/32", "via", "10.73.0.1"]);
    r.run(&["ip", "route", "add", "10.73.9.2/32", "via", "10.73.2.2"]);
    r.run(&["ip", "route", "add", "10.73.9.1/32", "via", "10.73.1.1"]);
    // Reverse-path filtering would drop packets arriving from the router.
    // (the effective value is the larger of `all` and the interface's own).
    for (ns, ifs) in [
        (&a, &["direct", "tor"]),
        (&b, &["direct", "fromr"]),
        (&r, &["froma", "tob"]),
    ] {
        for i in ["all", "default", ifs[0], ifs[1]] {
            ns.run(&[
                "sysctl",
                "-q",
                "-w",
                &format!("net.ipv4.conf.{i}.rp_filter=0"),
            ]);
        }
    }
    let refl = Reflector::start_in(&b, &["-S", "10.73.9.2", "--stateful-reflector"]);
    let port = refl.port();
    let child = sender_in(
        &a,
        &[
            "-S",
            "10.73.9.1",
            "-r",
            "10.73.9.2",
            "-p",
            &port,
            "-c",
            "60",
            "-d",
            "50",
            "-L",
            "1",
            "-R",
            "--output-format",
            "json",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn sender");
    // Half way through, send the forward path through the router.
    std::thread::sleep(Duration::from_millis(1500));
    a.run(&["ip", "route", "replace", "10.73.9.2/32", "via", "10.73.1.2"]);
    let out = child.wait_with_output().unwrap();
    let s = summary(&out.stdout);
    assert_eq!(s["received"], 60, "{s}");
    let ttl = &s["sender_ttl"];
    assert_eq!(ttl["max"], 255, "{s}");
    assert_eq!(ttl["min"], 254, "{s}");
    assert_eq!(ttl["last"], 254, "{s}");
    assert_eq!(ttl["changes"], 1, "{s}");
    // Per packet: the TTL the reflector saw drops by one, once.
    let text = String::from_utf8_lossy(&out.stdout);
    let ttls: Vec<u64> = json_lines(&text)
        .iter()
        .filter(|v| v["type"] == "packet")
        .filter_map(|v| v["sender_ttl"].as_u64())
        .collect();
    assert_eq!(ttls.len(), 60, "{text}");
    let switch = ttls.iter().position(|&t| t == 254).expect("a 254");
    assert!(switch > 10 && switch < 50, "switched at {switch}");
    assert!(ttls[..switch].iter().all(|&t| t == 255));
    assert!(ttls[switch..].iter().all(|&t| t == 254));
    // And it is reported as a path-length change: one event line, forward,
    // 0 -> 1 hop, at the first packet that took the router.
    assert_eq!(s["path_changes"], 1, "{s}");
    let events: Vec<Value> = json_lines(&text)
        .into_iter()
        .filter(|v| v["type"] == "event" && v["event"] == "path_change")
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    let e = &events[0];
    assert_eq!(e["direction"], "forward", "{e}");
    assert_eq!(e["from_hops"], 0, "{e}");
    assert_eq!(e["to_hops"], 1, "{e}");
    assert_eq!(e["ttl"], 254, "{e}");
    let first_routed = json_lines(&text)
        .iter()
        .filter(|v| v["type"] == "packet" && v["sender_ttl"] == 254)
        .filter_map(|v| v["seq"].as_u64())
        .min()
        .unwrap();
    assert_eq!(e["seq"], first_routed, "{e}");
}
