//! Sender output: per-packet lines (`-R`) and summaries, in text, JSON and
//! CSV. The text summary starts with the layout scripts already parse
//! (`--- STAMP Statistics ---` … `Avg RTT: X ms`), then adds lines.

use std::io::Write;
use std::net::SocketAddr;

use serde_json::{json, Value};
use stamp_config::OutputFormat;
use stamp_core::clock::UnixNanos;
use stamp_core::measure::{HopStats, IpdvSummary, PathChange, PdvSummary, ReorderSummary};
use stamp_core::sender::{PacketRecord, Rejected, SenderStats};
use stamp_core::stats::{DelayStats, DelaySummary};

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

/// Column names of the CSV per-packet rows (the columns after `tlvs` were
/// added later, at the end so that older readers keep their positions).
pub const CSV_HEADER: &str = "target,seq,status,reflector_seq,rtt_ms,forward_ms,backward_ms,residence_ms,sender_ttl,reply_ttl,reply_tos,t1,t2,t3,t4,tlvs,forward_hops,backward_hops,ipdv_ms,reorder_extent";

/// Buckets of the `--histogram` RTT histogram.
pub const HISTOGRAM_BUCKETS: usize = 20;

/// Which summary is being printed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// The final summary of one target.
    Final,
    /// An interim summary (`--report-interval`), cumulative since the start.
    Interim {
        /// Seconds since the start of the run.
        elapsed_s: f64,
    },
    /// The sum over every target (several targets only).
    Total {
        /// Number of targets.
        targets: usize,
    },
}

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
            if let Some(h) = r.forward_hops {
                line.push_str(&format!(" hops_fwd={h}"));
            }
            if let Some(h) = r.backward_hops {
                line.push_str(&format!(" hops_bwd={h}"));
            }
            if let Some(v) = r.ipdv_ns {
                line.push_str(&format!(" ipdv={} ms", ms(v)));
            }
            if let Some(e) = r.reorder_extent {
                line.push_str(&format!(" reordered(extent={e})"));
            }
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
            let num = |x: Option<u64>| x.map(|v| v.to_string()).unwrap_or_default();
            writeln!(
                out,
                "{target},{},received,{},{},{},{},{},{},{},{},{},{},{},{},\"{}\",{},{},{},{}",
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
                tlvs.join("; ").replace('"', "'"),
                num(r.forward_hops.map(u64::from)),
                num(r.backward_hops.map(u64::from)),
                opt(r.ipdv_ns),
                num(r.reorder_extent),
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
        OutputFormat::Csv => writeln!(out, "{target},{seq},lost,,,,,,,,,,,,,,,,,"),
    };
}

/// Print a path length change (text and JSON; with CSV, the caller sends
/// the text line to stderr).
pub fn path_change(
    out: &mut impl Write,
    fmt: OutputFormat,
    target: SocketAddr,
    multi: bool,
    c: &PathChange,
) {
    let _ = match fmt {
        OutputFormat::Json => {
            let mut v = serde_json::to_value(c).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), "event".into());
                o.insert("event".into(), "path_change".into());
                o.insert("target".into(), target.to_string().into());
            }
            writeln!(out, "{v}")
        }
        _ => {
            let prefix = if multi {
                format!("{target} ")
            } else {
                String::new()
            };
            writeln!(
                out,
                "{prefix}path change: {} hops {} -> {} (TTL {}) at seq={}",
                c.direction, c.from_hops, c.to_hops, c.ttl, c.seq
            )
        }
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

fn to_json<T: serde::Serialize>(x: Option<T>) -> Value {
    x.map(|v| serde_json::to_value(v).unwrap_or_default())
        .unwrap_or(Value::Null)
}

/// The `--histogram` buckets: `(low ms, high ms, count)`.
pub fn histogram(d: &DelayStats) -> Vec<(f64, f64, u64)> {
    let mut lo = d.summary().map(|s| s.min_ms).unwrap_or(0.0);
    d.linear_buckets(HISTOGRAM_BUCKETS)
        .into_iter()
        .map(|(upper, n)| {
            let hi = upper as f64 / 1e6;
            let b = (lo, hi, n);
            lo = hi;
            b
        })
        .collect()
}

fn hops_json(h: &HopStats) -> Value {
    serde_json::to_value(h).unwrap_or_default()
}

