//! Scenario tests over the pure core, written requirement by requirement against RFC 8656
//! (and RFC 8489 for authentication). Each test drives a [`Harness`] with a virtual clock and an
//! in-memory [`RelayHost`], and checks the responses and the sockets the server asked for.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::fuzzing::MemoryHost;
use crate::stun::attr::PasswordAlgorithm;
use crate::stun::{Key, Message, MessageWriter};
use crate::turn_rest;

const SECRET: &str = "s3cret";
const REALM: &str = "tern.test";
const UNIX_NOW: u64 = 1_800_000_000;

// ------------------------------------------------------------------------------------------
// Binding
// ------------------------------------------------------------------------------------------

#[test]
fn binding_request_gets_the_clients_own_address_as_xor_mapped_address() {
    let mut h = Harness::new();
    let c = h.client(1);
    let r = h.request(c.tuple, Method::BINDING, |_| {});
    let m = r.msg();
    assert_eq!((m.class(), m.method()), (Class::Success, Method::BINDING));
    assert_eq!(m.xor_mapped_address().unwrap(), Some(c.tuple.client));
    assert!(!m.has_fingerprint());
    assert_eq!(r.0.len(), 32, "no SOFTWARE, nothing but XOR-MAPPED-ADDRESS");
}

#[test]
fn binding_request_with_fingerprint_gets_fingerprint() {
    let mut h = Harness::new();
    let c = h.client(1);
    let req = build(Method::BINDING, Class::Request, [1; 12], |w| {
        w.add_fingerprint();
    });
    let r = h.send_expect_one(c.tuple, &req);
    assert_eq!(r.msg().fingerprint_ok(), Some(true));
}

#[test]
fn classic_rfc3489_binding_gets_mapped_address_and_the_echoed_id() {
    let mut h = Harness::new();
    let c = h.client(1);
    let mut req = build(Method::BINDING, Class::Request, [1; 12], |_| {});
    req[4..8].copy_from_slice(&[9, 9, 9, 9]);
    let r = h.send_expect_one(c.tuple, &req);
    assert_eq!(&r.0[4..20], &req[4..20]);
    let m = Message::parse_any(&r.0).unwrap();
    assert_eq!(m.mapped_address().unwrap(), Some(c.tuple.client));
}

#[test]
fn stun_only_refuses_turn_and_no_stun_ignores_binding() {
    let mut h = Harness::with(|cfg| cfg.stun_only = true);
    let c = h.client(1);
    let r = h.request(c.tuple, Method::ALLOCATE, |w| {
        w.add_requested_transport(17);
    });
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::BAD_REQUEST);
    assert_eq!(h.request(c.tuple, Method::BINDING, |_| {}).msg().class(), Class::Success);
    let mut h = Harness::with(|cfg| cfg.no_stun = true);
    let req = build(Method::BINDING, Class::Request, [1; 12], |_| {});
    h.send(c.tuple, &req);
    assert!(h.transmits.is_empty());
}

#[test]
fn a_recycled_reply_buffer_carries_the_next_reply() {
    let mut h = Harness::new();
    let c = h.client(1);
    h.server.recycle_transmit(Vec::with_capacity(2000));
    assert_eq!(h.server.spare_buffers.len(), 1);
    let req = build(Method::BINDING, Class::Request, [1; 12], |_| {});
    h.send(c.tuple, &req);
    assert!(h.server.spare_buffers.is_empty(), "the reply took the spare buffer");
    let t = h.transmits.pop().unwrap();
    assert!(t.data.capacity() >= 2000 && t.data.len() == 32);
    // Oversize buffers are not kept.
    h.server.recycle_transmit(Vec::with_capacity(1 << 20));
    assert!(h.server.spare_buffers.is_empty());
}

#[test]
fn malformed_input_gets_no_reply_and_is_counted() {
    let mut h = Harness::new();
    let c = h.client(1);
    for junk in [&[][..], &[0x00, 0x01, 0x00], &[0xFF; 40], &[0x40, 0x00, 0xFF, 0xFF, 1]] {
        h.send(c.tuple, junk);
        assert!(h.transmits.is_empty());
    }
    assert!(h.server.stats().malformed >= 3);
}

#[test]
fn unknown_comprehension_required_attribute_gets_420_listing_it() {
    let mut h = Harness::new();
    let c = h.client(1);
    let r = h.request(c.tuple, Method::BINDING, |w| {
        w.add(AttrType(0x7F01), b"?");
        w.add(AttrType(0xC0FF), b"optional is fine");
    });
    let m = r.msg();
    assert_eq!(m.error_code().unwrap().unwrap().0, ErrorCode::UNKNOWN_ATTRIBUTE);
    assert_eq!(m.unknown_attributes().collect::<Vec<_>>(), vec![AttrType(0x7F01)]);
}

#[test]
fn indications_and_responses_never_get_an_error_reply() {
    let mut h = Harness::new();
    let c = h.client(1);
    for class in [Class::Indication, Class::Success, Class::Error] {
        let m = build(Method::ALLOCATE, class, [3; 12], |w| {
            w.add(AttrType(0x7F01), b"?");
        });
        h.send(c.tuple, &m);
        assert!(h.transmits.is_empty(), "{class:?} got a reply");
    }
}

// ------------------------------------------------------------------------------------------
// Authentication
// ------------------------------------------------------------------------------------------

#[test]
fn allocate_without_credentials_gets_401_with_realm_nonce_and_password_algorithms() {
    let mut h = Harness::new();
    let c = h.client(1);
    let r = h.request(c.tuple, Method::ALLOCATE, |w| {
        w.add_requested_transport(17);
    });
    let m = r.msg();
    assert_eq!(m.error_code().unwrap().unwrap(), (ErrorCode::UNAUTHORIZED, ""));
    assert_eq!(m.realm().unwrap(), Some(REALM));
    assert!(m.nonce().unwrap().unwrap().starts_with("obMatJos2"));
    assert!(m.password_algorithms().is_some());
    assert!(!m.has_integrity());
    // No state before authentication.
    assert_eq!(h.server.allocation_count(), 0);
    assert!(h.host.open.is_empty());
    // Amplification: the 28-byte Allocate gets at most 3.5 times its size.
    assert!(r.0.len() * 2 <= 28 * 7, "401 is {} bytes", r.0.len());
}

#[test]
fn allocate_with_rest_credentials_gets_relayed_mapped_address_and_lifetime() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    let r = c.allocate(&mut h, |_| {});
    let m = r.msg();
    assert_eq!(m.class(), Class::Success, "{m:?}");
    let relayed = m.xor_relayed_address().unwrap().unwrap();
    assert_eq!(relayed.ip(), h.relay_ip());
    assert!((50000..=50999).contains(&relayed.port()));
    assert_eq!(m.xor_mapped_address().unwrap(), Some(c.tuple.client));
    assert_eq!(m.lifetime().unwrap(), Some(600));
    assert!(m.verify_integrity(c.key.as_bytes()).is_ok(), "response signed with the request's key");
    assert!(h.host.open.contains(&relayed));
}

#[test]
fn wrong_password_gets_401_and_creates_nothing() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.key = Key::long_term(PasswordAlgorithm::Md5, &c.username, REALM, "not the password").unwrap();
    let r = c.allocate(&mut h, |_| {});
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::UNAUTHORIZED);
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.server.stats().auth_failures[UnauthorizedReason::BadIntegrity.index()], 1);
}

