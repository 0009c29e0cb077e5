//! Reordering and duplication against the impairment relay's own record,
//! on namespaced test hosts: the sender's RFC 4737 reordered counts and its
//! duplicate counts must equal what the relay did, direction by direction.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use stamp_tests::netns::{self, veth, Netns};
use stamp_tests::relay::{Impairment, Record, Relay};
use stamp_tests::{bin, json_record, run_command, Reflector};

static SERIAL: Mutex<()> = Mutex::new(());

/// Send `n` packets through a relay with these impairments to a stateful
/// reflector in another namespace; the sender's JSON summary and the
/// relay's record.
fn through_relay(net: u8, n: u32, forward: Impairment, backward: Impairment) -> (Value, Record) {
    let a = Netns::new(&format!("ord{net}a"));
    let b = Netns::new(&format!("ord{net}b"));
    let (ip_a, ip_b) = (format!("10.{net}.0.1"), format!("10.{net}.0.2"));
    veth(
        &a,
        "eth0",
        &format!("{ip_a}/24"),
        &b,
        "eth0",
        &format!("{ip_b}/24"),
    );
    let refl = Reflector::start_in(&b, &["-S", &ip_b, "--stateful-reflector"]);
    let relay = Relay::start_in(
        &a,
        format!("{ip_a}:0").parse().unwrap(),
        format!("{ip_b}:{}", refl.port()).parse().unwrap(),
        forward,
        backward,
        u64::from(net),
    );
    let port = relay.addr().port().to_string();
    let mut cmd = a.cmd(bin("stamp-suite"));
    cmd.args([
        "-r",
        &ip_a,
        "-p",
        &port,
        "-c",
        &n.to_string(),
        "-d",
        "2",
        "-L",
        "1",
        "--output-format",
        "json",
    ]);
    let out = run_command(&mut cmd, Duration::from_secs(60));
    let rec = relay.stop();
    (
        json_record(&String::from_utf8_lossy(&out.stdout), "summary"),
        rec,
    )
}

fn reordered(s: &Value, key: &str) -> u64 {
    s[key]["reordered"]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key}.reordered in {s}"))
}

#[test]
fn forward_reordering_counts_equal_the_relays_swaps() {
    if !netns::require(&[]) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fwd = Impairment {
        reorder: 0.05,
        ..Impairment::none()
    };
    let (s, rec) = through_relay(81, 500, fwd, Impairment::none());
    let swaps = rec.forward.reordered() as u64;
    eprintln!("relay swapped {swaps} forward; sender: {}", s["reordering"]);
    assert!(
        swaps >= 5,
        "the relay reordered too little to test: {swaps}"
    );
    assert_eq!(s["received"], 500, "{s}");
    assert_eq!(reordered(&s, "reordering"), swaps, "{s}");
    // The reflector numbered the requests as they arrived, so its numbers
    // come back in order: nothing was reordered on the way back.
    assert_eq!(reordered(&s, "reordering_backward"), 0, "{s}");
    assert_eq!(reordered(&s, "reordering_forward"), swaps, "{s}");
    assert_eq!(s["duplicates"], 0, "{s}");
}

#[test]
fn backward_reordering_counts_equal_the_relays_swaps() {
    if !netns::require(&[]) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bwd = Impairment {
        reorder: 0.05,
        ..Impairment::none()
    };
    let (s, rec) = through_relay(82, 500, Impairment::none(), bwd);
    let swaps = rec.backward.reordered() as u64;
    eprintln!(
        "relay swapped {swaps} backward; sender: {}",
        s["reordering_backward"]
    );
    assert!(
        swaps >= 5,
        "the relay reordered too little to test: {swaps}"
    );
    assert_eq!(s["received"], 500, "{s}");
    assert_eq!(reordered(&s, "reordering_backward"), swaps, "{s}");
    assert_eq!(reordered(&s, "reordering"), swaps, "{s}");
    assert_eq!(reordered(&s, "reordering_forward"), 0, "{s}");
}

#[test]
fn duplicates_are_counted_per_direction_as_the_relay_made_them() {
    if !netns::require(&[]) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fwd = Impairment {
        duplicate: 0.04,
        ..Impairment::none()
    };
    let bwd = Impairment {
        duplicate: 0.03,
        ..Impairment::none()
    };
    let (s, rec) = through_relay(83, 500, fwd, bwd);
    let (df, db) = (
        rec.forward.duplicated() as u64,
        rec.backward.duplicated() as u64,
    );
    eprintln!(
        "relay duplicated {df} forward, {db} backward; sender: {} / {} / {}",
        s["duplicates"], s["duplicates_forward"], s["duplicates_backward"]
    );
    assert!(df >= 5 && db >= 5, "too few duplicates to test: {df} {db}");
    assert_eq!(s["received"], 500, "{s}");
    assert_eq!(s["lost"], 0, "{s}");
    assert_eq!(s["duplicates_forward"], df, "{s}");
    assert_eq!(s["duplicates_backward"], db, "{s}");
    assert_eq!(s["duplicates"], df + db, "{s}");
    // Duplicates are not losses and do not skew the loss split.
    assert_eq!(s["forward_lost"], 0, "{s}");
    assert_eq!(s["backward_lost"], 0, "{s}");
}
