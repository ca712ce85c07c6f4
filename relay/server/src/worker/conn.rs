//! TCP client connections: accepting, framing the byte stream into STUN and ChannelData
//! messages, and writing back with a bounded queue.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Token};
use relay_proto::framing::{self, Frame};
use relay_proto::server::ClientAction;
use relay_proto::types::{FiveTuple, Transport};

use super::udp::send_to_peer;
use super::{READ_BUDGET, Worker};
use crate::host::Host;
use crate::sockets::{CONN_BASE, TCP_BASE};

/// Bytes a TCP connection may have queued towards its client before media is dropped.
const MAX_TCP_OUTBUF: usize = 256 * 1024;
/// How long the accept loop pauses when the process runs out of descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) tuple: FiveTuple,
    pub(super) inbuf: Vec<u8>,
    pub(super) out: Vec<u8>,
    pub(super) accepted: Instant,
    pub(super) has_allocation: bool,
    pub(super) writable: bool,
}

impl Worker {
    pub(super) fn accept(&mut self, i: usize, now: Instant) {
        if self.paused_accept.is_some() {
            return;
        }
        for _ in 0..READ_BUDGET {
            let Some((local, listener)) = self.tcp.get(i) else { return };
            let local = *local;
            match listener.accept() {
                Ok((mut stream, from)) => {
                    let _ = stream.set_nodelay(true);
                    let idx = match self.free_conns.pop() {
                        Some(i) => i,
                        None => {
                            self.conns.push(None);
                            self.conns.len() - 1
                        }
                    };
                    if self.poll.registry().register(&mut stream, Token(CONN_BASE + idx), Interest::READABLE).is_err() {
                        self.free_conns.push(idx);
                        continue;
                    }
                    let tuple = FiveTuple { client: from, server: local, transport: Transport::Tcp };
                    self.conn_by_tuple.insert(tuple, idx);
                    self.conns[idx] = Some(Conn {
                        stream,
                        tuple,
                        inbuf: Vec::new(),
                        out: Vec::new(),
                        accepted: now,
                        has_allocation: false,
                        writable: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE/ENFILE leave the listener readable: pause instead of spinning.
                    tracing::warn!(target: "relay", error = %e, "accept failed; pausing accepts for 100 ms");
                    self.paused_accept = Some(now + ACCEPT_PAUSE);
                    return;
                }
            }
        }
        self.pending.push(Token(TCP_BASE + i));
    }

    pub(super) fn conn_ready(&mut self, idx: usize, now: Instant, unix_now: u64) {
        if self.conns.get(idx).and_then(Option::as_ref).is_some_and(|c| c.writable) {
            self.conn_flush(idx);
        }
        self.conn_read(idx, now, unix_now);
    }

    fn conn_read(&mut self, idx: usize, now: Instant, unix_now: u64) {
        let mut chunk = [0u8; 16 * 1024];
        for _ in 0..READ_BUDGET {
            let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else { return };
            match conn.stream.read(&mut chunk) {
                Ok(0) => return self.close_conn(idx, "closed by client"),
                Ok(n) => {
                    conn.inbuf.extend_from_slice(&chunk[..n]);
                    if !self.conn_frames(idx, now, unix_now) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close_conn(idx, "read error"),
            }
        }
        self.pending.push(Token(CONN_BASE + idx));
    }

    /// Handles every complete frame in the connection's buffer. Returns false if it closed.
    fn conn_frames(&mut self, idx: usize, now: Instant, unix_now: u64) -> bool {
        let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else { return false };
        let tuple = conn.tuple;
        let inbuf = std::mem::take(&mut conn.inbuf);
        let mut start = 0;
        let mut ok = true;
        loop {
            match framing::next_frame(&inbuf[start..]) {
                Frame::Complete(n) => {
                    let frame = &inbuf[start..start + n];
                    let mut host =
                        Host { registry: self.poll.registry(), relays: &mut self.relays, shared: &self.shared };
                    if let ClientAction::Forward(f) = self.server.handle_client(now, unix_now, tuple, frame, &mut host)
                    {
                        send_to_peer(&self.relays, f.relay, f.peer, &frame[f.payload]);
                    }
                    start += n;
                    self.flush();
                }
                Frame::Partial(_) => break,
                Frame::Invalid => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            self.close_conn(idx, "not STUN or ChannelData");
            return false;
        }
        match self.conns.get_mut(idx).and_then(Option::as_mut) {
            Some(conn) => {
                let mut inbuf = inbuf;
                inbuf.drain(..start);
                // The framer knows a frame's size from its first 4 bytes, and no frame exceeds
                // MAX_FRAME_LEN: the buffer is bounded by that.
                debug_assert!(inbuf.len() <= framing::MAX_FRAME_LEN);
                conn.inbuf = inbuf;
                true
            }
            None => false,
        }
    }

    /// Queues `data` for a TCP client. Media over the cap is dropped; a control message that
    /// does not fit closes the connection (it would never catch up).
    pub(super) fn conn_send(&mut self, idx: usize, data: &[u8], control: bool) {
        let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else { return };
        if conn.out.is_empty() {
            match conn.stream.write(data) {
                Ok(n) if n == data.len() => return,
                Ok(n) => conn.out.extend_from_slice(&data[n..]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.out.extend_from_slice(data),
                Err(_) => return self.close_conn(idx, "write error"),
            }
        } else if conn.out.len() + data.len() > MAX_TCP_OUTBUF {
            if control {
                return self.close_conn(idx, "client does not read its control messages");
            }
            return;
        } else {
            conn.out.extend_from_slice(data);
        }
        if !conn.writable {
            conn.writable = true;
            let _ = self.poll.registry().reregister(
                &mut conn.stream,
                Token(CONN_BASE + idx),
                Interest::READABLE | Interest::WRITABLE,
            );
        }
    }

    fn conn_flush(&mut self, idx: usize) {
        let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else { return };
        while !conn.out.is_empty() {
            match conn.stream.write(&conn.out) {
                Ok(0) => return self.close_conn(idx, "write returned 0"),
                Ok(n) => {
                    conn.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close_conn(idx, "write error"),
            }
        }
        conn.writable = false;
        let _ = self.poll.registry().reregister(&mut conn.stream, Token(CONN_BASE + idx), Interest::READABLE);
    }

    pub(super) fn close_conn(&mut self, idx: usize, why: &str) {
        let Some(mut conn) = self.conns.get_mut(idx).and_then(Option::take) else { return };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.conn_by_tuple.remove(&conn.tuple);
        self.free_conns.push(idx);
        tracing::debug!(target: "relay", tuple = %conn.tuple, why, "connection closed");
        let mut host = Host { registry: self.poll.registry(), relays: &mut self.relays, shared: &self.shared };
        self.server.handle_client_closed(conn.tuple, &mut host);
        self.flush();
    }

    /// Closes connections that have had no allocation for `max-allocate-timeout`.
    pub(super) fn sweep_connections(&mut self, now: Instant) {
        let stale: Vec<usize> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
            .filter(|(_, c)| !c.has_allocation && now.duration_since(c.accepted) >= self.max_allocate_timeout)
            .map(|(i, _)| i)
            .collect();
        for i in stale {
            self.close_conn(i, "no allocation within max-allocate-timeout");
        }
    }
}
