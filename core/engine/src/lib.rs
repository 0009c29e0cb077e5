//! stamp-core: the STAMP engine.
//!
//! * [`clock::Clock`], [`transport::Transport`] and [`handler::TlvHandler`]:
//!   the three traits everything else plugs into.
//! * [`registry`]: TLV handler plugins collected with `inventory`.
//! * [`reflector::Reflector`] and [`sender::SenderSession`]: sans-I/O state
//!   machines driven by time passed in (quinn-proto style).
#![forbid(unsafe_code)]

pub mod clock;
pub mod transport;

pub use stamp_wire as wire;
pub mod handler;
pub mod hmac;
pub mod measure;
pub mod provision;
pub mod ratelimit;
pub mod reflector;
pub mod registry;
pub mod sender;
pub mod session;
pub mod stats;
#[cfg(feature = "testing")]
pub mod testing;

#[doc(hidden)]
pub use inventory;

pub use handler::{
    ClockFacts, DecodeContext, ReflectContext, ReplyPlan, RequestContext, SessionCounters,
    Srv6Route, TlvHandler, TlvOptions, TlvReport, TlvSlot, TlvTemplate, TlvVerdict,
};
pub use registry::{Registry, RegistryEntry, RegistryError, TlvPlugin};
