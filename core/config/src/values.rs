//! Value types shared by the flags and the config file: the enumerations with
//! their accepted spellings, remote addresses, and lenient text values (a
//! TOML number or an environment string alike).

use std::fmt;

use clap::ValueEnum;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// `-K/--clock-source`: timestamp format (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClockSource {
    /// NTP 64-bit timestamps (the default, RFC 8762 §4.2.1).
    #[value(name = "NTP")]
    Ntp,
    /// IEEE 1588v2 (PTP) truncated timestamps.
    #[value(name = "PTP")]
    Ptp,
}

impl From<ClockSource> for stamp_wire::TimestampFormat {
    fn from(c: ClockSource) -> Self {
        match c {
            ClockSource::Ntp => stamp_wire::TimestampFormat::Ntp,
            ClockSource::Ptp => stamp_wire::TimestampFormat::Ptp,
        }
    }
}

/// `-A/--auth-mode`: `A` (authenticated) or `O` (open); the long words are
/// accepted too, in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthModeArg {
    /// Authenticated mode (RFC 8762 §4.2.2): HMAC over the base packet.
    #[value(name = "A", alias = "authenticated")]
    Authenticated,
    /// Unauthenticated ("open") mode.
    #[value(name = "O", alias = "open")]
    Open,
}

impl From<AuthModeArg> for stamp_wire::AuthMode {
    fn from(a: AuthModeArg) -> Self {
        match a {
            AuthModeArg::Authenticated => stamp_wire::AuthMode::Authenticated,
            AuthModeArg::Open => stamp_wire::AuthMode::Open,
        }
    }
}

/// `--tlv-mode`: what the reflector does with the TLVs of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlvModeArg {
    /// Process them as RFC 8972 says and echo them.
    Echo,
    /// Strip them, keeping the request's length.
    Ignore,
}

impl From<TlvModeArg> for stamp_core::reflector::TlvMode {
    fn from(t: TlvModeArg) -> Self {
        match t {
            TlvModeArg::Echo => stamp_core::reflector::TlvMode::Echo,
            TlvModeArg::Ignore => stamp_core::reflector::TlvMode::Ignore,
        }
    }
}

/// `--output-format`: how results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text; the summary keeps the layout scripts parse.
    #[default]
    Text,
    /// One JSON object per record.
    Json,
    /// Comma-separated values with a header line.
    Csv,
}

/// `--log-format`: how log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Plain text.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `--hwtstamp`: kernel / NIC hardware timestamping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum HwTimestamping {
    /// Use hardware timestamps where the interface offers them, else software.
    #[default]
    Auto,
    /// Require hardware timestamps: failing to enable them is an error.
    On,
    /// Never use hardware timestamps.
    Off,
}

/// `--gso`: UDP segmentation offload for the reflector's replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Gso {
    /// Consecutive replies to one sender with the same size leave as one
    /// UDP_SEGMENT send (Linux); off by itself where the kernel refuses it.
    #[default]
    On,
    /// One datagram per message.
    Off,
}

/// `--zero-ssid`: what the sender does when replies come back with SSID 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ZeroSsid {
    /// Keep measuring; the summary counts such replies.
    #[default]
    Continue,
    /// Stop sending at the first one, wait for the replies in flight, report.
    Stop,
}

/// `--transport`: how the reflector receives and sends test packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum TransportKind {
    /// A UDP socket (the default): no access to the received IP header.
    #[default]
    Udp,
    /// Whole IP packets from a raw (AF_PACKET) socket, replies from a bound
    /// UDP socket on the same port: the received IPv4 header and IPv6
    /// extension headers are available to TLVs. Linux, CAP_NET_RAW, and a
    /// binary built with the `ttl-pnet` feature.
    Raw,
}

fn possible_names<T: ValueEnum>() -> String {
    let names: Vec<String> = T::value_variants()
        .iter()
        .filter_map(|v| v.to_possible_value())
        .map(|p| p.get_name().to_string())
        .collect();
    names.join(", ")
}

/// Serialize as the flag spelling and deserialize (case-insensitively, with
/// aliases) from text, so a config file and `STAMP_*` take what the flag takes.
macro_rules! serde_via_value_enum {
    ($($t:ty),* $(,)?) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let pv = self.to_possible_value().expect("no variant is skipped");
                s.serialize_str(pv.get_name())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = Text::deserialize(d)?;
                <$t as ValueEnum>::from_str(text.0.trim(), true)
                    .map_err(|_| de::Error::custom(format!("expected one of {}", possible_names::<$t>())))
            }
        }
    )*};
}

serde_via_value_enum!(
    ClockSource,
    AuthModeArg,
    TlvModeArg,
    OutputFormat,
    LogFormat,
    HwTimestamping,
    Gso,
    ZeroSsid,
    TransportKind
);

/// One `-r/--remote-addr`: a host name or address and an optional port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteSpec {
    /// Host name or IP address literal, without brackets.
    pub host: String,
    /// The port given with the address; `None` means `--remote-port`.
    pub port: Option<u16>,
}

