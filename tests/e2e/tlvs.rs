//! RFC 8972 TLVs end to end: our sender and reflector binaries over real
//! UDP sockets on 127.0.0.1 and ::1, every TLV of RFC 8972 §4.1-§4.8 at
//! once, in open and authenticated mode, checked in the `-R` text lines and
//! in the JSON output; plus the HMAC TLV in open mode (same key, other key),
//! `--tlv-mode ignore`, and the sender TLV options from a config file.

use std::net::{SocketAddr, UdpSocket};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use stamp_tests::{count, field, json_lines, run, sender, Reflector};

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const OTHER_KEY: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
const PACKETS: u64 = 4;
const PADDING: usize = 64;

/// Every RFC 8972 TLV the sender can ask for (the HMAC TLV is added by the
/// engine in authenticated mode).
const ALL_TLVS: &[&str] = &[
    "--ssid",
    "9",
    "--cos",
    "--dscp",
    "46",
    "--ecn",
    "1",
    "--location",
    "--timestamp-info",
    "--direct-measurement",
    "--follow-up-telemetry",
    "--access-report",
    "1",
    "--access-return-code",
    "2",
    "--padding",
    "64",
];

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The sender's own UDP port, from its "sending … local=ADDR:PORT" log line.
fn sender_port(o: &Output) -> u16 {
    let err = String::from_utf8_lossy(&o.stderr);
    let at = err
        .find("local=")
        .unwrap_or_else(|| panic!("no local= in sender log:\n{err}"));
    let addr: SocketAddr = err[at + 6..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    addr.port()
}

fn run_sender(r: &Reflector, addr: &str, extra: &[&str]) -> Output {
    let mut args = vec!["-c", "4", "-d", "5"];
    args.extend_from_slice(extra);
    let out = sender(addr, &r.port(), &args);
    assert!(out.status.success(), "{out:?}");
    out
}

/// `addr:port` as the sender prints it (brackets for IPv6).
fn sock(addr: &str, port: u16) -> String {
    SocketAddr::new(addr.parse().unwrap(), port).to_string()
}

/// Per-packet text lines (`-R`): every TLV decoded, nothing flagged.
fn check_text(text: &str, addr: &str, reflector_port: u16, sport: u16) {
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("seq=")).collect();
    assert_eq!(lines.len() as u64, PACKETS, "{text}");
    for (i, l) in lines.iter().enumerate() {
        let n = i + 1;
        assert!(l.starts_with(&format!("seq={i} ")), "{l}");
        assert!(l.contains(&format!(" refl_seq={i} ")), "stateful: {l}");
        let loc = format!(
            "[location: dst {} src {}]",
            sock(addr, reflector_port),
            sock(addr, sport)
        );
        assert!(l.contains(&loc), "want {loc} in {l}");
        assert!(l.contains("[tsinfo: in "), "{l}");
        assert!(
            l.contains("[cos: dscp 46->46 ecn 1->1 rp 0 rev dscp 46 ecn 1]"),
            "{l}"
        );
        assert!(
            l.contains(&format!("[dm: S_TxC {n} R_RxC {n} R_TxC {n}]")),
            "{l}"
        );
        assert!(
            l.contains("[access: id 1 (3GPP) rc 2 (network unavailable)]"),
            "{l}"
        );
        if i == 0 {
            assert!(l.contains("[fut: no previous reply"), "{l}");
        } else {
            assert!(l.contains(&format!("[fut: prev seq {} ts ", i - 1)), "{l}");
        }
        assert!(l.contains(&format!("[padding: {PADDING} octets]")), "{l}");
        // flags are only printed when the reflector set U/M/I/C
        assert!(!l.contains("flags="), "{l}");
        assert!(!l.contains("tlv error"), "{l}");
        assert!(!l.contains("unrecognized"), "{l}");
        assert!(!l.contains("NAT"), "{l}");
    }
    assert!(field(text, "Replies with TLV errors").is_none(), "{text}");
}

fn tlv<'a>(p: &'a Value, name: &str) -> &'a Value {
    p["tlvs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no {name} TLV in {p}"))
}

