//! The TURN server state machine (RFC 8656 over RFC 8489), sans I/O.
//!
//! # Driving it
//! The shell owns the sockets and the clock and calls, for one worker:
//! - [`Server::handle_client`] for every datagram or stream frame from a client. It returns a
//!   [`ClientAction`]: either nothing more to do, or [`Forward`]: "send `packet[payload]` from
//!   relay address R to peer P" (ChannelData and Send). Control responses are queued.
//! - [`Server::handle_peer`] for every datagram on a relay socket. The shell reads it into a
//!   buffer with [`PEER_HEADROOM`] bytes free before and [`PEER_TAILROOM`] after; the server writes
//!   the ChannelData or Data-indication header in place and returns what to send to which client.
//! - [`Server::handle_timeout`] when [`Server::poll_timeout`] has passed.
//! - after each of those, [`Server::poll_transmit`] and [`Server::poll_event`] until `None`. A
//!   sent transmit's buffer may go back through [`Server::recycle_transmit`], and then replies
//!   allocate nothing.
//!
//! Relay sockets are opened and closed through the [`RelayHost`] the shell passes in: the core
//! decides which address, the shell binds it.
//!
//! The data path allocates nothing and copies no payload: one hash lookup finds the channel in
//! either direction (redundant indices, as firezone's relay keeps them).

mod allocation;
pub mod auth;
mod config;
mod io;
mod limits;
mod ports;
mod slab;
mod timers;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rustc_hash::FxHashMap;

pub use self::allocation::{AllocId, CHANNEL_COOLDOWN, RESERVATION_LIFETIME};
use self::allocation::{Allocation, Channel, ChannelKey};
pub use self::auth::{AuthConfig, UnauthorizedReason, UserSecret};
use self::auth::{AuthFailure, AuthOk, Authenticator, IntegrityKind};
pub use self::config::{RelayIp, ServerConfig};
pub use self::io::{
    ClientAction, DeleteReason, Event, Forward, QuotaError, RelayHost, RelayOpenError, RelayOptions, SessionInfo,
    Stats, ToClient, Transmit,
};
pub use self::limits::LogLimiter;
use self::limits::{SourceBudget, TokenBucket};
use self::ports::{PortPool, PortWish};
use self::slab::Slab;
use self::timers::{TimerKind, Timers};
use crate::channel_data::{self, ChannelData, PacketKind};
use crate::policy::{DenyReason, PeerPolicy, PeerPolicyConfig};
use crate::stun::attr::{FAMILY_IPV4, FAMILY_IPV6};
use crate::stun::{AttrType, Class, ErrorCode, Message, MessageType, MessageWriter, Method, TransactionId};
use crate::types::{FiveTuple, Transport};

/// Bytes the shell must leave free before a peer datagram's payload: room for the largest
/// header written in place (a Data indication from an IPv6 peer: 20 + 24 + 4).
pub const PEER_HEADROOM: usize = crate::stun::writer::data_indication_headroom(false);
/// Bytes the shell must leave free after a peer datagram's payload: padding and FINGERPRINT
/// (rounded up to a multiple of 4).
pub const PEER_TAILROOM: usize = 12;
const _: () = assert!(PEER_HEADROOM == 48 && PEER_TAILROOM >= crate::stun::writer::DATA_INDICATION_TAILROOM);

/// UDP, as REQUESTED-TRANSPORT names it.
const PROTO_UDP: u8 = 17;
/// At most this many UNKNOWN-ATTRIBUTES are listed in a 420.
const MAX_UNKNOWN_LISTED: usize = 16;
/// Attempts to bind a relay port before answering 508.
const BIND_ATTEMPTS: usize = 16;
/// The largest reply but a padded one (RFC 5780): every attribute the server writes fits.
const REPLY_MAX: usize = 1280;
/// Reply buffers kept for reuse, and the largest kept.
const SPARE_BUFFERS: usize = 64;
const MAX_SPARE_CAPACITY: usize = 4096;
/// Events kept for the shell before new ones are dropped (and counted).
const MAX_QUEUED_EVENTS: usize = 4096;

/// One worker's TURN server.
pub struct Server {
    cfg: ServerConfig,
    rng: ChaCha20Rng,
    auth: Authenticator,
    policy: PeerPolicy,
    policy_epoch: u64,
    allocs: Slab<Allocation, AllocId>,
    alloc_by_tuple: FxHashMap<FiveTuple, AllocId>,
    alloc_by_relay: FxHashMap<SocketAddr, AllocId>,
    channels: Slab<Channel, ChannelKey>,
    channel_by_tuple_and_number: FxHashMap<(FiveTuple, u16), ChannelKey>,
    channel_by_relay_and_peer: FxHashMap<(SocketAddr, SocketAddr), ChannelKey>,
    /// EVEN-PORT reservations this worker made: token → reserved port.
    reservations: FxHashMap<u64, u16>,
    ports: PortPool,
    timers: Timers,
    transmits: VecDeque<Transmit>,
    /// Reply buffers the shell gave back ([`Server::recycle_transmit`]).
    spare_buffers: Vec<Vec<u8>>,
    events: VecDeque<Event>,
    stats: Stats,
    unauthenticated: SourceBudget,
    capacity: TokenBucket,
    epoch: Instant,
    next_alternate: usize,
    next_relay_ip: usize,
    draining: bool,
}

impl Server {
    /// Creates a server. `seed` keys the CSPRNG behind nonces, ports and tokens; the shell takes
    /// it from the operating system.
    pub fn new(cfg: ServerConfig, seed: [u8; 32], now: Instant) -> Self {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut nonce_key = [0u8; 32];
        rng.fill_bytes(&mut nonce_key);
        let auth = Authenticator::new(&cfg.realm, &cfg.auth, nonce_key, now, cfg.stale_nonce_secs);
        let policy = PeerPolicy::new(cfg.policy.clone());
        let ports = PortPool::new(cfg.ports.clone());
        let unauthenticated = SourceBudget::new(cfg.unauthenticated_rps, rng.next_u64());
        let capacity = TokenBucket::new(cfg.bps_capacity, now);
        Server {
            unauthenticated,
            capacity,
            epoch: now,
            cfg,
            rng,
            auth,
            policy,
            policy_epoch: 0,
            allocs: Slab::default(),
            alloc_by_tuple: FxHashMap::default(),
            alloc_by_relay: FxHashMap::default(),
            channels: Slab::default(),
            channel_by_tuple_and_number: FxHashMap::default(),
            channel_by_relay_and_peer: FxHashMap::default(),
            reservations: FxHashMap::default(),
            ports,
            timers: Timers::default(),
            transmits: VecDeque::new(),
            spare_buffers: Vec::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            next_alternate: 0,
            next_relay_ip: 0,
            draining: false,
        }
    }

