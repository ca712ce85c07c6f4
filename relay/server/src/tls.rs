//! TURN over TLS, outside the data path: building rustls [`ServerConfig`]s from `cert`/`pkey`,
//! the protocol versions (`no-tlsv1_2`), `cipher-list`, ALPN, and reloading the certificate
//! without a restart (SIGUSR2, or the files changing on disk).
//!
//! Workers read the current [`Configs`] once per connection, when its ClientHello is complete,
//! from an [`ArcSwap`]; a connection keeps the config it started with, so a reload changes the
//! certificate of new connections only. A reload that fails (unreadable file, bad PEM, a key
//! that does not match the certificate) logs an error and keeps the old certificate serving.
//!
//! ALPN (RFC 7443): `stun.turn` and `stun.nat-discovery` are negotiated when the client offers
//! one of them, but never required. rustls aborts a handshake whose client offers ALPN with no
//! protocol in common with a server that has ALPN configured, so there are two configs sharing
//! one certificate: [`Configs::for_client`] picks the one without ALPN for a client that offers
//! none of ours.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, anyhow, bail};
use arc_swap::ArcSwap;
use relay_config::Config;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{CipherSuite, ServerConfig, SupportedCipherSuite};

/// ALPN protocols of RFC 7443, in the server's order of preference.
pub(crate) const ALPN: [&[u8]; 2] = [b"stun.turn", b"stun.nat-discovery"];

/// How long a TLS client has from accept to a finished handshake, unless overridden.
pub(crate) const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Environment variable that overrides the handshake timeout, in milliseconds. Not a
/// turnserver.conf option (coturn has none); it exists so tests need not wait 10 s.
pub(crate) const HANDSHAKE_TIMEOUT_ENV: &str = "TERN_TLS_HANDSHAKE_TIMEOUT_MS";

/// How often the watcher looks at the files' modification times.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How often the watcher wakes to see whether SIGUSR2 arrived.
const TICK: Duration = Duration::from_millis(200);

/// What the TLS configs are built from.
#[derive(Debug, Clone)]
pub(crate) struct TlsSettings {
    pub(crate) cert: PathBuf,
    pub(crate) pkey: PathBuf,
    pub(crate) no_tlsv1_2: bool,
    pub(crate) cipher_list: Option<String>,
}

impl TlsSettings {
    /// The settings if TLS is on and both files are known; `None` means no TLS listener.
    pub(crate) fn from_config(cfg: &Config) -> Option<TlsSettings> {
        if cfg.no_tls {
            return None;
        }
        Some(TlsSettings {
            cert: cfg.cert.clone()?,
            pkey: cfg.pkey.clone()?,
            no_tlsv1_2: cfg.no_tlsv1_2,
            cipher_list: cfg.cipher_list.clone(),
        })
    }
}

/// One generation of the certificate: two configs that share it (with and without ALPN).
#[derive(Debug)]
pub(crate) struct Configs {
    with_alpn: Arc<ServerConfig>,
    without_alpn: Arc<ServerConfig>,
    /// SHA-256 of the end-entity certificate, hex, for the logs.
    pub(crate) fingerprint: String,
}

impl Configs {
    /// The config for a client whose ClientHello offered `alpn` (None: no ALPN extension).
    pub(crate) fn for_client<'a>(&self, alpn: Option<impl Iterator<Item = &'a [u8]>>) -> Arc<ServerConfig> {
        let ours = alpn.is_some_and(|mut offered| offered.any(|p| ALPN.contains(&p)));
        if ours { self.with_alpn.clone() } else { self.without_alpn.clone() }
    }
}

/// The TLS state every worker shares: the current certificate and the limits.
#[derive(Debug)]
pub(crate) struct TlsStore {
    settings: TlsSettings,
    current: ArcSwap<Configs>,
    pub(crate) handshake_timeout: Duration,
    reload_requested: Arc<AtomicBool>,
}

