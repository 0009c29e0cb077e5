//! Provisioned STAMP sessions (RFC 8972 §3): "Before a test session
//! commences, a Session-Reflector MUST be provisioned with all the elements
//! that identify the STAMP Session. A STAMP Session-Reflector MUST discard
//! non-matching STAMP test packets."
//!
//! A session is identified by its SSID together with the sender's address
//! and port; a provisioned entry names the SSID and, optionally, the
//! sender's address (or prefix) and port. With no entry at all the
//! reflector answers every request (the way implementations deploy by
//! default); with at least one, a request that matches none is dropped and
//! counted ([`crate::reflector::DropReason::NotProvisioned`]). SSID 0 stands
//! for requests without an SSID (base RFC 8762 packets).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// One provisioned session: `SSID`, `SSID@ADDR`, `SSID@ADDR/LEN`,
/// `SSID@ADDR:PORT`, `SSID@[IPV6]:PORT` or `SSID@[IPV6/LEN]:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSpec {
    /// The SSID (0 = a request without one).
    pub ssid: u16,
    /// The sender's address or prefix (address, prefix length); `None` =
    /// any sender.
    pub prefix: Option<(IpAddr, u8)>,
    /// The sender's UDP port; `None` = any.
    pub port: Option<u16>,
}

impl SessionSpec {
    /// Whether a request with `ssid` from `src` belongs to this session.
    #[inline]
    pub fn matches(&self, ssid: u16, src: SocketAddr) -> bool {
        ssid == self.ssid
            && self.port.is_none_or(|p| p == src.port())
            && self
                .prefix
                .is_none_or(|(net, len)| in_prefix(src.ip(), net, len))
    }
}

/// IPv4-mapped IPv6 addresses count as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn in_prefix(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (canonical(ip), net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl FromStr for SessionSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (ssid, rest) = match s.split_once('@') {
            Some((ssid, rest)) => (ssid, Some(rest)),
            None => (s, None),
        };
        let ssid: u16 = ssid
            .trim()
            .parse()
            .map_err(|_| format!("SSID {ssid:?} is not a number from 0 to 65535"))?;
        let Some(rest) = rest else {
            return Ok(SessionSpec {
                ssid,
                prefix: None,
                port: None,
            });
        };
        // [IPV6]:PORT, [IPV6/LEN]:PORT, ADDR:PORT (IPv4), ADDR[/LEN].
        let (addr, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (inner, after) = inner
                .split_once(']')
                .ok_or_else(|| format!("{rest:?}: '[' without ']'"))?;
            let port = match after {
                "" => None,
                p => Some(parse_port(p.strip_prefix(':').ok_or_else(|| {
                    format!("{rest:?}: expected ':PORT' after ']'")
                })?)?),
            };
            (inner, port)
        } else if rest.matches(':').count() == 1 {
            let (a, p) = rest.split_once(':').unwrap_or((rest, ""));
            (a, Some(parse_port(p)?))
        } else {
            (rest, None)
        };
        let (ip, len) = match addr.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (addr, None),
        };
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("{ip:?} is not an IP address"))?;
        let ip = canonical(ip);
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("prefix length {l:?} is not 0 to {max}"))?,
        };
        Ok(SessionSpec {
            ssid,
            prefix: Some((ip, len)),
            port,
        })
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("port {p:?} is not 1 to 65535"))
}

impl fmt::Display for SessionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.ssid)?;
        match (self.prefix, self.port) {
            (None, _) => Ok(()),
            (Some((ip @ IpAddr::V4(_), 32)), None) | (Some((ip @ IpAddr::V6(_), 128)), None) => {
                write!(f, "@{ip}")
            }
            (Some((ip, len)), None) => write!(f, "@{ip}/{len}"),
            (Some((ip @ IpAddr::V4(_), 32)), Some(p)) => write!(f, "@{ip}:{p}"),
            (Some((ip @ IpAddr::V6(_), 128)), Some(p)) => write!(f, "@[{ip}]:{p}"),
            (Some((ip, len)), Some(p)) => write!(f, "@[{ip}/{len}]:{p}"),
        }
    }
}

/// The provisioned sessions of a reflector, by SSID.
#[derive(Debug, Clone, Default)]
pub struct Provisioning {
    by_ssid: HashMap<u16, Vec<SessionSpec>>,
}

