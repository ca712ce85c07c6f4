//! Signals: SIGHUP rotates the secret (and reopens the log) without dropping a call; a broken
//! config on SIGHUP keeps the running one; SIGUSR1 drains; SIGTERM stops cleanly.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::ops::{allocated, exchange};
use support::{Creds, Launch, Peer, Relay, read, wait_until};

fn conf(secrets: &[&str], extra: &str) -> String {
    let mut s = String::from("use-auth-secret\n");
    for sec in secrets {
        s.push_str(&format!("static-auth-secret={sec}\n"));
    }
    s.push_str(extra);
    s
}

/// Whether a fresh client with `secret` can allocate (and then frees the allocation).
fn secret_works(r: &Relay, secret: &str) -> Option<bool> {
    let mut c = r.udp().with_creds(Creds::rest(secret, "probe"));
    match c.try_allocate() {
        Ok(_) => {
            // Best effort: a reload may land between the two requests and refuse the refresh.
            let _ = c.refresh(0);
            Some(true)
        }
        Err(401) => Some(false),
        Err(e) => panic!("allocate: {e}"),
    }
}

#[test]
fn sighup_rotates_the_secret_while_a_call_keeps_relaying() {
    let mut r = Launch::ops().config(conf(&["old-secret"], "")).start();
    let peer = Arc::new(Peer::new());
    let (mut call, relayed) = allocated(&r, "old-secret", "caller", &peer);

    // The call: a packet each way every 5 ms until told to stop; every one must arrive.
    let stop = Arc::new(AtomicBool::new(false));
    let call_thread = {
        let (peer, stop) = (peer.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut sent = 0usize;
            let (mut up, mut down) = (0usize, 0usize);
            while !stop.load(Ordering::Relaxed) || sent < 100 {
                let (u, d) = exchange(&mut call, &peer, relayed, 1);
                sent += 1;
                up += u;
                down += d;
                std::thread::sleep(Duration::from_millis(5));
            }
            // While both secrets were valid, the call refreshed; after, it still relays.
            (sent, up, down, call)
        })
    };

    assert_eq!(secret_works(&r, "new-secret"), Some(false));
    // 1. Add the new secret next to the old one.
    std::fs::write(&r.config, conf(&["old-secret", "new-secret"], "")).unwrap();
    // logrotate moves the file away before it signals.
    let rotated = r.dir.path().join("relay.log.1");
    std::fs::rename(&r.log, &rotated).unwrap();
    r.signal(libc::SIGHUP);
    assert!(wait_until(Duration::from_secs(5), || secret_works(&r, "new-secret") == Some(true)), "{}", r.log_text());
    assert_eq!(secret_works(&r, "old-secret"), Some(true), "both secrets work during the rotation");
    assert!(r.wait_log("configuration reloaded", Duration::from_secs(2)), "the log file was reopened at its path");
    assert!(!read(&rotated).contains("configuration reloaded"));

    // 2. Remove the old secret.
    std::fs::write(&r.config, conf(&["new-secret"], "")).unwrap();
    r.signal(libc::SIGHUP);
    assert!(wait_until(Duration::from_secs(5), || secret_works(&r, "old-secret") == Some(false)), "{}", r.log_text());
    assert_eq!(secret_works(&r, "new-secret"), Some(true));

    stop.store(true, Ordering::Relaxed);
    let (sent, up, down, _call) = call_thread.join().unwrap();
    assert!(sent >= 100);
    assert_eq!((up, down), (sent, sent), "the call lost packets across the reloads");
    assert!(r.try_wait().is_none());
}

#[test]
fn a_broken_config_on_sighup_keeps_the_running_one() {
    let r = Launch::ops().config(conf(&["good-secret"], "user-quota=5\n")).start();
    std::fs::write(&r.config, "use-auth-secret\nstatic-auth-secret=other\nuser-quota=lots\n").unwrap();
    r.signal(libc::SIGHUP);
    assert!(r.wait_log("did not load", Duration::from_secs(5)), "{}", r.log_text());
    assert!(r.log_text().contains("user-quota"), "the error names the line: {}", r.log_text());
    assert_eq!(secret_works(&r, "good-secret"), Some(true));
    assert_eq!(secret_works(&r, "other"), Some(false));
}

