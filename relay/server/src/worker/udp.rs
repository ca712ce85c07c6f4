//! The UDP data path: datagrams from clients on the listening sockets, from peers on the relay
//! sockets, and from other workers through the short-circuit hand-off.
//!
//! Reads are batched (`recvmmsg`) into the worker's receive slots, each with the core's
//! headroom and tailroom around the datagram; the core's answer is queued as a send that points
//! into the slot (no copy), and the queue goes out with `sendmmsg` (UDP GSO for runs to one
//! destination) when the slots run low, after a hand-off batch, and at the end of every turn of
//! the event loop. A Forward whose peer is one of this server's relay addresses is delivered to
//! that allocation without leaving the process ([`handoff`](super::handoff)).
//!
//! Fairness: a readiness event reads at most [`READ_BUDGET`] datagrams; a socket that was not
//! drained goes back on the pending list. A `recvmmsg` that returns fewer datagrams than asked
//! means the socket is empty, which saves the extra read that would only say `EAGAIN`.

use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::time::Instant;

use mio::Token;
use relay_proto::server::{ClientAction, PEER_HEADROOM, ToClient};
use relay_proto::types::{FiveTuple, Transport};

use super::handoff::{Endpoint, Handoff, Route};
use super::mmsg::{self, Datagram, SLOTS, Slots};
use super::{READ_BUDGET, Worker};
use crate::host::{Host, RelaySlots};
use crate::sockets::{UDP_BASE, WAKER};

/// Below this many free slots the queued sends go out before the next read.
const MIN_FREE: usize = 8;
/// Handed-over datagrams kept for one flush.
const HELD: usize = 64;

/// Which socket a queued datagram leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// Listening socket `i` (to a client).
    Listener(usize),
    /// The relay socket on this port (to a peer).
    Relay(u16),
}

impl Via {
    fn key(self) -> u64 {
        match self {
            Via::Listener(i) => (1 << 16) | (i as u64 & 0xFFFF),
            Via::Relay(p) => u64::from(p),
        }
    }
}

/// Where a queued datagram's bytes are.
#[derive(Debug, Clone, Copy)]
enum Src {
    Slot(usize),
    Held(usize),
}

struct Out {
    /// Sort key: socket, then destination, then queue order (so each destination keeps its order).
    key: u64,
    via: Via,
    src: Src,
    range: Range<usize>,
    to: SocketAddr,
}

/// Counters of the shell's data path (the core counts the rest).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DataPathStats {
    /// Datagrams delivered to an allocation of this worker without the kernel.
    pub(crate) short_circuited: u64,
    /// Datagrams handed to another worker.
    pub(crate) handed_off: u64,
    /// Hand-offs dropped on a full queue.
    pub(crate) handoff_dropped: u64,
    /// Short-circuited datagrams whose destination relay was gone.
    pub(crate) no_relay: u64,
    /// Datagrams the kernel did not take (full socket buffer, unreachable).
    pub(crate) send_dropped: u64,
}

/// The worker's UDP batching state.
pub(crate) struct UdpIo {
    slots: Slots,
    tx: Vec<Out>,
    held: Vec<Handoff>,
    gso: bool,
    pub(crate) handoff: Endpoint,
    pub(crate) stats: DataPathStats,
}

impl UdpIo {
    pub(crate) fn new(handoff: Endpoint, probe: Option<&mio::net::UdpSocket>) -> UdpIo {
        UdpIo {
            slots: Slots::new(),
            tx: Vec::with_capacity(SLOTS + HELD),
            held: Vec::with_capacity(HELD),
            gso: probe.is_some_and(|s| mmsg::gso_supported(s.as_raw_fd())),
            handoff,
            stats: DataPathStats::default(),
        }
    }

    fn bytes(&self, src: Src) -> &[u8] {
        match src {
            Src::Slot(s) => self.slots.slot(s),
            Src::Held(h) => &self.held[h].buf,
        }
    }

    fn push(&mut self, via: Via, src: Src, range: Range<usize>, to: SocketAddr) {
        let seq = self.tx.len() as u64 & 0x7FFF;
        let key = (via.key() << 47) | (u64::from(dest_hash(to)) << 15) | seq;
        self.tx.push(Out { key, via, src, range, to });
    }
}

