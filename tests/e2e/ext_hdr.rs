//! Reflected header TLVs (draft-ietf-ippm-stamp-ext-hdr) end to end, with
//! the raw-socket transport (`--transport raw`, root) in network namespaces:
//!
//! sender ns (10.1.0.1, fd01::1) -- router ns -- reflector ns (10.2.0.2, fd02::2)
//!
//! The router decrements TTL / Hop Limit, so a reflected 254 proves the
//! header is the one the reflector received (the sender sends 255). Over
//! IPv6 the sender adds a 16-octet Destination Options header
//! (`--ipv6-dest-opt-len 16`, sticky IPV6_DSTOPTS) that comes back in the
//! extension-header TLV. With the UDP transport both TLVs come back with U.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use stamp_tests::netns::{self, Netns};
use stamp_tests::{bin, json_lines, run_command, Reflector};

struct Topology {
    sender: Netns,
    router: Netns,
    reflector: Netns,
}

fn topology(tag: &str) -> Topology {
    let sender = Netns::new(&format!("{tag}s"));
    let router = Netns::new(&format!("{tag}r"));
    let reflector = Netns::new(&format!("{tag}f"));
    netns::veth(&sender, "s0", "10.1.0.1/24", &router, "r0", "10.1.0.254/24");
    netns::veth(
        &router,
        "r1",
        "10.2.0.254/24",
        &reflector,
        "f0",
        "10.2.0.2/24",
    );
    netns::add_addr(&sender, "s0", "fd01::1/64");
    netns::add_addr(&router, "r0", "fd01::fe/64");
    netns::add_addr(&router, "r1", "fd02::fe/64");
    netns::add_addr(&reflector, "f0", "fd02::2/64");
    router.enable_forwarding();
    sender.run(&["ip", "route", "add", "default", "via", "10.1.0.254"]);
    sender.run(&["ip", "-6", "route", "add", "default", "via", "fd01::fe"]);
    reflector.run(&["ip", "route", "add", "default", "via", "10.2.0.254"]);
    reflector.run(&["ip", "-6", "route", "add", "default", "via", "fd02::fe"]);
    Topology {
        sender,
        router,
        reflector,
    }
}

