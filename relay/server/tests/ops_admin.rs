//! The admin API: list sessions, kill one by id or all of a user's, and the client sees its
//! allocation gone; health and readiness probes; the token.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::ops::{allocated, exchange, http};
use support::{Creds, Launch, Peer, Ready, Relay};

const SECRET: &str = "admin-secret";

fn relay(extra: &[&str]) -> Relay {
    Launch::ops()
        .args(&["--use-auth-secret", &format!("--static-auth-secret={SECRET}"), "--admin-api"])
        .args(extra)
        .start()
}

#[test]
fn sessions_are_listed_and_killed_and_the_client_sees_it() {
    let r = relay(&[]);
    let peer = Peer::new();
    let (mut alice, alice_relay) = allocated(&r, SECRET, "alice", &peer);
    let (mut bob, _) = allocated(&r, SECRET, "bob", &peer);
    assert_eq!(exchange(&mut alice, &peer, alice_relay, 3), (3, 3));

    let (status, v) = r.admin("GET", "/sessions", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["count"], 2, "{v}");
    let sessions = v["sessions"].as_array().unwrap();
    let a = sessions.iter().find(|s| s["user"].as_str().unwrap().ends_with(":alice")).unwrap();
    assert_eq!(a["transport"], "udp");
    assert_eq!(a["client"], alice.local_addr().to_string());
    assert_eq!(a["relay"][0], alice_relay.to_string());
    assert!(a["bytes_to_peer"].as_u64().unwrap() >= 18, "{a}");
    assert!(a["age_seconds"].is_u64() && a["expires_in_seconds"].as_u64().unwrap() > 0);

    let (_, only) = r.admin("GET", &format!("/sessions?user={}", urlencode(bob.username())), None);
    assert_eq!(only["count"], 1, "{only}");

    // Kill alice's by id: her Refresh gets 437 and the peer's data no longer reaches her.
    let id = a["id"].as_str().unwrap().to_string();
    let (status, v) = r.admin("DELETE", &format!("/sessions/{id}"), None);
    assert_eq!((status, &v["killed"]), (200, &serde_json::json!(1)), "{v}");
    assert_eq!(alice.refresh(600).result(), Err(437), "the allocation is gone");
    peer.send_to(b"anyone there?", alice_relay);
    assert_eq!(alice.recv_data(Duration::from_millis(300)), None);
    let (status, _) = r.admin("DELETE", &format!("/sessions/{id}"), None);
    assert_eq!(status, 404, "a second kill finds nothing");

    // Kill bob's by user name: the REST user part reaches every credential bob got.
    let (_, short) = r.admin("GET", "/sessions?user=bob", None);
    assert_eq!(short["count"], 1, "{short}");
    let (status, v) = r.admin("DELETE", "/sessions?user=bob", None);
    assert_eq!((status, &v["killed"]), (200, &serde_json::json!(1)), "{v}");
    assert_eq!(bob.refresh(600).result(), Err(437));
    let (_, v) = r.admin("GET", "/sessions", None);
    assert_eq!(v["count"], 0, "{v}");
    assert!(r.wait_log("allocation ended by the admin API", Duration::from_secs(2)));
}

#[test]
fn killing_a_tcp_session_closes_its_connection() {
    let r = relay(&[]);
    let mut c = r.tcp().with_creds(Creds::rest(SECRET, "carol"));
    c.try_allocate().unwrap();
    let (_, v) = r.admin("GET", "/sessions", None);
    assert_eq!(v["sessions"][0]["transport"], "tcp", "{v}");
    let id = v["sessions"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(r.admin("DELETE", &format!("/sessions/{id}"), None).0, 200);
    assert!(c.closed_within(Duration::from_secs(2)), "the connection closes with its allocation");
}

#[test]
fn probes_answer_and_the_token_guards_the_sessions() {
    let r = relay(&["--admin-api-token=t0ps3cret"]);
    let (status, v) = r.admin("GET", "/healthz", None);
    assert_eq!((status, v["status"].as_str()), (200, Some("ok")), "{v}");
    let (status, v) = r.admin("GET", "/readyz", None);
    assert_eq!((status, v["status"].as_str()), (200, Some("ready")), "{v}");
    assert_eq!(http(r.admin_port, "GET", "/sessions", None).0, 401);
    assert_eq!(http(r.admin_port, "GET", "/sessions", Some("wrong")).0, 401);
    assert_eq!(http(r.admin_port, "DELETE", "/sessions?user=x", None).0, 401);
    assert_eq!(r.admin("GET", "/sessions", Some("t0ps3cret")).0, 200);
}

#[test]
fn an_admin_api_off_loopback_needs_a_token() {
    let mut r = Launch::ops().args(&["--admin-api", "--admin-api-address=0.0.0.0"]).ready(Ready::Now).start();
    let status = r.wait_exit(Duration::from_secs(10)).expect("the relay refuses to start");
    assert!(!status.success());
    let err = r.stderr();
    assert!(err.contains("admin-api-token"), "{err}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