impl TlsStore {
    /// Loads the certificate; a failure here stops the start-up.
    pub(crate) fn new(settings: TlsSettings) -> anyhow::Result<Arc<TlsStore>> {
        let (configs, warnings) = build(&settings)?;
        for w in warnings {
            tracing::warn!(target: "relay", "{w}");
        }
        tracing::info!(
            target: "relay",
            cert = %settings.cert.display(),
            sha256 = %configs.fingerprint,
            tls12 = !settings.no_tlsv1_2,
            "TLS certificate loaded"
        );
        Ok(Arc::new(TlsStore {
            settings,
            current: ArcSwap::from_pointee(configs),
            handshake_timeout: handshake_timeout_from_env(),
            reload_requested: Arc::new(AtomicBool::new(false)),
        }))
    }

    /// The certificate generation new connections use. Called once per connection.
    pub(crate) fn current(&self) -> Arc<Configs> {
        self.current.load_full()
    }

    /// Builds the configs again from the files; on success new connections use them, on
    /// failure the old ones stay. Returns whether the certificate changed.
    pub(crate) fn reload(&self, why: &str) -> bool {
        match build(&self.settings) {
            Ok((configs, _)) => {
                tracing::info!(
                    target: "relay",
                    why,
                    cert = %self.settings.cert.display(),
                    sha256 = %configs.fingerprint,
                    "TLS certificate reloaded; new connections use it"
                );
                self.current.store(Arc::new(configs));
                true
            }
            Err(e) => {
                tracing::error!(
                    target: "relay",
                    why,
                    error = %format!("{e:#}"),
                    sha256 = %self.current.load().fingerprint,
                    "TLS certificate reload failed; the old certificate keeps serving"
                );
                false
            }
        }
    }

    /// Asks the watcher to reload now (what SIGUSR2 does). Safe from any thread.
    #[allow(dead_code)]
    pub(crate) fn request_reload(&self) {
        self.reload_requested.store(true, Ordering::Relaxed);
    }

    /// Registers SIGUSR2 and starts the watcher thread: it reloads on SIGUSR2 and when the
    /// cert or key file's modification time, size or inode changes (checked once a second; a
    /// change is acted on once the files have been still for one check, so a file caught
    /// half-written is not loaded).
    pub(crate) fn spawn_watcher(self: &Arc<Self>) -> anyhow::Result<()> {
        signal_hook::flag::register(signal_hook::consts::SIGUSR2, self.reload_requested.clone())
            .context("installing the SIGUSR2 handler")?;
        let store = self.clone();
        std::thread::Builder::new()
            .name("tern-tls-watch".into())
            .spawn(move || store.watch())
            .context("starting the certificate watcher")?;
        Ok(())
    }

    fn watch(&self) {
        let mut loaded = self.stamps();
        let mut seen = loaded;
        let mut since_check = Duration::ZERO;
        loop {
            std::thread::sleep(TICK);
            if self.reload_requested.swap(false, Ordering::Relaxed) {
                self.reload("SIGUSR2");
                loaded = self.stamps();
                seen = loaded;
            }
            since_check += TICK;
            if since_check < WATCH_EVERY {
                continue;
            }
            since_check = Duration::ZERO;
            let now = self.stamps();
            if now != loaded && now == seen {
                self.reload("cert or pkey file changed");
                // A failed reload is not retried until the files change again.
                loaded = now;
            }
            seen = now;
        }
    }

    fn stamps(&self) -> [Option<Stamp>; 2] {
        [stamp(&self.settings.cert), stamp(&self.settings.pkey)]
    }
}

/// What tells a file changed: modification time, size and inode (a rename over it).
type Stamp = (SystemTime, u64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

fn handshake_timeout_from_env() -> Duration {
    match std::env::var(HANDSHAKE_TIMEOUT_ENV).ok().and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(ms) if ms > 0 => {
            tracing::info!(target: "relay", ms, "TLS handshake timeout set by {HANDSHAKE_TIMEOUT_ENV}");
            Duration::from_millis(ms)
        }
        _ => DEFAULT_HANDSHAKE_TIMEOUT,
    }
}

