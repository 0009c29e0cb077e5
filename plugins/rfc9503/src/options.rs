//! Parsing of sender options and plugin settings: every error names the
//! option and its value, as the command line would show it.

use std::net::IpAddr;

use stamp_core::TlvOptions;

/// The unsigned integer under `key`, at most `max`. `rule` says what is
/// allowed (`"Control Code must be 0 or 1"`).
pub(crate) fn bounded(
    opts: &TlvOptions,
    key: &str,
    max: u32,
    rule: &str,
) -> Result<Option<u32>, String> {
    match opts.get(key) {
        None => Ok(None),
        Some(raw) => match raw.trim().parse::<u32>() {
            Ok(v) if v <= max => Ok(Some(v)),
            _ => Err(invalid(key, raw, rule)),
        },
    }
}

/// The IP address under `key`.
pub(crate) fn ip(opts: &TlvOptions, key: &str) -> Result<Option<IpAddr>, String> {
    match opts.get(key) {
        None => Ok(None),
        Some(raw) => raw
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| invalid(key, raw, "expected an IPv4 or IPv6 address")),
    }
}

/// The comma list under `key`, each item parsed by `parse` (which says what
/// was expected); an empty list is refused.
pub(crate) fn list<T>(
    opts: &TlvOptions,
    key: &str,
    parse: impl Fn(&str) -> Result<T, &'static str>,
) -> Result<Option<Vec<T>>, String> {
    let Some(raw) = opts.get(key) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        out.push(parse(item).map_err(|rule| invalid(key, raw, &format!("{item:?}: {rule}")))?);
    }
    if out.is_empty() {
        return Err(invalid(key, raw, "expected at least one item"));
    }
    Ok(Some(out))
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
    fn bounded_names_the_option_in_errors() {
        let o = opts(&[("return-path-cc", "2")]);
        assert_eq!(
            bounded(&o, "return-path-cc", 1, "must be 0 or 1"),
            Err("--return-path-cc 2: must be 0 or 1".into())
        );
        assert_eq!(bounded(&o, "absent", 1, "r"), Ok(None));
    }

    #[test]
    fn ip_parses_both_families_and_names_the_option() {
        let o = opts(&[("a", "192.0.2.1"), ("b", " 2001:db8::1 "), ("c", "x")]);
        assert_eq!(ip(&o, "a").unwrap(), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(ip(&o, "b").unwrap(), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(
            ip(&o, "c").unwrap_err(),
            "--c x: expected an IPv4 or IPv6 address"
        );
    }

    #[test]
    fn list_parses_items_and_refuses_empty_or_bad_ones() {
        let p = |s: &str| s.parse::<u8>().map_err(|_| "expected a number");
        let o = opts(&[("l", "1, 2,3"), ("e", " , "), ("b", "1,x")]);
        assert_eq!(list(&o, "l", p).unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(
            list(&o, "e", p).unwrap_err(),
            "--e  , : expected at least one item"
        );
        assert_eq!(
            list(&o, "b", p).unwrap_err(),
            "--b 1,x: \"x\": expected a number"
        );
        assert_eq!(list(&o, "none", p).unwrap(), None);
    }
}