#[test]
fn unauthenticated_answers_over_udp_have_a_per_source_budget() {
    let mut h = Harness::with(|cfg| cfg.unauthenticated_rps = 5);
    let c = h.client(1);
    let req = build(Method::ALLOCATE, Class::Request, [2; 12], |w| {
        w.add_requested_transport(17);
    });
    h.transmits.clear();
    for _ in 0..20 {
        h.send(c.tuple, &req);
    }
    assert_eq!(h.transmits.len(), 5);
    assert_eq!(h.server.stats().challenges_suppressed, 15);
    // The next second has a fresh budget; TCP and loopback sources are not limited.
    h.advance(Duration::from_secs(1));
    h.transmits.clear();
    h.send(c.tuple, &req);
    assert_eq!(h.transmits.len(), 1);
    let mut tcp = c.tuple;
    tcp.transport = Transport::Tcp;
    let mut lo = c.tuple;
    lo.client = "127.0.0.1:5000".parse().unwrap();
    h.transmits.clear();
    for _ in 0..20 {
        h.send(tcp, &req);
        h.send(lo, &req);
    }
    assert_eq!(h.transmits.len(), 40);
}

#[test]
fn oversize_username_realm_or_nonce_gets_400() {
    let mut h = Harness::new();
    let c = h.client(1);
    let long = "x".repeat(600);
    for t in [AttrType::USERNAME, AttrType::REALM, AttrType::NONCE] {
        // The first USERNAME/REALM/NONCE wins, so put the oversize one first.
        let req = build(Method::ALLOCATE, Class::Request, [3; 12], |w| {
            w.add_requested_transport(17);
            w.add_text(t, &long);
            w.add_text(AttrType::USERNAME, "u");
            w.add_text(AttrType::REALM, REALM);
            w.add_text(AttrType::NONCE, "n");
            w.add_message_integrity(b"k");
        });
        let r = h.send_expect_one(c.tuple, &req);
        assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::BAD_REQUEST, "{t:?}");
    }
}

#[test]
fn max_bps_drops_traffic_over_the_rate_in_each_direction() {
    let mut h = Harness::with(|cfg| cfg.max_bps = 1000);
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let peer: SocketAddr = "8.8.8.8:5000".parse().unwrap();
    c.bind(&mut h, 0x4000, peer);
    let payload = [7u8; 100];
    let sent = (0..20).filter(|_| h.channel_data(c.tuple, 0x4000, &payload).is_some()).count();
    assert_eq!(sent, 10, "1000 bytes per second of 100-byte datagrams");
    let relay = h.server.sessions(h.now)[0].relays[0];
    let back = (0..20).filter(|_| h.peer_data(relay, peer, &payload).is_some()).count();
    assert_eq!(back, 10);
    assert_eq!(h.server.stats().dropped_bandwidth, 20);
    h.advance(Duration::from_millis(500));
    let sent = (0..20).filter(|_| h.channel_data(c.tuple, 0x4000, &payload).is_some()).count();
    assert_eq!(sent, 5);
}

#[test]
fn bps_capacity_is_shared_by_every_allocation_of_the_worker() {
    let mut h = Harness::with(|cfg| cfg.bps_capacity = 1000);
    let peer: SocketAddr = "8.8.8.8:5000".parse().unwrap();
    let mut clients: Vec<TestClient> = (1..=2).map(|i| h.client(i)).collect();
    for c in &mut clients {
        c.allocate(&mut h, |_| {});
        c.bind(&mut h, 0x4000, peer);
    }
    let payload = [7u8; 100];
    let mut sent = [0; 2];
    for _ in 0..10 {
        for (i, c) in clients.iter().enumerate() {
            sent[i] += usize::from(h.channel_data(c.tuple, 0x4000, &payload).is_some());
        }
    }
    assert_eq!(sent, [5, 5], "1000 bytes per second between both allocations");
    // Peer-to-client traffic draws on the same bucket.
    let relay = h.server.sessions(h.now)[0].relays[0];
    assert!(h.peer_data(relay, peer, &payload).is_none());
    h.advance(Duration::from_secs(1));
    assert!(h.peer_data(relay, peer, &payload).is_some());
}

#[test]
fn permissions_and_channels_per_allocation_are_capped() {
    let mut h = Harness::with(|cfg| {
        cfg.max_permissions = 3;
        cfg.max_channels = 2;
    });
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let peers: Vec<SocketAddr> = (1..=4).map(|i| SocketAddr::new([8, 8, 8, i].into(), 5000)).collect();
    let permit = |h: &mut Harness, c: &mut TestClient, list: &[SocketAddr]| {
        let r = c.authed(h, Method::CREATE_PERMISSION, |w| {
            for p in list {
                w.add_xor_address(AttrType::XOR_PEER_ADDRESS, *p);
            }
        });
        r.msg().error_code().unwrap().map(|e| e.0)
    };
    assert_eq!(permit(&mut h, &mut c, &peers[..3]), None);
    assert_eq!(permit(&mut h, &mut c, &peers[3..]), Some(ErrorCode::INSUFFICIENT_CAPACITY));
    // Refreshing what is there is not a new permission.
    assert_eq!(permit(&mut h, &mut c, &peers[..3]), None);
    assert_eq!(h.server.sessions(h.now)[0].permissions, 3);
    assert_eq!(c.bind(&mut h, 0x4000, peers[0]), Class::Success);
    assert_eq!(c.bind(&mut h, 0x4001, peers[1]), Class::Success);
    assert_eq!(c.bind(&mut h, 0x4002, peers[2]), Class::Error);
    assert_eq!(c.bind(&mut h, 0x4001, peers[1]), Class::Success, "re-binding refreshes");
}

#[test]
fn any_of_several_rest_secrets_matches_so_secrets_can_rotate() {
    let mut h = Harness::with(|cfg| cfg.auth.rest_secrets = vec![b"old".to_vec(), SECRET.as_bytes().to_vec()]);
    let mut c = h.client(1);
    assert_eq!(c.allocate(&mut h, |_| {}).msg().class(), Class::Success);
}

#[test]
fn rest_username_in_coturns_reversed_order_is_accepted() {
    let mut h = Harness::new();
    let username = format!("alice:{}", UNIX_NOW + 60);
    let mut c = h.client_with_username(1, &username);
    assert_eq!(c.allocate(&mut h, |_| {}).msg().class(), Class::Success);
}

#[test]
fn expired_rest_credentials_get_401_even_on_refresh() {
    let mut h = Harness::new();
    let username = format!("{}:bob", UNIX_NOW + 100);
    let mut c = h.client_with_username(1, &username);
    assert_eq!(c.allocate(&mut h, |_| {}).msg().class(), Class::Success);
    h.unix_now += 101;
    let r = c.authed(&mut h, Method::REFRESH, |w| {
        w.add_u32(AttrType::LIFETIME, 600);
    });
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::UNAUTHORIZED);
    assert_eq!(h.server.stats().auth_failures[UnauthorizedReason::Expired.index()], 1);
}

#[test]
fn static_user_with_password_and_with_hex_key_both_authenticate() {
    let key = Key::long_term(PasswordAlgorithm::Md5, "carol", REALM, "pw2").unwrap();
    let mut h = Harness::with(|cfg| {
        cfg.auth.rest_secrets.clear();
        cfg.auth.users =
            vec![("dave".into(), UserSecret::Password("pw1".into())), ("carol".into(), UserSecret::Md5Key(key))];
    });
    let mut d = h.static_client(1, "dave", "pw1");
    assert_eq!(d.allocate(&mut h, |_| {}).msg().class(), Class::Success);
    let mut c = h.static_client(2, "carol", "pw2");
    assert_eq!(c.allocate(&mut h, |_| {}).msg().class(), Class::Success);
    let mut x = h.static_client(3, "mallory", "pw1");
    assert_eq!(x.allocate(&mut h, |_| {}).msg().error_code().unwrap().unwrap().0, ErrorCode::UNAUTHORIZED);
}

