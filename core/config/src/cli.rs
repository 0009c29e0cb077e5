//! The command line (CLI.md). Every field is an `Option`, an empty `Vec` or
//! a switch that is `false` when absent, so a flag that was not given never
//! hides the config file or the environment: defaults live in
//! [`crate::Defaults`] only.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser};
use stamp_core::provision::SessionSpec;

use crate::values::{
    parse_remote, AuthModeArg, ClockSource, Gso, HwTimestamping, LogFormat, OutputFormat,
    RemoteSpec, TlvModeArg, TransportKind, ZeroSsid,
};

const ENDPOINTS: &str = "Roles and endpoints";
const TIMING: &str = "Timing, clocks, authentication";
const REFLECTOR: &str = "Reflector";
const SENDER_TLVS: &str = "Sender TLVs";
const OUTPUT: &str = "Output and operations";

/// Flags shared by `stamp-suite`, `stamp-reflector` and `stamp-sender`.
///
/// Every flag has a config-file key, the snake_case of its long name
/// (`--send-delay` → `send_delay`), and an environment variable `STAMP_` +
/// the key in capitals (`STAMP_SEND_DELAY`). Precedence: defaults < file <
/// environment < flags.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "stamp-suite",
    version,
    about = "STAMP (RFC 8762 / RFC 8972) Session-Sender and Session-Reflector",
    after_help = "Every flag also has a config-file key (snake_case of the long name) and a STAMP_* environment variable.\nPrecedence: defaults < --config file < STAMP_* environment < flags."
)]
pub struct Cli {
    // ---- Roles and endpoints ----
    /// Run as Session-Reflector (else Session-Sender).
    #[arg(short = 'i', long, help_heading = ENDPOINTS)]
    pub is_reflector: bool,

    /// Reflector to send to: ADDR, HOST, ADDR:PORT or [IPv6]:PORT; repeat for several targets.
    #[arg(short = 'r', long, value_name = "ADDR[:PORT]", value_parser = parse_remote, value_delimiter = ',', action = ArgAction::Append, help_heading = ENDPOINTS)]
    pub remote_addr: Vec<RemoteSpec>,

    /// Reflector UDP port for addresses given without one [default: 862].
    #[arg(short = 'p', long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..), help_heading = ENDPOINTS)]
    pub remote_port: Option<u16>,

    /// Local bind address [default: 0.0.0.0, or :: when the remote is IPv6].
    #[arg(short = 'S', long, value_name = "ADDR", help_heading = ENDPOINTS)]
    pub local_addr: Option<IpAddr>,

    /// Local UDP port [default: 862 on a reflector; any free port on a sender].
    #[arg(short = 'o', long, value_name = "PORT", help_heading = ENDPOINTS)]
    pub local_port: Option<u16>,

    /// TOML config file (keys: snake_case of the long flag names).
    #[arg(long, value_name = "PATH", env = "STAMP_CONFIG", help_heading = ENDPOINTS)]
    pub config: Option<PathBuf>,

    // ---- Timing, clocks, authentication ----
    /// Packets to send; 0 = until interrupted [default: 1000].
    #[arg(short = 'c', long, value_name = "N", help_heading = TIMING)]
    pub count: Option<u64>,

    /// Interval between packets in milliseconds; fractions allowed [default: 1000].
    #[arg(short = 'd', long, value_name = "MS", help_heading = TIMING)]
    pub send_delay: Option<f64>,

    /// Seconds to wait before a packet counts as lost [default: 5].
    #[arg(short = 'L', long, value_name = "S", help_heading = TIMING)]
    pub timeout: Option<f64>,

    /// Timestamp format [default: NTP].
    #[arg(short = 'K', long, value_name = "NTP|PTP", ignore_case = true, help_heading = TIMING)]
    pub clock_source: Option<ClockSource>,

    /// Error Estimate override: Scale (0-63).
    #[arg(long, value_name = "N", help_heading = TIMING)]
    pub error_scale: Option<u8>,

    /// Error Estimate override: Multiplier (0-255).
    #[arg(long, value_name = "N", help_heading = TIMING)]
    pub error_multiplier: Option<u8>,

