//! The sender's outputs from real runs: the JSON and CSV formats against
//! golden files (names, order and types exactly; varying values by range),
//! `--histogram`, `--plot` (the SVG parsed), `--report-interval`,
//! `--count 0` until SIGINT, several targets with a total, the progress
//! bar on a terminal (and its absence elsewhere), and path-change events.
//!
//! `STAMP_BLESS=1` rewrites the golden files from the run instead of
//! comparing (review the diff before committing).

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use stamp_core::clock::{ManualClock, UnixNanos};
use stamp_core::reflector::{Outcome, Reflector as Engine, ReflectorConfig};
use stamp_core::registry::Registry;
use stamp_core::transport::RecvMeta;
use stamp_tests::{bin, json_lines, repo_root, run, run_command, Reflector};
use stamp_wire::{TimestampFormat, MAX_DATAGRAM};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn golden_path(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/golden").join(name)
}

/// Compare `actual` with the golden file (or write it with STAMP_BLESS=1).
fn golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("STAMP_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (STAMP_BLESS=1 writes it)", path.display()));
    if want != actual {
        let w: Vec<&str> = want.lines().collect();
        let a: Vec<&str> = actual.lines().collect();
        let at = w
            .iter()
            .zip(&a)
            .position(|(x, y)| x != y)
            .unwrap_or(w.len().min(a.len()));
        panic!(
            "{} differs at line {}: golden {:?}, actual {:?}\n--- actual ---\n{actual}",
            path.display(),
            at + 1,
            w.get(at),
            a.get(at)
        );
    }
}

// ---- A JSON structure reader that keeps the key order of the text ----

