//! The TLS counters reach the exporter: handshakes begun, and failed ones by reason.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use support::ops::metric;
use support::tls::{KeyKind, TestCert, client_config, tls_connect};
use support::{Launch, wait_until};

#[test]
fn tls_handshakes_and_failures_are_exported() {
    let cert = TestCert::new(KeyKind::EcdsaP256);
    let r = Launch::ops().cert(&cert).args(&["--prometheus"]).start();
    let addr = r.tls;

    // One good handshake, one ClientHello that is not one.
    let cfg = client_config(&[&cert], &[b"stun.turn"], &[&rustls::version::TLS13]);
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
