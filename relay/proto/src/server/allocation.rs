//! Allocations, permissions and channels (RFC 8656 §2.2, §9, §12) and the lifetimes that
//! govern them.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use super::limits::TokenBucket;
use crate::stun::TransactionId;
use crate::types::FiveTuple;

/// RFC 8656 §12: after a channel binding expires, neither its number nor its peer may be bound to
/// anything else for this long (so that stale packets in flight cannot be misdelivered).
pub const CHANNEL_COOLDOWN: Duration = Duration::from_secs(300);

/// RFC 8656 §7.2: how long an EVEN-PORT R=1 reservation of the next port is held.
pub const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

/// A handle to an allocation: slab index plus generation, so a stale handle (in a timer, or in
/// an index) never names a newer allocation that reused the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl AllocId {
    /// A number unique among the allocations alive at once, for logs and the admin API.
    pub fn as_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
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
    /// Channel number → slot in the server's channel slab.
    pub(crate) channels: FxHashMap<u16, u32>,
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

/// A slab of allocations with generation-checked handles.
#[derive(Debug, Default)]
pub(crate) struct Slab {
    slots: Vec<(u32, Option<Allocation>)>,
    free: Vec<u32>,
    len: usize,
}

impl Slab {
    pub(crate) fn next_id(&self) -> AllocId {
        match self.free.last() {
            Some(&i) => AllocId { index: i, generation: self.slots[i as usize].0 },
            None => AllocId { index: self.slots.len() as u32, generation: 0 },
        }
    }

    /// Inserts an allocation whose `id` was taken from [`Slab::next_id`].
    pub(crate) fn insert(&mut self, alloc: Allocation) {
        let id = alloc.id;
        if self.free.last() == Some(&id.index) {
            self.free.pop();
            self.slots[id.index as usize].1 = Some(alloc);
        } else {
            debug_assert_eq!(id.index as usize, self.slots.len());
            self.slots.push((id.generation, Some(alloc)));
        }
        self.len += 1;
    }

    pub(crate) fn get(&self, id: AllocId) -> Option<&Allocation> {
        match self.slots.get(id.index as usize) {
            Some((g, Some(a))) if *g == id.generation => Some(a),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, id: AllocId) -> Option<&mut Allocation> {
        match self.slots.get_mut(id.index as usize) {
            Some((g, Some(a))) if *g == id.generation => Some(a),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, id: AllocId) -> Option<Allocation> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.0 != id.generation || slot.1.is_none() {
            return None;
        }
        let a = slot.1.take();
        slot.0 = slot.0.wrapping_add(1);
        self.free.push(id.index);
        self.len -= 1;
        a
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Allocation> {
        self.slots.iter().filter_map(|(_, a)| a.as_ref())
    }
}