    /// Error Estimate override: S bit (clock synchronized); `--clock-synchronized=false` clears it.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new(), help_heading = TIMING)]
    pub clock_synchronized: Option<bool>,

    /// Authenticated (A) or open (O) mode [default: O].
    #[arg(short = 'A', long, value_name = "A|O", ignore_case = true, help_heading = TIMING)]
    pub auth_mode: Option<AuthModeArg>,

    /// HMAC key in hex, at least 16 octets (visible in `ps`: prefer --hmac-key-file or STAMP_HMAC_KEY).
    #[arg(long, value_name = "HEX", conflicts_with = "hmac_key_file", help_heading = TIMING)]
    pub hmac_key: Option<String>,

    /// File holding the HMAC key: hex text, or raw bytes if not hex; must not be readable by group/others.
    #[arg(long, value_name = "PATH", help_heading = TIMING)]
    pub hmac_key_file: Option<PathBuf>,

    /// Directory of per-SSID keys (`<ssid>.key`, `default.key` fallback).
    #[arg(long, value_name = "DIR", help_heading = TIMING)]
    pub hmac_key_dir: Option<PathBuf>,

    // ---- Reflector ----
    /// Keep per-session reflector counters (RFC 8762 §4.3.2).
    #[arg(long, help_heading = REFLECTOR)]
    pub stateful_reflector: bool,

    /// Idle seconds after which a stateful session is forgotten [default: 300].
    #[arg(long, value_name = "S", help_heading = REFLECTOR)]
    pub session_timeout: Option<f64>,

    /// Echo TLVs with RFC 8972 processing, or strip them keeping the length [default: echo].
    #[arg(long, value_name = "MODE", ignore_case = true, help_heading = REFLECTOR)]
    pub tlv_mode: Option<TlvModeArg>,

    /// Verify the HMAC TLV (RFC 8972 §4.8).
    #[arg(long, help_heading = REFLECTOR)]
    pub verify_tlv_hmac: bool,

    /// RFC 9534 reflector micro-session ID (member-link identifier).
    #[arg(long, value_name = "N", help_heading = REFLECTOR)]
    pub reflector_member_link_id: Option<u16>,

    /// Reflector transport: udp, or raw (whole IP packets; needs CAP_NET_RAW and the ttl-pnet feature) [default: udp].
    #[arg(long, value_name = "udp|raw", ignore_case = true, help_heading = REFLECTOR)]
    pub transport: Option<TransportKind>,

    /// Most requests per second answered per source (IPv4 address or IPv6 /64), token bucket.
    #[arg(long, value_name = "N", help_heading = REFLECTOR)]
    pub max_pps: Option<u64>,

    /// Burst allowed above --max-pps.
    #[arg(long, value_name = "N", help_heading = REFLECTOR)]
    pub reflector_rate_burst: Option<u64>,

    /// Most requests per second answered from all sources together (every worker), token bucket with one second of burst.
    #[arg(long, value_name = "N", help_heading = REFLECTOR)]
    pub global_max_pps: Option<u64>,

    /// Provisioned session (RFC 8972 §3): SSID[@ADDR[/LEN]][:PORT] ([IPV6]:PORT with a port); when any is given, requests matching none are dropped.
    #[arg(long, value_name = "SPEC", value_delimiter = ',', action = ArgAction::Append, value_parser = parse_session_spec, help_heading = REFLECTOR)]
    pub allow_session: Vec<SessionSpec>,

    /// Most stateful sessions kept at once; a new one evicts the least recently used [default: 65536].
    #[arg(long, value_name = "N", help_heading = REFLECTOR)]
    pub max_sessions: Option<usize>,

    /// Asymmetrical packets policy: most replies per request.
    #[arg(long, value_name = "N", help_heading = REFLECTOR)]
    pub reflected_control_max_count: Option<u16>,

    /// Asymmetrical packets policy: largest reply, octets.
    #[arg(long, value_name = "N", help_heading = REFLECTOR)]
    pub reflected_control_max_size: Option<u16>,

    /// Asymmetrical packets policy: shortest interval between replies, ns.
    #[arg(long, value_name = "NS", help_heading = REFLECTOR)]
    pub reflected_control_min_interval_ns: Option<u32>,