    // ------------------------------------------------------------------------------------
    // Inputs
    // ------------------------------------------------------------------------------------

    /// Handles one datagram (UDP) or one complete frame (TCP/TLS) from a client.
    pub fn handle_client(
        &mut self,
        now: Instant,
        unix_now: u64,
        tuple: FiveTuple,
        packet: &[u8],
        host: &mut dyn RelayHost,
    ) -> ClientAction {
        let Some(&first) = packet.first() else {
            self.stats.malformed += 1;
            return ClientAction::Done;
        };
        match channel_data::classify(first) {
            PacketKind::ChannelData => self.handle_channel_data(now, tuple, packet),
            PacketKind::Stun => self.handle_stun(now, unix_now, tuple, packet, host),
            PacketKind::Tls | PacketKind::Other => {
                self.stats.malformed += 1;
                ClientAction::Done
            }
        }
    }

    /// Handles a datagram from `peer` on the relay socket bound to `relay`. The payload is
    /// `buf[payload]`, with [`PEER_HEADROOM`] bytes free before it and [`PEER_TAILROOM`] after.
    /// Returns where the framed message now is and which client gets it.
    pub fn handle_peer(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
        buf: &mut [u8],
        payload: Range<usize>,
    ) -> Option<ToClient> {
        if payload.start < PEER_HEADROOM || buf.len() < payload.end + PEER_TAILROOM || payload.start > payload.end {
            debug_assert!(false, "shell broke the headroom contract");
            return None;
        }
        let len = payload.len();
        if let Some(&slot) = self.channel_by_relay_and_peer.get(&(relay, peer)) {
            let ch = self.channels.get(slot)?;
            if !ch.is_usable(now) || len > usize::from(u16::MAX) {
                self.stats.dropped_no_route += 1;
                return None;
            }
            let (tuple, number, alloc) = (ch.tuple, ch.number, ch.alloc);
            // A reload may have refused this peer since the channel was bound: data from it is
            // admitted no more than data to it.
            if ch.policy_epoch != self.policy_epoch && !self.recheck_channel(slot, tuple, peer) {
                return None;
            }
            if !self.count_from_peer(now, alloc, len) {
                return None;
            }
            let start = payload.start - channel_data::HEADER_LEN;
            let header: &mut [u8; 4] = (&mut buf[start..payload.start]).try_into().ok()?;
            channel_data::write_header(header, number, len).ok()?;
            let mut end = payload.end;
            if tuple.transport.is_stream() {
                let pad = channel_data::stream_padding(len);
                buf[end..end + pad].fill(0);
                end += pad;
            }
            return Some(ToClient { to: tuple, range: start..end });
        }

        let Some(&id) = self.alloc_by_relay.get(&relay) else {
            self.stats.dropped_no_route += 1;
            return None;
        };
        let a = self.allocs.get(id)?;
        if a.permission_expires(peer.ip()).is_none_or(|t| t <= now) {
            self.stats.dropped_no_route += 1;
            return None;
        }
        let tuple = a.tuple;
        if !self.count_from_peer(now, id, len) {
            return None;
        }
        let range = self.write_data_indication(buf, payload, peer)?;
        Some(ToClient { to: tuple, range })
    }

    /// Handles the end of a TCP/TLS connection: its allocation goes with it.
    pub fn handle_client_closed(&mut self, tuple: FiveTuple, host: &mut dyn RelayHost) {
        if let Some(&id) = self.alloc_by_tuple.get(&tuple) {
            self.delete_allocation(id, DeleteReason::ConnectionClosed, host);
        }
    }

