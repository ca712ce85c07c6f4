//! Certificate reload without a restart: a changed file is picked up by new connections while
//! existing ones keep theirs; a broken replacement keeps the old certificate serving; SIGUSR2
//! reloads (and does not kill the process, which is SIGUSR2's default action).
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use relay_proto::stun::{Class, Method};
use rustls::pki_types::CertificateDer;
use rustls::version::{TLS12, TLS13};
use support::tls::*;
use support::{Launch, Relay, wait_for};

/// A client config that trusts every certificate in `certs`.
fn trusting(certs: &[&TestCert]) -> Arc<rustls::ClientConfig> {
    client_config(certs, &[], &[&TLS13, &TLS12])
}

fn served_cert(relay: &Relay, cfg: &Arc<rustls::ClientConfig>) -> CertificateDer<'static> {
    let s = tls_connect(relay.tls, cfg.clone()).unwrap();
    s.conn.peer_certificates().unwrap()[0].clone()
}

#[test]
fn a_replaced_certificate_serves_new_connections_and_a_broken_one_is_refused() {
    let (a, b, c) =
        (TestCert::new(KeyKind::EcdsaP256), TestCert::new(KeyKind::Ed25519), TestCert::new(KeyKind::EcdsaP256));
    let cfg = trusting(&[&a, &b, &c]);
    let relay = Launch::tls(&a).start();

    let first = tls_connect(relay.tls, cfg.clone()).unwrap();
    assert_eq!(first.conn.peer_certificates().unwrap()[0], a.der);
    let mut first = turn_client(first);
    first.allocate();

    // Replace the files (as certbot or a deploy tool does): new clients get B.
    b.write(&relay.dir.0);
    wait_for(Duration::from_secs(6), "the new certificate", || served_cert(&relay, &cfg) == b.der);
    assert!(relay.log_text().contains("TLS certificate reloaded"));
    // The existing connection keeps its session and goes on working.
    let resp = first.request(Method::BINDING, |_| {});
    assert_eq!(resp.class(), Class::Success);

    // A broken certificate: logged, and B keeps serving.
    replace_file(&relay.cert, b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
    wait_for(Duration::from_secs(6), "the failed reload in the log", || {
        relay.log_text().contains("TLS certificate reload failed")
    });
    assert_eq!(served_cert(&relay, &cfg), b.der);
    // A certificate whose key is not the key file's: refused as well.
    replace_file(&relay.cert, c.cert_pem.as_bytes());
    wait_for(Duration::from_secs(6), "the second failed reload", || {
        relay.log_text().matches("TLS certificate reload failed").count() >= 2
    });
    assert_eq!(served_cert(&relay, &cfg), b.der);

    // Completing the pair (the key arrives last) makes C serve.
    replace_file(&relay.pkey, c.key_pem.as_bytes());
    wait_for(Duration::from_secs(6), "certificate C", || served_cert(&relay, &cfg) == c.der);
}

#[test]
fn sigusr2_reloads_the_certificate() {
    let (a, b) = (TestCert::new(KeyKind::EcdsaP256), TestCert::new(KeyKind::EcdsaP256));
    let cfg = trusting(&[&a, &b]);
    let relay = Launch::tls(&a).start();
    relay.signal(libc::SIGUSR2);
    wait_for(Duration::from_secs(3), "the SIGUSR2 reload", || relay.log_text().contains("why=\"SIGUSR2\""));
    assert_eq!(served_cert(&relay, &cfg), a.der, "same files, same certificate");
    b.write(&relay.dir.0);
    relay.signal(libc::SIGUSR2);
    wait_for(Duration::from_secs(3), "certificate B", || served_cert(&relay, &cfg) == b.der);
}
