//! `stamp-bench --quick` runs end to end (a few hundred milliseconds of each
//! measurement), so the benchmark tool cannot rot unnoticed. The figures
//! themselves are not checked here: this machine is shared and noisy.

use std::time::Duration;

use stamp_tests::run;

#[test]
fn stamp_bench_quick_mode_runs_every_measurement() {
    let out = run("stamp-bench", &["--quick"], &[], Duration::from_secs(120));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for section in [
        "throughput",
        "fixed rate",
        "sender schedule",
        "sessions",
        "receive timestamps under load",
        "ratio ours/baseline",
    ] {
        assert!(text.contains(section), "no {section:?} in:\n{text}");
    }
    // The receive-timestamp comparison measured both rates: a user-space
    // T2 is read after the system call returns, so it is never earlier
    // than the kernel's (median of user − kernel ≥ 0), and the kernel's T2
    // follows the kernel's transmit timestamp.
    let ts = text
        .split("receive timestamps under load")
        .nth(1)
        .unwrap_or_default();
    for rate in ["10000 pps", "100000 pps"] {
        let line = ts
            .lines()
            .find(|l| l.starts_with(rate))
            .unwrap_or_else(|| panic!("no {rate} line in:\n{ts}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        let median = |col: &str| -> f64 {
            col.split('/')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{line}"))
        };
        assert!(cols.len() >= 6, "{line}");
        assert!(median(cols[3]) >= 0.0, "user - kernel: {line}");
        assert!(median(cols[4]) >= 0.0, "kernel from TX: {line}");
    }
    // In-process loop used by scripts/callgrind.sh.
    let out = run(
        "stamp-bench",
        &["--callgrind-loop", "auth", "200"],
        &[],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("reflected 200"));
}
