//! Privileges and key files, through the real binaries (issue 7):
//!
//! * `--user nobody` started as root: the reflector binds port 862 (inside
//!   its own network namespace, so no other test or service is in the
//!   way), every thread of the process then runs as nobody with no
//!   capability left, and it still answers.
//! * Only CAP_NET_BIND_SERVICE (`setpriv` as nobody with that one ambient
//!   capability): binds 862 and answers; without it the bind fails (exit 1).
//! * Key files readable or writable by others are refused, naming the file;
//!   0600 works; `--hmac-key-dir` picks the key by SSID.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stamp_tests::netns::{self, Netns};
use stamp_tests::{bin, count, run, run_command, Reflector};

const K7: &str = "77777777777777777777777777777777";
const KD: &str = "dddddddddddddddddddddddddddddddd";

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stamp-priv-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `Key:` line of /proc/PID/status (or of one thread's status file).
fn status_line(path: &str, key: &str) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {path}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn nobody() -> (u32, u32) {
    let u = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("user nobody");
    (u.uid.as_raw(), u.gid.as_raw())
}

/// Every thread of `pid` runs as `uid`/`gid` (real, effective, saved, fs),
/// in exactly the supplementary `groups`, with effective capabilities
/// `cap_eff`.
fn assert_identity(pid: u32, uid: u32, gid: u32, groups: &str, cap_eff: u64) {
    let tasks: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().path().join("status").display().to_string())
        .collect();
    assert!(!tasks.is_empty());
    let want_uid = vec![uid.to_string(); 4].join(" ");
    let want_gid = vec![gid.to_string(); 4].join(" ");
    for path in std::iter::once(format!("/proc/{pid}/status")).chain(tasks) {
        assert_eq!(status_line(&path, "Uid:"), want_uid, "{path}");
        assert_eq!(status_line(&path, "Gid:"), want_gid, "{path}");
        assert_eq!(status_line(&path, "Groups:"), groups, "{path}");
        let eff = u64::from_str_radix(&status_line(&path, "CapEff:"), 16).unwrap();
        assert_eq!(eff, cap_eff, "{path}: CapEff");
        let prm = u64::from_str_radix(&status_line(&path, "CapPrm:"), 16).unwrap();
        assert_eq!(prm, cap_eff, "{path}: CapPrm");
    }
}

/// A sender inside `ns` against `127.0.0.1:862`: packets received.
fn send_in(ns: &Netns, n: u32) -> u64 {
    let mut c = ns.cmd(bin("stamp-suite"));
    c.args([
        "-r",
        "127.0.0.1",
        "-p",
        "862",
        "-c",
        &n.to_string(),
        "-d",
        "10",
        "-L",
        "2",
    ]);
    let o = run_command(&mut c, Duration::from_secs(30));
    count(&text(&o.stdout), "Packets received")
}

#[test]
fn root_binds_port_862_then_runs_as_nobody_and_still_answers() {
    if !netns::require(&[]) {
        return;
    }
    let ns = Netns::new("user");
    let r = Reflector::start_in(&ns, &["-o", "862", "--workers", "2", "--user", "nobody"]);
    assert_eq!(r.addr.port(), 862);
    let (uid, gid) = nobody();
    assert_identity(r.pid(), uid, gid, &gid.to_string(), 0);
    // No way back: the process cannot become root again (checked by the
    // binary itself before it served; here, by the kernel's view of it).
    assert_eq!(send_in(&ns, 5), 5);
    let (status, out, _) = r.interrupt();
    assert!(status.success(), "{out}");
    assert_eq!(count(&out, "Packets reflected"), 5);
}

