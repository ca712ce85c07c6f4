//! coturn's own example turnserver.conf (4.17.1, BSD-3-Clause, see `data/turnserver.conf.LICENSE`):
//! as shipped, and with a realistic production set uncommented in place.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use relay_config::{ExternalIp, IpRange, load_file};

use crate::support::{pem_pair, short, tempdir};

fn example() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/turnserver.conf");
    std::fs::read_to_string(p).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn the_example_as_shipped_loads_without_errors_or_surprises() {
    let d = tempdir("shipped");
    let p = d.join("turnserver.conf");
    std::fs::write(&p, example()).unwrap();
    let l = load_file(&p).unwrap_or_else(|e| panic!("{e}"));
    // Everything in it is commented out: the defaults, and nothing else.
    let mut defaults = relay_config::Config { no_auth: true, ..Default::default() };
    defaults.cert.clone_from(&l.config.cert);
    defaults.pkey.clone_from(&l.config.pkey);
    assert_eq!(l.config, defaults);
    // The one warning is coturn's own: TLS is on and no certificate is around.
    let w: Vec<String> = l.warnings.iter().map(short).collect();
    if l.config.cert.is_none() {
        assert_eq!(
            w,
            ["file: TLS is on (no no-tls) but cert is not set and turn_server_cert.pem was not found, so there will \
              be no TLS listener: set cert and pkey, or set no-tls"]
        );
    } else {
        assert!(w.is_empty(), "{w:?}");
    }
}

/// Replaces the commented line `from` of the example with `to` (one or more lines).
fn uncomment(text: &mut String, from: &str, to: &str) {
    let at = text.find(&format!("\n{from}\n")).unwrap_or_else(|| panic!("{from:?} is not in the example"));
    text.replace_range(at + 1..at + 1 + from.len(), to);
}

/// The example, with the production set uncommented where coturn documents each option.
fn production(cert: &Path, pkey: &Path) -> String {
    let mut t = example();
    let edits: [(&str, String); 25] = [
        ("#listening-ip=172.17.19.101", "listening-ip=127.0.0.1".into()),
        ("#relay-ip=172.17.19.105", "relay-ip=127.0.0.1".into()),
        ("#external-ip=60.70.80.91/172.17.19.101", "external-ip=203.0.113.5/127.0.0.1".into()),
        ("#min-port=49152", "min-port=50000".into()),
        ("#max-port=65535", "max-port=60000".into()),
        ("#fingerprint", "fingerprint".into()),
        ("#use-auth-secret", "use-auth-secret".into()),
        ("#static-auth-secret=north", "static-auth-secret=\"4c3f0b7d9e2a41d8b6a5f1e0c9d8b7a6\"".into()),
        ("#realm=mycompany.org", "realm=turn.example.org".into()),
        ("#user-quota=0", "user-quota=12".into()),
        ("#total-quota=0", "total-quota=1200".into()),
        ("#stale-nonce=600", "stale-nonce=600".into()),
        ("#cert=/usr/local/etc/turn_server_cert.pem", format!("cert={}", cert.display())),
        ("#pkey=/usr/local/etc/turn_server_pkey.pem", format!("pkey={}", pkey.display())),
        (
            "#cipher-list=\"DEFAULT\"",
            "cipher-list=\"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384\"".into(),
        ),
        ("#tlsv1", "no-tlsv1".into()),
        ("#tlsv1_1", "no-tlsv1_1".into()),
        ("#cli", "no-cli".into()),
        ("#no-multicast-peers", "no-multicast-peers".into()),
        (
            "# denied-peer-ip=83.166.64.0-83.166.95.255",
            "denied-peer-ip=10.0.0.0-10.255.255.255\ndenied-peer-ip=fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
                .into(),
        ),
        ("# allowed-peer-ip=83.166.68.45", "allowed-peer-ip=10.0.0.5".into()),
        ("#log-file=/var/tmp/turn.log", "log-file=/var/log/turnserver/turnserver.log".into()),
        ("#simple-log", "simple-log".into()),
        ("#pidfile=\"/var/run/turnserver.pid\"", "pidfile=\"/var/run/turnserver.pid\"".into()),
        ("#prometheus", "prometheus".into()),
    ];
    for (from, to) in &edits {
        uncomment(&mut t, from, to);
    }
    t
}