/// JSON packet records: every TLV's structured fields.
fn check_json(text: &str, addr: &str, reflector_port: u16, sport: u16) {
    let v = json_lines(text);
    let pkts: Vec<&Value> = v.iter().filter(|x| x["type"] == "packet").collect();
    assert_eq!(pkts.len() as u64, PACKETS);
    let sync = ["NTP", "PTP", "SSU/BITS", "GNSS", "local"];
    let methods = ["hw-assist", "sw-local", "control-plane"];
    for (i, p) in pkts.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(p["seq"], i as u64);
        assert_eq!(p["reflector_seq"], i as u64);
        assert_eq!(p["ssid"], 9);
        assert_eq!(p["status"], "received");
        assert_eq!(p["tlv_error"], Value::Null, "{p}");
        let tlvs = p["tlvs"].as_array().unwrap();
        let mut names: Vec<&str> = tlvs.iter().map(|t| t["name"].as_str().unwrap()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["access", "cos", "dm", "fut", "location", "padding", "tsinfo"],
            "{p}"
        );
        for t in tlvs {
            assert_eq!(t["flags"], "-", "U/M/I/C all clear: {t}");
        }

        let loc = tlv(p, "location");
        assert_eq!(loc["type"], 2);
        assert_eq!(loc["dst_ip"], addr);
        assert_eq!(loc["dst_port"], reflector_port);
        assert_eq!(loc["src_ip"], addr);
        assert_eq!(loc["src_port"], sport);
        assert_eq!(loc["src_mac"], Value::Null, "no MAC on a UDP socket");
        assert_eq!(loc["nat"], false);

        let ts = tlv(p, "tsinfo");
        assert_eq!(ts["type"], 3);
        for k in ["sync_src_in", "sync_src_out"] {
            assert!(sync.contains(&ts[k].as_str().unwrap()), "{ts}");
        }
        for k in ["timestamp_in", "timestamp_out"] {
            assert!(methods.contains(&ts[k].as_str().unwrap()), "{ts}");
        }

        let cos = tlv(p, "cos");
        assert_eq!(cos["type"], 4);
        assert_eq!(
            (
                &cos["dscp1"],
                &cos["dscp2"],
                &cos["ecn"],
                &cos["ecn_sent"],
                &cos["rp"]
            ),
            (&46.into(), &46.into(), &1.into(), &1.into(), &0.into()),
            "{cos}"
        );
        assert_eq!(
            (&cos["reply_dscp"], &cos["reply_ecn"]),
            (&46.into(), &1.into())
        );
        assert_eq!(p["reply_tos"], 46 << 2 | 1);

        let dm = tlv(p, "dm");
        assert_eq!(dm["type"], 5);
        assert_eq!(
            (&dm["s_txc"], &dm["r_rxc"], &dm["r_txc"]),
            (&n.into(), &n.into(), &n.into())
        );
        assert_eq!(dm["fwd_lost"], 0);

        let ar = tlv(p, "access");
        assert_eq!(ar["type"], 6);
        assert_eq!(
            (&ar["access_id"], &ar["return_code"]),
            (&1.into(), &2.into())
        );

        let fut = tlv(p, "fut");
        assert_eq!(fut["type"], 7);
        if i == 0 {
            assert_eq!(fut["prev_seq"], 0);
            assert_eq!(fut["ts_ns"], Value::Null, "first reply of the session");
        } else {
            let prev = pkts[i - 1];
            assert_eq!(fut["prev_seq"], prev["reflector_seq"]);
            // the previous reply left after its T3 and before this request
            // arrived (T2)
            let fts = fut["ts_ns"].as_u64().expect("follow-up timestamp");
            // The follow-up timestamp is the previous reply's transmit time:
            // the kernel's transmit timestamp of that datagram, taken after
            // the T3 it carries and before the sender received it (T4).
            // (It is not bounded by this reply's T2: a kernel receive
            // timestamp can precede the previous T3 when the reflector is
            // scheduled late.)
            let (t3, t4) = (prev["t3"].as_u64().unwrap(), prev["t4"].as_u64().unwrap());
            assert!(t3 <= fts && fts <= t4, "{fut} vs {prev}");
            assert!(methods.contains(&fut["mode"].as_str().unwrap()), "{fut}");
        }

        let pad = tlv(p, "padding");
        assert_eq!(pad["type"], 1);
        assert_eq!(pad["octets"], PADDING);
        assert_eq!(pad["intact"], true);
    }
    let sum = v.iter().find(|x| x["type"] == "summary").unwrap();
    assert_eq!(sum["tlv_errors"], 0);
    assert_eq!(sum["received"], PACKETS);
}

