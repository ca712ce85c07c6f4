//! One WebSocket connection's write side: the outbox that makes sure a slow or stuck member never
//! blocks whoever sends to it.
//!
//! Any thread may call [`Conn::send_text`]. The frame goes out with a non-blocking
//! `send(MSG_DONTWAIT)` while nothing is queued; what the kernel does not take is appended to the
//! connection's outbox, which the single [`Flusher`] thread drains. When the outbox would grow
//! past `max_write_buffer`, or makes no progress for `write_timeout`, the connection is shut down:
//! its reader sees the socket close and the room tells the others `peer-left`.
//!
//! Reads happen on the connection's worker ([`crate::pool`]) through tungstenite over a
//! [`ReadHalf`], which shares the socket and discards writes: tungstenite's automatic pong and
//! close replies would otherwise bypass the outbox, so the reader answers pings through it.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use socket2::SockRef;

use crate::mailbox::{Batch, Deferred, Mailbox};

/// WebSocket opcodes the server sends (RFC 6455 §5.2).
pub mod opcode {
    /// A text frame.
    pub const TEXT: u8 = 0x1;
    /// A close frame.
    pub const CLOSE: u8 = 0x8;
    /// A ping frame.
    pub const PING: u8 = 0x9;
    /// A pong frame.
    pub const PONG: u8 = 0xA;
}

/// Why a connection was shut down from the write side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// The outbox outgrew `max_write_buffer`.
    SlowReader,
    /// The outbox made no progress for `write_timeout`.
    WriteStalled,
    /// The socket failed.
    SocketError,
}

/// The write side of one connection, shared by every thread that sends to it.
#[derive(Debug)]
pub struct Conn {
    /// Process-unique id (log correlation only).
    pub id: u64,
    /// The client's address.
    pub ip: IpAddr,
    stream: Arc<TcpStream>,
    out: Mutex<Outbox>,
    dead: AtomicBool,
    max_write_buffer: usize,
    flusher: Sender<Arc<Conn>>,
    /// This connection, for registering with the flusher from `&self`.
    me: Weak<Conn>,
}

#[derive(Debug, Default)]
struct Outbox {
    pending: Vec<u8>,
    /// Where the unsent part of `pending` starts.
    sent: usize,
    /// When the queue last made progress (or started), while it is non-empty.
    progress_at: Option<Instant>,
    kill: Option<Kill>,
}

