//! Layering, key handling and validation, end to end through `load`.
//! Every test runs in a figment `Jail`: its own directory and environment.
// Jail's closures return figment's (large) error type.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use clap::Parser;
use figment::Jail;

use crate::*;

const KEY_HEX: &str = "00112233445566778899aabbccddeeff";

fn cli(args: &[&str]) -> Cli {
    let mut argv = vec!["stamp-suite"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).expect("flags parse")
}

/// A sender needs a remote; most tests are not about that.
fn sender(args: &[&str]) -> Cli {
    let mut argv = vec!["-r", "192.0.2.1"];
    argv.extend_from_slice(args);
    cli(&argv)
}

fn in_jail(f: impl FnOnce(&mut Jail) -> Result<(), figment::Error>) {
    Jail::expect_with(|jail| {
        jail.clear_env();
        f(jail)
    });
}

fn err(cli: &Cli) -> String {
    load(cli, None).expect_err("load must fail").to_string()
}

#[cfg(unix)]
fn chmod(path: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn defaults_apply_when_nothing_is_given() {
    in_jail(|_| {
        let s = load(&sender(&[]), None).unwrap();
        assert_eq!(s.role, Role::Sender);
        assert_eq!(s.remote_port, 862);
        assert_eq!(s.local_port, None);
        assert_eq!(s.count, 1000);
        assert_eq!(s.send_delay, Duration::from_secs(1));
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.session_timeout, Duration::from_secs(300));
        assert_eq!(s.clock_format, stamp_wire::TimestampFormat::Ntp);
        assert_eq!(s.auth_mode, stamp_wire::AuthMode::Open);
        assert_eq!(s.tlv_mode, stamp_core::reflector::TlvMode::Echo);
        assert_eq!(s.max_sessions, 65_536);
        assert_eq!(s.metrics_addr, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(s.log_level, "info");
        assert_eq!(s.hwtstamp, HwTimestamping::Auto);
        assert_eq!(s.ssid, 0);
        assert_eq!(s.tlv_options, stamp_core::TlvOptions::new());
        Ok(())
    });
}

#[test]
fn file_value_survives_an_absent_flag() {
    in_jail(|jail| {
        jail.create_file("stamp.toml", "count = 7")?;
        let s = load(&sender(&["--config", "stamp.toml"]), None).unwrap();
        assert_eq!(s.count, 7);
        Ok(())
    });
}

#[test]
fn flag_beats_environment_beats_file() {
    in_jail(|jail| {
        jail.create_file("stamp.toml", "count = 7\nsend_delay = 250")?;
        jail.set_env("STAMP_COUNT", 8);
        let s = load(&sender(&["--config", "stamp.toml"]), None).unwrap();
        assert_eq!(s.count, 8, "environment over file");
        assert_eq!(
            s.send_delay,
            Duration::from_millis(250),
            "file over default"
        );
        let s = load(&sender(&["--config", "stamp.toml", "-c", "9"]), None).unwrap();
        assert_eq!(s.count, 9, "flag over environment");
        Ok(())
    });
}

#[test]
fn environment_switches_and_fractions() {
    in_jail(|jail| {
        jail.set_env("STAMP_METRICS", 1);
        jail.set_env("STAMP_SEND_DELAY", "0.5");
        jail.set_env("STAMP_REMOTE_ADDR", "192.0.2.7:9000, [::1]");
        jail.set_env("STAMP_UNRELATED_THING", "whatever");
        let s = load(&cli(&[]), None).unwrap();
        assert!(s.metrics);
        assert_eq!(s.send_delay, Duration::from_micros(500));
        let shown: Vec<String> = s.remotes.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["192.0.2.7:9000", "::1"]);
        Ok(())
    });
}

