//! The same-server relay-to-relay short circuit: when a client sends to a peer that is one of
//! this server's own relay addresses (two browsers on the same relay), the datagram does not go
//! out through one relay socket and back in through another. It is delivered to the destination
//! allocation as a peer datagram, through [`Server::handle_peer`](relay_proto::server::Server::handle_peer),
//! so the destination's permissions and channels apply exactly as if it had crossed the network;
//! its source is the sending allocation's relay address as peers see it (`external-ip` mapped).
//!
//! Which worker owns a relay port: the port's slice of the range (`plan::split_ports`), except
//! for EVEN-PORT reservations claimed by another worker, which the claiming worker records in
//! the shared owner table when it sees the allocation created. In the owning worker the call is
//! direct; to another worker the datagram is copied into a recycled buffer and handed over on a
//! bounded lock-free queue, and the destination's `mio::Waker` rings once per batch, not per
//! datagram, and only when that worker may be asleep in `poll` (a busy one picks the queue up
//! when its `poll` returns). A full queue drops the datagram and counts it, as a full socket
//! buffer would.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering, fence};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::Waker;
use relay_proto::policy::PeerPolicy;
use relay_proto::server::{PEER_HEADROOM, PEER_TAILROOM, RelayIp};
use relay_proto::types::FiveTuple;
use rustc_hash::FxHashMap;

/// Datagrams waiting for one worker before more are dropped.
const QUEUE: usize = 8192;
/// Owner-table value of a port outside every slice.
const NOBODY: u8 = u8::MAX;

/// A datagram on its way to the worker that owns its destination relay.
pub(crate) struct Handoff {
    /// The destination relay address, as bound locally.
    pub(crate) dst: SocketAddr,
    /// The sending allocation's relay address, as its peers see it.
    pub(crate) src: SocketAddr,
    /// `PEER_HEADROOM` bytes, the payload, `PEER_TAILROOM` bytes.
    pub(crate) buf: Vec<u8>,
    pub(crate) len: usize,
    from: usize,
}

impl Handoff {
    /// The payload's place in `buf`, as [`Server::handle_peer`](relay_proto::server::Server::handle_peer) wants it.
    pub(crate) fn payload(&self) -> std::ops::Range<usize> {
        PEER_HEADROOM..PEER_HEADROOM + self.len
    }
}

/// What every worker shares.
struct Mesh {
    inboxes: Vec<Sender<Handoff>>,
    recycle: Vec<Sender<Vec<u8>>>,
    wakers: Vec<Arc<Waker>>,
    /// Whether each worker may be asleep in `poll` (then it needs its waker rung).
    sleeping: Vec<AtomicBool>,
    /// Port → owning worker.
    owner: Box<[AtomicU8]>,
    /// Port → the worker whose slice holds it.
    slice_owner: Box<[u8]>,
    relay_ips: Vec<RelayIp>,
    dropped: AtomicU64,
}

/// Where a datagram for `peer` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Not one of ours: out through the relay socket.
    Kernel,
    /// An allocation of this worker: call `handle_peer` directly.
    Local { dst: SocketAddr, src: SocketAddr },
    /// An allocation of worker `to`.
    Remote { to: usize, dst: SocketAddr, src: SocketAddr },
}

/// One worker's end of the mesh.
pub(crate) struct Endpoint {
    id: usize,
    mesh: Arc<Mesh>,
    inbox: Receiver<Handoff>,
    spare: Receiver<Vec<u8>>,
    to_wake: u64,
    /// Allocations of this worker on ports of another worker's slice.
    foreign: FxHashMap<FiveTuple, Vec<u16>>,
}

/// Builds the endpoints of `wakers.len()` workers whose port slices are `slices`.
pub(crate) fn mesh(slices: &[RangeInclusive<u16>], relay_ips: Vec<RelayIp>, wakers: Vec<Arc<Waker>>) -> Vec<Endpoint> {
    let n = wakers.len();
    let mut slice_owner = vec![NOBODY; 1 << 16].into_boxed_slice();
    for (w, s) in slices.iter().enumerate().take(usize::from(NOBODY)) {
        for p in s.clone() {
            slice_owner[usize::from(p)] = w as u8;
        }
    }
    let owner = slice_owner.iter().map(|&w| AtomicU8::new(w)).collect();
    let (mut inboxes, mut inbox_rx, mut recycle, mut spare_rx) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        inboxes.push(tx);
        inbox_rx.push(rx);
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        recycle.push(tx);
        spare_rx.push(rx);
    }
    let sleeping = (0..n).map(|_| AtomicBool::new(false)).collect();
    let mesh = Arc::new(Mesh {
        inboxes,
        recycle,
        wakers,
        sleeping,
        owner,
        slice_owner,
        relay_ips,
        dropped: AtomicU64::new(0),
    });
    inbox_rx
        .into_iter()
        .zip(spare_rx)
        .enumerate()
        .map(|(id, (inbox, spare))| Endpoint {
            id,
            mesh: mesh.clone(),
            inbox,
            spare,
            to_wake: 0,
            foreign: FxHashMap::default(),
        })
        .collect()
}