/// The reflector's summary after Ctrl-C: nothing flagged.
fn check_reflector_clean(r: Reflector, replies: u64) {
    let (status, summary, _) = r.interrupt();
    assert!(status.success());
    assert_eq!(count(&summary, "Packets reflected"), replies, "{summary}");
    assert_eq!(
        field(&summary, "TLVs flagged"),
        Some("unrecognized 0 malformed 0 integrity 0 conformance 0"),
        "{summary}"
    );
}

fn all_tlvs(addr: &str, auth: bool) {
    let mut rargs = vec!["-S", addr, "--stateful-reflector"];
    let mut sargs: Vec<&str> = ALL_TLVS.to_vec();
    if auth {
        rargs.extend_from_slice(&["-A", "A", "--hmac-key", KEY]);
        sargs.extend_from_slice(&["-A", "A", "--hmac-key", KEY]);
    }
    let r = Reflector::start(&rargs);
    let rport = r.addr.port();

    let mut text_args = sargs.clone();
    text_args.push("-R");
    let out = run_sender(&r, addr, &text_args);
    check_text(&stdout(&out), addr, rport, sender_port(&out));

    let mut json_args = sargs.clone();
    json_args.extend_from_slice(&["-R", "--output-format", "json"]);
    let out = run_sender(&r, addr, &json_args);
    check_json(&stdout(&out), addr, rport, sender_port(&out));

    check_reflector_clean(r, 2 * PACKETS);
}

#[test]
fn all_rfc8972_tlvs_open_mode_ipv4() {
    all_tlvs("127.0.0.1", false);
}

#[test]
fn all_rfc8972_tlvs_open_mode_ipv6() {
    all_tlvs("::1", false);
}

/// Authenticated mode: the sender adds the HMAC TLV itself (RFC 8972 §4.8),
/// the reflector verifies it before using any TLV and signs its reply's
/// TLVs; the sender verifies that (a failure would show as `tlv error:
/// hmac`).
#[test]
fn all_rfc8972_tlvs_authenticated_mode_ipv4() {
    all_tlvs("127.0.0.1", true);
}

#[test]
fn all_rfc8972_tlvs_authenticated_mode_ipv6() {
    all_tlvs("::1", true);
}

fn hmac_tlv_open_mode(addr: &str) {
    let sargs = [
        "--cos",
        "--dscp",
        "46",
        "--direct-measurement",
        "--location",
        "--tlv-opt",
        "tlv-hmac=true",
        "--hmac-key",
        KEY,
        "-R",
    ];
    // Same key on both sides: verified, processed, reply signed.
    let r = Reflector::start(&["-S", addr, "--verify-tlv-hmac", "--hmac-key", KEY]);
    let out = run_sender(&r, addr, &sargs);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("seq=")).collect();
    assert_eq!(lines.len() as u64, PACKETS, "{text}");
    for l in &lines {
        assert!(l.contains("[cos: dscp 46->46 "), "{l}");
        assert!(l.contains("[dm: S_TxC "), "{l}");
        assert!(l.contains("[location: dst "), "{l}");
        assert!(!l.contains("tlv error"), "{l}");
    }
    check_reflector_clean(r, PACKETS);

    // Another key on the reflector: the HMAC TLV fails, every TLV comes
    // back with I and nothing processed; the sender reports an integrity
    // error per reply and shows no TLV.
    let r = Reflector::start(&["-S", addr, "--verify-tlv-hmac", "--hmac-key", OTHER_KEY]);
    let out = run_sender(&r, addr, &sargs);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("seq=")).collect();
    assert_eq!(lines.len() as u64, PACKETS, "{text}");
    for l in &lines {
        assert!(l.ends_with(" [tlv error: integrity]"), "{l}");
        assert!(!l.contains("[cos:"), "TLVs discarded: {l}");
    }
    assert_eq!(count(&text, "Replies with TLV errors"), PACKETS, "{text}");
    let (status, summary, _) = r.interrupt();
    assert!(status.success());
    assert_eq!(count(&summary, "Packets reflected"), PACKETS, "{summary}");
    assert_eq!(
        field(&summary, "TLVs flagged"),
        Some(format!("unrecognized 0 malformed 0 integrity {PACKETS} conformance 0").as_str()),
        "{summary}"
    );
}

#[test]
fn hmac_tlv_in_open_mode_verified_with_same_key_flagged_with_other_key_ipv4() {
    hmac_tlv_open_mode("127.0.0.1");
}

#[test]
fn hmac_tlv_in_open_mode_verified_with_same_key_flagged_with_other_key_ipv6() {
    hmac_tlv_open_mode("::1");
}