    // ---- Sender TLVs ----
    /// Session-Sender Identifier (RFC 8972 §3); 0 = none.
    #[arg(long, value_name = "N", help_heading = SENDER_TLVS)]
    pub ssid: Option<u16>,

    /// With --ssid: what to do when the reflector returns SSID 0 (it does not implement RFC 8972 §3) [default: continue].
    #[arg(long, value_name = "POLICY", ignore_case = true, help_heading = SENDER_TLVS)]
    pub zero_ssid: Option<ZeroSsid>,

    /// Extra Padding TLV with N octets.
    #[arg(long, value_name = "N", help_heading = SENDER_TLVS)]
    pub padding: Option<u16>,

    /// Location TLV (RFC 8972 type 2).
    #[arg(long, help_heading = SENDER_TLVS)]
    pub location: bool,

    /// Timestamp Information TLV (RFC 8972 type 3).
    #[arg(long, help_heading = SENDER_TLVS)]
    pub timestamp_info: bool,

    /// Direct Measurement TLV (RFC 8972 type 5).
    #[arg(long, help_heading = SENDER_TLVS)]
    pub direct_measurement: bool,

    /// Follow-Up Telemetry TLV (RFC 8972 type 7).
    #[arg(long, help_heading = SENDER_TLVS)]
    pub follow_up_telemetry: bool,

    /// Class of Service TLV (RFC 8972 type 4).
    #[arg(long, help_heading = SENDER_TLVS)]
    pub cos: bool,

    /// DSCP (0-63) for the CoS TLV; also marks the sender's own packets.
    #[arg(long, value_name = "N", help_heading = SENDER_TLVS)]
    pub dscp: Option<u8>,

    /// ECN (0-3) for the CoS TLV; also marks the sender's own packets.
    #[arg(long, value_name = "N", help_heading = SENDER_TLVS)]
    pub ecn: Option<u8>,

    /// Access Report TLV with this Access ID (0-15; 1 = 3GPP, 2 = non-3GPP).
    #[arg(long, value_name = "ID", help_heading = SENDER_TLVS)]
    pub access_report: Option<u8>,

    /// Return Code of the Access Report TLV.
    #[arg(long, value_name = "C", help_heading = SENDER_TLVS)]
    pub access_return_code: Option<u8>,

    /// Destination Node Address TLV (RFC 9503).
    #[arg(long, value_name = "IP", help_heading = SENDER_TLVS)]
    pub dest_node_addr: Option<IpAddr>,

    /// Return Path TLV with a Control Code sub-TLV: 0 = no reply, 1 = reply on the same link (RFC 9503).
    #[arg(long, value_name = "0|1", value_parser = clap::value_parser!(u8).range(0..=1), help_heading = SENDER_TLVS)]
    pub return_path_cc: Option<u8>,

    /// Return Path TLV with a Return Address sub-TLV (RFC 9503).
    #[arg(long, value_name = "IP", help_heading = SENDER_TLVS)]
    pub return_address: Option<IpAddr>,

    /// Return Path TLV with an SR-MPLS label stack, top first (RFC 9503).
    #[arg(long, value_name = "L,L", value_delimiter = ',', action = ArgAction::Append, help_heading = SENDER_TLVS)]
    pub return_sr_mpls_labels: Vec<u32>,

    /// Return Path TLV with an SRv6 segment list (RFC 9503).
    #[arg(long, value_name = "S,S", value_delimiter = ',', action = ArgAction::Append, help_heading = SENDER_TLVS)]
    pub return_srv6_sids: Vec<Ipv6Addr>,

    /// Micro-session ID TLV with this sender micro-session ID (RFC 9534).
    #[arg(long, value_name = "N", help_heading = SENDER_TLVS)]
    pub micro_session_id: Option<u16>,

    /// Reflected Test Packet Control TLV: replies asked per request.
    #[arg(long, value_name = "N", help_heading = SENDER_TLVS)]
    pub reflected_control_count: Option<u16>,

    /// Reflected Test Packet Control TLV: length of each reply, octets.
    #[arg(long, value_name = "L", help_heading = SENDER_TLVS)]
    pub reflected_control_length: Option<u16>,