fn send(ns: &Netns, target: &str, port: u16, extra: &[&str]) -> Output {
    let mut c = ns.cmd(bin("stamp-suite"));
    c.args(["-r", target, "-p", &port.to_string(), "-c", "5", "-d", "20"]);
    // Generous timeout: the first IPv6 packets wait for neighbour discovery.
    c.args(["-L", "5", "-R", "--output-format", "json"]);
    c.args(extra);
    let out = run_command(&mut c, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "sender failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The reflected TLV `name` of every received packet line.
fn tlvs(out: &Output, name: &str) -> Vec<Value> {
    let lines = json_lines(&String::from_utf8_lossy(&out.stdout));
    let packets: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "packet" && v["status"] == "received")
        .collect();
    assert_eq!(packets.len(), 5, "{}", String::from_utf8_lossy(&out.stdout));
    packets
        .iter()
        .map(|p| {
            p["tlvs"]
                .as_array()
                .and_then(|a| a.iter().find(|t| t["name"] == name))
                .unwrap_or_else(|| panic!("no {name} TLV in {p}"))
                .clone()
        })
        .collect()
}

/// ICMP destination-unreachable messages sent from `ns` so far.
fn icmp_unreachables_sent(ns: &Netns) -> u64 {
    let out = ns.run(&["cat", "/proc/net/snmp"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut icmp = text.lines().filter(|l| l.starts_with("Icmp:"));
    let (names, values) = (icmp.next().unwrap(), icmp.next().unwrap());
    let i = names
        .split_whitespace()
        .position(|n| n == "OutDestUnreachs")
        .unwrap();
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

#[test]
fn raw_transport_reflects_the_received_ipv4_header() {
    if !netns::require(&["ip"]) {
        return;
    }
    let t = topology("xh4");
    let refl = Reflector::start_in(&t.reflector, &["--transport", "raw", "-S", "::"]);
    let port = refl.addr.port();

    let out = send(&t.sender, "10.2.0.2", port, &["--reflected-fixed-hdr"]);
    let mut ids = Vec::new();
    for h in tlvs(&out, "fixed-hdr") {
        assert_eq!(h["flags"], "-", "{h}");
        assert_eq!(h["version"], 4);
        // Sent with TTL 255, one router on the way.
        assert_eq!(h["ttl"], 254, "{h}");
        assert_eq!(h["src"], "10.1.0.1");
        assert_eq!(h["dst"], "10.2.0.2");
        assert_eq!(h["protocol"], 17);
        // Without a selector the first 4 octets (TOS) are not reflected.
        assert!(h["tos"].is_null());
        ids.push(h["id"].as_u64().unwrap());
    }
    // The IPv4 Identification differs per packet: each reply carries its
    // own request's header.
    ids.dedup();
    assert!(ids.len() > 1, "{ids:?}");

    // With a selector (version/IHL, TOS, total length as sent: 44 + the
    // 24-octet TLV = 68, + 28 = 96 = 0x60) the TOS is known and matched;
    // `auto` builds the same selector from --dscp and the request length.
    for selector in ["45280060", "auto"] {
        let out = send(
            &t.sender,
            "10.2.0.2",
            port,
            &[
                "--reflected-fixed-hdr",
                "--dscp",
                "10",
                "--tlv-opt",
                &format!("reflected-fixed-hdr-selector={selector}"),
            ],
        );
        for h in tlvs(&out, "fixed-hdr") {
            assert_eq!(h["flags"], "-", "{selector}: {h}");
            assert_eq!(h["tos"], 40, "{h}");
            assert_eq!(h["ttl"], 254, "{h}");
        }
    }
    // A selector that does not match (TOS 0 asked, 40 sent): C.
    let out = send(
        &t.sender,
        "10.2.0.2",
        port,
        &[
            "--reflected-fixed-hdr",
            "--dscp",
            "10",
            "--tlv-opt",
            "reflected-fixed-hdr-selector=45000060",
        ],
    );
    for h in tlvs(&out, "fixed-hdr") {
        assert_eq!(h["flags"], "C", "{h}");
    }
    assert_eq!(icmp_unreachables_sent(&t.reflector), 0);
    let (status, summary, _) = refl.interrupt();
    assert!(status.success());
    assert!(summary.contains("Packets received: 20"), "{summary}");
    assert!(summary.contains("Packets reflected: 20"), "{summary}");
    drop(t.router);
}

#[test]
fn raw_transport_reflects_an_ipv6_destination_options_header() {
    if !netns::require(&["ip"]) {
        return;
    }
    let t = topology("xh6");
    let refl = Reflector::start_in(&t.reflector, &["--transport", "raw", "-S", "::"]);
    let port = refl.addr.port();
    let args = [
        "--reflected-fixed-hdr",
        "--reflected-ipv6-ext-hdr",
        "--ipv6-dest-opt-len",
        "16",
    ];
    let out = send(&t.sender, "fd02::2", port, &args);
    for h in tlvs(&out, "fixed-hdr") {
        assert_eq!(h["flags"], "-", "{h}");
        assert_eq!(h["version"], 6);
        assert_eq!(h["hop_limit"], 254, "{h}");
        assert_eq!(h["src"], "fd01::1");
        assert_eq!(h["dst"], "fd02::2");
        // Destination Options follows the fixed header.
        assert_eq!(h["next_header"], 60, "{h}");
    }
    // The sender's header: Next Header, Hdr Ext Len 1, option 0x1E with 12
    // octets 00..0b. The TLV's Requested part (first 8 octets) stays zero,
    // the rest is the header from octet 8 on.
    for e in tlvs(&out, "ext-hdr") {
        assert_eq!(e["flags"], "-", "{e}");
        assert_eq!(e["length"], 16);
        assert_eq!(e["requested"], "0000000000000000");
        assert_eq!(e["reflected"], "0405060708090a0b", "{e}");
    }
    // Selecting the header by its first 8 octets (Next Header 17 = UDP).
    let mut sel = args.to_vec();
    sel.extend([
        "--tlv-opt",
        "reflected-ipv6-ext-hdr-selector=11011e0c00010203",
    ]);
    let out = send(&t.sender, "fd02::2", port, &sel);
    for e in tlvs(&out, "ext-hdr") {
        assert_eq!(e["flags"], "-", "{e}");
        assert_eq!(e["requested"], "11011e0c00010203");
        assert_eq!(e["next_header"], 17);
    }
    // Asking for a 24-octet header that is not there: C.
    let mut wrong = args.to_vec();
    wrong.extend(["--tlv-opt", "reflected-ipv6-ext-hdr-len=24"]);
    let out = send(&t.sender, "fd02::2", port, &wrong);
    for e in tlvs(&out, "ext-hdr") {
        assert_eq!(e["flags"], "C", "{e}");
    }
    // No extension header at all: the fixed header's Next Header is UDP.
    let out = send(&t.sender, "fd02::2", port, &["--reflected-fixed-hdr"]);
    for h in tlvs(&out, "fixed-hdr") {
        assert_eq!(h["next_header"], 17, "{h}");
    }
    assert_eq!(icmp_unreachables_sent(&t.reflector), 0);
    let (status, summary, _) = refl.interrupt();
    assert!(status.success());
    assert!(summary.contains("Packets reflected: 20"), "{summary}");
}

#[test]
fn udp_transport_answers_the_header_tlvs_with_u() {
    if !netns::require(&["ip"]) {
        return;
    }
    let t = topology("xhu");
    let refl = Reflector::start_in(&t.reflector, &["-S", "::"]);
    let port = refl.addr.port();
    let out = send(&t.sender, "10.2.0.2", port, &["--reflected-fixed-hdr"]);
    for h in tlvs(&out, "fixed-hdr") {
        assert_eq!(h["flags"], "U", "{h}");
        assert_eq!(h["available"], false);
    }
    let out = send(
        &t.sender,
        "fd02::2",
        port,
        &[
            "--reflected-fixed-hdr",
            "--reflected-ipv6-ext-hdr",
            "--ipv6-dest-opt-len",
            "16",
        ],
    );
    for name in ["fixed-hdr", "ext-hdr"] {
        for h in tlvs(&out, name) {
            assert_eq!(h["flags"], "U", "{h}");
        }
    }
}

#[test]
fn raw_transport_on_loopback_answers_each_request_once() {
    if !netns::require(&["ip"]) {
        return;
    }
    // Sender and reflector on the same host: the packet socket sees each
    // request going out and coming in, and every reply too.
    let ns = Netns::new("xhlo");
    let refl = Reflector::start_in(&ns, &["--transport", "raw", "-S", "127.0.0.1"]);
    let port = refl.addr.port();
    let mut c = ns.cmd(bin("stamp-suite"));
    c.args([
        "-r",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-c",
        "20",
        "-d",
        "5",
    ]);
    c.args([
        "-L",
        "1",
        "--output-format",
        "json",
        "--reflected-fixed-hdr",
    ]);
    let out = run_command(&mut c, Duration::from_secs(30));
    let lines = json_lines(&String::from_utf8_lossy(&out.stdout));
    let summary = lines.iter().find(|v| v["type"] == "summary").unwrap();
    assert_eq!(summary["received"], 20, "{summary}");
    assert_eq!(summary["duplicates"], 0, "{summary}");
    assert_eq!(icmp_unreachables_sent(&ns), 0);
    let (status, text, _) = refl.interrupt();
    assert!(status.success());
    assert!(text.contains("Packets received: 20"), "{text}");
    assert!(text.contains("Packets reflected: 20"), "{text}");
}

#[test]
fn raw_transport_without_cap_net_raw_fails_with_one_line() {
    if !netns::require(&["setpriv"]) {
        return;
    }
    // As nobody, without capabilities: the packet socket is refused.
    let mut c = std::process::Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    c.arg(bin("stamp-suite"));
    c.args(["-i", "--transport", "raw", "-S", "127.0.0.1", "-o", "0"]);
    let out = run_command(&mut c, Duration::from_secs(10));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.contains(" INFO ")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("CAP_NET_RAW"), "{err}");
}

/// Requests must fit the path MTU (the draft's MTU rule): with loopback at
/// 1280 octets, a request that would be too long loses its Reflected IPv6
/// Extension Header TLV first, then its Reflected Fixed Header TLV, each
/// with one warning; one still too long after that is sent (fragmented)
/// with a warning. Every request is answered either way.
#[test]
fn requests_shed_header_tlvs_to_fit_the_path_mtu() {
    if !netns::require(&["ip"]) {
        return;
    }
    let ns = Netns::new("xmtu");
    ns.run(&["ip", "link", "set", "lo", "mtu", "1280"]);
    let refl = Reflector::start_in(&ns, &["-S", "::1"]);
    let port = refl.addr.port();
    let header_tlvs = ["--reflected-fixed-hdr", "--reflected-ipv6-ext-hdr"];
    let names = |out: &Output| -> Vec<String> {
        let lines = json_lines(&String::from_utf8_lossy(&out.stdout));
        let p = lines
            .iter()
            .find(|v| v["type"] == "packet" && v["status"] == "received")
            .expect("a received packet");
        p["tlvs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    // 44 + (4 + 1100) padding + 44 fixed header + 12 extension header =
    // 1204: fits the 1232 octets of UDP payload.
    let fits = send(
        &ns,
        "::1",
        port,
        &[&header_tlvs[..], &["--padding", "1100"]].concat(),
    );
    let err = String::from_utf8_lossy(&fits.stderr);
    assert!(!err.contains("does not fit"), "{err}");
    let n = names(&fits);
    assert!(
        n.iter().any(|t| t == "fixed-hdr") && n.iter().any(|t| t == "ext-hdr"),
        "{n:?}"
    );
    // With 1150 octets of padding: 1254, then 1242 without the extension
    // header TLV, then 1198 without the fixed header TLV.
    let shed = send(
        &ns,
        "::1",
        port,
        &[&header_tlvs[..], &["--padding", "1150"]].concat(),
    );
    let err = String::from_utf8_lossy(&shed.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("does not fit")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(warnings[0].contains("reflected-ipv6-ext-header"), "{err}");
    assert!(warnings[1].contains("reflected-fixed-header"), "{err}");
    assert!(!err.contains("fragmented"), "{err}");
    let n = names(&shed);
    assert!(
        !n.iter().any(|t| t == "fixed-hdr" || t == "ext-hdr"),
        "{n:?}"
    );
    // Too long even without them: sent fragmented, said so, answered.
    let big = send(&ns, "::1", port, &["--padding", "1250"]);
    let err = String::from_utf8_lossy(&big.stderr);
    assert!(err.contains("will be fragmented"), "{err}");
    for out in [&fits, &shed, &big] {
        let lines = json_lines(&String::from_utf8_lossy(&out.stdout));
        let summary = lines
            .iter()
            .find(|v| v["type"] == "summary")
            .expect("summary");
        assert_eq!(summary["received"], 5, "{summary}");
    }
}