impl Conn {
    /// Wraps the write side of `stream` (shared with the reader: one descriptor per connection).
    pub fn new(
        id: u64,
        ip: IpAddr,
        stream: Arc<TcpStream>,
        max_write_buffer: usize,
        flusher: Sender<Arc<Conn>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Conn {
            id,
            ip,
            stream,
            out: Mutex::new(Outbox::default()),
            dead: AtomicBool::new(false),
            max_write_buffer,
            flusher,
            me: me.clone(),
        })
    }

    /// Sends a control frame (ping, pong, close).
    pub fn send_control(&self, op: u8, payload: &[u8]) {
        let mut frame = Vec::with_capacity(payload.len().min(125) + 2);
        encode_frame(op, &payload[..payload.len().min(125)], &mut frame);
        self.send_frame_bytes(&frame);
    }

    /// Sends already encoded frames (or, before the upgrade, raw HTTP bytes).
    pub fn send_frame_bytes(&self, frame: &[u8]) {
        if self.is_dead() {
            return;
        }
        let mut out = lock(&self.out);
        if out.kill.is_some() {
            return;
        }
        let mut rest = frame;
        if out.pending.len() == out.sent {
            match self.try_send(rest) {
                Ok(n) => rest = &rest[n..],
                Err(_) => return self.kill_locked(&mut out, Kill::SocketError),
            }
            if rest.is_empty() {
                return;
            }
        }
        let queued = out.pending.len() - out.sent + rest.len();
        if queued > self.max_write_buffer {
            return self.kill_locked(&mut out, Kill::SlowReader);
        }
        let was_empty = out.pending.len() == out.sent;
        out.pending.extend_from_slice(rest);
        if was_empty {
            out.progress_at = Some(Instant::now());
            drop(out);
            // The flusher holds the receiver for the process's life; a send only fails at exit.
            if let Some(me) = self.me.upgrade() {
                let _ = self.flusher.send(me);
            }
        }
    }

    /// Bytes waiting in the outbox.
    pub fn queued(&self) -> usize {
        let out = lock(&self.out);
        out.pending.len() - out.sent
    }

    /// The socket's descriptor, for registration with a poller.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.stream.as_raw_fd()
    }

    /// Whether the connection was shut down.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Why the write side shut the connection down, if it did.
    pub fn kill_reason(&self) -> Option<Kill> {
        lock(&self.out).kill
    }

    /// Ends the write side as the connection closes: what the kernel takes of the queue goes out
    /// without blocking (a worker thread must never wait on one socket), then FIN. The caller
    /// lets the socket linger before closing it (see `server::closer_loop`): closing with
    /// unread input would reset the connection and could destroy a final error frame in flight.
    pub fn finish(&self) {
        let mut out = lock(&self.out);
        if out.kill.is_none() && out.pending.len() > out.sent {
            let (start, end) = (out.sent, out.pending.len());
            let _ = self.try_send(&out.pending[start..end]);
        }
        out.pending = Vec::new();
        out.sent = 0;
        self.dead.store(true, Ordering::Release);
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// The socket.
    pub fn stream(&self) -> &Arc<TcpStream> {
        &self.stream
    }

    /// Shuts the connection down; its reader then cleans up.
    pub fn kill(&self, why: Kill) {
        let mut out = lock(&self.out);
        self.kill_locked(&mut out, why);
    }

    fn kill_locked(&self, out: &mut Outbox, why: Kill) {
        if out.kill.is_none() {
            tracing::info!(conn = self.id, ip = %self.ip, reason = ?why, "disconnecting");
            out.kill = Some(why);
        }
        out.pending = Vec::new();
        out.sent = 0;
        self.dead.store(true, Ordering::Release);
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Sends what the kernel takes without blocking.
    fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        let sock = SockRef::from(&*self.stream);
        let mut done = 0;
        while done < buf.len() {
            match sock.send_with_flags(&buf[done..], libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// One flush attempt: `true` while bytes remain queued.
    fn flush_some(&self, write_timeout: Duration, now: Instant) -> bool {
        let mut out = lock(&self.out);
        if out.kill.is_some() || out.pending.len() == out.sent {
            return false;
        }
        let (start, end) = (out.sent, out.pending.len());
        match self.try_send(&out.pending[start..end]) {
            Ok(0) => {}
            Ok(n) => {
                out.sent += n;
                out.progress_at = Some(now);
            }
            Err(_) => {
                self.kill_locked(&mut out, Kill::SocketError);
                return false;
            }
        }
        if out.sent == out.pending.len() {
            out.pending.clear();
            out.sent = 0;
            out.progress_at = None;
            return false;
        }
        if out.progress_at.is_some_and(|t| now.duration_since(t) >= write_timeout) {
            self.kill_locked(&mut out, Kill::WriteStalled);
            return false;
        }
        // Compact once the sent prefix dominates, so a long-lived backlog does not grow.
        if out.sent > 64 * 1024 && out.sent * 2 > out.pending.len() {
            let sent = out.sent;
            out.pending.drain(..sent);
            out.sent = 0;
        }
        true
    }
}

impl Mailbox for Conn {
    fn send(&self, text: &str) {
        let mut frame = Vec::with_capacity(text.len() + 10);
        encode_frame(opcode::TEXT, text.as_bytes(), &mut frame);
        self.send_frame_bytes(&frame);
    }

    fn send_batch(&self, batch: &Batch) {
        let mut frames = Vec::with_capacity(batch.bytes() + 10 * batch.len());
        for text in batch.iter() {
            encode_frame(opcode::TEXT, text.as_bytes(), &mut frames);
        }
        self.send_frame_bytes(&frames);
    }
}

/// The thread that drains backlogged outboxes.
#[derive(Debug)]
pub struct Flusher {
    rx: Receiver<Arc<Conn>>,
    write_timeout: Duration,
}

/// How often backlogged connections are retried.
const FLUSH_TICK: Duration = Duration::from_millis(2);

impl Flusher {
    /// A flusher and the sender connections register with.
    pub fn new(write_timeout: Duration) -> (Self, Sender<Arc<Conn>>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (Flusher { rx, write_timeout }, tx)
    }

    /// Runs until every sender is dropped.
    pub fn run(self) {
        let mut backlog: Vec<Arc<Conn>> = Vec::new();
        loop {
            let next = if backlog.is_empty() {
                self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                self.rx.recv_timeout(FLUSH_TICK)
            };
            match next {
                Ok(c) => backlog.push(c),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            backlog.extend(self.rx.try_iter());
            let now = Instant::now();
            // A connection is registered only when its queue turns non-empty and leaves the
            // backlog only when it empties, so it is never here twice.
            backlog.retain(|c| c.flush_some(self.write_timeout, now));
        }
    }
}

/// The read side of a connection for tungstenite: reads go to the socket, writes vanish (see the
/// module header). It also holds the messages this connection's thread forwarded since it last
/// ran out of input ([`Deferred`]): tungstenite calls `read` only when its buffer holds no
/// complete frame, which is exactly when the batch should go out. Several messages that arrived
/// in one segment then leave in one `send` per recipient instead of one each.
#[derive(Debug)]
pub struct ReadHalf {
    stream: Arc<TcpStream>,
    /// Messages waiting for this thread's next read.
    pub deferred: Deferred,
}

impl ReadHalf {
    /// Wraps the read side of `stream`.
    pub fn new(stream: Arc<TcpStream>) -> Self {
        ReadHalf { stream, deferred: Deferred::default() }
    }
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.deferred.flush();
        (&*self.stream).read(buf)
    }
}

impl Write for ReadHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Appends one unmasked, final server frame (RFC 6455 §5.2).
pub fn encode_frame(op: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x80 | (op & 0x0f));
    let n = payload.len();
    if n < 126 {
        out.push(n as u8);
    } else if let Ok(n16) = u16::try_from(n) {
        out.push(126);
        out.extend_from_slice(&n16.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave an outbox inconsistent in a way that matters
    // more than losing the connection; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn frame_lengths_use_the_three_encodings() {
        let mut f = Vec::new();
        encode_frame(opcode::TEXT, b"hi", &mut f);
        assert_eq!(f, [0x81, 2, b'h', b'i']);
        f.clear();
        encode_frame(opcode::TEXT, &[b'x'; 300], &mut f);
        assert_eq!(&f[..4], &[0x81, 126, 1, 44]);
        assert_eq!(f.len(), 304);
        f.clear();
        encode_frame(opcode::TEXT, &vec![b'x'; 70_000], &mut f);
        assert_eq!(&f[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    /// A peer that never reads fills its socket buffers; the sender keeps going without
    /// blocking, and the peer is cut off once its outbox passes the cap.
    #[test]
    fn a_reader_that_never_reads_is_cut_off_without_blocking_the_sender() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server_side, _) = l.accept().unwrap();
        let (flusher, tx) = Flusher::new(Duration::from_secs(10));
        std::thread::spawn(move || flusher.run());
        let conn = Conn::new(1, "127.0.0.1".parse().unwrap(), Arc::new(server_side), 256 * 1024, tx);
        let msg = "x".repeat(16 * 1024);
        let t0 = Instant::now();
        let mut sent = 0;
        while !conn.is_dead() && sent < 10_000 {
            conn.send(&msg);
            sent += 1;
        }
        assert!(conn.is_dead(), "never cut off after {sent} messages");
        assert_eq!(conn.kill_reason(), Some(Kill::SlowReader));
        assert!(t0.elapsed() < Duration::from_secs(2), "sending blocked for {:?}", t0.elapsed());
    }
}
