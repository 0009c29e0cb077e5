//! Parsing of sender options and plugin settings: every error names the
//! option and its value, as the command line would show it.

use std::net::IpAddr;

use stamp_core::TlvOptions;

/// The unsigned integer under `key`, within `min..=max`. `rule` says what
/// is allowed (`"must be 1..65535"`).
pub(crate) fn bounded(
    opts: &TlvOptions,
    key: &str,
    min: u64,
    max: u64,
    rule: &str,
) -> Result<Option<u64>, String> {
    match opts.get(key) {
        None => Ok(None),
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(Some(v)),
            _ => Err(invalid(key, raw, rule)),
        },
    }
}

/// The boolean under `key`: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.
pub(crate) fn boolean(opts: &TlvOptions, key: &str) -> Result<Option<bool>, String> {
    match opts.get(key) {
        None => Ok(None),
        Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" => Ok(Some(false)),
            _ => Err(invalid(key, raw, "expected true or false")),
        },
    }
}

/// The comma list of IP addresses under `key` (empty items skipped).
pub(crate) fn addresses(opts: &TlvOptions, key: &str) -> Result<Vec<IpAddr>, String> {
    let Some(raw) = opts.get(key) else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpAddr>().map_err(|_| {
                invalid(
                    key,
                    raw,
                    &format!("{s:?}: expected an IPv4 or IPv6 address"),
                )
            })
        })
        .collect()
}

/// The error message for `--key raw`.
pub(crate) fn invalid(key: &str, raw: &str, rule: &str) -> String {
    format!("--{key} {raw}: {rule}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> TlvOptions {
        let mut o = TlvOptions::new();
        for (k, v) in pairs {
            o.set(*k, *v);
        }
        o
    }

    #[test]
    fn bounded_checks_both_ends_and_names_the_option() {
        let o = opts(&[("a", " 5 "), ("b", "0"), ("c", "x")]);
        assert_eq!(bounded(&o, "a", 1, 9, "r"), Ok(Some(5)));
        assert_eq!(
            bounded(&o, "b", 1, 9, "must be 1..9"),
            Err("--b 0: must be 1..9".into())
        );
        assert_eq!(
            bounded(&o, "c", 0, 9, "must be 0..9"),
            Err("--c x: must be 0..9".into())
        );
        assert_eq!(bounded(&o, "none", 0, 9, "r"), Ok(None));
    }

    #[test]
    fn boolean_accepts_the_usual_spellings_only() {
        let o = opts(&[("t", "TRUE"), ("f", "off"), ("x", "maybe")]);
        assert_eq!(boolean(&o, "t"), Ok(Some(true)));
        assert_eq!(boolean(&o, "f"), Ok(Some(false)));
        assert_eq!(
            boolean(&o, "x"),
            Err("--x maybe: expected true or false".into())
        );
        assert_eq!(boolean(&o, "none"), Ok(None));
    }

    #[test]
    fn addresses_parse_a_comma_list() {
        let o = opts(&[("l", "192.0.2.1, 2001:db8::1,"), ("b", "192.0.2.1,x")]);
        assert_eq!(
            addresses(&o, "l").unwrap(),
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert_eq!(
            addresses(&o, "b").unwrap_err(),
            "--b 192.0.2.1,x: \"x\": expected an IPv4 or IPv6 address"
        );
        assert!(addresses(&o, "none").unwrap().is_empty());
    }
}
