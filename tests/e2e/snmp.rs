//! The AgentX SNMP sub-agent (feature `snmp`, `--snmp --snmp-socket`)
//! against net-snmp's `snmpd` as master agent on a private Unix socket:
//! `snmpwalk` reads the reflector's configuration, counters and session
//! table and a running sender's target table, and the values are checked
//! against the traffic sent; `snmpd` is killed and started again on the same
//! socket and the walk works again with the updated values. One walk loads
//! doc/STAMP-SUITE-MIB.txt (`-M +doc -m +STAMP-SUITE-MIB`) and asks for the
//! objects by name, which proves the MIB file parses and names the OIDs the
//! sub-agent serves.
//!
//! Needs `snmpd` and `snmpwalk` (Debian packages `snmpd`, `snmp`; `.ci/run`
//! installs them): without them the test fails under CI and says "skipped"
//! elsewhere.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stamp_tests::{bin, count, repo_root, run, run_command, Reflector};

/// The MIB root (doc/STAMP-SUITE-MIB.txt's placeholder { enterprises 32473 }).
const ROOT: &str = ".1.3.6.1.4.1.32473";

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether net-snmp is here; under CI its absence is a failure.
fn net_snmp_available() -> bool {
    if installed("snmpd") && installed("snmpwalk") {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "snmpd / snmpwalk not installed (Debian packages snmpd and snmp; .ci/run installs them)"
    );
    eprintln!("skipped: snmpd / snmpwalk not installed (apt-get install snmpd snmp)");
    false
}

/// A scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("stamp-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `snmpd -f -Lo -C -c <conf>` as AgentX master on `dir/master`, SNMP on
/// 127.0.0.1:`port`. Killed on drop.
struct Snmpd {
    child: Option<Child>,
}

