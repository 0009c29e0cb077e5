//! Resolution of the layers into [`Settings`]: plain, validated values.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::Figment;
use stamp_core::provision::SessionSpec;
use stamp_core::reflector::TlvMode;
use stamp_core::TlvOptions;
use stamp_wire::{AuthMode, TimestampFormat};

use crate::cli::Cli;
use crate::error::{from_figment, origin_of, ConfigError};
use crate::layer::{Defaults, EnvLayer, FlagLayer, Layer};
use crate::values::{
    parse_remote, Gso, HwTimestamping, LogFormat, OutputFormat, RemoteSpec, TextList,
    TransportKind, ZeroSsid,
};

/// Shortest HMAC key accepted, in octets.
pub const MIN_KEY_LEN: usize = 16;

/// Which end of a STAMP session this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Session-Reflector.
    Reflector,
    /// Session-Sender.
    Sender,
}

/// The resolved configuration: every default applied, every value checked.
#[derive(Clone, PartialEq)]
pub struct Settings {
    /// Sender or reflector.
    pub role: Role,
    /// Reflectors to send to, in the order given (names resolved later).
    pub remotes: Vec<RemoteSpec>,
    /// Port for remotes given without one.
    pub remote_port: u16,
    /// Local bind address; `None` = the unspecified address of the remote's family.
    pub local_addr: Option<IpAddr>,
    /// Local port: 862 on a reflector unless set; `None` on a sender = any.
    pub local_port: Option<u16>,
    /// Packets to send; 0 = until interrupted.
    pub count: u64,
    /// Interval between packets.
    pub send_delay: Duration,
    /// Time after which a packet counts as lost.
    pub timeout: Duration,
    /// Timestamp format.
    pub clock_format: TimestampFormat,
    /// Error Estimate Scale override (0–63).
    pub error_scale: Option<u8>,
    /// Error Estimate Multiplier override.
    pub error_multiplier: Option<u8>,
    /// Error Estimate S bit override.
    pub clock_synchronized: Option<bool>,
    /// Open or authenticated mode.
    pub auth_mode: AuthMode,
    /// The HMAC key (at least [`MIN_KEY_LEN`] octets) from `--hmac-key`,
    /// `STAMP_HMAC_KEY` or the key file. Not shown by `Debug`.
    pub hmac_key: Option<Vec<u8>>,
    /// Directory of per-SSID keys (`<ssid>.key`, `default.key`), already
    /// read into [`ssid_keys`](Self::ssid_keys) and `hmac_key`.
    pub hmac_key_dir: Option<PathBuf>,
    /// Per-SSID keys from `hmac_key_dir` (`<ssid>.key`). Its `default.key`
    /// is `hmac_key`; a sender's `hmac_key` is already the key of its own
    /// `ssid`. Not shown by `Debug`.
    pub ssid_keys: BTreeMap<u16, Vec<u8>>,
    /// Drop to this user's uid, gid and groups after binding (when root).
    pub user: Option<String>,
    /// Per-session reflector counters.
    pub stateful_reflector: bool,
    /// Idle time after which a stateful session is forgotten.
    pub session_timeout: Duration,
    /// Reflector TLV processing.
    pub tlv_mode: TlvMode,
    /// Verify the HMAC TLV.
    pub verify_tlv_hmac: bool,
    /// Most stateful sessions at once.
    pub max_sessions: usize,
    /// Provisioned sessions (`--allow-session`); empty = answer every request.
    pub allow_sessions: Vec<SessionSpec>,
    /// Reflector rate limit, requests per second.
    pub max_pps: Option<u64>,
    /// Burst above the rate limit.
    pub reflector_rate_burst: Option<u64>,
    /// Reflector-wide rate cap, requests per second (all workers).
    pub global_max_pps: Option<u64>,
    /// Worker threads; `None` = one per CPU.
    pub workers: Option<usize>,
    /// Reflector transport (`--transport`).
    pub transport: TransportKind,
    /// Length of the IPv6 Destination Options header the sender adds
    /// (`--ipv6-dest-opt-len`), a multiple of 8 in 8..=2048.
    pub ipv6_dest_opt_len: Option<u16>,
    /// One line per packet (`-R`).
    pub per_packet: bool,
    /// Result format.
    pub output_format: OutputFormat,
    /// Interim statistics interval; `None` = only the final summary.
    pub report_interval: Option<Duration>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (tracing `EnvFilter` syntax).
    pub log_level: String,
    /// Print the TLV handlers and exit.
    pub list_tlvs: bool,
    /// Serve Prometheus metrics.
    pub metrics: bool,
    /// Prometheus endpoint.
    pub metrics_addr: SocketAddr,
    /// Run an AgentX sub-agent.
    pub snmp: bool,
    /// AgentX master socket.
    pub snmp_socket: Option<PathBuf>,
    /// Hardware timestamping.
    pub hwtstamp: HwTimestamping,
    /// UDP segmentation offload for reflected replies.
    pub gso: Gso,
    /// RTT histogram in the summary.
    pub histogram: bool,
    /// RTT plot file.
    pub plot: Option<PathBuf>,
    /// Session-Sender Identifier; 0 = none.
    pub ssid: u16,
    /// What the sender does with SSID-0 replies.
    pub zero_ssid: ZeroSsid,
    /// Sender TLV options as the plugins read them (`"dscp" -> "46"`,
    /// `"location" -> "true"`), then every `--tlv-opt`.
    pub tlv_options: TlvOptions,
    /// Reflector-side plugin settings (`reflector-member-link-id`,
    /// `reflected-control-max-*`), then every `--tlv-opt`.
    pub plugin_settings: TlvOptions,
    /// Type-code overrides of draft TLVs (`--tlv-code KEY=CODE`).
    pub tlv_codes: BTreeMap<String, u8>,
    /// DSCP for the sender's own packets (and the CoS TLV).
    pub dscp: Option<u8>,
    /// ECN for the sender's own packets (and the CoS TLV).
    pub ecn: Option<u8>,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("role", &self.role)
            .field("remotes", &self.remotes)
            .field("remote_port", &self.remote_port)
            .field("local_addr", &self.local_addr)
            .field("local_port", &self.local_port)
            .field("count", &self.count)
            .field("send_delay", &self.send_delay)
            .field("timeout", &self.timeout)
            .field("clock_format", &self.clock_format)
            .field("error_scale", &self.error_scale)
            .field("error_multiplier", &self.error_multiplier)
            .field("clock_synchronized", &self.clock_synchronized)
            .field("auth_mode", &self.auth_mode)
            .field("hmac_key", &self.hmac_key.as_ref().map(|_| "<redacted>"))
            .field("hmac_key_dir", &self.hmac_key_dir)
            .field(
                "ssid_keys",
                &self
                    .ssid_keys
                    .keys()
                    .map(|k| (k, "<redacted>"))
                    .collect::<Vec<_>>(),
            )
            .field("user", &self.user)
            .field("stateful_reflector", &self.stateful_reflector)
            .field("session_timeout", &self.session_timeout)
            .field("tlv_mode", &self.tlv_mode)
            .field("verify_tlv_hmac", &self.verify_tlv_hmac)
            .field("max_sessions", &self.max_sessions)
            .field("allow_sessions", &self.allow_sessions)
            .field("max_pps", &self.max_pps)
            .field("reflector_rate_burst", &self.reflector_rate_burst)
            .field("global_max_pps", &self.global_max_pps)
            .field("workers", &self.workers)
            .field("per_packet", &self.per_packet)
            .field("output_format", &self.output_format)
            .field("report_interval", &self.report_interval)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("list_tlvs", &self.list_tlvs)
            .field("metrics", &self.metrics)
            .field("metrics_addr", &self.metrics_addr)
            .field("snmp", &self.snmp)
            .field("snmp_socket", &self.snmp_socket)
            .field("hwtstamp", &self.hwtstamp)
            .field("gso", &self.gso)
            .field("histogram", &self.histogram)
            .field("plot", &self.plot)
            .field("ssid", &self.ssid)
            .field("zero_ssid", &self.zero_ssid)
            .field("tlv_options", &self.tlv_options)
            .field("plugin_settings", &self.plugin_settings)
            .field("tlv_codes", &self.tlv_codes)
            .field("dscp", &self.dscp)
            .field("ecn", &self.ecn)
            .field("config_file", &self.config_file)
            .finish()
    }
}

