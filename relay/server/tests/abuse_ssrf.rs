//! The SSRF matrix against a real `tern-relay` with the default peer policy: every address
//! stunner's range-scan tries (SECURITY.md §2.2), as itself and in each IPv6 encoding (mapped,
//! compatible, NAT64, 6to4), is refused by CreatePermission, ChannelBind and Send, over UDP and
//! TCP client transports. Then the positive controls: an `allowed-peer-ip` entry makes a
//! private peer reachable, and the relay's own address is reachable only inside the relay range
//! (relay to relay), never on another port.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use relay_proto::stun::AttrType;
use relay_proto::stun::attr::FAMILY_IPV6;
use support::abuse::{private_ip, range_scan_targets};
use support::{Client, Creds, Launch, Proto, free_port};

const FORBIDDEN: u16 = 403;

/// UDP sockets on every local address at one port: 0.0.0.0 and [::] catch datagrams to
/// 0.0.0.0, ::, 127/8, ::1 and anything else local.
struct Catchers {
    port: u16,
    socks: Vec<UdpSocket>,
}

impl Catchers {
    fn new() -> Catchers {
        let port = free_port();
        let v4 = UdpSocket::bind(("0.0.0.0", port)).unwrap();
        let s6 = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None).unwrap();
        s6.set_only_v6(true).unwrap();
        s6.bind(&SocketAddr::new("::".parse().unwrap(), port).into()).unwrap();
        let socks = vec![v4, s6.into()];
        for s in &socks {
            s.set_nonblocking(true).unwrap();
        }
        Catchers { port, socks }
    }

    /// Everything received so far, with its source.
    fn drain(&self) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        for s in &self.socks {
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                out.push((from, buf[..n].to_vec()));
            }
        }
        out
    }
}

#[test]
#[ignore = "needs a running relay; scripts/tests.d/45-security.sh runs it"]
fn range_scan_addresses_are_refused_in_every_encoding_by_every_request_over_udp_and_tcp() {
    let relay = Launch::dual_stack(32).start();
    let catch = Catchers::new();
    let targets = range_scan_targets();
    assert_eq!(targets.len(), 31 + 29 * 4 - 1, "0.0.0.0 has no IPv4-compatible form (it is ::)");
    let mut checked = 0;
    for (proto, server) in [(Proto::Udp, relay.addr), (Proto::Tcp, relay.addr), (Proto::Udp, relay.addr6())] {
        let mut c = Client::new(proto, server).with_creds(Creds::user("alice"));
        let relays = c
            .allocate_with(|w| {
                w.add_family(AttrType::ADDITIONAL_ADDRESS_FAMILY, FAMILY_IPV6);
            })
            .relayed_all()
            .unwrap();
        assert_eq!(relays.len(), 2, "a dual-stack allocation: {relays:?}");
        for (i, &ip) in targets.iter().enumerate() {
            let what = format!("{proto:?} via {server}, peer {ip}");
            for port in [80, catch.port] {
                let peer = SocketAddr::new(ip, port);
                assert_eq!(c.create_permission(&[peer]).result(), Err(FORBIDDEN), "CreatePermission {what}");
                assert_eq!(c.channel_bind(0x4000 + i as u16, peer).result(), Err(FORBIDDEN), "ChannelBind {what}");
                c.send_indication(peer, b"ssrf probe");
                checked += 3;
            }
        }
        // All or nothing: a public peer next to a refused one installs neither.
        let public: SocketAddr = "8.8.8.8:53".parse().unwrap();
        let refused: SocketAddr = "[::ffff:169.254.169.254]:80".parse().unwrap();
        assert_eq!(c.create_permission(&[public, refused]).result(), Err(FORBIDDEN));
        // The control channel still works after all that.
        assert_eq!(c.refresh(600).result(), Ok(()));
    }
    std::thread::sleep(Duration::from_millis(500));
    let leaked = catch.drain();
    assert!(leaked.is_empty(), "datagrams reached local listeners through the relay: {leaked:?}");
    // The catchers do catch: a datagram to a range-scan loopback address arrives.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.send_to(b"control", ("127.0.0.8", catch.port)).unwrap();
    probe.send_to(b"control", ("::1", catch.port)).ok();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!catch.drain().is_empty(), "the catchers see local datagrams");
    println!("ssrf matrix: {checked} refusals checked over {} peers", targets.len());
}