impl Endpoint {
    /// Where a Forward from the relay address `relay` to `peer` goes.
    #[inline]
    pub(crate) fn route(&self, policy: &PeerPolicy, relay: SocketAddr, peer: SocketAddr) -> Route {
        if !policy.is_own_relay_address(peer) {
            return Route::Kernel;
        }
        let ips = &self.mesh.relay_ips;
        // The peer address is what a client was told: map public → local for the lookup.
        let Some(local) =
            ips.iter().find(|r| r.public == peer.ip()).or_else(|| ips.iter().find(|r| r.local == peer.ip()))
        else {
            return Route::Kernel;
        };
        let dst = SocketAddr::new(local.local, peer.port());
        let src = SocketAddr::new(public_of(ips, relay.ip()), relay.port());
        match self.mesh.owner[usize::from(peer.port())].load(Ordering::Relaxed) {
            NOBODY => Route::Kernel,
            w if usize::from(w) == self.id => Route::Local { dst, src },
            w => Route::Remote { to: usize::from(w), dst, src },
        }
    }

    /// Queues a copy of `payload` for worker `to`. Returns `false` (and counts) when its queue
    /// is full.
    pub(crate) fn send(&mut self, to: usize, dst: SocketAddr, src: SocketAddr, payload: &[u8]) -> bool {
        let mut buf = self.spare.try_recv().unwrap_or_default();
        buf.clear();
        buf.resize(PEER_HEADROOM, 0);
        buf.extend_from_slice(payload);
        buf.resize(PEER_HEADROOM + payload.len() + PEER_TAILROOM, 0);
        let h = Handoff { dst, src, buf, len: payload.len(), from: self.id };
        let Some(inbox) = self.mesh.inboxes.get(to) else { return false };
        match inbox.try_send(h) {
            Ok(()) => {
                self.to_wake |= 1 << (to % 64);
                true
            }
            Err(TrySendError::Full(h) | TrySendError::Disconnected(h)) => {
                self.mesh.dropped.fetch_add(1, Ordering::Relaxed);
                let _ = self.mesh.recycle[self.id].try_send(h.buf);
                false
            }
        }
    }

    /// Rings the workers that were handed datagrams since the last call, if they may be asleep
    /// in `poll`; a busy worker finds them when its `poll` returns, without a system call.
    pub(crate) fn wake(&mut self) {
        if self.to_wake == 0 {
            return;
        }
        // Pairs with the fence in `may_sleep`: either that worker sees our datagrams in its
        // queue, or we see it asleep.
        fence(Ordering::SeqCst);
        while self.to_wake != 0 {
            let w = self.to_wake.trailing_zeros() as usize;
            self.to_wake &= self.to_wake - 1;
            if self.mesh.sleeping.get(w).is_some_and(|s| s.load(Ordering::SeqCst))
                && let Some(waker) = self.mesh.wakers.get(w)
            {
                let _ = waker.wake();
            }
        }
    }

    /// Called before `poll`: marks this worker as possibly asleep. Returns `true` when
    /// datagrams are already waiting (then `poll` must not block).
    pub(crate) fn may_sleep(&self) -> bool {
        self.mesh.sleeping[self.id].store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.has_pending()
    }

    /// Called after `poll`: this worker is awake. Returns `true` when datagrams are waiting.
    pub(crate) fn awake(&self) -> bool {
        self.mesh.sleeping[self.id].store(false, Ordering::Relaxed);
        self.has_pending()
    }

    /// The next datagram handed to this worker.
    pub(crate) fn recv(&self) -> Option<Handoff> {
        self.inbox.try_recv().ok()
    }

    /// Whether datagrams are waiting.
    pub(crate) fn has_pending(&self) -> bool {
        !self.inbox.is_empty()
    }

    /// Gives a delivered datagram's buffer back to the worker that filled it.
    pub(crate) fn recycle(&self, h: Handoff) {
        if let Some(r) = self.mesh.recycle.get(h.from) {
            let _ = r.try_send(h.buf);
        }
    }

    /// Datagrams dropped on full queues, all workers together.
    #[allow(dead_code)]
    pub(crate) fn dropped(&self) -> u64 {
        self.mesh.dropped.load(Ordering::Relaxed)
    }

