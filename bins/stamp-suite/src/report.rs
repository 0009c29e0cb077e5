//! Sender output: per-packet lines (`-R`) and summaries, in text, JSON and
//! CSV. The text summary starts with the layout scripts already parse
//! (`--- STAMP Statistics ---` … `Avg RTT: X ms`), then adds lines.

use std::io::Write;
use std::net::SocketAddr;

use serde_json::{json, Value};
use stamp_config::OutputFormat;
use stamp_core::clock::UnixNanos;
use stamp_core::sender::{PacketRecord, SenderStats};
use stamp_core::stats::DelaySummary;

/// CLOCK_REALTIME now.
pub fn realtime_now() -> UnixNanos {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    UnixNanos(d.as_nanos() as u64)
}

fn ms(ns: i64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

fn secs(t: UnixNanos) -> String {
    format!("{}.{:09}", t.0 / 1_000_000_000, t.0 % 1_000_000_000)
}

/// Column names of the CSV per-packet rows.
pub const CSV_HEADER: &str = "target,seq,status,reflector_seq,rtt_ms,forward_ms,backward_ms,residence_ms,sender_ttl,reply_ttl,reply_tos,t1,t2,t3,t4,tlvs";

/// Print one answered packet.
pub fn packet(
    out: &mut impl Write,
    fmt: OutputFormat,
    target: SocketAddr,
    multi: bool,
    r: &PacketRecord,
) {
    let _ = match fmt {
        OutputFormat::Text => {
            let mut line = String::new();
            if multi {
                line.push_str(&format!("{target} "));
            }
            line.push_str(&format!("seq={} rtt={} ms", r.seq, ms(r.rtt_ns)));
            if let (Some(f), Some(b)) = (r.forward_ns, r.backward_ns) {
                line.push_str(&format!(" fwd={} ms bwd={} ms", ms(f), ms(b)));
            }
            line.push_str(&format!(
                " ttl={} refl_seq={} t2={} t3={} residence={} ms",
                r.sender_ttl,
                r.reflector_seq,
                secs(r.t2),
                secs(r.t3),
                ms(r.residence_ns)
            ));
            line.push_str(&format!(" t1_src={} t4_src={}", r.t1_source, r.t4_source));
            for t in &r.tlvs {
                if t.flags.0 & 0xF0 != 0 {
                    line.push_str(&format!(" [{}: {} flags={}]", t.name, t.summary, t.flags));
                } else {
                    line.push_str(&format!(" [{}: {}]", t.name, t.summary));
                }
            }
            if let Some(e) = r.tlv_error {
                line.push_str(&format!(" [tlv error: {e}]"));
            }
            writeln!(out, "{line}")
        }
        OutputFormat::Json => {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), "packet".into());
                o.insert("target".into(), target.to_string().into());
                o.insert("status".into(), "received".into());
                o.insert("rtt_ms".into(), (r.rtt_ns as f64 / 1e6).into());
            }
            writeln!(out, "{v}")
        }
        OutputFormat::Csv => {
            let tlvs: Vec<String> = r
                .tlvs
                .iter()
                .map(|t| format!("{}: {}", t.name, t.summary))
                .collect();
            let opt = |x: Option<i64>| x.map(ms).unwrap_or_default();
            writeln!(
                out,
                "{target},{},received,{},{},{},{},{},{},{},{},{},{},{},{},\"{}\"",
                r.seq,
                r.reflector_seq,
                ms(r.rtt_ns),
                opt(r.forward_ns),
                opt(r.backward_ns),
                ms(r.residence_ns),
                r.sender_ttl,
                r.reply_ttl.map(|x| x.to_string()).unwrap_or_default(),
                r.reply_tos.map(|x| x.to_string()).unwrap_or_default(),
                secs(r.t1),
                secs(r.t2),
                secs(r.t3),
                secs(r.t4),
                tlvs.join("; ").replace('"', "'")
            )
        }
    };
}

/// Print one lost packet.
pub fn lost(out: &mut impl Write, fmt: OutputFormat, target: SocketAddr, multi: bool, seq: u32) {
    let _ = match fmt {
        OutputFormat::Text if multi => writeln!(out, "{target} seq={seq} lost"),
        OutputFormat::Text => writeln!(out, "seq={seq} lost"),
        OutputFormat::Json => writeln!(
            out,
            "{}",
            json!({"type": "packet", "target": target.to_string(), "seq": seq, "status": "lost"})
        ),
        OutputFormat::Csv => writeln!(out, "{target},{seq},lost,,,,,,,,,,,,,"),
    };
}

