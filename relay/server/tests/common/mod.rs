//! Helpers of the real-socket tests: a `tern-relay` child process on free loopback ports, and a
//! small TURN client over UDP or TCP written with `relay-proto`'s codec. Every read has a
//! timeout and every child is killed (by its own handle) when its guard drops, so a failing
//! test never hangs or leaks a relay.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use relay_proto::channel_data::{self, ChannelData};
use relay_proto::framing::{self, Frame};
use relay_proto::stun::{AttrType, Class, Key, Message, MessageWriter, Method, PasswordAlgorithm};
use relay_proto::stun::{MessageType, TransactionId};

/// How long any single read waits before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(3);
macro_rules! secret {
    () => {
        "loopback-test-secret"
    };
}
/// The REST secret every relay in these tests is started with.
pub const SECRET: &str = secret!();
/// The realm every relay in these tests is started with.
pub const REALM: &str = "loopback.test";
/// REQUESTED-TRANSPORT's protocol number for UDP.
pub const UDP_PROTO: u8 = 17;

pub const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The built relay binary.
pub fn relay_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tern-relay")
}

/// A loopback port free for both UDP and TCP at the time of the call.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let t = TcpListener::bind((LOCALHOST, 0)).expect("bind a TCP port");
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind((LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port found");
}

/// A relay port range of `len` ports in 10000-19999, below the kernel's ephemeral range
/// (32768+), picked at random so tests running in parallel rarely share ports (the relay
/// retries a busy port).
pub fn relay_range(len: u16) -> (u16, u16) {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).unwrap();
    let start = 10_000 + (u16::from_be_bytes(b) % 100) * 100;
    (start, start + len - 1)
}

/// A running `tern-relay`; killed when dropped.
pub struct Relay {
    pub child: Child,
    pub port: u16,
    pub addr: SocketAddr,
    pub min_port: u16,
    pub max_port: u16,
    stderr: PathBuf,
}

/// The coturn-style command line of these tests, without auth and `--allow-loopback-peers`.
pub fn base_args(port: u16, min: u16, max: u16) -> Vec<String> {
    vec![
        "-n".into(),
        "--listening-ip=127.0.0.1".into(),
        format!("--listening-port={port}"),
        "--relay-ip=127.0.0.1".into(),
        format!("--min-port={min}"),
        format!("--max-port={max}"),
        format!("--realm={REALM}"),
        "--no-tls".into(),
        "--no-cli".into(),
    ]
}

/// TURN REST auth with [`SECRET`].
pub const REST_AUTH: [&str; 2] = ["--use-auth-secret", concat!("--static-auth-secret=", secret!())];

impl Relay {
    /// Starts a relay with REST auth and loopback peers allowed, plus `extra` flags.
    pub fn start(extra: &[&str]) -> Relay {
        let mut args = vec!["--allow-loopback-peers"];
        args.extend_from_slice(extra);
        Relay::start_with(&args)
    }

    /// Starts a relay with REST auth and `extra` flags (no loopback peers unless asked for).
    pub fn start_with(extra: &[&str]) -> Relay {
        let mut args = REST_AUTH.to_vec();
        args.extend_from_slice(extra);
        Relay::start_raw(&args)
    }