/// 32 bits of a destination, to group a flush by destination.
fn dest_hash(to: SocketAddr) -> u32 {
    let ip = match to {
        SocketAddr::V4(v4) => u32::from(*v4.ip()),
        SocketAddr::V6(v6) => {
            let o = v6.ip().octets();
            u32::from_be_bytes([o[12], o[13], o[14], o[15]]) ^ u32::from_be_bytes([o[8], o[9], o[10], o[11]])
        }
    };
    ip.rotate_left(16) ^ u32::from(to.port())
}

impl Worker {
    pub(super) fn udp_readable(&mut self, i: usize, now: Instant, unix_now: u64) {
        let Some((local, sock)) = self.udp.get(i) else { return };
        let (local, fd) = (*local, sock.as_raw_fd());
        let mut budget = READ_BUDGET;
        while budget > 0 {
            if self.io.slots.free() < MIN_FREE {
                self.flush_tx();
            }
            let asked = budget.min(self.io.slots.free());
            let got = match self.io.slots.recv(fd, asked) {
                Ok(r) => {
                    let got = r.len();
                    for s in r {
                        self.client_datagram(s, local, now, unix_now);
                    }
                    got
                }
                Err(e) => {
                    // ICMP errors surface here on Linux; nothing to do but go on.
                    tracing::trace!(target: "wire", error = %e, "udp recv");
                    budget -= 1;
                    continue;
                }
            };
            self.flush();
            if got < asked {
                return;
            }
            budget -= got;
        }
        self.pending.push(Token(UDP_BASE + i));
    }

    fn client_datagram(&mut self, s: usize, local: SocketAddr, now: Instant, unix_now: u64) {
        let (data, from) = self.io.slots.datagram(s);
        let Some(from) = from else { return };
        let tuple = FiveTuple::udp(from, local);
        let mut host = Host { registry: self.poll.registry(), relays: &mut self.relays, shared: &self.shared };
        let action = self.server.handle_client(now, unix_now, tuple, data, &mut host);
        if let ClientAction::Forward(f) = action {
            let payload = PEER_HEADROOM + f.payload.start..PEER_HEADROOM + f.payload.end;
            self.forward(s, payload, f.relay, f.peer, now);
        }
    }

    /// Sends `slot[payload]` from the relay address `relay` to `peer`: through the kernel, or
    /// straight to the allocation when `peer` is one of ours.
    fn forward(&mut self, s: usize, payload: Range<usize>, relay: SocketAddr, peer: SocketAddr, now: Instant) {
        match self.io.handoff.route(self.server.policy(), relay, peer) {
            Route::Kernel => self.io.push(Via::Relay(relay.port()), Src::Slot(s), payload, peer),
            Route::Local { dst, src } => {
                if self.relays.get(dst.port()).is_none_or(|(_, a)| *a != dst) {
                    self.io.stats.no_relay += 1;
                    return;
                }
                self.io.stats.short_circuited += 1;
                let buf = self.io.slots.slot_mut(s);
                if let Some(t) = self.server.handle_peer(now, dst, src, buf, payload) {
                    self.deliver(Src::Slot(s), t);
                }
            }
            Route::Remote { to, dst, src } => {
                let payload = &self.io.slots.slot(s)[payload];
                if self.io.handoff.send(to, dst, src, payload) {
                    self.io.stats.handed_off += 1;
                } else {
                    self.io.stats.handoff_dropped += 1;
                }
            }
        }
    }

    pub(super) fn relay_readable(&mut self, port: u16, now: Instant) {
        let mut budget = READ_BUDGET;
        while budget > 0 {
            let Some((sock, local)) = self.relays.get(port) else { return };
            let (fd, local) = (sock.as_raw_fd(), *local);
            if self.io.slots.free() < MIN_FREE {
                self.flush_tx();
            }
            let asked = budget.min(self.io.slots.free());
            let Ok(r) = self.io.slots.recv(fd, asked) else {
                budget -= 1;
                continue;
            };
            let got = r.len();
            for s in r {
                let (len, from) = (self.io.slots.len(s), self.io.slots.datagram(s).1);
                let Some(peer) = from else { continue };
                let buf = self.io.slots.slot_mut(s);
                if let Some(t) = self.server.handle_peer(now, local, peer, buf, PEER_HEADROOM..PEER_HEADROOM + len) {
                    self.deliver(Src::Slot(s), t);
                }
            }
            if got < asked {
                return;
            }
            budget -= got;
        }
        self.pending.push(Token(usize::from(port)));
    }