fn loss_pct(st: &SenderStats) -> f64 {
    if st.sent == 0 {
        0.0
    } else {
        st.lost as f64 * 100.0 / st.sent as f64
    }
}

/// Loss per direction from the last Direct Measurement TLV (RFC 8972 §4.5):
/// forward = S_TxC − R_RxC, backward = R_TxC − replies received.
fn dm_loss(st: &SenderStats) -> Option<(i64, i64)> {
    let dm = st.tlvs.values().find(|t| t.last.name == "dm")?;
    let get = |k: &str| dm.last.fields.get(k).and_then(Value::as_i64);
    let (s_txc, r_rxc, r_txc) = (get("s_txc")?, get("r_rxc")?, get("r_txc")?);
    Some((s_txc - r_rxc, r_txc - st.received as i64))
}

/// The summary as JSON.
pub fn summary_json(target: SocketAddr, st: &SenderStats) -> Value {
    let d = |s: Option<DelaySummary>| {
        s.map(|x| serde_json::to_value(x).unwrap_or_default())
            .unwrap_or(Value::Null)
    };
    let dl = st.directional_loss();
    let rejected: serde_json::Map<String, Value> = st
        .rejected
        .iter()
        .map(|(k, v)| {
            (
                serde_json::to_value(k)
                    .ok()
                    .and_then(|x| x.as_str().map(String::from))
                    .unwrap_or_default(),
                (*v).into(),
            )
        })
        .collect();
    json!({
        "type": "summary",
        "target": target.to_string(),
        "sent": st.sent,
        "received": st.received,
        "lost": st.lost,
        "loss_pct": loss_pct(st),
        "duplicates": st.duplicates,
        "rejected": rejected,
        "rtt": d(st.rtt.summary()),
        "forward": d(st.forward.summary()),
        "backward": d(st.backward.summary()),
        "residence": d(st.residence.summary()),
        "forward_lost": dl.map(|x| x.forward),
        "backward_lost": dl.map(|x| x.backward),
        "sender_ttl": st.ttl.map(|(lo, hi, last)| json!({"min": lo, "max": hi, "last": last, "changes": st.ttl_changes})),
        "tlv_errors": st.tlv_errors,
        "train": (st.train_len > 1).then(|| json!({
            "requested_per_packet": st.train_len,
            "further_replies": st.train_replies,
            "further_expected": st.train_expected,
            "reverse_lost": st.train_expected.saturating_sub(st.train_replies),
            "rtt": d(st.train_rtt.summary()),
        })),
        "tlvs": st.tlvs.values().map(|t| {
            let mut m = serde_json::Map::new();
            m.insert("type".into(), t.last.tlv_type.0.into());
            m.insert("name".into(), t.last.name.into());
            m.insert("replies".into(), t.count.into());
            m.insert("flagged".into(), t.flagged.into());
            m.insert("last".into(), t.last.summary.clone().into());
            m.insert("last_fields".into(), Value::Object(t.last.fields.clone()));
            Value::Object(m)
        }).collect::<Vec<_>>(),
        "direct_measurement_loss": dm_loss(st).map(|(f, b)| json!({"forward": f, "backward": b})),
        "timestamps": {
            "t1": st.t1_sources.describe("tx"),
            "t2": reflector_method(st, "timestamp_in"),
            "t3": reflector_method(st, "timestamp_out"),
            "t4": st.t4_sources.describe("rx"),
            "t1_sources": st.t1_sources,
            "t4_sources": st.t4_sources,
        },
    })
}

/// How the reflector says it took T2 / T3 (`field` "timestamp_in" /
/// "timestamp_out" of its last Timestamp Information TLV, RFC 8972 §4.3),
/// if it was asked.
fn reflector_method(st: &SenderStats, field: &str) -> Option<String> {
    let t = st.tlvs.get(&3)?;
    t.last
        .fields
        .get(field)
        .and_then(Value::as_str)
        .map(String::from)
}

/// "Timestamps: T1 kernel-tx, T2 sw-local, T3 sw-local, T4 kernel-rx": where
/// each timestamp of the answered packets came from; T2 / T3 as the
/// reflector's Timestamp Information TLV says.
fn timestamps_line(st: &SenderStats) -> String {
    let remote = match (
        reflector_method(st, "timestamp_in"),
        reflector_method(st, "timestamp_out"),
    ) {
        (Some(t2), Some(t3)) => format!("T2 {t2}, T3 {t3} (reflector's Timestamp Information)"),
        _ => "T2/T3 not reported (no Timestamp Information TLV)".to_string(),
    };
    format!(
        "Timestamps: T1 {}, {remote}, T4 {}",
        st.t1_sources.describe("tx"),
        st.t4_sources.describe("rx")
    )
}