impl fmt::Display for RemoteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bracket = self.host.contains(':');
        match (bracket, self.port) {
            (true, Some(p)) => write!(f, "[{}]:{p}", self.host),
            (false, Some(p)) => write!(f, "{}:{p}", self.host),
            (_, None) => f.write_str(&self.host),
        }
    }
}

/// Parse `ADDR`, `HOST`, `ADDR:PORT`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
/// A bare IPv6 literal (`2001:db8::1`) is an address without a port.
pub fn parse_remote(s: &str) -> Result<RemoteSpec, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty address".to_string());
    }
    let port_of = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(0) => Err("port 0 is not a valid destination".to_string()),
            Ok(p) => Ok(p),
            Err(_) => Err(format!("invalid port {p:?}")),
        }
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("missing ']' in {s:?}"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{host:?} is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => {
                Some(port_of(after.strip_prefix(':').ok_or_else(|| {
                    format!("expected ':PORT' after ']' in {s:?}")
                })?)?)
            }
        };
        return Ok(RemoteSpec {
            host: host.to_string(),
            port,
        });
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(RemoteSpec {
            host: s.to_string(),
            port: None,
        });
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((_, _)) if s.matches(':').count() > 1 => {
            return Err(format!(
                "{s:?} is not an address: write IPv6 with a port as [ADDR]:PORT"
            ));
        }
        Some((h, p)) => (h, Some(port_of(p)?)),
        None => (s, None),
    };
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '[' || c == ']')
    {
        return Err(format!("{host:?} is not a host name or address"));
    }
    Ok(RemoteSpec {
        host: host.to_string(),
        port,
    })
}

/// Text as given: a string, or a number or boolean written without quotes
/// in TOML, kept as its text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub(crate) struct Text(pub String);

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = Text;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
        Ok(Text(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

/// A list: a TOML array, or one string with comma-separated items (the form
/// an environment variable can carry).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub(crate) struct TextList(pub Vec<String>);

impl TextList {
    fn from_text(s: &str) -> Self {
        TextList(
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
        )
    }
}

struct TextListVisitor;

impl<'de> Visitor<'de> for TextListVisitor {
    type Value = TextList;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list or a comma-separated string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<TextList, E> {
        Ok(TextList::from_text(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<TextList, E> {
        Ok(TextList(vec![v.to_string()]))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<TextList, E> {
        Ok(TextList(vec![v.to_string()]))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TextList, A::Error> {
        let mut out = Vec::new();
        while let Some(Text(item)) = seq.next_element::<Text>()? {
            out.push(item.trim().to_string());
        }
        Ok(TextList(out))
    }
}

impl<'de> Deserialize<'de> for TextList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextListVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(host: &str, port: Option<u16>) -> RemoteSpec {
        RemoteSpec {
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn remote_ipv4_with_and_without_port() {
        assert_eq!(parse_remote("192.0.2.1"), Ok(spec("192.0.2.1", None)));
        assert_eq!(
            parse_remote("192.0.2.1:8620"),
            Ok(spec("192.0.2.1", Some(8620)))
        );
    }

    #[test]
    fn remote_ipv6_bare_and_bracketed() {
        assert_eq!(parse_remote("2001:db8::1"), Ok(spec("2001:db8::1", None)));
        assert_eq!(parse_remote("[2001:db8::1]"), Ok(spec("2001:db8::1", None)));
        assert_eq!(parse_remote("[::1]:862"), Ok(spec("::1", Some(862))));
    }

    #[test]
    fn remote_host_name_with_port() {
        assert_eq!(
            parse_remote("reflector.example:4000"),
            Ok(spec("reflector.example", Some(4000)))
        );
        assert_eq!(parse_remote("localhost"), Ok(spec("localhost", None)));
    }

    #[test]
    fn remote_rejects_bad_forms() {
        for bad in [
            "",
            "host:",
            "host:0",
            "host:70000",
            "[::1",
            "[::1]x",
            "[nothost]:1",
            "a:b:c",
            "two words",
        ] {
            assert!(parse_remote(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn remote_display_round_trips() {
        for s in ["192.0.2.1", "192.0.2.1:9", "[::1]:862", "::1", "host:4000"] {
            let r = parse_remote(s).unwrap();
            assert_eq!(parse_remote(&r.to_string()), Ok(r));
        }
    }

    #[test]
    fn enums_accept_flag_spellings_in_any_case() {
        assert_eq!(ClockSource::from_str("ptp", true), Ok(ClockSource::Ptp));
        assert_eq!(
            AuthModeArg::from_str("authenticated", true),
            Ok(AuthModeArg::Authenticated)
        );
        assert_eq!(AuthModeArg::from_str("o", true), Ok(AuthModeArg::Open));
        assert!(AuthModeArg::from_str("x", true).is_err());
    }
}
