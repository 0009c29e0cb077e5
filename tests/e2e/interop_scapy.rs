//! Interoperability with an implementation nobody here wrote: scapy's STAMP
//! layer (`scapy.contrib.stamp`, scapy ≥ 2.6) builds requests with RFC 8972
//! TLVs, sends them to our reflector binary over a plain UDP socket and
//! parses the replies (tests/interop/scapy_stamp.py). Run on 127.0.0.1 and
//! ::1.
//!
//! scapy must be importable by `python3`: `scripts/test.sh` installs it.
//! Without it these tests fail (never skip silently).

use std::process::Command;
use std::time::Duration;

use stamp_tests::{count, repo_root, run_command, Reflector};

fn require_scapy() {
    let probe = Command::new("python3")
        .args(["-c", "import scapy.contrib.stamp"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "python3 cannot import scapy.contrib.stamp (scapy >= 2.6 needed): run scripts/test.sh, \
             which installs it (or `python3 -m pip install scapy`)\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "python3 is not runnable ({e}): the scapy interop test needs it; see scripts/test.sh"
        ),
    }
}

/// Run the scapy script against a stateful reflector on `addr`; returns
/// the script's stdout after asserting it passed, and the reflector summary.
fn run_against(addr: &str) -> (String, String) {
    require_scapy();
    let r = Reflector::start(&["-S", addr, "--stateful-reflector"]);
    let script = repo_root().join("tests/interop/scapy_stamp.py");
    let out = run_command(
        Command::new("python3").arg(&script).arg(addr).arg(r.port()),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scapy checks failed ({:?}):\n{}\n{stderr}",
        out.status,
        stdout
            .lines()
            .filter(|l| !l.starts_with("PASS"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let (status, summary, _) = r.interrupt();
    assert!(status.success());
    (stdout, summary)
}

fn assert_checks(stdout: &str) {
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("SUMMARY "))
        .unwrap_or_else(|| panic!("no SUMMARY line:\n{stdout}"));
    assert!(summary.ends_with(" failures=0"), "{summary}");
    let n: usize = summary
        .trim_start_matches("SUMMARY checks=")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let passed = stdout.lines().filter(|l| l.starts_with("PASS ")).count();
    assert_eq!(passed, n, "every check printed a PASS line");
    assert!(!stdout.contains("FAIL "), "{stdout}");
    // The checks this test is about must have run, for every packet.
    for i in 0..4 {
        for name in [
            "reply",
            "seq_echo",
            "ts_echo",
            "ssid_echo",
            "ttl",
            "reflector_seq",
            "flags_cleared.type1",
            "flags_cleared.type2",
            "flags_cleared.type3",
            "flags_cleared.type4",
            "flags_cleared.type5",
            "flags_cleared.type6",
            "flags_cleared.type7",
            "unknown.u_set",
            "unknown.bytes_kept",
            "padding.unchanged",
            "location.dst_port",
            "location.src_port",
            "location.dst_ip",
            "location.src_ip",
            "tsinfo.methods",
            "cos.dscp1",
            "cos.dscp2",
            "cos.ecn",
            "cos.rp",
            "dm.s_txc",
            "dm.r_rxc",
            "dm.r_txc",
            "access.id_rc",
        ] {
            let line = format!("PASS {i}.{name}");
            assert!(
                stdout.lines().any(|l| l == line),
                "missing {line:?}:\n{stdout}"
            );
        }
    }
    assert!(stdout.lines().any(|l| l == "PASS 0.fut.first_is_zero"));
    for i in 1..4 {
        for name in ["fut.prev_seq", "fut.timestamp"] {
            let line = format!("PASS {i}.{name}");
            assert!(stdout.lines().any(|l| l == line), "missing {line:?}");
        }
    }
    for name in [
        "base.length",
        "base.ssid_echo",
        "malformed.m_set",
        "malformed.rest_copied",
    ] {
        let line = format!("PASS {name}");
        assert!(stdout.lines().any(|l| l == line), "missing {line:?}");
    }
}

fn assert_reflector_counted(summary: &str) {
    // 4 full requests + 1 base + 1 malformed
    assert_eq!(count(summary, "Packets reflected"), 6, "{summary}");
    // type 200 in each of the 4 full requests
    let tlvs = stamp_tests::field(summary, "TLVs flagged").unwrap();
    assert!(
        tlvs.starts_with("unrecognized 4 malformed 1 integrity 0"),
        "{summary}"
    );
}

#[test]
fn scapy_stamp_requests_with_tlvs_against_our_reflector_ipv4() {
    let (stdout, summary) = run_against("127.0.0.1");
    assert_checks(&stdout);
    // the reply TOS could be read on this socket: DSCP1 was applied
    assert!(stdout.lines().any(|l| l == "PASS 0.cos.reply_dscp"));
    assert_reflector_counted(&summary);
}

#[test]
fn scapy_stamp_requests_with_tlvs_against_our_reflector_ipv6() {
    let (stdout, summary) = run_against("::1");
    assert_checks(&stdout);
    assert!(stdout.lines().any(|l| l == "PASS 0.cos.reply_dscp"));
    assert_reflector_counted(&summary);
}