#[test]
fn invalid_environment_value_names_the_variable() {
    in_jail(|jail| {
        jail.set_env("STAMP_COUNT", "abc");
        let msg = err(&sender(&[]));
        assert!(
            msg.starts_with(r#"invalid value "abc" for count (from STAMP_COUNT)"#),
            "{msg}"
        );
        Ok(())
    });
}

#[test]
fn invalid_file_value_names_the_file() {
    in_jail(|jail| {
        jail.create_file("stamp.toml", "clock_source = \"GPS\"")?;
        let msg = err(&sender(&["--config", "stamp.toml"]));
        assert!(
            msg.contains("clock_source") && msg.contains("stamp.toml") && msg.contains("GPS"),
            "{msg}"
        );
        Ok(())
    });
}

#[test]
fn out_of_range_flag_names_the_flag() {
    in_jail(|_| {
        let msg = err(&sender(&["--dscp", "64"]));
        assert_eq!(
            msg,
            "invalid value 64 for dscp (from --dscp): must be 0..=63"
        );
        let msg = err(&sender(&["--ecn", "4"]));
        assert!(msg.contains("for ecn (from --ecn)"), "{msg}");
        Ok(())
    });
}

#[test]
fn ssid_out_of_range_in_file_is_refused() {
    in_jail(|jail| {
        jail.create_file("stamp.toml", "ssid = 70000")?;
        let msg = err(&sender(&["--config", "stamp.toml"]));
        assert!(
            msg.contains("ssid") && msg.contains("70000") && msg.contains("stamp.toml"),
            "{msg}"
        );
        Ok(())
    });
}

#[test]
fn unknown_file_key_is_refused_with_its_name_and_file() {
    in_jail(|jail| {
        jail.create_file("x.toml", "count = 3\nfoo = 1")?;
        let msg = err(&sender(&["--config", "x.toml"]));
        assert_eq!(msg, r#"unknown key "foo" in x.toml"#);
        Ok(())
    });
}

#[test]
fn missing_config_file_is_an_error_naming_it() {
    in_jail(|_| {
        let msg = err(&sender(&["--config", "nowhere.toml"]));
        assert!(
            msg.starts_with("cannot read config file nowhere.toml"),
            "{msg}"
        );
        Ok(())
    });
}

#[test]
fn broken_toml_is_one_line() {
    in_jail(|jail| {
        jail.create_file("bad.toml", "count = = 3")?;
        let msg = err(&sender(&["--config", "bad.toml"]));
        assert!(msg.contains("bad.toml") && !msg.contains('\n'), "{msg}");
        Ok(())
    });
}

#[test]
fn hmac_key_in_file_is_refused() {
    in_jail(|jail| {
        jail.create_file("stamp.toml", &format!("hmac_key = \"{KEY_HEX}\""))?;
        let msg = err(&sender(&["--config", "stamp.toml"]));
        assert!(msg.starts_with("hmac_key must not be stored in the config file; use hmac_key_file or STAMP_HMAC_KEY"), "{msg}");
        Ok(())
    });
}

#[cfg(unix)]
#[test]
fn env_key_with_key_file_is_refused() {
    in_jail(|jail| {
        jail.create_file("k.key", KEY_HEX)?;
        chmod("k.key", 0o600);
        jail.create_file("stamp.toml", "hmac_key_file = \"k.key\"")?;
        jail.set_env("STAMP_HMAC_KEY", KEY_HEX);
        let msg = err(&sender(&["--config", "stamp.toml"]));
        assert!(
            msg.contains("STAMP_HMAC_KEY") && msg.contains("hmac_key_file"),
            "{msg}"
        );
        // The same with the file named by a flag.
        let msg = err(&sender(&["--hmac-key-file", "k.key"]));
        assert!(
            msg.contains("STAMP_HMAC_KEY") && msg.contains("--hmac-key-file"),
            "{msg}"
        );
        Ok(())
    });
}

#[test]
fn short_key_is_refused() {
    in_jail(|jail| {
        let msg = err(&sender(&["--hmac-key", "00112233"]));
        assert_eq!(
            msg,
            "HMAC key from --hmac-key is 4 octets; at least 16 are required"
        );
        jail.set_env("STAMP_HMAC_KEY", "0011");
        let msg = err(&sender(&[]));
        assert!(msg.contains("STAMP_HMAC_KEY is 2 octets"), "{msg}");
        Ok(())
    });
}

#[test]
fn bad_hex_key_is_refused_without_echoing_it() {
    in_jail(|_| {
        let msg = err(&sender(&["--hmac-key", "zz112233445566778899aabbccddeeff"]));
        assert!(
            msg.contains("hmac_key (from --hmac-key)") && !msg.contains("zz11"),
            "{msg}"
        );
        Ok(())
    });
}

#[test]
fn key_flag_wins_over_env_key() {
    in_jail(|jail| {
        jail.set_env("STAMP_HMAC_KEY", "ff".repeat(16));
        let s = load(&sender(&["--hmac-key", KEY_HEX]), None).unwrap();
        assert_eq!(
            s.hmac_key.as_deref(),
            Some(&hex::decode(KEY_HEX).unwrap()[..])
        );
        let s = load(&sender(&[]), None).unwrap();
        assert_eq!(s.hmac_key, Some(vec![0xff; 16]));
        Ok(())
    });
}

#[test]
fn digits_only_env_key_stays_hex() {
    in_jail(|jail| {
        jail.set_env("STAMP_HMAC_KEY", "0123".repeat(8));
        let s = load(&sender(&["-A", "A"]), None).unwrap();
        assert_eq!(s.hmac_key, Some([0x01, 0x23].repeat(8)));
        Ok(())
    });
}

#[cfg(unix)]
#[test]
fn key_file_readable_by_others_is_refused_and_0600_accepted() {
    in_jail(|jail| {
        jail.create_file("k.key", &format!("{KEY_HEX}\n"))?;
        chmod("k.key", 0o644);
        let msg = err(&sender(&["--hmac-key-file", "k.key"]));
        assert_eq!(
            msg,
            "key file k.key is accessible by group or others (mode 644); run chmod 600 on it"
        );
        chmod("k.key", 0o600);
        let s = load(&sender(&["--hmac-key-file", "k.key", "-A", "A"]), None).unwrap();
        assert_eq!(s.hmac_key, Some(hex::decode(KEY_HEX).unwrap()));
        assert_eq!(s.auth_mode, stamp_wire::AuthMode::Authenticated);
        Ok(())
    });
}

#[cfg(unix)]
#[test]
fn binary_key_file_is_taken_as_raw_bytes() {
    in_jail(|jail| {
        let raw: Vec<u8> = (0xe0..0xf4).collect();
        jail.create_binary("raw.key", &raw)?;
        chmod("raw.key", 0o400);
        jail.create_file("stamp.toml", "hmac_key_file = \"raw.key\"")?;
        let s = load(&sender(&["--config", "stamp.toml"]), None).unwrap();
        assert_eq!(s.hmac_key, Some(raw));
        Ok(())
    });
}

#[cfg(unix)]
#[test]
fn key_file_in_config_is_relative_to_the_config_file() {
    in_jail(|jail| {
        jail.create_dir("etc")?;
        jail.create_file("etc/k.key", KEY_HEX)?;
        chmod("etc/k.key", 0o600);
        jail.create_file(
            "etc/stamp.toml",
            "hmac_key_file = \"k.key\"\nauth_mode = \"A\"",
        )?;
        let s = load(&sender(&["--config", "etc/stamp.toml"]), None).unwrap();
        assert_eq!(s.hmac_key, Some(hex::decode(KEY_HEX).unwrap()));
        Ok(())
    });
}

#[test]
fn authenticated_mode_without_key_is_refused() {
    in_jail(|_| {
        let msg = err(&sender(&["-A", "A"]));
        assert!(msg.starts_with("authenticated mode"), "{msg}");
        let msg = err(&sender(&["--auth-mode", "authenticated"]));
        assert!(msg.starts_with("authenticated mode"), "{msg}");
        Ok(())
    });
}

#[test]
fn sender_without_remote_is_refused() {
    in_jail(|_| {
        assert!(err(&cli(&[])).starts_with("no --remote-addr given"));
        // Listing TLVs needs no peer.
        assert!(load(&cli(&["--list-tlvs"]), None).unwrap().list_tlvs);
        Ok(())
    });
}

#[test]
fn reflector_role_from_flag_file_or_binary() {
    in_jail(|jail| {
        let s = load(&cli(&["-i"]), None).unwrap();
        assert_eq!(s.role, Role::Reflector);
        assert_eq!(s.local_port, Some(862));
        let s = load(&cli(&[]), Some(Role::Reflector)).unwrap();
        assert_eq!(s.role, Role::Reflector);
        jail.create_file("r.toml", "is_reflector = true\nlocal_port = 4862")?;
        let s = load(&cli(&["--config", "r.toml"]), None).unwrap();
        assert_eq!((s.role, s.local_port), (Role::Reflector, Some(4862)));
        // stamp-sender ignores the file's choice of role, refuses the flag.
        assert_eq!(
            load(&sender(&["--config", "r.toml"]), Some(Role::Sender))
                .unwrap()
                .role,
            Role::Sender
        );
        assert!(load(&sender(&["-i"]), Some(Role::Sender)).is_err());
        Ok(())
    });
}

#[test]
fn remotes_from_flags_replace_the_file_list() {
    in_jail(|jail| {
        jail.create_file(
            "stamp.toml",
            "remote_addr = [\"192.0.2.1\", \"[2001:db8::2]:9000\"]\nremote_port = 4000",
        )?;
        let s = load(&cli(&["--config", "stamp.toml"]), None).unwrap();
        let shown: Vec<String> = s.remotes.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["192.0.2.1", "[2001:db8::2]:9000"]);
        assert_eq!(s.remote_port, 4000);
        let s = load(
            &cli(&[
                "--config",
                "stamp.toml",
                "-r",
                "host.example:1",
                "-r",
                "10.0.0.1",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            s.remotes,
            [
                parse_remote("host.example:1").unwrap(),
                parse_remote("10.0.0.1").unwrap()
            ]
        );
        Ok(())
    });
}

#[test]
fn bad_remote_in_file_is_refused() {
    in_jail(|jail| {
        jail.create_file("stamp.toml", "remote_addr = \"a:b:c\"")?;
        let msg = err(&cli(&["--config", "stamp.toml"]));
        assert!(
            msg.starts_with(r#"invalid value "a:b:c" for remote_addr (from stamp.toml)"#),
            "{msg}"
        );
        Ok(())
    });
}

#[test]
fn zero_send_delay_needs_count_one() {
    in_jail(|_| {
        assert!(err(&sender(&["-d", "0"])).contains("send_delay (from --send-delay)"));
        let s = load(&sender(&["-d", "0", "-c", "1"]), None).unwrap();
        assert_eq!(s.send_delay, Duration::ZERO);
        Ok(())
    });
}

#[test]
fn sender_tlv_flags_become_plugin_options() {
    in_jail(|_| {
        let s = load(
            &sender(&[
                "--padding",
                "64",
                "--location",
                "--cos",
                "--dscp",
                "46",
                "--ecn",
                "1",
                "--return-sr-mpls-labels",
                "100,200",
                "--return-srv6-sids",
                "2001:db8::1",
                "--ber-pattern",
                "ff00",
                "--tlv-opt",
                "vendor-x=1",
                "--tlv-code",
                "ber-pattern=250",
                "--reflected-control-max-count",
                "4",
            ]),
            None,
        )
        .unwrap();
        let o = &s.tlv_options;
        assert_eq!(o.get("padding"), Some("64"));
        assert_eq!(o.get("location"), Some("true"));
        assert_eq!(o.get("cos"), Some("true"));
        assert_eq!(o.get("dscp"), Some("46"));
        assert_eq!(o.get("ecn"), Some("1"));
        assert_eq!(o.get("return-sr-mpls-labels"), Some("100,200"));
        assert_eq!(o.get("return-srv6-sids"), Some("2001:db8::1"));
        assert_eq!(o.get("ber-pattern"), Some("ff00"));
        assert_eq!(o.get("vendor-x"), Some("1"));
        assert_eq!(o.get("timestamp-info"), None);
        assert_eq!((s.dscp, s.ecn), (Some(46), Some(1)));
        assert_eq!(s.tlv_codes.get("ber-pattern"), Some(&250));
        assert_eq!(
            s.plugin_settings.get("reflected-control-max-count"),
            Some("4")
        );
        assert_eq!(s.plugin_settings.get("vendor-x"), Some("1"));
        Ok(())
    });
}

#[test]
fn tables_in_file_merge_with_flags() {
    in_jail(|jail| {
        jail.create_file(
            "stamp.toml",
            "[tlv_code]\nber-pattern = 240\nreflected-fixed-hdr = 247\n[tlv_opt]\nvendor-x = 5\n",
        )?;
        let s = load(
            &sender(&["--config", "stamp.toml", "--tlv-code", "ber-pattern=250"]),
            None,
        )
        .unwrap();
        assert_eq!(s.tlv_codes.get("ber-pattern"), Some(&250));
        assert_eq!(s.tlv_codes.get("reflected-fixed-hdr"), Some(&247));
        assert_eq!(s.tlv_options.get("vendor-x"), Some("5"));
        Ok(())
    });
}

#[test]
fn debug_output_hides_the_key() {
    in_jail(|_| {
        let s = load(&sender(&["--hmac-key", KEY_HEX]), None).unwrap();
        let shown = format!("{s:?}");
        assert!(
            shown.contains("<redacted>") && !shown.contains("221"),
            "{shown}"
        );
        Ok(())
    });
}

#[cfg(unix)]
#[test]
fn key_dir_gives_per_ssid_keys_and_a_default() {
    in_jail(|jail| {
        jail.create_dir("keys")?;
        let k7 = "77".repeat(16);
        let kd = "dd".repeat(16);
        jail.create_file("keys/7.key", &k7)?;
        jail.create_file("keys/default.key", &kd)?;
        jail.create_file("keys/README", "not a key")?;
        chmod("keys/7.key", 0o600);
        chmod("keys/default.key", 0o400);
        // Reflector: every per-SSID key, default.key as the fallback.
        let s = load(&cli(&["-i", "-A", "A", "--hmac-key-dir", "keys"]), None).unwrap();
        assert_eq!(s.ssid_keys.len(), 1);
        assert_eq!(s.ssid_keys[&7], hex::decode(&k7).unwrap());
        assert_eq!(s.hmac_key, Some(hex::decode(&kd).unwrap()));
        assert!(!format!("{s:?}").contains("7777"));
        // Sender: the key of its own SSID, else default.key.
        let s = load(
            &sender(&["-A", "A", "--hmac-key-dir", "keys", "--ssid", "7"]),
            None,
        )
        .unwrap();
        assert_eq!(s.hmac_key, Some(hex::decode(&k7).unwrap()));
        let s = load(
            &sender(&["-A", "A", "--hmac-key-dir", "keys", "--ssid", "8"]),
            None,
        )
        .unwrap();
        assert_eq!(s.hmac_key, Some(hex::decode(&kd).unwrap()));
        // default.key beside another key source is ambiguous.
        let msg = err(&cli(&[
            "-i",
            "--hmac-key-dir",
            "keys",
            "--hmac-key",
            KEY_HEX,
        ]));
        assert!(msg.starts_with("two HMAC keys given"), "{msg}");
        // A key in the directory that others can read is refused, by name.
        chmod("keys/7.key", 0o640);
        let msg = err(&cli(&["-i", "--hmac-key-dir", "keys"]));
        assert_eq!(
            msg,
            "key file keys/7.key is accessible by group or others (mode 640); run chmod 600 on it"
        );
        chmod("keys/7.key", 0o600);
        // A .key file that names no SSID is refused, by name.
        jail.create_file("keys/x1.key", &k7)?;
        chmod("keys/x1.key", 0o600);
        let msg = err(&cli(&["-i", "--hmac-key-dir", "keys"]));
        assert!(msg.starts_with("cannot read keys/x1.key"), "{msg}");
        assert!(msg.contains("expected <ssid>.key"), "{msg}");
        assert_eq!(msg.lines().count(), 1);
        Ok(())
    });
}

#[cfg(unix)]
#[test]
fn empty_key_dir_is_refused_and_without_default_needs_a_key_for_the_sender() {
    in_jail(|jail| {
        jail.create_dir("none")?;
        let msg = err(&cli(&["-i", "--hmac-key-dir", "none"]));
        assert!(msg.contains("holds no <ssid>.key nor default.key"), "{msg}");
        jail.create_dir("only5")?;
        jail.create_file("only5/5.key", KEY_HEX)?;
        chmod("only5/5.key", 0o600);
        // A reflector serves SSID 5 in authenticated mode; a sender with
        // another SSID has no key.
        load(&cli(&["-i", "-A", "A", "--hmac-key-dir", "only5"]), None).unwrap();
        let msg = err(&sender(&[
            "-A",
            "A",
            "--hmac-key-dir",
            "only5",
            "--ssid",
            "6",
        ]));
        assert!(msg.starts_with("authenticated mode"), "{msg}");
        Ok(())
    });
}

#[test]
fn global_cap_and_user_are_read_from_flags_and_file() {
    in_jail(|jail| {
        jail.create_file("stamp.toml", "global_max_pps = 5000\nuser = \"nobody\"\n")?;
        let s = load(&cli(&["-i", "--config", "stamp.toml"]), None).unwrap();
        assert_eq!(s.global_max_pps, Some(5000));
        assert_eq!(s.user.as_deref(), Some("nobody"));
        let s = load(
            &cli(&["-i", "--global-max-pps", "7", "--user", "daemon"]),
            None,
        )
        .unwrap();
        assert_eq!(s.global_max_pps, Some(7));
        assert_eq!(s.user.as_deref(), Some("daemon"));
        let msg = err(&cli(&["-i", "--global-max-pps", "0"]));
        assert!(
            msg.contains("global_max_pps") && msg.contains("--global-max-pps"),
            "{msg}"
        );
        let msg = err(&cli(&["-i", "--user", " "]));
        assert!(msg.contains("for user"), "{msg}");
        Ok(())
    });
}
