//! AgentX (RFC 2741) SNMP sub-agent for stamp-suite.
//!
//! * [`pdu`]: the PDU codec (header, OIDs, octet strings, varbinds, search
//!   ranges; both byte orders in, network byte order out).
//! * [`mib`]: a read-only MIB view and the Get / GetNext / GetBulk lookups.
//! * [`agent`]: the session with the master agent (Open, Register, answer,
//!   Ping, Close) on its own thread, reconnecting with backoff.
//!
//! Written here rather than taken from crates.io: the one Rust AgentX crate
//! (`agentx`, 0.1.x) has not had a release since 2023 and covers only the
//! PDU codec; the session handling, reconnection and MIB walking this crate
//! is mostly about would still be ours (doc/architecture.md).
#![cfg(unix)]
#![forbid(unsafe_code)]

pub mod agent;
pub mod mib;
pub mod pdu;

pub use agent::{dotted, spawn, AgentConfig, Provider};
pub use mib::View;
pub use pdu::{Oid, Value};
