//! The config file, the environment and the flags, through the real
//! binaries: precedence defaults < file < STAMP_* < flags, one-line errors
//! that name the key and where it came from.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use stamp_tests::{count, run, Reflector};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stamp-tests-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &PathBuf, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn file_then_env_then_flag_decide_the_count() {
    let r = Reflector::start(&["-S", "127.0.0.1"]);
    let dir = temp_dir("precedence");
    let cfg = dir.join("sender.toml");
    write(
        &cfg,
        &format!(
            "remote_addr = [\"127.0.0.1\"]\nremote_port = {}\ncount = 3\nsend_delay = 5\n",
            r.port()
        ),
        0o644,
    );
    let c = cfg.to_str().unwrap();
    let limit = Duration::from_secs(30);
    // the file alone: 3 (the CLI default of 1000 must not override it)
    let o = run("stamp-suite", &["--config", c], &[], limit);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(count(&stdout(&o), "Packets sent"), 3);
    // the environment beats the file
    let o = run(
        "stamp-suite",
        &["--config", c],
        &[("STAMP_COUNT", "2")],
        limit,
    );
    assert_eq!(count(&stdout(&o), "Packets sent"), 2);
    // a flag beats both
    let o = run(
        "stamp-suite",
        &["--config", c, "-c", "4"],
        &[("STAMP_COUNT", "2")],
        limit,
    );
    assert_eq!(count(&stdout(&o), "Packets sent"), 4);
}

#[test]
fn unknown_key_in_file_is_refused_with_its_name() {
    let dir = temp_dir("unknown");
    let cfg = dir.join("bad.toml");
    write(&cfg, "count = 3\ncuont = 4\n", 0o644);
    let o = run(
        "stamp-suite",
        &["--config", cfg.to_str().unwrap(), "-r", "127.0.0.1"],
        &[],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("cuont") && e.contains("bad.toml"), "{e}");
}

#[test]
fn plaintext_key_in_file_is_refused() {
    let dir = temp_dir("plainkey");
    let cfg = dir.join("key.toml");
    write(
        &cfg,
        "hmac_key = \"00112233445566778899aabbccddeeff\"\n",
        0o600,
    );
    let o = run(
        "stamp-suite",
        &["-i", "--config", cfg.to_str().unwrap()],
        &[],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("hmac_key"), "{e}");
}

#[test]
fn env_key_together_with_key_file_is_refused() {
    let dir = temp_dir("envfile");
    let key = dir.join("k.hex");
    write(&key, "00112233445566778899aabbccddeeff\n", 0o600);
    let cfg = dir.join("c.toml");
    write(
        &cfg,
        &format!("hmac_key_file = \"{}\"\n", key.display()),
        0o644,
    );
    let o = run(
        "stamp-suite",
        &["-i", "--config", cfg.to_str().unwrap()],
        &[("STAMP_HMAC_KEY", "ffeeddccbbaa99887766554433221100")],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("STAMP_HMAC_KEY") && e.contains("hmac_key_file"),
        "{e}"
    );
}

#[test]
fn key_file_authenticates_and_loose_permissions_are_refused() {
    let dir = temp_dir("keyfile");
    let key = dir.join("stamp.key");
    write(&key, "000102030405060708090a0b0c0d0e0f\n", 0o600);
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
            "2",
            "-d",
            "5",
            "-A",
            "A",
            "--hmac-key-file",
            k,
        ],
        &[],
        Duration::from_secs(20),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(count(&stdout(&o), "Packets received"), 2);

    let loose = dir.join("loose.key");
    write(&loose, "000102030405060708090a0b0c0d0e0f\n", 0o644);
    let o = run(
        "stamp-suite",
        &["-i", "-A", "A", "--hmac-key-file", loose.to_str().unwrap()],
        &[],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("loose.key"), "{}", stderr(&o));
}

#[test]
fn json_logs_are_json_lines() {
    let o = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            "9",
            "-c",
            "1",
            "-L",
            "0.2",
            "--log-format",
            "json",
        ],
        &[("STAMP_LOG", "info")],
        Duration::from_secs(10),
    );
    let e = stderr(&o);
    let lines: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"));
        assert!(v.get("level").is_some() && v.get("fields").is_some(), "{l}");
    }
}

#[test]
fn stateful_authenticated_over_ipv6() {
    let key = "00112233445566778899aabbccddeeff";
    let r = Reflector::start(&[
        "-S",
        "::1",
        "-A",
        "A",
        "--hmac-key",
        key,
        "--stateful-reflector",
    ]);
    let o = run(
        "stamp-suite",
        &[
            "-r",
            "::1",
            "-p",
            &r.port(),
            "-c",
            "3",
            "-d",
            "5",
            "-A",
            "A",
            "--hmac-key",
            key,
            "-R",
            "--ssid",
            "5",
        ],
        &[],
        Duration::from_secs(20),
    );
    assert!(o.status.success(), "{o:?}");
    let t = stdout(&o);
    assert_eq!(count(&t, "Packets received"), 3);
    assert!(t.contains("seq=2 ") && t.contains("refl_seq=2 "), "{t}");
}
