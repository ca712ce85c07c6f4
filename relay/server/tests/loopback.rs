//! Real-socket tests of the shell: the built `tern-relay` binary on free loopback ports, driven
//! by the TURN client of `support/` written with `relay-proto`'s codec, over UDP and TCP.
//!
//! Each test starts its own relay, so they run in parallel; every read is bounded by a timeout.
//! 438 (stale nonce) is not tested here: it needs `stale-nonce` seconds of real time, and the
//! core's scenario tests cover it with a simulated clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use relay_proto::stun::{Class, Method};
use support::*;

/// How long a test waits to be sure that something did *not* arrive.
const SILENCE: Duration = Duration::from_millis(300);

/// A relay with REST auth under [`SECRET`] and loopback peers allowed, plus `extra` flags.
fn start(extra: &[&str]) -> Relay {
    Launch::new().rest_auth().args(&["--no-cli", "--allow-loopback-peers"]).args(extra).start()
}

fn assert_in_range(relay: &Relay, addr: SocketAddr) {
    assert_eq!(addr.ip(), LOCALHOST, "relayed address is on the relay-ip");
    assert!(
        (relay.min_port..=relay.max_port).contains(&addr.port()),
        "relayed port {} is outside {}-{}",
        addr.port(),
        relay.min_port,
        relay.max_port
    );
}

#[test]
fn binding_reports_the_clients_own_address_over_udp_and_tcp() {
    let relay = start(&[]);
    for mut c in [relay.udp(), relay.tcp()] {
        let r = c.request(Method::BINDING, |_| {});
        assert_eq!(r.class(), Class::Success);
        assert_eq!(r.msg().xor_mapped_address().unwrap(), Some(c.local_addr()));
        assert_eq!(r.msg().fingerprint_ok(), Some(true), "a request with FINGERPRINT gets one back");
    }
}

/// The whole life of an allocation: 401, Allocate, CreatePermission, Send and Data, ChannelBind
/// and ChannelData both ways, Refresh 0, then 437 for the allocation that is gone.
fn allocation_life(mut c: Client, relay: &Relay, fingerprint: bool) {
    c = c.with_creds(Creds::rest(SECRET, "alice"));
    let r = c.allocate_with(|_| {});
    c.expect_success(&r, "Allocate");
    c.check_integrity(&r);
    let relayed = r.msg().xor_relayed_address().unwrap().expect("XOR-RELAYED-ADDRESS");
    assert_in_range(relay, relayed);
    assert_eq!(r.msg().xor_mapped_address().unwrap(), Some(c.local_addr()), "XOR-MAPPED-ADDRESS is the client");
    assert_eq!(r.msg().lifetime().unwrap(), Some(600), "the default lifetime");

    let peer = Peer::new();
    // Before any permission, the peer's traffic is dropped.
    peer.send_to(b"too early", relayed);
    assert!(c.recv_timeout(SILENCE).is_none(), "traffic without a permission must be dropped");

    let r = c.create_permission(&[peer.addr()]);
    c.expect_success(&r, "CreatePermission");
    c.check_integrity(&r);

    // Send indication -> the peer, from the relayed address.
    c.send_indication(peer.addr(), b"hello peer");
    let (data, from) = peer.recv();
    assert_eq!(data, b"hello peer");
    assert_eq!(from, relayed, "the peer sees the relayed address");

    // The peer -> a Data indication.
    peer.send_to(b"hello client", relayed);
    match c.recv() {
        Inbound::Stun(s) => {
            assert_eq!((s.method(), s.class()), (Method::DATA, Class::Indication));
            assert_eq!(s.msg().xor_peer_address().unwrap(), Some(peer.addr()));
            assert_eq!(s.msg().data(), Some(&b"hello client"[..]));
            let fp = if fingerprint { Some(true) } else { None };
            assert_eq!(s.msg().fingerprint_ok(), fp, "FINGERPRINT on Data indications follows --fingerprint");
        }
        Inbound::ChannelData { .. } => panic!("no channel is bound yet"),
    }

    // ChannelBind, then ChannelData both ways, with every payload length mod 4 (TCP padding).
    let channel = 0x4001;
    let r = c.channel_bind(channel, peer.addr());
    c.expect_success(&r, "ChannelBind");
    for len in [1usize, 2, 3, 4, 5, 100, 1203] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        c.send_channel_data(channel, &payload);
        let (data, from) = peer.recv();
        assert_eq!((data.as_slice(), from), (payload.as_slice(), relayed), "client -> peer, {len} bytes");

        peer.send_to(&payload, relayed);
        match c.recv() {
            Inbound::ChannelData { channel: ch, payload: p } => {
                assert_eq!(ch, channel);
                assert_eq!(p, payload, "peer -> client, {len} bytes");
            }
            Inbound::Stun(s) => panic!("expected ChannelData, got {:?} {:?}", s.method(), s.class()),
        }
    }
    // A Send indication still works next to the channel.
    c.send_indication(peer.addr(), b"still sendable");
    assert_eq!(peer.recv().0, b"still sendable");

    // Refresh with LIFETIME 0 deletes the allocation.
    let r = c.refresh(0);
    c.expect_success(&r, "Refresh 0");
    c.check_integrity(&r);
    peer.send_to(b"after delete", relayed);
    assert!(c.recv_timeout(SILENCE).is_none(), "a deleted allocation relays nothing");
    let r = c.refresh(600);
    assert_eq!(r.error(), Some(437), "Refresh without an allocation is 437 Allocation Mismatch");
}

