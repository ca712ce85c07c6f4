//! A TURN client over one 5-tuple (UDP, TCP, or any stream such as TLS) written with
//! `relay-proto`'s codec, and a UDP socket standing in for a peer.
//!
//! The client signs its requests once a 401 gave it REALM and NONCE (TURN REST or static
//! long-term credentials), sends a request again over UDP when no answer comes within a
//! second, keeps peer data that arrives while it waits for an answer in an inbox for the next
//! receive, and checks what the relay sends: every UDP datagram comes from the relay's address,
//! and on a stream every frame is STUN or ChannelData padded to 4 bytes.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use relay_proto::channel_data::{self, ChannelData};
use relay_proto::framing::{self, Frame};
use relay_proto::stun::TransactionId;
use relay_proto::stun::{AttrType, Class, Key, Message, MessageType, MessageWriter, Method, PasswordAlgorithm};

use super::ports::{LOCALHOST, LOCALHOST6};

/// How long a client waits for a message before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a UDP request waits for its answer before it is sent again, and how many times.
const RETRANSMIT: (Duration, u32) = (Duration::from_secs(1), 5);
/// REQUESTED-TRANSPORT's protocol number for UDP.
pub const UDP_PROTO: u8 = 17;

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

pub fn random_tid() -> TransactionId {
    let mut t = [0u8; 12];
    getrandom::fill(&mut t).unwrap();
    TransactionId(t)
}

/// A message with what `f` adds, nothing else (no credentials, no FINGERPRINT).
pub fn build(method: Method, class: Class, tid: [u8; 12], f: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(method, class), TransactionId(tid));
    f(&mut w);
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}

/// A bare 20-byte Binding request.
pub fn binding_request(tid: [u8; 12]) -> Vec<u8> {
    build(Method::BINDING, Class::Request, tid, |_| {})
}

/// An owned STUN message from the relay.
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
    pub fn tid(&self) -> TransactionId {
        self.msg().transaction_id()
    }
    pub fn error(&self) -> Option<u16> {
        self.msg().error_code().expect("a well-formed ERROR-CODE").map(|(c, _)| c.0)
    }
    pub fn is_success(&self) -> bool {
        self.class() == Class::Success
    }
    /// `Ok` for a success, else the error code (0 without one).
    pub fn result(&self) -> Result<(), u16> {
        if self.is_success() { Ok(()) } else { Err(self.error().unwrap_or(0)) }
    }
    /// An Allocate's relayed address, or its error code.
    pub fn relayed(&self) -> Result<SocketAddr, u16> {
        self.result().map(|()| self.msg().xor_relayed_address().unwrap().expect("XOR-RELAYED-ADDRESS"))
    }
    /// All of an Allocate's relayed addresses (one per address family), or its error code.
    pub fn relayed_all(&self) -> Result<Vec<SocketAddr>, u16> {
        self.result().map(|()| self.msg().xor_relayed_addresses().map(|a| a.unwrap()).collect())
    }
}

/// Anything the relay sends a client.
pub enum Inbound {
    Stun(Stun),
    ChannelData { channel: u16, payload: Vec<u8> },
}

/// Where peer data came in: on a channel, or in a Data indication from this peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Channel(u16),
    Peer(SocketAddr),
}

impl Inbound {
    fn parse(b: Vec<u8>) -> Inbound {
        match channel_data::classify(b[0]) {
            channel_data::PacketKind::ChannelData => {
                let cd = ChannelData::parse(&b).expect("valid ChannelData from the relay");
                Inbound::ChannelData { channel: cd.channel(), payload: cd.payload().to_vec() }
            }
            _ => {
                Message::parse(&b).expect("valid STUN from the relay");
                Inbound::Stun(Stun(b))
            }
        }
    }

    /// The peer data this carries (ChannelData, or a Data indication's DATA), and where from.
    pub fn into_data(self) -> Option<(Via, Vec<u8>)> {
        match self {
            Inbound::ChannelData { channel, payload } => Some((Via::Channel(channel), payload)),
            Inbound::Stun(s) => {
                let m = s.msg();
                if (m.method(), m.class()) != (Method::DATA, Class::Indication) {
                    return None;
                }
                Some((Via::Peer(m.xor_peer_address().ok().flatten()?), m.data()?.to_vec()))
            }
        }
    }
}

/// A credential the client signs its requests with.
#[derive(Clone)]
pub struct Creds {
    pub username: String,
    pub password: String,
}

impl Creds {
    pub fn new(username: &str, password: &str) -> Creds {
        Creds { username: username.to_owned(), password: password.to_owned() }
    }