    /// Datagrams other workers handed over (the waker rang).
    pub(super) fn handoff_ready(&mut self, now: Instant) {
        let mut n = 0;
        while n < READ_BUDGET {
            if self.io.held.len() >= HELD {
                self.flush_tx();
            }
            let Some(h) = self.io.handoff.recv() else { break };
            n += 1;
            let idx = self.io.held.len();
            self.io.held.push(h);
            let h = &mut self.io.held[idx];
            if self.relays.get(h.dst.port()).is_none_or(|(_, a)| *a != h.dst) {
                self.io.stats.no_relay += 1;
                continue;
            }
            let payload = h.payload();
            if let Some(t) = self.server.handle_peer(now, h.dst, h.src, &mut h.buf, payload) {
                self.deliver(Src::Held(idx), t);
            }
        }
        if n == READ_BUDGET && self.io.handoff.has_pending() {
            self.pending.push(WAKER);
        }
        self.flush_tx();
    }

    /// Queues (UDP) or writes (TCP/TLS) a framed message for a client.
    fn deliver(&mut self, src: Src, t: ToClient) {
        let ToClient { to, range } = t;
        match to.transport {
            Transport::Udp => {
                if let Some(i) = self.udp.iter().position(|(a, _)| *a == to.server) {
                    self.io.push(Via::Listener(i), src, range, to.client);
                }
            }
            Transport::Tcp | Transport::Tls => {
                if let Some(&idx) = self.conn_by_tuple.get(&to) {
                    // Lend the bytes out of `self.io` for the call; nothing is copied but the
                    // message into the connection's buffer.
                    match src {
                        Src::Slot(s) => {
                            let slots = std::mem::take(&mut self.io.slots);
                            self.conn_send(idx, &slots.slot(s)[range], false);
                            self.io.slots = slots;
                        }
                        Src::Held(h) => {
                            let buf = std::mem::take(&mut self.io.held[h].buf);
                            self.conn_send(idx, &buf[range], false);
                            self.io.held[h].buf = buf;
                        }
                    }
                }
            }
        }
    }

    /// Sends everything queued, one `sendmmsg` run per socket, then frees the slots and rings
    /// the workers that were handed datagrams.
    pub(super) fn flush_tx(&mut self) {
        if !self.io.tx.is_empty() {
            let mut tx = std::mem::take(&mut self.io.tx);
            tx.sort_unstable_by_key(|o| o.key);
            let mut batch: [Datagram<'_>; SLOTS] = [(&[], SocketAddr::from(([0, 0, 0, 0], 0))); SLOTS];
            let mut at = 0;
            let mut dropped = 0;
            let mut gso = self.io.gso;
            while at < tx.len() {
                let via = tx[at].via;
                let mut n = 0;
                while at < tx.len() && tx[at].via == via && n < SLOTS {
                    let o = &tx[at];
                    batch[n] = (self.io.bytes(o.src).get(o.range.clone()).unwrap_or(&[]), o.to);
                    n += 1;
                    at += 1;
                }
                let fd = match via {
                    Via::Listener(i) => self.udp.get(i).map(|(_, s)| s.as_raw_fd()),
                    Via::Relay(p) => self.relays.get(p).map(|(s, _)| s.as_raw_fd()),
                };
                let sent = fd.map_or(0, |fd| mmsg::send_all(fd, &batch[..n], &mut gso));
                dropped += (n - sent) as u64;
            }
            self.io.stats.send_dropped += dropped;
            self.io.gso = gso;
            tx.clear();
            self.io.tx = tx;
        }
        self.io.slots.reset();
        for h in self.io.held.drain(..) {
            self.io.handoff.recycle(h);
        }
        self.io.handoff.wake();
    }
}

/// Sends a datagram from a relay socket right away (the TCP/TLS client path).
pub(super) fn send_to_peer(relays: &RelaySlots, relay: SocketAddr, peer: SocketAddr, payload: &[u8]) {
    if let Some((sock, _)) = relays.get(relay.port()) {
        // UDP semantics: a full socket buffer drops the datagram.
        let _ = sock.send_to(payload, peer);
    }
}