/// Load the configuration: defaults < `--config` file < `STAMP_*`
/// environment < the flags that were given, then resolve and validate.
///
/// `role_hint` is `Some` for the single-role binaries (`stamp-reflector`,
/// `stamp-sender`); with `None` (`stamp-suite`) `is_reflector` decides.
pub fn load(cli: &Cli, role_hint: Option<Role>) -> Result<Settings, ConfigError> {
    let mut fig = Figment::from(Defaults);
    let mut file_layer = Layer::default();
    if let Some(path) = &cli.config {
        file_layer = read_config_file(path)?;
        fig = fig.merge(Toml::file_exact(path));
    }
    let env = EnvLayer::from_process();
    let fig = fig.merge(env.clone()).merge(FlagLayer(Layer::from(cli)));
    let layer: Layer = fig.extract_lossy().map_err(|e| from_figment(e, &fig))?;
    Resolver {
        fig: &fig,
        cli,
        env: &env,
        file_layer: &file_layer,
    }
    .resolve(layer, role_hint)
}

/// Check the config file on its own, so an unknown key or a plaintext key
/// is reported against the file even if a higher layer hides it.
fn read_config_file(path: &Path) -> Result<Layer, ConfigError> {
    match std::fs::metadata(path) {
        Ok(md) if md.is_file() => {}
        Ok(_) => {
            return Err(ConfigError::ConfigFile {
                path: path.to_path_buf(),
                reason: "not a regular file".into(),
            })
        }
        Err(e) => {
            return Err(ConfigError::ConfigFile {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        }
    }
    let fig = Figment::from(Toml::file_exact(path));
    let layer: Layer = fig.extract_lossy().map_err(|e| from_figment(e, &fig))?;
    if layer.hmac_key.is_some() {
        return Err(ConfigError::KeyInConfigFile {
            path: path.to_path_buf(),
        });
    }
    Ok(layer)
}

/// Hex text to bytes: an optional `0x`, an even number of hex digits.
pub(crate) fn decode_hex(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if digits.is_empty() {
        return Err("expected hex digits, got nothing".to_string());
    }
    hex::decode(digits).map_err(|e| format!("expected an even number of hex digits ({e})"))
}

/// Read an HMAC key file, refusing one that group or others can access
/// (Unix). The content is taken as hex text (surrounding whitespace and an
/// optional `0x` ignored) when it is valid hex, else as raw bytes. The
/// length is checked against [`MIN_KEY_LEN`]. Also for the per-SSID files of
/// `hmac_key_dir`.
pub fn read_key_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    read_key_file_from(path, &path.display().to_string())
}

fn read_key_file_from(path: &Path, origin: &str) -> Result<Vec<u8>, ConfigError> {
    let io_err = |e: std::io::Error| ConfigError::KeyFile {
        path: path.to_path_buf(),
        origin: origin.to_string(),
        reason: e.to_string(),
    };
    let md = std::fs::metadata(path).map_err(io_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = md.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(ConfigError::KeyFilePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = md;
    let raw = std::fs::read(path).map_err(io_err)?;
    let key = match std::str::from_utf8(&raw).ok().map(decode_hex) {
        Some(Ok(bytes)) => bytes,
        _ => raw,
    };
    check_key_len(key, &format!("key file {}", path.display()))
}

/// The keys of an `hmac_key_dir`: `default.key`, then `<ssid>.key` by SSID.
pub type KeyDir = (Option<Vec<u8>>, BTreeMap<u16, Vec<u8>>);

/// Every key of an `hmac_key_dir`: `default.key` and `<ssid>.key` for an
/// SSID 0-65535 (other `.key` names are refused; files not ending in `.key`
/// are ignored). Each file is read with [`read_key_file`]'s rules.
pub fn read_key_dir(dir: &Path, origin: &str) -> Result<KeyDir, ConfigError> {
    let err = |path: &Path, reason: String| ConfigError::KeyFile {
        path: path.to_path_buf(),
        origin: origin.to_string(),
        reason,
    };
    let md = std::fs::metadata(dir).map_err(|e| err(dir, e.to_string()))?;
    if !md.is_dir() {
        return Err(err(dir, "not a directory".into()));
    }
    let mut default = None;
    let mut keys = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| err(dir, e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| err(dir, e.to_string()))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".key")) else {
            continue;
        };
        if stem == "default" {
            default = Some(read_key_file(&path)?);
        } else {
            let ssid = stem
                .parse::<u16>()
                .ok()
                .filter(|_| stem.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    err(
                        &path,
                        "expected <ssid>.key with an SSID 0-65535, or default.key".into(),
                    )
                })?;
            if keys.insert(ssid, read_key_file(&path)?).is_some() {
                return Err(err(&path, format!("a second key for SSID {ssid}")));
            }
        }
    }
    Ok((default, keys))
}

