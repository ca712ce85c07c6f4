//! The `server_input` fuzz target: a [`Server`] with an in-memory [`RelayHost`], driven by a
//! byte string decoded into client packets, peer packets, clock jumps, connection closes, kills
//! and policy reloads.
//!
//! To get past authentication the harness plays a well-behaved client where asked: an "authed"
//! packet is the fuzzer's STUN message with USERNAME, REALM, the last NONCE the server handed
//! this client and a correct MESSAGE-INTEGRITY put on, so the fuzzer explores everything behind
//! the 401 with attributes of its own choosing. Raw packets go in untouched.
//!
//! Checked after every step:
//! - every response parses, answers the request's transaction to the sender, has zero padding,
//!   verifies with the client's key when it carries MESSAGE-INTEGRITY, and without it is no
//!   larger than the 401 bound (amplification);
//! - every datagram the server relays to a peer goes to a peer the policy in force allows, from
//!   the sender's own relay address, and is exactly the payload the client sent;
//! - every peer datagram delivered to a client comes from a peer the policy allows, and frames
//!   exactly the payload the peer sent;
//! - at the end, once every lifetime has passed: no allocation, no open relay socket, no
//!   reservation, every port free and every quota count back to zero.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::channel_data::{self, ChannelData};
use crate::policy::{AddrRange, PeerPolicyConfig};
use crate::server::{
    ClientAction, PEER_HEADROOM, PEER_TAILROOM, QuotaError, RelayHost, RelayIp, RelayOpenError, RelayOptions, Server,
    ServerConfig, Stats, Transmit,
};
use crate::stun::attr::{FAMILY_IPV4, FAMILY_IPV6, PasswordAlgorithm};
use crate::stun::{AttrType, Class, HEADER_LEN, Key, Message, MessageType, MessageWriter, Method, TransactionId};
use crate::turn_rest;
use crate::types::{FiveTuple, Transport};

const REALM: &str = "tern.fuzz";
const SECRET: &[u8] = b"fuzz-secret";
const UNIX_START: u64 = 1_800_000_000;
const PORTS: std::ops::RangeInclusive<u16> = 50000..=50007;
const RELAY_V4: [u8; 4] = [198, 51, 100, 1];
const MAX_OPS: usize = 200;

/// An in-memory [`RelayHost`]: open relay sockets, reservations and quota counts, checking that
/// the core never closes what is not open nor gives back quota it did not take. The fuzz target
/// and the core's scenario tests share it.
#[derive(Default)]
pub struct MemoryHost {
    /// Relay addresses the core has open.
    pub open: BTreeSet<SocketAddr>,
    /// Addresses "another process" holds: opening them fails with `InUse`.
    pub busy: BTreeSet<SocketAddr>,
    /// Makes the next open fail with `Other` (descriptors exhausted).
    pub fail_next: bool,
    /// Published EVEN-PORT reservations.
    pub reservations: HashMap<u64, (SocketAddr, Instant)>,
    /// `user-quota` (0 = unlimited).
    pub user_quota: u32,
    /// `total-quota` (0 = unlimited).
    pub total_quota: u32,
    users: BTreeMap<String, u32>,
    total: u32,
}

impl RelayHost for MemoryHost {
    fn open_relay(&mut self, addr: SocketAddr, _: RelayOptions) -> Result<(), RelayOpenError> {
        if std::mem::take(&mut self.fail_next) {
            return Err(RelayOpenError::Other);
        }
        if self.busy.contains(&addr) || !self.open.insert(addr) {
            return Err(RelayOpenError::InUse);
        }
        Ok(())
    }

    fn close_relay(&mut self, addr: SocketAddr) {
        assert!(self.open.remove(&addr), "core closed {addr}, which is not open");
    }

