//! The same-server relay-to-relay short circuit, through the real binary on loopback: data
//! between two allocations of one server is delivered with the destination's permission checks
//! and with the sender's relay address (as clients were told it) as its source, whether the two
//! allocations live in the same worker or in two.
//!
//! With `external-ip` the relay addresses clients learn (127.0.0.2) have no socket behind them
//! (relay sockets bind 127.0.0.1), so a datagram sent to one through the kernel would be lost:
//! only the short circuit, which maps public to local, can deliver it.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use relay_proto::channel_data::{self, ChannelData};
use relay_proto::stun::{AttrType, Class, Message, MessageType, MessageWriter, Method, TransactionId};

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

fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// Starts tern-relay with `workers` workers, anonymous access, 64 relay ports.
fn relay(workers: usize, external: bool) -> Relay {
    let port = free_port();
    let min = 20000 + (port % 190) * 64;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern-relay"));
    cmd.args([
        "-n",
        "--listening-ip=127.0.0.1",
        &format!("--listening-port={port}"),
        "--relay-ip=127.0.0.1",
        &format!("--min-port={min}"),
        &format!("--max-port={}", min + 63),
        "--no-auth",
        "--allow-loopback-peers",
        "--no-tls",
        &format!("--relay-threads={workers}"),
        "--no-stdout-log",
        "--log-file=/dev/null",
    ]);
    if external {
        cmd.arg("--external-ip=127.0.0.2/127.0.0.1");
    }
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let r = Relay { child, addr };
    // Ready when it answers a Binding request.
    let probe = Client::new(addr);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        probe.send(&request(Method::BINDING, 1, |_| {}));
        if probe.recv_timeout(Duration::from_millis(100)).is_some() {
            return r;
        }
    }
    panic!("tern-relay did not start");
}

fn request(method: Method, id: u8, f: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(method, Class::Request), TransactionId([id; 12]));
    f(&mut w);
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}

struct Client {
    sock: UdpSocket,
    relay: Option<SocketAddr>,
}

impl Client {
    fn new(server: SocketAddr) -> Client {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect(server).unwrap();
        Client { sock, relay: None }
    }

    fn send(&self, b: &[u8]) {
        self.sock.send(b).unwrap();
    }

    fn recv_timeout(&self, t: Duration) -> Option<Vec<u8>> {
        self.sock.set_read_timeout(Some(t)).unwrap();
        let mut buf = vec![0u8; 2048];
        let n = self.sock.recv(&mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    }

    /// Sends a request and returns the success response's bytes; panics on an error response.
    fn call(&self, req: Vec<u8>) -> Vec<u8> {
        for _ in 0..20 {
            self.send(&req);
            if let Some(r) = self.recv_timeout(Duration::from_millis(200)) {
                let m = Message::parse(&r).unwrap();
                assert_eq!(m.class(), Class::Success, "error: {:?}", m.error_code());
                return r;
            }
        }
        panic!("no answer");
    }

    fn allocate(server: SocketAddr) -> Client {
        let mut c = Client::new(server);
        let r = c.call(request(Method::ALLOCATE, 2, |w| {
            w.add_requested_transport(17);
        }));
        c.relay = Message::parse(&r).unwrap().xor_relayed_address().unwrap();
        c
    }

    fn bind(&self, number: u16, peer: SocketAddr) {
        self.call(request(Method::CHANNEL_BIND, 3, |w| {
            w.add_channel_number(number);
            w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        }));
    }

    fn permit(&self, peer: SocketAddr) {
        self.call(request(Method::CREATE_PERMISSION, 4, |w| {
            w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        }));
    }

    fn send_channel(&self, number: u16, payload: &[u8]) {
        let mut b = vec![0u8; 4 + payload.len()];
        let mut h = [0u8; 4];
        channel_data::write_header(&mut h, number, payload.len()).unwrap();
        b[..4].copy_from_slice(&h);
        b[4..].copy_from_slice(payload);
        self.send(&b);
    }

    /// The next data message: (channel number or the Data indication's XOR-PEER-ADDRESS, payload).
    fn recv_data(&self, t: Duration) -> Option<(Result<u16, SocketAddr>, Vec<u8>)> {
        let b = self.recv_timeout(t)?;
        if let Ok(cd) = ChannelData::parse(&b) {
            return Some((Ok(cd.channel()), cd.payload().to_vec()));
        }
        let m = Message::parse(&b).ok()?;
        assert_eq!((m.method(), m.class()), (Method::DATA, Class::Indication));
        Some((Err(m.xor_peer_address().unwrap().unwrap()), m.data().unwrap().to_vec()))
    }
}

fn scenario(workers: usize, external: bool) {
    let r = relay(workers, external);
    // Eight pairs, so that with two workers some pairs straddle them (SO_REUSEPORT spreads
    // clients by their port; all eight on one side has odds of 1 in 256).
    let clients: Vec<Client> = (0..16).map(|_| Client::allocate(r.addr)).collect();
    let public_ip = if external { "127.0.0.2" } else { "127.0.0.1" };
    for c in &clients {
        assert_eq!(c.relay.unwrap().ip().to_string(), public_ip);
    }
    for pair in clients.chunks(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (ra, rb) = (a.relay.unwrap(), b.relay.unwrap());
        a.bind(0x4000, rb);
        // B has no permission for A: nothing may arrive.
        a.send_channel(0x4000, b"before permission");
        assert!(b.recv_data(Duration::from_millis(300)).is_none(), "delivered without the destination's permission");
        // With a permission, a Data indication from A's relay address (as clients know it).
        b.permit(ra);
        a.send_channel(0x4000, b"hello b");
        assert_eq!(b.recv_data(Duration::from_secs(2)), Some((Err(ra), b"hello b".to_vec())));
        // With a channel, ChannelData on B's number; and back the other way.
        b.bind(0x4001, ra);
        a.send_channel(0x4000, b"on a channel");
        assert_eq!(b.recv_data(Duration::from_secs(2)), Some((Ok(0x4001), b"on a channel".to_vec())));
        b.send_channel(0x4001, b"hello a");
        assert_eq!(a.recv_data(Duration::from_secs(2)), Some((Ok(0x4000), b"hello a".to_vec())));
    }
}

#[test]
fn short_circuit_keeps_permissions_and_source_in_one_worker() {
    scenario(1, false);
}

#[test]
fn short_circuit_keeps_permissions_and_source_across_workers() {
    scenario(2, false);
}

#[test]
fn short_circuit_maps_external_addresses() {
    scenario(2, true);
}
