//! Shared by the `ops_*` scenario tests: a `tern-relay` process on loopback with ephemeral
//! ports, a small TURN client (UDP or TCP, Send/Data indications) with exact control over each
//! request, an HTTP getter, and a Prometheus text reader.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use relay_proto::stun::{AttrType, Key, Message, MessageWriter, PasswordAlgorithm};
use relay_proto::stun::{Class, MessageType, Method, TransactionId};

pub const REALM: &str = "ops.test";

/// A port free on 127.0.0.1 for both TCP and UDP (best effort, as scripts/lib.sh's free_port).
pub fn free_port() -> u16 {
    loop {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// A relay port range of 200 that nothing else is likely to use at once.
fn relay_range() -> (u16, u16) {
    let seed =
        std::process::id().wrapping_mul(7919) ^ SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    let base = 20000 + (seed % 150) as u16 * 200;
    (base, base + 199)
}

fn scratch_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "tern-ops-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A running `tern-relay`.
pub struct Relay {
    child: Option<Child>,
    pub port: u16,
    pub addr: SocketAddr,
    pub metrics_port: u16,
    pub admin_port: u16,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub config: PathBuf,
    pub pidfile: PathBuf,
}

/// How to start a relay.
pub struct RelayOpts {
    /// The config file's text (the relay is started with `-c`); `None`: `-n`.
    pub config: Option<String>,
    /// Extra command-line arguments.
    pub args: Vec<String>,
    pub wait_ready: bool,
    /// Leave TLS on (the caller passes cert, pkey and tls-listening-port); off by default.
    pub tls: bool,
}

impl Default for RelayOpts {
    fn default() -> Self {
        RelayOpts { config: None, args: Vec::new(), wait_ready: true, tls: false }
    }
}

impl Relay {
    /// A relay with REST auth under `secret` (on the command line, unless a config is given).
    pub fn start(mut opts: RelayOpts) -> Relay {
        let dir = scratch_dir();
        let port = free_port();
        let (metrics_port, admin_port) = (free_port(), free_port());
        let (min, max) = relay_range();
        let log = dir.join("relay.log");
        let config = dir.join("turnserver.conf");
        let pidfile = dir.join("relay.pid");
        let mut args: Vec<String> = Vec::new();
        match &opts.config {
            Some(text) => {
                std::fs::write(&config, text).unwrap();
                args.push("-c".into());
                args.push(config.to_string_lossy().into_owned());
            }
            None => args.push("-n".into()),
        }
        args.extend([
            "--listening-ip=127.0.0.1".to_string(),
            format!("--listening-port={port}"),
            "--relay-ip=127.0.0.1".into(),
            format!("--min-port={min}"),
            format!("--max-port={max}"),
            format!("--realm={REALM}"),
            "--relay-threads=2".into(),
            "--allow-loopback-peers".into(),
            format!("--log-file={}", log.display()),
            "--no-stdout-log".into(),
            format!("--pidfile={}", pidfile.display()),
            format!("--prometheus-port={metrics_port}"),
            "--prometheus-address=127.0.0.1".into(),
            format!("--admin-api-port={admin_port}"),
        ]);
        if !opts.tls {
            args.push("--no-tls".into());
        }
        args.append(&mut opts.args);
        let child = Command::new(env!("CARGO_BIN_EXE_tern-relay"))
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut r = Relay { child: Some(child), port, addr, metrics_port, admin_port, dir, log, config, pidfile };
        if opts.wait_ready {
            r.wait_ready();
        }
        r
    }

    /// Waits until a STUN Binding request is answered.
    pub fn wait_ready(&mut self) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let req = build(Method::BINDING, Class::Request, [7; 12], |_| {});
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            if let Some(st) = self.try_wait() {
                let mut err = String::new();
                if let Some(e) = self.child.as_mut().and_then(|c| c.stderr.as_mut()) {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("tern-relay exited with {st} before it was ready: {err}\n{}", self.log_text());
            }
            let _ = s.send_to(&req, self.addr);
            if s.recv_from(&mut buf).is_ok() {
                return;
            }
        }
        panic!("tern-relay did not answer a Binding request in 20 s");
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().unwrap().try_wait().unwrap()
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(e) = self.child.as_mut().and_then(|c| c.stderr.as_mut()) {
            let _ = e.read_to_string(&mut err);
        }
        err
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has a line containing `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        wait_until(limit, || self.log_text().contains(needle))
    }

    pub fn scrape(&self) -> String {
        let (status, body) = http(self.metrics_port, "GET", "/metrics", None);
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Scrapes until `name` reaches at least `want` (workers publish ten times a second).
    pub fn wait_metric(&self, name: &str, want: f64) -> f64 {
        let mut last = f64::NAN;
        wait_until(Duration::from_secs(5), || {
            last = metric(&self.scrape(), name).unwrap_or(f64::NAN);
            last >= want
        });
        last
    }

    pub fn admin(&self, method: &str, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let (status, body) = http(self.admin_port, method, path, token);
        let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{method} {path}: {e}: {body:?}"));
        (status, v)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; (status, body).
pub fn http(port: u16, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

/// The value of the sample `series` (name plus labels exactly as printed) in a scrape.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

pub fn build(method: Method, class: Class, tid: [u8; 12], f: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(method, class), TransactionId(tid));
    f(&mut w);
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream, Vec<u8>),
}

/// A TURN client speaking through one 5-tuple.
pub struct TurnClient {
    conn: Conn,
    server: SocketAddr,
    pub username: String,
    password: String,
    realm: Option<String>,
    nonce: Option<String>,
    next_tid: u32,
    data: VecDeque<(SocketAddr, Vec<u8>)>,
}

/// A response: the class and error code, and the raw bytes.
pub struct Reply {
    pub raw: Vec<u8>,
}

impl Reply {
    pub fn msg(&self) -> Message<'_> {
        Message::parse(&self.raw).unwrap()
    }
    pub fn is_success(&self) -> bool {
        self.msg().class() == Class::Success
    }
    pub fn code(&self) -> Option<u16> {
        self.msg().error_code().ok().flatten().map(|(c, _)| c.0)
    }
}

impl TurnClient {
    /// A UDP client with TURN REST credentials for `user` under `secret`.
    pub fn rest_udp(server: SocketAddr, secret: &str, user: &str) -> Self {
        Self::rest_udp_from("127.0.0.1", server, secret, user)
    }

    /// Same, from a given loopback address (each 127.x address is a separate source).
    pub fn rest_udp_from(local: &str, server: SocketAddr, secret: &str, user: &str) -> Self {
        let sock = UdpSocket::bind((local, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        Self::with(Conn::Udp(sock), server, secret, user)
    }

    /// A TCP client with TURN REST credentials.
    pub fn rest_tcp(server: SocketAddr, secret: &str, user: &str) -> Self {
        let s = TcpStream::connect(server).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        s.set_nodelay(true).unwrap();
        Self::with(Conn::Tcp(s, Vec::new()), server, secret, user)
    }

    fn with(conn: Conn, server: SocketAddr, secret: &str, user: &str) -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let creds = relay_proto::turn_rest::generate(secret.as_bytes(), user, 3600, now);
        TurnClient {
            conn,
            server,
            username: creds.username,
            password: creds.password,
            realm: None,
            nonce: None,
            next_tid: 1,
            data: VecDeque::new(),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        match &self.conn {
            Conn::Udp(s) => s.local_addr().unwrap(),
            Conn::Tcp(s, _) => s.local_addr().unwrap(),
        }
    }

    fn tid(&mut self) -> [u8; 12] {
        self.next_tid += 1;
        let mut t = [0u8; 12];
        t[..4].copy_from_slice(&self.next_tid.to_be_bytes());
        t[4..8].copy_from_slice(&std::process::id().to_be_bytes());
        t
    }

    fn send_raw(&mut self, bytes: &[u8]) -> bool {
        match &mut self.conn {
            Conn::Udp(s) => s.send_to(bytes, self.server).is_ok(),
            Conn::Tcp(s, _) => s.write_all(bytes).is_ok(),
        }
    }

    /// The next STUN message from the server, or `None` after the read timeout. `Err` when a
    /// TCP connection was closed.
    fn recv_raw(&mut self) -> Result<Option<Vec<u8>>, ()> {
        match &mut self.conn {
            Conn::Udp(s) => {
                let mut buf = [0u8; 2048];
                match s.recv_from(&mut buf) {
                    Ok((n, _)) => Ok(Some(buf[..n].to_vec())),
                    Err(_) => Ok(None),
                }
            }
            Conn::Tcp(s, pending) => loop {
                if pending.len() >= 4 {
                    let len = 20 + usize::from(u16::from_be_bytes([pending[2], pending[3]]));
                    if pending.len() >= len {
                        let msg: Vec<u8> = pending.drain(..len).collect();
                        return Ok(Some(msg));
                    }
                }
                let mut buf = [0u8; 4096];
                match s.read(&mut buf) {
                    Ok(0) => return Err(()),
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        return Ok(None);
                    }
                    Err(_) => return Err(()),
                }
            },
        }
    }

    /// Whether the server closed a TCP connection (reads until EOF or `limit`).
    pub fn tcp_closed_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.recv_raw().is_err() {
                return true;
            }
        }
        false
    }

    fn key(&self) -> Option<Key> {
        let realm = self.realm.as_deref()?;
        Key::long_term(PasswordAlgorithm::Md5, &self.username, realm, &self.password).ok()
    }

    fn request_once(&mut self, method: Method, attrs: &dyn Fn(&mut MessageWriter<'_>)) -> Option<Reply> {
        let tid = self.tid();
        let key = self.key();
        let (user, realm, nonce) = (self.username.clone(), self.realm.clone(), self.nonce.clone());
        let req = build(method, Class::Request, tid, |w| {
            attrs(w);
            if let (Some(key), Some(realm), Some(nonce)) = (&key, &realm, &nonce) {
                w.add_text(AttrType::USERNAME, &user);
                w.add_text(AttrType::REALM, realm);
                w.add_text(AttrType::NONCE, nonce);
                w.add_message_integrity(key.as_bytes());
            }
        });
        for _attempt in 0..5 {
            if !self.send_raw(&req) {
                return None;
            }
            let deadline = Instant::now() + Duration::from_millis(600);
            while Instant::now() < deadline {
                let raw = match self.recv_raw() {
                    Ok(Some(r)) => r,
                    Ok(None) => continue,
                    Err(()) => return None,
                };
                let Ok(m) = Message::parse(&raw) else { continue };
                if m.class() == Class::Indication && m.method() == Method::DATA {
                    if let (Ok(Some(peer)), Some(d)) = (m.xor_peer_address(), m.data()) {
                        self.data.push_back((peer, d.to_vec()));
                    }
                    continue;
                }
                if m.transaction_id().0 == tid {
                    return Some(Reply { raw });
                }
            }
        }
        None
    }

    /// Sends a request, answering one 401/438 challenge; `None` if no answer came.
    pub fn request(&mut self, method: Method, attrs: impl Fn(&mut MessageWriter<'_>)) -> Option<Reply> {
        let r = self.request_once(method, &attrs)?;
        if matches!(r.code(), Some(401 | 438)) {
            let m = r.msg();
            let fresh_nonce = m.nonce().ok().flatten().map(str::to_owned);
            let realm = m.realm().ok().flatten().map(str::to_owned);
            let had_credentials = self.nonce.is_some();
            if r.code() == Some(438) || !had_credentials {
                self.nonce = fresh_nonce;
                self.realm = realm;
                return self.request_once(method, &attrs);
            }
        }
        Some(r)
    }

    /// Allocate; the relayed address, or the error code.
    pub fn allocate(&mut self) -> Result<SocketAddr, u16> {
        let r = self
            .request(Method::ALLOCATE, |w| {
                w.add_requested_transport(17);
            })
            .ok_or(0u16)?;
        if r.is_success() { Ok(r.msg().xor_relayed_address().unwrap().unwrap()) } else { Err(r.code().unwrap_or(0)) }
    }

    /// Refresh with `lifetime`; the error code on failure (0: no answer).
    pub fn refresh(&mut self, lifetime: u32) -> Result<(), u16> {
        let r = self
            .request(Method::REFRESH, |w| {
                w.add_with(AttrType::LIFETIME, 4, |v| v.copy_from_slice(&lifetime.to_be_bytes()));
            })
            .ok_or(0u16)?;
        if r.is_success() { Ok(()) } else { Err(r.code().unwrap_or(0)) }
    }

    pub fn permit(&mut self, peer: SocketAddr) -> Result<(), u16> {
        let r = self
            .request(Method::CREATE_PERMISSION, |w| {
                w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
            })
            .ok_or(0u16)?;
        if r.is_success() { Ok(()) } else { Err(r.code().unwrap_or(0)) }
    }

    /// A Send indication to `peer`.
    pub fn send(&mut self, peer: SocketAddr, data: &[u8]) {
        let tid = self.tid();
        let ind = build(Method::SEND, Class::Indication, tid, |w| {
            w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
            w.add(AttrType::DATA, data);
        });
        self.send_raw(&ind);
    }

    /// The next Data indication, waiting at most `limit`.
    pub fn recv_data(&mut self, limit: Duration) -> Option<(SocketAddr, Vec<u8>)> {
        if let Some(d) = self.data.pop_front() {
            return Some(d);
        }
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let Ok(Some(raw)) = self.recv_raw() else { continue };
            let Ok(m) = Message::parse(&raw) else { continue };
            if m.class() == Class::Indication
                && m.method() == Method::DATA
                && let (Ok(Some(peer)), Some(d)) = (m.xor_peer_address(), m.data())
            {
                return Some((peer, d.to_vec()));
            }
        }
        None
    }
}

/// A UDP peer on loopback.
pub struct Peer {
    pub sock: UdpSocket,
}

impl Peer {
    pub fn new() -> Peer {
        Peer::on("127.0.0.1")
    }

    /// A peer on another loopback address (not one of the relay's own).
    pub fn on(ip: &str) -> Peer {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        Peer { sock }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    pub fn recv(&self, limit: Duration) -> Option<(SocketAddr, Vec<u8>)> {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            if let Ok((n, from)) = self.sock.recv_from(&mut buf) {
                return Some((from, buf[..n].to_vec()));
            }
        }
        None
    }
}

/// A client with an allocation and a permission for `peer`, and its relayed address.
pub fn allocated(relay: &Relay, secret: &str, user: &str, peer: &Peer) -> (TurnClient, SocketAddr) {
    let mut c = TurnClient::rest_udp(relay.addr, secret, user);
    let relayed = c.allocate().unwrap_or_else(|e| panic!("allocate: {e}\n{}", relay.log_text()));
    c.permit(peer.addr()).unwrap();
    (c, relayed)
}

/// Sends `n` packets each way between `c` and `peer` through `relayed`; how many arrived
/// (client → peer, peer → client).
pub fn exchange(c: &mut TurnClient, peer: &Peer, relayed: SocketAddr, n: usize) -> (usize, usize) {
    let (mut up, mut down) = (0, 0);
    for i in 0..n {
        let payload = format!("ping {i}");
        c.send(peer.addr(), payload.as_bytes());
        if peer.recv(Duration::from_millis(500)).is_some_and(|(from, d)| from == relayed && d == payload.as_bytes()) {
            up += 1;
        }
        let _ = peer.sock.send_to(format!("pong {i}").as_bytes(), relayed);
        let pong = format!("pong {i}");
        if c.recv_data(Duration::from_millis(500)).is_some_and(|(from, d)| from == peer.addr() && d == pong.as_bytes())
        {
            down += 1;
        }
    }
    (up, down)
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
