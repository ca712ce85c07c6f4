//! Shared by the `abuse_*` tests: a real `tern-relay` process on loopback, a small TURN client
//! over UDP or TCP built on the core's codec, and readings of the relay's memory and CPU time
//! from /proc.
//!
//! These tests are `#[ignore]`d in a plain `cargo test`: `scripts/tests.d/45-security.sh` runs
//! them, inside a network namespace of their own where it can, with `TERN_TEST_PRIVATE_IP` set to
//! a non-loopback address (10.x) assigned to a local interface.
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use relay_proto::framing::{self, Frame};
use relay_proto::stun::attr::PasswordAlgorithm;
use relay_proto::stun::{AttrType, Class, ErrorCode, Key, Message, MessageType, MessageWriter, Method, TransactionId};

pub const REALM: &str = "tern.test";
pub const PROTO_UDP: u8 = 17;

/// The non-loopback local address the test script set up.
pub fn private_ip() -> IpAddr {
    let v = std::env::var("TERN_TEST_PRIVATE_IP")
        .expect("TERN_TEST_PRIVATE_IP is not set: run these tests through scripts/tests.d/45-security.sh");
    v.parse().expect("TERN_TEST_PRIVATE_IP is an IP address")
}

/// A small deterministic PRNG (xorshift64*), so the tests need no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn fill(&mut self, b: &mut [u8]) {
        for chunk in b.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    t.as_nanos() as u64 ^ u64::from(std::process::id()) << 32
}

/// A port free for UDP and TCP on 127.0.0.1 and ::1.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        let ok = UdpSocket::bind(("127.0.0.1", p)).is_ok()
            && UdpSocket::bind(("::1", p)).is_ok()
            && TcpListener::bind(("::1", p)).is_ok();
        if ok {
            return p;
        }
    }
    panic!("no free port");
}

/// `n` consecutive ports free for UDP on 127.0.0.1, ::1 and `extra`, below the ephemeral range
/// so that other processes are unlikely to take them while the test runs.
pub fn free_range(n: u16, extra: &[IpAddr]) -> (u16, u16) {
    let mut rng = Rng::new(seed());
    'outer: for _ in 0..200 {
        let start = 20000 + rng.below(10000) as u16;
        let mut held = Vec::new();
        for p in start..start + n {
            for ip in ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()].iter().chain(extra) {
                match UdpSocket::bind(SocketAddr::new(*ip, p)) {
                    Ok(s) => held.push(s),
                    Err(_) => continue 'outer,
                }
            }
        }
        return (start, start + n - 1);
    }
    panic!("no free port range of {n}");
}

/// A running `tern-relay`, killed (by its PID) when dropped.
pub struct Relay {
    child: Child,
    pub port: u16,
    pub min_port: u16,
    pub max_port: u16,
    pub log: PathBuf,
}

/// The usual flags: long-term credentials for users alice, bob, carol and dave, listening and
/// relaying on 127.0.0.1 and ::1, no TLS. Peer-policy flags are the test's to add.
pub fn base_args(port: u16, min_port: u16, max_port: u16) -> Vec<String> {
    let mut v: Vec<String> = [
        "-n",
        "--listening-ip=127.0.0.1",
        "--listening-ip=::1",
        "--relay-ip=127.0.0.1",
        "--relay-ip=::1",
        "--realm=tern.test",
        "--lt-cred-mech",
        "--user=alice:alice-pw",
        "--user=bob:bob-pw",
        "--user=carol:carol-pw",
        "--user=dave:dave-pw",
        "--no-tls",
        "--no-dtls",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("--listening-port={port}"));
    v.push(format!("--min-port={min_port}"));
    v.push(format!("--max-port={max_port}"));
    v
}

impl Relay {
    /// Starts a relay on a free port with a relay range of `range` ports and these extra flags.
    pub fn start(range: u16, extra: &[&str]) -> Relay {
        Self::start_with(range, extra, &[], None)
    }