    /// Records that this worker now owns `relays` (an allocation made from a claimed EVEN-PORT
    /// reservation may sit on another worker's port).
    pub(crate) fn allocation_created(&mut self, tuple: FiveTuple, relays: &[SocketAddr]) {
        let mut moved = Vec::new();
        for r in relays {
            let p = usize::from(r.port());
            if usize::from(self.mesh.slice_owner[p]) != self.id {
                self.mesh.owner[p].store(self.id as u8, Ordering::Relaxed);
                moved.push(r.port());
            }
        }
        if !moved.is_empty() {
            self.foreign.insert(tuple, moved);
        }
    }

    /// Gives the ports of a deleted allocation back to their slice's worker.
    pub(crate) fn allocation_deleted(&mut self, tuple: FiveTuple) {
        if let Some(ports) = self.foreign.remove(&tuple) {
            for p in ports {
                let p = usize::from(p);
                self.mesh.owner[p].store(self.mesh.slice_owner[p], Ordering::Relaxed);
            }
        }
    }
}

fn public_of(ips: &[RelayIp], local: IpAddr) -> IpAddr {
    ips.iter().find(|r| r.local == local).map_or(local, |r| r.public)
}

#[cfg(test)]
mod tests {
    use relay_proto::policy::PeerPolicyConfig;

    use super::*;

    fn policy(own: &[&str]) -> PeerPolicy {
        PeerPolicy::new(PeerPolicyConfig {
            allow_loopback: true,
            own_ips: own.iter().map(|s| s.parse().unwrap()).collect(),
            relay_ports: Some(50000..=50099),
            ..PeerPolicyConfig::default()
        })
    }

    fn endpoints(n: usize, ips: Vec<RelayIp>) -> Vec<Endpoint> {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let slices = crate::plan::split_ports(50000, 50099, n).unwrap();
        mesh(&slices, ips, vec![waker; n])
    }

    #[test]
    fn routes_by_slice_and_maps_external_addresses() {
        let ips = vec![RelayIp { local: "10.0.0.5".parse().unwrap(), public: "203.0.113.5".parse().unwrap() }];
        let e = endpoints(2, ips);
        let p = policy(&["10.0.0.5", "203.0.113.5"]);
        let relay: SocketAddr = "10.0.0.5:50001".parse().unwrap();
        let src: SocketAddr = "203.0.113.5:50001".parse().unwrap();
        assert_eq!(
            e[0].route(&p, relay, "203.0.113.5:50010".parse().unwrap()),
            Route::Local { dst: "10.0.0.5:50010".parse().unwrap(), src }
        );
        assert_eq!(
            e[0].route(&p, relay, "203.0.113.5:50090".parse().unwrap()),
            Route::Remote { to: 1, dst: "10.0.0.5:50090".parse().unwrap(), src }
        );
        assert_eq!(e[0].route(&p, relay, "203.0.113.5:40000".parse().unwrap()), Route::Kernel, "outside the range");
        assert_eq!(e[0].route(&p, relay, "198.51.100.7:50010".parse().unwrap()), Route::Kernel, "not ours");
    }

    #[test]
    fn claimed_reservations_move_the_owner_and_back() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut e = endpoints(2, vec![RelayIp { local: ip, public: ip }]);
        let p = policy(&["127.0.0.1"]);
        let relay = SocketAddr::new(ip, 50001);
        let reserved = SocketAddr::new(ip, 50011);
        let id = FiveTuple::udp("127.0.0.1:4000".parse().unwrap(), "127.0.0.1:3478".parse().unwrap());
        e[1].allocation_created(id, &[reserved]);
        assert!(matches!(e[0].route(&p, relay, reserved), Route::Remote { to: 1, .. }));
        e[1].allocation_deleted(id);
        assert!(matches!(e[0].route(&p, relay, reserved), Route::Local { .. }));
    }

    #[test]
    fn handed_datagrams_arrive_with_headroom_and_full_queues_drop() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut e = endpoints(2, vec![RelayIp { local: ip, public: ip }]);
        let (dst, src) = (SocketAddr::new(ip, 50090), SocketAddr::new(ip, 50001));
        assert!(e[0].send(1, dst, src, b"hello"));
        let h = e[1].recv().unwrap();
        assert_eq!((h.dst, h.src, &h.buf[h.payload()]), (dst, src, &b"hello"[..]));
        assert_eq!(h.buf.len(), PEER_HEADROOM + 5 + PEER_TAILROOM);
        e[1].recycle(h);
        assert!(e[0].spare.try_recv().is_ok(), "the buffer came back");
        for _ in 0..QUEUE {
            assert!(e[0].send(1, dst, src, b"x"));
        }
        assert!(!e[0].send(1, dst, src, b"x"));
        assert_eq!(e[0].dropped(), 1);
        assert!(e[1].may_sleep(), "datagrams are waiting: do not block");
        e[0].wake();
        assert_eq!(e[0].to_wake, 0);
        assert!(e[1].awake());
    }
}