    /// Reflected Test Packet Control TLV: interval between replies, ns.
    #[arg(long, value_name = "I", help_heading = SENDER_TLVS)]
    pub reflected_control_interval_ns: Option<u32>,

    /// Bit error rate TLVs (draft-gandhi-ippm-stamp-ber).
    #[arg(long, help_heading = SENDER_TLVS)]
    pub ber: bool,

    /// Bit pattern that fills the padding, hex [default pattern: FF00].
    #[arg(long, value_name = "HEX", value_parser = parse_hex_text, help_heading = SENDER_TLVS)]
    pub ber_pattern: Option<String>,

    /// Padding octets carrying the bit pattern.
    #[arg(long, value_name = "N", help_heading = SENDER_TLVS)]
    pub ber_padding_size: Option<u16>,

    /// Reflected Fixed Header Data TLV (draft-ietf-ippm-stamp-ext-hdr).
    #[arg(long, help_heading = SENDER_TLVS)]
    pub reflected_fixed_hdr: bool,

    /// Reflected IPv6 Extension Header Data TLV (draft-ietf-ippm-stamp-ext-hdr).
    #[arg(long, help_heading = SENDER_TLVS)]
    pub reflected_ipv6_ext_hdr: bool,

    /// Add an IPv6 Destination Options header of N octets (multiple of 8, 8-2048) to every request (IPV6_DSTOPTS).
    #[arg(long, value_name = "N", help_heading = SENDER_TLVS)]
    pub ipv6_dest_opt_len: Option<u16>,

    /// Override the type code of a draft TLV (e.g. ber-pattern=240); repeatable.
    #[arg(long, value_name = "KEY=CODE", value_parser = parse_tlv_code, action = ArgAction::Append, help_heading = SENDER_TLVS)]
    pub tlv_code: Vec<(String, u8)>,

    /// Raw option for a TLV plugin (sender and reflector side); repeatable.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_tlv_opt, action = ArgAction::Append, help_heading = SENDER_TLVS)]
    pub tlv_opt: Vec<(String, String)>,

    // ---- Output and operations ----
    /// One line per packet.
    #[arg(short = 'R', long, help_heading = OUTPUT)]
    pub per_packet: bool,

    /// Result format [default: text].
    #[arg(long, value_name = "FORMAT", ignore_case = true, help_heading = OUTPUT)]
    pub output_format: Option<OutputFormat>,

    /// Print interim (cumulative) statistics every S seconds.
    #[arg(long, value_name = "S", help_heading = OUTPUT)]
    pub report_interval: Option<f64>,

    /// Log format [default: text].
    #[arg(long, value_name = "FORMAT", ignore_case = true, help_heading = OUTPUT)]
    pub log_format: Option<LogFormat>,

    /// Log filter, e.g. info or stamp_core=debug [default: info].
    #[arg(long, value_name = "FILTER", help_heading = OUTPUT)]
    pub log_level: Option<String>,

    /// Print the registered TLV handlers (type, name, specification, crate) and exit.
    #[arg(long, help_heading = OUTPUT)]
    pub list_tlvs: bool,

    /// Serve Prometheus metrics.
    #[arg(long, help_heading = OUTPUT)]
    pub metrics: bool,

    /// Address of the Prometheus endpoint [default: 127.0.0.1:9090].
    #[arg(long, value_name = "ADDR", help_heading = OUTPUT)]
    pub metrics_addr: Option<SocketAddr>,

    /// Run an AgentX SNMP sub-agent.
    #[arg(long, help_heading = OUTPUT)]
    pub snmp: bool,

    /// AgentX socket of the master agent [default: /var/agentx/master].
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    pub snmp_socket: Option<PathBuf>,

    /// Reflector started as root: bind the socket(s), then drop to this user's uid, gid and groups before any packet is read.
    #[arg(long, value_name = "NAME", help_heading = OUTPUT)]
    pub user: Option<String>,

    /// Worker threads [default: one per CPU].
    #[arg(long, value_name = "N", help_heading = OUTPUT)]
    pub workers: Option<usize>,