/// `--tlv-mode ignore`: the reply keeps the request's length and its TLV
/// area is all zeros; the sender then shows no TLV and no error.
#[test]
fn tlv_mode_ignore_returns_zeroed_tlvs_of_the_same_length() {
    let r = Reflector::start(&["-S", "127.0.0.1", "--tlv-mode", "ignore"]);
    // Raw: a CoS TLV and an Extra Padding TLV after the 44-octet base.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.connect(r.addr).unwrap();
    let mut req = vec![0u8; 44];
    req[3] = 7;
    req.extend_from_slice(&[0x80, 4, 0, 4, 0xB8, 0, 0, 0]);
    req.extend_from_slice(&[0x80, 1, 0, 12]);
    req.extend_from_slice(&[0x5A; 12]);
    sock.send(&req).unwrap();
    let mut buf = [0u8; 9216];
    let n = sock.recv(&mut buf).expect("reply");
    assert_eq!(n, req.len(), "same length");
    assert_eq!(&buf[24..28], &[0, 0, 0, 7]);
    assert!(buf[44..n].iter().all(|&b| b == 0), "{:?}", &buf[44..n]);

    // Our sender against it: no TLV decoded, no error, same length.
    let out = run_sender(
        &r,
        "127.0.0.1",
        &[
            "--cos",
            "--location",
            "--padding",
            "32",
            "-R",
            "--output-format",
            "json",
        ],
    );
    let v = json_lines(&stdout(&out));
    let pkts: Vec<&Value> = v.iter().filter(|x| x["type"] == "packet").collect();
    assert_eq!(pkts.len() as u64, PACKETS);
    let want_len = 44 + (4 + 4) + (4 + 4 + 12 + 20 + 20) + (4 + 32);
    for p in pkts {
        assert_eq!(p["len"], want_len, "{p}");
        assert_eq!(p["tlvs"], Value::Array(vec![]), "{p}");
        assert_eq!(p["tlv_error"], Value::Null);
    }
    check_reflector_clean(r, 1 + PACKETS);
}

/// Sender TLV options from a TOML config file: the keys are the snake_case
/// of the long flags (core/config/src/layer.rs).
#[test]
fn sender_tlv_options_from_a_config_file() {
    let r = Reflector::start(&["-S", "127.0.0.1", "--stateful-reflector"]);
    let dir = std::env::temp_dir().join(format!("stamp-tlvs-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sender.toml");
    std::fs::write(
        &path,
        "count = 3\n\
         send_delay = 5\n\
         per_packet = true\n\
         ssid = 9\n\
         cos = true\n\
         dscp = 10\n\
         ecn = 2\n\
         location = true\n\
         timestamp_info = true\n\
         direct_measurement = true\n\
         follow_up_telemetry = true\n\
         access_report = 2\n\
         access_return_code = 1\n\
         padding = 40\n",
    )
    .unwrap();
    let out = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &r.port(),
            "--config",
            path.to_str().unwrap(),
            "--output-format",
            "json",
        ],
        &[],
        Duration::from_secs(30),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{out:?}");
    let v = json_lines(&stdout(&out));
    let pkts: Vec<&Value> = v.iter().filter(|x| x["type"] == "packet").collect();
    assert_eq!(pkts.len(), 3, "count = 3 from the file");
    let sport = sender_port(&out);
    for (i, p) in pkts.iter().enumerate() {
        assert_eq!(p["ssid"], 9);
        assert_eq!(p["tlv_error"], Value::Null);
        let cos = tlv(p, "cos");
        assert_eq!(
            (&cos["dscp1"], &cos["dscp2"]),
            (&10.into(), &10.into()),
            "{cos}"
        );
        assert_eq!(
            (&cos["ecn_sent"], &cos["ecn"]),
            (&2.into(), &2.into()),
            "{cos}"
        );
        assert_eq!(p["reply_tos"], 10 << 2 | 2);
        let loc = tlv(p, "location");
        assert_eq!(loc["dst_port"], r.addr.port());
        assert_eq!(loc["src_port"], sport);
        tlv(p, "tsinfo");
        assert_eq!(tlv(p, "dm")["s_txc"], i as u64 + 1);
        if i > 0 {
            assert_eq!(tlv(p, "fut")["prev_seq"], i as u64 - 1);
        }
        let ar = tlv(p, "access");
        assert_eq!(
            (&ar["access_id"], &ar["return_code"]),
            (&2.into(), &1.into())
        );
        assert_eq!(tlv(p, "padding")["octets"], 40);
    }
    check_reflector_clean(r, 3);
}
