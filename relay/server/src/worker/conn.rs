//! Client connections over TCP and TLS: accepting on both kinds of listener, the TLS session,
//! framing the (plaintext) byte stream into STUN and ChannelData messages, writing back through
//! bounded buffers, and the connection deadlines.
//!
//! A connection is plain TCP or TLS ([`Layer`]). A TLS connection's rustls session is driven by
//! readiness, never blocking: `read_tls` → `process_new_packets` → plaintext into the framer;
//! replies go through `writer()` and `write_tls` while the socket takes them. On the plain TCP
//! port the first byte decides: 0x16 (a TLS handshake record) makes it a TLS connection, as
//! coturn does.
//!
//! Limits, each counted and reported in the log by the 1-s sweep when they change:
//! - outbound: at most [`MAX_OUTBUF`] bytes queued by us (plus rustls's own
//!   [`TLS_BUFFER_LIMIT`]); a client that reads so slowly that a message does not fit is
//!   disconnected, so memory never grows;
//! - inbound: at most one frame ([`framing::MAX_FRAME_LEN`]) plus one read's worth of bytes;
//! - a TLS handshake must finish within the handshake timeout (10 s by default; deadlines are
//!   checked at most every [`HANDSHAKE_CHECK`]);
//! - a connection without an allocation is closed after `max-allocate-timeout` (60 s).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Token};
use relay_proto::framing::{self, Frame};
use relay_proto::server::ClientAction;
use relay_proto::types::{FiveTuple, Transport};
use rustls::server::{Acceptor, ServerConnection};

use super::udp::send_to_peer;
use super::{READ_BUDGET, Worker};
use crate::host::Host;
use crate::metrics::ShellStats;
use crate::sockets::{CONN_BASE, TCP_BASE, TLS_BASE};

/// Bytes we queue towards one client beyond what the socket (and rustls) took.
pub(super) const MAX_OUTBUF: usize = 256 * 1024;
/// rustls's own limit on unsent TLS records of application data.
pub(super) const TLS_BUFFER_LIMIT: usize = 64 * 1024;
/// Bytes read from a socket (or out of rustls) at a time.
const CHUNK: usize = 16 * 1024;
/// How long the accept loop pauses when the process runs out of descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// The first byte of a TLS handshake record (RFC 8446 §5.1, content type 22).
const TLS_HANDSHAKE: u8 = 0x16;

/// What carries the STUN stream.
enum Layer {
    /// The plain TCP port, nothing received yet: the first byte decides.
    Sniff,
    /// Plain TCP.
    Plain,
    /// TLS, waiting for a complete ClientHello (the certificate is chosen then).
    Accepting(Box<Acceptor>),
    /// TLS, handshaking or established.
    Tls(Box<ServerConnection>),
}

pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) tuple: FiveTuple,
    layer: Layer,
    /// Plaintext not yet framed: at most one frame plus one read.
    inbuf: Vec<u8>,
    /// Bytes the socket (plain) or rustls (TLS) did not take yet; at most [`MAX_OUTBUF`].
    out: Vec<u8>,
    pub(super) accepted: Instant,
    pub(super) has_allocation: bool,
    writable: bool,
}

impl Conn {
    fn handshaking(&self) -> bool {
        match &self.layer {
            Layer::Accepting(_) => true,
            Layer::Tls(t) => t.is_handshaking(),
            Layer::Sniff | Layer::Plain => false,
        }
    }
}

/// How often, at most, handshake deadlines are checked: a stalled handshake is closed at most
/// this long after its deadline, and a flood of staggered connections costs at most ten scans
/// of the connection table a second.
const HANDSHAKE_CHECK: Duration = Duration::from_millis(100);

/// The connection limits' counters and the handshake deadline bookkeeping of one worker.
#[derive(Debug, Default)]
pub(super) struct ConnState {
    limits: Limits,
    reported: Limits,
    /// The earliest deadline of a connection still handshaking, if any.
    handshake_due: Option<Instant>,
    /// When the handshake deadlines were last checked.
    handshake_checked: Option<Instant>,
}

