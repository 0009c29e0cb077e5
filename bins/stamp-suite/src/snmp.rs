//! The AgentX SNMP sub-agent (feature `snmp`, `--snmp --snmp-socket`):
//! serves doc/STAMP-SUITE-MIB.txt from the counters the Prometheus
//! endpoint reads ([`crate::metrics`]), on its own thread (`stamp-snmp`),
//! so the packet path pays nothing but the relaxed stores it already makes
//! (and, while a walk reads the session table, one bounded copy of the
//! session rows per worker and request).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stamp_config::Settings;
use stamp_core::reflector::{DropReason, TlvMode};
use stamp_snmp::{AgentConfig, Oid, Value};
use stamp_wire::AuthMode;

use crate::metrics::{ReflectorMetrics, SenderMetrics};

/// Where the MIB sits: `stampSuiteMIB`, { enterprises 32473 }, the
/// documentation Private Enterprise Number (RFC 5612). A placeholder: change
/// it together with the MODULE-IDENTITY of doc/STAMP-SUITE-MIB.txt.
pub const STAMP_MIB_ROOT: &[u32] = &[1, 3, 6, 1, 4, 1, 32473];

/// Whether `--snmp` works in this build.
pub const AVAILABLE: bool = true;

/// The stand-in's refusal (never said by this build).
pub const NO_SNMP: &str = "--snmp: unavailable";

/// net-snmp's default AgentX socket.
pub const DEFAULT_SOCKET: &str = "/var/agentx/master";

/// How long a walk waits for the workers' session rows.
const SESSION_WAIT: Duration = Duration::from_millis(250);

/// `root.rest...`
fn oid(rest: &[u32]) -> Oid {
    let mut o = STAMP_MIB_ROOT.to_vec();
    o.extend_from_slice(rest);
    o
}