#[test]
fn sha256_password_algorithm_and_message_integrity_sha256_work() {
    let mut h = Harness::with(|cfg| {
        cfg.auth.rest_secrets.clear();
        cfg.auth.users = vec![("erin".into(), UserSecret::Password("pw".into()))];
    });
    let mut c = h.static_client(1, "erin", "pw");
    c.key = Key::long_term(PasswordAlgorithm::Sha256, "erin", REALM, "pw").unwrap();
    c.sha256 = true;
    let r = c.allocate(&mut h, |_| {});
    let m = r.msg();
    assert_eq!(m.class(), Class::Success, "{m:?}");
    assert!(m.verify_integrity_sha256(c.key.as_bytes()).is_ok());
    assert!(!m.has_integrity(), "the response uses the request's kind of integrity");
}

#[test]
fn userhash_identifies_a_static_user_without_sending_the_name() {
    let mut h = Harness::with(|cfg| {
        cfg.auth.rest_secrets.clear();
        cfg.auth.users = vec![("frank".into(), UserSecret::Password("pw".into()))];
    });
    let mut c = h.static_client(1, "frank", "pw");
    c.userhash = true;
    assert_eq!(c.allocate(&mut h, |_| {}).msg().class(), Class::Success);
}

#[test]
fn password_algorithms_that_differ_from_the_offer_get_400() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.fetch_nonce(&mut h);
    let r = c.authed(&mut h, Method::ALLOCATE, |w| {
        w.add_requested_transport(17);
        w.add_password_algorithms(&[PasswordAlgorithm::Md5]);
        w.add_password_algorithm(PasswordAlgorithm::Md5);
    });
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::BAD_REQUEST);
}

#[test]
fn stale_nonce_gets_438_with_a_fresh_nonce_and_the_retry_works() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    let r = c.allocate(&mut h, |w| {
        w.add_u32(AttrType::LIFETIME, 3600);
    });
    assert_eq!(r.msg().class(), Class::Success);
    h.advance(Duration::from_secs(601));
    let req = c.authed_bytes(Method::REFRESH, [6; 12], |_| {});
    let r = h.send_expect_one(c.tuple, &req);
    let m = r.msg();
    assert_eq!(m.error_code().unwrap().unwrap().0, ErrorCode::STALE_NONCE);
    let fresh = m.nonce().unwrap().unwrap().to_owned();
    assert_ne!(Some(&fresh), c.nonce.as_ref());
    c.nonce = Some(fresh);
    assert_eq!(c.authed(&mut h, Method::REFRESH, |_| {}).msg().class(), Class::Success);
}

#[test]
fn attributes_appended_after_message_integrity_have_no_effect() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let mut req = c.authed_bytes(Method::REFRESH, [5; 12], |w| {
        w.add_u32(AttrType::LIFETIME, 1200);
    });
    // An on-path attacker appends LIFETIME 0 after MESSAGE-INTEGRITY.
    req.extend_from_slice(&[0x00, 0x0D, 0x00, 0x04, 0, 0, 0, 0]);
    let len = (req.len() - 20) as u16;
    req[2..4].copy_from_slice(&len.to_be_bytes());
    let r = h.send_expect_one(c.tuple, &req);
    assert_eq!(r.msg().lifetime().unwrap(), Some(1200));
    assert_eq!(h.server.allocation_count(), 1);
}

// ------------------------------------------------------------------------------------------
// Allocate
// ------------------------------------------------------------------------------------------

#[test]
fn allocate_without_requested_transport_gets_400() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.fetch_nonce(&mut h);
    let r = c.authed(&mut h, Method::ALLOCATE, |_| {});
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::BAD_REQUEST);
}

#[test]
fn allocate_for_tcp_relaying_gets_442() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.fetch_nonce(&mut h);
    let r = c.authed(&mut h, Method::ALLOCATE, |w| {
        w.add_requested_transport(6);
    });
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::UNSUPPORTED_TRANSPORT_PROTOCOL);
}

#[test]
fn second_allocate_on_the_same_five_tuple_gets_437() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let r = c.authed(&mut h, Method::ALLOCATE, |w| {
        w.add_requested_transport(17);
    });
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::ALLOCATION_MISMATCH);
    assert_eq!(h.host.open.len(), 1);
}

#[test]
fn a_retransmitted_allocate_gets_the_original_success_again() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.fetch_nonce(&mut h);
    let req = c.authed_bytes(Method::ALLOCATE, [8; 12], |w| {
        w.add_requested_transport(17);
    });
    let first = h.send_expect_one(c.tuple, &req);
    let again = h.send_expect_one(c.tuple, &req);
    assert_eq!(first.0, again.0);
    assert_eq!(h.server.allocation_count(), 1);
}

#[test]
fn lifetime_is_capped_by_the_maximum_and_never_below_the_default() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    let r = c.allocate(&mut h, |w| {
        w.add_u32(AttrType::LIFETIME, 100_000);
    });
    assert_eq!(r.msg().lifetime().unwrap(), Some(3600));
    let mut d = h.client(2);
    let r = d.allocate(&mut h, |w| {
        w.add_u32(AttrType::LIFETIME, 30);
    });
    assert_eq!(r.msg().lifetime().unwrap(), Some(600));
}

#[test]
fn an_allocation_expires_after_its_lifetime_and_its_relay_closes() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    let relayed = c.allocate(&mut h, |_| {}).msg().xor_relayed_address().unwrap().unwrap();
    h.advance(Duration::from_secs(599));
    assert_eq!(h.server.allocation_count(), 1);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.server.allocation_count(), 0);
    assert!(!h.host.open.contains(&relayed));
    assert_eq!(h.server.free_ports(), 1000);
}

#[test]
fn even_port_with_r_reserves_the_next_port_and_the_token_claims_it() {
    let mut h = Harness::new();
    let mut rtp = h.client(1);
    let r = rtp.allocate(&mut h, |w| {
        w.add_even_port(true);
    });
    let m = r.msg();
    let port = m.xor_relayed_address().unwrap().unwrap().port();
    assert_eq!(port % 2, 0);
    let token = m.reservation_token().unwrap().expect("RESERVATION-TOKEN");
    let mut rtcp = h.client(2);
    let r = rtcp.allocate(&mut h, |w| {
        w.add_u64(AttrType::RESERVATION_TOKEN, token);
    });
    assert_eq!(r.msg().xor_relayed_address().unwrap().unwrap().port(), port + 1);
    // A token works once.
    let mut third = h.client(3);
    let r = third.allocate(&mut h, |w| {
        w.add_u64(AttrType::RESERVATION_TOKEN, token);
    });
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::INSUFFICIENT_CAPACITY);
}

