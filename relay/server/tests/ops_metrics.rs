//! The Prometheus exporter: the counters move as traffic flows, per-user series only when asked
//! for, and the text format holds together (promtool checks it too, in scripts/tests.d/70-ops.sh).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::ops::{allocated, exchange, http, metric};
use support::{Creds, Launch, Peer, Relay, wait_until};

const SECRET: &str = "metrics-secret";

fn relay(extra: &[&str]) -> Relay {
    Launch::ops()
        .args(&["--use-auth-secret", &format!("--static-auth-secret={SECRET}"), "--prometheus"])
        .args(extra)
        .start()
}

#[test]
fn counters_move_as_traffic_flows() {
    let r = relay(&[]);
    let before = r.scrape();
    assert_eq!(metric(&before, "tern_allocations{transport=\"udp\"}"), Some(0.0), "{before}");
    assert_eq!(metric(&before, "tern_relayed_packets_total{direction=\"client_to_peer\"}"), Some(0.0));
    assert!(!before.contains("user=\""), "no per-user series unless prometheus-username-labels is on");

    let peer = Peer::new();
    let (mut c, relayed) = allocated(&r, SECRET, "alice", &peer);
    assert_eq!(exchange(&mut c, &peer, relayed, 20), (20, 20));
    // A bad password, and a peer the policy refuses.
    let mut bad = r.udp().with_creds(Creds::rest("not-the-secret", "mallory"));
    assert_eq!(bad.try_allocate(), Err(401));
    assert_eq!(c.create_permission(&["10.1.2.3:9".parse().unwrap()]).result(), Err(403));

    r.wait_metric("tern_relayed_packets_total{direction=\"peer_to_client\"}", 20.0);
    let after = r.scrape();
    let m = |s: &str| metric(&after, s).unwrap_or_else(|| panic!("{s} missing in\n{after}"));
    assert_eq!(m("tern_allocations{transport=\"udp\"}"), 1.0);
    assert_eq!(m("tern_allocations_created_total{transport=\"udp\"}"), 1.0);
    assert_eq!(m("tern_relayed_packets_total{direction=\"client_to_peer\"}"), 20.0);
    assert_eq!(m("tern_relayed_packets_total{direction=\"peer_to_client\"}"), 20.0);
    // "ping 0".."ping 19": 6 bytes each for 0–9, 7 for 10–19.
    assert_eq!(m("tern_relayed_bytes_total{direction=\"client_to_peer\"}"), 130.0);
    assert_eq!(m("tern_auth_failures_total{reason=\"bad_integrity\"}"), 1.0);
    assert_eq!(m("tern_peer_denied_total{reason=\"private\"}"), 1.0);
    assert!(m("tern_auth_challenges_total") >= 2.0);
    let per_worker: f64 = (0..2).map(|w| m(&format!("tern_worker_relayed_packets_total{{worker=\"{w}\"}}"))).sum();
    assert_eq!(per_worker, 40.0, "per-worker load adds up to the total");
    assert!(m("tern_worker_busy_seconds_total{worker=\"0\"}") >= 0.0);
    assert!(m("process_open_fds") > 0.0);

    // The allocation ends: the gauge goes back, the counter stays.
    c.refresh(0).result().unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        metric(&r.scrape(), "tern_allocations{transport=\"udp\"}") == Some(0.0)
    }));
    assert_eq!(metric(&r.scrape(), "tern_allocations_created_total{transport=\"udp\"}"), Some(1.0));

    // coturn's health check on `/`, and a clear 404 elsewhere.
    assert_eq!(http(r.metrics_port, "GET", "/", None).0, 200);
    assert_eq!(http(r.metrics_port, "GET", "/nope", None).0, 404);
    assert_eq!(http(r.metrics_port, "POST", "/metrics", None).0, 405);
}