    /// Fresh TURN REST credentials for `user` under `secret`, valid for an hour.
    pub fn rest(secret: &str, user: &str) -> Creds {
        let c = relay_proto::turn_rest::generate(secret.as_bytes(), user, 3600, unix_now());
        Creds { username: c.username, password: c.password }
    }

    /// One of [`super::USERS`]: its password is its name and `-pw`.
    pub fn user(name: &str) -> Creds {
        Creds::new(name, &format!("{name}-pw"))
    }
}

/// A client transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

/// A byte stream to the relay: TCP, or TLS over TCP.
pub trait Stream: Read + Write + Send {
    /// The TCP connection underneath (for timeouts and addresses).
    fn tcp(&self) -> &TcpStream;
}

impl Stream for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

enum Link {
    Udp(UdpSocket),
    Stream(Box<dyn Stream>, Vec<u8>),
}

/// A TURN client over one 5-tuple.
pub struct Client {
    link: Link,
    pub server: SocketAddr,
    pub creds: Option<Creds>,
    realm: Option<String>,
    nonce: Option<String>,
    /// Write to a stream one byte per `write` call.
    pub trickle: bool,
    /// The relay's log, shown when the client fails.
    pub relay_log: Option<PathBuf>,
    /// Peer data that came while the client waited for an answer.
    inbox: VecDeque<Inbound>,
}

impl Client {
    /// A client from a loopback address of the server's family.
    pub fn new(proto: Proto, server: SocketAddr) -> Client {
        Client::bound(proto, server, None)
    }

    /// A client from `local` (each 127.x address is a source of its own), or from loopback.
    pub fn bound(proto: Proto, server: SocketAddr, local: Option<IpAddr>) -> Client {
        let local = SocketAddr::new(local.unwrap_or(if server.is_ipv4() { LOCALHOST } else { LOCALHOST6 }), 0);
        match proto {
            Proto::Udp => Client::with_link(Link::Udp(UdpSocket::bind(local).unwrap()), server),
            Proto::Tcp => {
                let s =
                    socket2::Socket::new(socket2::Domain::for_address(server), socket2::Type::STREAM, None).unwrap();
                s.bind(&local.into()).unwrap();
                s.connect_timeout(&server.into(), IO_TIMEOUT).expect("connect to the relay over TCP");
                let s: TcpStream = s.into();
                s.set_nodelay(true).unwrap();
                Client::over(s)
            }
        }
    }

    /// A client over a connected stream (a TLS session, or a TCP connection made by hand).
    pub fn over(stream: impl Stream + 'static) -> Client {
        let server = stream.tcp().peer_addr().unwrap();
        Client::with_link(Link::Stream(Box::new(stream), Vec::new()), server)
    }

    fn with_link(link: Link, server: SocketAddr) -> Client {
        Client {
            link,
            server,
            creds: None,
            realm: None,
            nonce: None,
            trickle: false,
            relay_log: None,
            inbox: VecDeque::new(),
        }
    }

    pub fn with_creds(mut self, creds: Creds) -> Client {
        self.creds = Some(creds);
        self
    }

    /// The user name the client signs with.
    pub fn username(&self) -> &str {
        &self.creds.as_ref().expect("credentials").username
    }

    pub fn is_stream(&self) -> bool {
        matches!(self.link, Link::Stream(..))
    }

    /// The client's own address (what XOR-MAPPED-ADDRESS must say).
    pub fn local_addr(&self) -> SocketAddr {
        match &self.link {
            Link::Udp(s) => s.local_addr().unwrap(),
            Link::Stream(s, _) => s.tcp().local_addr().unwrap(),
        }
    }