impl Snmpd {
    fn start(dir: &Path, port: u16, run: u32) -> Snmpd {
        let conf = dir.join("snmpd.conf");
        std::fs::write(
            &conf,
            format!(
                "agentXSocket {}\nmaster agentx\nagentaddress udp:127.0.0.1:{port}\nrocommunity public 127.0.0.1\n",
                dir.join("master").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join(format!("snmpd-{run}.log"))).unwrap();
        let child = Command::new("snmpd")
            .args(["-f", "-Lo", "-C", "-c"])
            .arg(&conf)
            .env("SNMP_PERSISTENT_DIR", dir.join("persist"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn snmpd");
        Snmpd { child: Some(child) }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free UDP port on 127.0.0.1 (bound, read, released).
fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// `snmpwalk -v2c -c public <extra> 127.0.0.1:port <oid>`: the lines
/// `NAME = TYPE: VALUE` as NAME -> "TYPE: VALUE", and stderr.
fn walk(port: u16, extra: &[&str], oid: &str) -> (BTreeMap<String, String>, String) {
    let out = run_command(
        Command::new("snmpwalk")
            .args(["-v2c", "-c", "public", "-t", "2", "-r", "1"])
            .args(extra)
            .arg(format!("127.0.0.1:{port}"))
            .arg(oid),
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut map = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(" = ") {
            map.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    (map, String::from_utf8_lossy(&out.stderr).to_string())
}

/// A numeric walk (`-On`).
fn walk_n(port: u16, oid: &str) -> BTreeMap<String, String> {
    walk(port, &["-On"], oid).0
}

/// The number in "Counter64: 5", "Gauge32: 5", "INTEGER: 1",
/// "Timeticks: (12) 0:00:00.12".
fn num(v: &str) -> u64 {
    let rest = v.split_once(": ").map_or(v, |(_, r)| r);
    let rest = rest.trim_start_matches('(');
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {v}"))
}

fn get<'a>(m: &'a BTreeMap<String, String>, oid: &str) -> &'a str {
    m.get(oid)
        .unwrap_or_else(|| panic!("{oid} missing from the walk:\n{m:#?}"))
}

/// Walk `oid` until `ok` holds (bounded).
fn walk_until(
    port: u16,
    oid: &str,
    what: &str,
    limit: Duration,
    ok: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    let deadline = Instant::now() + limit;
    loop {
        let m = walk_n(port, oid);
        if ok(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "{what}; last walk:\n{m:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn refl(rest: &str) -> String {
    format!("{ROOT}.1.1.{rest}")
}

/// Session rows of a reflector walk: index -> (address, port, ssid, rx, tx, idle ticks).
fn sessions(m: &BTreeMap<String, String>) -> BTreeMap<u64, (String, u64, u64, u64, u64, u64)> {
    let mut rows = BTreeMap::new();
    let prefix = refl("3.1.");
    for (k, v) in m {
        let Some(rest) = k.strip_prefix(&prefix) else {
            continue;
        };
        let (col, idx) = rest.split_once('.').unwrap();
        let idx: u64 = idx.parse().unwrap();
        let row = rows
            .entry(idx)
            .or_insert_with(|| (String::new(), 0, 0, 0, 0, 0));
        match col {
            "2" => {
                row.0 = v
                    .trim_start_matches("STRING: ")
                    .trim_matches('"')
                    .to_string()
            }
            "3" => row.1 = num(v),
            "4" => row.2 = num(v),
            "5" => row.3 = num(v),
            "6" => row.4 = num(v),
            "7" => row.5 = num(v),
            _ => panic!("unexpected column {k}"),
        }
    }
    rows
}

/// Run the sender to completion: `count` packets with this SSID.
fn send(port: &str, ssid: &str, n: u64) {
    let out = run(
        "stamp-sender",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            port,
            "-c",
            &n.to_string(),
            "-d",
            "2",
            "--ssid",
            ssid,
        ],
        &[],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(count(&text, "Packets received"), n, "{text}");
}

/// The directories to add to snmpwalk's MIB path for STAMP-SUITE-MIB: the
/// repository's doc/, plus, where the IETF SMI modules it imports are not
/// installed (Debian ships them only in the non-free snmp-mibs-downloader),
/// a directory of minimal stand-ins for the few definitions it uses.
fn mib_dirs(dir: &Path) -> String {
    let doc = repo_root().join("doc");
    let have_smi = run_command(
        Command::new("snmptranslate").args([
            "-m",
            "SNMPv2-SMI:SNMPv2-TC",
            "-On",
            "SNMPv2-TC::DisplayString",
        ]),
        Duration::from_secs(20),
    );
    let have_smi = have_smi.status.success()
        && !String::from_utf8_lossy(&have_smi.stderr).contains("Cannot find module");
    if have_smi {
        return format!("+{}", doc.display());
    }
    let stubs = dir.join("smi-stand-ins");
    std::fs::create_dir_all(&stubs).unwrap();
    std::fs::write(
        stubs.join("SNMPv2-SMI.txt"),
        "SNMPv2-SMI DEFINITIONS ::= BEGIN\n\
         org OBJECT IDENTIFIER ::= { iso 3 }\n\
         dod OBJECT IDENTIFIER ::= { org 6 }\n\
         internet OBJECT IDENTIFIER ::= { dod 1 }\n\
         private OBJECT IDENTIFIER ::= { internet 4 }\n\
         enterprises OBJECT IDENTIFIER ::= { private 1 }\n\
         END\n",
    )
    .unwrap();
    std::fs::write(
        stubs.join("SNMPv2-TC.txt"),
        "SNMPv2-TC DEFINITIONS ::= BEGIN\n\
         DisplayString ::= TEXTUAL-CONVENTION\n    DISPLAY-HINT \"255a\"\n    STATUS current\n    DESCRIPTION \"Text.\"\n    SYNTAX OCTET STRING (SIZE (0..255))\n\
         TruthValue ::= TEXTUAL-CONVENTION\n    STATUS current\n    DESCRIPTION \"Boolean.\"\n    SYNTAX INTEGER { true(1), false(2) }\n\
         END\n",
    )
    .unwrap();
    std::fs::write(
        stubs.join("SNMPv2-CONF.txt"),
        "SNMPv2-CONF DEFINITIONS ::= BEGIN\nEND\n",
    )
    .unwrap();
    format!("+{}:{}", doc.display(), stubs.display())
}

#[test]
fn snmpwalk_reads_the_reflector_and_sender_and_survives_a_master_restart() {
    if !net_snmp_available() {
        return;
    }
    let dir = TempDir::new("snmp-e2e");
    let socket = dir.0.join("master");
    let snmp_port = free_udp_port();
    let mut snmpd = Snmpd::start(&dir.0, snmp_port, 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "snmpd made no AgentX socket");
        std::thread::sleep(Duration::from_millis(20));
    }

    let socket_s = socket.to_str().unwrap();
    let r = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "--workers",
        "2",
        "--stateful-reflector",
        "--max-sessions",
        "100",
        "--snmp",
        "--snmp-socket",
        socket_s,
    ]);
    let port = r.port();

    // Registered: configuration and zero counters.
    let idle = walk_until(
        snmp_port,
        &format!("{ROOT}.1.1"),
        "the reflector never registered",
        Duration::from_secs(15),
        |m| m.contains_key(&refl("2.1.0")),
    );
    assert_eq!(
        num(get(&idle, &refl("1.1.0"))),
        port.parse::<u64>().unwrap()
    );
    assert_eq!(get(&idle, &refl("1.2.0")), "INTEGER: 1", "open mode");
    assert_eq!(
        get(&idle, &refl("1.3.0")),
        "INTEGER: 1",
        "stateful: true(1)"
    );
    assert_eq!(get(&idle, &refl("1.4.0")), "INTEGER: 1", "tlv mode echo");
    assert_eq!(num(get(&idle, &refl("1.5.0"))), 100);
    assert_eq!(num(get(&idle, &refl("1.9.0"))), 2);
    assert_eq!(num(get(&idle, &refl("1.10.0"))), 0, "no global rate limit");
    for i in (1..=13).chain(15..=19) {
        assert_eq!(
            get(&idle, &refl(&format!("2.{i}.0"))),
            "Counter64: 0",
            "counter {i}"
        );
    }
    assert!(sessions(&idle).is_empty());

    // Traffic: 3 short datagrams (dropped, truncated), two sessions.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..3 {
        udp.send_to(&[0u8; 5], r.addr).unwrap();
    }
    send(&port, "7", 50);
    send(&port, "9", 30);
    let m = walk_until(
        snmp_port,
        &format!("{ROOT}.1.1"),
        "counters never reached the traffic",
        Duration::from_secs(10),
        |m| m.get(&refl("2.1.0")).map(|v| num(v)) == Some(83),
    );
    assert_eq!(num(get(&m, &refl("2.2.0"))), 80, "reflected");
    assert_eq!(num(get(&m, &refl("2.3.0"))), 3, "truncated");
    assert_eq!(num(get(&m, &refl("2.4.0"))), 0, "auth failed");
    assert_eq!(num(get(&m, &refl("2.9.0"))), 0, "HMAC failures");
    assert_eq!(get(&m, &refl("2.14.0")), "Gauge32: 2", "active sessions");
    assert_eq!(num(get(&m, &refl("2.15.0"))), 2, "sessions created");
    let rows = sessions(&m);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let mut by_ssid: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    // Row index -> (sender port, SSID): the same session must keep its row.
    let first_rows: BTreeMap<u64, (u64, u64)> =
        rows.iter().map(|(i, r)| (*i, (r.1, r.2))).collect();
    for (idx, (addr, sport, ssid, rx, tx, idle)) in &rows {
        assert!((1..=u64::from(u32::MAX)).contains(idx));
        assert_eq!(addr, "127.0.0.1");
        assert!(*sport > 0);
        assert!(*idle < 3000, "last seen {idle} ticks ago");
        by_ssid.insert(*ssid, (*rx, *tx));
    }
    assert_eq!(by_ssid, BTreeMap::from([(7, (50, 50)), (9, (30, 30))]));

    // The MIB file parses, and its names are the OIDs served.
    let mibs = mib_dirs(&dir.0);
    let (named, stderr) = walk(
        snmp_port,
        &["-M", &mibs, "-m", "+STAMP-SUITE-MIB"],
        "STAMP-SUITE-MIB::stampReflector",
    );
    assert!(
        !stderr.contains("STAMP-SUITE-MIB"),
        "the MIB did not parse cleanly:\n{stderr}"
    );
    assert_eq!(
        get(&named, "STAMP-SUITE-MIB::stampReflPktsReceived.0"),
        "Counter64: 83"
    );
    assert_eq!(
        get(&named, "STAMP-SUITE-MIB::stampReflDropTruncated.0"),
        "Counter64: 3"
    );
    assert_eq!(
        get(&named, "STAMP-SUITE-MIB::stampReflConfigAuthMode.0"),
        "INTEGER: open(1)"
    );
    assert_eq!(
        get(&named, "STAMP-SUITE-MIB::stampReflConfigStateful.0"),
        "INTEGER: true(1)"
    );
    let (one, two): (Vec<u64>, Vec<u64>) = (
        first_rows.keys().copied().take(1).collect(),
        first_rows.keys().copied().skip(1).collect(),
    );
    assert_eq!(
        get(
            &named,
            &format!("STAMP-SUITE-MIB::stampReflSessionAddress.{}", one[0])
        ),
        "STRING: 127.0.0.1"
    );
    assert!(named.contains_key(&format!(
        "STAMP-SUITE-MIB::stampReflSessionLastSeen.{}",
        two[0]
    )));

    // The master restarts (killed: its socket file stays behind); traffic
    // meanwhile; the sub-agent registers again and the walk shows it.
    snmpd.kill();
    send(&port, "7", 20);
    let _snmpd = Snmpd::start(&dir.0, snmp_port, 2);
    let m = walk_until(
        snmp_port,
        &format!("{ROOT}.1.1"),
        "no walk after the master restarted",
        Duration::from_secs(20),
        |m| m.get(&refl("2.1.0")).map(|v| num(v)) == Some(103),
    );
    assert_eq!(num(get(&m, &refl("2.2.0"))), 100);
    // A new sender process has a new source port: a third session.
    assert_eq!(get(&m, &refl("2.14.0")), "Gauge32: 3", "active sessions");
    let rows = sessions(&m);
    let mut by_ssid: Vec<(u64, u64)> = rows.values().map(|r| (r.2, r.3)).collect();
    by_ssid.sort();
    assert_eq!(by_ssid, vec![(7, 20), (7, 50), (9, 30)]);
    // The two sessions of the first walk are still on their rows, after a
    // new session and a restart of the master; the new one has its own.
    for (idx, (sport, ssid)) in &first_rows {
        let r = rows
            .get(idx)
            .unwrap_or_else(|| panic!("row {idx} gone: {rows:?}"));
        assert_eq!((r.1, r.2), (*sport, *ssid), "row {idx} changed hands");
    }
    assert!(
        r.stderr_lines()
            .iter()
            .any(|l| l.contains("AgentX session lost")),
        "the reflector did not notice the master going away"
    );

    // A sender with --snmp, walked while it runs: 200 packets 10 ms apart.
    let child = Command::new(bin("stamp-sender"))
        .args([
            "-r",
            "127.0.0.1",
            "-p",
            &port,
            "-c",
            "200",
            "-d",
            "10",
            "--snmp",
            "--snmp-socket",
            socket_s,
        ])
        .env_remove("STAMP_HMAC_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sender");
    struct Guard(Option<Child>);
    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(mut c) = self.0.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut guard = Guard(Some(child));
    let send_oid = format!("{ROOT}.1.2");
    let col = |c: u32| format!("{ROOT}.1.2.2.1.{c}.1");
    let s = walk_until(
        snmp_port,
        &send_oid,
        "the sender never showed 20 replies",
        Duration::from_secs(15),
        |m| m.get(&col(5)).is_some_and(|v| num(v) >= 20),
    );
    assert!(
        guard.0.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the sender should still be running"
    );
    assert_eq!(num(get(&s, &format!("{ROOT}.1.2.1.1.0"))), 200, "count");
    assert_eq!(
        num(get(&s, &format!("{ROOT}.1.2.1.2.0"))),
        10_000,
        "interval µs"
    );
    assert_eq!(get(&s, &col(2)), "STRING: \"127.0.0.1\"");
    assert_eq!(num(get(&s, &col(3))), port.parse::<u64>().unwrap());
    let (sent, recv) = (num(get(&s, &col(4))), num(get(&s, &col(5))));
    assert!(sent >= recv && sent < 200, "sent {sent} received {recv}");
    assert_eq!(num(get(&s, &col(6))), 0, "lost");
    let (min, avg, max) = (
        num(get(&s, &col(8))),
        num(get(&s, &col(9))),
        num(get(&s, &col(10))),
    );
    assert!(
        min <= avg && avg <= max && max > 0,
        "rtt {min}/{avg}/{max} µs"
    );
    assert!(max < 1_000_000, "rtt max {max} µs over loopback");
    // Still there: the reflector's subtree, beside the sender's.
    assert!(walk_n(snmp_port, &refl("2.1.0")).contains_key(&refl("2.1.0")));

    let mut child = guard.0.take().unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "sender did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        count(&String::from_utf8_lossy(&out.stdout), "Packets received"),
        200
    );

    let (status, summary, _) = r.interrupt();
    assert!(status.success());
    assert_eq!(count(&summary, "Packets received"), 303);
}