    /// As [`Relay::start`], with more local addresses (`listen` are also listened and relayed
    /// on) and, if given, `ulimit -n nofile` applied to the process.
    pub fn start_with(range: u16, extra: &[&str], listen: &[IpAddr], nofile: Option<u32>) -> Relay {
        let port = free_port();
        let (min_port, max_port) = free_range(range, listen);
        let mut args = base_args(port, min_port, max_port);
        for ip in listen {
            args.push(format!("--listening-ip={ip}"));
            args.push(format!("--relay-ip={ip}"));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = std::env::temp_dir().join(format!("tern-abuse-{}-{port}.log", std::process::id()));
        let out = std::fs::File::create(&log).unwrap();
        let bin = env!("CARGO_BIN_EXE_tern-relay");
        let mut cmd = match nofile {
            // `exec` keeps the PID: the child is the relay itself, not a shell around it.
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(format!("ulimit -n {n} && exec \"$0\" \"$@\"")).arg(bin).args(&args);
                c
            }
            None => {
                let mut c = Command::new(bin);
                c.args(&args);
                c
            }
        };
        let child = cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out).spawn().unwrap();
        let mut relay = Relay { child, port, min_port, max_port, log };
        relay.wait_ready();
        relay
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new("127.0.0.1".parse().unwrap(), self.port)
    }

    pub fn addr6(&self) -> SocketAddr {
        SocketAddr::new("::1".parse().unwrap(), self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let req = binding_request([7; 12]);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("tern-relay exited with {status} at start-up:\n{}", self.log_text());
            }
            let _ = s.send_to(&req, self.addr());
            let mut buf = [0u8; 1500];
            if s.recv_from(&mut buf).is_ok() {
                return;
            }
        }
        panic!("tern-relay did not answer a Binding within 30 s:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Resident memory, KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// User plus system CPU time, in clock ticks (USER_HZ, 100 on Linux).
    pub fn cpu_ticks(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // The command name may hold spaces: fields are counted after its closing parenthesis.
        let rest = &s[s.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }

    /// Open descriptors of the process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map(|d| d.count()).unwrap_or(0)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        } else {
            eprintln!("relay log kept at {}", self.log.display());
        }
    }
}

pub fn binding_request(tid: [u8; 12]) -> Vec<u8> {
    build(Method::BINDING, Class::Request, tid, |_| {})
}

pub fn build(method: Method, class: Class, tid: [u8; 12], f: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(method, class), TransactionId(tid));
    f(&mut w);
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}

/// Client transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

enum Sock {
    Udp(UdpSocket),
    Tcp(TcpStream, Vec<u8>),
}

/// A STUN/TURN answer or an indication, owned.
pub struct Reply(pub Vec<u8>);

impl Reply {
    pub fn msg(&self) -> Message<'_> {
        Message::parse(&self.0).expect("the relay sent valid STUN")
    }
    pub fn code(&self) -> Option<u16> {
        self.msg().error_code().ok().flatten().map(|(c, _)| c.0)
    }
    pub fn is_success(&self) -> bool {
        self.msg().class() == Class::Success
    }
}

/// A TURN client with long-term credentials.
pub struct Client {
    sock: Sock,
    pub server: SocketAddr,
    pub user: String,
    key: Key,
    nonce: Option<String>,
    next_tid: u64,
    /// Data indications and ChannelData that arrived while waiting for an answer.
    pub inbox: Vec<Vec<u8>>,
}

impl Client {
    pub fn new(proto: Proto, server: SocketAddr, user: &str) -> Client {
        Self::bound(proto, server, None, user)
    }

    /// A client whose socket is bound to `local` (UDP) or connects from it (TCP).
    pub fn bound(proto: Proto, server: SocketAddr, local: Option<IpAddr>, user: &str) -> Client {
        let local =
            local.unwrap_or(if server.is_ipv4() { "127.0.0.1".parse().unwrap() } else { "::1".parse().unwrap() });
        let sock = match proto {
            Proto::Udp => {
                let s = UdpSocket::bind(SocketAddr::new(local, 0)).unwrap();
                s.connect(server).unwrap();
                Sock::Udp(s)
            }
            Proto::Tcp => {
                let s =
                    socket2::Socket::new(socket2::Domain::for_address(server), socket2::Type::STREAM, None).unwrap();
                s.bind(&SocketAddr::new(local, 0).into()).unwrap();
                s.connect_timeout(&server.into(), Duration::from_secs(5)).unwrap();
                let s: TcpStream = s.into();
                s.set_nodelay(true).unwrap();
                Sock::Tcp(s, Vec::new())
            }
        };
        let password = format!("{user}-pw");
        Client {
            sock,
            server,
            user: user.to_owned(),
            key: Key::long_term(PasswordAlgorithm::Md5, user, REALM, &password).unwrap(),
            nonce: None,
            next_tid: seed(),
            inbox: Vec::new(),
        }
    }

