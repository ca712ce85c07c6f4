//! The relay accepts the sidecar's credentials: a real TURN Allocate, authenticated with
//! MESSAGE-INTEGRITY under the credentials a paired member received, succeeds on a running relay;
//! a wrong password and expired credentials are refused.
//!
//! Needs a relay binary that takes coturn's flags: `TERN_RELAY_BIN=/path/to/tern-relay` (or
//! coturn's `turnserver`), plus `TERN_RELAY_EXTRA_ARGS` for flags only that relay needs.
//! `scripts/tests.d/60-sidecar.sh` runs it with `--ignored`.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use relay_proto::stun::attr::AttrType;
use relay_proto::stun::integrity::Key;
use relay_proto::stun::reader::Message;
use relay_proto::stun::writer::MessageWriter;
use relay_proto::stun::{Class, MessageType, Method, TransactionId};
use relay_proto::turn_rest;
use support::*;

const REALM: &str = "tern.test";

struct Relay {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_relay(bin: &str) -> Relay {
    // A listening port free for UDP and TCP, and a relay range from the pid (distinct per run).
    let port = loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            break p;
        }
    };
    let base = 40_000 + (std::process::id() % 200) as u16 * 100;
    let mut cmd = Command::new(bin);
    cmd.args([
        "-n".to_owned(),
        "--listening-ip=127.0.0.1".into(),
        format!("--listening-port={port}"),
        "--relay-ip=127.0.0.1".into(),
        format!("--min-port={base}"),
        format!("--max-port={}", base + 99),
        format!("--realm={REALM}"),
        "--use-auth-secret".into(),
        format!("--static-auth-secret={SECRET}"),
        "--allow-loopback-peers".into(),
    ]);
    if let Ok(extra) = std::env::var("TERN_RELAY_EXTRA_ARGS") {
        cmd.args(extra.split_whitespace());
    }
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| panic!("{bin}: {e}"));
    let relay = Relay { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) };
    // Ready once it answers a Binding request.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "relay {bin} did not answer on {}", relay.addr);
        let mut buf = [0u8; 64];
        let w = MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::Request), tid());
        let n = w.finish().unwrap();
        sock.send_to(&buf[..n], relay.addr).unwrap();
        let mut r = [0u8; 1500];
        if let Ok((n, _)) = sock.recv_from(&mut r)
            && Message::parse(&r[..n]).is_ok_and(|m| m.class() == Class::Success)
        {
            return relay;
        }
    }
}

fn tid() -> TransactionId {
    let mut t = [0u8; 12];
    getrandom::fill(&mut t).unwrap();
    TransactionId(t)
}

/// One Allocate round trip; returns the response bytes.
fn allocate(sock: &UdpSocket, relay: SocketAddr, auth: Option<(&str, &str, &[u8])>) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::ALLOCATE, Class::Request), tid());
    assert!(w.add_requested_transport(17));
    if let Some((user, pass, nonce)) = auth {
        assert!(w.add_text(AttrType::USERNAME, user));
        assert!(w.add_text(AttrType::REALM, REALM));
        assert!(w.add(AttrType::NONCE, nonce));
        let key = Key::long_term(relay_proto::stun::attr::PasswordAlgorithm::Md5, user, REALM, pass).unwrap();
        assert!(w.add_message_integrity(key.as_bytes()));
    }
    assert!(w.add_fingerprint());
    let n = w.finish().unwrap();
    sock.send_to(&buf[..n], relay).unwrap();
    let mut r = vec![0u8; 1500];
    let (n, _) = sock.recv_from(&mut r).expect("no answer to Allocate");
    r.truncate(n);
    r
}

fn error_code(raw: &[u8]) -> Option<u16> {
    Message::parse(raw).unwrap().error_code().unwrap().map(|(c, _)| c.0)
}

/// Allocates with `user`/`pass`, answering the first 401's nonce challenge. `Ok(relayed
/// address)` or `Err(error code)`.
fn allocate_with(relay: SocketAddr, user: &str, pass: &str) -> Result<SocketAddr, u16> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let first = allocate(&sock, relay, None);
    assert_eq!(error_code(&first), Some(401), "an unauthenticated Allocate is challenged");
    let m = Message::parse(&first).unwrap();
    let nonce = m.get(AttrType::NONCE).expect("401 carries a NONCE").to_vec();
    assert_eq!(m.get(AttrType::REALM), Some(REALM.as_bytes()));
    let resp = allocate(&sock, relay, Some((user, pass, &nonce)));
    let m = Message::parse(&resp).unwrap();
    match m.class() {
        Class::Success => Ok(m.xor_relayed_address().unwrap().expect("XOR-RELAYED-ADDRESS")),
        _ => Err(error_code(&resp).unwrap_or(0)),
    }
}

#[test]
#[ignore = "needs a running TURN relay: TERN_RELAY_BIN=/path/to/tern-relay (scripts/tests.d/60-sidecar.sh)"]
fn the_relay_accepts_the_sidecars_credentials() {
    let bin = std::env::var("TERN_RELAY_BIN").expect("TERN_RELAY_BIN");
    let relay = start_relay(&bin);
    let srv = start(|s| s.turn_uris = vec![format!("turn:{}?transport=udp", relay.addr)]);
    let (mut tv, mut sender) = (Client::connect(srv.addr(), "/ws"), Client::connect(srv.addr(), "/ws"));
    tv.send(serde_json::json!({"type": "create"}));
    let code = tv.expect("created")["code"].as_str().unwrap().to_owned();
    sender.send(serde_json::json!({"type": "join", "code": code}));
    sender.expect("joined");
    let creds = sender.expect("credentials");
    let turn = &creds["iceServers"][0];
    assert_eq!(turn["urls"][0], format!("turn:{}?transport=udp", relay.addr));
    let (user, pass) = (turn["username"].as_str().unwrap(), turn["credential"].as_str().unwrap());

    let relayed = allocate_with(relay.addr, user, pass)
        .unwrap_or_else(|c| panic!("the relay refused the sidecar's credentials: {c}"));
    assert_eq!(relayed.ip(), relay.addr.ip());
    tv.expect("peer-joined");
    let tv_turn = tv.expect("credentials")["iceServers"][0].clone();
    allocate_with(relay.addr, tv_turn["username"].as_str().unwrap(), tv_turn["credential"].as_str().unwrap())
        .expect("the TV's credentials work too");

    // The relay really checks: a wrong password and expired credentials are refused.
    assert_eq!(allocate_with(relay.addr, user, "d3JvbmcgcGFzc3dvcmQ="), Err(401));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let old = turn_rest::generate(SECRET.as_bytes(), "late", 60, now - 3600);
    assert_eq!(allocate_with(relay.addr, &old.username, &old.password), Err(401));
}