    fn reserve(
        &mut self,
        token: u64,
        addr: SocketAddr,
        expires: Instant,
        _: RelayOptions,
    ) -> Result<(), RelayOpenError> {
        if std::mem::take(&mut self.fail_next) {
            return Err(RelayOpenError::Other);
        }
        let held = self.reservations.values().any(|(a, _)| *a == addr);
        if self.busy.contains(&addr) || self.open.contains(&addr) || held {
            return Err(RelayOpenError::InUse);
        }
        self.reservations.insert(token, (addr, expires));
        Ok(())
    }

    fn claim_reservation(&mut self, token: u64, now: Instant, _: RelayOptions) -> Option<SocketAddr> {
        let (addr, expires) = self.reservations.remove(&token)?;
        if expires <= now {
            return None;
        }
        // The port was held since the reservation: the claim cannot lose it.
        assert!(self.open.insert(addr), "reserved {addr} was open already");
        Some(addr)
    }

    fn release_reservation(&mut self, token: u64) {
        self.reservations.remove(&token);
    }

    fn acquire_quota(&mut self, user: &str) -> Result<(), QuotaError> {
        if self.total_quota > 0 && self.total >= self.total_quota {
            return Err(QuotaError::Total);
        }
        let n = self.users.entry(user.to_owned()).or_insert(0);
        if self.user_quota > 0 && *n >= self.user_quota {
            return Err(QuotaError::User);
        }
        *n += 1;
        self.total += 1;
        Ok(())
    }

    fn release_quota(&mut self, user: &str) {
        let n = self.users.get_mut(user).expect("quota released for a user that holds none");
        assert!(*n > 0 && self.total > 0, "quota released more often than acquired");
        *n -= 1;
        if *n == 0 {
            self.users.remove(user);
        }
        self.total -= 1;
    }
}

/// Bytes the fuzzer gave, read front to back; reads past the end give zeros.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b
    }

    /// A length-prefixed byte string (up to 2047 bytes).
    fn blob(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16() & 0x07FF);
        self.bytes(n)
    }
}

struct Client {
    tuple: FiveTuple,
    username: String,
    key: Key,
    key_sha256: Key,
    nonce: String,
}

struct Harness {
    server: Server,
    host: MemoryHost,
    now: Instant,
    unix_now: u64,
    clients: Vec<Client>,
    no_auth: bool,
    fingerprint: bool,
    next_tid: u32,
}

fn peers() -> [SocketAddr; 12] {
    [
        "8.8.8.8:3478",
        "[2606:4700::1111]:443",
        "10.0.0.1:80",
        "127.0.0.1:80",
        "[::ffff:127.0.0.1]:80",
        "198.51.100.1:50001",
        "198.51.100.1:3478",
        "[64:ff9b::a9fe:a9fe]:80",
        "[2002:a00:1::1]:80",
        "169.254.169.254:80",
        "[2001:db8::1]:50002",
        "[fd00:ec2::254]:80",
    ]
    .map(|s| s.parse().expect("literal address"))
}

