//! The one error type of configuration loading. Its `Display` is a single
//! line that says what was wrong and where it came from (a flag, a `STAMP_*`
//! variable or the config file), so a binary prints it and exits non-zero.

use std::path::PathBuf;

use figment::error::Kind;
use figment::value::Value;
use figment::Figment;

/// Why the configuration could not be loaded. Every message is one line that
/// names the key or flag and its source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `--config` names a file that cannot be read or parsed.
    #[error("cannot read config file {}: {reason}", path.display())]
    ConfigFile {
        /// The file given with `--config`.
        path: PathBuf,
        /// What went wrong, on one line.
        reason: String,
    },
    /// The config file holds a key no flag corresponds to.
    #[error("unknown key {key:?} in {origin}")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where it was found (the file's path).
        origin: String,
    },
    /// A value that does not parse or is out of range.
    #[error("invalid value {value} for {key} (from {origin}): {reason}")]
    InvalidValue {
        /// The config key (snake_case of the long flag name).
        key: String,
        /// The value as given, quoted if it is text.
        value: String,
        /// Where the value came from: `--flag`, `STAMP_KEY`, the file's path
        /// or `defaults`.
        origin: String,
        /// What was expected.
        reason: String,
    },
    /// The config file contains a plaintext `hmac_key`.
    #[error("hmac_key must not be stored in the config file; use hmac_key_file or STAMP_HMAC_KEY (in {})", path.display())]
    KeyInConfigFile {
        /// The config file.
        path: PathBuf,
    },
    /// `STAMP_HMAC_KEY` and `hmac_key_file` (or both `--hmac-key` and
    /// `--hmac-key-file`) name a key at once.
    #[error("two HMAC keys given: {first} and {second}; use only one")]
    ConflictingKeys {
        /// One source, e.g. `STAMP_HMAC_KEY`.
        first: String,
        /// The other, e.g. `hmac_key_file (from /etc/stamp.toml)`.
        second: String,
    },
    /// A key shorter than 16 octets.
    #[error("HMAC key from {origin} is {len} octets; at least 16 are required")]
    KeyTooShort {
        /// Where the key came from.
        origin: String,
        /// Its length in octets.
        len: usize,
    },
    /// A key file that group or others may read.
    #[error("key file {} is accessible by group or others (mode {mode:03o}); run chmod 600 on it", path.display())]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file (or key directory) that cannot be read.
    #[error("cannot read {} (from {origin}): {reason}", path.display())]
    KeyFile {
        /// The file or directory.
        path: PathBuf,
        /// Where its name came from.
        origin: String,
        /// The I/O error, on one line.
        reason: String,
    },
    /// Authenticated mode without any key source.
    #[error("authenticated mode (auth_mode A) needs a key: give --hmac-key-file, STAMP_HMAC_KEY, --hmac-key or --hmac-key-dir")]
    MissingKey,
    /// A sender without a reflector to talk to.
    #[error("no --remote-addr given: a Session-Sender needs at least one reflector address")]
    NoRemote,
    /// Settings that contradict each other.
    #[error("{0}")]
    Conflict(String),
}

/// Where `key`'s winning value in `fig` came from, as a user reads it:
/// `--count`, `STAMP_COUNT`, `/etc/stamp.toml` or `defaults`.
pub(crate) fn origin_of(fig: &Figment, key: &str) -> String {
    let top = key.split('.').next().unwrap_or(key);
    match fig.find_metadata(top) {
        Some(md) => origin_from_metadata(md, top),
        None => "defaults".to_string(),
    }
}

fn origin_from_metadata(md: &figment::Metadata, key: &str) -> String {
    if let Some(path) = md.source.as_ref().and_then(|s| s.file_path()) {
        return path.display().to_string();
    }
    md.interpolate(&figment::Profile::Default, &[key])
}