    /// Starts a relay with the base command line (no auth) and `extra` flags, and waits until
    /// it answers a Binding request.
    pub fn start_raw(extra: &[&str]) -> Relay {
        for attempt in 0..3 {
            let port = free_port();
            let (min, max) = relay_range(100);
            let mut args = base_args(port, min, max);
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            let stderr = std::env::temp_dir().join(format!("tern-loopback-{}-{port}.log", std::process::id()));
            let file = std::fs::File::create(&stderr).unwrap();
            let child = Command::new(relay_bin())
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .expect("start tern-relay");
            let addr = SocketAddr::from((LOCALHOST, port));
            let mut relay = Relay { child, port, addr, min_port: min, max_port: max, stderr };
            if relay.wait_ready() {
                return relay;
            }
            // The port was taken between free_port() and the relay's bind: try another.
            eprintln!("relay did not come up (attempt {attempt}):\n{}", relay.log());
        }
        panic!("tern-relay did not start");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        let sock = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let (req, _) = binding_request();
            let _ = sock.send_to(&req, self.addr);
            let mut buf = [0u8; 1500];
            if let Ok((n, _)) = sock.recv_from(&mut buf)
                && Message::parse(&buf[..n]).is_ok()
            {
                return true;
            }
        }
        false
    }

    /// What the relay wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// A UDP client of this relay; its failures show the relay's log.
    pub fn udp(&self) -> Client {
        let mut c = Client::udp(self.addr);
        c.relay_log = Some(self.stderr.clone());
        c
    }

    /// A TCP client of this relay; its failures show the relay's log.
    pub fn tcp(&self) -> Client {
        let mut c = Client::tcp(self.addr);
        c.relay_log = Some(self.stderr.clone());
        c
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// Runs the relay binary to completion (it must exit within 10 s) and returns its output.
pub fn run_to_exit(args: &[String]) -> Output {
    let mut child = Command::new(relay_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tern-relay");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!("tern-relay {args:?} did not exit; stderr:\n{}", String::from_utf8_lossy(&out.stderr));
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

pub fn random_tid() -> TransactionId {
    let mut t = [0u8; 12];
    getrandom::fill(&mut t).unwrap();
    TransactionId(t)
}

/// A Binding request with FINGERPRINT, and its transaction id.
pub fn binding_request() -> (Vec<u8>, TransactionId) {
    let mut buf = vec![0u8; 256];
    let tid = random_tid();
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::Request), tid);
    w.add_fingerprint();
    let n = w.finish().unwrap();
    buf.truncate(n);
    (buf, tid)
}

/// An owned STUN message received from the relay.
#[derive(Clone)]
pub struct Stun(pub Vec<u8>);

impl Stun {
    pub fn msg(&self) -> Message<'_> {
        Message::parse(&self.0).expect("the relay sent a valid STUN message")
    }
    pub fn class(&self) -> Class {
        self.msg().class()
    }
    pub fn method(&self) -> Method {
        self.msg().method()
    }
    pub fn error(&self) -> Option<u16> {
        self.msg().error_code().unwrap().map(|(c, _)| c.0)
    }
    pub fn tid(&self) -> TransactionId {
        self.msg().transaction_id()
    }
}

/// Anything the relay sends a client.
pub enum Inbound {
    Stun(Stun),
    ChannelData { channel: u16, payload: Vec<u8> },
}

/// A credential the client signs its requests with.
#[derive(Clone)]
pub struct Creds {
    pub username: String,
    pub password: String,
}

impl Creds {
    /// Fresh TURN REST credentials for `user`, valid for an hour.
    pub fn rest(user: &str) -> Creds {
        let c = relay_proto::turn_rest::generate(SECRET.as_bytes(), user, 3600, unix_now());
        Creds { username: c.username, password: c.password }
    }
}

enum Link {
    Udp(UdpSocket),
    Tcp { stream: TcpStream, inbuf: Vec<u8> },
}

/// A TURN client over one 5-tuple.
pub struct Client {
    link: Link,
    pub server: SocketAddr,
    pub creds: Option<Creds>,
    pub realm: Option<String>,
    pub nonce: Option<String>,
    /// ChannelData over TCP is written one byte per `write` call.
    pub trickle: bool,
    /// The relay's log, shown when the client fails.
    pub relay_log: Option<PathBuf>,
}

impl Client {
    pub fn udp(server: SocketAddr) -> Client {
        let s = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        Client { link: Link::Udp(s), server, creds: None, realm: None, nonce: None, trickle: false, relay_log: None }
    }