#[test]
fn a_pair_whose_second_port_another_process_holds_is_skipped() {
    // EVEN-PORT with R binds port+1 at once; when another process holds it, the pair is
    // skipped like a held first port, and the reservation of the next pair is really held.
    let mut h = Harness::with(|cfg| cfg.ports = 50000..=50003);
    h.host.busy.insert(SocketAddr::new(h.relay_ip(), 50001));
    let mut rtp = h.client(1);
    let r = rtp.allocate(&mut h, |w| {
        w.add_even_port(true);
    });
    let m = r.msg();
    assert_eq!(m.xor_relayed_address().unwrap().unwrap().port(), 50002);
    let token = m.reservation_token().unwrap().expect("RESERVATION-TOKEN");
    let held: Vec<SocketAddr> = h.host.reservations.values().map(|(a, _)| *a).collect();
    assert_eq!(held, vec![SocketAddr::new(h.relay_ip(), 50003)]);
    assert!(!h.host.open.contains(&SocketAddr::new(h.relay_ip(), 50000)), "the skipped pair's first port was closed");
    let mut rtcp = h.client(2);
    let r = rtcp.allocate(&mut h, |w| {
        w.add_u64(AttrType::RESERVATION_TOKEN, token);
    });
    assert_eq!(r.msg().xor_relayed_address().unwrap().unwrap().port(), 50003);
    // With every pair's second port held elsewhere there is no capacity for EVEN-PORT R, but
    // a plain allocation still gets the free port.
    let mut h = Harness::with(|cfg| cfg.ports = 50000..=50001);
    h.host.busy.insert(SocketAddr::new(h.relay_ip(), 50001));
    let mut c = h.client(1);
    let r = c.allocate(&mut h, |w| {
        w.add_even_port(true);
    });
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::INSUFFICIENT_CAPACITY);
    assert!(h.host.open.is_empty() && h.host.reservations.is_empty());
    assert_eq!(c.allocate(&mut h, |_| {}).msg().xor_relayed_address().unwrap().unwrap().port(), 50000);
}

#[test]
fn an_unclaimed_reservation_is_released_after_30_seconds() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |w| {
        w.add_even_port(true);
    });
    assert_eq!(h.server.free_ports(), 998);
    h.advance(Duration::from_secs(31));
    assert_eq!(h.server.free_ports(), 999);
    assert!(h.host.reservations.is_empty());
}

#[test]
fn even_port_without_r_gives_an_even_port_and_no_token() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    let r = c.allocate(&mut h, |w| {
        w.add_even_port(false);
    });
    let m = r.msg();
    assert_eq!(m.xor_relayed_address().unwrap().unwrap().port() % 2, 0);
    assert_eq!(m.reservation_token().unwrap(), None);
    assert_eq!(h.server.free_ports(), 999);
}

#[test]
fn reservation_token_with_even_port_gets_400() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    let r = c.allocate(&mut h, |w| {
        w.add_even_port(true);
        w.add_u64(AttrType::RESERVATION_TOKEN, 1);
    });
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::BAD_REQUEST);
}

#[test]
fn requested_address_family_ipv6_without_an_ipv6_relay_gets_440() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    let r = c.allocate(&mut h, |w| {
        w.add_family(AttrType::REQUESTED_ADDRESS_FAMILY, FAMILY_IPV6);
    });
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED);
}

#[test]
fn additional_address_family_gives_a_dual_allocation() {
    let mut h = Harness::with(|cfg| {
        cfg.relay_ips.push(RelayIp { local: "2001:db8::7".parse().unwrap(), public: "2001:db8::7".parse().unwrap() })
    });
    let mut c = h.client(1);
    let r = c.allocate(&mut h, |w| {
        w.add_family(AttrType::ADDITIONAL_ADDRESS_FAMILY, FAMILY_IPV6);
    });
    let m = r.msg();
    let relays: Vec<SocketAddr> = m.xor_relayed_addresses().map(|r| r.unwrap()).collect();
    assert_eq!(relays.len(), 2, "{m:?}");
    assert!(relays[0].is_ipv4() && relays[1].is_ipv6());
    // A permission for an IPv6 peer works on it; a v6-only allocation refuses a v4 peer (443).
    let r = c.authed(&mut h, Method::CREATE_PERMISSION, |w| {
        w.add_xor_address(AttrType::XOR_PEER_ADDRESS, "[2606:4700::1]:5000".parse().unwrap());
    });
    assert_eq!(r.msg().class(), Class::Success);
    let mut d = h.client(2);
    d.allocate(&mut h, |w| {
        w.add_family(AttrType::REQUESTED_ADDRESS_FAMILY, FAMILY_IPV6);
    });
    let r = d.authed(&mut h, Method::CREATE_PERMISSION, |w| {
        w.add_xor_address(AttrType::XOR_PEER_ADDRESS, "8.8.8.8:53".parse().unwrap());
    });
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH);
}

#[test]
fn external_ip_is_what_the_client_is_told() {
    let mut h = Harness::with(|cfg| {
        cfg.relay_ips = vec![RelayIp { local: "127.0.0.1".parse().unwrap(), public: "203.0.113.5".parse().unwrap() }]
    });
    let mut c = h.client(1);
    let relayed = c.allocate(&mut h, |_| {}).msg().xor_relayed_address().unwrap().unwrap();
    assert_eq!(relayed.ip(), "203.0.113.5".parse::<IpAddr>().unwrap());
    assert!(h.host.open.iter().all(|a| a.ip() == "127.0.0.1".parse::<IpAddr>().unwrap()));
}

#[test]
fn exhausted_port_range_gets_508_and_recovers_when_allocations_end() {
    let mut h = Harness::with(|cfg| cfg.ports = 50000..=50001);
    let mut a = h.client(1);
    let mut b = h.client(2);
    let mut c = h.client(3);
    assert_eq!(a.allocate(&mut h, |_| {}).msg().class(), Class::Success);
    assert_eq!(b.allocate(&mut h, |_| {}).msg().class(), Class::Success);
    assert_eq!(c.allocate(&mut h, |_| {}).msg().error_code().unwrap().unwrap().0, ErrorCode::INSUFFICIENT_CAPACITY);
    a.authed(&mut h, Method::REFRESH, |w| {
        w.add_u32(AttrType::LIFETIME, 0);
    });
    let r = c.authed(&mut h, Method::ALLOCATE, |w| {
        w.add_requested_transport(17);
    });
    assert_eq!(r.msg().class(), Class::Success);
}

#[test]
fn a_port_another_process_holds_is_skipped() {
    let mut h = Harness::with(|cfg| cfg.ports = 50000..=50002);
    h.host.busy.insert(SocketAddr::new(h.relay_ip(), 50000));
    h.host.busy.insert(SocketAddr::new(h.relay_ip(), 50001));
    let mut c = h.client(1);
    let relayed = c.allocate(&mut h, |_| {}).msg().xor_relayed_address().unwrap().unwrap();
    assert_eq!(relayed.port(), 50002);
}

#[test]
fn quota_refusal_gets_486() {
    let mut h = Harness::new();
    h.host.total_quota = 1;
    let mut a = h.client(1);
    let mut b = h.client(2);
    assert_eq!(a.allocate(&mut h, |_| {}).msg().class(), Class::Success);
    assert_eq!(b.allocate(&mut h, |_| {}).msg().error_code().unwrap().unwrap().0, ErrorCode::ALLOCATION_QUOTA_REACHED);
    a.authed(&mut h, Method::REFRESH, |w| {
        w.add_u32(AttrType::LIFETIME, 0);
    });
    let r = b.authed(&mut h, Method::ALLOCATE, |w| {
        w.add_requested_transport(17);
    });
    assert_eq!(r.msg().class(), Class::Success);
}

#[test]
fn alternate_server_answers_allocate_with_300() {
    let mut h = Harness::with(|cfg| cfg.alternate_servers = vec!["192.0.2.50:3478".parse().unwrap()]);
    let c = h.client(1);
    let r = h.request(c.tuple, Method::ALLOCATE, |w| {
        w.add_requested_transport(17);
    });
    let m = r.msg();
    assert_eq!(m.error_code().unwrap().unwrap().0, ErrorCode::TRY_ALTERNATE);
    assert_eq!(m.alternate_server().unwrap(), Some("192.0.2.50:3478".parse().unwrap()));
}

