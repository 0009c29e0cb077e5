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
        "ratio ours/baseline",
    ] {
        assert!(text.contains(section), "no {section:?} in:\n{text}");
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
