//! Quotas and the port range against a real `tern-relay`, under churn: `user-quota` and
//! `total-quota` refuse with 486 exactly when a model of the counts says so, over UDP and TCP,
//! and give back what they took when allocations end (Refresh 0, or the TCP connection closing:
//! the coturn mobility-quota class of bug). An exhausted relay port range answers 508 and
//! recovers when allocations end.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::abuse::Rng;
use support::{Client, Creds, Launch, Proto};

const QUOTA: u16 = 486;
const CAPACITY: u16 = 508;
const USER_QUOTA: usize = 2;
const TOTAL_QUOTA: usize = 5;

/// Allocates, retrying a refusal for up to 3 s when success is expected: a TCP close reaches
/// the relay asynchronously, so its quota comes back a moment later.
fn allocate_expecting(c: &mut Client, want_ok: bool) -> Result<(), u16> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let r = c.try_allocate().map(|_| ());
        if r.is_ok() || !want_ok || Instant::now() >= deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs a running relay; scripts/tests.d/45-security.sh runs it"]
fn user_and_total_quotas_refuse_with_486_and_recover_under_churn() {
    let relay = Launch::dual_stack(64)
        .args(&[&format!("--user-quota={USER_QUOTA}"), &format!("--total-quota={TOTAL_QUOTA}")])
        .start();
    let users = ["alice", "bob", "carol", "dave"];
    let mut rng = Rng::new(486);
    // Live allocations: (user, client).
    let mut live: Vec<(&str, Client)> = Vec::new();
    let mut refusals = 0;
    let mut successes = 0;
    let mut tcp_closes = 0;
    for round in 0..120 {
        let count = |live: &Vec<(&str, Client)>, u: &str| live.iter().filter(|(x, _)| *x == u).count();
        if live.is_empty() || rng.below(100) < 60 {
            let user = users[rng.below(4) as usize];
            let proto = if rng.below(2) == 0 { Proto::Udp } else { Proto::Tcp };
            let mut c = Client::new(proto, relay.addr).with_creds(Creds::user(user));
            let want_ok = count(&live, user) < USER_QUOTA && live.len() < TOTAL_QUOTA;
            match allocate_expecting(&mut c, want_ok) {
                Ok(()) => {
                    assert!(
                        want_ok,
                        "round {round}: {user} allocated over its quota ({live_n} live)",
                        live_n = live.len()
                    );
                    live.push((user, c));
                    successes += 1;
                }
                Err(code) => {
                    assert!(!want_ok, "round {round}: {user} refused with {code} under quota");
                    assert_eq!(code, QUOTA, "round {round}");
                    refusals += 1;
                }
            }
        } else {
            let (_, mut c) = live.swap_remove(rng.below(live.len() as u64) as usize);
            // Half the TCP clients just go away; everyone else deletes with Refresh 0.
            if c.is_stream() && rng.below(2) == 0 {
                tcp_closes += 1;
                drop(c);
            } else {
                assert_eq!(c.refresh(0).result(), Ok(()), "round {round}");
            }
        }
    }
    // Everything ends, and the full quota is there again.
    for (_, mut c) in live.drain(..) {
        c.refresh(0).result().unwrap();
    }
    let mut again = Vec::new();
    for user in ["alice", "alice", "bob", "bob", "carol"] {
        let mut c = Client::new(Proto::Udp, relay.addr).with_creds(Creds::user(user));
        assert_eq!(allocate_expecting(&mut c, true), Ok(()), "{user} after the churn");
        again.push(c);
    }
    let mut over = Client::new(Proto::Tcp, relay.addr).with_creds(Creds::user("dave"));
    assert_eq!(over.try_allocate(), Err(QUOTA), "total-quota still holds");
    println!("quota churn: {successes} allocations, {refusals} refusals (486), {tcp_closes} TCP closes");
    assert!(successes >= 20 && refusals >= 5, "the churn exercised both sides");
}

#[test]
#[ignore = "needs a running relay; scripts/tests.d/45-security.sh runs it"]
fn an_exhausted_port_range_answers_508_and_recovers() {
    // One worker, four relay ports.
    let relay = Launch::dual_stack(4).args(&["--relay-threads=1"]).start();
    let mut rng = Rng::new(508);
    let mut live: Vec<Client> = Vec::new();
    let mut full = 0;
    for round in 0..60 {
        if live.len() < 4 || rng.below(2) == 0 {
            let proto = if rng.below(3) == 0 { Proto::Tcp } else { Proto::Udp };
            let mut c = Client::new(proto, relay.addr).with_creds(Creds::user("alice"));
            let want_ok = live.len() < 4;
            let r = if want_ok { allocate_expecting(&mut c, true) } else { c.try_allocate().map(|_| ()) };
            match r {
                Ok(()) => {
                    assert!(want_ok, "round {round}: a fifth port out of four");
                    live.push(c);
                }
                Err(code) => {
                    assert!(!want_ok, "round {round}: refused with {code} while ports were free");
                    assert_eq!(code, CAPACITY);
                    full += 1;
                }
            }
        } else {
            let mut c = live.swap_remove(rng.below(live.len() as u64) as usize);
            if c.is_stream() && rng.below(2) == 0 {
                drop(c);
            } else {
                assert_eq!(c.refresh(0).result(), Ok(()));
            }
        }
    }
    for mut c in live.drain(..) {
        c.refresh(0).result().unwrap();
    }
    let mut again: Vec<Client> = Vec::new();
    for _ in 0..4 {
        let mut c = Client::new(Proto::Udp, relay.addr).with_creds(Creds::user("bob"));
        assert_eq!(allocate_expecting(&mut c, true), Ok(()), "all four ports are back");
        again.push(c);
    }
    let mut fifth = Client::new(Proto::Udp, relay.addr).with_creds(Creds::user("bob"));
    assert_eq!(fifth.try_allocate(), Err(CAPACITY));
    println!("port churn: 508 answered {full} times; all four ports back at the end");
    assert!(full >= 5);
}
