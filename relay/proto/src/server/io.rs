//! What crosses the core's boundary: the host the shell lends it, and the outputs and events it
//! hands back.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use super::allocation::AllocId;
use crate::policy::DenyReason;
use crate::types::FiveTuple;

/// Options for a relay socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayOptions {
    /// Set the DF bit on datagrams to peers (DONT-FRAGMENT).
    pub dont_fragment: bool,
}

/// Why a relay socket could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayOpenError {
    /// The address is taken (by another process, or a reservation).
    InUse,
    /// Any other failure (descriptors exhausted, …).
    Other,
}

/// Why a quota refused an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaError {
    /// `user-quota`.
    User,
    /// `total-quota`.
    Total,
}

/// What the core needs from the shell: relay sockets, cross-worker reservations and quotas.
pub trait RelayHost {
    /// Opens a relay socket bound to `addr`.
    fn open_relay(&mut self, addr: SocketAddr, opts: RelayOptions) -> Result<(), RelayOpenError>;
    /// Closes the relay socket bound to `addr`.
    fn close_relay(&mut self, addr: SocketAddr);
    /// Binds `addr` now and holds it as an EVEN-PORT reservation under `token` until `expires`,
    /// so no other process can take the port before the claim, and a request carrying the
    /// token reaches it whichever worker receives it. `InUse` when the port is taken.
    fn reserve(
        &mut self,
        token: u64,
        addr: SocketAddr,
        expires: Instant,
        opts: RelayOptions,
    ) -> Result<(), RelayOpenError>;
    /// Claims a reservation made by any worker and opens its held socket as a relay. `None` if
    /// the token is unknown or expired.
    fn claim_reservation(&mut self, token: u64, now: Instant, opts: RelayOptions) -> Option<SocketAddr>;
    /// Withdraws an unclaimed reservation.
    fn release_reservation(&mut self, token: u64);
    /// Counts one more allocation against `user` and the total.
    fn acquire_quota(&mut self, _user: &str) -> Result<(), QuotaError> {
        Ok(())
    }
    /// Gives back what [`RelayHost::acquire_quota`] took.
    fn release_quota(&mut self, _user: &str) {}
}

/// A control message for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The client.
    pub to: FiveTuple,
    /// The encoded STUN message.
    pub data: Vec<u8>,
}

/// Relay `packet[payload]` from the relay address `relay` to `peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The allocation's relay address (the socket to send from).
    pub relay: SocketAddr,
    /// The peer.
    pub peer: SocketAddr,
    /// Where the application data is in the client's packet.
    pub payload: Range<usize>,
}

/// What the shell does after [`Server::handle_client`](crate::server::Server::handle_client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// Nothing beyond draining [`Server::poll_transmit`](crate::server::Server::poll_transmit).
    Done,
    /// Relay data to a peer.
    Forward(Forward),
}

/// Send `buf[range]` to the client `to` (after [`Server::handle_peer`](crate::server::Server::handle_peer)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToClient {
    /// The client.
    pub to: FiveTuple,
    /// The ChannelData or Data indication message in the caller's buffer.
    pub range: Range<usize>,
}

/// Why an allocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// Its lifetime ran out.
    Expired,
    /// Refresh with LIFETIME 0.
    Refreshed,
    /// The client's TCP/TLS connection closed.
    ConnectionClosed,
    /// An operator ended it.
    Killed,
}

/// Things the shell may want to log, count or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An allocation was created.
    AllocationCreated {
        /// Its id.
        id: AllocId,
        /// The client's 5-tuple.
        tuple: FiveTuple,
        /// Local relay addresses.
        relays: Vec<SocketAddr>,
        /// The authenticated username.
        username: String,
    },
    /// An allocation ended.
    AllocationDeleted {
        /// Its id.
        id: AllocId,
        /// The client's 5-tuple.
        tuple: FiveTuple,
        /// Why.
        reason: DeleteReason,
    },
    /// The peer policy refused a peer.
    PeerDenied {
        /// The client.
        tuple: FiveTuple,
        /// The refused peer.
        peer: SocketAddr,
        /// Why.
        reason: DenyReason,
    },
}

/// Counters owned by one worker's core, read by the metrics exporter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Allocations created, by client transport (udp, tcp, tls).
    pub allocations_created: [u64; 3],
    /// Datagrams relayed client → peer, and their payload bytes.
    pub packets_to_peer: u64,
    /// See [`Stats::packets_to_peer`].
    pub bytes_to_peer: u64,
    /// Datagrams relayed peer → client, and their payload bytes.
    pub packets_from_peer: u64,
    /// See [`Stats::packets_from_peer`].
    pub bytes_from_peer: u64,
    /// 401s to requests without credentials.
    pub auth_challenges: u64,
    /// 401s to bad credentials, by [`UnauthorizedReason::index`].
    pub auth_failures: [u64; 5],
    /// 438s.
    pub stale_nonces: u64,
    /// Peer-policy refusals, by [`DenyReason::index`].
    pub peer_denied: [u64; 9],
    /// 486s.
    pub quota_rejections: u64,
    /// 508s for want of a port.
    pub capacity_rejections: u64,
    /// Packets that were neither STUN nor valid ChannelData, or failed FINGERPRINT.
    pub malformed: u64,
    /// Data dropped for want of an allocation, channel or permission.
    pub dropped_no_route: u64,
    /// Binding requests answered.
    pub binding_requests: u64,
    /// Events dropped because the shell did not drain them.
    pub events_dropped: u64,
    /// 401/438 answers not sent because their source was over its budget.
    pub challenges_suppressed: u64,
    /// Datagrams dropped by `max-bps` or `bps-capacity`.
    pub dropped_bandwidth: u64,
    /// 508s to new allocations while draining ([`Server::set_draining`](crate::server::Server::set_draining)).
    pub drain_rejections: u64,
}

/// One allocation, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Its id.
    pub id: AllocId,
    /// The client's 5-tuple.
    pub tuple: FiveTuple,
    /// The authenticated username.
    pub username: String,
    /// Local relay addresses.
    pub relays: Vec<SocketAddr>,
    /// Relay addresses as the client was told them.
    pub public_relays: Vec<SocketAddr>,
    /// Time since creation.
    pub age: Duration,
    /// Time until expiry.
    pub expires_in: Duration,
    /// Payload bytes relayed client → peer.
    pub bytes_to_peer: u64,
    /// Payload bytes relayed peer → client.
    pub bytes_from_peer: u64,
    /// Datagrams relayed client → peer.
    pub packets_to_peer: u64,
    /// Datagrams relayed peer → client.
    pub packets_from_peer: u64,
    /// Installed permissions.
    pub permissions: usize,
    /// Bound (or cooling) channels.
    pub channels: usize,
}