/// A UDP peer on the test's private address that echoes what it receives.
fn echo_peer(ip: IpAddr) -> (SocketAddr, std::thread::JoinHandle<Vec<SocketAddr>>) {
    let s = UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    let addr = s.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let mut from_list = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            from_list.push(from);
            s.send_to(&buf[..n], from).unwrap();
        }
        from_list
    });
    (addr, h)
}

#[test]
#[ignore = "needs a running relay and a private address; scripts/tests.d/45-security.sh runs it"]
fn an_allowed_peer_ip_entry_makes_a_private_peer_reachable() {
    let ip = private_ip();
    // Without the entry the private peer is refused (the default-deny tier)...
    let strict = Launch::dual_stack(16).start();
    let mut c = Client::new(Proto::Udp, strict.addr).with_creds(Creds::user("bob"));
    c.try_allocate().unwrap();
    assert_eq!(c.create_permission(&[SocketAddr::new(ip, 9)]).result(), Err(FORBIDDEN));
    drop(strict);

    // ...with it, CreatePermission, Send, ChannelBind and ChannelData reach it, both ways.
    let relay = Launch::dual_stack(16).args(&[&format!("--allowed-peer-ip={ip}")]).start();
    for proto in [Proto::Udp, Proto::Tcp] {
        let (peer, echo) = echo_peer(ip);
        let mut c = Client::new(proto, relay.addr).with_creds(Creds::user("bob"));
        let relayed = c.try_allocate().unwrap();
        assert_eq!(c.create_permission(&[peer]).result(), Ok(()), "{proto:?}");
        c.send_indication(peer, b"via send");
        assert_eq!(c.recv_payload(Duration::from_secs(3)).as_deref(), Some(&b"via send"[..]), "{proto:?} Send");
        assert_eq!(c.channel_bind(0x4001, peer).result(), Ok(()));
        c.send_channel_data(0x4001, b"via channel");
        assert_eq!(c.recv_payload(Duration::from_secs(3)).as_deref(), Some(&b"via channel"[..]), "{proto:?} channel");
        let seen = echo.join().unwrap();
        assert!(seen.iter().all(|a| a.port() == relayed.port()), "the peer saw the relayed address: {seen:?}");
        assert_eq!(seen.len(), 2);
    }
}

#[test]
#[ignore = "needs a running relay and a private address; scripts/tests.d/45-security.sh runs it"]
fn the_relays_own_address_is_reachable_only_inside_the_relay_range() {
    let ip = private_ip();
    // The relay listens and relays on the private address too: it is one of its own.
    let relay = Launch::dual_stack(16).listen(&[ip]).start();
    let server = SocketAddr::new(ip, relay.port);
    let catch = UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
    catch.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let outside = catch.local_addr().unwrap();
    assert!(!(relay.min_port..=relay.max_port).contains(&outside.port()));
    for proto in [Proto::Udp, Proto::Tcp] {
        let mut a = Client::bound(proto, server, Some(ip)).with_creds(Creds::user("alice"));
        let mut b = Client::bound(proto, server, Some(ip)).with_creds(Creds::user("carol"));
        let ra = a.try_allocate().unwrap();
        let rb = b.try_allocate().unwrap();
        assert_eq!((ra.ip(), rb.ip()), (ip, ip), "relayed on the address the clients reached");
        // Permissions are by IP: our own IP may be permitted...
        assert_eq!(a.create_permission(&[rb]).result(), Ok(()));
        assert_eq!(b.create_permission(&[ra]).result(), Ok(()));
        // ...and relay to relay works (two clients of one server).
        a.send_indication(rb, b"relay to relay");
        assert_eq!(b.recv_payload(Duration::from_secs(3)).as_deref(), Some(&b"relay to relay"[..]), "{proto:?}");
        assert_eq!(a.channel_bind(0x4002, rb).result(), Ok(()));
        // ...but no other port of ours: not a local service, not the TURN listener.
        assert_eq!(a.channel_bind(0x4003, outside).result(), Err(FORBIDDEN), "{proto:?}");
        assert_eq!(a.channel_bind(0x4004, server).result(), Err(FORBIDDEN), "{proto:?}");
        a.send_indication(outside, b"to a local service");
        a.send_indication(server, b"nested TURN");
        let mut buf = [0u8; 64];
        assert!(catch.recv_from(&mut buf).is_err(), "{proto:?}: a datagram reached a port outside the relay range");
    }
}
