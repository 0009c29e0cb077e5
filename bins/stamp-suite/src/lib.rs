//! The stamp-suite binaries: command line, logging, and the tokio drivers
//! that run the sans-I/O reflector and sender over UDP.
#![forbid(unsafe_code)]

mod app;
mod console;
mod hwts;
#[cfg(feature = "metrics")]
mod metrics;
#[cfg(not(feature = "metrics"))]
#[path = "metrics_off.rs"]
mod metrics;
pub mod pacing;
mod plot;
mod privdrop;
mod reflector_run;
mod report;
mod sender_ext;
mod sender_run;
mod shutdown;
#[cfg(all(feature = "snmp", unix))]
mod snmp;
#[cfg(not(all(feature = "snmp", unix)))]
#[path = "snmp_off.rs"]
mod snmp;

pub use app::main_for;
pub use stamp_config::Role;

// The binaries carry these as dependencies only for their own `main`.
use clap as _;