#[test]
fn an_allocation_lives_and_dies_over_udp() {
    let relay = start(&[]);
    allocation_life(relay.udp(), &relay, false);
}

#[test]
fn an_allocation_lives_and_dies_over_tcp() {
    let relay = start(&[]);
    allocation_life(relay.tcp(), &relay, false);
}

#[test]
fn an_allocation_lives_and_dies_with_fingerprint_on() {
    // Data indications get a FINGERPRINT written in place after the payload's padding.
    let relay = start(&["--fingerprint"]);
    allocation_life(relay.udp(), &relay, true);
    allocation_life(relay.tcp(), &relay, true);
}

#[test]
fn tcp_framing_survives_one_byte_writes() {
    let relay = start(&[]);
    let mut c = relay.tcp().with_creds(Creds::rest(SECRET, "trickle"));
    // Requests, too, arrive one byte at a time.
    c.trickle = true;
    let relayed = c.allocate();
    let peer = Peer::new();
    assert_eq!(c.channel_bind(0x4FFF, peer.addr()).class(), Class::Success);
    for len in [1usize, 3, 6, 9] {
        let payload = vec![len as u8; len];
        c.send_channel_data(0x4FFF, &payload);
        assert_eq!(peer.recv(), (payload, relayed));
    }
    // Two padded ChannelData messages back to back in one write.
    c.trickle = false;
    let mut burst = Vec::new();
    for p in [&b"abc"[..], b"defgh"] {
        burst.extend_from_slice(&[0x4F, 0xFF, 0, p.len() as u8]);
        burst.extend_from_slice(p);
        burst.resize(burst.len().next_multiple_of(4), 0);
    }
    c.send_raw(&burst);
    assert_eq!(peer.recv().0, b"abc");
    assert_eq!(peer.recv().0, b"defgh");
}

#[test]
fn a_second_allocate_gets_437_and_a_retransmission_gets_the_original_success() {
    let relay = start(&[]);
    let mut c = relay.udp().with_creds(Creds::rest(SECRET, "bob"));
    let r = c.allocate_with(|_| {});
    c.expect_success(&r, "Allocate");
    let relayed = r.msg().xor_relayed_address().unwrap();
    // The same bytes again (same transaction id): the original success.
    let tid = r.tid();
    let again = c.build(Method::ALLOCATE, Class::Request, tid, &|w| {
        w.add_requested_transport(UDP_PROTO);
    });
    let r2 = c.request_bytes(&again);
    assert_eq!(r2.class(), Class::Success, "a retransmitted Allocate gets the original success");
    assert_eq!(r2.msg().xor_relayed_address().unwrap(), relayed);
    // A new transaction on the same 5-tuple: 437.
    let r3 = c.allocate_with(|_| {});
    assert_eq!(r3.error(), Some(437), "a second Allocate on the same 5-tuple is 437");
}

#[test]
fn channel_bind_rules_hold_on_the_wire() {
    let relay = start(&[]);
    let mut c = relay.udp().with_creds(Creds::rest(SECRET, "carol"));
    c.allocate();
    let (p1, p2) = (Peer::new(), Peer::new());
    assert_eq!(c.channel_bind(0x4000, p1.addr()).class(), Class::Success);
    assert_eq!(c.channel_bind(0x4000, p1.addr()).class(), Class::Success, "rebinding the same pair refreshes it");
    assert_eq!(c.channel_bind(0x4000, p2.addr()).error(), Some(400), "a number bound to another peer");
    assert_eq!(c.channel_bind(0x4002, p1.addr()).error(), Some(400), "a peer bound to another number");
    assert_eq!(c.channel_bind(0x3FFF, p2.addr()).error(), Some(400), "below 0x4000");
    // Without rfc5766-channel-numbers, RFC 8656's range ends at 0x4FFF.
    assert!(c.channel_bind(0x5000, p2.addr()).error().is_some(), "0x5000 is refused by default");
}