/// `(path, type)` of every value of a JSON text, in the order written:
/// objects by key, arrays as `path[]` (each distinct element shape once).
/// Types: object, array, string, int, float, bool, null.
fn shape(text: &str) -> String {
    fn ws(b: &[u8], i: &mut usize) {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }
    fn string(b: &[u8], i: &mut usize) -> String {
        assert_eq!(b[*i], b'"');
        *i += 1;
        let start = *i;
        while b[*i] != b'"' {
            if b[*i] == b'\\' {
                *i += 1;
            }
            *i += 1;
        }
        let s = String::from_utf8_lossy(&b[start..*i]).into_owned();
        *i += 1;
        s
    }
    fn value(b: &[u8], i: &mut usize, path: &str, out: &mut Vec<String>) {
        ws(b, i);
        match b[*i] {
            b'{' => {
                out.push(format!("{path} object"));
                *i += 1;
                ws(b, i);
                if b[*i] == b'}' {
                    *i += 1;
                    return;
                }
                loop {
                    ws(b, i);
                    let k = string(b, i);
                    ws(b, i);
                    assert_eq!(b[*i], b':');
                    *i += 1;
                    value(b, i, &format!("{path}.{k}"), out);
                    ws(b, i);
                    if b[*i] == b',' {
                        *i += 1;
                        continue;
                    }
                    assert_eq!(b[*i], b'}');
                    *i += 1;
                    break;
                }
            }
            b'[' => {
                out.push(format!("{path} array"));
                *i += 1;
                ws(b, i);
                if b[*i] == b']' {
                    *i += 1;
                    return;
                }
                loop {
                    value(b, i, &format!("{path}[]"), out);
                    ws(b, i);
                    if b[*i] == b',' {
                        *i += 1;
                        continue;
                    }
                    assert_eq!(b[*i], b']');
                    *i += 1;
                    break;
                }
            }
            b'"' => {
                string(b, i);
                out.push(format!("{path} string"));
            }
            b't' | b'f' => {
                *i += if b[*i] == b't' { 4 } else { 5 };
                out.push(format!("{path} bool"));
            }
            b'n' => {
                *i += 4;
                out.push(format!("{path} null"));
            }
            _ => {
                let start = *i;
                while *i < b.len() && b"+-0123456789.eE".contains(&b[*i]) {
                    *i += 1;
                }
                let n = &b[start..*i];
                let float = n.iter().any(|c| b".eE".contains(c));
                out.push(format!("{path} {}", if float { "float" } else { "int" }));
            }
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    value(text.as_bytes(), &mut i, "$", &mut out);
    let mut seen = std::collections::HashSet::new();
    out.retain(|l| seen.insert(l.clone()));
    out.join("\n") + "\n"
}

fn ms(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn shape_reader_keeps_text_order_and_types() {
    let s = shape(r#"{"b":1,"a":[1.5,2.0],"c":{"z":null,"y":"x"},"d":[],"e":true,"f":-1e-7}"#);
    assert_eq!(
        s,
        "$ object\n$.b int\n$.a array\n$.a[] float\n$.c object\n$.c.z null\n$.c.y string\n$.d array\n$.e bool\n$.f float\n"
    );
}

#[test]
fn json_summary_and_packet_lines_match_the_golden_structure() {
    let r = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "--stateful-reflector",
        "--clock-synchronized",
    ]);
    let out = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &r.port(),
            "-c",
            "20",
            "-d",
            "2",
            "-R",
            "--output-format",
            "json",
            "--clock-synchronized",
            "--histogram",
        ],
        &[],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let summary_line = lines
        .iter()
        .find(|l| l.contains(r#""type":"summary""#))
        .expect("summary");
    let packet_line = lines
        .iter()
        .find(|l| l.contains(r#""type":"packet""#) && l.contains(r#""seq":1,"#))
        .expect("packet 1");
    golden("sender_summary.json.shape", &shape(summary_line));
    golden("sender_packet.json.shape", &shape(packet_line));

    // Values: ranges and relations.
    let s: Value = serde_json::from_str(summary_line).unwrap();
    assert_eq!(
        (
            s["sent"].as_u64(),
            s["received"].as_u64(),
            s["lost"].as_u64()
        ),
        (Some(20), Some(20), Some(0))
    );
    assert_eq!(s["loss_pct"], 0.0);
    for k in ["rtt", "forward", "backward", "residence"] {
        let d = &s[k];
        assert_eq!(d["count"], 20, "{k}");
        let (lo, med, hi) = (ms(&d["min_ms"]), ms(&d["median_ms"]), ms(&d["max_ms"]));
        assert!(lo <= med && med <= hi && hi < 50.0, "{k}: {d}");
        assert!(lo > -1.0, "{k}: {d}");
    }
    for k in ["rtt", "forward", "backward"] {
        let x = &s["ipdv"][k];
        assert_eq!(x["count"], 19, "ipdv.{k}");
        assert!(ms(&x["min_abs_ms"]) >= 0.0 && ms(&x["min_abs_ms"]) <= ms(&x["max_abs_ms"]));
        let p = &s["pdv"][k];
        assert!(
            ms(&p["p50_ms"]) >= 0.0 && ms(&p["p50_ms"]) <= ms(&p["max_ms"]),
            "{p}"
        );
    }
    assert_eq!(s["reordering"]["received"], 20);
    assert_eq!(
        (s["forward_lost"].as_u64(), s["backward_lost"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(s["hops"]["forward"]["min"], 0, "loopback: no router");
    assert_eq!(s["sender_ttl"]["last"], 255);
    let hist = s["histogram"]["rtt"].as_array().unwrap();
    assert_eq!(hist.len(), 20);
    assert_eq!(hist.iter().map(|b| b[2].as_u64().unwrap()).sum::<u64>(), 20);
    for w in hist.windows(2) {
        assert_eq!(w[0][1], w[1][0], "buckets are contiguous");
    }
    let p: Value = serde_json::from_str(packet_line).unwrap();
    let t: Vec<u64> = ["t1", "t2", "t3", "t4"]
        .iter()
        .map(|k| p[k].as_u64().unwrap())
        .collect();
    assert!(t[0] < t[1] && t[1] <= t[2] && t[2] < t[3], "{t:?}");
    assert_eq!(
        p["rtt_ns"].as_i64().unwrap(),
        (t[3] - t[0]) as i64 - (t[2] - t[1]) as i64
    );
    assert_eq!(p["forward_ns"].as_i64().unwrap(), (t[1] - t[0]) as i64);
    assert_eq!(p["backward_ns"].as_i64().unwrap(), (t[3] - t[2]) as i64);
    r.interrupt();
}

#[test]
fn one_way_delays_only_when_both_error_estimates_say_synchronized() {
    for (reflector_sync, sender_sync, expect) in [
        (true, true, true),
        (false, true, false),
        (true, false, false),
    ] {
        let mut rargs = vec!["-S", "127.0.0.1"];
        if reflector_sync {
            rargs.push("--clock-synchronized");
        } else {
            rargs.push("--clock-synchronized=false");
        }
        let r = Reflector::start(&rargs);
        let port = r.port();
        let mut sargs = vec![
            "-r",
            "127.0.0.1",
            "-p",
            &port,
            "-c",
            "5",
            "-d",
            "2",
            "-R",
            "--output-format",
            "json",
        ];
        sargs.push(if sender_sync {
            "--clock-synchronized"
        } else {
            "--clock-synchronized=false"
        });
        let out = run("stamp-suite", &sargs, &[], Duration::from_secs(30));
        assert!(out.status.success(), "{out:?}");
        let v = json_lines(&stdout(&out));
        let s = v.iter().find(|x| x["type"] == "summary").unwrap();
        let what = format!("reflector {reflector_sync}, sender {sender_sync}");
        assert_eq!(s["forward"].is_object(), expect, "{what}: {s}");
        assert_eq!(s["backward"].is_object(), expect, "{what}");
        assert_eq!(s["ipdv"]["forward"].is_object(), expect, "{what}");
        assert_eq!(s["pdv"]["backward"].is_object(), expect, "{what}");
        for p in v.iter().filter(|x| x["type"] == "packet") {
            assert_eq!(p["forward_ns"].is_i64(), expect, "{what}: {p}");
        }
        r.interrupt();
    }
}

#[test]
fn csv_rows_match_the_golden_columns() {
    let r = Reflector::start(&["-S", "127.0.0.1", "--clock-synchronized"]);
    let out = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &r.port(),
            "-c",
            "10",
            "-d",
            "2",
            "--output-format",
            "csv",
            "--clock-synchronized",
        ],
        &[],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    // The golden file: one `column type` line per column, in order.
    let spec = std::fs::read_to_string(golden_path("sender.csv.columns")).unwrap();
    let spec: Vec<(&str, &str)> = spec
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split_once(' ').unwrap())
        .collect();
    let names: Vec<&str> = spec.iter().map(|x| x.0).collect();
    assert_eq!(header, names.join(","), "CSV header");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 10, "{text}");
    for row in rows {
        // The tlvs column is quoted and may hold commas.
        let (head, rest) = row.split_once(",\"").unwrap();
        let (tlvs, tail) = rest.split_once("\",").unwrap();
        let mut cols: Vec<&str> = head.split(',').collect();
        cols.push(tlvs);
        cols.extend(tail.split(','));
        assert_eq!(cols.len(), spec.len(), "{row}");
        for ((name, ty), v) in spec.iter().zip(&cols) {
            let ok = match *ty {
                "addr" => v.parse::<SocketAddr>().is_ok(),
                "int" => v.parse::<u64>().is_ok(),
                "signed_ms" => v.parse::<f64>().is_ok() && v.contains('.'),
                "ms" => v.parse::<f64>().is_ok_and(|x| x >= 0.0) && v.contains('.'),
                "ms?" => v.is_empty() || v.parse::<f64>().is_ok(),
                "int?" => v.is_empty() || v.parse::<u64>().is_ok(),
                "status" => *v == "received",
                "timestamp" => v
                    .split_once('.')
                    .is_some_and(|(s, n)| s.parse::<u64>().is_ok() && n.len() == 9),
                "text" => true,
                other => panic!("unknown type {other} in the golden file"),
            };
            assert!(ok, "column {name} ({ty}) = {v:?} in {row}");
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--- STAMP Statistics ---"),
        "summary on stderr: {stderr}"
    );
    r.interrupt();
}

#[test]
fn text_histogram_buckets_hold_every_reply() {
    let r = Reflector::start(&["-S", "127.0.0.1"]);
    let out = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &r.port(),
            "-c",
            "30",
            "-d",
            "2",
            "--histogram",
        ],
        &[],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let at = text
        .lines()
        .position(|l| l == "RTT histogram (ms):")
        .expect(&text);
    let buckets: Vec<&str> = text
        .lines()
        .skip(at + 1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(buckets.len(), 20, "{text}");
    let total: u64 = buckets
        .iter()
        .map(|l| {
            l.split('|')
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(total, 30);
    r.interrupt();
}

#[test]
fn plot_svg_has_delay_series_loss_marks_and_cdf() {
    // A rate-limited reflector drops part of a 1 kpps burst: lost packets
    // to mark. Both clocks claim synchronization: one-way series too.
    let r = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "--clock-synchronized",
        "--max-pps",
        "200",
        "--reflector-rate-burst",
        "20",
    ]);
    let dir = std::env::temp_dir().join(format!("stamp-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("rtt.svg");
    let out = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &r.port(),
            "-c",
            "200",
            "-d",
            "1",
            "-L",
            "0.5",
            "--clock-synchronized",
            "--output-format",
            "json",
            "--plot",
            svg.to_str().unwrap(),
        ],
        &[],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    let s = json_lines(&stdout(&out))
        .into_iter()
        .find(|v| v["type"] == "summary")
        .unwrap();
    let lost = s["lost"].as_u64().unwrap();
    assert!(lost > 0 && lost < 200, "{s}");
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let labels: Vec<String> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "text")
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    for want in [
        "Delay over time",
        "Latency CDF",
        "RTT",
        "forward one-way",
        "backward one-way",
        "lost",
        "CDF RTT",
        "CDF forward one-way",
        "CDF backward one-way",
        "delay (ms)",
        "time since start (s)",
    ] {
        assert!(
            labels.iter().any(|l| l == want),
            "no {want:?} label in {labels:?}"
        );
    }
    // 3 delay series + 3 CDF curves, each a polyline with many points.
    let lines: Vec<usize> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "polyline")
        .map(|n| {
            n.attribute("points")
                .unwrap_or("")
                .split_whitespace()
                .count()
        })
        .filter(|&n| n > 10)
        .collect();
    assert!(lines.len() >= 6, "{lines:?}");
    assert!(
        lines.iter().any(|&n| n as u64 == 200 - lost),
        "a delay series has one point per reply: {lines:?}, lost {lost}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    r.interrupt();
}

#[test]
fn an_unwritable_plot_file_fails_before_sending() {
    let t0 = Instant::now();
    let out = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            "9",
            "-c",
            "100",
            "-d",
            "100",
            "--plot",
            "/nonexistent-dir/x.svg",
        ],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--plot: cannot create /nonexistent-dir/x.svg"),
        "{err}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "failed at once, not after 10 s of sending"
    );
    assert!(!stdout(&out).contains("Packets sent"));
}

#[test]
fn report_interval_prints_cumulative_interim_summaries_text_and_json() {
    let r = Reflector::start(&["-S", "127.0.0.1"]);
    let out = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &r.port(),
            "-c",
            "40",
            "-d",
            "50",
            "--report-interval",
            "0.5",
            "--output-format",
            "json",
        ],
        &[],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    let v = json_lines(&stdout(&out));
    let interim: Vec<&Value> = v.iter().filter(|x| x["type"] == "interim").collect();
    assert!(
        (2..=5).contains(&interim.len()),
        "{} interim in 2 s at 0.5 s",
        interim.len()
    );
    let sent: Vec<u64> = interim
        .iter()
        .map(|x| x["sent"].as_u64().unwrap())
        .collect();
    let elapsed: Vec<f64> = interim
        .iter()
        .map(|x| x["elapsed_s"].as_f64().unwrap())
        .collect();
    assert!(
        sent.windows(2).all(|w| w[0] <= w[1]) && sent[0] > 0 && *sent.last().unwrap() <= 40,
        "{sent:?}"
    );
    assert!(elapsed.windows(2).all(|w| w[1] - w[0] > 0.3), "{elapsed:?}");
    // Same fields as the final summary, plus elapsed_s.
    let fin = v.iter().find(|x| x["type"] == "summary").unwrap();
    let mut a: Vec<String> = interim[0].as_object().unwrap().keys().cloned().collect();
    let mut b: Vec<String> = fin.as_object().unwrap().keys().cloned().collect();
    b.push("elapsed_s".into());
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(fin["sent"], 40);

    let out = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &r.port(),
            "-c",
            "12",
            "-d",
            "50",
            "--report-interval",
            "0.25",
        ],
        &[],
        Duration::from_secs(30),
    );
    let text = stdout(&out);
    let n = text
        .lines()
        .filter(|l| l.starts_with("--- STAMP Interim Statistics ("))
        .count();
    assert!(n >= 1, "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| *l == "--- STAMP Statistics ---")
            .count(),
        1,
        "{text}"
    );
    r.interrupt();
}

#[test]
fn count_zero_runs_until_sigint_then_prints_the_summary() {
    let r = Reflector::start(&["-S", "127.0.0.1"]);
    let child = Command::new(bin("stamp-suite"))
        .args(["-r", "127.0.0.1", "-p", &r.port(), "-c", "0", "-d", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let t0 = Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "slow to stop");
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let sent = stamp_tests::count(&text, "Packets sent");
    let received = stamp_tests::count(&text, "Packets received");
    assert!(sent >= 50, "about 120 packets in 1.2 s: {sent}");
    assert!(received + 2 >= sent, "{text}");
    r.interrupt();
}

fn totals_check(text: &str, a: SocketAddr, b: SocketAddr, count: u64) {
    let v = json_lines(text);
    let sums: Vec<&Value> = v.iter().filter(|x| x["type"] == "summary").collect();
    let targets: Vec<&str> = sums.iter().map(|x| x["target"].as_str().unwrap()).collect();
    assert_eq!(targets, vec![a.to_string(), b.to_string()]);
    let total = v.iter().find(|x| x["type"] == "total").expect("total");
    assert_eq!(total["targets"], 2);
    assert_eq!(total["sent"], 2 * count);
    assert_eq!(
        total["received"],
        sums.iter()
            .map(|x| x["received"].as_u64().unwrap())
            .sum::<u64>()
    );
    assert_eq!(total["rtt"]["count"], total["received"]);
    let lo = sums
        .iter()
        .map(|x| ms(&x["rtt"]["min_ms"]))
        .fold(f64::MAX, f64::min);
    assert_eq!(ms(&total["rtt"]["min_ms"]), lo);
}

#[test]
fn several_targets_by_repeated_flag_and_config_list_with_a_total() {
    let r1 = Reflector::start(&["-S", "127.0.0.1"]);
    let r2 = Reflector::start(&["-S", "127.0.0.1"]);
    let (a, b) = (r1.addr, r2.addr);
    let out = run(
        "stamp-suite",
        &[
            "-r",
            &a.to_string(),
            "-r",
            &b.to_string(),
            "-c",
            "8",
            "-d",
            "5",
            "--output-format",
            "json",
        ],
        &[],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    totals_check(&stdout(&out), a, b, 8);

    let dir = std::env::temp_dir().join(format!("stamp-multi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("s.toml");
    std::fs::write(&cfg, format!("remote_addr = [\"{a}\", \"{b}\"]\ncount = 6\nsend_delay = 5.0\noutput_format = \"json\"\n")).unwrap();
    let out = run(
        "stamp-suite",
        &["--config", cfg.to_str().unwrap()],
        &[],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    totals_check(&stdout(&out), a, b, 6);

    // Text: one summary per target, each ending with its Target line, then the total.
    let out = run(
        "stamp-suite",
        &["-r", &format!("{a},{b}"), "-c", "4", "-d", "5"],
        &[],
        Duration::from_secs(30),
    );
    let text = stdout(&out);
    let targets: Vec<&str> = text.lines().filter(|l| l.starts_with("Target: ")).collect();
    assert_eq!(
        targets,
        vec![
            format!("Target: {a}"),
            format!("Target: {b}"),
            "Target: total of 2".into()
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
    r1.interrupt();
    r2.interrupt();
}

/// Remove ANSI escape sequences.
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' {
            if it.peek() == Some(&'[') {
                it.next();
                for d in it.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[test]
fn progress_bar_only_on_a_terminal_and_never_inside_output_lines() {
    let r = Reflector::start(&["-S", "127.0.0.1"]);
    let sender = bin("stamp-suite");
    let cmd = format!(
        "{} -r 127.0.0.1 -p {} -c 150 -d 10 -R",
        sender.display(),
        r.port()
    );
    // `script` gives the sender a pseudo-terminal for stdout and stderr.
    let out = run_command(
        Command::new("script")
            .args(["-qfec", &cmd, "/dev/null"])
            .stdin(Stdio::null()),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    let raw = stdout(&out);
    assert!(
        raw.contains("/150 sent"),
        "a bar with the packet count was drawn: {raw:?}"
    );
    let clean = strip_ansi(&raw);
    // Every -R line and every summary line is whole: the bar is cleared
    // before each is printed, so each starts its own segment.
    let segments: Vec<&str> = clean
        .split(['\r', '\n'])
        .map(str::trim_end)
        .filter(|s| !s.is_empty())
        .collect();
    let seq_lines: Vec<&&str> = segments.iter().filter(|s| s.contains("seq=")).collect();
    assert_eq!(seq_lines.len(), 150, "{clean}");
    for l in &seq_lines {
        assert!(
            l.starts_with("seq=") && l.contains(" rtt=") && l.contains(" hops_bwd=0"),
            "{l:?}"
        );
    }
    assert!(segments.contains(&"--- STAMP Statistics ---"));
    // Log lines (stderr, the bar's stream) are whole too.
    let logs: Vec<&&str> = segments
        .iter()
        .filter(|s| s.contains("pacing schedule"))
        .collect();
    assert_eq!(logs.len(), 1, "{clean}");
    assert!(
        logs[0].starts_with("20") && logs[0].contains(" INFO "),
        "{:?}",
        logs[0]
    );
    assert!(segments.contains(&"Packets sent: 150"), "{clean}");

    // Not a terminal: no bar at all.
    let out = run(
        "stamp-suite",
        &["-r", "127.0.0.1", "-p", &r.port(), "-c", "30", "-d", "10"],
        &[],
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains('\r') && !err.contains("sent received"),
        "{err:?}"
    );
    assert!(!stdout(&out).contains('\r'));
    r.interrupt();
}

/// A reflector whose requests arrive with TTL 64 up to seq 4 and 62 from
/// seq 5 on (two routers appear on the way out).
fn ttl_changing_reflector(stop: Arc<AtomicBool>) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let addr = sock.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let mut r = Engine::new(ReflectorConfig::default(), Registry::empty());
        let now = || {
            UnixNanos(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64,
            )
        };
        let clock = ManualClock::new(now(), TimestampFormat::Ntp);
        let (mut buf, mut out) = (vec![0u8; MAX_DATAGRAM], vec![0u8; MAX_DATAGRAM]);
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let seq = u32::from_be_bytes(buf[..4].try_into().unwrap());
            let mut m = RecvMeta::new(n, from);
            m.ttl = Some(if seq < 5 { 64 } else { 62 });
            clock.set(now());
            if let Outcome::Reply { len, .. } =
                r.process(&buf[..n], &m, Instant::now(), &clock, &mut out)
            {
                sock.send_to(&out[..len], from).unwrap();
            }
        }
    });
    (addr, h)
}

#[test]
fn path_length_change_is_an_event_line_in_text_and_json() {
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, h) = ttl_changing_reflector(stop.clone());
    let port = addr.port().to_string();
    let out = run(
        "stamp-suite",
        &["-r", "127.0.0.1", "-p", &port, "-c", "10", "-d", "5"],
        &[],
        Duration::from_secs(30),
    );
    let text = stdout(&out);
    let events: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("path change: "))
        .collect();
    assert_eq!(
        events,
        vec!["path change: forward hops 0 -> 2 (TTL 62) at seq=5"],
        "{text}"
    );
    assert!(
        text.contains(
            "Hops: forward 2 (min 0 max 2, changes 1), backward 0 (min 0 max 0, changes 0)"
        ),
        "{text}"
    );
    assert!(
        text.contains("Path changes: 1 (last: forward 0 -> 2 hops at seq=5)"),
        "{text}"
    );

    let out = run(
        "stamp-suite",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &port,
            "-c",
            "10",
            "-d",
            "5",
            "--output-format",
            "json",
        ],
        &[],
        Duration::from_secs(30),
    );
    let v = json_lines(&stdout(&out));
    let ev: Vec<&Value> = v.iter().filter(|x| x["type"] == "event").collect();
    assert_eq!(ev.len(), 1);
    let line = stdout(&out)
        .lines()
        .find(|l| l.contains(r#""type":"event""#))
        .unwrap()
        .to_string();
    golden("sender_event.json.shape", &shape(&line));
    assert_eq!(ev[0]["event"], "path_change");
    assert_eq!(ev[0]["direction"], "forward");
    assert_eq!(
        (
            ev[0]["from_hops"].as_u64(),
            ev[0]["to_hops"].as_u64(),
            ev[0]["seq"].as_u64()
        ),
        (Some(0), Some(2), Some(5))
    );
    let s = v.iter().find(|x| x["type"] == "summary").unwrap();
    assert_eq!(s["path_changes"], 1);
    assert_eq!(s["hops"]["forward"]["changes"], 1);
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}