impl ConnState {
    /// Copies the counters into the shell's metrics (read by the exporter).
    pub(super) fn export(&self, s: &mut ShellStats) {
        s.tls_handshakes = self.limits.tls_accepted;
        s.tls_handshake_failures = self.limits.handshake_failures;
        s.tls_handshake_timeouts = self.limits.handshake_timeouts;
        s.slow_readers = self.limits.slow_readers;
        s.no_allocation_closes = self.limits.no_allocation;
    }
}

/// Counters of the connection limits, reported by the sweep when they change.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    /// TLS handshakes that did not finish within the handshake timeout.
    handshake_timeouts: u64,
    /// TLS handshakes that failed (bad ClientHello, no common version or suite...).
    handshake_failures: u64,
    /// Clients disconnected because they read too slowly (outbound buffer over the cap).
    slow_readers: u64,
    /// Connections closed without an allocation after `max-allocate-timeout`.
    no_allocation: u64,
    /// Connections accepted over TLS (the TLS port, or a ClientHello on the TCP port).
    tls_accepted: u64,
}

enum Step {
    Close(&'static str),
    Plain(usize),
    Accepting,
    Tls,
}

impl Worker {
    /// Accepts on TCP listener `i` (or TLS listener `i` if `tls`).
    pub(super) fn accept(&mut self, i: usize, tls: bool, now: Instant) {
        if self.paused_accept.is_some() {
            return;
        }
        for _ in 0..READ_BUDGET {
            let listeners = if tls { &self.tls } else { &self.tcp };
            let Some((local, listener)) = listeners.get(i) else { return };
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
                    let (layer, transport) = if tls {
                        self.conn_state.limits.tls_accepted += 1;
                        self.handshake_started(now);
                        (Layer::Accepting(Box::default()), Transport::Tls)
                    } else if self.tls_store.is_some() {
                        (Layer::Sniff, Transport::Tcp)
                    } else {
                        (Layer::Plain, Transport::Tcp)
                    };
                    let tuple = FiveTuple { client: from, server: local, transport };
                    self.conn_by_tuple.insert(tuple, idx);
                    self.conns[idx] = Some(Conn {
                        stream,
                        tuple,
                        layer,
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
                    // EMFILE/ENFILE leave the listener readable: pause instead of spinning, and
                    // say so at most once a second.
                    self.accept_failures += 1;
                    if self.last_accept_warning.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
                        tracing::warn!(target: "relay", error = %e, failures = self.accept_failures, "accept failed; pausing accepts for 100 ms");
                        self.last_accept_warning = Some(now);
                        self.accept_failures = 0;
                    }
                    self.paused_accept = Some(now + ACCEPT_PAUSE);
                    return;
                }
            }
        }
        self.pending.push(Token(if tls { TLS_BASE } else { TCP_BASE } + i));
    }

    pub(super) fn conn_ready(&mut self, idx: usize, now: Instant, unix_now: u64) {
        if self.conns.get(idx).and_then(Option::as_ref).is_some_and(|c| c.writable) {
            self.conn_flush(idx);
        }
        self.conn_read(idx, now, unix_now);
    }

