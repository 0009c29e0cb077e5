//! stamp-config: the configuration shared by `stamp-suite`, `stamp-reflector`
//! and `stamp-sender`.
//!
//! * [`Cli`]: every flag of the command-line contract (`CLI.md`), parsed by
//!   clap; `Cli::command()` also feeds help and man pages.
//! * [`load`]: layers the settings with figment — [`Defaults`] < the
//!   `--config` TOML file < `STAMP_*` environment < the flags actually given —
//!   and resolves them into a validated [`Settings`].
//! * [`ConfigError`]: one line naming the key or flag and where it came from.
//!
//! Config keys are the snake_case of the long flag names (`send_delay`), and
//! environment variables are `STAMP_` + the key in capitals
//! (`STAMP_SEND_DELAY`). A flag that was not given leaves the lower layers
//! alone: the only defaults are those of [`Defaults`].
//!
//! HMAC keys (RFC 8762 §4.2.2) come from `--hmac-key HEX`, `STAMP_HMAC_KEY`
//! (hex) or a key file (`--hmac-key-file` / `hmac_key_file`: hex text, or raw
//! bytes when the content is not valid hex; refused when group or others may
//! access it). A plaintext `hmac_key` in the config file is refused, as is
//! `STAMP_HMAC_KEY` together with a key file. Keys are at least 16 octets.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cli;
mod error;
mod layer;
mod settings;
mod values;

pub use cli::Cli;
pub use error::ConfigError;
pub use layer::Defaults;
pub use settings::{load, read_key_file, Role, Settings, MIN_KEY_LEN};
pub use values::{
    parse_remote, AuthModeArg, ClockSource, Gso, HwTimestamping, LogFormat, OutputFormat,
    RemoteSpec, TlvModeArg, TransportKind, ZeroSsid,
};

#[cfg(test)]
mod tests;