#[test]
fn draining_refuses_new_allocations_with_508_and_keeps_the_old_ones() {
    let mut h = Harness::new();
    let mut old = h.client(1);
    assert_eq!(old.allocate(&mut h, |_| {}).msg().class(), Class::Success);
    h.server.set_draining(true);
    let mut new = h.client(2);
    let r = new.allocate(&mut h, |_| {});
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::INSUFFICIENT_CAPACITY);
    assert_eq!(h.server.stats().drain_rejections, 1);
    assert_eq!(h.server.allocation_count(), 1);
    let r = old.authed(&mut h, Method::REFRESH, |w| {
        w.add_u32(AttrType::LIFETIME, 600);
    });
    assert_eq!(r.msg().class(), Class::Success, "an existing allocation still refreshes");
    // With alternates set, a new client is sent elsewhere before it authenticates.
    h.server.set_alternate_servers(vec!["192.0.2.50:3478".parse().unwrap()]);
    let c = h.client(3);
    let r = h.request(c.tuple, Method::ALLOCATE, |w| {
        w.add_requested_transport(17);
    });
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::TRY_ALTERNATE);
}

// ------------------------------------------------------------------------------------------
// Refresh
// ------------------------------------------------------------------------------------------

#[test]
fn refresh_extends_the_lifetime() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    h.advance(Duration::from_secs(500));
    let r = c.authed(&mut h, Method::REFRESH, |w| {
        w.add_u32(AttrType::LIFETIME, 600);
    });
    assert_eq!(r.msg().lifetime().unwrap(), Some(600));
    h.advance(Duration::from_secs(500));
    assert_eq!(h.server.allocation_count(), 1);
    h.advance(Duration::from_secs(100));
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn refresh_with_lifetime_zero_deletes_the_allocation() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let r = c.authed(&mut h, Method::REFRESH, |w| {
        w.add_u32(AttrType::LIFETIME, 0);
    });
    assert_eq!(r.msg().lifetime().unwrap(), Some(0));
    assert_eq!(h.server.allocation_count(), 0);
    assert!(h.host.open.is_empty());
}

#[test]
fn refresh_without_an_allocation_gets_437() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.fetch_nonce(&mut h);
    let r = c.authed(&mut h, Method::REFRESH, |_| {});
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::ALLOCATION_MISMATCH);
}

#[test]
fn refresh_with_another_username_gets_441() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let mut other = h.client_with_username(1, &format!("{}:someone-else", UNIX_NOW + 3600));
    other.nonce = c.nonce.clone();
    let r = other.authed(&mut h, Method::REFRESH, |_| {});
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::WRONG_CREDENTIALS);
}

// ------------------------------------------------------------------------------------------
// Permissions and data
// ------------------------------------------------------------------------------------------

#[test]
fn create_permission_is_all_or_nothing() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let r = c.authed(&mut h, Method::CREATE_PERMISSION, |w| {
        w.add_xor_address(AttrType::XOR_PEER_ADDRESS, "8.8.8.8:1".parse().unwrap());
        w.add_xor_address(AttrType::XOR_PEER_ADDRESS, "[::ffff:127.0.0.1]:1".parse().unwrap());
    });
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::FORBIDDEN);
    assert!(h.server.sessions(h.now)[0].permissions == 0, "nothing installed");
    let r = c.authed(&mut h, Method::CREATE_PERMISSION, |w| {
        w.add_xor_address(AttrType::XOR_PEER_ADDRESS, "8.8.8.8:1".parse().unwrap());
        w.add_xor_address(AttrType::XOR_PEER_ADDRESS, "1.1.1.1:1".parse().unwrap());
    });
    assert_eq!(r.msg().class(), Class::Success);
    assert_eq!(h.server.sessions(h.now)[0].permissions, 2);
}

#[test]
fn create_permission_without_a_peer_gets_400() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let r = c.authed(&mut h, Method::CREATE_PERMISSION, |_| {});
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::BAD_REQUEST);
}

#[test]
fn the_first_of_duplicate_xor_peer_addresses_wins_for_channel_bind() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let peer: SocketAddr = "8.8.4.4:7000".parse().unwrap();
    c.authed(&mut h, Method::CHANNEL_BIND, |w| {
        w.add_channel_number(0x4000);
        w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        w.add_xor_address(AttrType::XOR_PEER_ADDRESS, "9.9.9.9:1".parse().unwrap());
    });
    assert_eq!(h.channel_data(c.tuple, 0x4000, b"x").map(|f| f.peer), Some(peer));
}

#[test]
fn send_indication_is_relayed_only_with_a_permission_and_without_copying() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let peer: SocketAddr = "8.8.8.8:5000".parse().unwrap();
    let send = build(Method::SEND, Class::Indication, [4; 12], |w| {
        w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        w.add(AttrType::DATA, b"hello");
    });
    assert_eq!(h.send(c.tuple, &send), ClientAction::Done, "no permission yet");
    c.permit(&mut h, peer);
    let ClientAction::Forward(f) = h.send(c.tuple, &send) else { panic!("not forwarded") };
    assert_eq!(f.peer, peer);
    assert_eq!(&send[f.payload.clone()], b"hello");
    assert_eq!(f.relay, h.server.sessions(h.now)[0].relays[0]);
}

#[test]
fn peer_data_comes_back_as_a_data_indication_with_the_peer_address() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let peer: SocketAddr = "8.8.8.8:5000".parse().unwrap();
    let relay = h.server.sessions(h.now)[0].relays[0];
    assert!(h.peer_data(relay, peer, b"dropped").is_none(), "no permission: dropped silently");
    c.permit(&mut h, peer);
    let (to, bytes) = h.peer_data(relay, peer, b"hi there").unwrap();
    assert_eq!(to, c.tuple);
    let m = Message::parse(&bytes).unwrap();
    assert_eq!((m.method(), m.class()), (Method::DATA, Class::Indication));
    assert_eq!(m.xor_peer_address().unwrap(), Some(peer));
    assert_eq!(m.data(), Some(&b"hi there"[..]));
    // A permission is by IP: another port of the same peer is admitted too.
    assert!(h.peer_data(relay, "8.8.8.8:6000".parse().unwrap(), b"x").is_some());
}

#[test]
fn a_data_indication_carries_a_valid_fingerprint_when_the_server_adds_them() {
    // Found by the server_input fuzz target: the in-place writer copied the 2-byte attribute
    // type into 4 bytes and panicked on the first peer datagram when `fingerprint` was on.
    let mut h = Harness::with(|cfg| cfg.fingerprint = true);
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let relay = h.server.sessions(h.now)[0].relays[0];
    let peer: SocketAddr = "8.8.8.8:5000".parse().unwrap();
    c.permit(&mut h, peer);
    for payload in [&b""[..], b"a", b"odd length", &[7u8; 1200]] {
        let (_, bytes) = h.peer_data(relay, peer, payload).unwrap();
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.fingerprint_ok(), Some(true));
        assert_eq!(m.data(), Some(payload));
        assert_eq!(m.xor_peer_address().unwrap(), Some(peer));
    }
}

#[test]
fn a_permission_lasts_exactly_300_seconds() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |w| {
        w.add_u32(AttrType::LIFETIME, 3600);
    });
    let peer: SocketAddr = "8.8.8.8:5000".parse().unwrap();
    c.permit(&mut h, peer);
    let relay = h.server.sessions(h.now)[0].relays[0];
    h.advance(Duration::from_millis(299_999));
    assert!(h.peer_data(relay, peer, b"x").is_some());
    h.advance(Duration::from_millis(1));
    assert!(h.peer_data(relay, peer, b"x").is_none());
}

