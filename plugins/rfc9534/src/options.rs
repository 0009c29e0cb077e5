//! Parsing of sender options and plugin settings: every error names the
//! option and its value, as the command line would show it.

use stamp_core::TlvOptions;

/// The member-link identifier (u16) under `key`.
pub(crate) fn link_id(opts: &TlvOptions, key: &str) -> Result<Option<u16>, String> {
    match opts.get(key) {
        None => Ok(None),
        Some(raw) => raw
            .trim()
            .parse::<u16>()
            .map(Some)
            .map_err(|_| invalid(key, raw, "expected a member-link ID 0..65535")),
    }
}

/// The comma list of `KEY=ID` pairs under `key`, each KEY parsed by `parse`
/// (which says what was expected).
pub(crate) fn id_map<K>(
    opts: &TlvOptions,
    key: &str,
    parse: impl Fn(&str) -> Result<K, &'static str>,
) -> Result<Vec<(K, u16)>, String> {
    let Some(raw) = opts.get(key) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |rule: &str| invalid(key, raw, &format!("{item:?}: {rule}"));
        let (k, id) = item
            .rsplit_once('=')
            .ok_or_else(|| bad("expected KEY=ID"))?;
        let k = parse(k.trim()).map_err(bad)?;
        let id = id
            .trim()
            .parse::<u16>()
            .map_err(|_| bad("expected a member-link ID 0..65535"))?;
        out.push((k, id));
    }
    if out.is_empty() {
        return Err(invalid(key, raw, "expected at least one KEY=ID"));
    }
    Ok(out)
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
    fn link_id_names_the_option_in_errors() {
        let o = opts(&[("a", "7"), ("b", "65536")]);
        assert_eq!(link_id(&o, "a"), Ok(Some(7)));
        assert_eq!(link_id(&o, "none"), Ok(None));
        assert_eq!(
            link_id(&o, "b"),
            Err("--b 65536: expected a member-link ID 0..65535".into())
        );
    }

    #[test]
    fn id_map_parses_pairs_and_names_the_bad_item() {
        let p = |s: &str| s.parse::<u32>().map_err(|_| "expected an interface index");
        let o = opts(&[
            ("m", "2=7, 3 = 8"),
            ("x", "2=7,3"),
            ("y", "q=1"),
            ("e", ","),
        ]);
        assert_eq!(id_map(&o, "m", p).unwrap(), [(2, 7), (3, 8)]);
        assert_eq!(id_map(&o, "none", p).unwrap(), []);
        assert_eq!(
            id_map(&o, "x", p).unwrap_err(),
            "--x 2=7,3: \"3\": expected KEY=ID"
        );
        assert_eq!(
            id_map(&o, "y", p).unwrap_err(),
            "--y q=1: \"q=1\": expected an interface index"
        );
        assert_eq!(
            id_map(&o, "e", p).unwrap_err(),
            "--e ,: expected at least one KEY=ID"
        );
    }
}
