//! What only the TLS tests need: throwaway certificates (rcgen), the TLS tests' relay, a rustls
//! client that trusts given certificates, a TLS session as a [`Stream`] for the TURN client,
//! and the relay's connection-limit counters from its log.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};

use super::client::{Client, Creds, Stream};
use super::relay::{Launch, Ready, Relay};

/// A throwaway certificate for `localhost`: DER, and PEM of the certificate and its key.
#[derive(Clone)]
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

    /// Writes `cert.pem` and `pkey.pem` into `dir` (replacing, as deploy tools do).
    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (c, k) = (dir.join("cert.pem"), dir.join("pkey.pem"));
        replace_file(&c, self.cert_pem.as_bytes());
        replace_file(&k, self.key_pem.as_bytes());
        (c, k)
    }
}

/// An RSA key from `openssl genpkey` (generated at test time; never committed).
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

impl Launch {
    /// The TLS tests' relay: `cert`, the users, loopback peers, a verbose log on stdout; ready
    /// once it says it listens.
    pub fn tls(cert: &TestCert) -> Launch {
        Launch::new()
            .users()
            .cert(cert)
            .args(&["--allow-loopback-peers", "--log-file=stdout", "-v"])
            .ready(Ready::Log("tern-relay listening"))
    }
}

impl Relay {
    /// A connection-limit counter summed over the workers: the last report of each (`name=N`).
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
}

/// A rustls client config that trusts `certs` only, with these ALPN protocols and versions.
pub fn client_config(
    certs: &[&TestCert],
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots.add(c.der.clone()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

impl Stream for TlsStream {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// Connects and completes the handshake (blocking, with timeouts).
pub fn tls_connect(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    tcp.set_nodelay(true)?;
    tls_handshake(tcp, cfg)
}

/// Completes a handshake for `localhost` over `tcp`.
pub fn tls_handshake(tcp: TcpStream, cfg: Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream> {
    let conn = rustls::ClientConnection::new(cfg, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// A TURN client over `stream` with a user of [`Launch::tls`]'s relay.
pub fn turn_client(stream: impl Stream + 'static) -> Client {
    Client::over(stream).with_creds(Creds::user("alice"))
}