#[test]
fn loopback_peers_are_refused_unless_allowed() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let r = c.authed(&mut h, Method::CREATE_PERMISSION, |w| {
        w.add_xor_address(AttrType::XOR_PEER_ADDRESS, "127.0.0.1:9".parse().unwrap());
    });
    assert_eq!(r.msg().error_code().unwrap().unwrap().0, ErrorCode::FORBIDDEN);
    let mut h = Harness::with(|cfg| cfg.policy.allow_loopback = true);
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let r = c.authed(&mut h, Method::CREATE_PERMISSION, |w| {
        w.add_xor_address(AttrType::XOR_PEER_ADDRESS, "127.0.0.1:9".parse().unwrap());
    });
    assert_eq!(r.msg().class(), Class::Success);
}

#[test]
fn a_refused_send_is_counted_even_without_a_permission() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    for peer in ["127.0.0.1:80", "[::ffff:169.254.169.254]:80", "10.0.0.1:80"] {
        let m = build(Method::SEND, Class::Indication, [1; 12], |w| {
            w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer.parse().unwrap());
            w.add(AttrType::DATA, b"x");
        });
        assert_eq!(h.send(c.tuple, &m), ClientAction::Done);
    }
    let denied = h.server.stats().peer_denied;
    assert_eq!(denied[DenyReason::Loopback.index()], 1);
    assert_eq!(denied[DenyReason::LinkLocal.index()], 1);
    assert_eq!(denied[DenyReason::Private.index()], 1);
}

#[test]
fn a_reload_that_refuses_a_peer_cuts_its_channel_in_both_directions() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    let relay = c.allocate(&mut h, |_| {}).msg().xor_relayed_address().unwrap().unwrap();
    let peer: SocketAddr = "8.8.8.8:5000".parse().unwrap();
    assert_eq!(c.bind(&mut h, 0x4000, peer), Class::Success);
    assert!(h.channel_data(c.tuple, 0x4000, b"out").is_some());
    assert!(h.peer_data(relay, peer, b"in").is_some());
    let mut policy = h.server.cfg.policy.clone();
    policy.denied.push(crate::policy::AddrRange::single(peer.ip()));
    h.server.set_policy(policy);
    assert!(h.peer_data(relay, peer, b"in").is_none(), "data from a peer the reload refused");
    assert!(h.channel_data(c.tuple, 0x4000, b"out").is_none(), "data to a peer the reload refused");
    assert_eq!(h.server.stats().peer_denied[DenyReason::DeniedByConfig.index()], 2);
}

// ------------------------------------------------------------------------------------------
// Channels
// ------------------------------------------------------------------------------------------

#[test]
fn channel_data_flows_both_ways_after_channel_bind() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let peer: SocketAddr = "8.8.8.8:5000".parse().unwrap();
    assert_eq!(c.bind(&mut h, 0x4001, peer), Class::Success);
    let f = h.channel_data(c.tuple, 0x4001, b"abc").unwrap();
    assert_eq!(f.peer, peer);
    assert_eq!(f.payload, 4..7);
    let relay = h.server.sessions(h.now)[0].relays[0];
    let (to, bytes) = h.peer_data(relay, peer, b"xyz").unwrap();
    assert_eq!(to, c.tuple);
    assert_eq!(bytes, [0x40, 0x01, 0x00, 0x03, b'x', b'y', b'z']);
}

#[test]
fn channel_data_to_a_stream_client_is_padded_to_four_bytes() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.tuple.transport = Transport::Tcp;
    c.allocate(&mut h, |_| {});
    let peer: SocketAddr = "8.8.8.8:5000".parse().unwrap();
    c.bind(&mut h, 0x4000, peer);
    let relay = h.server.sessions(h.now)[0].relays[0];
    let (_, bytes) = h.peer_data(relay, peer, b"xyzw1").unwrap();
    assert_eq!(bytes.len(), 12);
    assert_eq!(&bytes[9..], &[0, 0, 0]);
}

#[test]
fn channel_numbers_outside_0x4000_to_0x4fff_get_400() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    for n in [0x3FFF, 0x5000, 0x7FFF, 0xFFFF] {
        assert_eq!(c.bind(&mut h, n, "8.8.8.8:1".parse().unwrap()), Class::Error, "{n:#x}");
    }
}

#[test]
fn rfc5766_channel_numbers_are_bindable_only_when_enabled() {
    let mut h = Harness::with(|cfg| cfg.rfc5766_channel_numbers = true);
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let peer: SocketAddr = "8.8.8.8:1".parse().unwrap();
    assert_eq!(c.bind(&mut h, 0x79D9, peer), Class::Success);
    assert!(h.channel_data(c.tuple, 0x79D9, b"x").is_some());
    assert_eq!(c.bind(&mut h, 0x8000, "8.8.8.8:2".parse().unwrap()), Class::Error);
}

#[test]
fn a_number_bound_to_another_peer_and_a_peer_bound_to_another_number_get_400() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let (p1, p2): (SocketAddr, SocketAddr) = ("8.8.8.8:1".parse().unwrap(), "8.8.8.8:2".parse().unwrap());
    assert_eq!(c.bind(&mut h, 0x4000, p1), Class::Success);
    assert_eq!(c.bind(&mut h, 0x4000, p2), Class::Error);
    assert_eq!(c.bind(&mut h, 0x4001, p1), Class::Error);
    assert_eq!(c.bind(&mut h, 0x4001, p2), Class::Success);
}

#[test]
fn binding_the_same_pair_again_refreshes_it() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |w| {
        w.add_u32(AttrType::LIFETIME, 3600);
    });
    let peer: SocketAddr = "8.8.8.8:1".parse().unwrap();
    c.bind(&mut h, 0x4000, peer);
    h.advance(Duration::from_secs(500));
    assert_eq!(c.bind(&mut h, 0x4000, peer), Class::Success);
    h.advance(Duration::from_secs(200));
    assert!(h.channel_data(c.tuple, 0x4000, b"x").is_some(), "refreshed channel and permission");
}

#[test]
fn a_channel_lasts_600_seconds_then_cools_down_for_5_minutes() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |w| {
        w.add_u32(AttrType::LIFETIME, 3600);
    });
    let (p1, p2): (SocketAddr, SocketAddr) = ("8.8.8.8:1".parse().unwrap(), "8.8.8.8:2".parse().unwrap());
    c.bind(&mut h, 0x4000, p1);
    // Keep the permission alive independently of the channel.
    h.advance(Duration::from_secs(299));
    c.permit(&mut h, p1);
    h.advance(Duration::from_secs(299));
    c.permit(&mut h, p1);
    h.advance(Duration::from_secs(1));
    assert!(h.channel_data(c.tuple, 0x4000, b"x").is_some(), "alive at 599 s");
    h.advance(Duration::from_secs(1));
    assert!(h.channel_data(c.tuple, 0x4000, b"x").is_none(), "expired at 600 s");
    // During the cool-down the number and the peer cannot be bound to anything else...
    assert_eq!(c.bind(&mut h, 0x4000, p2), Class::Error);
    assert_eq!(c.bind(&mut h, 0x4001, p1), Class::Error);
    // ...and once it is over, they can.
    h.advance(Duration::from_secs(300));
    assert_eq!(c.bind(&mut h, 0x4000, p2), Class::Success);
    assert_eq!(c.bind(&mut h, 0x4001, p1), Class::Success);
}

#[test]
fn rebinding_the_same_pair_during_the_cool_down_revives_it() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |w| {
        w.add_u32(AttrType::LIFETIME, 3600);
    });
    let p1: SocketAddr = "8.8.8.8:1".parse().unwrap();
    c.bind(&mut h, 0x4000, p1);
    h.advance(Duration::from_secs(700));
    assert!(h.channel_data(c.tuple, 0x4000, b"x").is_none());
    assert_eq!(c.bind(&mut h, 0x4000, p1), Class::Success);
    assert!(h.channel_data(c.tuple, 0x4000, b"x").is_some());
}