impl Provisioning {
    /// A table of `specs`; empty = every request is accepted.
    pub fn new(specs: impl IntoIterator<Item = SessionSpec>) -> Self {
        let mut by_ssid: HashMap<u16, Vec<SessionSpec>> = HashMap::new();
        for s in specs {
            by_ssid.entry(s.ssid).or_default().push(s);
        }
        Provisioning { by_ssid }
    }

    /// No session provisioned: nothing is enforced.
    pub fn is_empty(&self) -> bool {
        self.by_ssid.is_empty()
    }

    /// Whether a request with `ssid` from `src` matches a provisioned
    /// session (always, when none is provisioned). No allocation.
    #[inline]
    pub fn allows(&self, ssid: u16, src: SocketAddr) -> bool {
        if self.by_ssid.is_empty() {
            return true;
        }
        self.by_ssid
            .get(&ssid)
            .is_some_and(|v| v.iter().any(|s| s.matches(ssid, src)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> SessionSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_form_parses_and_prints_back() {
        for s in [
            "5",
            "0@192.0.2.1",
            "7@192.0.2.0/24",
            "7@192.0.2.1:4000",
            "9@2001:db8::1",
            "9@2001:db8::/32",
            "9@[2001:db8::1]:4000",
            "9@[2001:db8::/48]:4000",
        ] {
            assert_eq!(spec(s).to_string(), s);
        }
        assert_eq!(spec(" 5@[2001:db8::1] ").to_string(), "5@2001:db8::1");
        assert_eq!(spec("5@::ffff:192.0.2.1").to_string(), "5@192.0.2.1");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (s, why) in [
            ("", "SSID"),
            ("65536", "SSID"),
            ("x@192.0.2.1", "SSID"),
            ("5@host.example", "not an IP address"),
            ("5@192.0.2.0/33", "prefix length"),
            ("5@2001:db8::/129", "prefix length"),
            ("5@192.0.2.1:0", "port"),
            ("5@192.0.2.1:99999", "port"),
            ("5@[2001:db8::1", "without ']'"),
            ("5@[2001:db8::1]4000", "':PORT'"),
        ] {
            let e = s.parse::<SessionSpec>().unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn matching_takes_ssid_prefix_and_port() {
        let p = Provisioning::new([
            spec("5@192.0.2.0/24"),
            spec("6@[2001:db8::1]:4000"),
            spec("7"),
            spec("0@198.51.100.7"),
        ]);
        assert!(p.allows(5, sa("192.0.2.9:1234")));
        assert!(p.allows(5, sa("[::ffff:192.0.2.9]:1234")), "v4-mapped");
        assert!(!p.allows(5, sa("192.0.3.9:1234")), "outside the prefix");
        assert!(!p.allows(6, sa("192.0.2.9:1234")), "SSID of another sender");
        assert!(p.allows(6, sa("[2001:db8::1]:4000")));
        assert!(!p.allows(6, sa("[2001:db8::1]:4001")), "other port");
        assert!(!p.allows(6, sa("[2001:db8::2]:4000")), "other address");
        assert!(p.allows(7, sa("203.0.113.1:9")), "SSID alone: any sender");
        assert!(
            p.allows(0, sa("198.51.100.7:862")),
            "base packets from one host"
        );
        assert!(!p.allows(0, sa("198.51.100.8:862")));
        assert!(!p.allows(8, sa("192.0.2.9:1234")), "not provisioned");
    }

    #[test]
    fn nothing_provisioned_allows_everything() {
        let p = Provisioning::default();
        assert!(p.is_empty());
        assert!(p.allows(0, sa("192.0.2.1:1")));
        assert!(p.allows(65535, sa("[2001:db8::1]:1")));
    }

    #[test]
    fn zero_length_prefixes_match_their_family_only() {
        let p = Provisioning::new([spec("1@0.0.0.0/0"), spec("2@::/0")]);
        assert!(p.allows(1, sa("203.0.113.1:1")));
        assert!(!p.allows(1, sa("[2001:db8::1]:1")));
        assert!(p.allows(2, sa("[2001:db8::1]:1")));
        assert!(!p.allows(2, sa("203.0.113.1:1")));
    }
}