    /// Whether this client talks over TCP.
    pub fn is_stream(&self) -> bool {
        matches!(self.sock, Sock::Tcp(..))
    }

    pub fn local_addr(&self) -> SocketAddr {
        match &self.sock {
            Sock::Udp(s) => s.local_addr().unwrap(),
            Sock::Tcp(s, _) => s.local_addr().unwrap(),
        }
    }

    pub fn tid(&mut self) -> [u8; 12] {
        self.next_tid = self.next_tid.wrapping_add(1);
        let mut t = [0u8; 12];
        t[4..].copy_from_slice(&self.next_tid.to_be_bytes());
        t
    }

    pub fn send_raw(&mut self, b: &[u8]) {
        match &mut self.sock {
            Sock::Udp(s) => {
                let _ = s.send(b);
            }
            Sock::Tcp(s, _) => s.write_all(b).unwrap(),
        }
    }

    /// The next message or ChannelData from the relay, or `None` after `timeout`.
    pub fn recv_raw(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        match &mut self.sock {
            Sock::Udp(s) => {
                let mut buf = vec![0u8; 65536];
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    s.set_read_timeout(Some(left)).unwrap();
                    match s.recv(&mut buf) {
                        Ok(n) => return Some(buf[..n].to_vec()),
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                        Err(_) => return None,
                    }
                }
            }
            Sock::Tcp(s, inbuf) => loop {
                if let Frame::Complete(n) = framing::next_frame(inbuf) {
                    let frame: Vec<u8> = inbuf.drain(..n).collect();
                    return Some(frame);
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                s.set_read_timeout(Some(left)).unwrap();
                let mut chunk = [0u8; 16384];
                match s.read(&mut chunk) {
                    Ok(0) => return None,
                    Ok(n) => inbuf.extend_from_slice(&chunk[..n]),
                    Err(_) => return None,
                }
            },
        }
    }

    /// Sends `req` and waits for the answer with its transaction id, retransmitting over UDP.
    /// Other traffic that arrives meanwhile goes to the inbox.
    pub fn transact(&mut self, req: &[u8]) -> Option<Reply> {
        let tid = &req[8..20];
        let tries = if matches!(self.sock, Sock::Udp(_)) { 5 } else { 1 };
        for _ in 0..tries {
            self.send_raw(req);
            let deadline = Instant::now() + Duration::from_millis(if tries > 1 { 1000 } else { 5000 });
            while let Some(b) = self.recv_raw(deadline.saturating_duration_since(Instant::now())) {
                if b.len() >= 20 && &b[8..20] == tid {
                    return Some(Reply(b));
                }
                self.inbox.push(b);
            }
        }
        None
    }