#[test]
fn channel_data_on_an_unbound_channel_is_dropped() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    assert!(h.channel_data(c.tuple, 0x4000, b"x").is_none());
    assert_eq!(h.server.stats().dropped_no_route, 1);
}

#[test]
fn freeing_an_allocation_frees_its_channels() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.allocate(&mut h, |_| {});
    let peer: SocketAddr = "8.8.8.8:1".parse().unwrap();
    c.bind(&mut h, 0x4000, peer);
    let relay = h.server.sessions(h.now)[0].relays[0];
    c.authed(&mut h, Method::REFRESH, |w| {
        w.add_u32(AttrType::LIFETIME, 0);
    });
    assert!(h.channel_data(c.tuple, 0x4000, b"x").is_none());
    assert!(h.peer_data(relay, peer, b"x").is_none());
    assert!(h.server.channel_by_relay_and_peer.is_empty());
    assert!(h.server.channel_by_tuple_and_number.is_empty());
}

#[test]
fn a_tcp_connection_closing_deletes_its_allocation() {
    let mut h = Harness::new();
    let mut c = h.client(1);
    c.tuple.transport = Transport::Tcp;
    c.allocate(&mut h, |_| {});
    h.server.handle_client_closed(c.tuple, &mut h.host);
    assert_eq!(h.server.allocation_count(), 0);
    assert!(h.host.open.is_empty());
}

// ------------------------------------------------------------------------------------------
// Random request sequences
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Allocate(u8, bool),
    Refresh(u8, u32),
    Permit(u8, u8),
    Bind(u8, u16, u8),
    Send(u8, u8),
    ChannelData(u8, u16),
    PeerData(u8, u8),
    Advance(u16),
    Garbage(Vec<u8>),
    Close(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4, any::<bool>()).prop_map(|(c, e)| Op::Allocate(c, e)),
        (0u8..4, prop_oneof![Just(0u32), Just(60), Just(600), Just(5000)]).prop_map(|(c, l)| Op::Refresh(c, l)),
        (0u8..4, 0u8..4).prop_map(|(c, p)| Op::Permit(c, p)),
        (0u8..4, 0x3FFEu16..0x4004, 0u8..4).prop_map(|(c, n, p)| Op::Bind(c, n, p)),
        (0u8..4, 0u8..4).prop_map(|(c, p)| Op::Send(c, p)),
        (0u8..4, 0x4000u16..0x4004).prop_map(|(c, n)| Op::ChannelData(c, n)),
        (0u8..4, 0u8..4).prop_map(|(c, p)| Op::PeerData(c, p)),
        (0u16..700).prop_map(Op::Advance),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Op::Garbage),
        (0u8..4).prop_map(Op::Close),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_request_sequences_keep_every_invariant(ops in prop::collection::vec(op(), 1..60), fingerprint in any::<bool>()) {
        let mut h = Harness::with(|cfg| {
            cfg.ports = 50000..=50007;
            cfg.fingerprint = fingerprint;
        });
        let mut clients: Vec<TestClient> = (0..4u16).map(|i| {
            let mut c = h.client(i + 1);
            if i == 3 { c.tuple.transport = Transport::Tcp; }
            c
        }).collect();
        let peers: Vec<SocketAddr> = (0..4u8).map(|i| SocketAddr::new([8, 8, 8, i + 1].into(), 4000 + u16::from(i))).collect();
        for op in ops {
            match op {
                Op::Allocate(c, even) => { clients[c as usize].allocate(&mut h, |w| { if even { w.add_even_port(true); } }); }
                Op::Refresh(c, l) => { clients[c as usize].authed(&mut h, Method::REFRESH, |w| { w.add_u32(AttrType::LIFETIME, l); }); }
                Op::Permit(c, p) => clients[c as usize].permit(&mut h, peers[p as usize]),
                Op::Bind(c, n, p) => { clients[c as usize].bind(&mut h, n, peers[p as usize]); }
                Op::Send(c, p) => {
                    let m = build(Method::SEND, Class::Indication, [1; 12], |w| {
                        w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peers[p as usize]);
                        w.add(AttrType::DATA, b"d");
                    });
                    let t = clients[c as usize].tuple;
                    h.send(t, &m);
                }
                Op::ChannelData(c, n) => { let t = clients[c as usize].tuple; h.channel_data(t, n, b"cd"); }
                Op::PeerData(c, p) => {
                    let t = clients[c as usize].tuple;
                    let relay = h.server.sessions(h.now).into_iter().find(|s| s.tuple == t).map(|s| s.relays[0]);
                    if let Some(relay) = relay { h.peer_data(relay, peers[p as usize], b"pd"); }
                }
                Op::Advance(s) => h.advance(Duration::from_secs(u64::from(s))),
                Op::Garbage(g) => { let t = clients[0].tuple; h.send(t, &g); }
                Op::Close(c) => { let t = clients[c as usize].tuple; h.server.handle_client_closed(t, &mut h.host); }
            }
            h.check_invariants();
        }
        // Everything ends: after the longest lifetime every port is free again.
        h.advance(Duration::from_secs(3700));
        h.check_invariants();
        prop_assert_eq!(h.server.allocation_count(), 0);
        prop_assert_eq!(h.server.free_ports(), 8);
        prop_assert!(h.host.open.is_empty());
    }
}

// ------------------------------------------------------------------------------------------
// Harness (below the tests that use it)
// ------------------------------------------------------------------------------------------

struct Harness {
    server: Server,
    host: MemoryHost,
    now: Instant,
    unix_now: u64,
    transmits: Vec<Transmit>,
}

/// A response, owned.
struct Resp(Vec<u8>);

impl Resp {
    fn msg(&self) -> Message<'_> {
        Message::parse(&self.0).expect("server sent a valid STUN message")
    }
}

impl Harness {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(f: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut cfg = ServerConfig::new(REALM, 50000..=50999);
        cfg.auth.rest_secrets = vec![SECRET.as_bytes().to_vec()];
        cfg.relay_ips =
            vec![RelayIp { local: "198.51.100.1".parse().unwrap(), public: "198.51.100.1".parse().unwrap() }];
        cfg.policy.own_ips = vec!["198.51.100.1".parse().unwrap()];
        cfg.policy.relay_ports = Some(50000..=50999);
        // Scenario tests send many challenges from one address; the budget has its own test.
        cfg.unauthenticated_rps = 0;
        f(&mut cfg);
        let now = Instant::now();
        Harness {
            server: Server::new(cfg, [42; 32], now),
            host: MemoryHost::default(),
            now,
            unix_now: UNIX_NOW,
            transmits: Vec::new(),
        }
    }

    fn relay_ip(&self) -> IpAddr {
        "198.51.100.1".parse().unwrap()
    }

    fn client(&self, n: u16) -> TestClient {
        self.client_with_username(n, &format!("{}:user{n}", UNIX_NOW + 86_400))
    }

    fn client_with_username(&self, n: u16, username: &str) -> TestClient {
        let password = turn_rest::password(SECRET.as_bytes(), username);
        self.static_client(n, username, &password)
    }

    fn static_client(&self, n: u16, username: &str, password: &str) -> TestClient {
        TestClient {
            tuple: FiveTuple::udp(
                SocketAddr::new([192, 0, 2, 10].into(), 40000 + n),
                "198.51.100.1:3478".parse().unwrap(),
            ),
            username: username.to_owned(),
            key: Key::long_term(PasswordAlgorithm::Md5, username, REALM, password).unwrap(),
            nonce: None,
            sha256: false,
            userhash: false,
            next_tid: u32::from(n) << 16,
        }
    }