/// The text summary.
pub fn summary_text(out: &mut impl Write, target: SocketAddr, multi: bool, st: &SenderStats) {
    let mut w = |s: String| {
        let _ = writeln!(out, "{s}");
    };
    w("--- STAMP Statistics ---".into());
    w(format!("Packets sent: {}", st.sent));
    w(format!("Packets received: {}", st.received));
    w(format!("Packets lost: {} ({:.1}%)", st.lost, loss_pct(st)));
    let f = |x: f64| format!("{x:.3}");
    match st.rtt.summary() {
        Some(r) => {
            w(format!("Min RTT: {} ms", f(r.min_ms)));
            w(format!("Max RTT: {} ms", f(r.max_ms)));
            w(format!("Avg RTT: {} ms", f(r.avg_ms)));
            w(format!("Median RTT: {} ms", f(r.median_ms)));
            w(format!("P95 RTT: {} ms", f(r.p95_ms)));
            w(format!("P99 RTT: {} ms", f(r.p99_ms)));
            w(format!("Stddev RTT: {} ms", f(r.stddev_ms)));
        }
        None => {
            w("Min RTT: - ms".into());
            w("Max RTT: - ms".into());
            w("Avg RTT: - ms".into());
        }
    }
    if let Some(x) = st.residence.summary() {
        w(format!(
            "Reflector residence: min {} / avg {} / max {} ms",
            f(x.min_ms),
            f(x.avg_ms),
            f(x.max_ms)
        ));
    }
    if let (Some(a), Some(b)) = (st.forward.summary(), st.backward.summary()) {
        w(format!(
            "Forward delay: min {} / avg {} / max {} ms",
            f(a.min_ms),
            f(a.avg_ms),
            f(a.max_ms)
        ));
        w(format!(
            "Backward delay: min {} / avg {} / max {} ms",
            f(b.min_ms),
            f(b.avg_ms),
            f(b.max_ms)
        ));
    }
    if let Some(dl) = st.directional_loss() {
        w(format!(
            "Forward loss: {}, backward loss: {} (from the reflector's sequence numbers)",
            dl.forward, dl.backward
        ));
    }
    if st.duplicates > 0 {
        w(format!("Duplicates: {}", st.duplicates));
    }
    if st.rejected_total() > 0 {
        let mut parts: Vec<String> = st
            .rejected
            .iter()
            .map(|(k, v)| format!("{k:?} {v}"))
            .collect();
        parts.sort();
        w(format!(
            "Rejected replies: {} ({})",
            st.rejected_total(),
            parts.join(", ")
        ));
    }
    if let Some((lo, hi, last)) = st.ttl {
        w(format!(
            "Sender TTL at reflector: min {lo} max {hi} last {last}, changes {}",
            st.ttl_changes
        ));
    }
    if st.train_len > 1 {
        let rtt = st.train_rtt.summary().map(|x| {
            format!(
                ", RTT min {} / avg {} / max {} ms",
                f(x.min_ms),
                f(x.avg_ms),
                f(x.max_ms)
            )
        });
        w(format!(
            "Reflected trains: {} replies per packet requested, further replies {} of {} (reverse loss {}){}",
            st.train_len,
            st.train_replies,
            st.train_expected,
            st.train_expected.saturating_sub(st.train_replies),
            rtt.unwrap_or_default()
        ));
    }
    if st.tlv_errors > 0 {
        w(format!("Replies with TLV errors: {}", st.tlv_errors));
    }
    for t in st.tlvs.values() {
        let flagged = if t.flagged > 0 {
            format!(", flagged in {}", t.flagged)
        } else {
            String::new()
        };
        w(format!(
            "TLV {} ({} replies{flagged}), last: {}",
            t.last.name, t.count, t.last.summary
        ));
    }
    if let Some((f, b)) = dm_loss(st) {
        w(format!("Direct Measurement loss: forward {f}, backward {b} (from the counters of the last reply)"));
    }
    if st.received > 0 {
        w(timestamps_line(st));
    }
    if multi {
        w(format!("Target: {target}"));
    }
}