#[test]
fn the_example_with_a_production_set_uncommented_loads_into_config() {
    let d = tempdir("production");
    let (cert, pkey) = pem_pair(&d);
    let p = d.join("turnserver.conf");
    std::fs::write(&p, production(&cert, &pkey)).unwrap();
    let l = load_file(&p).unwrap_or_else(|e| panic!("{e}"));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings.iter().map(short).collect::<Vec<_>>());
    let c = &l.config;
    assert_eq!(c.listening_ips, [ip("127.0.0.1")]);
    assert_eq!(c.relay_ips, [ip("127.0.0.1")]);
    assert_eq!(c.external_ips, [ExternalIp { public: ip("203.0.113.5"), private: Some(ip("127.0.0.1")) }]);
    assert_eq!((c.min_port, c.max_port), (50000, 60000));
    assert!(c.fingerprint);
    assert!(c.use_auth_secret && c.lt_cred_mech && !c.no_auth);
    assert_eq!(c.static_auth_secrets, ["4c3f0b7d9e2a41d8b6a5f1e0c9d8b7a6"]);
    assert_eq!(c.realm.as_deref(), Some("turn.example.org"));
    assert_eq!((c.user_quota, c.total_quota), (12, 1200));
    assert_eq!(c.stale_nonce, 600);
    assert_eq!((c.cert.clone(), c.pkey.clone()), (Some(cert), Some(pkey)));
    assert_eq!(c.cipher_list.as_deref(), Some("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"));
    assert!(c.no_tlsv1 && c.no_tlsv1_1 && !c.no_tlsv1_2);
    assert!(c.no_multicast_peers && !c.allow_loopback_peers);
    assert_eq!(
        c.denied_peer_ips,
        [
            IpRange { start: ip("10.0.0.0"), end: ip("10.255.255.255") },
            IpRange { start: ip("fc00::"), end: ip("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") },
        ]
    );
    assert_eq!(c.allowed_peer_ips, [IpRange::single(ip("10.0.0.5"))]);
    assert_eq!(c.log_file.as_deref(), Some("/var/log/turnserver/turnserver.log"));
    assert!(c.simple_log);
    assert_eq!(c.pidfile, Some(PathBuf::from("/var/run/turnserver.pid")));
    assert!(c.prometheus);
    assert_eq!(c.prometheus_port, 9641);
}

#[test]
fn errors_in_the_production_set_point_at_coturns_own_line_numbers() {
    let d = tempdir("production-lines");
    let (cert, pkey) = pem_pair(&d);
    let mut t = production(&cert, &pkey);
    uncomment(&mut t, "#max-allocate-lifetime=3600", "max-allocate-lifetime=an hour");
    let line = t.lines().position(|l| l.starts_with("max-allocate-lifetime=")).unwrap() + 1;
    let p = d.join("turnserver.conf");
    std::fs::write(&p, &t).unwrap();
    let e = load_file(&p).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:{line}: max-allocate-lifetime `an hour` is not a number: use a whole number of seconds",
            p.display()
        )
    );
}

#[test]
fn the_development_config_loads_cleanly() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/turnserver.conf");
    let l = load_file(&p).unwrap_or_else(|e| panic!("{e}"));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = &l.config;
    assert_eq!(c.listening_ips, [ip("127.0.0.1")]);
    assert_eq!(c.listening_port, 3478);
    assert_eq!(c.relay_ips, [ip("127.0.0.1")]);
    assert_eq!(c.realm.as_deref(), Some("tern.local"));
    assert!(c.use_auth_secret && c.allow_loopback_peers && c.fingerprint && c.no_tls);
    assert_eq!(c.static_auth_secrets, [relay_config::DEV_STATIC_AUTH_SECRET]);
    assert!(c.min_port >= 49152 && c.min_port <= c.max_port);
    // It says, at every start, that its secret and its loopback peers are for development.
    assert_eq!(l.notices.len(), 2, "{:?}", l.notices);
}
