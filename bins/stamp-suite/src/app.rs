//! Entry point shared by the three binaries.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;
use stamp_config::{Cli, LogFormat, OutputFormat, Role, Settings};
use stamp_core::registry::Registry;

/// Run a binary. `role` is fixed for `stamp-reflector` / `stamp-sender`,
/// `None` for `stamp-suite` (where `-i` decides).
pub fn main_for(role: Option<Role>) -> ExitCode {
    stamp_plugins::link();
    let prog = match role {
        Some(Role::Reflector) => "stamp-reflector",
        Some(Role::Sender) => "stamp-sender",
        None => "stamp-suite",
    };
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line that names the flag, not clap's usage screen.
            let text = e.to_string();
            let line = text
                .lines()
                .next()
                .unwrap_or("invalid command line")
                .trim_start_matches("error: ");
            eprintln!("{prog}: {line} (see --help)");
            return ExitCode::from(2);
        }
    };
    let settings = match stamp_config::load(&cli, role) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{prog}: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings);

    if settings.list_tlvs {
        return list_tlvs(&settings);
    }
    if settings.role == Role::Sender && settings.user.is_some() {
        tracing::warn!("--user applies to the reflector only; the sender ignores it");
    }
    let mut settings = settings;
    if settings.role == Role::Reflector && settings.plugin_settings.get("local-addresses").is_none()
    {
        // RFC 9503 Destination Node Address: the plugin checks requests
        // against every address of this host, not only the one they hit.
        if let Some(addrs) = local_addresses() {
            settings.plugin_settings.set("local-addresses", addrs);
        }
    }
    let registry = match Registry::from_linked(&settings.plugin_settings, &settings.tlv_codes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{prog}: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{prog}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match settings.role {
        Role::Reflector => rt.block_on(crate::reflector_run::run(&settings, registry)),
        Role::Sender => rt.block_on(crate::sender_run::run(&settings, registry)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{prog}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(s: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("STAMP_LOG").unwrap_or_else(|_| EnvFilter::new(&s.log_level));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // stderr, hiding the sender's progress bar while a line is written
        .with_writer(crate::console::log_writer)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match s.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn list_tlvs(s: &Settings) -> ExitCode {
    let empty = BTreeMap::new();
    let codes = if s.tlv_codes.is_empty() {
        &empty
    } else {
        &s.tlv_codes
    };
    let registry = match Registry::from_linked(&s.plugin_settings, codes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if s.output_format == OutputFormat::Json {
        let mut rows: Vec<serde_json::Value> = vec![serde_json::json!({
            "code": 8, "key": "hmac", "name": "HMAC", "spec": "RFC 8972 §4.8", "crate": "stamp-core"
        })];
        rows.extend(registry.entries().iter().map(|e| {
            serde_json::json!({"code": e.code, "key": e.key, "name": e.name, "spec": e.spec, "crate": e.crate_name})
        }));
        println!("{}", serde_json::Value::Array(rows));
        return ExitCode::SUCCESS;
    }
    println!(
        "{:>4}  {:<24} {:<36} {:<36} CRATE",
        "TYPE", "KEY", "NAME", "SPECIFICATION"
    );
    let mut rows: Vec<(u8, &str, &str, &str, &str)> = registry
        .entries()
        .iter()
        .map(|e| (e.code, e.key, e.name, e.spec, e.crate_name))
        .collect();
    rows.push((8, "hmac", "HMAC", "RFC 8972 §4.8", "stamp-core"));
    rows.sort_by_key(|r| r.0);
    for (code, key, name, spec, krate) in rows {
        println!("{code:>4}  {key:<24} {name:<36} {spec:<36} {krate}");
    }
    ExitCode::SUCCESS
}

/// Every address configured on this host's interfaces, comma-separated.
fn local_addresses() -> Option<String> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    let mut out: Vec<String> = Vec::new();
    for a in addrs {
        let Some(sa) = a.address else { continue };
        let ip = if let Some(v4) = sa.as_sockaddr_in() {
            std::net::IpAddr::V4(v4.ip())
        } else if let Some(v6) = sa.as_sockaddr_in6() {
            std::net::IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        let s = ip.to_string();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Some(out.join(","))
}