/// The summary as JSON. `histogram` adds the RTT histogram buckets.
pub fn summary_json(target: &str, kind: Kind, st: &SenderStats, with_histogram: bool) -> Value {
    let d = |s: Option<DelaySummary>| to_json(s);
    let per_target = !matches!(kind, Kind::Total { .. });
    let dl = st.directional_loss().filter(|_| per_target);
    let rejected: serde_json::Map<String, Value> = Rejected::ALL
        .iter()
        .map(|k| {
            (
                k.name().to_string(),
                st.rejected.get(k).copied().unwrap_or(0).into(),
            )
        })
        .collect();
    let mut v = json!({
        "type": match kind { Kind::Final => "summary", Kind::Interim { .. } => "interim", Kind::Total { .. } => "total" },
        "target": target,
        "sent": st.sent,
        "received": st.received,
        "lost": st.lost,
        "loss_pct": loss_pct(st),
        "duplicates": st.duplicates,
        "duplicates_forward": st.duplicates_forward,
        "duplicates_backward": st.duplicates_backward,
        "rejected": rejected,
        "zero_ssid_replies": st.zero_ssid_replies,
        "rtt": d(st.rtt.summary()),
        "forward": d(st.forward.summary()),
        "backward": d(st.backward.summary()),
        "residence": d(st.residence.summary()),
        "ipdv": json!({
            "rtt": to_json::<IpdvSummary>(st.ipdv_rtt.summary()),
            "forward": to_json::<IpdvSummary>(st.ipdv_forward.summary()),
            "backward": to_json::<IpdvSummary>(st.ipdv_backward.summary()),
        }),
        "pdv": json!({
            "rtt": to_json::<PdvSummary>(st.pdv_rtt()),
            "forward": to_json::<PdvSummary>(st.pdv_forward()),
            "backward": to_json::<PdvSummary>(st.pdv_backward()),
        }),
        "forward_lost": dl.map(|x| x.forward),
        "backward_lost": dl.map(|x| x.backward),
        "unattributed_lost": if per_target { Some(st.unattributed_loss()) } else { None },
        "reordering": to_json::<ReorderSummary>(st.reorder.summary()),
        "reordering_backward": to_json::<ReorderSummary>(st.reorder_backward.summary()),
        "reordering_forward": to_json::<ReorderSummary>(st.reorder_forward.summary()),
        "hops": json!({
            "forward": hops_json(&st.forward_hops),
            "backward": hops_json(&st.backward_hops),
        }),
        "path_changes": st.path_change_count,
        "sender_ttl": st.ttl.map(|(lo, hi, last)| json!({"min": lo, "max": hi, "last": last, "changes": st.forward_hops.changes})),
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
        "direct_measurement_loss": dm_loss(st).filter(|_| per_target).map(|(f, b)| json!({"forward": f, "backward": b})),
        "histogram": with_histogram.then(|| json!({
            "rtt": histogram(&st.rtt).into_iter().map(|(lo, hi, n)| json!([lo, hi, n])).collect::<Vec<_>>(),
        })),
        "timestamps": {
            "t1": st.t1_sources.describe("tx"),
            "t2": reflector_method(st, "timestamp_in"),
            "t3": reflector_method(st, "timestamp_out"),
            "t4": st.t4_sources.describe("rx"),
            "t1_sources": st.t1_sources,
            "t4_sources": st.t4_sources,
        },
    });
    if let (Some(o), Kind::Interim { elapsed_s }) = (v.as_object_mut(), kind) {
        o.insert("elapsed_s".into(), elapsed_s.into());
    }
    if let (Some(o), Kind::Total { targets }) = (v.as_object_mut(), kind) {
        o.insert("targets".into(), targets.into());
    }
    v
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

/// The text summary. The first lines keep the layout scripts parse; an
/// interim summary has its own header, so it is not mistaken for the final.
pub fn summary_text(
    out: &mut impl Write,
    target: &str,
    multi: bool,
    kind: Kind,
    st: &SenderStats,
    with_histogram: bool,
) {
    let mut w = |s: String| {
        let _ = writeln!(out, "{s}");
    };
    let per_target = !matches!(kind, Kind::Total { .. });
    match kind {
        Kind::Interim { elapsed_s } => w(format!(
            "--- STAMP Interim Statistics ({elapsed_s:.1} s) ---"
        )),
        _ => w("--- STAMP Statistics ---".into()),
    }
    w(format!("Packets sent: {}", st.sent));
    w(format!("Packets received: {}", st.received));
    w(format!("Packets lost: {} ({:.1}%)", st.lost, loss_pct(st)));
    // Three decimals, without a "-0.000" for tiny negative values.
    let f = |x: f64| {
        let s = format!("{x:.3}");
        if s == "-0.000" {
            "0.000".to_string()
        } else {
            s
        }
    };
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
            "Forward delay: min {} / avg {} / max {} ms (median {}, p95 {}, p99 {})",
            f(a.min_ms),
            f(a.avg_ms),
            f(a.max_ms),
            f(a.median_ms),
            f(a.p95_ms),
            f(a.p99_ms)
        ));
        w(format!(
            "Backward delay: min {} / avg {} / max {} ms (median {}, p95 {}, p99 {})",
            f(b.min_ms),
            f(b.avg_ms),
            f(b.max_ms),
            f(b.median_ms),
            f(b.p95_ms),
            f(b.p99_ms)
        ));
    }
    for (name, x) in [
        ("RTT", st.ipdv_rtt.summary()),
        ("forward", st.ipdv_forward.summary()),
        ("backward", st.ipdv_backward.summary()),
    ] {
        if let Some(x) = x {
            w(format!(
                "IPDV {name}: mean {} ms, |IPDV| min {} / mean {} / median {} / p95 {} / p99 {} / max {} ms ({} pairs)",
                f(x.mean_ms),
                f(x.min_abs_ms),
                f(x.mean_abs_ms),
                f(x.p50_abs_ms),
                f(x.p95_abs_ms),
                f(x.p99_abs_ms),
                f(x.max_abs_ms),
                x.count
            ));
        }
    }
    for (name, x) in [
        ("RTT", st.pdv_rtt()),
        ("forward", st.pdv_forward()),
        ("backward", st.pdv_backward()),
    ] {
        if let Some(x) = x {
            w(format!(
                "PDV {name}: median {} / p95 {} / p99 {} / max {} ms",
                f(x.p50_ms),
                f(x.p95_ms),
                f(x.p99_ms),
                f(x.max_ms)
            ));
        }
    }
    if let Some(dl) = st.directional_loss().filter(|_| per_target) {
        w(format!(
            "Forward loss: {}, backward loss: {} (from the reflector's sequence numbers)",
            dl.forward, dl.backward
        ));
        let u = st.unattributed_loss();
        if u > 0 {
            w(format!(
                "Loss not attributable to a direction: {u} (before the first or after the last reply)"
            ));
        }
    }
    if let Some(r) = st.reorder.summary() {
        w(format!(
            "Reordering: {} of {} ({:.2}%), extent max {} / avg {:.1} packets",
            r.reordered,
            r.received,
            r.ratio * 100.0,
            r.extent_max,
            r.extent_avg
        ));
    }
    for (name, r) in [
        ("Forward", st.reorder_forward.summary()),
        ("Backward", st.reorder_backward.summary()),
    ] {
        if let Some(r) = r {
            w(format!(
                "{name} reordering: {} of {} ({:.2}%), extent max {} / avg {:.1} packets",
                r.reordered,
                r.received,
                r.ratio * 100.0,
                r.extent_max,
                r.extent_avg
            ));
        }
    }
    if st.duplicates > 0 {
        w(format!(
            "Duplicates: {} (forward {}, backward {})",
            st.duplicates, st.duplicates_forward, st.duplicates_backward
        ));
    }
    if st.zero_ssid_replies > 0 {
        w(format!(
            "Replies with SSID 0: {} (the reflector does not implement RFC 8972 SSIDs)",
            st.zero_ssid_replies
        ));
    }
    if st.rejected_total() > 0 {
        let parts: Vec<String> = st
            .rejected
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{} {v}", k.name()))
            .collect();
        w(format!(
            "Rejected replies: {} ({})",
            st.rejected_total(),
            parts.join(", ")
        ));
    }
    if let Some((lo, hi, last)) = st.ttl {
        w(format!(
            "Sender TTL at reflector: min {lo} max {hi} last {last}, changes {}",
            st.forward_hops.changes
        ));
    }
    let hops = |h: &HopStats| match (h.min, h.max) {
        (Some(lo), Some(hi)) => {
            let last = h.last.map(|l| format!("{l} ")).unwrap_or_default();
            format!("{last}(min {lo} max {hi}, changes {})", h.changes)
        }
        _ => "-".into(),
    };
    if st.forward_hops.samples > 0 || st.backward_hops.samples > 0 {
        w(format!(
            "Hops: forward {}, backward {}",
            hops(&st.forward_hops),
            hops(&st.backward_hops)
        ));
    }
    if st.path_change_count > 0 {
        let last = st
            .path_changes
            .back()
            .filter(|_| per_target)
            .map(|c| {
                format!(
                    " (last: {} {} -> {} hops at seq={})",
                    c.direction, c.from_hops, c.to_hops, c.seq
                )
            })
            .unwrap_or_default();
        w(format!("Path changes: {}{last}", st.path_change_count));
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
    if let Some((f, b)) = dm_loss(st).filter(|_| per_target) {
        w(format!("Direct Measurement loss: forward {f}, backward {b} (from the counters of the last reply)"));
    }
    if st.received > 0 {
        w(timestamps_line(st));
    }
    if with_histogram {
        let buckets = histogram(&st.rtt);
        if !buckets.is_empty() {
            w("RTT histogram (ms):".into());
            let top = buckets.iter().map(|b| b.2).max().unwrap_or(1).max(1);
            for (lo, hi, n) in buckets {
                let bar = "#".repeat(((n * 40).div_ceil(top)) as usize);
                w(format!("  {lo:>10.3} - {hi:>10.3} | {n:>8} {bar}")
                    .trim_end()
                    .to_string());
            }
        }
    }
    match kind {
        Kind::Total { targets } => w(format!("Target: total of {targets}")),
        _ if multi => w(format!("Target: {target}")),
        _ => {}
    }
}