/// A value as the user wrote it: text quoted, numbers and booleans bare.
pub(crate) fn show_value(v: &Value) -> String {
    match v {
        Value::String(_, s) => format!("{s:?}"),
        Value::Char(_, c) => format!("{:?}", c.to_string()),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => match n.to_f64() {
            Some(f) if n.to_i128().is_none() && n.to_u128().is_none() => f.to_string(),
            _ => n.to_i128().map(|i| i.to_string()).unwrap_or_default(),
        },
        Value::Empty(..) => "(empty)".to_string(),
        Value::Array(_, items) => {
            let parts: Vec<String> = items.iter().map(show_value).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Dict(..) => "(table)".to_string(),
    }
}

/// Serde's names for primitive types, as a user reads them.
fn plain_type(expected: &str) -> String {
    let range = |max: u128| format!("a whole number 0..={max}");
    match expected {
        "u8" => range(u8::MAX.into()),
        "u16" => range(u16::MAX.into()),
        "u32" => range(u32::MAX.into()),
        "u64" | "usize" => "a whole number 0 or more".to_string(),
        "f64" | "f32" => "a number".to_string(),
        "a boolean" | "bool" => "true or false".to_string(),
        other => other.to_string(),
    }
}

/// Squeeze a multi-line message (a TOML parse error with its source excerpt)
/// into one line: its first line and its last non-empty one.
pub(crate) fn one_line(msg: &str) -> String {
    let lines: Vec<&str> = msg
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        [only] => (*only).to_string(),
        [first, .., last] => format!("{}: {}", first.trim_end_matches(':'), last),
    }
}

/// Turn a figment extraction error into one line. `fig` is the figment the
/// error came from, to show the offending value and name its source.
pub(crate) fn from_figment(err: figment::Error, fig: &Figment) -> ConfigError {
    let e = err
        .into_iter()
        .next()
        .expect("a figment error holds at least one error");
    let file = e
        .metadata
        .as_ref()
        .and_then(|md| md.source.as_ref())
        .and_then(|s| s.file_path())
        .map(|p| p.to_path_buf());
    let key = e.path.join(".");
    match &e.kind {
        Kind::UnknownField(name, _) => {
            // figment puts the unknown key at the end of the path already.
            let key = match e.path.last() {
                Some(last) if last == name => key,
                Some(_) => format!("{key}.{name}"),
                None => name.clone(),
            };
            let origin = match (&file, &e.metadata) {
                (Some(p), _) => p.display().to_string(),
                (None, Some(md)) => md.name.to_string(),
                (None, None) => "the configuration".to_string(),
            };
            ConfigError::UnknownKey { key, origin }
        }
        // An error of the provider itself, such as TOML that does not parse.
        Kind::Message(m) if key.is_empty() => match file {
            Some(path) => ConfigError::ConfigFile {
                path,
                reason: one_line(m),
            },
            None => ConfigError::Conflict(one_line(m)),
        },
        kind => {
            let value = match (fig.find_value(&key), kind) {
                (Ok(v), _) => show_value(&v),
                (Err(_), Kind::InvalidType(actual, _) | Kind::InvalidValue(actual, _)) => {
                    actual.to_string()
                }
                (Err(_), _) => "(unknown)".to_string(),
            };
            let origin = match &e.metadata {
                Some(md) => origin_from_metadata(md, &key),
                None => origin_of(fig, &key),
            };
            let reason = match kind {
                Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => {
                    format!("expected {}", plain_type(expected))
                }
                Kind::Message(m) => one_line(m),
                other => one_line(&other.to_string()),
            };
            ConfigError::InvalidValue {
                key,
                value,
                origin,
                reason,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_keeps_the_first_and_last_lines() {
        let msg = "TOML parse error at line 1, column 7\n  |\n1 | count = \n  |       ^\nstring values must be quoted\n";
        assert_eq!(
            one_line(msg),
            "TOML parse error at line 1, column 7: string values must be quoted"
        );
        assert_eq!(one_line("plain"), "plain");
    }

    #[test]
    fn every_message_is_one_line() {
        let errs = [
            ConfigError::MissingKey,
            ConfigError::NoRemote,
            ConfigError::KeyTooShort {
                origin: "--hmac-key".into(),
                len: 4,
            },
            ConfigError::KeyFilePermissions {
                path: "/k".into(),
                mode: 0o644,
            },
        ];
        for e in errs {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        let e = ConfigError::KeyFilePermissions {
            path: "/k".into(),
            mode: 0o644,
        };
        assert!(e.to_string().contains("mode 644"), "{e}");
    }
}
