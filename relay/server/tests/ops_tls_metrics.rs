//! The TLS counters reach the exporter: handshakes begun, and failed ones by reason.
#![allow(clippy::unwrap_used)]

mod ops_support;
#[path = "tls_common/mod.rs"]
mod tls_common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use ops_support::{Relay, RelayOpts, free_port, metric, wait_until};
use tls_common::{KeyKind, TempDir, TestCert, client_config, tls_connect};

#[test]
fn tls_handshakes_and_failures_are_exported() {
    let dir = TempDir::new("ops-tls-metrics");
    let (cert_path, key_path) = TestCert::new(KeyKind::EcdsaP256).write(&dir.0);
    let cert = std::fs::read_to_string(&cert_path).unwrap();
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(cert.as_bytes()).unwrap();
    let tls_port = free_port();
    let r = Relay::start(RelayOpts {
        args: vec![
            "--prometheus".into(),
            format!("--cert={}", cert_path.display()),
            format!("--pkey={}", key_path.display()),
            format!("--tls-listening-port={tls_port}"),
        ],
        tls: true,
        ..RelayOpts::default()
    });
    let addr = format!("127.0.0.1:{tls_port}").parse().unwrap();

    // One good handshake, one ClientHello that is not one.
    let cfg = client_config(&der, &[b"stun.turn"], &[&rustls::version::TLS13]);
    let good = tls_connect(addr, cfg).unwrap_or_else(|e| panic!("{e}\n{}", r.log_text()));
    let mut bad = TcpStream::connect(addr).unwrap();
    bad.write_all(b"\x16\x03\x01\x00\x08not-a-ClientHello").unwrap();

    let ok = wait_until(Duration::from_secs(5), || {
        let t = r.scrape();
        metric(&t, "tern_tls_handshakes_total") == Some(2.0)
            && metric(&t, "tern_tls_handshake_failures_total{reason=\"error\"}") == Some(1.0)
    });
    assert!(ok, "{}", r.scrape());
    assert_eq!(metric(&r.scrape(), "tern_tls_handshake_failures_total{reason=\"timeout\"}"), Some(0.0));
    drop(good);
}