#[test]
fn only_cap_net_bind_service_is_enough_for_port_862() {
    if !netns::require(&["setpriv"]) {
        return;
    }
    let ns = Netns::new("cap");
    let setpriv = |caps: bool| {
        let mut c = ns.cmd("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]);
        if caps {
            c.args([
                "--inh-caps=+net_bind_service",
                "--ambient-caps=+net_bind_service",
                "--bounding-set=-all,+net_bind_service",
            ]);
        } else {
            c.args(["--inh-caps=-all", "--bounding-set=-all"]);
        }
        c.arg(bin("stamp-suite"));
        c
    };
    // With the one capability: binds 862 as nobody and answers.
    let r = Reflector::start_command(setpriv(true), &["-i", "-o", "862", "--workers", "1"], &[]);
    let (uid, gid) = nobody();
    const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
    assert_identity(r.pid(), uid, gid, "", CAP_NET_BIND_SERVICE);
    assert_eq!(send_in(&ns, 3), 3);
    // Not root: --user cannot switch to another user (checked after the
    // bind, before any packet: exit 1, one line naming --user).
    let mut c = setpriv(true);
    c.args(["-i", "-o", "8620", "--user", "daemon"]);
    let o = run_command(&mut c, Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let e = text(&o.stderr);
    let last = e.trim().lines().last().unwrap_or_default().to_string();
    assert!(
        last.contains("--user daemon: only root can switch users"),
        "{e}"
    );
    drop(r);
    // Without it: the bind is refused, exit 1.
    let mut c = setpriv(false);
    c.args(["-i", "-o", "862"]);
    let o = run_command(&mut c, Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(text(&o.stderr).contains("cannot listen"), "{o:?}");
}

#[test]
fn unknown_user_is_refused_before_serving() {
    let o = run(
        "stamp-suite",
        &[
            "-i",
            "-o",
            "0",
            "-S",
            "127.0.0.1",
            "--user",
            "no-such-user-x9",
        ],
        &[],
        Duration::from_secs(20),
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let e = text(&o.stderr);
    assert_eq!(
        e.trim().lines().last().unwrap(),
        "stamp-suite: --user no-such-user-x9: no such user"
    );
    assert!(!e.contains("listening on"), "served before dropping: {e}");
}

#[test]
fn key_file_open_to_others_is_refused_naming_it_and_0600_works() {
    let dir = temp_dir("keyfile");
    let key = dir.join("k.key");
    for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
        write(&key, K7, mode);
        let o = run(
            "stamp-suite",
            &[
                "-i",
                "-o",
                "0",
                "-A",
                "A",
                "--hmac-key-file",
                key.to_str().unwrap(),
            ],
            &[],
            Duration::from_secs(20),
        );
        assert_eq!(o.status.code(), Some(2), "mode {mode:o}: {o:?}");
        let e = text(&o.stderr);
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        assert!(
            e.contains(&format!(
                "key file {} is accessible by group or others",
                key.display()
            )),
            "{e}"
        );
        assert!(e.contains(&format!("(mode {mode:03o})")), "{e}");
    }
    write(&key, K7, 0o600);
    let k = key.to_str().unwrap();
    let r = Reflector::start(&["-S", "127.0.0.1", "-A", "A", "--hmac-key-file", k]);
    let o = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &r.port(),
            "-c",
            "4",
            "-d",
            "5",
            "-A",
            "A",
            "--hmac-key-file",
            k,
        ],
        &[],
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(count(&text(&o.stdout), "Packets received"), 4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn key_dir_picks_the_key_of_each_ssid() {
    let dir = temp_dir("keydir");
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    write(&keys.join("7.key"), K7, 0o600);
    write(&keys.join("default.key"), KD, 0o600);
    let k7 = dir.join("k7");
    let kd = dir.join("kd");
    write(&k7, K7, 0o600);
    write(&kd, KD, 0o600);
    let r = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "-A",
        "A",
        "--hmac-key-dir",
        keys.to_str().unwrap(),
    ]);
    let port = r.port();
    let send = |ssid: &str, key: &Path| {
        let o = run(
            "stamp-suite",
            &[
                "-r",
                "127.0.0.1",
                "-p",
                &port,
                "-c",
                "3",
                "-d",
                "5",
                "-L",
                "1",
                "-A",
                "A",
                "--ssid",
                ssid,
                "--hmac-key-file",
                key.to_str().unwrap(),
            ],
            &[],
            Duration::from_secs(30),
        );
        count(&text(&o.stdout), "Packets received")
    };
    // SSID 7 has its own key; the default key does not open it.
    assert_eq!(send("7", &k7), 3);
    assert_eq!(send("7", &kd), 0);
    // Any other SSID uses default.key, and not SSID 7's key.
    assert_eq!(send("9", &kd), 3);
    assert_eq!(send("9", &k7), 0);
    // A sender reads the same directory and picks its own SSID's key.
    let o = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &port,
            "-c",
            "2",
            "-d",
            "5",
            "-A",
            "A",
            "--ssid",
            "7",
            "--hmac-key-dir",
            keys.to_str().unwrap(),
        ],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(count(&text(&o.stdout), "Packets received"), 2, "{o:?}");
    let (status, out, _) = r.interrupt();
    assert!(status.success());
    assert_eq!(count(&out, "Packets reflected"), 8, "{out}");
    let dropped = stamp_tests::field(&out, "Packets dropped").unwrap();
    assert_eq!(dropped, "6 (auth_failed 6)", "{out}");
    // A key in the directory that others can read stops the reflector.
    write(&keys.join("7.key"), K7, 0o644);
    let o = run(
        "stamp-suite",
        &[
            "-i",
            "-o",
            "0",
            "-A",
            "A",
            "--hmac-key-dir",
            keys.to_str().unwrap(),
        ],
        &[],
        Duration::from_secs(20),
    );
    assert_eq!(o.status.code(), Some(2));
    let e = text(&o.stderr);
    assert!(
        e.contains(&format!(
            "key file {} is accessible",
            keys.join("7.key").display()
        )),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
