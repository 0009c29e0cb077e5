//! A third-party crate (tests/example-plugin) registers TLV type 251 through
//! the public macro; its binary lists it and reflects it end to end, while
//! the stock binary, which does not link it, returns it with U set.

use std::time::Duration;

use stamp_tests::{run, Reflector};

#[test]
fn example_plugin_is_listed() {
    let o = run(
        "stamp-example",
        &["--list-tlvs"],
        &[],
        Duration::from_secs(10),
    );
    assert!(o.status.success());
    let t = String::from_utf8_lossy(&o.stdout);
    let row = t
        .lines()
        .find(|l| l.trim_start().starts_with("251 "))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(
        row.contains("example-counter") && row.contains("stamp-example-plugin"),
        "{row}"
    );
    let stock = run(
        "stamp-suite",
        &["--list-tlvs"],
        &[],
        Duration::from_secs(10),
    );
    assert!(!String::from_utf8_lossy(&stock.stdout).contains("example-counter"));
}

#[test]
fn example_tlv_is_reflected_end_to_end() {
    let r = Reflector::start_with("stamp-example", &["-i", "-S", "127.0.0.1"], &[]);
    let o = run(
        "stamp-example",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &r.port(),
            "-c",
            "3",
            "-d",
            "5",
            "-R",
            "--tlv-opt",
            "example-counter=true",
        ],
        &[],
        Duration::from_secs(20),
    );
    assert!(o.status.success(), "{o:?}");
    let t = String::from_utf8_lossy(&o.stdout);
    for n in 1..=3 {
        assert!(
            t.contains(&format!("[example: reflector answered {n}]")),
            "{t}"
        );
    }
}

#[test]
fn stock_reflector_marks_the_unknown_tlv_unrecognized() {
    let r = Reflector::start(&["-S", "127.0.0.1"]);
    let o = run(
        "stamp-example",
        &[
            "-r",
            "127.0.0.1",
            "-p",
            &r.port(),
            "-c",
            "1",
            "-R",
            "--tlv-opt",
            "example-counter=true",
        ],
        &[],
        Duration::from_secs(20),
    );
    assert!(o.status.success(), "{o:?}");
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains("[unrecognized: type 251 not processed by the reflector flags=U]"),
        "{t}"
    );
}