    pub fn tcp(server: SocketAddr) -> Client {
        let s = TcpStream::connect_timeout(&server, IO_TIMEOUT).expect("connect to the relay over TCP");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            link: Link::Tcp { stream: s, inbuf: Vec::new() },
            server,
            creds: None,
            realm: None,
            nonce: None,
            trickle: false,
            relay_log: None,
        }
    }

    pub fn with_creds(mut self, creds: Creds) -> Client {
        self.creds = Some(creds);
        self
    }

    pub fn is_tcp(&self) -> bool {
        matches!(self.link, Link::Tcp { .. })
    }

    /// The client's own address (what XOR-MAPPED-ADDRESS must say).
    pub fn local_addr(&self) -> SocketAddr {
        match &self.link {
            Link::Udp(s) => s.local_addr().unwrap(),
            Link::Tcp { stream, .. } => stream.local_addr().unwrap(),
        }
    }

    /// Sends raw bytes. On TCP with `trickle`, one byte per write.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let trickle = self.trickle;
        match &mut self.link {
            Link::Udp(s) => {
                s.send_to(bytes, self.server).unwrap();
            }
            Link::Tcp { stream, .. } => {
                if trickle {
                    for b in bytes {
                        stream.write_all(std::slice::from_ref(b)).unwrap();
                        stream.flush().unwrap();
                    }
                } else {
                    stream.write_all(bytes).unwrap();
                }
            }
        }
    }

    /// The next message from the relay; `None` on timeout.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Inbound> {
        match &mut self.link {
            Link::Udp(s) => {
                s.set_read_timeout(Some(timeout)).unwrap();
                let mut buf = vec![0u8; 65536];
                let r = s.recv_from(&mut buf);
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let (n, from) = r.ok()?;
                assert_eq!(from, self.server, "a datagram from someone other than the relay");
                buf.truncate(n);
                Some(classify(&buf))
            }
            Link::Tcp { stream, inbuf } => {
                let deadline = Instant::now() + timeout;
                loop {
                    match framing::next_frame(inbuf) {
                        Frame::Complete(n) => {
                            let frame: Vec<u8> = inbuf.drain(..n).collect();
                            if channel_data::classify(frame[0]) == channel_data::PacketKind::ChannelData {
                                let cd = ChannelData::parse(&frame).unwrap();
                                let padded = channel_data::HEADER_LEN
                                    + cd.payload().len()
                                    + channel_data::stream_padding(cd.payload().len());
                                assert_eq!(frame.len(), padded, "ChannelData over TCP is padded to 4 bytes");
                            }
                            return Some(classify(&frame));
                        }
                        Frame::Invalid => panic!("the relay sent bytes that are neither STUN nor ChannelData"),
                        Frame::Partial(_) => {}
                    }
                    let left = deadline.checked_duration_since(Instant::now())?;
                    stream.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
                    let mut chunk = [0u8; 16384];
                    match stream.read(&mut chunk) {
                        Ok(0) => return None,
                        Ok(n) => inbuf.extend_from_slice(&chunk[..n]),
                        Err(_) => return None,
                    }
                }
            }
        }
    }

    pub fn recv(&mut self) -> Inbound {
        match self.recv_timeout(IO_TIMEOUT) {
            Some(m) => m,
            None => self.fail("no message from the relay in time"),
        }
    }

    /// Panics with `what` and the tail of the relay's log.
    pub fn fail(&self, what: &str) -> ! {
        let log = self.relay_log.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!("{what}\n--- relay log (last lines):\n{}", tail.join("\n"));
    }

    /// Asserts that `s` is a success response, else fails with its error code.
    pub fn expect_success(&self, s: &Stun, what: &str) {
        if s.class() != Class::Success {
            let e = s.msg().error_code().ok().flatten().map(|(c, r)| format!("{} {r}", c.0));
            self.fail(&format!("{what} failed: {e:?}"));
        }
    }

    /// The next STUN message, skipping nothing: panics on ChannelData.
    pub fn recv_stun(&mut self) -> Stun {
        match self.recv() {
            Inbound::Stun(s) => s,
            Inbound::ChannelData { channel, .. } => panic!("expected STUN, got ChannelData on {channel:#x}"),
        }
    }

    /// Builds a request of `method` with `attrs` added by the closure, signs it when the
    /// client has a nonce, sends it and returns the response with the same transaction id.
    pub fn request(&mut self, method: Method, attrs: impl Fn(&mut MessageWriter<'_>)) -> Stun {
        let tid = random_tid();
        let bytes = self.build(method, Class::Request, tid, &attrs);
        self.send_raw(&bytes);
        loop {
            let s = self.recv_stun();
            if s.tid() == tid {
                return s;
            }
        }
    }

    /// Sends the same request bytes again (a retransmission) and returns the response.
    pub fn request_bytes(&mut self, bytes: &[u8]) -> Stun {
        let tid = Message::parse(bytes).unwrap().transaction_id();
        self.send_raw(bytes);
        loop {
            let s = self.recv_stun();
            if s.tid() == tid {
                return s;
            }
        }
    }

    /// Encodes a message, with USERNAME/REALM/NONCE/MESSAGE-INTEGRITY once a nonce is known.
    pub fn build(
        &self,
        method: Method,
        class: Class,
        tid: TransactionId,
        attrs: &dyn Fn(&mut MessageWriter<'_>),
    ) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let mut w = MessageWriter::new(&mut buf, MessageType::new(method, class), tid);
        attrs(&mut w);
        if class == Class::Request
            && let (Some(c), Some(realm), Some(nonce)) = (&self.creds, &self.realm, &self.nonce)
        {
            let key = Key::long_term(PasswordAlgorithm::Md5, &c.username, realm, &c.password).unwrap();
            w.add_text(AttrType::USERNAME, &c.username);
            w.add_text(AttrType::REALM, realm);
            w.add_text(AttrType::NONCE, nonce);
            w.add_message_integrity(key.as_bytes());
        }
        w.add_fingerprint();
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf
    }

    /// Remembers REALM and NONCE from a 401 or 438 answer.
    pub fn learn(&mut self, s: &Stun) {
        let m = s.msg();
        if let Ok(Some(r)) = m.realm() {
            self.realm = Some(r.to_owned());
        }
        if let Ok(Some(n)) = m.nonce() {
            self.nonce = Some(n.to_owned());
        }
    }

    /// Allocate: the unauthenticated first try must get 401 with REALM and NONCE, then the
    /// signed one must succeed. Returns the success; `extra` adds attributes to both.
    pub fn allocate_with(&mut self, extra: impl Fn(&mut MessageWriter<'_>)) -> Stun {
        let attrs = |w: &mut MessageWriter<'_>| {
            w.add_requested_transport(UDP_PROTO);
            extra(w);
        };
        if self.nonce.is_none() {
            let r = self.request(Method::ALLOCATE, attrs);
            assert_eq!(r.error(), Some(401), "an Allocate without credentials gets 401");
            assert!(
                r.msg().realm().unwrap().is_some() && r.msg().nonce().unwrap().is_some(),
                "401 has REALM and NONCE"
            );
            self.learn(&r);
        }
        self.request(Method::ALLOCATE, attrs)
    }

    /// A successful allocation; returns its relayed address.
    pub fn allocate(&mut self) -> SocketAddr {
        let r = self.allocate_with(|_| {});
        self.expect_success(&r, "Allocate");
        self.check_integrity(&r);
        r.msg().xor_relayed_address().unwrap().expect("XOR-RELAYED-ADDRESS")
    }

    /// An authenticated response carries MESSAGE-INTEGRITY made with our key.
    pub fn check_integrity(&self, s: &Stun) {
        let c = self.creds.as_ref().unwrap();
        let key =
            Key::long_term(PasswordAlgorithm::Md5, &c.username, self.realm.as_ref().unwrap(), &c.password).unwrap();
        s.msg().verify_integrity(key.as_bytes()).expect("the response's MESSAGE-INTEGRITY verifies");
    }

    pub fn create_permission(&mut self, peer: SocketAddr) -> Stun {
        self.request(Method::CREATE_PERMISSION, |w| {
            w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        })
    }

    pub fn channel_bind(&mut self, channel: u16, peer: SocketAddr) -> Stun {
        self.request(Method::CHANNEL_BIND, |w| {
            w.add_channel_number(channel);
            w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        })
    }

    pub fn refresh(&mut self, lifetime: u32) -> Stun {
        self.request(Method::REFRESH, |w| {
            w.add_u32(AttrType::LIFETIME, lifetime);
        })
    }

    /// A Send indication to `peer`.
    pub fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) {
        let bytes = self.build(Method::SEND, Class::Indication, random_tid(), &|w| {
            w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
            w.add(AttrType::DATA, data);
        });
        self.send_raw(&bytes);
    }

    /// A ChannelData message; padded to 4 bytes on TCP.
    pub fn send_channel_data(&mut self, channel: u16, data: &[u8]) {
        let mut out = vec![0u8; channel_data::HEADER_LEN];
        let mut h = [0u8; channel_data::HEADER_LEN];
        channel_data::write_header(&mut h, channel, data.len()).unwrap();
        out.copy_from_slice(&h);
        out.extend_from_slice(data);
        if self.is_tcp() {
            out.resize(out.len() + channel_data::stream_padding(data.len()), 0);
        }
        self.send_raw(&out);
    }
}

