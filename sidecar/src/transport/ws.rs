//! The WebSocket transport: the upgrade, then one [`Reader`] per connection on a pool worker
//! (tungstenite over the non-blocking socket), with liveness pings. Writes go through the
//! connection's outbox ([`Conn`]); the dialects decide what each message means.
//!
//! Engine.IO over WebSocket: one packet per text message. The server pings (`2`) every
//! `ping_interval`; a connection that sends nothing for `ping_timeout` after a ping is dead.

use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use tungstenite::protocol::{Role, WebSocketConfig, frame::coding::CloseCode};
use tungstenite::{Message, WebSocket};

use crate::admission::Admitted;
use crate::conn::{Conn, ReadHalf, opcode};
use crate::dialect::json::JsonSession;
use crate::dialect::sio::SioSession;
use crate::dialect::{CloseWhy, Verdict};
use crate::http::{self, Request};
use crate::limits::ConnSlot;
use crate::mailbox::Mailbox;
use crate::pool::{Pool, Step, Task};
use crate::rooms::random_id;
use crate::session::Slot;
use crate::shared::{LINGER, Shared};
use crate::wire::RoomKind;
use crate::wire::sio::{self as wire_sio, EioPacket};

/// Which protocol the connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `/ws`.
    Json,
    /// `/socket.io/?EIO=4&transport=websocket`.
    SocketIo,
}

/// A connection whose head was read, as the connection thread hands it on.
#[derive(Debug)]
pub struct Handoff {
    /// The socket (blocking).
    pub stream: TcpStream,
    /// Bytes that arrived after the head.
    pub rest: Vec<u8>,
    /// The connection's place under the connection limits, held until it closes.
    pub slot: ConnSlot,
}

/// Answers a WebSocket upgrade and hands the connection to a worker.
pub fn upgrade(sh: &Arc<Shared>, pool: &Pool, conn: Handoff, req: &Request, dialect: Dialect, admitted: Admitted) {
    let Handoff { mut stream, rest, slot } = conn;
    let json = "application/json";
    if req.ws_version.as_deref() != Some("13") {
        let body = http::error_body("bad-version", "WebSocket version 13 is required");
        let _ = http::respond(&mut stream, 426, json, &[("Sec-WebSocket-Version", "13")], &body, false);
        return;
    }
    let Some(key) = req.ws_key.as_deref().filter(|k| !k.is_empty()) else {
        let body = http::error_body("bad-request", "Sec-WebSocket-Key is missing");
        let _ = http::respond(&mut stream, 400, json, &[], &body, false);
        return;
    };
    if io::Write::write_all(&mut stream, &http::switching_protocols(key)).is_err() {
        return;
    }
    let s = &sh.settings;
    let peer = admitted.peer;
    let stream = Arc::new(stream);
    let conn = Conn::new(peer.conn, peer.ip, Arc::clone(&stream), s.max_write_buffer, sh.flusher.clone());
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(s.max_write_buffer)
        .max_message_size(Some(s.max_message_size))
        .max_frame_size(Some(s.max_message_size));
    let ws = WebSocket::from_partially_read(ReadHalf::new(Arc::clone(&stream)), rest, Role::Server, Some(config));
    tracing::debug!(conn = peer.conn, ip = %peer.ip, ?dialect, "websocket open");
    let mailbox: Arc<dyn Mailbox> = conn.clone();
    let state = match dialect {
        Dialect::Json => State::Json(JsonSession::new(Slot::new(RoomKind::Json, admitted.authed, mailbox, peer))),
        Dialect::SocketIo => State::Sio(SioSession::new(admitted.authed, mailbox, peer)),
    };
    let mut reader = Reader {
        sh: Arc::clone(sh),
        conn,
        ws,
        live: Liveness::new(Instant::now()),
        state,
        closing: Closing::Quiet,
        _slot: slot,
    };
    reader.start();
    if let Err(e) = stream.set_nonblocking(true) {
        tracing::debug!(error = %e, "cannot make the socket non-blocking");
        return Box::new(reader).end();
    }
    pool.submit(Box::new(reader));
}

