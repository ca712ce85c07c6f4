//! Shared by the `tls_*` scenario tests: test certificates (rcgen), a `tern-relay` process on
//! loopback with TLS on, a rustls client, and a minimal TURN client over any byte stream.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use relay_proto::framing::{self, Frame};
use relay_proto::stun::{AttrType, Class, Key, Message, MessageType, MessageWriter, Method, PasswordAlgorithm};
use rustls::pki_types::{CertificateDer, ServerName};

pub const USER: &str = "tls-user";
pub const PASS: &str = "tls-pass";
pub const REALM: &str = "tls.test";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("tern-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A throwaway certificate for `localhost`: DER, and PEM of the certificate and its key.
pub struct TestCert {
    pub der: CertificateDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(Clone, Copy)]
pub enum KeyKind {
    EcdsaP256,
    Ed25519,
    Rsa,
}

impl TestCert {
    pub fn new(kind: KeyKind) -> TestCert {
        let key = match kind {
            KeyKind::EcdsaP256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
            KeyKind::Ed25519 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
            // ring cannot generate RSA keys: use a key openssl made (2048 bit, test only).
            KeyKind::Rsa => rcgen::KeyPair::from_pem(&rsa_key_pem()).unwrap(),
        };
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCert { der: cert.der().clone(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }

    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (c, k) = (dir.join("cert.pem"), dir.join("pkey.pem"));
        replace_file(&c, self.cert_pem.as_bytes());
        replace_file(&k, self.key_pem.as_bytes());
        (c, k)
    }
}

/// An RSA key from `openssl genrsa` (generated at test time; never committed).
fn rsa_key_pem() -> String {
    let out = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .expect("openssl is needed for the RSA test key");
    String::from_utf8(out.stdout).unwrap()
}

/// Writes a file the way deploy tools do: a temporary file renamed over the old one.
pub fn replace_file(path: &Path, data: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A loopback port free for TCP *and* UDP: the relay binds both on its listening port.
pub fn free_tcp_port() -> u16 {
    loop {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running `tern-relay` with TLS; killed on drop.
pub struct Relay {
    pub child: Child,
    pub tcp: SocketAddr,
    pub tls: SocketAddr,
    pub log: PathBuf,
    pub dir: TempDir,
    pub cert: PathBuf,
    pub pkey: PathBuf,
}

impl Relay {
    /// Starts a relay with `cert`, extra flags and extra environment.
    pub fn start(cert: &TestCert, extra: &[&str], env: &[(&str, &str)]) -> Relay {
        let dir = TempDir::new("tls-relay");
        let (c, k) = cert.write(&dir.0);
        let (tcp_port, tls_port) = (free_tcp_port(), free_tcp_port());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let min = 20000 + ((std::process::id() * 7 + n * 131) % 300) * 100;
        let log = dir.0.join("relay.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern-relay"));
        cmd.args([
            "-n",
            "--listening-ip=127.0.0.1",
            &format!("--listening-port={tcp_port}"),
            &format!("--tls-listening-port={tls_port}"),
            "--relay-ip=127.0.0.1",
            &format!("--min-port={min}"),
            &format!("--max-port={}", min + 99),
            &format!("--realm={REALM}"),
            "--lt-cred-mech",
            &format!("--user={USER}:{PASS}"),
            "--allow-loopback-peers",
            &format!("--cert={}", c.display()),
            &format!("--pkey={}", k.display()),
            "--log-file=stdout",
            "-v",
        ])
        .args(extra)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::inherit());
        let child = cmd.spawn().unwrap();
        let relay = Relay {
            child,
            tcp: SocketAddr::from(([127, 0, 0, 1], tcp_port)),
            tls: SocketAddr::from(([127, 0, 0, 1], tls_port)),
            log,
            dir,
            cert: c,
            pkey: k,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !relay.log_text().contains("tern-relay listening") {
            assert!(Instant::now() < deadline, "relay did not start:\n{}", relay.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        relay
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A limit counter summed over the workers: the last report of each (`name=N`).
    pub fn counter(&self, name: &str) -> u64 {
        let mut last = std::collections::HashMap::new();
        for line in self.log_text().lines().filter(|l| l.contains("connection limits enforced")) {
            let field = |key: &str| {
                line.split_whitespace().find_map(|w| w.strip_prefix(key).and_then(|v| v.parse::<u64>().ok()))
            };
            if let (Some(w), Some(v)) = (field("worker="), field(&format!("{name}="))) {
                last.insert(w, v);
            }
        }
        last.values().sum()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Open descriptors of the relay process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map(|d| d.count()).unwrap_or(0)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A rustls client config that trusts `der` only, with these ALPN protocols and versions.
pub fn client_config(
    der: &CertificateDer<'static>,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.clone()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects and completes the handshake (blocking, with timeouts).
pub fn tls_connect(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    tcp.set_nodelay(true)?;
    let conn = rustls::ClientConnection::new(cfg, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// A TURN client over a byte stream: long-term credentials, one allocation.
pub struct TurnClient<S: Read + Write> {
    pub stream: S,
    buf: Vec<u8>,
    key: Option<Key>,
    nonce: String,
    tid: u32,
}

impl<S: Read + Write> TurnClient<S> {
    pub fn new(stream: S) -> Self {
        TurnClient { stream, buf: Vec::new(), key: None, nonce: String::new(), tid: 0 }
    }

    fn next_tid(&mut self) -> relay_proto::stun::TransactionId {
        self.tid += 1;
        let mut t = [7u8; 12];
        t[..4].copy_from_slice(&self.tid.to_be_bytes());
        relay_proto::stun::TransactionId(t)
    }

    /// Reads one frame (STUN or ChannelData) from the stream.
    pub fn read_frame(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Frame::Complete(n) = framing::next_frame(&self.buf) {
                return Ok(self.buf.drain(..n).collect());
            }
            if let Frame::Invalid = framing::next_frame(&self.buf) {
                return Err(std::io::Error::other("invalid frame from the relay"));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a request with `attrs` (and credentials once known); returns the response.
    pub fn request(&mut self, method: Method, attrs: &dyn Fn(&mut MessageWriter<'_>)) -> Vec<u8> {
        for _ in 0..2 {
            let tid = self.next_tid();
            let mut out = vec![0u8; 1500];
            let mut w = MessageWriter::new(&mut out, MessageType::new(method, Class::Request), tid);
            attrs(&mut w);
            if let Some(key) = &self.key {
                w.add_text(AttrType::USERNAME, USER);
                w.add_text(AttrType::REALM, REALM);
                w.add_text(AttrType::NONCE, &self.nonce);
                w.add_message_integrity(key.as_bytes());
            }
            let n = w.finish().unwrap();
            self.stream.write_all(&out[..n]).unwrap();
            self.stream.flush().unwrap();
            let resp = loop {
                let f = self.read_frame().unwrap();
                if let Ok(m) = Message::parse(&f)
                    && m.transaction_id() == tid
                {
                    break f;
                }
            };
            let m = Message::parse(&resp).unwrap();
            if m.class() == Class::Error {
                let code = m.error_code().unwrap().map(|(c, _)| c.0);
                if matches!(code, Some(401 | 438)) && self.key.is_none() || code == Some(438) {
                    self.nonce = m.nonce().unwrap().unwrap().to_owned();
                    self.key = Some(Key::long_term(PasswordAlgorithm::Md5, USER, REALM, PASS).unwrap());
                    continue;
                }
            }
            return resp;
        }
        panic!("no success after authenticating");
    }

    /// Allocates a UDP relay; returns the relayed address.
    pub fn allocate(&mut self) -> SocketAddr {
        let resp = self.request(Method::ALLOCATE, &|w| {
            w.add_requested_transport(17);
        });
        let m = Message::parse(&resp).unwrap();
        assert_eq!(m.class(), Class::Success, "allocate failed: {:?}", m.error_code());
        m.xor_relayed_address().unwrap().unwrap()
    }

    pub fn create_permission(&mut self, peer: SocketAddr) {
        let resp = self.request(Method::CREATE_PERMISSION, &|w| {
            w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        });
        assert_eq!(Message::parse(&resp).unwrap().class(), Class::Success);
    }

    pub fn channel_bind(&mut self, channel: u16, peer: SocketAddr) {
        let resp = self.request(Method::CHANNEL_BIND, &|w| {
            w.add_channel_number(channel);
            w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        });
        assert_eq!(Message::parse(&resp).unwrap().class(), Class::Success);
    }

    /// A Send indication to `peer`.
    pub fn send(&mut self, peer: SocketAddr, data: &[u8]) {
        let tid = self.next_tid();
        let mut out = vec![0u8; 200 + data.len()];
        let mut w = MessageWriter::new(&mut out, MessageType::new(Method::SEND, Class::Indication), tid);
        w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        w.add(AttrType::DATA, data);
        let n = w.finish().unwrap();
        self.stream.write_all(&out[..n]).unwrap();
    }

    /// A ChannelData message, padded to 4 bytes as streams require.
    pub fn send_channel(&mut self, channel: u16, data: &[u8]) {
        let mut out = Vec::with_capacity(4 + data.len() + 3);
        out.extend_from_slice(&channel.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        self.stream.write_all(&out).unwrap();
    }

    /// The payload of the next Data indication or ChannelData message.
    pub fn recv_data(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            let f = self.read_frame()?;
            if f[0] & 0xC0 == 0x40 {
                let len = usize::from(u16::from_be_bytes([f[2], f[3]]));
                return Ok(f[4..4 + len].to_vec());
            }
            if let Ok(m) = Message::parse(&f)
                && m.method() == Method::DATA
            {
                return Ok(m.data().unwrap_or_default().to_vec());
            }
        }
    }
}

/// A UDP echo peer on loopback, run by a thread until the test process ends.
pub fn echo_peer() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 65536];
        while let Ok((n, from)) = s.recv_from(&mut b) {
            let _ = s.send_to(&b[..n], from);
        }
    });
    addr
}

/// Waits until `f` holds, or panics with `what` after `limit`.
pub fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
