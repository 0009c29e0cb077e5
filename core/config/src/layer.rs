//! One layer of configuration (defaults, file, environment or flags) as
//! figment sees it, and the providers that produce each layer.
//!
//! Every layer has the same shape, [`Layer`]: one optional field per flag,
//! named after the flag's long name in snake_case. The file is checked
//! against it with `deny_unknown_fields`; the environment is filtered to its
//! keys; the flags are turned into one holding only what was given.

use std::collections::BTreeMap;
use std::path::PathBuf;

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

use crate::cli::Cli;
use crate::values::{
    AuthModeArg, ClockSource, Gso, HwTimestamping, LogFormat, OutputFormat, Text, TextList,
    TlvModeArg, TransportKind, ZeroSsid,
};

/// Defines [`Layer`] and [`KEYS`] from one list, so the accepted keys of the
/// file and the environment cannot drift from the struct.
macro_rules! layer {
    ($($name:ident : $ty:ty),* $(,)?) => {
        /// One layer of configuration: every key optional.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct Layer {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $name: Option<$ty>,
            )*
        }

        /// Every config key.
        pub(crate) const KEYS: &[&str] = &[$(stringify!($name)),*];
    };
}

layer! {
    // Roles and endpoints
    is_reflector: bool,
    remote_addr: TextList,
    remote_port: u16,
    local_addr: Text,
    local_port: u16,
    // Timing, clocks, authentication
    count: u64,
    send_delay: f64,
    timeout: f64,
    clock_source: ClockSource,
    error_scale: u8,
    error_multiplier: u8,
    clock_synchronized: bool,
    auth_mode: AuthModeArg,
    hmac_key: Text,
    hmac_key_file: PathBuf,
    hmac_key_dir: PathBuf,
    // Reflector
    stateful_reflector: bool,
    session_timeout: f64,
    tlv_mode: TlvModeArg,
    verify_tlv_hmac: bool,
    reflector_member_link_id: u16,
    transport: TransportKind,
    max_pps: u64,
    reflector_rate_burst: u64,
    global_max_pps: u64,
    max_sessions: usize,
    allow_session: TextList,
    reflected_control_max_count: u16,
    reflected_control_max_size: u16,
    reflected_control_min_interval_ns: u32,
    // Sender TLVs
    ssid: u16,
    zero_ssid: ZeroSsid,
    padding: u16,
    location: bool,
    timestamp_info: bool,
    direct_measurement: bool,
    follow_up_telemetry: bool,
    cos: bool,
    dscp: u8,
    ecn: u8,
    access_report: u8,
    access_return_code: u8,
    dest_node_addr: Text,
    return_path_cc: u8,
    return_address: Text,
    return_sr_mpls_labels: TextList,
    return_srv6_sids: TextList,
    micro_session_id: u16,
    reflected_control_count: u16,
    reflected_control_length: u16,
    reflected_control_interval_ns: u32,
    ber: bool,
    ber_pattern: Text,
    ber_padding_size: u16,
    reflected_fixed_hdr: bool,
    reflected_ipv6_ext_hdr: bool,
    ipv6_dest_opt_len: u16,
    tlv_code: BTreeMap<String, u8>,
    tlv_opt: BTreeMap<String, Text>,
    // Output and operations
    per_packet: bool,
    output_format: OutputFormat,
    report_interval: f64,
    log_format: LogFormat,
    log_level: Text,
    list_tlvs: bool,
    metrics: bool,
    metrics_addr: Text,
    snmp: bool,
    snmp_socket: PathBuf,
    user: Text,
    workers: usize,
    hwtstamp: HwTimestamping,
    gso: Gso,
    histogram: bool,
    plot: PathBuf,
}

/// Keys the environment may not set: tables have no `STAMP_*` form.
const NOT_FROM_ENV: &[&str] = &["tlv_code", "tlv_opt"];

/// The single place where defaults live, as the lowest figment layer.
/// Settings without a default here (local port, DSCP, …) stay unset.
#[derive(Debug, Clone, Copy, Default)]
pub struct Defaults;