fn socket(s: &Settings) -> PathBuf {
    s.snmp_socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

fn truth(b: bool) -> Value {
    Value::Integer(if b { 1 } else { 2 })
}

fn auth(m: AuthMode) -> Value {
    Value::Integer(match m {
        AuthMode::Open => 1,
        AuthMode::Authenticated => 2,
    })
}

fn u32c(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn start(
    s: &Settings,
    subtree: Oid,
    descr: &str,
    provider: impl stamp_snmp::Provider,
) -> Result<(), String> {
    let path = socket(s);
    let config = AgentConfig::new(path.clone(), STAMP_MIB_ROOT.to_vec(), descr, vec![subtree]);
    stamp_snmp::spawn(config, provider)
        .map_err(|e| format!("--snmp: cannot start the AgentX sub-agent: {e}"))?;
    tracing::info!(socket = %path.display(), "AgentX sub-agent started");
    Ok(())
}

/// Serve `stampReflector` (root.1.1).
pub fn start_reflector(
    s: &Settings,
    port: u16,
    workers: usize,
    m: Arc<ReflectorMetrics>,
) -> Result<(), String> {
    let config: Vec<(Oid, Value)> = vec![
        (oid(&[1, 1, 1, 1, 0]), Value::Gauge32(u32::from(port))),
        (oid(&[1, 1, 1, 2, 0]), auth(s.auth_mode)),
        (oid(&[1, 1, 1, 3, 0]), truth(s.stateful_reflector)),
        (
            oid(&[1, 1, 1, 4, 0]),
            Value::Integer(match s.tlv_mode {
                TlvMode::Echo => 1,
                TlvMode::Ignore => 2,
            }),
        ),
        (
            oid(&[1, 1, 1, 5, 0]),
            Value::Gauge32(u32c(s.max_sessions as u64)),
        ),
        (
            oid(&[1, 1, 1, 6, 0]),
            Value::Gauge32(u32c(s.session_timeout.as_secs())),
        ),
        (
            oid(&[1, 1, 1, 7, 0]),
            Value::Gauge32(u32c(s.max_pps.unwrap_or(0))),
        ),
        (
            oid(&[1, 1, 1, 8, 0]),
            Value::Gauge32(u32c(s.reflector_rate_burst.unwrap_or(0))),
        ),
        (oid(&[1, 1, 1, 9, 0]), Value::Gauge32(u32c(workers as u64))),
        (
            oid(&[1, 1, 1, 10, 0]),
            Value::Gauge32(u32c(s.global_max_pps.unwrap_or(0))),
        ),
    ];
    let stateful = s.stateful_reflector;
    let provider = move || {
        let mut out = config.clone();
        out.extend(reflector_counters(&m));
        if stateful {
            out.extend(session_table(&m));
        }
        out
    };
    start(s, oid(&[1, 1]), "stamp-suite Session-Reflector", provider)
}

fn reflector_counters(m: &ReflectorMetrics) -> Vec<(Oid, Value)> {
    let t = m.totals();
    let c = |i: u32, v: u64| (oid(&[1, 1, 2, i, 0]), Value::Counter64(v));
    vec![
        c(1, t.received),
        c(2, t.reflected),
        c(3, t.dropped(DropReason::Truncated)),
        c(4, t.dropped(DropReason::AuthFailed)),
        c(5, t.dropped(DropReason::SessionLimit)),
        c(6, t.dropped(DropReason::TlvDiscard)),
        c(7, t.dropped(DropReason::Suppressed)),
        c(8, t.dropped(DropReason::RateLimited)),
        c(9, t.hmac_failures()),
        c(10, t.tlv_unrecognized),
        c(11, t.tlv_malformed),
        c(12, t.tlv_integrity),
        c(13, t.tlv_conformance),
        (
            oid(&[1, 1, 2, 14, 0]),
            Value::Gauge32(u32c(t.sessions_active)),
        ),
        c(15, t.sessions_created),
        c(16, t.sessions_expired),
        c(17, t.send_errors),
        c(18, t.dropped(DropReason::GlobalRateLimited)),
        c(19, t.sessions_evicted),
        c(20, t.dropped(DropReason::NotProvisioned)),
    ]
}

/// stampReflSessionTable (root.1.1.3.1.column.index).
/// stampReflSessionIndex of a session: a fixed hash (FNV-1a) of its
/// sender's address, port and SSID, in 1..=2^32-1, so a session keeps its
/// row from walk to walk and across restarts of the master or the
/// reflector; the rare collision takes the next free number (in address
/// order, so the same set of sessions always gets the same numbers).
fn row_index(r: &crate::metrics::SessionRow) -> u32 {
    let ip = match r.peer.ip() {
        std::net::IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(a) => a.octets(),
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ip
        .iter()
        .chain(&r.peer.port().to_be_bytes())
        .chain(&r.ssid.to_be_bytes())
    {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % u64::from(u32::MAX)) as u32 + 1
}

fn session_table(m: &ReflectorMetrics) -> Vec<(Oid, Value)> {
    session_rows_table(m.session_rows(SESSION_WAIT), Instant::now())
}

/// The stampReflSessionTable instances of `rows` as of `now`.
fn session_rows_table(
    mut rows: Vec<crate::metrics::SessionRow>,
    now: Instant,
) -> Vec<(Oid, Value)> {
    rows.sort_by_key(|r| (r.peer.ip(), r.peer.port(), r.ssid));
    let mut out = Vec::with_capacity(rows.len() * 6);
    let mut used = std::collections::HashSet::with_capacity(rows.len());
    for r in &rows {
        let mut idx = row_index(r);
        while !used.insert(idx) {
            idx = idx % u32::MAX + 1;
        }
        let col = |c: u32, v: Value| (oid(&[1, 1, 3, 1, c, idx]), v);
        let idle = now.saturating_duration_since(r.last_seen);
        out.push(col(
            2,
            Value::OctetString(r.peer.ip().to_string().into_bytes()),
        ));
        out.push(col(3, Value::Gauge32(u32::from(r.peer.port()))));
        out.push(col(4, Value::Gauge32(u32::from(r.ssid))));
        out.push(col(5, Value::Counter64(r.rx)));
        out.push(col(6, Value::Counter64(r.tx)));
        out.push(col(
            7,
            Value::TimeTicks(u32c((idle.as_millis() / 10) as u64)),
        ));
    }
    out
}

/// Serve `stampSender` (root.1.2).
pub fn start_sender(
    s: &Settings,
    targets: &[SocketAddr],
    m: Arc<SenderMetrics>,
) -> Result<(), String> {
    let mut fixed: Vec<(Oid, Value)> = vec![
        (oid(&[1, 2, 1, 1, 0]), Value::Gauge32(u32c(s.count))),
        (
            oid(&[1, 2, 1, 2, 0]),
            Value::Gauge32(u32c(s.send_delay.as_micros() as u64)),
        ),
        (oid(&[1, 2, 1, 3, 0]), auth(s.auth_mode)),
        (oid(&[1, 2, 1, 4, 0]), Value::Gauge32(u32::from(s.ssid))),
        (
            oid(&[1, 2, 1, 5, 0]),
            Value::Gauge32(u32c(s.timeout.as_millis() as u64)),
        ),
    ];
    for (i, t) in targets.iter().enumerate() {
        let idx = u32c(i as u64 + 1);
        fixed.push((
            oid(&[1, 2, 2, 1, 2, idx]),
            Value::OctetString(t.ip().to_string().into_bytes()),
        ));
        fixed.push((
            oid(&[1, 2, 2, 1, 3, idx]),
            Value::Gauge32(u32::from(t.port())),
        ));
    }
    let provider = move || {
        let mut out = fixed.clone();
        for (i, t) in m.totals().iter().enumerate() {
            let idx = u32c(i as u64 + 1);
            let col = |c: u32, v: Value| (oid(&[1, 2, 2, 1, c, idx]), v);
            let us = |ns: u64| Value::Gauge32(u32c(ns / 1_000));
            out.push(col(4, Value::Counter64(t.sent)));
            out.push(col(5, Value::Counter64(t.received)));
            out.push(col(6, Value::Counter64(t.lost)));
            out.push(col(7, Value::Counter64(t.duplicates)));
            out.push(col(8, us(t.rtt_min_ns)));
            out.push(col(9, us(t.rtt_avg_ns)));
            out.push(col(10, us(t.rtt_max_ns)));
        }
        out
    };
    start(s, oid(&[1, 2]), "stamp-suite Session-Sender", provider)
}

#[cfg(test)]
mod tests {
    use super::{oid, session_rows_table};
    use crate::metrics::SessionRow;
    use stamp_snmp::Value;
    use std::time::Instant;

    fn row(peer: &str, ssid: u16, now: Instant) -> SessionRow {
        SessionRow {
            peer: peer.parse().unwrap(),
            ssid,
            rx: 1,
            tx: 1,
            last_seen: now,
        }
    }

    /// Row index -> SSID column, from the table's SSID column (4).
    fn index_of(table: &[(stamp_snmp::Oid, Value)], ssid: u16) -> u32 {
        let prefix = oid(&[1, 1, 3, 1, 4]);
        table
            .iter()
            .find(|(o, v)| o.starts_with(&prefix) && *v == Value::Gauge32(u32::from(ssid)))
            .map(|(o, _)| *o.last().unwrap())
            .unwrap()
    }

    #[test]
    fn a_session_keeps_its_row_when_others_come_and_go() {
        let now = Instant::now();
        let before = session_rows_table(
            vec![
                row("192.0.2.1:40000", 7, now),
                row("[2001:db8::1]:5000", 9, now),
            ],
            now,
        );
        // A new session that sorts first, and one of the old ones gone.
        let after = session_rows_table(
            vec![row("192.0.2.1:1", 3, now), row("192.0.2.1:40000", 7, now)],
            now,
        );
        assert_eq!(index_of(&before, 7), index_of(&after, 7));
        assert_ne!(index_of(&after, 3), index_of(&after, 7));
        // Six columns per row, every index in 1..=2^32-1.
        assert_eq!(after.len(), 12);
        assert!(after.iter().all(|(o, _)| *o.last().unwrap() >= 1));
    }
}