#[test]
fn sighup_reloads_quotas_and_peer_lists() {
    let r = Launch::ops().config(conf(&["s"], "")).start();
    // Not 127.0.0.1: the relay's own address is judged before the lists.
    let peer = Peer::on("127.0.0.3".parse().unwrap());
    let (mut a, _) = allocated(&r, "s", "dave", &peer);
    let mut b = r.udp().with_creds(Creds::rest("s", "dave"));
    std::fs::write(&r.config, conf(&["s"], &format!("user-quota=1\ndenied-peer-ip={}\n", peer.addr().ip()))).unwrap();
    r.signal(libc::SIGHUP);
    assert!(r.wait_log("configuration reloaded", Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(b.try_allocate(), Err(486), "the new user-quota counts the live allocation");
    assert_eq!(a.create_permission(&[peer.addr()]).result(), Err(403), "the new denied-peer-ip applies");
    assert_eq!(a.refresh(600).result(), Ok(()), "the live allocation stays");
}

#[test]
fn sigusr1_drains_then_exits_when_the_last_allocation_ends() {
    let mut r = Launch::ops().args(&["--use-auth-secret", "--static-auth-secret=s", "--admin-api"]).start();
    let peer = Peer::new();
    let (mut a, relayed) = allocated(&r, "s", "erin", &peer);
    r.signal(libc::SIGUSR1);
    assert!(wait_until(Duration::from_secs(5), || r.admin("GET", "/readyz", None).0 == 503));
    assert!(r.wait_log("draining", Duration::from_secs(2)));
    std::thread::sleep(Duration::from_millis(200));

    // New allocations are refused; the existing one keeps relaying and refreshing.
    let mut b = r.udp().with_creds(Creds::rest("s", "frank"));
    assert_eq!(b.try_allocate(), Err(508));
    assert_eq!(exchange(&mut a, &peer, relayed, 10), (10, 10));
    assert_eq!(a.refresh(600).result(), Ok(()));
    std::thread::sleep(Duration::from_millis(300));
    assert!(r.try_wait().is_none(), "still running while an allocation lives");

    a.refresh(0).result().unwrap();
    let status = r.wait_exit(Duration::from_secs(5)).expect("exits once drained");
    assert!(status.success(), "{status}");
    assert!(!r.pidfile.exists(), "the pidfile is removed");
    assert!(r.log_text().contains("drained; exiting"), "{}", r.log_text());
}

#[test]
fn drain_redirects_to_an_alternate_server_when_one_is_configured() {
    let mut r = Launch::ops()
        .args(&["--use-auth-secret", "--static-auth-secret=s", "--drain-alternate-server=192.0.2.7:3478"])
        .start();
    let peer = Peer::new();
    let (mut a, _) = allocated(&r, "s", "gina", &peer);
    // Before the drain, the alternate is not used.
    let mut before = r.udp().with_creds(Creds::rest("s", "hank"));
    before.try_allocate().unwrap();
    before.refresh(0).result().unwrap();
    r.signal(libc::SIGUSR1);
    assert!(r.wait_log("draining", Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(200));
    let mut c = r.udp().with_creds(Creds::rest("s", "ivan"));
    let reply = c.request(relay_proto::stun::Method::ALLOCATE, |w| {
        w.add_requested_transport(17);
    });
    assert_eq!(reply.error(), Some(300));
    assert_eq!(reply.msg().alternate_server().unwrap(), Some("192.0.2.7:3478".parse().unwrap()));
    a.refresh(0).result().unwrap();
    assert!(r.wait_exit(Duration::from_secs(5)).is_some_and(|s| s.success()));
}

#[test]
fn drain_timeout_ends_the_wait() {
    let mut r = Launch::ops().args(&["--use-auth-secret", "--static-auth-secret=s", "--drain-timeout=1"]).start();
    let peer = Peer::new();
    let (_a, _) = allocated(&r, "s", "judy", &peer);
    r.signal(libc::SIGUSR1);
    let status = r.wait_exit(Duration::from_secs(6)).expect("exits at the drain deadline");
    assert!(status.success());
    assert!(r.log_text().contains("drain-timeout passed"), "{}", r.log_text());
}

#[test]
fn sigterm_and_sigint_stop_cleanly() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut r = Launch::ops().start();
        assert!(r.pidfile.exists());
        r.signal(sig);
        let status = r.wait_exit(Duration::from_secs(5)).expect("stops");
        assert!(status.success(), "{status}");
        assert!(!r.pidfile.exists());
        assert!(r.log_text().contains("tern-relay stopped"));
    }
}
