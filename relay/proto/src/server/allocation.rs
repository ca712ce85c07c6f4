//! Allocations, permissions and channels (RFC 8656 §2.2, §9, §12) and the lifetimes that
//! govern them.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use super::limits::TokenBucket;
use super::slab::{Key, SlabKey};
use crate::stun::TransactionId;
use crate::types::FiveTuple;

/// RFC 8656 §12: after a channel binding expires, neither its number nor its peer may be bound to
/// anything else for this long (so that stale packets in flight cannot be misdelivered).
pub const CHANNEL_COOLDOWN: Duration = Duration::from_secs(300);

/// RFC 8656 §7.2: how long an EVEN-PORT R=1 reservation of the next port is held.
pub const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

/// A handle to an allocation: its slab key, so a stale handle (in a timer, an index or an
/// event) never names a newer allocation that reused the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocId(pub(crate) SlabKey);

impl Key for AllocId {
    fn from_slab(k: SlabKey) -> Self {
        AllocId(k)
    }
    fn slab(self) -> SlabKey {
        self.0
    }
}

/// A handle to a channel binding in the server's channel slab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ChannelKey(SlabKey);

impl Key for ChannelKey {
    fn from_slab(k: SlabKey) -> Self {
        ChannelKey(k)
    }
    fn slab(self) -> SlabKey {
        self.0
    }
}

impl AllocId {
    /// A number unique among the allocations alive at once, for logs and the admin API.
    pub fn as_u64(self) -> u64 {
        self.0.as_u64()
    }
}

/// One allocation: a 5-tuple's relayed transport address(es) and its permissions and channels.
#[derive(Debug)]
pub(crate) struct Allocation {
    pub(crate) id: AllocId,
    pub(crate) tuple: FiveTuple,
    /// The username that created it; requests with another get 441.
    pub(crate) username: String,
    /// The user that quotas count against (the REST username's user part).
    pub(crate) quota_user: String,
    /// Relay addresses as bound locally (up to one per family).
    pub(crate) relays: Vec<SocketAddr>,
    /// Relay addresses as reported to the client (after `external-ip` mapping).
    pub(crate) public_relays: Vec<SocketAddr>,
    pub(crate) created: Instant,
    pub(crate) expires: Instant,
    /// The original Allocate's transaction id and success response, for retransmissions.
    pub(crate) allocate_tid: TransactionId,
    pub(crate) allocate_response: Vec<u8>,
    pub(crate) permissions: FxHashMap<IpAddr, Instant>,
    /// Channel number → key in the server's channel slab.
    pub(crate) channels: FxHashMap<u16, ChannelKey>,
    pub(crate) channel_by_peer: FxHashMap<SocketAddr, u16>,
    pub(crate) bytes_to_peer: u64,
    pub(crate) bytes_from_peer: u64,
    pub(crate) packets_to_peer: u64,
    pub(crate) packets_from_peer: u64,
    /// `max-bps`, each direction.
    pub(crate) bandwidth_to_peer: TokenBucket,
    pub(crate) bandwidth_from_peer: TokenBucket,
}

impl Allocation {
    /// The relay address of `peer`'s family.
    pub(crate) fn relay_for(&self, peer: SocketAddr) -> Option<SocketAddr> {
        self.relays.iter().copied().find(|r| r.is_ipv4() == peer.is_ipv4())
    }

    pub(crate) fn has_family(&self, ip: IpAddr) -> bool {
        self.relays.iter().any(|r| r.is_ipv4() == ip.is_ipv4())
    }

    pub(crate) fn permission_expires(&self, ip: IpAddr) -> Option<Instant> {
        self.permissions.get(&ip).copied()
    }
}

/// A channel binding. Lives in a slab so both directions find it with one hash lookup.
#[derive(Debug, Clone)]
pub(crate) struct Channel {
    pub(crate) alloc: AllocId,
    pub(crate) tuple: FiveTuple,
    pub(crate) number: u16,
    pub(crate) peer: SocketAddr,
    pub(crate) relay: SocketAddr,
    pub(crate) expires: Instant,
    pub(crate) permission_expires: Instant,
    pub(crate) cooling_until: Option<Instant>,
    pub(crate) policy_epoch: u64,
}

impl Channel {
    pub(crate) fn is_usable(&self, now: Instant) -> bool {
        self.cooling_until.is_none() && self.expires > now && self.permission_expires > now
    }
}
