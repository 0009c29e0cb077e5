//! Parsing of sender options and plugin settings: every error names the
//! option and its value, as the command line would show it.

use stamp_core::TlvOptions;

/// The unsigned integer under `key`, at most `max`. `rule` says what is
/// allowed (`"DSCP must be 0..63"`).
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

/// The error message for `--key raw`.
pub(crate) fn invalid(key: &str, raw: &str, rule: &str) -> String {
    format!("--{key} {raw}: {rule}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_names_the_option_in_errors() {
        let mut o = TlvOptions::new();
        o.set("dscp", "64");
        assert_eq!(
            bounded(&o, "dscp", 63, "DSCP must be 0..63"),
            Err("--dscp 64: DSCP must be 0..63".into())
        );
        o.set("dscp", "x");
        assert_eq!(
            bounded(&o, "dscp", 63, "DSCP must be 0..63"),
            Err("--dscp x: DSCP must be 0..63".into())
        );
        o.set("dscp", "46");
        assert_eq!(bounded(&o, "dscp", 63, "r"), Ok(Some(46)));
        assert_eq!(bounded(&o, "ecn", 3, "r"), Ok(None));
    }
}