fn classify(b: &[u8]) -> Inbound {
    match channel_data::classify(b[0]) {
        channel_data::PacketKind::ChannelData => {
            let cd = ChannelData::parse(b).expect("valid ChannelData from the relay");
            Inbound::ChannelData { channel: cd.channel(), payload: cd.payload().to_vec() }
        }
        _ => {
            Message::parse(b).expect("valid STUN from the relay");
            Inbound::Stun(Stun(b.to_vec()))
        }
    }
}

/// A UDP socket standing in for a peer.
pub struct Peer(pub UdpSocket);

impl Peer {
    pub fn new() -> Peer {
        let s = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        Peer(s)
    }
    pub fn addr(&self) -> SocketAddr {
        self.0.local_addr().unwrap()
    }
    /// The next datagram and its source, or `None` after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        self.0.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = vec![0u8; 65536];
        let r = self.0.recv_from(&mut buf);
        self.0.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let (n, from) = r.ok()?;
        buf.truncate(n);
        Some((buf, from))
    }
    pub fn recv(&self) -> (Vec<u8>, SocketAddr) {
        self.recv_timeout(IO_TIMEOUT).expect("the peer got nothing in time")
    }
    pub fn send_to(&self, data: &[u8], to: SocketAddr) {
        self.0.send_to(data, to).unwrap();
    }
}