impl Harness {
    fn new(flags: u8, quotas: u8) -> Self {
        let no_auth = flags & 0x01 != 0;
        let fingerprint = flags & 0x02 != 0;
        let mut cfg = ServerConfig::new(REALM, PORTS);
        let v4: IpAddr = RELAY_V4.into();
        let v6: IpAddr = "2001:db8::1".parse().expect("literal address");
        cfg.auth.no_auth = no_auth;
        cfg.auth.rest_secrets = vec![SECRET.to_vec()];
        cfg.fingerprint = fingerprint;
        cfg.rfc5766_channel_numbers = flags & 0x04 != 0;
        cfg.policy = policy_variant(flags >> 3 & 0x03);
        cfg.max_bps = if flags & 0x20 != 0 { 3000 } else { 0 };
        cfg.bps_capacity = if flags & 0x40 != 0 { 5000 } else { 0 };
        cfg.unauthenticated_rps = if flags & 0x80 != 0 { 2 } else { 0 };
        cfg.relay_ips = vec![RelayIp { local: v4, public: v4 }, RelayIp { local: v6, public: v6 }];
        // The virtual clock starts anywhere; only differences matter to the core.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut host = MemoryHost {
            user_quota: u32::from(quotas & 0x03),
            total_quota: u32::from(quotas >> 2 & 0x07),
            ..MemoryHost::default()
        };
        // A port some other process holds, and a 508 path when the range is small.
        host.busy.insert(SocketAddr::new(v4, 50003));
        let server = Server::new(cfg, [7; 32], now);
        let addrs: [(&str, &str, Transport, &str); 4] = [
            ("192.0.2.10:40001", "198.51.100.1:3478", Transport::Udp, "alice"),
            ("[2001:db8::10]:40002", "[2001:db8::1]:3478", Transport::Udp, "bob"),
            ("192.0.2.11:40003", "198.51.100.1:3478", Transport::Tcp, "carol"),
            ("192.0.2.12:40004", "198.51.100.1:5349", Transport::Tls, "alice"),
        ];
        let clients = addrs
            .iter()
            .map(|(c, s, transport, user)| {
                let username = format!("{}:{user}", UNIX_START + 86_400);
                let password = turn_rest::password(SECRET, &username);
                Client {
                    tuple: FiveTuple {
                        client: c.parse().expect("literal address"),
                        server: s.parse().expect("literal address"),
                        transport: *transport,
                    },
                    key: Key::long_term(PasswordAlgorithm::Md5, &username, REALM, &password).expect("ASCII password"),
                    key_sha256: Key::long_term(PasswordAlgorithm::Sha256, &username, REALM, &password)
                        .expect("ASCII password"),
                    username,
                    nonce: String::new(),
                }
            })
            .collect();
        Harness { server, host, now, unix_now: UNIX_START, clients, no_auth, fingerprint, next_tid: 0 }
    }

    fn tid(&mut self) -> TransactionId {
        self.next_tid += 1;
        let mut t = [0x5A; 12];
        t[8..].copy_from_slice(&self.next_tid.to_be_bytes());
        TransactionId(t)
    }

    /// Feeds one client packet and checks everything that comes out.
    fn client_packet(&mut self, c: usize, packet: &[u8]) {
        let tuple = self.clients[c].tuple;
        let action = self.server.handle_client(self.now, self.unix_now, tuple, packet, &mut self.host);
        if let ClientAction::Forward(f) = action {
            let payload = packet.get(f.payload.clone()).expect("forwarded payload lies inside the packet");
            assert!(self.server.policy().check(f.peer).is_ok(), "relayed to {} which the policy refuses", f.peer);
            let own = self.server.sessions(self.now).into_iter().find(|s| s.tuple == tuple);
            assert!(own.is_some_and(|s| s.relays.contains(&f.relay)), "relayed from a relay that is not the sender's");
            match ChannelData::parse(packet) {
                Ok(cd) => assert_eq!(cd.payload(), payload),
                Err(_) => {
                    let m = Message::parse(packet).expect("a Send indication was forwarded");
                    assert_eq!(m.data(), Some(payload));
                    assert_eq!(m.xor_peer_address().ok().flatten(), Some(f.peer));
                }
            }
        }
        let request = Message::parse_any(packet).ok();
        while let Some(t) = self.server.poll_transmit() {
            self.check_response(c, &t, request.as_ref());
        }
        self.drain_events();
    }

    fn check_response(&mut self, c: usize, t: &Transmit, request: Option<&Message<'_>>) {
        assert_eq!(t.to, self.clients[c].tuple, "a response went to someone else");
        let req = request.expect("only STUN requests are answered");
        let m = Message::parse_any(&t.data).expect("the server's answer parses");
        assert_eq!(m.cookie_and_transaction_id(), req.cookie_and_transaction_id(), "answer to another transaction");
        assert_eq!(m.method(), req.method());
        assert!(matches!(m.class(), Class::Success | Class::Error));
        assert_padding_is_zero(&t.data);
        if m.has_integrity() {
            let ok = m.verify_integrity(self.clients[c].key.as_bytes()).is_ok();
            assert!(ok, "MESSAGE-INTEGRITY of the answer does not verify");
        } else if m.has_integrity_sha256() {
            let ok = m.verify_integrity_sha256(self.clients[c].key_sha256.as_bytes()).is_ok();
            assert!(ok, "MESSAGE-INTEGRITY-SHA256 of the answer does not verify");
        } else if !self.no_auth {
            // Unauthenticated answers are small: the largest is a 401/438 with REALM, NONCE
            // (32 characters) and PASSWORD-ALGORITHMS, plus FINGERPRINT when asked for.
            let realm = (REALM.len() + 3) & !3;
            let bound = HEADER_LEN + 8 + 4 + realm + 4 + 32 + 12 + 8;
            assert!(t.data.len() <= bound, "unauthenticated answer of {} bytes", t.data.len());
        }
        if let Ok(Some(nonce)) = m.nonce() {
            nonce.clone_into(&mut self.clients[c].nonce);
        }
    }

    fn drain_events(&mut self) {
        while self.server.poll_event().is_some() {}
    }

    /// The fuzzer's STUN message with this client's credentials put on.
    fn authed(&mut self, c: usize, raw: &[u8], sha256: bool, fingerprint: bool) -> Vec<u8> {
        let Ok(m) = Message::parse(raw) else { return raw.to_vec() };
        let client = &self.clients[c];
        let mut buf = vec![0u8; raw.len() + 256];
        let mut w = MessageWriter::new(&mut buf, m.message_type(), m.transaction_id());
        for (t, v) in m.attributes() {
            let credential = [
                AttrType::USERNAME,
                AttrType::USERHASH,
                AttrType::REALM,
                AttrType::NONCE,
                AttrType::PASSWORD_ALGORITHM,
                AttrType::PASSWORD_ALGORITHMS,
                AttrType::MESSAGE_INTEGRITY,
                AttrType::MESSAGE_INTEGRITY_SHA256,
                AttrType::FINGERPRINT,
            ];
            if !credential.contains(&t) {
                w.add(t, v);
            }
        }
        w.add_text(AttrType::USERNAME, &client.username);
        w.add_text(AttrType::REALM, REALM);
        w.add_text(AttrType::NONCE, &client.nonce);
        if sha256 {
            w.add_password_algorithms(&[PasswordAlgorithm::Md5, PasswordAlgorithm::Sha256]);
            w.add_password_algorithm(PasswordAlgorithm::Sha256);
            w.add_message_integrity_sha256(client.key_sha256.as_bytes());
        } else {
            w.add_message_integrity(client.key.as_bytes());
        }
        if fingerprint {
            w.add_fingerprint();
        }
        match w.finish() {
            Ok(n) => {
                buf.truncate(n);
                buf
            }
            Err(_) => raw.to_vec(),
        }
    }

    /// A well-formed TURN request or indication from a compact description.
    fn structured(&mut self, input: &mut Input<'_>) -> Vec<u8> {
        let kind = input.byte();
        let arg = input.byte();
        let peers = peers();
        let peer = |b: u8| peers[usize::from(b) % peers.len()];
        let (method, class) = match kind % 7 {
            0 => (Method::ALLOCATE, Class::Request),
            1 => (Method::REFRESH, Class::Request),
            2 => (Method::CREATE_PERMISSION, Class::Request),
            3 => (Method::CHANNEL_BIND, Class::Request),
            4 => (Method::SEND, Class::Indication),
            5 => (Method::BINDING, Class::Request),
            _ => (Method::CREATE_PERMISSION, Class::Request),
        };
        let tid = self.tid();
        let mut buf = vec![0u8; 1024];
        let mut w = MessageWriter::new(&mut buf, MessageType::new(method, class), tid);
        match kind % 7 {
            0 => {
                w.add_requested_transport(if arg & 0x80 != 0 { 6 } else { 17 });
                match arg & 0x03 {
                    1 => {
                        w.add_family(AttrType::REQUESTED_ADDRESS_FAMILY, FAMILY_IPV6);
                    }
                    2 => {
                        w.add_family(AttrType::ADDITIONAL_ADDRESS_FAMILY, FAMILY_IPV6);
                    }
                    3 => {
                        w.add_family(AttrType::REQUESTED_ADDRESS_FAMILY, FAMILY_IPV4);
                    }
                    _ => {}
                }
                if arg & 0x04 != 0 {
                    w.add_even_port(arg & 0x08 != 0);
                }
                if arg & 0x10 != 0 {
                    w.add_u32(AttrType::LIFETIME, u32::from(input.u16()));
                }
                if arg & 0x20 != 0 {
                    w.add_dont_fragment();
                }
                if arg & 0x40 != 0 {
                    w.add_u64(AttrType::RESERVATION_TOKEN, u64::from(input.u16()));
                }
            }
            1 => {
                if arg & 0x01 != 0 {
                    w.add_u32(AttrType::LIFETIME, [0, 60, 600, 5000][usize::from(arg >> 1 & 0x03)]);
                }
            }
            2 => {
                w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer(arg));
            }
            3 => {
                w.add_channel_number(channel_number(input.byte()));
                w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer(arg));
            }
            4 => {
                w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer(arg));
                let n = usize::from(input.byte());
                w.add(AttrType::DATA, &vec![0xD5; n]);
            }
            5 => {}
            _ => {
                // Several peers: all or nothing.
                for i in 0..=(arg & 0x03) {
                    w.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer(arg.wrapping_add(i * 5)));
                }
            }
        }
        let n = w.finish().expect("structured request fits");
        buf.truncate(n);
        buf
    }

    /// A datagram from a peer to one of the relay addresses in use (or any address).
    fn peer_packet(&mut self, input: &mut Input<'_>) {
        let sel = input.byte();
        let peer = peers()[usize::from(input.byte()) % 12];
        let len = usize::from(input.byte());
        let relays: Vec<SocketAddr> = self.server.sessions(self.now).iter().flat_map(|s| s.relays.clone()).collect();
        let relay = if relays.is_empty() || sel == 0xFF {
            SocketAddr::new(RELAY_V4.into(), 50000 + u16::from(sel & 0x07))
        } else {
            relays[usize::from(sel) % relays.len()]
        };
        let mut buf = vec![0xEE; PEER_HEADROOM + len + PEER_TAILROOM];
        for (i, b) in buf[PEER_HEADROOM..PEER_HEADROOM + len].iter_mut().enumerate() {
            *b = i as u8;
        }
        let payload = PEER_HEADROOM..PEER_HEADROOM + len;
        let Some(out) = self.server.handle_peer(self.now, relay, peer, &mut buf, payload.clone()) else { return };
        assert!(out.range.end <= buf.len() && out.range.start <= out.range.end);
        assert!(self.server.policy().check_ip(peer.ip()).is_ok(), "data from {peer}, which the policy refuses");
        let owner = self.server.sessions(self.now).into_iter().find(|s| s.relays.contains(&relay));
        assert!(owner.is_some_and(|s| s.tuple == out.to), "peer data went to a client that does not own the relay");
        let msg = &buf[out.range.clone()];
        let want: Vec<u8> = (0..len).map(|i| i as u8).collect();
        match ChannelData::parse(msg) {
            Ok(cd) => {
                assert_eq!(cd.payload(), &want[..]);
                if out.to.transport.is_stream() {
                    assert_eq!(msg.len(), 4 + len + channel_data::stream_padding(len));
                    assert!(msg[4 + len..].iter().all(|&b| b == 0), "stream padding is not zero");
                }
            }
            Err(_) => {
                let m = Message::parse(msg).expect("a Data indication");
                assert_eq!((m.method(), m.class()), (Method::DATA, Class::Indication));
                assert_eq!(m.data(), Some(&want[..]));
                assert_eq!(m.xor_peer_address().ok().flatten(), Some(peer));
                assert_eq!(m.fingerprint_ok(), if self.fingerprint { Some(true) } else { None });
                assert_padding_is_zero(msg);
            }
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.unix_now += d.as_secs();
        self.server.handle_timeout(self.now, &mut self.host);
        assert!(self.server.poll_transmit().is_none(), "timers never answer anyone");
        self.drain_events();
    }

    fn step(&mut self, input: &mut Input<'_>) {
        let op = input.byte();
        let c = usize::from(op >> 4) % self.clients.len();
        match op & 0x0F {
            0..=2 => {
                let raw = input.blob();
                self.client_packet(c, raw);
            }
            3..=5 => {
                let flags = input.byte();
                let raw = input.blob();
                let p = self.authed(c, raw, flags & 1 != 0, flags & 2 != 0);
                self.client_packet(c, &p);
            }
            6..=8 => {
                let p = self.structured(input);
                let authed = input.byte();
                let p = if authed & 0x03 == 0 { p } else { self.authed(c, &p, authed & 0x04 != 0, authed & 0x08 != 0) };
                self.client_packet(c, &p);
            }
            9 => {
                // ChannelData on one of the numbers the structured ChannelBind uses.
                let number = channel_number(input.byte());
                let len = usize::from(input.byte());
                let mut p = number.to_be_bytes().to_vec();
                p.extend_from_slice(&(len as u16).to_be_bytes());
                p.extend((0..len).map(|i| i as u8));
                self.client_packet(c, &p);
            }
            10 | 11 => self.peer_packet(input),
            12 => {
                let b = input.byte();
                let d = if b & 0x80 != 0 {
                    Duration::from_millis(u64::from(b & 0x7F) * 10)
                } else {
                    Duration::from_secs(u64::from(b) * 7)
                };
                self.advance(d);
            }
            13 => {
                let tuple = self.clients[c].tuple;
                self.server.handle_client_closed(tuple, &mut self.host);
                self.drain_events();
            }
            14 => {
                let b = input.byte();
                match b & 0x03 {
                    0 => {
                        let sessions = self.server.sessions(self.now);
                        if let Some(s) = sessions.get(usize::from(b >> 2) % sessions.len().max(1)) {
                            assert!(self.server.kill(s.id, &mut self.host));
                        }
                    }
                    1 => {
                        let user = self.clients[c].username.clone();
                        self.server.kill_user(&user, &mut self.host);
                    }
                    2 => self.host.fail_next = true,
                    _ => self.server.set_policy(policy_variant(b >> 2)),
                }
                self.drain_events();
            }
            _ => {
                // A fresh nonce the regular way, with a credential-less Allocate.
                let tid = self.tid();
                let mut buf = [0u8; 64];
                let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::ALLOCATE, Class::Request), tid);
                w.add_requested_transport(17);
                let n = w.finish().expect("fits");
                self.client_packet(c, &buf[..n]);
            }
        }
    }

    /// Everything ends: no allocation, socket, reservation or quota count outlives its time.
    fn check_conservation(&mut self) {
        self.advance(Duration::from_secs(3700));
        self.advance(Duration::from_secs(3700));
        assert_eq!(self.server.allocation_count(), 0);
        assert!(self.host.open.is_empty(), "relay sockets left open: {:?}", self.host.open);
        assert!(self.host.reservations.is_empty(), "reservations left: {}", self.host.reservations.len());
        assert_eq!(self.server.free_ports(), PORTS.len(), "ports leaked");
        assert_eq!(self.host.total, 0, "quota counts leaked");
        assert!(self.host.users.is_empty());
        assert!(self.server.poll_timeout().is_none_or(|t| t > self.now), "a timer is overdue");
    }
}