#[test]
fn credentials_are_checked() {
    // A static user (coturn ignores user= lines while a REST secret is set, and so does Tern).
    let relay = Launch::new()
        .args(&["--no-cli", "--lt-cred-mech", "--user=alice:wonderland", "--allow-loopback-peers"])
        .start();
    let mut c = relay.tcp().with_creds(Creds::new("alice", "wonderland"));
    c.allocate();
    let mut c = relay.udp().with_creds(Creds::new("alice", "queen"));
    assert_eq!(c.allocate_with(|_| {}).error(), Some(401), "a wrong password");
    let mut c = relay.udp().with_creds(Creds::rest(SECRET, "nobody"));
    assert_eq!(c.allocate_with(|_| {}).error(), Some(401), "no REST secret: REST credentials mean nothing");
    drop(relay);

    let relay = start(&[]);
    // Expired REST credentials: 401.
    let past = unix_now() - 10;
    let username = format!("{past}:late");
    let password = relay_proto::turn_rest::password(SECRET.as_bytes(), &username);
    let mut c = relay.udp().with_creds(Creds { username, password });
    assert_eq!(c.allocate_with(|_| {}).error(), Some(401), "an expired REST username is refused");
    // Signed with another secret: 401.
    let username = format!("{}:mallory", unix_now() + 600);
    let password = relay_proto::turn_rest::password(b"not the secret", &username);
    let mut c = relay.udp().with_creds(Creds { username, password });
    assert_eq!(c.allocate_with(|_| {}).error(), Some(401));
}

#[test]
fn two_clients_reach_each_other_through_their_relayed_addresses() {
    // Several workers, so the two allocations likely live on different ones (as two browsers'
    // do): relay-to-relay traffic goes out through 127.0.0.1 and back in.
    let relay = start(&["--relay-threads=4"]);
    let mut a = relay.udp().with_creds(Creds::rest(SECRET, "a"));
    let mut b = relay.tcp().with_creds(Creds::rest(SECRET, "b"));
    let ra = a.allocate();
    let rb = b.allocate();
    assert_eq!(a.create_permission(&[rb]).class(), Class::Success);
    assert_eq!(b.channel_bind(0x4010, ra).class(), Class::Success);
    for i in 0..20u8 {
        a.send_indication(rb, &[i; 33]);
        match b.recv() {
            Inbound::ChannelData { channel, payload } => assert_eq!((channel, payload), (0x4010, vec![i; 33])),
            Inbound::Stun(_) => panic!("b has a channel to a: expected ChannelData"),
        }
        b.send_channel_data(0x4010, &[i; 7]);
        match a.recv() {
            Inbound::Stun(s) => {
                assert_eq!(s.msg().xor_peer_address().unwrap(), Some(rb));
                assert_eq!(s.msg().data(), Some(&[i; 7][..]));
            }
            Inbound::ChannelData { .. } => panic!("a has no channel: expected a Data indication"),
        }
    }
}

#[test]
fn loopback_peers_are_refused_without_allow_loopback_peers() {
    let relay = Launch::new().rest_auth().args(&["--no-cli"]).start();
    let peer = Peer::new();
    for mut c in [relay.udp(), relay.tcp()] {
        c = c.with_creds(Creds::rest(SECRET, "dave"));
        c.allocate();
        assert_eq!(c.create_permission(&[peer.addr()]).error(), Some(403), "a loopback peer is forbidden");
        assert_eq!(c.channel_bind(0x4000, peer.addr()).error(), Some(403));
        c.send_indication(peer.addr(), b"should not leave");
    }
    assert!(peer.recv_timeout(SILENCE).is_none(), "nothing reaches a refused peer");
}

#[test]
fn external_ip_is_reported_in_xor_relayed_address() {
    let relay = start(&["--external-ip=203.0.113.5/127.0.0.1"]);
    let mut c = relay.udp().with_creds(Creds::rest(SECRET, "erin"));
    let relayed = c.allocate();
    assert_eq!(relayed.ip(), "203.0.113.5".parse::<IpAddr>().unwrap());
    assert!((relay.min_port..=relay.max_port).contains(&relayed.port()));
    // The socket really is on 127.0.0.1 at that port: a peer reaching it there gets through.
    let peer = Peer::new();
    assert_eq!(c.create_permission(&[peer.addr()]).class(), Class::Success);
    c.send_indication(peer.addr(), b"via the private address");
    let (data, from) = peer.recv();
    assert_eq!(data, b"via the private address");
    assert_eq!(from, SocketAddr::new(LOCALHOST, relayed.port()));
}

#[test]
fn a_second_relay_on_the_same_port_refuses_to_start() {
    let relay = start(&[]);
    let out = Launch::new().rest_auth().args(&["--no-cli"]).port(relay.port).run_to_exit();
    assert_eq!(out.status.code(), Some(1), "the second relay exits with status 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{}", relay.port)) && err.contains("in use"),
        "the message names the address and says it is in use: {err}"
    );
    // The first relay is unharmed.
    let mut c = relay.udp();
    assert_eq!(c.request(Method::BINDING, |_| {}).class(), Class::Success);
}