impl Defaults {
    /// STAMP's well-known port (RFC 8762 §4.1).
    pub const PORT: u16 = 862;
    /// Packets a sender sends.
    pub const COUNT: u64 = 1000;
    /// Milliseconds between packets.
    pub const SEND_DELAY_MS: f64 = 1000.0;
    /// Seconds before a packet counts as lost.
    pub const TIMEOUT_S: f64 = 5.0;
    /// Idle seconds before a stateful session is forgotten.
    pub const SESSION_TIMEOUT_S: f64 = 300.0;
    /// Most stateful sessions at once.
    pub const MAX_SESSIONS: usize = 65_536;
    /// Prometheus endpoint.
    pub const METRICS_ADDR: &'static str = "127.0.0.1:9090";
    /// Log filter.
    pub const LOG_LEVEL: &'static str = "info";

    pub(crate) fn layer() -> Layer {
        Layer {
            is_reflector: Some(false),
            remote_port: Some(Self::PORT),
            count: Some(Self::COUNT),
            send_delay: Some(Self::SEND_DELAY_MS),
            timeout: Some(Self::TIMEOUT_S),
            clock_source: Some(ClockSource::Ntp),
            auth_mode: Some(AuthModeArg::Open),
            stateful_reflector: Some(false),
            session_timeout: Some(Self::SESSION_TIMEOUT_S),
            tlv_mode: Some(TlvModeArg::Echo),
            verify_tlv_hmac: Some(false),
            max_sessions: Some(Self::MAX_SESSIONS),
            ssid: Some(0),
            per_packet: Some(false),
            output_format: Some(OutputFormat::Text),
            log_format: Some(LogFormat::Text),
            log_level: Some(Text(Self::LOG_LEVEL.to_string())),
            list_tlvs: Some(false),
            metrics: Some(false),
            metrics_addr: Some(Text(Self::METRICS_ADDR.to_string())),
            snmp: Some(false),
            hwtstamp: Some(HwTimestamping::Auto),
            gso: Some(Gso::On),
            histogram: Some(false),
            ..Layer::default()
        }
    }
}

// The error type is figment's, fixed by its `Provider` trait.
#[allow(clippy::result_large_err)]
fn layer_dict(layer: &Layer) -> Result<Map<Profile, Dict>, figment::Error> {
    let value = Value::serialize(layer)?;
    let dict = value.into_dict().expect("a struct serializes to a dict");
    Ok(Profile::Default.collect(dict))
}

impl Provider for Defaults {
    fn metadata(&self) -> Metadata {
        Metadata::named("defaults").interpolater(|_: &Profile, _: &[&str]| "defaults".to_string())
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        layer_dict(&Defaults::layer())
    }
}

/// `STAMP_*` variables whose name (after the prefix, any case) is a config
/// key; others (say `STAMP_CONFIG`, read by clap) are left alone. Values are
/// kept as text and read leniently at extraction (`STAMP_METRICS=1`), so a
/// hex key made only of digits stays text.
#[derive(Debug, Clone, Default)]
pub(crate) struct EnvLayer {
    dict: Dict,
}

impl EnvLayer {
    pub(crate) fn from_process() -> Self {
        let mut dict = Dict::new();
        for (key, value) in figment::providers::Env::prefixed("STAMP_").iter() {
            let key = key.as_str().to_ascii_lowercase();
            let value = value.trim();
            // An empty variable (`STAMP_COUNT=`) counts as unset.
            if KEYS.contains(&key.as_str())
                && !NOT_FROM_ENV.contains(&key.as_str())
                && !value.is_empty()
            {
                dict.insert(key, Value::from(value.to_string()));
            }
        }
        EnvLayer { dict }
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.dict.contains_key(key)
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment").interpolater(|_: &Profile, k: &[&str]| {
            format!(
                "STAMP_{}",
                k.first().copied().unwrap_or_default().to_ascii_uppercase()
            )
        })
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// The flags that were given, as the top layer.
#[derive(Debug, Clone)]
pub(crate) struct FlagLayer(pub Layer);

/// The flag spelling of a config key: `send_delay` → `--send-delay`.
pub(crate) fn flag_name(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

impl Provider for FlagLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("command line").interpolater(|_: &Profile, k: &[&str]| {
            flag_name(k.first().copied().unwrap_or_default())
        })
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        layer_dict(&self.0)
    }
}

fn switch(on: bool) -> Option<bool> {
    on.then_some(true)
}