#[test]
fn the_exposition_is_well_formed() {
    let r = relay(&[]);
    let text = r.scrape();
    let mut typed = std::collections::HashMap::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(typed.insert(name.to_string(), kind.to_string()).is_none(), "{name} typed twice");
            assert_eq!(kind.ends_with("counter"), name.ends_with("_total"), "{name} is a {kind}");
        } else if !l.starts_with('#') {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(typed.contains_key(name), "{name} has no TYPE line");
            let value = l.rsplit_once(' ').unwrap().1;
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
    }
    assert!(typed.len() > 20);
}

#[test]
fn per_user_series_are_opt_in_and_follow_the_live_allocations() {
    let r = relay(&["--prometheus-username-labels"]);
    let peer = Peer::new();
    let (mut a, _) = allocated(&r, SECRET, "alice", &peer);
    let (_b, _) = allocated(&r, SECRET, "bob", &peer);
    let text = r.scrape();
    // The REST timestamp is dropped: one series per user, not per credential.
    assert_eq!(metric(&text, "tern_user_allocations{user=\"alice\"}"), Some(1.0), "{text}");
    assert_eq!(metric(&text, "tern_user_allocations{user=\"bob\"}"), Some(1.0), "{text}");
    a.refresh(0).result().unwrap();
    let text = r.scrape();
    assert_eq!(metric(&text, "tern_user_allocations{user=\"alice\"}"), None, "ended users leave no series");
}

/// Sleeps taken by coalescing, summed over the two workers.
fn coalesce_sleeps(r: &Relay) -> f64 {
    let text = r.scrape();
    (0..2)
        .map(|w| {
            let s = format!("tern_worker_coalesce_sleeps_total{{worker=\"{w}\"}}");
            metric(&text, &s).unwrap_or_else(|| panic!("{s} missing in\n{text}"))
        })
        .sum()
}

/// A peer trickles `n` datagrams, one every `gap`, to `relayed` while the client reads them;
/// how many arrived in order.
fn trickle(c: &mut support::Client, peer: Peer, relayed: std::net::SocketAddr, n: u32, gap: Duration) -> u32 {
    let sender = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        for i in 0..n {
            while start.elapsed() < gap * i {
                std::hint::spin_loop();
            }
            peer.send_to(&i.to_be_bytes(), relayed);
        }
    });
    let mut in_order: u32 = 0;
    while let Some(p) = c.recv_payload(Duration::from_secs(2)) {
        assert_eq!(p, in_order.to_be_bytes(), "datagram {in_order} out of order or lost");
        in_order += 1;
        if in_order == n {
            break;
        }
    }
    sender.join().unwrap();
    in_order
}

#[test]
fn coalescing_is_on_by_default_under_a_trickle_and_loses_nothing() {
    // relay-coalesce-us defaults to 50: once a worker relays over 10,000 datagrams a second it
    // measures its CPU per datagram with and without the sleep (100 ms each) and keeps the
    // cheaper; the second busy epoch always runs with coalescing on, so a trickle of ~25,000
    // datagrams a second for ~0.8 s must see sleeps. Every datagram still arrives, in order.
    let r = relay(&[]);
    assert_eq!(coalesce_sleeps(&r), 0.0);
    let peer = Peer::new();
    let (mut c, relayed) = allocated(&r, SECRET, "alice", &peer);
    let n = 20_000;
    assert_eq!(trickle(&mut c, peer, relayed, n, Duration::from_micros(40)), n);
    let sleeps = r.wait_metric("tern_worker_coalesce_sleeps_total{worker=\"0\"}", 1.0)
        + metric(&r.scrape(), "tern_worker_coalesce_sleeps_total{worker=\"1\"}").unwrap_or(0.0);
    assert!(sleeps >= 1.0, "no coalescing sleep under a {n}-datagram trickle");

    // Off: the same trickle, no sleeps.
    let r = relay(&["--relay-coalesce-us=0"]);
    let peer = Peer::new();
    let (mut c, relayed) = allocated(&r, SECRET, "alice", &peer);
    assert_eq!(trickle(&mut c, peer, relayed, n, Duration::from_micros(40)), n);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(coalesce_sleeps(&r), 0.0);
}