/// Ping bookkeeping: a ping every `ping_interval`; the peer is dead when nothing arrives within
/// `ping_timeout` of an unanswered ping.
#[derive(Debug)]
struct Liveness {
    next_ping: Instant,
    awaiting_since: Option<Instant>,
}

impl Liveness {
    fn new(now: Instant) -> Self {
        Liveness { next_ping: now, awaiting_since: None }
    }
}

/// How the connection ends.
#[derive(Debug, Clone, Copy)]
enum Closing {
    /// No close frame of ours (the peer closed, or the socket died).
    Quiet,
    /// A close frame with this code and reason.
    Frame(CloseCode, &'static str),
}

/// One WebSocket connection's read side and session, driven by a [`crate::pool`] worker.
pub struct Reader {
    sh: Arc<Shared>,
    conn: Arc<Conn>,
    ws: WebSocket<ReadHalf>,
    live: Liveness,
    state: State,
    closing: Closing,
    /// The connection's place under the connection limits, released when the reader drops.
    _slot: ConnSlot,
}

/// The dialect state of a connection.
enum State {
    Json(JsonSession),
    Sio(SioSession),
}

/// What one read produced.
enum Read {
    Text(tungstenite::Utf8Bytes),
    Nothing,
    Drained,
}

impl Reader {
    /// Sends what a new connection gets first (the Engine.IO open packet).
    fn start(&mut self) {
        if matches!(self.state, State::Sio(_)) {
            let s = &self.sh.settings;
            let sid = random_id().unwrap_or_default();
            self.conn.send(&wire_sio::open(
                &sid,
                s.ping_interval.as_millis(),
                s.ping_timeout.as_millis(),
                s.max_message_size,
            ));
            // The open packet announces the first ping one interval from now.
            self.live.next_ping = Instant::now() + s.ping_interval;
        }
    }

    fn dialect(&self) -> Dialect {
        match self.state {
            State::Json(_) => Dialect::Json,
            State::Sio(_) => Dialect::SocketIo,
        }
    }

    /// Reads one frame and answers control frames.
    fn read_one(&mut self) -> Result<Read, Closing> {
        let msg = match self.ws.read() {
            Ok(m) => m,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                return Ok(Read::Drained);
            }
            Err(tungstenite::Error::Capacity(e)) => {
                tracing::debug!(conn = self.conn.id, error = %e, "message too large");
                let msg = "message exceeds the server's --max-message-size";
                if let State::Json(j) = &mut self.state {
                    j.on_too_large(&mut self.ws.get_mut().deferred, msg);
                }
                return Err(Closing::Frame(CloseCode::Size, msg));
            }
            Err(tungstenite::Error::Protocol(e)) => {
                tracing::debug!(conn = self.conn.id, error = %e, "WebSocket protocol error");
                return Err(Closing::Frame(CloseCode::Protocol, "WebSocket protocol error"));
            }
            Err(tungstenite::Error::Utf8(_)) => {
                return Err(Closing::Frame(CloseCode::Invalid, "text frame is not UTF-8"));
            }
            Err(_) => return Err(Closing::Quiet),
        };
        self.live.awaiting_since = None;
        match msg {
            Message::Text(t) => Ok(Read::Text(t)),
            Message::Binary(_) => match &mut self.state {
                State::Json(j) => {
                    j.on_binary(&mut self.ws.get_mut().deferred);
                    Ok(Read::Nothing)
                }
                State::Sio(_) => Err(Closing::Frame(CloseCode::Unsupported, "binary attachments are not supported")),
            },
            Message::Ping(p) => {
                self.conn.send_control(opcode::PONG, &p);
                Ok(Read::Nothing)
            }
            Message::Pong(_) | Message::Frame(_) => Ok(Read::Nothing),
            Message::Close(_) => {
                self.ws.get_mut().deferred.flush();
                self.conn.send_control(opcode::CLOSE, &1000u16.to_be_bytes());
                Err(Closing::Quiet)
            }
        }
    }

