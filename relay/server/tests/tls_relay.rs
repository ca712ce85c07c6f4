//! TURN over TLS end to end against the `tern-relay` binary on loopback: relaying to a UDP
//! peer (Send/Data and ChannelData), ALPN offered but never required, a ClientHello on the
//! plain TCP port, TLS versions, and each key type.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::TcpStream;
use std::time::Duration;

use relay_proto::stun::{Class, Method};
use rustls::version::{TLS12, TLS13};
use support::tls::*;
use support::{Client, IO_TIMEOUT, Launch, echo_peer};

const BOTH: &[&rustls::SupportedProtocolVersion] = &[&TLS13, &TLS12];

fn relay_round_trips(client: &mut Client) {
    let peer = echo_peer();
    client.allocate();
    client.create_permission(&[peer]).result().unwrap();
    for i in 0..50u32 {
        let msg = format!("send-indication {i}").into_bytes();
        client.send_indication(peer, &msg);
        assert_eq!(client.recv_payload(IO_TIMEOUT).unwrap(), msg);
    }
    client.channel_bind(0x4001, peer).result().unwrap();
    // Odd lengths exercise the stream padding of ChannelData in both directions.
    for len in [1usize, 3, 5, 100, 1199, 1200] {
        let msg: Vec<u8> = (0..len).map(|b| b as u8).collect();
        client.send_channel_data(0x4001, &msg);
        assert_eq!(client.recv_payload(IO_TIMEOUT).unwrap(), msg);
    }
}

#[test]
fn turn_over_tls_relays_to_a_udp_peer_and_negotiates_stun_turn() {
    let cert = TestCert::new(KeyKind::EcdsaP256);
    let relay = Launch::tls(&cert).start();
    let cfg = client_config(&[&cert], &[b"stun.turn"], BOTH);
    let s = tls_connect(relay.tls, cfg).unwrap();
    assert_eq!(s.conn.alpn_protocol(), Some(&b"stun.turn"[..]));
    assert_eq!(s.conn.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    let mut c = turn_client(s);
    relay_round_trips(&mut c);
    assert!(relay.log_text().contains("tuple=tls:"), "the allocation should be keyed as TLS");
}

#[test]
fn alpn_is_offered_but_not_required() {
    let cert = TestCert::new(KeyKind::EcdsaP256);
    let relay = Launch::tls(&cert).start();
    // No ALPN at all, only foreign protocols, and ours after a foreign one.
    type Case<'a> = (&'a [&'a [u8]], Option<&'a [u8]>);
    let cases: [Case<'_>; 4] = [
        (&[], None),
        (&[b"h2", b"http/1.1"], None),
        (&[b"h2", b"stun.nat-discovery"], Some(b"stun.nat-discovery")),
        (&[b"stun.nat-discovery", b"stun.turn"], Some(b"stun.turn")),
    ];
    for (offered, expected) in cases {
        let s = tls_connect(relay.tls, client_config(&[&cert], offered, BOTH))
            .unwrap_or_else(|e| panic!("offering {offered:?}: {e}"));
        assert_eq!(s.conn.alpn_protocol(), expected, "offering {offered:?}");
        let mut c = turn_client(s);
        let resp = c.request(Method::BINDING, |_| {});
        assert_eq!(resp.class(), Class::Success);
    }
}

#[test]
fn a_clienthello_on_the_tcp_port_is_served_as_tls_and_plain_tcp_still_works() {
    let cert = TestCert::new(KeyKind::EcdsaP256);
    let relay = Launch::tls(&cert).start();
    let s = tls_connect(relay.addr, client_config(&[&cert], &[b"stun.turn"], BOTH)).unwrap();
    let mut c = turn_client(s);
    relay_round_trips(&mut c);
    // The same port still speaks plain TURN over TCP.
    let tcp = TcpStream::connect(relay.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut plain = turn_client(tcp);
    plain.allocate();
}

#[test]
fn tls12_and_tls13_are_served_and_no_tlsv1_2_refuses_tls12() {
    let cert = TestCert::new(KeyKind::EcdsaP256);
    let relay = Launch::tls(&cert).start();
    let s = tls_connect(relay.tls, client_config(&[&cert], &[], &[&TLS12])).unwrap();
    assert_eq!(s.conn.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    relay_round_trips(&mut turn_client(s));
    drop(relay);

    let relay = Launch::tls(&cert).args(&["--no-tlsv1_2", "--no-tlsv1", "--no-tlsv1_1"]).start();
    assert!(tls_connect(relay.tls, client_config(&[&cert], &[], &[&TLS12])).is_err());
    let s = tls_connect(relay.tls, client_config(&[&cert], &[], &[&TLS13])).unwrap();
    assert_eq!(s.conn.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
}

#[test]
fn rsa_and_ed25519_keys_with_a_chain_are_served() {
    let mut kinds = vec![KeyKind::Ed25519];
    // ring cannot make RSA keys; openssl does (scripts/tests.d/40-tls.sh also serves an RSA one).
    if std::process::Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success()) {
        kinds.push(KeyKind::Rsa);
    } else {
        eprintln!("openssl not found: the RSA case is left to scripts/tests.d/40-tls.sh");
    }
    for kind in kinds {
        let mut cert = TestCert::new(kind);
        // A full chain: the server's certificate first, then another one (an "intermediate").
        let extra = TestCert::new(KeyKind::EcdsaP256);
        cert.cert_pem.push_str(&extra.cert_pem);
        let relay = Launch::tls(&cert).start();
        let s = tls_connect(relay.tls, client_config(&[&cert], &[b"stun.turn"], BOTH)).unwrap();
        assert_eq!(s.conn.peer_certificates().map(<[_]>::len), Some(2), "the chain is sent whole");
        relay_round_trips(&mut turn_client(s));
    }
}

#[test]
fn a_cipher_list_rustls_cannot_honour_is_accepted_with_a_warning() {
    let cert = TestCert::new(KeyKind::EcdsaP256);
    let relay = Launch::tls(&cert).args(&["--cipher-list=HIGH:!aNULL:ECDHE-ECDSA-AES128-GCM-SHA256"]).start();
    assert!(relay.log_text().contains("rustls cannot honour"), "{}", relay.log_text());
    let s = tls_connect(relay.tls, client_config(&[&cert], &[], &[&TLS12])).unwrap();
    assert_eq!(
        s.conn.negotiated_cipher_suite().map(|s| s.suite()),
        Some(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
    );
}

#[test]
fn no_tls_means_no_tls_listener() {
    let cert = TestCert::new(KeyKind::EcdsaP256);
    let relay = Launch::tls(&cert).args(&["--no-tls"]).start();
    assert!(TcpStream::connect(relay.tls).is_err(), "nothing listens on the TLS port");
    // And a ClientHello on the TCP port is not STUN: the connection is closed.
    assert!(tls_connect(relay.addr, client_config(&[&cert], &[], BOTH)).is_err());
}