/// Channel numbers around the edges of the valid ranges, and a few inside.
fn channel_number(b: u8) -> u16 {
    [0x3FFE_u16, 0x4FF8, 0x7FF8, 0x8000][usize::from(b >> 4 & 0x03)] + u16::from(b & 0x0F)
}

/// Policies a reload switches between.
fn policy_variant(v: u8) -> PeerPolicyConfig {
    let own_ips: Vec<IpAddr> = vec![RELAY_V4.into(), "2001:db8::1".parse().expect("literal address")];
    let mut p = PeerPolicyConfig { own_ips, relay_ports: Some(PORTS), ..PeerPolicyConfig::default() };
    match v & 0x03 {
        0 => {}
        1 => {
            p.allowed.push(AddrRange::new([10, 0, 0, 0].into(), [10, 255, 255, 255].into()).expect("range"));
        }
        2 => {
            p.allow_loopback = true;
            p.denied.push(AddrRange::single([8, 8, 8, 8].into()));
        }
        _ => {
            p.denied
                .push(AddrRange::new(Ipv6Addr::UNSPECIFIED.into(), Ipv6Addr::from(u128::MAX).into()).expect("range"));
            p.denied.push(AddrRange::new([0, 0, 0, 0].into(), [255, 255, 255, 255].into()).expect("range"));
        }
    }
    p
}

