//! The connection limits over TLS: handshake timeout (slowloris), no allocation within
//! `max-allocate-timeout`, and the outbound cap that disconnects a client that does not read.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use relay_proto::stun::{Class, Method};
use rustls::pki_types::ServerName;
use rustls::version::{TLS12, TLS13};
use support::tls::*;
use support::{IO_TIMEOUT, Launch, echo_peer, wait_for};

const BOTH: &[&rustls::SupportedProtocolVersion] = &[&TLS13, &TLS12];

/// The first half of a real ClientHello.
fn half_client_hello(cert: &TestCert) -> Vec<u8> {
    let cfg = client_config(&[cert], &[b"stun.turn"], BOTH);
    let mut c = rustls::ClientConnection::new(cfg, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut hello = Vec::new();
    c.write_tls(&mut hello).unwrap();
    hello.truncate(hello.len() / 2);
    hello
}

/// True once the server closed `s` (EOF or reset).
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

#[test]
fn half_clienthellos_are_closed_after_the_handshake_timeout_while_a_client_relays() {
    let cert = TestCert::new(KeyKind::EcdsaP256);
    let relay = Launch::tls(&cert).env("TERN_TLS_HANDSHAKE_TIMEOUT_MS", "1000").start();
    let peer = echo_peer();
    let mut good = turn_client(tls_connect(relay.tls, client_config(&[&cert], &[], BOTH)).unwrap());
    good.allocate();
    good.create_permission(&[peer]).result().unwrap();
    let baseline = relay.fd_count();

    let hello = half_client_hello(&cert);
    let start = Instant::now();
    let mut stalled = Vec::new();
    for i in 0..120 {
        // Most on the TLS port, some on the TCP port (served as TLS by their first byte).
        let addr = if i % 6 == 0 { relay.addr } else { relay.tls };
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&hello).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        stalled.push(s);
    }
    // The legitimate client keeps relaying meanwhile, with no loss.
    let mut sent = 0;
    while stalled.iter_mut().any(|s| !closed_by_server(s)) {
        // The timeout is 1 s, checked every 0.1 s; the rest is slack for a loaded machine.
        assert!(start.elapsed() < Duration::from_millis(2500), "stalled handshakes still open after 2.5 s");
        let msg = format!("while stalled {sent}").into_bytes();
        good.send_indication(peer, &msg);
        assert_eq!(good.recv_payload(IO_TIMEOUT).unwrap(), msg);
        sent += 1;
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(900), "closed before the timeout ({took:?})");
    assert!(sent > 0);
    drop(stalled);
    wait_for(Duration::from_secs(3), "descriptors back to baseline", || relay.fd_count() <= baseline);
    wait_for(Duration::from_secs(3), "the timeouts in the log", || relay.counter("tls_handshake_timeouts") == 120);
}

#[test]
fn a_tls_connection_without_an_allocation_is_closed_after_max_allocate_timeout() {
    let cert = TestCert::new(KeyKind::EcdsaP256);
    let relay = Launch::tls(&cert).args(&["--max-allocate-timeout=1"]).start();
    let mut c = turn_client(tls_connect(relay.tls, client_config(&[&cert], &[], BOTH)).unwrap());
    let resp = c.request(Method::BINDING, |_| {});
    assert_eq!(resp.class(), Class::Success);
    let start = Instant::now();
    let err = c.read_frame(IO_TIMEOUT).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "a clean close_notify, then EOF: {err}");
    assert!(start.elapsed() < Duration::from_secs(4));
    // One with an allocation stays.
    let mut d = turn_client(tls_connect(relay.tls, client_config(&[&cert], &[], BOTH)).unwrap());
    d.allocate();
    std::thread::sleep(Duration::from_millis(2500));
    let resp = d.request(Method::BINDING, |_| {});
    assert_eq!(resp.class(), Class::Success);
    wait_for(Duration::from_secs(2), "the counter in the log", || relay.counter("no_allocation_closed") == 1);
}

#[test]
fn a_client_that_does_not_read_is_disconnected_and_memory_stays_bounded() {
    let cert = TestCert::new(KeyKind::EcdsaP256);
    let relay = Launch::tls(&cert).start();
    // A small receive window, so the relay's queue fills quickly.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&relay.tls.into()).unwrap();
    let tcp: TcpStream = sock.into();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut c = turn_client(tls_handshake(tcp, client_config(&[&cert], &[], BOTH)).unwrap());
    let relayed = c.allocate();
    let blaster = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer: SocketAddr = blaster.local_addr().unwrap();
    c.create_permission(&[peer]).result().unwrap();
    let rss_before = relay.rss_kib();

    // The peer sends; the client never reads. Bounded: at most 40,000 datagrams (48 MB).
    let payload = [0x5au8; 1200];
    let mut disconnected = false;
    for i in 0..40_000 {
        let _ = blaster.send_to(&payload, relayed);
        if i % 200 == 0 {
            std::thread::sleep(Duration::from_millis(2));
            if relay.log_text().contains("client reads too slowly") {
                disconnected = true;
                break;
            }
        }
    }
    let rss_after = relay.rss_kib();
    wait_for(Duration::from_secs(3), "the disconnect in the log", || {
        disconnected || relay.log_text().contains("client reads too slowly")
    });
    // The relay held at most the cap (plus rustls's buffer) for this client.
    assert!(rss_after < rss_before + 16 * 1024, "RSS grew from {rss_before} KiB to {rss_after} KiB");
    // The client reads what was delivered, then sees the end of the stream.
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(10), "the slow reader was not disconnected");
        if c.recv_payload(IO_TIMEOUT).is_none() {
            break;
        }
    }
    wait_for(Duration::from_secs(3), "the counter in the log", || relay.counter("slow_readers_disconnected") == 1);
}