impl From<&Cli> for Layer {
    fn from(c: &Cli) -> Layer {
        let text = |v: Option<String>| v.map(Text);
        let list = |v: Vec<String>| (!v.is_empty()).then_some(TextList(v));
        Layer {
            is_reflector: switch(c.is_reflector),
            remote_addr: list(c.remote_addr.iter().map(ToString::to_string).collect()),
            remote_port: c.remote_port,
            local_addr: text(c.local_addr.map(|a| a.to_string())),
            local_port: c.local_port,
            count: c.count,
            send_delay: c.send_delay,
            timeout: c.timeout,
            clock_source: c.clock_source,
            error_scale: c.error_scale,
            error_multiplier: c.error_multiplier,
            clock_synchronized: c.clock_synchronized,
            auth_mode: c.auth_mode,
            hmac_key: text(c.hmac_key.clone()),
            hmac_key_file: c.hmac_key_file.clone(),
            hmac_key_dir: c.hmac_key_dir.clone(),
            stateful_reflector: switch(c.stateful_reflector),
            session_timeout: c.session_timeout,
            tlv_mode: c.tlv_mode,
            verify_tlv_hmac: switch(c.verify_tlv_hmac),
            reflector_member_link_id: c.reflector_member_link_id,
            transport: c.transport,
            max_pps: c.max_pps,
            reflector_rate_burst: c.reflector_rate_burst,
            global_max_pps: c.global_max_pps,
            max_sessions: c.max_sessions,
            allow_session: list(c.allow_session.iter().map(ToString::to_string).collect()),
            reflected_control_max_count: c.reflected_control_max_count,
            reflected_control_max_size: c.reflected_control_max_size,
            reflected_control_min_interval_ns: c.reflected_control_min_interval_ns,
            ssid: c.ssid,
            zero_ssid: c.zero_ssid,
            padding: c.padding,
            location: switch(c.location),
            timestamp_info: switch(c.timestamp_info),
            direct_measurement: switch(c.direct_measurement),
            follow_up_telemetry: switch(c.follow_up_telemetry),
            cos: switch(c.cos),
            dscp: c.dscp,
            ecn: c.ecn,
            access_report: c.access_report,
            access_return_code: c.access_return_code,
            dest_node_addr: text(c.dest_node_addr.map(|a| a.to_string())),
            return_path_cc: c.return_path_cc,
            return_address: text(c.return_address.map(|a| a.to_string())),
            return_sr_mpls_labels: list(
                c.return_sr_mpls_labels
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
            return_srv6_sids: list(c.return_srv6_sids.iter().map(ToString::to_string).collect()),
            micro_session_id: c.micro_session_id,
            reflected_control_count: c.reflected_control_count,
            reflected_control_length: c.reflected_control_length,
            reflected_control_interval_ns: c.reflected_control_interval_ns,
            ber: switch(c.ber),
            ber_pattern: text(c.ber_pattern.clone()),
            ber_padding_size: c.ber_padding_size,
            reflected_fixed_hdr: switch(c.reflected_fixed_hdr),
            reflected_ipv6_ext_hdr: switch(c.reflected_ipv6_ext_hdr),
            ipv6_dest_opt_len: c.ipv6_dest_opt_len,
            tlv_code: (!c.tlv_code.is_empty()).then(|| c.tlv_code.iter().cloned().collect()),
            tlv_opt: (!c.tlv_opt.is_empty()).then(|| {
                c.tlv_opt
                    .iter()
                    .map(|(k, v)| (k.clone(), Text(v.clone())))
                    .collect()
            }),
            per_packet: switch(c.per_packet),
            output_format: c.output_format,
            report_interval: c.report_interval,
            log_format: c.log_format,
            log_level: text(c.log_level.clone()),
            list_tlvs: switch(c.list_tlvs),
            metrics: switch(c.metrics),
            metrics_addr: text(c.metrics_addr.map(|a| a.to_string())),
            snmp: switch(c.snmp),
            snmp_socket: c.snmp_socket.clone(),
            user: text(c.user.clone()),
            workers: c.workers,
            hwtstamp: c.hwtstamp,
            gso: c.gso,
            histogram: switch(c.histogram),
            plot: c.plot.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every long flag but `--config` is a config key, and every key a flag.
    #[test]
    fn every_flag_has_a_config_key() {
        let cmd = Cli::command();
        let mut flags: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| !["config", "help", "version"].contains(l))
            .map(|l| l.replace('-', "_"))
            .collect();
        flags.sort();
        let mut keys: Vec<String> = KEYS.iter().map(ToString::to_string).collect();
        keys.sort();
        assert_eq!(flags, keys);
    }

    #[test]
    fn an_empty_command_line_is_an_empty_layer() {
        let cli = <Cli as clap::Parser>::try_parse_from(["stamp"]).unwrap();
        assert_eq!(Layer::from(&cli), Layer::default());
    }
}