    /// Handles every deadline that has passed.
    pub fn handle_timeout(&mut self, now: Instant, host: &mut dyn RelayHost) {
        while let Some(kind) = self.timers.pop_due(now) {
            match kind {
                TimerKind::Allocation(id) => {
                    if self.allocs.get(id).is_some_and(|a| a.expires <= now) {
                        tracing::debug!(target: "relay", id = id.as_u64(), "allocation expired");
                        self.delete_allocation(id, DeleteReason::Expired, host);
                    }
                }
                TimerKind::Permission(id, ip) => {
                    if let Some(a) = self.allocs.get_mut(id)
                        && a.permissions.get(&ip).is_some_and(|t| *t <= now)
                    {
                        a.permissions.remove(&ip);
                    }
                }
                TimerKind::Channel(id, number) => self.channel_timer(now, id, number),
                TimerKind::Reservation(token) => {
                    if let Some(port) = self.reservations.remove(&token) {
                        host.release_reservation(token);
                        self.ports.release(port);
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // Outputs
    // ------------------------------------------------------------------------------------

    /// The next control message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Gives a sent [`Transmit`]'s buffer back for the next reply, so that in the steady state the
    /// core allocates nothing per reply. Optional: a buffer not given back is simply freed.
    pub fn recycle_transmit(&mut self, mut data: Vec<u8>) {
        if self.spare_buffers.len() < SPARE_BUFFERS && data.capacity() <= MAX_SPARE_CAPACITY {
            data.clear();
            self.spare_buffers.push(data);
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Server::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Live allocations.
    pub fn allocation_count(&self) -> usize {
        self.allocs.len()
    }

    /// Free relay ports in this worker's slice.
    pub fn free_ports(&self) -> usize {
        self.ports.free_count()
    }

    /// The peer policy in force.
    pub fn policy(&self) -> &PeerPolicy {
        &self.policy
    }

    /// A snapshot of every allocation, for the admin API.
    pub fn sessions(&self, now: Instant) -> Vec<SessionInfo> {
        self.allocs
            .values()
            .map(|a| SessionInfo {
                id: a.id,
                tuple: a.tuple,
                username: a.username.clone(),
                relays: a.relays.clone(),
                public_relays: a.public_relays.clone(),
                age: now.saturating_duration_since(a.created),
                expires_in: a.expires.saturating_duration_since(now),
                bytes_to_peer: a.bytes_to_peer,
                bytes_from_peer: a.bytes_from_peer,
                packets_to_peer: a.packets_to_peer,
                packets_from_peer: a.packets_from_peer,
                permissions: a.permissions.len(),
                channels: a.channels.len(),
            })
            .collect()
    }

    /// Ends an allocation by id (admin API). Returns whether it existed.
    pub fn kill(&mut self, id: AllocId, host: &mut dyn RelayHost) -> bool {
        if self.allocs.get(id).is_none() {
            return false;
        }
        self.delete_allocation(id, DeleteReason::Killed, host);
        true
    }

    /// Ends every allocation of `username` (admin API). Returns how many.
    pub fn kill_user(&mut self, username: &str, host: &mut dyn RelayHost) -> usize {
        let ids: Vec<AllocId> = self.allocs.values().filter(|a| a.username == username).map(|a| a.id).collect();
        for &id in &ids {
            self.delete_allocation(id, DeleteReason::Killed, host);
        }
        ids.len()
    }

    /// Replaces users and REST secrets (SIGHUP reload). Live allocations stay; their next
    /// request authenticates against the new set.
    pub fn set_auth(&mut self, auth: AuthConfig) {
        self.auth.set_credentials(&auth);
        self.cfg.auth = auth;
    }

    /// Replaces the peer policy (reload). Channels are re-checked on their next packet, and
    /// permissions now refused are removed.
    pub fn set_policy(&mut self, cfg: PeerPolicyConfig) {
        self.policy = PeerPolicy::new(cfg.clone());
        self.cfg.policy = cfg;
        self.policy_epoch += 1;
        let policy = &self.policy;
        let mut ids = Vec::new();
        for (id, _) in self.allocs.iter() {
            ids.push(id);
        }
        for id in ids {
            if let Some(a) = self.allocs.get_mut(id) {
                a.permissions.retain(|ip, _| policy.check_ip(*ip).is_ok());
            }
        }
    }

    /// Sets the alternate servers (drain mode uses it to redirect new allocations).
    pub fn set_alternate_servers(&mut self, servers: Vec<SocketAddr>) {
        self.cfg.alternate_servers = servers;
    }

    /// Drain mode: a new allocation is refused with 508 (Insufficient Capacity) unless alternate
    /// servers are set, which answer it with 300 first. Existing allocations keep relaying and
    /// refreshing; a retransmitted Allocate of one still gets its original success.
    pub fn set_draining(&mut self, on: bool) {
        self.draining = on;
    }

    // ------------------------------------------------------------------------------------
    // Data path
    // ------------------------------------------------------------------------------------

    fn handle_channel_data(&mut self, now: Instant, tuple: FiveTuple, packet: &[u8]) -> ClientAction {
        let Ok(cd) = ChannelData::parse(packet) else {
            self.stats.malformed += 1;
            return ClientAction::Done;
        };
        let Some(&slot) = self.channel_by_tuple_and_number.get(&(tuple, cd.channel())) else {
            self.stats.dropped_no_route += 1;
            return ClientAction::Done;
        };
        let Some(ch) = self.channels.get(slot) else { return ClientAction::Done };
        if !ch.is_usable(now) {
            self.stats.dropped_no_route += 1;
            return ClientAction::Done;
        }
        let (relay, peer, alloc, epoch) = (ch.relay, ch.peer, ch.alloc, ch.policy_epoch);
        if epoch != self.policy_epoch && !self.recheck_channel(slot, tuple, peer) {
            return ClientAction::Done;
        }
        let len = cd.payload().len();
        if !self.count_to_peer(now, alloc, len) {
            return ClientAction::Done;
        }
        ClientAction::Forward(Forward {
            relay,
            peer,
            payload: channel_data::HEADER_LEN..channel_data::HEADER_LEN + len,
        })
    }

    /// Checks a channel's peer against a policy reloaded since the channel was bound; marks the
    /// channel checked if it passes.
    fn recheck_channel(&mut self, slot: ChannelKey, tuple: FiveTuple, peer: SocketAddr) -> bool {
        if let Err(reason) = self.policy.check(peer) {
            self.deny(tuple, peer, reason);
            return false;
        }
        if let Some(ch) = self.channels.get_mut(slot) {
            ch.policy_epoch = self.policy_epoch;
        }
        true
    }

    fn handle_send(&mut self, now: Instant, tuple: FiveTuple, msg: &Message<'_>, packet: &[u8]) -> ClientAction {
        let Some(&id) = self.alloc_by_tuple.get(&tuple) else {
            self.stats.dropped_no_route += 1;
            return ClientAction::Done;
        };
        let (Ok(Some(peer)), Some(data)) = (msg.xor_peer_address(), msg.data()) else {
            self.stats.malformed += 1;
            return ClientAction::Done;
        };
        // The policy first, so that every refused Send is counted and logged, not only those
        // to a peer that holds a permission.
        if let Err(reason) = self.policy.check(peer) {
            self.deny(tuple, peer, reason);
            return ClientAction::Done;
        }
        let Some(a) = self.allocs.get(id) else { return ClientAction::Done };
        let Some(relay) = a.relay_for(peer) else {
            self.stats.dropped_no_route += 1;
            return ClientAction::Done;
        };
        if a.permission_expires(peer.ip()).is_none_or(|t| t <= now) {
            self.stats.dropped_no_route += 1;
            return ClientAction::Done;
        }
        // `data` borrows from `packet`: its offset is where the payload starts.
        let start = data.as_ptr() as usize - packet.as_ptr() as usize;
        if !self.count_to_peer(now, id, data.len()) {
            return ClientAction::Done;
        }
        ClientAction::Forward(Forward { relay, peer, payload: start..start + data.len() })
    }

    /// Counts a datagram to a peer; `false` if `max-bps` or `bps-capacity` drops it.
    fn count_to_peer(&mut self, now: Instant, id: AllocId, len: usize) -> bool {
        let Some(a) = self.allocs.get_mut(id) else { return false };
        if !a.bandwidth_to_peer.take(len as u64, now) || !self.capacity.take(len as u64, now) {
            self.stats.dropped_bandwidth += 1;
            return false;
        }
        a.packets_to_peer += 1;
        a.bytes_to_peer += len as u64;
        self.stats.packets_to_peer += 1;
        self.stats.bytes_to_peer += len as u64;
        true
    }

    /// Counts a datagram from a peer; `false` if `max-bps` or `bps-capacity` drops it.
    fn count_from_peer(&mut self, now: Instant, id: AllocId, len: usize) -> bool {
        let Some(a) = self.allocs.get_mut(id) else { return false };
        if !a.bandwidth_from_peer.take(len as u64, now) || !self.capacity.take(len as u64, now) {
            self.stats.dropped_bandwidth += 1;
            return false;
        }
        a.packets_from_peer += 1;
        a.bytes_from_peer += len as u64;
        self.stats.packets_from_peer += 1;
        self.stats.bytes_from_peer += len as u64;
        true
    }

    /// Writes a Data indication around `buf[payload]` in place, with a fresh transaction id.
    fn write_data_indication(
        &mut self,
        buf: &mut [u8],
        payload: Range<usize>,
        peer: SocketAddr,
    ) -> Option<Range<usize>> {
        let mut tid = [0u8; 12];
        self.rng.fill_bytes(&mut tid);
        crate::stun::writer::write_data_indication(buf, payload, peer, TransactionId(tid), self.cfg.fingerprint).ok()
    }

    // ------------------------------------------------------------------------------------
    // STUN and TURN control
    // ------------------------------------------------------------------------------------

    fn handle_stun(
        &mut self,
        now: Instant,
        unix_now: u64,
        tuple: FiveTuple,
        packet: &[u8],
        host: &mut dyn RelayHost,
    ) -> ClientAction {
        let msg = match Message::parse_any(packet) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                tracing::trace!(target: "wire", %tuple, error = %e, "malformed STUN");
                return ClientAction::Done;
            }
        };
        if msg.fingerprint_ok() == Some(false) {
            self.stats.malformed += 1;
            return ClientAction::Done;
        }
        if msg.is_classic() {
            if msg.method() == Method::BINDING && msg.class() == Class::Request && !self.cfg.no_stun {
                self.classic_binding(tuple, &msg);
            } else {
                self.stats.malformed += 1;
            }
            return ClientAction::Done;
        }
        match msg.class() {
            Class::Request => {}
            Class::Indication => {
                return match msg.method() {
                    Method::SEND if !self.cfg.stun_only => self.handle_send(now, tuple, &msg, packet),
                    _ => ClientAction::Done,
                };
            }
            // Responses are never answered.
            Class::Success | Class::Error => return ClientAction::Done,
        }
        match msg.method() {
            Method::BINDING if self.cfg.no_stun => {}
            Method::BINDING => self.handle_binding(tuple, &msg),
            Method::ALLOCATE | Method::REFRESH | Method::CREATE_PERMISSION | Method::CHANNEL_BIND
                if self.cfg.stun_only =>
            {
                self.error(tuple, &msg, ErrorCode::BAD_REQUEST, None);
            }
            Method::ALLOCATE => self.handle_allocate(now, unix_now, tuple, &msg, host),
            Method::REFRESH => self.handle_refresh(now, unix_now, tuple, &msg, host),
            Method::CREATE_PERMISSION => self.handle_create_permission(now, unix_now, tuple, &msg),
            Method::CHANNEL_BIND => self.handle_channel_bind(now, unix_now, tuple, &msg),
            // RFC 6062 (TCP relay) is not offered: REQUESTED-TRANSPORT TCP gets 442 and these
            // get 400 like any request Tern does not implement.
            _ => self.error(tuple, &msg, ErrorCode::BAD_REQUEST, None),
        }
        ClientAction::Done
    }

    fn handle_binding(&mut self, tuple: FiveTuple, msg: &Message<'_>) {
        if self.reject_unknown(tuple, msg, None) {
            return;
        }
        self.stats.binding_requests += 1;
        self.reply(tuple, msg, Class::Success, None, |w| {
            w.add_xor_address(AttrType::XOR_MAPPED_ADDRESS, tuple.client);
        });
    }

    fn classic_binding(&mut self, tuple: FiveTuple, msg: &Message<'_>) {
        self.stats.binding_requests += 1;
        let mut buf = self.take_buffer(128);
        let mut w = MessageWriter::with_raw_id(
            &mut buf,
            MessageType::new(Method::BINDING, Class::Success),
            msg.cookie_and_transaction_id(),
        );
        w.add_address(AttrType::MAPPED_ADDRESS, tuple.client);
        if let Ok(n) = w.finish() {
            buf.truncate(n);
            self.transmits.push_back(Transmit { to: tuple, data: buf });
        }
    }

    /// Answers 420 if the request has comprehension-required attributes Tern does not know.
    fn reject_unknown(&mut self, tuple: FiveTuple, msg: &Message<'_>, auth: Option<&AuthOk>) -> bool {
        let mut unknown = [AttrType(0); MAX_UNKNOWN_LISTED];
        let mut n = 0;
        for t in msg.unknown_comprehension_required() {
            if n < MAX_UNKNOWN_LISTED && !unknown[..n].contains(&t) {
                unknown[n] = t;
                n += 1;
            }
        }
        if n == 0 {
            return false;
        }
        self.reply(tuple, msg, Class::Error, auth, |w| {
            w.add_error_code(ErrorCode::UNKNOWN_ATTRIBUTE, if auth.is_some() { "Unknown Attribute" } else { "" });
            w.add_unknown_attributes(&unknown[..n]);
        });
        true
    }

    /// Authenticates a TURN request; on failure, queues the error response and returns `None`.
    fn authenticate(&mut self, now: Instant, unix_now: u64, tuple: FiveTuple, msg: &Message<'_>) -> Option<AuthOk> {
        match self.auth.authenticate(now, unix_now, tuple.client, msg) {
            Ok(a) => Some(a),
            Err(AuthFailure::Challenge) => {
                self.stats.auth_challenges += 1;
                self.challenge(now, tuple, msg, ErrorCode::UNAUTHORIZED);
                None
            }
            Err(AuthFailure::StaleNonce) => {
                self.stats.stale_nonces += 1;
                self.challenge(now, tuple, msg, ErrorCode::STALE_NONCE);
                None
            }
            Err(AuthFailure::Unauthorized(reason)) => {
                self.stats.auth_failures[reason.index()] += 1;
                tracing::debug!(target: "relay", %tuple, reason = reason.as_str(), "authentication failed");
                self.challenge(now, tuple, msg, ErrorCode::UNAUTHORIZED);
                None
            }
            Err(AuthFailure::BadRequest) => {
                self.error(tuple, msg, ErrorCode::BAD_REQUEST, None);
                None
            }
        }
    }

    /// 401 or 438 with REALM, a fresh NONCE and PASSWORD-ALGORITHMS; no reason phrase, no
    /// MESSAGE-INTEGRITY (nothing authenticated): the smallest answer that lets a client go on.
    fn challenge(&mut self, now: Instant, tuple: FiveTuple, msg: &Message<'_>, code: ErrorCode) {
        // Over UDP a source address can be spoofed: a per-source budget keeps the server from
        // being a reflector. Loopback cannot be spoofed from outside.
        if tuple.transport == Transport::Udp && !tuple.client.ip().is_loopback() {
            let now_s = u32::try_from(now.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX);
            if !self.unauthenticated.allow(tuple.client.ip(), now_s) {
                self.stats.challenges_suppressed += 1;
                return;
            }
        }
        let nonce = self.auth.nonce(now, tuple.client);
        let realm = self.auth.realm().to_owned();
        self.reply(tuple, msg, Class::Error, None, |w| {
            w.add_error_code(code, "");
            w.add_text(AttrType::REALM, &realm);
            w.add_text(AttrType::NONCE, &nonce);
            w.add_password_algorithms(&auth::OFFERED);
        });
    }

    #[track_caller]
    fn error(&mut self, tuple: FiveTuple, msg: &Message<'_>, code: ErrorCode, auth: Option<&AuthOk>) {
        tracing::debug!(target: "relay", %tuple, method = %msg.method(), code = code.0, at = %std::panic::Location::caller(), "error response");
        self.reply(tuple, msg, Class::Error, auth, |w| {
            w.add_error_code(code, if auth.is_some() { code.reason() } else { "" });
        });
    }

    /// Encodes a response and queues it; `false` if it did not encode (logged).
    fn reply(
        &mut self,
        tuple: FiveTuple,
        msg: &Message<'_>,
        class: Class,
        auth: Option<&AuthOk>,
        body: impl FnOnce(&mut MessageWriter<'_>),
    ) -> bool {
        let mut buf = self.take_buffer(REPLY_MAX);
        let mut w = MessageWriter::new(&mut buf, MessageType::new(msg.method(), class), msg.transaction_id());
        body(&mut w);
        if let Some(s) = &self.cfg.software {
            w.add_text(AttrType::SOFTWARE, s);
        }
        if let Some(AuthOk { key: Some(key), kind, .. }) = auth {
            match kind {
                IntegrityKind::Sha1 => w.add_message_integrity(key.as_bytes()),
                IntegrityKind::Sha256 => w.add_message_integrity_sha256(key.as_bytes()),
            };
        }
        if self.cfg.fingerprint || msg.has_fingerprint() {
            w.add_fingerprint();
        }
        match w.finish() {
            Ok(n) => {
                buf.truncate(n);
                self.transmits.push_back(Transmit { to: tuple, data: buf });
                true
            }
            Err(e) => {
                tracing::error!(target: "relay", %tuple, error = %e, "response did not encode");
                self.recycle_transmit(buf);
                false
            }
        }
    }

    /// A zeroed buffer of `len` bytes for a reply: a recycled one when the shell gave some back.
    fn take_buffer(&mut self, len: usize) -> Vec<u8> {
        let mut buf = self.spare_buffers.pop().unwrap_or_default();
        buf.clear();
        buf.resize(len, 0);
        buf
    }

    fn deny(&mut self, tuple: FiveTuple, peer: SocketAddr, reason: DenyReason) {
        self.stats.peer_denied[reason.index()] += 1;
        self.push_event(Event::PeerDenied { tuple, peer, reason });
    }

    fn push_event(&mut self, e: Event) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.stats.events_dropped += 1;
            return;
        }
        self.events.push_back(e);
    }

    /// The allocation of `tuple` if the request's user owns it; otherwise queues 437 or 441.
    fn owned_allocation(&mut self, tuple: FiveTuple, msg: &Message<'_>, auth: &AuthOk) -> Option<AllocId> {
        let Some(&id) = self.alloc_by_tuple.get(&tuple) else {
            self.error(tuple, msg, ErrorCode::ALLOCATION_MISMATCH, Some(auth));
            return None;
        };
        let owner_matches = self.allocs.get(id).is_some_and(|a| a.username == auth.username);
        if !owner_matches {
            self.error(tuple, msg, ErrorCode::WRONG_CREDENTIALS, Some(auth));
            return None;
        }
        Some(id)
    }

    fn desired_lifetime(&self, requested: Option<u32>) -> Duration {
        let max = self.cfg.max_lifetime;
        let default = self.cfg.default_lifetime.min(max);
        match requested {
            None => default,
            Some(s) => {
                let d = Duration::from_secs(u64::from(s)).min(max);
                if d > default { d } else { default }
            }
        }
    }

    fn handle_allocate(
        &mut self,
        now: Instant,
        unix_now: u64,
        tuple: FiveTuple,
        msg: &Message<'_>,
        host: &mut dyn RelayHost,
    ) {
        if !self.cfg.alternate_servers.is_empty() {
            let alt = self.cfg.alternate_servers[self.next_alternate % self.cfg.alternate_servers.len()];
            self.next_alternate = self.next_alternate.wrapping_add(1);
            self.reply(tuple, msg, Class::Error, None, |w| {
                w.add_error_code(ErrorCode::TRY_ALTERNATE, "");
                w.add_address(AttrType::ALTERNATE_SERVER, alt);
            });
            return;
        }
        let Some(auth) = self.authenticate(now, unix_now, tuple, msg) else { return };
        if self.reject_unknown(tuple, msg, Some(&auth)) {
            return;
        }
        if let Some(&id) = self.alloc_by_tuple.get(&tuple) {
            // RFC 8656 §7.2 and coturn: a retransmitted Allocate gets the original success.
            let resend = self
                .allocs
                .get(id)
                .filter(|a| a.allocate_tid == msg.transaction_id() && a.username == auth.username)
                .map(|a| a.allocate_response.clone());
            match resend {
                Some(data) => self.transmits.push_back(Transmit { to: tuple, data }),
                None => self.error(tuple, msg, ErrorCode::ALLOCATION_MISMATCH, Some(&auth)),
            }
            return;
        }
        if self.draining {
            // 508 rather than 403: the refusal is temporary and says "not here", so a client
            // tries its next TURN server instead of reporting a permission problem.
            self.stats.drain_rejections += 1;
            self.reply(tuple, msg, Class::Error, Some(&auth), |w| {
                w.add_error_code(ErrorCode::INSUFFICIENT_CAPACITY, "Server is draining");
            });
            return;
        }
        match msg.requested_transport() {
            Ok(Some(PROTO_UDP)) if !self.cfg.no_udp_relay => {}
            Ok(Some(_)) => return self.error(tuple, msg, ErrorCode::UNSUPPORTED_TRANSPORT_PROTOCOL, Some(&auth)),
            _ => return self.error(tuple, msg, ErrorCode::BAD_REQUEST, Some(&auth)),
        }
        let (Ok(even), Ok(token), Ok(aaf)) =
            (msg.even_port(), msg.reservation_token(), msg.additional_address_family())
        else {
            return self.error(tuple, msg, ErrorCode::BAD_REQUEST, Some(&auth));
        };
        let raf = match msg.requested_address_family() {
            Ok(f) => f,
            Err(crate::stun::attr::AttrError::BadFamily(_)) => {
                return self.error(tuple, msg, ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED, Some(&auth));
            }
            Err(_) => return self.error(tuple, msg, ErrorCode::BAD_REQUEST, Some(&auth)),
        };
        let conflicting = (token.is_some() && (even.is_some() || raf.is_some() || aaf.is_some()))
            || (raf.is_some() && aaf.is_some())
            || aaf == Some(FAMILY_IPV4);
        if conflicting {
            return self.error(tuple, msg, ErrorCode::BAD_REQUEST, Some(&auth));
        }
        let dont_fragment = msg.dont_fragment();
        let opts = RelayOptions { dont_fragment };

        // Families and relay IPs.
        let (primary, dual) = match (raf, aaf) {
            (Some(FAMILY_IPV6), _) => (FAMILY_IPV6, false),
            (_, Some(FAMILY_IPV6)) => (FAMILY_IPV4, true),
            _ => (FAMILY_IPV4, false),
        };
        let Some(primary_ip) = self.pick_relay_ip(tuple, primary) else {
            return self.error(tuple, msg, ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED, Some(&auth));
        };
        let secondary_ip = if dual { self.pick_relay_ip(tuple, FAMILY_IPV6) } else { None };

        if let Err(q) = host.acquire_quota(&auth.quota_user) {
            self.stats.quota_rejections += 1;
            tracing::info!(target: "relay", %tuple, quota = ?q, "allocation refused: quota");
            return self.error(tuple, msg, ErrorCode::ALLOCATION_QUOTA_REACHED, Some(&auth));
        }

        let mut relays: Vec<(SocketAddr, IpAddr)> = Vec::with_capacity(2);
        let mut new_reservation = None;
        let ok = if let Some(tok) = token {
            // The port was reserved by this or another worker; the host knows which.
            let mine = self.reservations.remove(&tok);
            match host.claim_reservation(tok, now, opts) {
                Some(addr) => {
                    let public = self.public_ip(addr.ip());
                    relays.push((addr, public));
                    true
                }
                None => {
                    if let Some(port) = mine {
                        self.ports.release(port);
                    }
                    false
                }
            }
        } else {
            let wish = match even {
                Some(true) => PortWish::EvenPair,
                Some(false) => PortWish::Even,
                None => PortWish::Any,
            };
            let reserve = (wish == PortWish::EvenPair).then(|| (self.rng.next_u64(), now + RESERVATION_LIFETIME));
            match self.bind_relay(primary_ip.local, wish, opts, reserve, host) {
                Some(port) => {
                    relays.push((SocketAddr::new(primary_ip.local, port), primary_ip.public));
                    if let Some((tok, until)) = reserve {
                        self.reservations.insert(tok, port + 1);
                        self.timers.push(until, TimerKind::Reservation(tok));
                        new_reservation = Some(tok);
                    }
                    true
                }
                None => false,
            }
        };
        // A dual allocation keeps its IPv4 relay when no IPv6 port can be had; the response
        // says why with ADDRESS-ERROR-CODE (RFC 8656 §7.2).
        if ok
            && let Some(ip) = secondary_ip
            && let Some(port) = self.bind_relay(ip.local, PortWish::Any, opts, None, host)
        {
            relays.push((SocketAddr::new(ip.local, port), ip.public));
        }
        if !ok {
            host.release_quota(&auth.quota_user);
            self.stats.capacity_rejections += 1;
            return self.error(tuple, msg, ErrorCode::INSUFFICIENT_CAPACITY, Some(&auth));
        }

        let lifetime = self.desired_lifetime(msg.lifetime().ok().flatten());
        let public_relays: Vec<SocketAddr> = relays.iter().map(|(a, p)| SocketAddr::new(*p, a.port())).collect();
        let local_relays: Vec<SocketAddr> = relays.iter().map(|(a, _)| *a).collect();
        let family_error = dual && local_relays.len() < 2;
        let encoded = self.reply(tuple, msg, Class::Success, Some(&auth), |w| {
            for r in &public_relays {
                w.add_xor_address(AttrType::XOR_RELAYED_ADDRESS, *r);
            }
            if family_error {
                w.add_with(AttrType::ADDRESS_ERROR_CODE, 4, |v| {
                    v.copy_from_slice(&[FAMILY_IPV6, 0, 4, 40]);
                });
            }
            w.add_u32(AttrType::LIFETIME, lifetime.as_secs() as u32);
            if let Some(tok) = new_reservation {
                w.add_u64(AttrType::RESERVATION_TOKEN, tok);
            }
            w.add_xor_address(AttrType::XOR_MAPPED_ADDRESS, tuple.client);
        });
        let expires = now + lifetime;
        let id = self.allocs.insert_with(|id| Allocation {
            id,
            tuple,
            username: auth.username.clone(),
            quota_user: auth.quota_user.clone(),
            relays: local_relays.clone(),
            public_relays,
            created: now,
            expires,
            allocate_tid: msg.transaction_id(),
            allocate_response: if encoded {
                self.transmits.back().map(|t| t.data.clone()).unwrap_or_default()
            } else {
                Vec::new()
            },
            permissions: FxHashMap::default(),
            channels: FxHashMap::default(),
            channel_by_peer: FxHashMap::default(),
            bytes_to_peer: 0,
            bytes_from_peer: 0,
            packets_to_peer: 0,
            packets_from_peer: 0,
            bandwidth_to_peer: TokenBucket::new(self.cfg.max_bps, now),
            bandwidth_from_peer: TokenBucket::new(self.cfg.max_bps, now),
        });
        self.alloc_by_tuple.insert(tuple, id);
        for r in &local_relays {
            self.alloc_by_relay.insert(*r, id);
        }
        self.timers.push(expires, TimerKind::Allocation(id));
        self.stats.allocations_created[tuple.transport.index()] += 1;
        tracing::info!(target: "relay", %tuple, id = id.as_u64(), relays = ?local_relays, user = %auth.username.escape_debug(), lifetime = lifetime.as_secs(), "allocation created");
        self.push_event(Event::AllocationCreated { id, tuple, relays: local_relays, username: auth.username });
    }

    /// Picks a relay IP of `family`: the address the client reached if it is one, else
    /// round-robin over the relay addresses; with none configured, the address the client reached.
    fn pick_relay_ip(&mut self, tuple: FiveTuple, family: u8) -> Option<RelayIp> {
        let want_v4 = family == FAMILY_IPV4;
        if self.cfg.relay_ips.is_empty() {
            let ip = tuple.server.ip();
            return (ip.is_ipv4() == want_v4).then_some(RelayIp { local: ip, public: ip });
        }
        // The address the client reached, when it is a relay address, keeps the relayed
        // traffic on the interface the client already uses (coturn does the same).
        if let Some(r) =
            self.cfg.relay_ips.iter().find(|r| r.local == tuple.server.ip() && r.local.is_ipv4() == want_v4)
        {
            return Some(*r);
        }
        let n = self.cfg.relay_ips.len();
        for k in 0..n {
            let r = self.cfg.relay_ips[(self.next_relay_ip + k) % n];
            if r.local.is_ipv4() == want_v4 {
                self.next_relay_ip = (self.next_relay_ip + k + 1) % n;
                return Some(r);
            }
        }
        None
    }

    fn public_ip(&self, local: IpAddr) -> IpAddr {
        self.cfg.relay_ips.iter().find(|r| r.local == local).map_or(local, |r| r.public)
    }

    /// Takes a port from this worker's slice and has the host bind it, retrying on ports that
    /// another process holds. With `reserve` (EVEN-PORT with the R bit), port+1 is bound and
    /// held under that token and expiry as well, and a pair whose second port is taken is
    /// skipped like a taken first port.
    fn bind_relay(
        &mut self,
        ip: IpAddr,
        wish: PortWish,
        opts: RelayOptions,
        reserve: Option<(u64, Instant)>,
        host: &mut dyn RelayHost,
    ) -> Option<u16> {
        let mut skip = [0u16; BIND_ATTEMPTS];
        for attempt in 0..BIND_ATTEMPTS {
            let start = self.rng.next_u64();
            let port = self.ports.take(wish, start, &skip[..attempt])?;
            let opened = host.open_relay(SocketAddr::new(ip, port), opts).and_then(|()| {
                let Some((token, until)) = reserve else { return Ok(()) };
                host.reserve(token, SocketAddr::new(ip, port + 1), until, opts).inspect_err(|_| {
                    host.close_relay(SocketAddr::new(ip, port));
                })
            });
            match opened {
                Ok(()) => return Some(port),
                Err(e) => {
                    tracing::debug!(target: "relay", %ip, port, error = ?e, "relay port unavailable");
                    self.ports.release(port);
                    if wish == PortWish::EvenPair {
                        self.ports.release(port + 1);
                    }
                    skip[attempt] = port;
                    if e == RelayOpenError::Other {
                        return None;
                    }
                }
            }
        }
        None
    }

    fn handle_refresh(
        &mut self,
        now: Instant,
        unix_now: u64,
        tuple: FiveTuple,
        msg: &Message<'_>,
        host: &mut dyn RelayHost,
    ) {
        let Some(auth) = self.authenticate(now, unix_now, tuple, msg) else { return };
        if self.reject_unknown(tuple, msg, Some(&auth)) {
            return;
        }
        let Some(id) = self.owned_allocation(tuple, msg, &auth) else { return };
        let Ok(requested) = msg.lifetime() else {
            return self.error(tuple, msg, ErrorCode::BAD_REQUEST, Some(&auth));
        };
        match msg.requested_address_family() {
            Ok(None) => {}
            Ok(Some(f)) => {
                let has =
                    self.allocs.get(id).is_some_and(|a| a.relays.iter().any(|r| r.is_ipv4() == (f == FAMILY_IPV4)));
                if !has {
                    return self.error(tuple, msg, ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH, Some(&auth));
                }
            }
            Err(_) => return self.error(tuple, msg, ErrorCode::BAD_REQUEST, Some(&auth)),
        }
        if requested == Some(0) {
            self.delete_allocation(id, DeleteReason::Refreshed, host);
            self.reply(tuple, msg, Class::Success, Some(&auth), |w| {
                w.add_u32(AttrType::LIFETIME, 0);
            });
            return;
        }
        let lifetime = self.desired_lifetime(requested);
        let expires = now + lifetime;
        if let Some(a) = self.allocs.get_mut(id) {
            a.expires = expires;
        }
        self.timers.push(expires, TimerKind::Allocation(id));
        self.reply(tuple, msg, Class::Success, Some(&auth), |w| {
            w.add_u32(AttrType::LIFETIME, lifetime.as_secs() as u32);
        });
    }

    fn handle_create_permission(&mut self, now: Instant, unix_now: u64, tuple: FiveTuple, msg: &Message<'_>) {
        let Some(auth) = self.authenticate(now, unix_now, tuple, msg) else { return };
        if self.reject_unknown(tuple, msg, Some(&auth)) {
            return;
        }
        let Some(id) = self.owned_allocation(tuple, msg, &auth) else { return };
        let mut peers: Vec<SocketAddr> = Vec::new();
        for p in msg.xor_peer_addresses() {
            match p {
                Ok(p) => peers.push(p),
                Err(_) => return self.error(tuple, msg, ErrorCode::BAD_REQUEST, Some(&auth)),
            }
        }
        if peers.is_empty() {
            return self.error(tuple, msg, ErrorCode::BAD_REQUEST, Some(&auth));
        }
        // All or nothing: one refused address refuses the request and installs nothing. The
        // policy comes first so that every encoding of a refused address gets the same 403.
        for p in &peers {
            if let Err(reason) = self.policy.check_ip(p.ip()) {
                self.deny(tuple, *p, reason);
                return self.error(tuple, msg, ErrorCode::FORBIDDEN, Some(&auth));
            }
        }
        let Some(a) = self.allocs.get(id) else { return };
        if peers.iter().any(|p| !a.has_family(p.ip())) {
            return self.error(tuple, msg, ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH, Some(&auth));
        }
        let Some(a) = self.allocs.get(id) else { return };
        let new = peers.iter().filter(|p| !a.permissions.contains_key(&p.ip())).count();
        if a.permissions.len() + new > self.cfg.max_permissions {
            return self.error(tuple, msg, ErrorCode::INSUFFICIENT_CAPACITY, Some(&auth));
        }
        let until = now + self.cfg.permission_lifetime;
        for p in &peers {
            self.refresh_permission(id, p.ip(), until);
        }
        self.reply(tuple, msg, Class::Success, Some(&auth), |_| {});
    }

    fn refresh_permission(&mut self, id: AllocId, ip: IpAddr, until: Instant) {
        let Some(a) = self.allocs.get_mut(id) else { return };
        a.permissions.insert(ip, until);
        for (&peer, &number) in &a.channel_by_peer {
            if peer.ip() != ip {
                continue;
            }
            if let Some(&slot) = a.channels.get(&number)
                && let Some(ch) = self.channels.get_mut(slot)
            {
                ch.permission_expires = until;
            }
        }
        self.timers.push(until, TimerKind::Permission(id, ip));
    }

    fn handle_channel_bind(&mut self, now: Instant, unix_now: u64, tuple: FiveTuple, msg: &Message<'_>) {
        let Some(auth) = self.authenticate(now, unix_now, tuple, msg) else { return };
        if self.reject_unknown(tuple, msg, Some(&auth)) {
            return;
        }
        let Some(id) = self.owned_allocation(tuple, msg, &auth) else { return };
        let (Ok(Some(number)), Ok(Some(peer))) = (msg.channel_number(), msg.xor_peer_address()) else {
            return self.error(tuple, msg, ErrorCode::BAD_REQUEST, Some(&auth));
        };
        let bindable = channel_data::is_valid_channel(number)
            || (self.cfg.rfc5766_channel_numbers && channel_data::is_wire_channel(number));
        if !bindable {
            tracing::debug!(target: "relay", %tuple, channel = number, "ChannelBind outside 0x4000-0x4FFF (see rfc5766-channel-numbers)");
            return self.error(tuple, msg, ErrorCode::BAD_REQUEST, Some(&auth));
        }
        if let Err(reason) = self.policy.check(peer) {
            self.deny(tuple, peer, reason);
            return self.error(tuple, msg, ErrorCode::FORBIDDEN, Some(&auth));
        }
        let Some(a) = self.allocs.get(id) else { return };
        let Some(relay) = a.relay_for(peer) else {
            return self.error(tuple, msg, ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH, Some(&auth));
        };
        // RFC 8656 §11.2: a number bound to another peer, or a peer bound to another number, is
        // refused; this holds through the 5-minute cool-down after expiry too.
        let existing = a.channels.get(&number).copied();
        if let Some(slot) = existing {
            let same_peer = self.channels.get(slot).is_some_and(|c| c.peer == peer);
            if !same_peer {
                return self.error(tuple, msg, ErrorCode::BAD_REQUEST, Some(&auth));
            }
        }
        if a.channel_by_peer.get(&peer).is_some_and(|n| *n != number) {
            return self.error(tuple, msg, ErrorCode::BAD_REQUEST, Some(&auth));
        }
        if existing.is_none() && a.channels.len() >= self.cfg.max_channels {
            return self.error(tuple, msg, ErrorCode::INSUFFICIENT_CAPACITY, Some(&auth));
        }
        let perm_until = now + self.cfg.permission_lifetime;
        let expires = now + self.cfg.channel_lifetime;
        let slot = match existing {
            Some(slot) => {
                if let Some(ch) = self.channels.get_mut(slot) {
                    ch.expires = expires;
                    ch.cooling_until = None;
                    ch.policy_epoch = self.policy_epoch;
                }
                slot
            }
            None => {
                let ch = Channel {
                    alloc: id,
                    tuple,
                    number,
                    peer,
                    relay,
                    expires,
                    permission_expires: perm_until,
                    cooling_until: None,
                    policy_epoch: self.policy_epoch,
                };
                let slot = self.channels.insert(ch);
                if let Some(a) = self.allocs.get_mut(id) {
                    a.channels.insert(number, slot);
                    a.channel_by_peer.insert(peer, number);
                }
                slot
            }
        };
        self.channel_by_tuple_and_number.insert((tuple, number), slot);
        self.channel_by_relay_and_peer.insert((relay, peer), slot);
        self.refresh_permission(id, peer.ip(), perm_until);
        self.timers.push(expires, TimerKind::Channel(id, number));
        self.reply(tuple, msg, Class::Success, Some(&auth), |_| {});
    }

    fn channel_timer(&mut self, now: Instant, id: AllocId, number: u16) {
        let Some(a) = self.allocs.get(id) else { return };
        let Some(&slot) = a.channels.get(&number) else { return };
        let Some(ch) = self.channels.get(slot).cloned() else { return };
        match ch.cooling_until {
            Some(until) if until <= now => {
                // Cool-down over: the number and the peer are free again.
                self.channels.remove(slot);
                if let Some(a) = self.allocs.get_mut(id) {
                    a.channels.remove(&number);
                    a.channel_by_peer.remove(&ch.peer);
                }
            }
            None if ch.expires <= now => {
                let until = now + CHANNEL_COOLDOWN;
                if let Some(c) = self.channels.get_mut(slot) {
                    c.cooling_until = Some(until);
                }
                self.channel_by_tuple_and_number.remove(&(ch.tuple, number));
                self.channel_by_relay_and_peer.remove(&(ch.relay, ch.peer));
                self.timers.push(until, TimerKind::Channel(id, number));
            }
            _ => {}
        }
    }

    fn delete_allocation(&mut self, id: AllocId, reason: DeleteReason, host: &mut dyn RelayHost) {
        let Some(a) = self.allocs.remove(id) else { return };
        self.alloc_by_tuple.remove(&a.tuple);
        for r in &a.relays {
            self.alloc_by_relay.remove(r);
            host.close_relay(*r);
            self.ports.release(r.port());
        }
        for (&number, &slot) in &a.channels {
            if let Some(ch) = self.channels.remove(slot) {
                self.channel_by_tuple_and_number.remove(&(ch.tuple, number));
                self.channel_by_relay_and_peer.remove(&(ch.relay, ch.peer));
            }
        }
        host.release_quota(&a.quota_user);
        tracing::info!(target: "relay", tuple = %a.tuple, id = id.as_u64(), ?reason, "allocation deleted");
        self.push_event(Event::AllocationDeleted { id, tuple: a.tuple, reason });
    }
}

#[cfg(test)]
mod tests;
