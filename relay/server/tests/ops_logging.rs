//! Logging: `log-format=json` writes one JSON object a line; lines a remote source causes are
//! rate-limited per source.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::ops::allocated;
use support::{Client, Creds, Launch, Peer, Proto};

#[test]
fn json_log_lines_are_json_objects() {
    let r = Launch::ops().args(&["--use-auth-secret", "--static-auth-secret=s", "--log-format=json"]).start();
    let peer = Peer::new();
    let (_c, _) = allocated(&r, "s", "kim", &peer);
    assert!(r.wait_log("allocation created", Duration::from_secs(2)));
    let text = r.log_text();
    let mut created = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string() && v["message"].is_string(), "{line}");
        if v["message"] == "allocation created" {
            assert!(v["tuple"].as_str().unwrap().starts_with("udp:127.0.0.1:"), "{line}");
            created += 1;
        }
    }
    assert_eq!(created, 1);
}

#[test]
fn lines_caused_by_one_source_are_rate_limited() {
    let r = Launch::ops().args(&["--use-auth-secret", "--static-auth-secret=s"]).start();
    let peer = Peer::new();
    let (mut noisy, _) = allocated(&r, "s", "noisy", &peer);
    for i in 0..40u8 {
        // A private address the policy refuses: one log line each, were it not limited.
        assert_eq!(noisy.create_permission(&[format!("10.0.0.{i}:9").parse().unwrap()]).result(), Err(403));
    }
    // Another source keeps its own budget.
    let mut other =
        Client::bound(Proto::Udp, r.addr, Some("127.0.0.2".parse().unwrap())).with_creds(Creds::rest("s", "other"));
    other.try_allocate().unwrap();
    assert_eq!(other.create_permission(&["10.9.9.9:9".parse().unwrap()]).result(), Err(403));
    assert!(r.wait_log("peer=10.9.9.9:9", Duration::from_secs(2)), "{}", r.log_text());
    let text = r.log_text();
    let from_noisy = text
        .lines()
        .filter(|l| l.contains("peer refused by policy") && l.contains(&format!("udp:{}", noisy.local_addr())))
        .count();
    assert_eq!(from_noisy, 10, "one source gets 10 lines a minute:\n{text}");
    // The counters still see every refusal.
    assert!(r.log_text().lines().count() < 40);
}