/// The crypto provider with the cipher suites `cipher-list` asks for, plus warnings.
fn provider(cipher_list: Option<&str>, tls12: bool) -> (CryptoProvider, Vec<String>) {
    let mut p = rustls::crypto::ring::default_provider();
    let mut warnings = Vec::new();
    let Some(list) = cipher_list.map(str::trim).filter(|l| !l.is_empty() && !l.eq_ignore_ascii_case("DEFAULT")) else {
        return (p, warnings);
    };
    let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
    let mut unhonoured: Vec<&str> = Vec::new();
    for token in list.split([':', ',', ' ']).filter(|t| !t.is_empty()) {
        let found = suite_by_name(token).and_then(|cs| p.cipher_suites.iter().find(|s| s.suite() == cs).copied());
        match found {
            Some(s) if !chosen.iter().any(|c| c.suite() == s.suite()) => chosen.push(s),
            Some(_) => {}
            None => unhonoured.push(token),
        }
    }
    let has13 = chosen.iter().any(|s| s.tls13().is_some());
    let has12 = chosen.iter().any(|s| s.tls13().is_none());
    if has12 || has13 {
        // OpenSSL's cipher list never touches TLS 1.3 suites (those are "ciphersuites"): keep
        // them all unless the list names some.
        if !has13 {
            chosen.extend(p.cipher_suites.iter().filter(|s| s.tls13().is_some()).copied());
        }
        if !has12 && tls12 {
            chosen.extend(p.cipher_suites.iter().filter(|s| s.tls13().is_none()).copied());
        }
        p.cipher_suites = chosen;
    }
    if !unhonoured.is_empty() {
        let used: Vec<String> = p.cipher_suites.iter().map(|s| format!("{:?}", s.suite())).collect();
        warnings.push(format!(
            "cipher-list {list:?}: rustls cannot honour {:?} (it takes only exact suite names it implements, no \
             OpenSSL keywords, exclusions or CBC/RSA-kx suites); the TLS suites in use are {}",
            unhonoured,
            used.join(", ")
        ));
    }
    (p, warnings)
}

/// OpenSSL and IANA names of the suites rustls implements.
fn suite_by_name(name: &str) -> Option<CipherSuite> {
    const TABLE: [(&str, &str, CipherSuite); 9] = [
        ("TLS_AES_128_GCM_SHA256", "TLS13_AES_128_GCM_SHA256", CipherSuite::TLS13_AES_128_GCM_SHA256),
        ("TLS_AES_256_GCM_SHA384", "TLS13_AES_256_GCM_SHA384", CipherSuite::TLS13_AES_256_GCM_SHA384),
        ("TLS_CHACHA20_POLY1305_SHA256", "TLS13_CHACHA20_POLY1305_SHA256", CipherSuite::TLS13_CHACHA20_POLY1305_SHA256),
        (
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "ECDHE-RSA-AES128-GCM-SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "ECDHE-RSA-AES256-GCM-SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "ECDHE-RSA-CHACHA20-POLY1305",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    ];
    TABLE
        .iter()
        .find(|(openssl, iana, _)| openssl.eq_ignore_ascii_case(name) || iana.eq_ignore_ascii_case(name))
        .map(|&(_, _, cs)| cs)
}

/// Reads the PEM files and builds one generation of configs, with warnings to log.
pub(crate) fn build(s: &TlsSettings) -> anyhow::Result<(Configs, Vec<String>)> {
    let certs = read_certs(&s.cert)?;
    let key = read_key(&s.pkey)?;
    let fingerprint = sha256_hex(&certs[0]);
    let (provider, warnings) = provider(s.cipher_list.as_deref(), !s.no_tlsv1_2);
    let versions: &[&rustls::SupportedProtocolVersion] =
        if s.no_tlsv1_2 { &[&rustls::version::TLS13] } else { &[&rustls::version::TLS13, &rustls::version::TLS12] };
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .context("the cipher-list leaves no suite for the enabled TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow!("cert {} and pkey {}: {e}", s.cert.display(), s.pkey.display()))?;
    let without_alpn = Arc::new(cfg.clone());
    cfg.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok((Configs { with_alpn: Arc::new(cfg), without_alpn, fingerprint }, warnings))
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading cert {}", path.display()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("cert {}: bad PEM: {e}", path.display()))?;
    if certs.is_empty() {
        bail!("cert {}: no CERTIFICATE block (expected PEM, the server's certificate first)", path.display());
    }
    Ok(certs)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("reading pkey {}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        anyhow!(
            "pkey {}: no usable private key ({e}); expected an unencrypted PEM RSA, EC or Ed25519 key (PKCS#1, SEC1 \
             or PKCS#8)",
            path.display()
        )
    })
}