/// Padding after each attribute value is zero (coturn CVE-2020-4067 leaked memory there).
fn assert_padding_is_zero(msg: &[u8]) {
    let mut off = HEADER_LEN;
    while off + 4 <= msg.len() {
        let vlen = usize::from(u16::from_be_bytes([msg[off + 2], msg[off + 3]]));
        let padded = (vlen + 3) & !3;
        let pad = msg.get(off + 4 + vlen..off + 4 + padded).expect("attribute inside the message");
        assert!(pad.iter().all(|&b| b == 0), "non-zero padding at {}", off + 4 + vlen);
        off += 4 + padded;
    }
}

/// The fuzz entry point.
pub fn server_input(data: &[u8]) {
    run(data);
}

/// Runs `data` and returns the server's counters from before the final expiry.
fn run(data: &[u8]) -> Stats {
    let mut input = Input(data);
    let flags = input.byte();
    let quotas = input.byte();
    let mut h = Harness::new(flags, quotas);
    let mut ops = 0;
    while !input.is_empty() && ops < MAX_OPS {
        h.step(&mut input);
        ops += 1;
    }
    let stats = h.server.stats().clone();
    h.check_conservation();
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<u8> {
        let path = format!("{}/../../fuzz/corpus/server_input/seed-{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    // The harness must reach the data path and the refusals, or the fuzzer explores little.
    #[test]
    fn the_udp_seed_relays_both_ways() {
        let s = run(&seed("udp-flow"));
        assert_eq!(s.allocations_created[0], 1);
        assert!(s.packets_to_peer >= 3 && s.packets_from_peer >= 2, "{s:?}");
    }

    #[test]
    fn the_stream_seed_relays_over_tcp_and_tls() {
        let s = run(&seed("tcp-flow"));
        assert_eq!((s.allocations_created[1], s.allocations_created[2]), (1, 1), "{s:?}");
        assert!(s.packets_to_peer >= 1 && s.packets_from_peer >= 2, "{s:?}");
    }

    #[test]
    fn the_dual_stack_seed_relays_over_ipv6_with_sha256() {
        let s = run(&seed("dual-stack"));
        assert_eq!(s.allocations_created[0], 1);
        assert!(s.packets_from_peer >= 2 && s.packets_to_peer >= 1, "{s:?}");
    }

    #[test]
    fn the_ssrf_seed_is_refused_until_the_reload_allows_10_8() {
        let s = run(&seed("ssrf"));
        assert!(s.peer_denied.iter().sum::<u64>() >= 20, "{s:?}");
        assert_eq!(s.packets_from_peer, 1, "{s:?}");
    }

    #[test]
    fn the_quota_and_port_seeds_reach_486_and_508() {
        let s = run(&seed("quota"));
        assert!(s.quota_rejections >= 2, "{s:?}");
        let s = run(&seed("ports"));
        assert!(s.capacity_rejections >= 1, "{s:?}");
    }

    #[test]
    fn the_bandwidth_seed_drops_over_the_rate() {
        let s = run(&seed("bandwidth"));
        assert!(s.dropped_bandwidth >= 1 && s.challenges_suppressed >= 1, "{s:?}");
    }
}