    fn conn_read(&mut self, idx: usize, now: Instant, unix_now: u64) {
        let mut chunk = [0u8; CHUNK];
        for _ in 0..READ_BUDGET {
            let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else { return };
            let res = match &mut conn.layer {
                Layer::Sniff | Layer::Plain => conn.stream.read(&mut chunk).map(|n| (n, Step::Plain(n))),
                Layer::Accepting(a) => a.read_tls(&mut conn.stream).map(|n| (n, Step::Accepting)),
                Layer::Tls(t) => t.read_tls(&mut conn.stream).map(|n| (n, Step::Tls)),
            };
            let step = match res {
                Ok((0, _)) => Step::Close("closed by client"),
                Ok((_, step)) => step,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => Step::Close("read error"),
            };
            let open = match step {
                Step::Close(why) => {
                    self.close_conn(idx, why);
                    false
                }
                Step::Plain(n) => self.conn_plain(idx, &chunk[..n], now, unix_now),
                Step::Accepting => self.tls_accept(idx) && self.tls_process(idx, &mut chunk, now, unix_now),
                Step::Tls => self.tls_process(idx, &mut chunk, now, unix_now),
            };
            if !open {
                return;
            }
        }
        self.pending.push(Token(CONN_BASE + idx));
    }

    /// Bytes read from a plain TCP socket. Returns false if the connection closed.
    fn conn_plain(&mut self, idx: usize, data: &[u8], now: Instant, unix_now: u64) -> bool {
        let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else { return false };
        if matches!(conn.layer, Layer::Sniff) {
            if data.first() == Some(&TLS_HANDSHAKE) && self.tls_store.is_some() {
                // A ClientHello on the TCP port: this is a TLS connection (coturn does the same).
                let mut acceptor = Box::<Acceptor>::default();
                let mut rest = data;
                while !rest.is_empty() {
                    match acceptor.read_tls(&mut rest) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(_) => {
                            self.conn_state.limits.handshake_failures += 1;
                            self.close_conn(idx, "TLS ClientHello too large");
                            return false;
                        }
                    }
                }
                conn.layer = Layer::Accepting(acceptor);
                let old = conn.tuple;
                conn.tuple.transport = Transport::Tls;
                let tuple = conn.tuple;
                self.conn_by_tuple.remove(&old);
                self.conn_by_tuple.insert(tuple, idx);
                self.conn_state.limits.tls_accepted += 1;
                let started = self.conns[idx].as_ref().map_or(now, |c| c.accepted);
                self.handshake_started(started);
                let mut chunk = [0u8; CHUNK];
                return self.tls_accept(idx) && self.tls_process(idx, &mut chunk, now, unix_now);
            }
            conn.layer = Layer::Plain;
        }
        conn.inbuf.extend_from_slice(data);
        self.conn_frames(idx, now, unix_now)
    }

    /// Turns a complete ClientHello into a TLS session with the current certificate. Returns
    /// false if the connection closed.
    fn tls_accept(&mut self, idx: usize) -> bool {
        let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else { return false };
        let Layer::Accepting(acceptor) = &mut conn.layer else { return true };
        let result = match acceptor.accept() {
            Ok(None) => return true,
            Ok(Some(accepted)) => match &self.tls_store {
                Some(store) => {
                    // Once per connection: the certificate generation it will keep.
                    let config = store.current().for_client(accepted.client_hello().alpn());
                    accepted.into_connection(config)
                }
                None => return false,
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(mut session) => {
                session.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
                conn.layer = Layer::Tls(Box::new(session));
                true
            }
            Err((e, mut alert)) => {
                let _ = alert.write_all(&mut conn.stream);
                tracing::debug!(target: "relay", tuple = %conn.tuple, error = %e, "TLS handshake failed");
                self.conn_state.limits.handshake_failures += 1;
                self.close_conn(idx, "TLS handshake failed");
                false
            }
        }
    }

    /// Processes what rustls received: handshake messages, then plaintext into the framer.
    /// Writes whatever rustls has to send. Returns false if the connection closed.
    fn tls_process(&mut self, idx: usize, chunk: &mut [u8], now: Instant, unix_now: u64) -> bool {
        let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else { return false };
        let Layer::Tls(tls) = &mut conn.layer else { return true };
        let state = match tls.process_new_packets() {
            Ok(s) => s,
            Err(e) => {
                // rustls queued an alert for the peer: try to send it, then close.
                let _ = tls.write_tls(&mut conn.stream);
                tracing::debug!(target: "relay", tuple = %conn.tuple, error = %e, "TLS error");
                if tls.is_handshaking() {
                    self.conn_state.limits.handshake_failures += 1;
                }
                self.close_conn(idx, "TLS error");
                return false;
            }
        };
        let mut peer_closed = state.peer_has_closed();
        let mut got = false;
        loop {
            match tls.reader().read(chunk) {
                Ok(0) => {
                    peer_closed = true;
                    break;
                }
                Ok(n) => {
                    conn.inbuf.extend_from_slice(&chunk[..n]);
                    got = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.close_conn(idx, "TLS stream ended without close_notify");
                    return false;
                }
            }
        }
        if got && !self.conn_frames(idx, now, unix_now) {
            return false;
        }
        if !self.conn_flush(idx) {
            return false;
        }
        if peer_closed {
            self.close_conn(idx, "closed by client");
            return false;
        }
        true
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

    /// Queues `data` (one whole message) for a TCP or TLS client. A message that does not fit
    /// under [`MAX_OUTBUF`] disconnects the client: it reads too slowly to ever catch up.
    pub(super) fn conn_send(&mut self, idx: usize, data: &[u8], control: bool) {
        let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else { return };
        if conn.out.len() + data.len() > MAX_OUTBUF {
            self.conn_state.limits.slow_readers += 1;
            let why = if control {
                "client does not read its control messages (outbound buffer over the cap)"
            } else {
                "client reads too slowly (outbound buffer over the cap)"
            };
            return self.close_conn(idx, why);
        }
        let taken = if !conn.out.is_empty() {
            0
        } else {
            match &mut conn.layer {
                Layer::Sniff | Layer::Plain => match conn.stream.write(data) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => 0,
                    Err(_) => return self.close_conn(idx, "write error"),
                },
                Layer::Tls(tls) => tls.writer().write(data).unwrap_or(0),
                // Nothing is sent before the handshake: the core only answers requests.
                Layer::Accepting(_) => return,
            }
        };
        if taken < data.len() {
            conn.out.extend_from_slice(&data[taken..]);
        }
        if matches!(conn.layer, Layer::Tls(_)) || !conn.out.is_empty() {
            self.conn_flush(idx);
        }
    }

    /// Writes queued bytes while the socket takes them; asks for WRITABLE when it stops taking
    /// them. Returns false if the connection closed.
    fn conn_flush(&mut self, idx: usize) -> bool {
        let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else { return false };
        let blocked = loop {
            match &mut conn.layer {
                Layer::Sniff | Layer::Plain => {
                    if conn.out.is_empty() {
                        break false;
                    }
                    match conn.stream.write(&conn.out) {
                        Ok(0) => return self.closed(idx, "write returned 0"),
                        Ok(n) => {
                            conn.out.drain(..n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return self.closed(idx, "write error"),
                    }
                }
                Layer::Tls(tls) => {
                    if tls.wants_write() {
                        match tls.write_tls(&mut conn.stream) {
                            Ok(0) => return self.closed(idx, "write returned 0"),
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => return self.closed(idx, "write error"),
                        }
                        continue;
                    }
                    if conn.out.is_empty() {
                        break false;
                    }
                    // rustls takes up to its buffer limit; the rest waits in `out`.
                    match tls.writer().write(&conn.out) {
                        Ok(n) if n > 0 => {
                            conn.out.drain(..n);
                        }
                        _ => break false,
                    }
                }
                Layer::Accepting(_) => break false,
            }
        };
        if blocked != conn.writable {
            conn.writable = blocked;
            let interest = if blocked { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            let _ = self.poll.registry().reregister(&mut conn.stream, Token(CONN_BASE + idx), interest);
        }
        true
    }

    fn closed(&mut self, idx: usize, why: &str) -> bool {
        self.close_conn(idx, why);
        false
    }

    pub(super) fn close_conn(&mut self, idx: usize, why: &str) {
        let Some(mut conn) = self.conns.get_mut(idx).and_then(Option::take) else { return };
        if let Layer::Tls(tls) = &mut conn.layer
            && !tls.is_handshaking()
        {
            // Best effort, never blocking: tell the client this was not a truncation attack.
            tls.send_close_notify();
            let _ = tls.write_tls(&mut conn.stream);
        }
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.conn_by_tuple.remove(&conn.tuple);
        self.free_conns.push(idx);
        tracing::debug!(target: "relay", tuple = %conn.tuple, why, "connection closed");
        let mut host = Host { registry: self.poll.registry(), relays: &mut self.relays, shared: &self.shared };
        self.server.handle_client_closed(conn.tuple, &mut host);
        self.flush();
    }

    fn handshake_timeout(&self) -> Duration {
        self.tls_store.as_ref().map_or(crate::tls::DEFAULT_HANDSHAKE_TIMEOUT, |s| s.handshake_timeout)
    }

    /// A TLS handshake began on a connection accepted at `accepted`.
    fn handshake_started(&mut self, accepted: Instant) {
        let due = accepted + self.handshake_timeout();
        let cs = &mut self.conn_state;
        cs.handshake_due = Some(cs.handshake_due.map_or(due, |d| d.min(due)));
    }

    /// When the worker must next call [`Worker::handshake_timers`].
    pub(super) fn handshake_timer(&self) -> Option<Instant> {
        let due = self.conn_state.handshake_due?;
        Some(self.conn_state.handshake_checked.map_or(due, |c| due.max(c + HANDSHAKE_CHECK)))
    }

    /// Closes TLS connections still handshaking after the handshake timeout.
    pub(super) fn handshake_timers(&mut self, now: Instant) {
        if self.handshake_timer().is_none_or(|t| t > now) {
            return;
        }
        self.conn_state.handshake_checked = Some(now);
        let timeout = self.handshake_timeout();
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        for (i, c) in self.conns.iter().enumerate() {
            let Some(c) = c else { continue };
            if !c.handshaking() {
                continue;
            }
            let due = c.accepted + timeout;
            if due <= now {
                expired.push(i);
            } else {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        self.conn_state.handshake_due = next;
        self.conn_state.limits.handshake_timeouts += expired.len() as u64;
        for i in expired {
            self.close_conn(i, "TLS handshake timeout");
        }
    }

    /// Closes connections that have had no allocation for `max-allocate-timeout`; reports the
    /// limit counters. Runs once a second.
    pub(super) fn sweep_connections(&mut self, now: Instant) {
        let stale: Vec<usize> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
            .filter(|(_, c)| !c.has_allocation && now.duration_since(c.accepted) >= self.max_allocate_timeout)
            .map(|(i, _)| i)
            .collect();
        self.conn_state.limits.no_allocation += stale.len() as u64;
        for i in stale {
            self.close_conn(i, "no allocation within max-allocate-timeout");
        }
        self.report_limits();
    }

    /// Logs the limit counters when they changed since the last report.
    fn report_limits(&mut self) {
        let (now, last) = (self.conn_state.limits, self.conn_state.reported);
        if now == last {
            return;
        }
        self.conn_state.reported = now;
        let l = now;
        if l.handshake_timeouts != last.handshake_timeouts
            || l.slow_readers != last.slow_readers
            || l.no_allocation != last.no_allocation
            || l.handshake_failures != last.handshake_failures
        {
            tracing::info!(
                target: "relay",
                worker = self.id,
                tls_handshake_timeouts = l.handshake_timeouts,
                tls_handshake_failures = l.handshake_failures,
                slow_readers_disconnected = l.slow_readers,
                no_allocation_closed = l.no_allocation,
                tls_accepted = l.tls_accepted,
                "connection limits enforced (totals since start)"
            );
        }
    }
}