    /// One Engine.IO packet over this WebSocket.
    fn on_eio(&mut self, text: &str) -> Verdict {
        let State::Sio(sio) = &mut self.state else { return Verdict::End };
        match EioPacket::parse(text) {
            Ok(EioPacket::Message(m)) => {
                let now = Instant::now();
                sio.on_message(&self.sh, m, &mut self.ws.get_mut().deferred, now)
            }
            Ok(EioPacket::Ping(d)) => {
                self.conn.send(&format!("3{d}"));
                Verdict::Continue
            }
            Ok(EioPacket::Pong(_) | EioPacket::Upgrade | EioPacket::Noop) => Verdict::Continue,
            Ok(EioPacket::Close) => Verdict::End,
            Err(_) => Verdict::Close(CloseWhy::Invalid, "not an Engine.IO packet"),
        }
    }

    fn send_close(&self) {
        if let Closing::Frame(code, reason) = self.closing {
            let mut payload = u16::from(code).to_be_bytes().to_vec();
            payload.extend_from_slice(reason.as_bytes());
            self.conn.send_control(opcode::CLOSE, &payload);
        }
    }
}

impl Task for Reader {
    fn raw_fd(&self) -> std::os::fd::RawFd {
        self.conn.raw_fd()
    }

    /// Handles what the socket has, up to `budget` messages.
    fn on_readable(&mut self, budget: usize) -> Step {
        if self.conn.is_dead() {
            return Step::End;
        }
        for _ in 0..budget {
            let text = match self.read_one() {
                Ok(Read::Text(t)) => t,
                Ok(Read::Nothing) => continue,
                Ok(Read::Drained) => return Step::Drained,
                Err(closing) => {
                    self.closing = closing;
                    return Step::End;
                }
            };
            let verdict = match &mut self.state {
                State::Json(j) => {
                    j.on_text(&self.sh, &text, &mut self.ws.get_mut().deferred, Instant::now());
                    Verdict::Continue
                }
                State::Sio(_) => self.on_eio(&text),
            };
            match verdict {
                Verdict::Continue => {}
                Verdict::End => return Step::End,
                Verdict::Close(why, reason) => {
                    let code = match why {
                        CloseWhy::Invalid => CloseCode::Invalid,
                        CloseWhy::Unsupported => CloseCode::Unsupported,
                    };
                    self.closing = Closing::Frame(code, reason);
                    return Step::End;
                }
            }
        }
        Step::More
    }

    /// Pings and the ping timeout.
    fn on_tick(&mut self, now: Instant) -> Step {
        let s = &self.sh.settings;
        if self.conn.is_dead() {
            return Step::End;
        }
        if self.live.awaiting_since.is_some_and(|t| now.duration_since(t) >= s.ping_timeout) {
            tracing::debug!(conn = self.conn.id, "ping timeout");
            return Step::End;
        }
        if now >= self.live.next_ping {
            match self.dialect() {
                Dialect::Json => self.conn.send_control(opcode::PING, b""),
                Dialect::SocketIo => self.conn.send("2"),
            }
            self.live.next_ping = now + s.ping_interval;
            self.live.awaiting_since.get_or_insert(now);
        }
        Step::Drained
    }

    /// Ends the connection: forwarded frames go out, the rooms hear `peer-left`, a close frame
    /// says why, and the socket closes.
    fn end(mut self: Box<Self>) {
        self.ws.get_mut().deferred.flush();
        match &mut self.state {
            State::Json(j) => j.close(&self.sh),
            State::Sio(s) => s.close(&self.sh),
        }
        self.send_close();
        tracing::debug!(conn = self.conn.id, ip = %self.conn.ip, "websocket closed");
        self.conn.finish();
        let _ = self.sh.closer.try_send((Instant::now() + LINGER, Arc::clone(self.conn.stream())));
    }
}