#[test]
fn bad_config_values_exit_1_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("tern-loopback-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("listening-ip=127.0.0.1\nlistening-port=70000\n", 2, "listening-port"),
        ("# a comment\nmin-port=60000\nmax-port=50000\n", 2, "min-port"),
        ("fingerprint=maybe\n", 1, "fingerprint"),
        ("listening-ip=127.0.0.300\n", 1, "listening-ip"),
    ];
    for (i, (text, line, what)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.conf"));
        std::fs::write(&path, text).unwrap();
        let out = run_to_exit(&["-c".into(), path.display().to_string()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text:?} must stop the start-up: {err}");
        let prefix = format!("{}:{line}:", path.display());
        assert!(err.contains(&prefix) && err.contains(what), "{text:?}: expected `{prefix} ...{what}...`, got: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn coalescing_loses_nothing_and_keeps_the_order() {
    // relay-coalesce-us makes a quiet worker sleep briefly between turns; every datagram must
    // still arrive, in order, in both directions and through the same-server short circuit.
    let relay = start(&["--relay-coalesce-us=200"]);
    let mut c = relay.udp().with_creds(Creds::rest(SECRET, "alice"));
    let relayed = c.allocate();
    let peer = Peer::new();
    assert_eq!(c.channel_bind(0x4000, peer.addr()).class(), Class::Success);
    for i in 0..200u32 {
        c.send_channel_data(0x4000, &i.to_be_bytes());
        peer.send_to(&i.to_be_bytes(), relayed);
    }
    for i in 0..200u32 {
        assert_eq!(peer.recv(), (i.to_be_bytes().to_vec(), relayed), "client -> peer #{i}");
    }
    for i in 0..200u32 {
        let got = c.recv_data(Duration::from_secs(2)).map(|(_, p)| p);
        assert_eq!(got, Some(i.to_be_bytes().to_vec()), "peer -> client #{i}");
    }
    let mut d = relay.udp().with_creds(Creds::rest(SECRET, "bob"));
    let relayed_d = d.allocate();
    d.create_permission(&[relayed]).result().unwrap();
    assert_eq!(c.channel_bind(0x4001, relayed_d).class(), Class::Success);
    for i in 0..100u32 {
        c.send_channel_data(0x4001, &i.to_be_bytes());
    }
    for i in 0..100u32 {
        let got = d.recv_data(Duration::from_secs(2)).map(|(_, p)| p);
        assert_eq!(got, Some(i.to_be_bytes().to_vec()), "short circuit #{i}");
    }
}

#[test]
fn even_port_reservations_hold_the_next_port_and_skip_pairs_held_elsewhere() {
    // EVEN-PORT with R: port+1 is bound when the reservation is made (as coturn does), so no
    // other process can take it before the RTCP allocation claims it; a pair whose second
    // port another process holds is skipped.
    let relay =
        Launch::new().rest_auth().range(6).args(&["--no-cli", "--relay-threads=1", "--allow-loopback-peers"]).start();
    let pairs: Vec<u16> = (relay.min_port..relay.max_port).filter(|p| p % 2 == 0).collect();
    assert!(pairs.len() >= 2, "a 6-port range has at least two even/odd pairs");
    let (last, others) = pairs.split_last().unwrap();
    // "Another process" holds the second port of every pair but the last.
    let _held: Vec<std::net::UdpSocket> =
        others.iter().map(|p| std::net::UdpSocket::bind((LOCALHOST, p + 1)).unwrap()).collect();
    let mut rtp = relay.udp().with_creds(Creds::rest(SECRET, "alice"));
    let r = rtp.allocate_with(|w| {
        w.add_even_port(true);
    });
    assert_eq!(r.relayed().unwrap().port(), *last, "the only pair with both ports free");
    let token = r.msg().reservation_token().unwrap().expect("RESERVATION-TOKEN");
    let err = std::net::UdpSocket::bind((LOCALHOST, last + 1)).expect_err("the reserved port is held by the relay");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    let mut rtcp = relay.udp().with_creds(Creds::rest(SECRET, "alice"));
    let r = rtcp.allocate_with(|w| {
        w.add_u64(relay_proto::stun::AttrType::RESERVATION_TOKEN, token);
    });
    assert_eq!(r.relayed().unwrap().port(), last + 1, "the token claims the held port");
    // The claimed relay works: a peer's datagram reaches the RTCP client.
    let peer = Peer::new();
    rtcp.create_permission(&[peer.addr()]).result().unwrap();
    peer.send_to(b"rtcp", r.relayed().unwrap());
    assert_eq!(rtcp.recv_payload(Duration::from_secs(2)), Some(b"rtcp".to_vec()));
}