fn check_key_len(key: Vec<u8>, origin: &str) -> Result<Vec<u8>, ConfigError> {
    if key.len() < MIN_KEY_LEN {
        return Err(ConfigError::KeyTooShort {
            origin: origin.to_string(),
            len: key.len(),
        });
    }
    Ok(key)
}

struct Resolver<'a> {
    fig: &'a Figment,
    cli: &'a Cli,
    env: &'a EnvLayer,
    file_layer: &'a Layer,
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

impl Resolver<'_> {
    fn invalid(
        &self,
        key: &str,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> ConfigError {
        ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            origin: origin_of(self.fig, key),
            reason: reason.into(),
        }
    }

    /// A relative key path written in the config file is relative to the
    /// file's directory (a service's working directory is often `/`); from
    /// a flag or the environment it is relative to the working directory.
    fn file_relative(&self, key: &str, path: PathBuf) -> PathBuf {
        let file = self
            .fig
            .find_metadata(key)
            .and_then(|md| md.source.as_ref())
            .and_then(|s| s.file_path());
        match file.and_then(Path::parent) {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        }
    }

    fn at_most(&self, key: &str, v: Option<u8>, max: u8) -> Result<Option<u8>, ConfigError> {
        match v {
            Some(x) if x > max => Err(self.invalid(key, x, format!("must be 0..={max}"))),
            other => Ok(other),
        }
    }

    /// `allow_session`: every entry must parse.
    fn session_specs(&self, list: Option<&TextList>) -> Result<Vec<SessionSpec>, ConfigError> {
        list.map_or(&[][..], |l| &l.0[..])
            .iter()
            .map(|s| {
                s.parse::<SessionSpec>()
                    .map_err(|why| self.invalid("allow_session", quoted(s), why))
            })
            .collect()
    }

    fn positive<T: PartialEq + Default + fmt::Display>(
        &self,
        key: &str,
        v: Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        match v {
            Some(x) if x == T::default() => Err(self.invalid(key, x, "must be at least 1")),
            other => Ok(other),
        }
    }

    /// A finite, non-negative number of `unit`s as a `Duration`.
    fn duration(&self, key: &str, v: f64, unit_secs: f64) -> Result<Duration, ConfigError> {
        Duration::try_from_secs_f64(v * unit_secs)
            .map_err(|_| self.invalid(key, v, "expected a non-negative number"))
    }

    fn ip(&self, key: &str, v: Option<&str>) -> Result<Option<IpAddr>, ConfigError> {
        v.map(|s| {
            s.trim()
                .parse::<IpAddr>()
                .map_err(|_| self.invalid(key, quoted(s), "expected an IPv4 or IPv6 address"))
        })
        .transpose()
    }

    fn resolve(&self, l: Layer, role_hint: Option<Role>) -> Result<Settings, ConfigError> {
        let d = Defaults::layer();
        let role = match role_hint {
            Some(Role::Sender) if self.cli.is_reflector => {
                return Err(ConfigError::Conflict("--is-reflector cannot be used with stamp-sender; run stamp-reflector or stamp-suite -i".into()));
            }
            Some(role) => role,
            None if l.is_reflector.unwrap_or(false) => Role::Reflector,
            None => Role::Sender,
        };
        let list_tlvs = l.list_tlvs.unwrap_or(false);

        let remotes: Vec<RemoteSpec> = l
            .remote_addr
            .as_ref()
            .map(|list| {
                list.0
                    .iter()
                    .map(|s| parse_remote(s).map_err(|r| self.invalid("remote_addr", quoted(s), r)))
                    .collect()
            })
            .transpose()?
            .unwrap_or_default();
        if role == Role::Sender && remotes.is_empty() && !list_tlvs {
            return Err(ConfigError::NoRemote);
        }
        let remote_port = self
            .positive("remote_port", l.remote_port)?
            .or(d.remote_port)
            .unwrap_or(Defaults::PORT);
        let local_addr = self.ip("local_addr", l.local_addr.as_ref().map(|t| t.0.as_str()))?;
        let local_port = match role {
            Role::Reflector => Some(l.local_port.unwrap_or(Defaults::PORT)),
            Role::Sender => l.local_port,
        };

        let count = l.count.unwrap_or(Defaults::COUNT);
        let send_delay = self.duration(
            "send_delay",
            l.send_delay.unwrap_or(Defaults::SEND_DELAY_MS),
            1e-3,
        )?;
        if send_delay.is_zero() && count != 1 {
            return Err(self.invalid("send_delay", 0, "must be more than 0 ms unless count is 1"));
        }
        let timeout = self.duration("timeout", l.timeout.unwrap_or(Defaults::TIMEOUT_S), 1.0)?;
        if timeout.is_zero() {
            return Err(self.invalid("timeout", 0, "must be more than 0 s"));
        }
        let session_timeout = self.duration(
            "session_timeout",
            l.session_timeout.unwrap_or(Defaults::SESSION_TIMEOUT_S),
            1.0,
        )?;
        if session_timeout.is_zero() {
            return Err(self.invalid("session_timeout", 0, "must be more than 0 s"));
        }
        let report_interval = match l.report_interval {
            Some(s) => Some(self.duration("report_interval", s, 1.0)?).filter(|d| !d.is_zero()),
            None => None,
        };

        let auth_mode: AuthMode = l
            .auth_mode
            .or(d.auth_mode)
            .map(Into::into)
            .unwrap_or_default();
        let mut hmac_key = self.hmac_key(&l)?;
        let hmac_key_dir = l
            .hmac_key_dir
            .clone()
            .map(|p| self.file_relative("hmac_key_dir", p));
        let mut ssid_keys = BTreeMap::new();
        if let Some(dir) = &hmac_key_dir {
            let origin = origin_of(self.fig, "hmac_key_dir");
            let (default, keys) = read_key_dir(dir, &origin)?;
            match (default, &hmac_key) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::ConflictingKeys {
                        first: format!("{}/default.key (from {origin})", dir.display()),
                        second: format!("the key from {}", origin_of(self.fig, "hmac_key")),
                    })
                }
                (Some(d), None) => hmac_key = Some(d),
                (None, _) => {}
            }
            if keys.is_empty() && hmac_key.is_none() {
                return Err(ConfigError::KeyFile {
                    path: dir.clone(),
                    origin,
                    reason: "holds no <ssid>.key nor default.key".into(),
                });
            }
            ssid_keys = keys;
        }
        let ssid = l.ssid.unwrap_or(0);
        if role == Role::Sender {
            // A sender has one SSID: its key is the one the directory gives it.
            if let Some(k) = ssid_keys.get(&ssid) {
                hmac_key = Some(k.clone());
            }
        }
        if auth_mode == AuthMode::Authenticated
            && hmac_key.is_none()
            && (role == Role::Sender || ssid_keys.is_empty())
        {
            return Err(ConfigError::MissingKey);
        }
        let user = match l.user.as_ref().map(|t| t.0.trim().to_string()) {
            Some(u) if u.is_empty() => {
                return Err(self.invalid("user", quoted(""), "expected a user name"))
            }
            other => other,
        };

        let log_level = l
            .log_level
            .as_ref()
            .map(|t| t.0.trim().to_string())
            .unwrap_or_else(|| Defaults::LOG_LEVEL.to_string());
        if log_level.is_empty() {
            return Err(self.invalid(
                "log_level",
                quoted(""),
                "expected a level such as info or debug",
            ));
        }
        let metrics_addr_text = l
            .metrics_addr
            .as_ref()
            .map(|t| t.0.clone())
            .unwrap_or_else(|| Defaults::METRICS_ADDR.to_string());
        let metrics_addr = metrics_addr_text
            .trim()
            .parse::<SocketAddr>()
            .map_err(|_| {
                self.invalid(
                    "metrics_addr",
                    quoted(&metrics_addr_text),
                    "expected ADDR:PORT, e.g. 127.0.0.1:9090",
                )
            })?;

        let error_scale = self.at_most("error_scale", l.error_scale, 63)?;
        let dscp = self.at_most("dscp", l.dscp, 63)?;
        let ecn = self.at_most("ecn", l.ecn, 3)?;

        let transport = l.transport.unwrap_or_default();
        if transport == TransportKind::Raw {
            if !cfg!(feature = "ttl-pnet") {
                return Err(self.invalid(
                    "transport",
                    "raw",
                    "this binary was built without the ttl-pnet feature",
                ));
            }
            if role == Role::Sender {
                return Err(self.invalid(
                    "transport",
                    "raw",
                    "only the reflector (-i) has a raw-socket transport",
                ));
            }
        }
        let ipv6_dest_opt_len = match l.ipv6_dest_opt_len {
            Some(n) if !(8..=2048).contains(&n) || n % 8 != 0 => {
                return Err(self.invalid(
                    "ipv6_dest_opt_len",
                    n,
                    "must be a multiple of 8 from 8 to 2048",
                ))
            }
            other => other,
        };

        let (tlv_options, plugin_settings) = self.tlv_options(&l)?;
        let tlv_codes = l.tlv_code.clone().unwrap_or_default();

        Ok(Settings {
            role,
            remotes,
            remote_port,
            local_addr,
            local_port,
            count,
            send_delay,
            timeout,
            clock_format: l
                .clock_source
                .or(d.clock_source)
                .map(Into::into)
                .unwrap_or_default(),
            error_scale,
            error_multiplier: l.error_multiplier,
            clock_synchronized: l.clock_synchronized,
            auth_mode,
            hmac_key,
            hmac_key_dir,
            ssid_keys,
            user,
            stateful_reflector: l.stateful_reflector.unwrap_or(false),
            session_timeout,
            tlv_mode: l
                .tlv_mode
                .or(d.tlv_mode)
                .map(Into::into)
                .unwrap_or_default(),
            verify_tlv_hmac: l.verify_tlv_hmac.unwrap_or(false),
            max_sessions: self
                .positive("max_sessions", l.max_sessions)?
                .unwrap_or(Defaults::MAX_SESSIONS),
            allow_sessions: self.session_specs(l.allow_session.as_ref())?,
            max_pps: self.positive("max_pps", l.max_pps)?,
            reflector_rate_burst: self.positive("reflector_rate_burst", l.reflector_rate_burst)?,
            global_max_pps: self.positive("global_max_pps", l.global_max_pps)?,
            workers: self.positive("workers", l.workers)?,
            transport,
            ipv6_dest_opt_len,
            per_packet: l.per_packet.unwrap_or(false),
            output_format: l.output_format.unwrap_or_default(),
            report_interval,
            log_format: l.log_format.unwrap_or_default(),
            log_level,
            list_tlvs,
            metrics: l.metrics.unwrap_or(false),
            metrics_addr,
            snmp: l.snmp.unwrap_or(false),
            snmp_socket: l.snmp_socket.clone(),
            hwtstamp: l.hwtstamp.unwrap_or_default(),
            gso: l.gso.unwrap_or_default(),
            histogram: l.histogram.unwrap_or(false),
            plot: l.plot.clone(),
            ssid,
            zero_ssid: l.zero_ssid.unwrap_or_default(),
            tlv_options,
            plugin_settings,
            tlv_codes,
            dscp,
            ecn,
            config_file: self.cli.config.clone(),
        })
    }

    /// The key, by precedence: `--hmac-key` > `--hmac-key-file` >
    /// `STAMP_HMAC_KEY` > `hmac_key_file` from the environment or the file.
    /// `STAMP_HMAC_KEY` beside any `hmac_key_file` is refused as ambiguous.
    fn hmac_key(&self, l: &Layer) -> Result<Option<Vec<u8>>, ConfigError> {
        if self.cli.hmac_key.is_some() && self.cli.hmac_key_file.is_some() {
            return Err(ConfigError::ConflictingKeys {
                first: "--hmac-key".into(),
                second: "--hmac-key-file".into(),
            });
        }
        let key_file_anywhere = self.cli.hmac_key_file.is_some()
            || self.env.has("hmac_key_file")
            || self.file_layer.hmac_key_file.is_some();
        if self.env.has("hmac_key") && key_file_anywhere {
            return Err(ConfigError::ConflictingKeys {
                first: "STAMP_HMAC_KEY".into(),
                second: format!(
                    "hmac_key_file (from {})",
                    origin_of(self.fig, "hmac_key_file")
                ),
            });
        }
        if self.cli.hmac_key_file.is_none() {
            if let Some(hex_key) = &l.hmac_key {
                // From --hmac-key or STAMP_HMAC_KEY (the file may not hold it).
                let origin = origin_of(self.fig, "hmac_key");
                let key =
                    decode_hex(&hex_key.0).map_err(|r| self.invalid("hmac_key", "(hidden)", r))?;
                return check_key_len(key, &origin).map(Some);
            }
        }
        match &l.hmac_key_file {
            Some(path) => {
                let path = self.file_relative("hmac_key_file", path.clone());
                read_key_file_from(&path, &origin_of(self.fig, "hmac_key_file")).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Sender TLV options and reflector plugin settings, keyed by flag name.
    fn tlv_options(&self, l: &Layer) -> Result<(TlvOptions, TlvOptions), ConfigError> {
        let mut tx = TlvOptions::new();
        let mut rx = TlvOptions::new();
        fn put<T: ToString>(o: &mut TlvOptions, key: &str, v: Option<T>) {
            if let Some(v) = v {
                o.set(key, v.to_string());
            }
        }
        let flag = |v: Option<bool>| v.filter(|b| *b);

        put(&mut tx, "padding", l.padding);
        put(&mut tx, "location", flag(l.location));
        put(&mut tx, "timestamp-info", flag(l.timestamp_info));
        put(&mut tx, "cos", flag(l.cos));
        put(&mut tx, "dscp", self.at_most("dscp", l.dscp, 63)?);
        put(&mut tx, "ecn", self.at_most("ecn", l.ecn, 3)?);
        put(&mut tx, "direct-measurement", flag(l.direct_measurement));
        put(&mut tx, "follow-up-telemetry", flag(l.follow_up_telemetry));
        put(
            &mut tx,
            "access-report",
            self.at_most("access_report", l.access_report, 15)?,
        );
        put(&mut tx, "access-return-code", l.access_return_code);
        put(
            &mut tx,
            "dest-node-addr",
            self.ip(
                "dest_node_addr",
                l.dest_node_addr.as_ref().map(|t| t.0.as_str()),
            )?,
        );
        put(
            &mut tx,
            "return-path-cc",
            self.at_most("return_path_cc", l.return_path_cc, 1)?,
        );
        put(
            &mut tx,
            "return-address",
            self.ip(
                "return_address",
                l.return_address.as_ref().map(|t| t.0.as_str()),
            )?,
        );
        if let Some(labels) = &l.return_sr_mpls_labels {
            let mut parsed = Vec::with_capacity(labels.0.len());
            for s in &labels.0 {
                parsed.push(s.parse::<u32>().map_err(|_| {
                    self.invalid(
                        "return_sr_mpls_labels",
                        quoted(s),
                        "expected a label number",
                    )
                })?);
            }
            if parsed.is_empty() {
                return Err(self.invalid(
                    "return_sr_mpls_labels",
                    quoted(""),
                    "expected at least one label",
                ));
            }
            tx.set("return-sr-mpls-labels", join(&parsed));
        }
        if let Some(sids) = &l.return_srv6_sids {
            let mut parsed = Vec::with_capacity(sids.0.len());
            for s in &sids.0 {
                parsed.push(s.parse::<Ipv6Addr>().map_err(|_| {
                    self.invalid("return_srv6_sids", quoted(s), "expected an IPv6 address")
                })?);
            }
            if parsed.is_empty() {
                return Err(self.invalid(
                    "return_srv6_sids",
                    quoted(""),
                    "expected at least one SID",
                ));
            }
            tx.set("return-srv6-sids", join(&parsed));
        }
        put(&mut tx, "micro-session-id", l.micro_session_id);
        put(
            &mut tx,
            "reflected-control-count",
            l.reflected_control_count,
        );
        put(
            &mut tx,
            "reflected-control-length",
            l.reflected_control_length,
        );
        put(
            &mut tx,
            "reflected-control-interval-ns",
            l.reflected_control_interval_ns,
        );
        put(&mut tx, "ber", flag(l.ber));
        if let Some(p) = &l.ber_pattern {
            decode_hex(&p.0).map_err(|r| self.invalid("ber_pattern", quoted(&p.0), r))?;
            tx.set("ber-pattern", p.0.trim());
        }
        put(&mut tx, "ber-padding-size", l.ber_padding_size);
        put(&mut tx, "reflected-fixed-hdr", flag(l.reflected_fixed_hdr));
        put(
            &mut tx,
            "reflected-ipv6-ext-hdr",
            flag(l.reflected_ipv6_ext_hdr),
        );
        put(&mut tx, "ipv6-dest-opt-len", l.ipv6_dest_opt_len);

        put(
            &mut rx,
            "reflector-member-link-id",
            l.reflector_member_link_id,
        );
        put(
            &mut rx,
            "reflected-control-max-count",
            l.reflected_control_max_count,
        );
        put(
            &mut rx,
            "reflected-control-max-size",
            l.reflected_control_max_size,
        );
        put(
            &mut rx,
            "reflected-control-min-interval-ns",
            l.reflected_control_min_interval_ns,
        );

        // Raw plugin options last: they are the escape hatch and win.
        for (k, v) in l.tlv_opt.iter().flatten() {
            tx.set(k.clone(), v.0.clone());
            rx.set(k.clone(), v.0.clone());
        }
        Ok((tx, rx))
    }
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
