//! The UDP data path: datagrams from clients on the listening sockets, and from peers on the
//! relay sockets.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::Token;
use relay_proto::server::{ClientAction, PEER_HEADROOM, ToClient};
use relay_proto::types::{FiveTuple, Transport};

use super::{MAX_DATAGRAM, READ_BUDGET, Worker};
use crate::host::{Host, RelaySlots};
use crate::sockets::UDP_BASE;

impl Worker {
    pub(super) fn udp_readable(&mut self, i: usize, now: Instant, unix_now: u64) {
        let Some((local, _)) = self.udp.get(i) else { return };
        let local = *local;
        for _ in 0..READ_BUDGET {
            let (n, from) = match self.udp[i].1.recv_from(&mut self.buf[..MAX_DATAGRAM]) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors surface here on Linux; nothing to do but go on.
                    tracing::trace!(target: "wire", error = %e, "udp recv");
                    continue;
                }
            };
            let tuple = FiveTuple::udp(from, local);
            let mut host = Host { registry: self.poll.registry(), relays: &mut self.relays, shared: &self.shared };
            let action = self.server.handle_client(now, unix_now, tuple, &self.buf[..n], &mut host);
            if let ClientAction::Forward(f) = action {
                send_to_peer(&self.relays, f.relay, f.peer, &self.buf[f.payload]);
            }
            self.flush();
        }
        self.pending.push(Token(UDP_BASE + i));
    }

    pub(super) fn relay_readable(&mut self, port: u16, now: Instant) {
        for _ in 0..READ_BUDGET {
            let Some((sock, local)) = self.relays.get(port) else { return };
            let local = *local;
            let payload_start = PEER_HEADROOM;
            let (n, peer) = match sock.recv_from(&mut self.buf[payload_start..payload_start + MAX_DATAGRAM]) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => continue,
            };
            let Some(ToClient { to, range }) =
                self.server.handle_peer(now, local, peer, &mut self.buf, payload_start..payload_start + n)
            else {
                continue;
            };
            let msg = &self.buf[range];
            match to.transport {
                Transport::Udp => {
                    if let Some((_, s)) = self.udp.iter().find(|(a, _)| *a == to.server) {
                        let _ = s.send_to(msg, to.client);
                    }
                }
                Transport::Tcp | Transport::Tls => {
                    if let Some(&idx) = self.conn_by_tuple.get(&to) {
                        let data = msg.to_vec();
                        self.conn_send(idx, &data, false);
                    }
                }
            }
        }
        self.pending.push(Token(usize::from(port)));
    }
}

pub(super) fn send_to_peer(relays: &RelaySlots, relay: SocketAddr, peer: SocketAddr, payload: &[u8]) {
    if let Some((sock, _)) = relays.get(relay.port()) {
        // UDP semantics: a full socket buffer drops the datagram.
        let _ = sock.send_to(payload, peer);
    }
}
