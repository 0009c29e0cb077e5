//! Stand-ins for [`crate::metrics`] when the `metrics` feature is off: the
//! drivers keep one code path (their `Option` of metrics is always `None`),
//! and `--metrics` is refused with one line.

use std::net::SocketAddr;
use std::sync::Arc;

use stamp_core::reflector::ReflectorStats;
use stamp_core::sender::{PacketRecord, SenderStats};

/// Nothing is rendered.
pub trait Render: Send + Sync + 'static {}

/// A histogram that records nothing.
pub struct Histogram;

impl Histogram {
    /// Does nothing.
    pub fn observe_ns(&self, _ns: i64) {}
}

/// A reflector worker's slot.
pub struct WorkerMetrics {
    /// Per-request processing time.
    pub processing: Histogram,
}

impl WorkerMetrics {
    /// Does nothing.
    pub fn publish(&self, _st: &ReflectorStats, _active: usize, _send_errors: u64, _gso: u64) {}
    /// Never.
    pub fn sessions_wanted(&self) -> bool {
        false
    }
    /// Does nothing.
    pub fn publish_sessions(&self, _table: &stamp_core::session::SessionTable) {}
}

/// No reflector metrics.
pub struct ReflectorMetrics(WorkerMetrics);

impl ReflectorMetrics {
    /// An empty set.
    pub fn new(_workers: usize) -> Arc<Self> {
        Arc::new(ReflectorMetrics(WorkerMetrics {
            processing: Histogram,
        }))
    }
    /// The one empty slot.
    pub fn worker(&self, _id: usize) -> &WorkerMetrics {
        &self.0
    }
}

impl Render for ReflectorMetrics {}

/// A sender target's metrics.
pub struct TargetMetrics;

impl TargetMetrics {
    /// Does nothing.
    pub fn publish(&self, _st: &SenderStats) {}
    /// Does nothing.
    pub fn publish_sent(&self, _sent: u64) {}
    /// Does nothing.
    pub fn observe(&self, _rec: &PacketRecord) {}
}

/// No sender metrics.
pub struct SenderMetrics;

impl SenderMetrics {
    /// An empty set.
    pub fn new(_targets: &[SocketAddr]) -> Arc<Self> {
        Arc::new(SenderMetrics)
    }
    /// An empty target.
    pub fn target(&self, _i: usize) -> Arc<TargetMetrics> {
        Arc::new(TargetMetrics)
    }
}

impl Render for SenderMetrics {}

/// `--metrics` in a build without the feature.
pub async fn start(_addr: SocketAddr, _source: Arc<dyn Render>) -> Result<SocketAddr, String> {
    Err("--metrics: this build has no metrics support (feature `metrics`)".to_string())
}
