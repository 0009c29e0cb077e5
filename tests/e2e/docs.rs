//! The documentation cannot drift from the code: the generated man pages,
//! completions and flag reference are current, `doc/usage.md` names every
//! flag `--help` shows, and the systemd unit keeps its hardening.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use stamp_tests::{bin, run};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The long flags (`--name`) in a text, without duplicates, in order.
fn long_flags(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("--") {
        let after = &rest[i + 2..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .collect();
        let preceded_by_word = rest[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-');
        if name.starts_with(|c: char| c.is_ascii_lowercase())
            && !preceded_by_word
            && !out.contains(&name)
        {
            out.push(name.clone());
        }
        rest = &after[name.len()..];
    }
    out
}

#[test]
fn generated_docs_are_current() {
    let out = Command::new(bin("stamp-docgen"))
        .arg("--check")
        .arg("--root")
        .arg(root())
        .output()
        .expect("run stamp-docgen");
    assert!(
        out.status.success(),
        "generated docs are stale: run `cargo run -p stamp-docgen` and commit the result\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn usage_md_names_every_long_flag_of_help() {
    let help = run("stamp-suite", &["--help"], &[], Duration::from_secs(10));
    assert!(help.status.success(), "{help:?}");
    let help = String::from_utf8_lossy(&help.stdout);
    let flags = long_flags(&help);
    assert!(flags.len() > 60, "too few flags found in --help: {flags:?}");
    let usage = read("doc/usage.md");
    let documented = long_flags(&usage);
    let missing: Vec<&String> = flags.iter().filter(|f| !documented.contains(f)).collect();
    assert!(
        missing.is_empty(),
        "doc/usage.md does not mention {missing:?}"
    );
}

#[test]
fn unit_file_has_every_hardening_directive() {
    let unit = read("packaging/stamp-reflector.service");
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for directive in [
        "DynamicUser=no",
        "User=stamp",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "RestrictNamespaces=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        // Without it the adjtimex(2) call of the clock kills the service.
        "SystemCallErrorNumber=EPERM",
        "UMask=0077",
        "Restart=on-failure",
        "KillSignal=SIGINT",
        "ExecStart=/usr/bin/stamp-reflector --config /etc/stamp/stamp.toml",
    ] {
        assert!(
            lines.contains(&directive),
            "packaging/stamp-reflector.service lacks `{directive}`"
        );
    }
    // Nothing may widen the capability set again.
    for l in &lines {
        if l.starts_with("AmbientCapabilities=") || l.starts_with("CapabilityBoundingSet=") {
            assert!(l.ends_with("=CAP_NET_BIND_SERVICE"), "{l}");
        }
    }
}

#[test]
fn packaged_config_is_accepted_by_the_reflector() {
    // The default /etc/stamp/stamp.toml loads: no key refused, no bad value.
    // --list-tlvs resolves the whole configuration, then exits.
    let out = run(
        "stamp-reflector",
        &[
            "--config",
            root().join("packaging/stamp.toml").to_str().unwrap(),
            "--list-tlvs",
        ],
        &[],
        Duration::from_secs(10),
    );
    assert!(
        out.status.success(),
        "packaging/stamp.toml is refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn long_flags_finds_flags_and_skips_words() {
    assert_eq!(
        long_flags("use --count <N>, --clock-synchronized=false; not a--b or ---"),
        ["count", "clock-synchronized"]
    );
}
