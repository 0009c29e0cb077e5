//! Reflected trains (draft-ietf-ippm-asymmetrical-pkts) through the real
//! binaries: the reflector sends the allowed number of replies, each with its
//! own T3 and at the requested length; the sender counts them as replies to
//! one test packet. Without a policy that allows it, nothing is amplified.

use stamp_tests::{json_lines, sender, Reflector};

#[test]
fn reflector_sends_the_train_the_policy_allows_and_the_sender_counts_it() {
    let r = Reflector::start(&[
        "-S",
        "127.0.0.1",
        "--tlv-opt",
        "reflected-control-enabled=true",
        "--reflected-control-max-count",
        "4",
        "--reflected-control-max-size",
        "600",
        "--reflected-control-min-interval-ns",
        "1000000",
    ]);
    let out = sender(
        "127.0.0.1",
        &r.port(),
        &[
            "-c",
            "3",
            "-d",
            "50",
            "-R",
            "--output-format",
            "json",
            "--reflected-control-count",
            "3",
            "--reflected-control-length",
            "500",
            "--reflected-control-interval-ns",
            "2000000",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let v = json_lines(&String::from_utf8_lossy(&out.stdout));
    let pkts: Vec<_> = v.iter().filter(|x| x["type"] == "packet").collect();
    assert_eq!(pkts.len(), 9, "3 packets x 3 replies");
    for p in &pkts {
        assert_eq!(p["len"], 500, "each reply at the requested length");
    }
    for seq in 0..3u64 {
        let mut t3: Vec<u64> = pkts
            .iter()
            .filter(|p| p["seq"] == seq)
            .map(|p| p["t3"].as_u64().unwrap())
            .collect();
        assert_eq!(t3.len(), 3);
        t3.sort();
        // copies leave 2 ms apart (scheduled from the first send)
        assert!(t3[2] - t3[0] >= 3_500_000, "{t3:?}");
    }
    let sum = v.iter().find(|x| x["type"] == "summary").unwrap();
    assert_eq!(sum["received"], 3);
    assert_eq!(sum["duplicates"], 0);
    assert_eq!(sum["train"]["further_replies"], 6);
    assert_eq!(sum["train"]["reverse_lost"], 0);
}

#[test]
fn without_a_policy_one_reply_of_the_request_size_with_c() {
    let r = Reflector::start(&["-S", "127.0.0.1"]);
    let out = sender(
        "127.0.0.1",
        &r.port(),
        &[
            "-c",
            "2",
            "-d",
            "20",
            "-L",
            "0.5",
            "-R",
            "--output-format",
            "json",
            "--reflected-control-count",
            "5",
            "--reflected-control-length",
            "1000",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let v = json_lines(&String::from_utf8_lossy(&out.stdout));
    let pkts: Vec<_> = v.iter().filter(|x| x["type"] == "packet").collect();
    assert_eq!(pkts.len(), 2, "no amplification by default");
    for p in pkts {
        assert!((p["len"].as_u64().unwrap()) < 100, "{p}");
        let rtpc = p["tlvs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == 12)
            .unwrap();
        assert!(rtpc["flags"].as_str().unwrap().contains('C'), "{rtpc}");
    }
}