    /// Sends raw bytes. On a stream with `trickle`, one byte per write.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        match &mut self.link {
            Link::Udp(s) => {
                s.send_to(bytes, self.server).unwrap();
            }
            Link::Stream(s, _) => {
                let chunk = if self.trickle { 1 } else { bytes.len().max(1) };
                for part in bytes.chunks(chunk) {
                    s.write_all(part).unwrap();
                    s.flush().unwrap();
                }
            }
        }
    }

    /// The next frame (STUN or ChannelData) from the relay, waiting at most `timeout`: an
    /// error of kind `TimedOut` when none came, `UnexpectedEof` when the stream ended.
    pub fn read_frame(&mut self, timeout: Duration) -> io::Result<Vec<u8>> {
        self.read_until(Instant::now() + timeout)
    }

    fn read_until(&mut self, deadline: Instant) -> io::Result<Vec<u8>> {
        let timed_out = || io::Error::from(ErrorKind::TimedOut);
        let quiet = |e: io::Error| if e.kind() == ErrorKind::WouldBlock { timed_out() } else { e };
        match &mut self.link {
            Link::Udp(s) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out());
                }
                s.set_read_timeout(Some(left)).unwrap();
                let mut buf = vec![0u8; 65536];
                let (n, from) = s.recv_from(&mut buf).map_err(quiet)?;
                assert_eq!(from, self.server, "a datagram from someone other than the relay");
                buf.truncate(n);
                Ok(buf)
            }
            Link::Stream(s, inbuf) => loop {
                match framing::next_frame(inbuf) {
                    Frame::Complete(n) => {
                        let frame: Vec<u8> = inbuf.drain(..n).collect();
                        if channel_data::classify(frame[0]) == channel_data::PacketKind::ChannelData {
                            let len = ChannelData::parse(&frame).expect("valid ChannelData").payload().len();
                            let padded = channel_data::HEADER_LEN + len + channel_data::stream_padding(len);
                            assert_eq!(frame.len(), padded, "ChannelData over TCP is padded to 4 bytes");
                        }
                        return Ok(frame);
                    }
                    Frame::Invalid => panic!("the relay sent bytes that are neither STUN nor ChannelData"),
                    Frame::Partial(_) => {}
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out());
                }
                s.tcp().set_read_timeout(Some(left)).unwrap();
                let mut chunk = [0u8; 16384];
                match s.read(&mut chunk).map_err(quiet)? {
                    0 => return Err(ErrorKind::UnexpectedEof.into()),
                    n => inbuf.extend_from_slice(&chunk[..n]),
                }
            },
        }
    }

    /// The next message from the relay (from the inbox first), or `None` after `timeout`.
    /// Late answers to requests already answered (retransmissions) are passed over.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Inbound> {
        if let Some(m) = self.inbox.pop_front() {
            return Some(m);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let m = Inbound::parse(self.read_until(deadline).ok()?);
            if let Inbound::Stun(s) = &m
                && matches!(s.class(), Class::Success | Class::Error)
            {
                continue;
            }
            return Some(m);
        }
    }

    pub fn recv(&mut self) -> Inbound {
        match self.recv_timeout(IO_TIMEOUT) {
            Some(m) => m,
            None => self.fail("no message from the relay in time"),
        }
    }

    /// The next peer data (ChannelData or a Data indication), passing over anything else;
    /// `None` after `timeout`.
    pub fn recv_data(&mut self, timeout: Duration) -> Option<(Via, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.recv_timeout(deadline.saturating_duration_since(Instant::now()))?;
            if let Some(d) = m.into_data() {
                return Some(d);
            }
        }
    }

    /// The payload of the next peer data.
    pub fn recv_payload(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        self.recv_data(timeout).map(|(_, payload)| payload)
    }

    /// Whether the relay closed this stream within `limit` (what comes before is dropped).
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            match self.read_until(deadline) {
                Ok(_) => {}
                Err(e) => return e.kind() != ErrorKind::TimedOut,
            }
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

    fn key(&self) -> Option<Key> {
        let c = self.creds.as_ref()?;
        Some(Key::long_term(PasswordAlgorithm::Md5, &c.username, self.realm.as_ref()?, &c.password).unwrap())
    }

    /// Encodes a message: `attrs`, then, on a request once a 401 gave the realm and nonce,
    /// USERNAME, REALM, NONCE and MESSAGE-INTEGRITY; then FINGERPRINT.
    pub fn build(
        &self,
        method: Method,
        class: Class,
        tid: TransactionId,
        attrs: &dyn Fn(&mut MessageWriter<'_>),
    ) -> Vec<u8> {
        build(method, class, tid.0, |w| {
            attrs(w);
            if class == Class::Request
                && let (Some(c), Some(realm), Some(nonce), Some(key)) =
                    (&self.creds, &self.realm, &self.nonce, self.key())
            {
                w.add_text(AttrType::USERNAME, &c.username);
                w.add_text(AttrType::REALM, realm);
                w.add_text(AttrType::NONCE, nonce);
                w.add_message_integrity(key.as_bytes());
            }
            w.add_fingerprint();
        })
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

    /// Sends `bytes` and returns the answer with their transaction id, sending them again over
    /// UDP while none comes; fails without one.
    pub fn request_bytes(&mut self, bytes: &[u8]) -> Stun {
        let tid = Message::parse(bytes).unwrap().transaction_id();
        let (wait, tries) = if self.is_stream() { (IO_TIMEOUT, 1) } else { RETRANSMIT };
        for _ in 0..tries {
            self.send_raw(bytes);
            let deadline = Instant::now() + wait;
            while let Ok(frame) = self.read_until(deadline) {
                match Inbound::parse(frame) {
                    Inbound::Stun(s) if s.tid() == tid => return s,
                    // A late answer to an earlier request.
                    Inbound::Stun(s) if s.class() != Class::Indication => {}
                    m => self.inbox.push_back(m),
                }
            }
        }
        self.fail(&format!("no answer from the relay to a {:?}", Message::parse(bytes).unwrap().method()))
    }

    fn request_once(&mut self, method: Method, attrs: &dyn Fn(&mut MessageWriter<'_>)) -> Stun {
        let bytes = self.build(method, Class::Request, random_tid(), attrs);
        self.request_bytes(&bytes)
    }

    /// Sends a request of `method` with the attributes `attrs` adds, and returns its answer.
    /// With credentials, the first 401 (or any 438) is answered by signing with the REALM and
    /// NONCE it gave and sending again.
    pub fn request(&mut self, method: Method, attrs: impl Fn(&mut MessageWriter<'_>)) -> Stun {
        let r = self.request_once(method, &attrs);
        let challenge = r.error() == Some(438) || (r.error() == Some(401) && self.nonce.is_none());
        if self.creds.is_some() && challenge {
            self.learn(&r);
            return self.request_once(method, &attrs);
        }
        r
    }

    /// Allocate, with `extra` attributes: a client with credentials and no nonce yet must get
    /// 401 with REALM and NONCE, then the signed request's answer is returned.
    pub fn allocate_with(&mut self, extra: impl Fn(&mut MessageWriter<'_>)) -> Stun {
        let attrs = |w: &mut MessageWriter<'_>| {
            w.add_requested_transport(UDP_PROTO);
            extra(w);
        };
        if self.creds.is_some() && self.nonce.is_none() {
            let r = self.request_once(Method::ALLOCATE, &attrs);
            assert_eq!(r.error(), Some(401), "an Allocate without credentials gets 401");
            assert!(
                r.msg().realm().unwrap().is_some() && r.msg().nonce().unwrap().is_some(),
                "401 has REALM and NONCE"
            );
            self.learn(&r);
        }
        self.request(Method::ALLOCATE, attrs)
    }

    /// A successful allocation (its answer signed with our key); its relayed address.
    pub fn allocate(&mut self) -> SocketAddr {
        let r = self.allocate_with(|_| {});
        self.expect_success(&r, "Allocate");
        if self.creds.is_some() {
            self.check_integrity(&r);
        }
        r.relayed().unwrap()
    }

    /// An allocation's relayed address, or the error code.
    pub fn try_allocate(&mut self) -> Result<SocketAddr, u16> {
        self.allocate_with(|_| {}).relayed()
    }

    /// An authenticated response carries MESSAGE-INTEGRITY made with our key.
    pub fn check_integrity(&self, s: &Stun) {
        let key = self.key().expect("credentials and a realm");
        s.msg().verify_integrity(key.as_bytes()).expect("the response's MESSAGE-INTEGRITY verifies");
    }

    pub fn create_permission(&mut self, peers: &[SocketAddr]) -> Stun {
        self.request(Method::CREATE_PERMISSION, |w| {
            for &peer in peers {
                w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
            }
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

    /// A ChannelData message; padded to 4 bytes on a stream.
    pub fn send_channel_data(&mut self, channel: u16, data: &[u8]) {
        let mut header = [0u8; channel_data::HEADER_LEN];
        channel_data::write_header(&mut header, channel, data.len()).unwrap();
        let mut out = [&header[..], data].concat();
        if self.is_stream() {
            out.resize(out.len() + channel_data::stream_padding(data.len()), 0);
        }
        self.send_raw(&out);
    }
}

/// A UDP socket standing in for a peer.
pub struct Peer(pub UdpSocket);

impl Peer {
    pub fn new() -> Peer {
        Peer::on(LOCALHOST)
    }

    /// A peer on another local address (127.0.0.3 is not one of the relay's own).
    pub fn on(ip: IpAddr) -> Peer {
        Peer(UdpSocket::bind((ip, 0)).unwrap())
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.local_addr().unwrap()
    }

    /// The next datagram and its source, or `None` after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        self.0.set_read_timeout(Some(timeout.max(Duration::from_millis(1)))).unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, from) = self.0.recv_from(&mut buf).ok()?;
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

/// A UDP echo peer on loopback, run by a thread until the test process ends.
pub fn echo_peer() -> SocketAddr {
    let s = UdpSocket::bind((LOCALHOST, 0)).unwrap();
    let addr = s.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 65536];
        while let Ok((n, from)) = s.recv_from(&mut b) {
            let _ = s.send_to(&b[..n], from);
        }
    });
    addr
}