    fn send(&mut self, tuple: FiveTuple, packet: &[u8]) -> ClientAction {
        let a = self.server.handle_client(self.now, self.unix_now, tuple, packet, &mut self.host);
        self.drain();
        a
    }

    fn drain(&mut self) {
        while let Some(t) = self.server.poll_transmit() {
            self.transmits.push(t);
        }
        while self.server.poll_event().is_some() {}
    }

    fn send_expect_one(&mut self, tuple: FiveTuple, packet: &[u8]) -> Resp {
        self.transmits.clear();
        self.send(tuple, packet);
        assert_eq!(self.transmits.len(), 1, "expected exactly one response");
        let t = self.transmits.remove(0);
        assert_eq!(t.to, tuple);
        Resp(t.data)
    }

    fn request(&mut self, tuple: FiveTuple, method: Method, f: impl FnOnce(&mut MessageWriter<'_>)) -> Resp {
        let req = build(method, Class::Request, [0xAB; 12], f);
        self.send_expect_one(tuple, &req)
    }

    fn channel_data(&mut self, tuple: FiveTuple, number: u16, payload: &[u8]) -> Option<Forward> {
        let mut p = number.to_be_bytes().to_vec();
        p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        p.extend_from_slice(payload);
        match self.send(tuple, &p) {
            ClientAction::Forward(f) => Some(f),
            ClientAction::Done => None,
        }
    }

    fn peer_data(&mut self, relay: SocketAddr, peer: SocketAddr, payload: &[u8]) -> Option<(FiveTuple, Vec<u8>)> {
        let mut buf = vec![0xEE; PEER_HEADROOM + payload.len() + PEER_TAILROOM];
        buf[PEER_HEADROOM..PEER_HEADROOM + payload.len()].copy_from_slice(payload);
        let range = PEER_HEADROOM..PEER_HEADROOM + payload.len();
        let out = self.server.handle_peer(self.now, relay, peer, &mut buf, range)?;
        Some((out.to, buf[out.range].to_vec()))
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.unix_now += d.as_secs();
        self.server.handle_timeout(self.now, &mut self.host);
        self.drain();
    }

    /// The redundant indices agree with the allocations, and bound sockets with relays.
    fn check_invariants(&self) {
        let s = &self.server;
        let relays: BTreeSet<SocketAddr> = s.allocs.values().flat_map(|a| a.relays.iter().copied()).collect();
        assert_eq!(relays, self.host.open, "bound sockets are exactly the relays");
        assert_eq!(s.alloc_by_tuple.len(), s.allocs.len());
        assert_eq!(s.alloc_by_relay.len(), relays.len());
        for a in s.allocs.values() {
            assert_eq!(s.alloc_by_tuple.get(&a.tuple), Some(&a.id));
            for (&n, &slot) in &a.channels {
                let ch = s.channels.get(slot).expect("allocation names a live channel slot");
                assert_eq!((ch.number, ch.alloc), (n, a.id));
                assert_eq!(a.channel_by_peer.get(&ch.peer), Some(&n));
                let indexed = s.channel_by_tuple_and_number.get(&(a.tuple, n)) == Some(&slot);
                assert_eq!(indexed, ch.cooling_until.is_none(), "cooling channels are out of the indices");
            }
        }
        for (&(t, n), &slot) in &s.channel_by_tuple_and_number {
            let ch = s.channels.get(slot).expect("index names a live slot");
            assert_eq!((ch.tuple, ch.number), (t, n));
        }
        for (&(r, p), &slot) in &s.channel_by_relay_and_peer {
            let ch = s.channels.get(slot).expect("index names a live slot");
            assert_eq!((ch.relay, ch.peer), (r, p));
        }
        let used = s.ports.capacity_for_tests() - s.free_ports();
        let reserved = s.reservations.len();
        assert_eq!(used, relays.len() + reserved, "every taken port is a relay or a reservation");
    }
}

struct TestClient {
    tuple: FiveTuple,
    username: String,
    key: Key,
    nonce: Option<String>,
    sha256: bool,
    userhash: bool,
    next_tid: u32,
}

impl TestClient {
    fn tid(&mut self) -> [u8; 12] {
        self.next_tid += 1;
        let mut t = [0u8; 12];
        t[8..].copy_from_slice(&self.next_tid.to_be_bytes());
        t
    }

    fn fetch_nonce(&mut self, h: &mut Harness) {
        let req = build(Method::ALLOCATE, Class::Request, self.tid(), |w| {
            w.add_requested_transport(17);
        });
        h.transmits.clear();
        h.send(self.tuple, &req);
        let r = Resp(h.transmits.remove(0).data);
        self.nonce = Some(r.msg().nonce().unwrap().expect("401 carries a NONCE").to_owned());
    }

    fn authed_bytes(&mut self, method: Method, tid: [u8; 12], f: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
        let nonce = self.nonce.clone().unwrap_or_default();
        let (username, key, sha256, userhash) = (self.username.clone(), self.key, self.sha256, self.userhash);
        build(method, Class::Request, tid, |w| {
            f(w);
            if userhash {
                w.add(AttrType::USERHASH, &crate::stun::integrity::userhash(&username, REALM));
            } else {
                w.add_text(AttrType::USERNAME, &username);
            }
            w.add_text(AttrType::REALM, REALM);
            w.add_text(AttrType::NONCE, &nonce);
            if sha256 {
                w.add_password_algorithms(&[PasswordAlgorithm::Md5, PasswordAlgorithm::Sha256]);
                w.add_password_algorithm(PasswordAlgorithm::Sha256);
                w.add_message_integrity_sha256(key.as_bytes());
            } else {
                w.add_message_integrity(key.as_bytes());
            }
        })
    }

    /// An authenticated request; on 438 it takes the fresh nonce and retries once, as clients do.
    fn authed(&mut self, h: &mut Harness, method: Method, f: impl Fn(&mut MessageWriter<'_>)) -> Resp {
        let tid = self.tid();
        let req = self.authed_bytes(method, tid, &f);
        h.transmits.clear();
        h.send(self.tuple, &req);
        let r = Resp(h.transmits.pop().expect("a response").data);
        if r.msg().error_code().ok().flatten().map(|e| e.0) != Some(ErrorCode::STALE_NONCE) || method == Method::BINDING
        {
            return r;
        }
        self.nonce = r.msg().nonce().unwrap().map(str::to_owned);
        let tid = self.tid();
        let req = self.authed_bytes(method, tid, &f);
        h.transmits.clear();
        h.send(self.tuple, &req);
        Resp(h.transmits.pop().expect("a response").data)
    }

    /// The 401 dance, then an authenticated Allocate for UDP relaying.
    fn allocate(&mut self, h: &mut Harness, f: impl Fn(&mut MessageWriter<'_>)) -> Resp {
        if self.nonce.is_none() {
            self.fetch_nonce(h);
        }
        self.authed(h, Method::ALLOCATE, |w| {
            w.add_requested_transport(17);
            f(w);
        })
    }

    fn permit(&mut self, h: &mut Harness, peer: SocketAddr) {
        self.authed(h, Method::CREATE_PERMISSION, |w| {
            w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        });
    }

    fn bind(&mut self, h: &mut Harness, number: u16, peer: SocketAddr) -> Class {
        let r = self.authed(h, Method::CHANNEL_BIND, |w| {
            w.add_channel_number(number);
            w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        });
        r.msg().class()
    }
}

fn build(method: Method, class: Class, tid: [u8; 12], f: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(method, class), TransactionId(tid));
    f(&mut w);
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}