    /// Hardware timestamping [default: auto].
    #[arg(long, value_name = "MODE", ignore_case = true, help_heading = OUTPUT)]
    pub hwtstamp: Option<HwTimestamping>,

    /// Reflector: send consecutive same-size replies to one sender as one UDP segmentation offload (GSO) message [default: on].
    #[arg(long, value_name = "MODE", ignore_case = true, help_heading = OUTPUT)]
    pub gso: Option<Gso>,

    /// Print an RTT histogram with the summary (JSON: bucket arrays).
    #[arg(long, help_heading = OUTPUT)]
    pub histogram: bool,

    /// Write an SVG plot to FILE: delay over time with losses marked, and the latency CDF.
    #[arg(long, value_name = "FILE", help_heading = OUTPUT)]
    pub plot: Option<PathBuf>,
}

fn parse_session_spec(s: &str) -> Result<SessionSpec, String> {
    s.parse()
}

/// `KEY=CODE` for `--tlv-code`.
fn parse_tlv_code(s: &str) -> Result<(String, u8), String> {
    let (k, v) = split_kv(s)?;
    let code = v
        .trim()
        .parse::<u8>()
        .map_err(|_| format!("TLV code {v:?} is not a number 0-255"))?;
    Ok((k, code))
}

/// `KEY=VALUE` for `--tlv-opt`.
fn parse_tlv_opt(s: &str) -> Result<(String, String), String> {
    split_kv(s)
}

fn split_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("empty key in {s:?}"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// Hex text (an optional `0x`), returned as given.
fn parse_hex_text(s: &str) -> Result<String, String> {
    crate::settings::decode_hex(s).map(|_| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn short_forms_match_the_contract() {
        let cli = Cli::try_parse_from([
            "stamp",
            "-i",
            "-r",
            "192.0.2.1",
            "-p",
            "4000",
            "-S",
            "10.0.0.1",
            "-o",
            "5000",
            "-c",
            "10",
            "-d",
            "0.5",
            "-L",
            "2",
            "-K",
            "ptp",
            "-A",
            "a",
            "-R",
        ])
        .unwrap();
        assert!(cli.is_reflector && cli.per_packet);
        assert_eq!(cli.remote_port, Some(4000));
        assert_eq!(cli.local_port, Some(5000));
        assert_eq!(cli.count, Some(10));
        assert_eq!(cli.send_delay, Some(0.5));
        assert_eq!(cli.timeout, Some(2.0));
        assert_eq!(cli.clock_source, Some(ClockSource::Ptp));
        assert_eq!(cli.auth_mode, Some(AuthModeArg::Authenticated));
    }

    #[test]
    fn absent_flags_stay_unset() {
        let cli = Cli::try_parse_from(["stamp"]).unwrap();
        assert_eq!(cli.count, None);
        assert_eq!(cli.send_delay, None);
        assert!(cli.remote_addr.is_empty());
    }

    #[test]
    fn remote_addr_repeats_and_takes_commas() {
        let cli = Cli::try_parse_from([
            "stamp",
            "-r",
            "192.0.2.1",
            "--remote-addr",
            "[2001:db8::1]:9000",
            "-r",
            "a,b:7",
        ])
        .unwrap();
        let shown: Vec<String> = cli.remote_addr.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["192.0.2.1", "[2001:db8::1]:9000", "a", "b:7"]);
    }

    #[test]
    fn key_value_flags_parse() {
        let cli = Cli::try_parse_from([
            "stamp",
            "--tlv-code",
            "ber-pattern=240",
            "--tlv-opt",
            "x.y=a=b",
            "--clock-synchronized",
        ])
        .unwrap();
        assert_eq!(cli.tlv_code, [("ber-pattern".to_string(), 240)]);
        assert_eq!(cli.tlv_opt, [("x.y".to_string(), "a=b".to_string())]);
        assert_eq!(cli.clock_synchronized, Some(true));
        assert!(Cli::try_parse_from(["stamp", "--tlv-code", "x=300"]).is_err());
        let cli = Cli::try_parse_from(["stamp", "--clock-synchronized=false"]).unwrap();
        assert_eq!(cli.clock_synchronized, Some(false));
    }
}