    /// A request with credentials, after the 401 that gives the nonce, retried once on 438.
    pub fn request(&mut self, method: Method, f: impl Fn(&mut MessageWriter<'_>)) -> Reply {
        if self.nonce.is_none() {
            let tid = self.tid();
            let r = self.transact(&build(method, Class::Request, tid, |w| f(w))).expect("an answer");
            if r.code() != Some(ErrorCode::UNAUTHORIZED.0) {
                return r;
            }
            self.nonce = r.msg().nonce().unwrap().map(str::to_owned);
        }
        for _ in 0..2 {
            let tid = self.tid();
            let req = self.authed(method, tid, &f);
            let r = self.transact(&req).expect("an answer");
            if r.code() == Some(ErrorCode::STALE_NONCE.0) {
                self.nonce = r.msg().nonce().unwrap().map(str::to_owned);
                continue;
            }
            return r;
        }
        panic!("two stale nonces in a row");
    }

    pub fn authed(&self, method: Method, tid: [u8; 12], f: impl Fn(&mut MessageWriter<'_>)) -> Vec<u8> {
        let nonce = self.nonce.clone().unwrap_or_default();
        build(method, Class::Request, tid, |w| {
            f(w);
            w.add_text(AttrType::USERNAME, &self.user);
            w.add_text(AttrType::REALM, REALM);
            w.add_text(AttrType::NONCE, &nonce);
            w.add_message_integrity(self.key.as_bytes());
        })
    }

    /// Allocate for UDP; `dual` asks for an IPv6 relay too. The relayed addresses, or the error.
    pub fn allocate(&mut self, dual: bool) -> Result<Vec<SocketAddr>, u16> {
        let r = self.request(Method::ALLOCATE, |w| {
            w.add_requested_transport(PROTO_UDP);
            if dual {
                w.add_family(AttrType::ADDITIONAL_ADDRESS_FAMILY, relay_proto::stun::attr::FAMILY_IPV6);
            }
        });
        if !r.is_success() {
            return Err(r.code().unwrap_or(0));
        }
        Ok(r.msg().xor_relayed_addresses().map(|a| a.unwrap()).collect())
    }

    pub fn refresh(&mut self, lifetime: u32) -> Result<(), u16> {
        let r = self.request(Method::REFRESH, |w| {
            w.add_u32(AttrType::LIFETIME, lifetime);
        });
        if r.is_success() { Ok(()) } else { Err(r.code().unwrap_or(0)) }
    }

    pub fn create_permission(&mut self, peers: &[SocketAddr]) -> Result<(), u16> {
        let r = self.request(Method::CREATE_PERMISSION, |w| {
            for p in peers {
                w.add_xor_address(AttrType::XOR_PEER_ADDRESS, *p);
            }
        });
        if r.is_success() { Ok(()) } else { Err(r.code().unwrap_or(0)) }
    }

    pub fn channel_bind(&mut self, number: u16, peer: SocketAddr) -> Result<(), u16> {
        let r = self.request(Method::CHANNEL_BIND, |w| {
            w.add_channel_number(number);
            w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        });
        if r.is_success() { Ok(()) } else { Err(r.code().unwrap_or(0)) }
    }

    pub fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) {
        let tid = self.tid();
        let m = build(Method::SEND, Class::Indication, tid, |w| {
            w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
            w.add(AttrType::DATA, data);
        });
        self.send_raw(&m);
    }

    pub fn channel_data(&mut self, number: u16, data: &[u8]) {
        let mut m = number.to_be_bytes().to_vec();
        m.extend_from_slice(&(data.len() as u16).to_be_bytes());
        m.extend_from_slice(data);
        if matches!(self.sock, Sock::Tcp(..)) {
            m.resize(m.len() + (4 - data.len() % 4) % 4, 0);
        }
        self.send_raw(&m);
    }

    /// The payload of the next ChannelData or Data indication, from the inbox first.
    pub fn recv_data(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let b = if self.inbox.is_empty() {
                self.recv_raw(deadline.saturating_duration_since(Instant::now()))?
            } else {
                self.inbox.remove(0)
            };
            if let Ok(cd) = relay_proto::channel_data::ChannelData::parse(&b) {
                return Some(cd.payload().to_vec());
            }
            if let Ok(m) = Message::parse(&b)
                && m.method() == Method::DATA
                && let Some(d) = m.data()
            {
                return Some(d.to_vec());
            }
        }
    }
}

/// Every IPv6 encoding of an IPv4 address that reduces to it: mapped, compatible, NAT64, 6to4.
pub fn v6_encodings(a: std::net::Ipv4Addr) -> Vec<IpAddr> {
    let o = a.octets();
    let x = u32::from(a);
    let mut v = vec![IpAddr::V6(a.to_ipv6_mapped())];
    // ::0.0.0.0 and ::0.0.0.1 are :: and ::1, tested as themselves.
    if x > 1 {
        v.push(IpAddr::V6(std::net::Ipv6Addr::from(u128::from(x))));
    }
    v.push(IpAddr::V6(std::net::Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, (x >> 16) as u16, x as u16)));
    v.push(IpAddr::V6(std::net::Ipv6Addr::new(
        0x2002,
        u16::from_be_bytes([o[0], o[1]]),
        u16::from_be_bytes([o[2], o[3]]),
        0,
        0,
        0,
        0,
        1,
    )));
    v
}

/// SECURITY.md §2.2: the addresses stunner's `range-scan` tries.
pub use relay_proto::policy::STUNNER_RANGE_SCAN as RANGE_SCAN;

/// Each range-scan address and, for the IPv4 ones, each of its IPv6 encodings.
pub fn range_scan_targets() -> Vec<IpAddr> {
    let mut out = Vec::new();
    for s in RANGE_SCAN {
        let ip: IpAddr = s.parse().unwrap();
        out.push(ip);
        if let IpAddr::V4(v4) = ip {
            out.extend(v6_encodings(v4));
        }
    }
    out
}