/// SHA-256 of `der` as lowercase hex, computed with the provider's own hash.
fn sha256_hex(der: &[u8]) -> String {
    use std::fmt::Write as _;
    let hash = match rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256 {
        SupportedCipherSuite::Tls13(s) => s.common.hash_provider.hash(der),
        SupportedCipherSuite::Tls12(s) => s.common.hash_provider.hash(der),
    };
    hash.as_ref().iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_list_default_is_silent_and_keywords_warn() {
        let (p, w) = provider(Some("DEFAULT"), true);
        assert!(w.is_empty());
        assert_eq!(p.cipher_suites.len(), rustls::crypto::ring::default_provider().cipher_suites.len());
        let (p, w) = provider(Some("HIGH:!aNULL:!MD5"), true);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("HIGH"));
        assert_eq!(p.cipher_suites.len(), rustls::crypto::ring::default_provider().cipher_suites.len());
    }

    #[test]
    fn cipher_list_names_restrict_tls12_and_keep_tls13() {
        let (p, w) = provider(Some("ECDHE-RSA-AES128-GCM-SHA256:TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"), true);
        assert!(w.is_empty(), "{w:?}");
        let tls12: Vec<CipherSuite> =
            p.cipher_suites.iter().filter(|s| s.tls13().is_none()).map(|s| s.suite()).collect();
        assert_eq!(
            tls12,
            [CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]
        );
        assert_eq!(p.cipher_suites.iter().filter(|s| s.tls13().is_some()).count(), 3);
        // A CBC suite is a name rustls does not implement: warned about, the rest is used.
        let (p, w) = provider(Some("AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384"), true);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("AES128-SHA"));
        assert_eq!(p.cipher_suites.iter().filter(|s| s.tls13().is_none()).count(), 1);
    }

    #[test]
    fn alpn_is_offered_only_to_clients_that_ask_for_ours() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir = std::env::temp_dir().join(format!("tern-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (c, k) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&c, cert.cert.pem()).unwrap();
        std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
        let s = TlsSettings { cert: c.clone(), pkey: k.clone(), no_tlsv1_2: false, cipher_list: None };
        let (cfgs, _) = build(&s).unwrap();
        assert_eq!(cfgs.fingerprint.len(), 64);
        let none: Option<std::iter::Empty<&[u8]>> = None;
        assert!(cfgs.for_client(none).alpn_protocols.is_empty());
        assert!(cfgs.for_client(Some([&b"h2"[..]].into_iter())).alpn_protocols.is_empty());
        assert_eq!(cfgs.for_client(Some([&b"h2"[..], b"stun.turn"].into_iter())).alpn_protocols.len(), 2);
        // A key that is not the certificate's is refused.
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&k, other.serialize_pem()).unwrap();
        assert!(build(&s).is_err());
        std::fs::write(&c, "not PEM").unwrap();
        assert!(build(&s).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
