//! The process shell: the accept loop, the HTTP routes, the WebSocket session logic of both
//! dialects ([`Reader`]), liveness pings and the expiry sweeper.
//!
//! Threads: `accept` (caps are checked here, so a refused connection costs no thread); one
//! short-lived `conn` per connection ([`CONN_STACK`] bytes of stack) that reads the HTTP head
//! with a deadline and answers it; a few `ws` workers ([`crate::pool`]) that read the upgraded
//! WebSockets; one `flush` ([`crate::conn::Flusher`]); one `sweep` (room expiry, limiter upkeep);
//! one `close` (lets closed sockets linger so their last frames arrive). Nothing from the network
//! can panic a thread: every parse returns an error that becomes an `error` message or an HTTP
//! status.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, frame::coding::CloseCode};
use tungstenite::{Message, WebSocket};

use crate::conn::{Conn, Flusher, ReadHalf, opcode, text_frame};
use crate::creds;
use crate::http::{self, HttpError, Request, Route};
use crate::limits::{ConnLimits, ConnRefused, ConnSlot, JoinLimiter};
use crate::pool::{Pool, Worker};
use crate::protocol::{self, ClientMessage, ErrorCode, ServerEvent};
use crate::rooms::{RoomKind, Rooms, random_id};
use crate::session::{self, Refusal, Slot, token_matches};
use crate::settings::{OriginPolicy, Settings};
use crate::sio::{self, EioPacket, SioPacket, SioType};

/// Stack of a connection thread. Parsing is iterative (serde_json validates nested JSON without
/// recursion, see `protocol`), so a small stack is enough.
pub const CONN_STACK: usize = 128 * 1024;

/// Most Socket.IO namespaces one connection may join.
const MAX_NAMESPACES: usize = 8;

/// State shared by every thread.
#[derive(Debug)]
pub struct Shared {
    /// The settings.
    pub settings: Settings,
    /// The room table.
    pub rooms: Rooms,
    /// Connection counts.
    pub conns: Arc<ConnLimits>,
    /// Join-attempt limits.
    pub joins: JoinLimiter,
    /// Messages forwarded to other members.
    pub relayed: AtomicU64,
    flusher: Sender<Arc<Conn>>,
    pool: Pool,
    closer: Sender<(Instant, Arc<TcpStream>)>,
    closer_rx: crossbeam_channel::Receiver<(Instant, Arc<TcpStream>)>,
    next_id: AtomicU64,
    stop: AtomicBool,
    started: Instant,
}

/// A bound server, not yet accepting.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    flusher: Flusher,
    workers: Vec<Worker>,
}

/// A running server (tests and embedders).
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `settings.listen`.
    pub fn bind(settings: Settings) -> io::Result<Server> {
        let listener = TcpListener::bind(settings.listen)?;
        let (flusher, tx) = Flusher::new(settings.write_timeout);
        let now = Instant::now();
        let (closer, closer_rx) = crossbeam_channel::bounded(4096);
        let tick = (settings.ping_interval.min(settings.ping_timeout) / 4)
            .clamp(Duration::from_millis(20), Duration::from_secs(1));
        let n = thread::available_parallelism().map_or(2, |n| n.get()).min(8);
        let (pool, workers) = Pool::new(n, tick)?;
        let shared = Arc::new(Shared {
            pool,
            closer,
            closer_rx,
            rooms: Rooms::new(settings.room_code_length, settings.room_ttl, settings.max_room_members),
            conns: Arc::new(ConnLimits::new(settings.max_connections, settings.max_connections_per_ip)),
            joins: JoinLimiter::new(settings.max_joins_per_minute, settings.max_failed_joins_per_minute, now),
            relayed: AtomicU64::new(0),
            flusher: tx,
            next_id: AtomicU64::new(1),
            stop: AtomicBool::new(false),
            started: now,
            settings,
        });
        Ok(Server { listener, shared, flusher, workers })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the process ends.
    pub fn run(self) -> io::Result<()> {
        if let Some(limit) = open_file_limit()
            && limit < self.shared.settings.max_connections as u64 + 64
        {
            tracing::warn!(
                limit,
                max_connections = self.shared.settings.max_connections,
                "the open-file limit is below --max-connections: raise it (ulimit -n, LimitNOFILE=) or lower \
                 --max-connections; connections past the limit are refused"
            );
        }
        let shared = Arc::clone(&self.shared);
        let listener = self.listener.try_clone()?;
        self.start_helpers()?;
        accept_loop(&listener, &shared);
        Ok(())
    }

    /// Serves on background threads.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let addr = self.local_addr()?;
        let shared = Arc::clone(&self.shared);
        let listener = self.listener.try_clone()?;
        let sh = Arc::clone(&shared);
        self.start_helpers()?;
        let accept = thread::Builder::new().name("accept".into()).spawn(move || accept_loop(&listener, &sh))?;
        Ok(ServerHandle { addr, shared, accept: Some(accept) })
    }

    fn start_helpers(self) -> io::Result<()> {
        let flusher = self.flusher;
        thread::Builder::new().name("flush".into()).stack_size(CONN_STACK).spawn(move || flusher.run())?;
        let sh = Arc::clone(&self.shared);
        thread::Builder::new().name("sweep".into()).stack_size(CONN_STACK).spawn(move || sweep_loop(&sh))?;
        for w in self.workers {
            thread::Builder::new().name("ws".into()).stack_size(4 * CONN_STACK).spawn(move || w.run())?;
        }
        let rx = self.shared.closer_rx.clone();
        thread::Builder::new().name("close".into()).stack_size(CONN_STACK).spawn(move || closer_loop(&rx))?;
        Ok(())
    }
}

impl ServerHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.shared.conns.total()
    }

    /// Joinable rooms.
    pub fn rooms(&self) -> usize {
        self.shared.rooms.len()
    }

    /// Messages forwarded so far.
    pub fn relayed(&self) -> u64 {
        self.shared.relayed.load(Ordering::Relaxed)
    }

    /// Stops accepting (open connections run on until their clients leave).
    pub fn shutdown(mut self) {
        self.stop_accepting();
    }

    fn stop_accepting(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop_accepting();
        }
    }
}

/// The soft open-file limit, from `/proc/self/limits`.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn accept_loop(listener: &TcpListener, sh: &Arc<Shared>) {
    for stream in listener.incoming() {
        if sh.stop.load(Ordering::Acquire) {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let Ok(peer) = stream.peer_addr() else { continue };
        let ip = peer.ip();
        let slot = match sh.conns.acquire(ip) {
            Ok(slot) => slot,
            Err(why) => {
                let (status, code, msg) = match why {
                    ConnRefused::Total => {
                        (503, "server-full", "the server has reached its connection limit; try again later")
                    }
                    ConnRefused::PerIp => (429, "too-many-connections", "too many connections from your address"),
                };
                tracing::debug!(%ip, ?why, "connection refused");
                refuse(sh, stream, status, code, msg);
                continue;
            }
        };
        // The thread takes the stream only once it runs, so a failed spawn can still answer.
        let handoff = Arc::new(Mutex::new(Some(stream)));
        let theirs = Arc::clone(&handoff);
        let sh2 = Arc::clone(sh);
        let spawned = thread::Builder::new().name("conn".into()).stack_size(CONN_STACK).spawn(move || {
            let stream = theirs.lock().ok().and_then(|mut s| s.take());
            if let Some(stream) = stream {
                handle_connection(&sh2, stream, ip, slot);
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a connection thread");
            if let Some(s) = handoff.lock().ok().and_then(|mut s| s.take()) {
                refuse(sh, s, 503, "server-busy", "the server cannot take more connections right now");
            }
        }
    }
}

/// Answers a refused connection without blocking the accept loop. Closing a socket whose
/// request was not read makes the kernel send a reset, which can destroy the answer before the
/// client reads it; so the socket lingers a moment on the closer thread, which reads and drops
/// the request first.
fn refuse(sh: &Shared, stream: TcpStream, status: u16, code: &str, msg: &str) {
    let _ = stream.set_nonblocking(true);
    let _ = io::Write::write(&mut &stream, &http::quick_response(status, code, msg));
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // When the closer is saturated the socket closes now; the refusal still stands.
    let _ = sh.closer.try_send((Instant::now() + LINGER, Arc::new(stream)));
}

/// How long a refused socket lingers before it is closed.
const LINGER: Duration = Duration::from_millis(500);

fn closer_loop(rx: &crossbeam_channel::Receiver<(Instant, Arc<TcpStream>)>) {
    let mut buf = [0u8; 4096];
    while let Ok((at, stream)) = rx.recv() {
        thread::sleep(at.saturating_duration_since(Instant::now()));
        for _ in 0..4 {
            match io::Read::read(&mut &*stream, &mut buf) {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
    }
}

/// Reads and answers the HTTP head. `slot` counts the connection until it closes (it moves into
/// the [`Reader`] of an upgraded WebSocket).
fn handle_connection(sh: &Arc<Shared>, mut stream: TcpStream, ip: IpAddr, slot: ConnSlot) {
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + sh.settings.handshake_timeout;
    let (req, rest) = match http::read_head(&mut stream, deadline) {
        Ok(x) => x,
        Err(HttpError::TooLarge) => {
            let body = http::error_body("head-too-large", "request head too large");
            let _ = http::respond(&mut stream, 431, "application/json", &[], &body, false);
            return;
        }
        Err(HttpError::Malformed(e)) => {
            let body = http::error_body("bad-request", &format!("malformed HTTP request: {e}"));
            let _ = http::respond(&mut stream, 400, "application/json", &[], &body, false);
            return;
        }
        Err(HttpError::Io(e)) => {
            if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock {
                let body = http::error_body("timeout", "request head not received in time");
                let _ = http::respond(&mut stream, 408, "application/json", &[], &body, false);
            }
            return;
        }
    };
    let head = req.method == "HEAD";
    let json = "application/json";
    let result = match http::route(&req) {
        Route::Static(ctype, body) => http::respond(&mut stream, 200, ctype, &[], body, head),
        Route::Health => {
            let body = serde_json::json!({
                "status": "ok",
                "connections": sh.conns.total(),
                "rooms": sh.rooms.len(),
                "relayed": sh.relayed.load(Ordering::Relaxed),
                "uptimeSeconds": sh.started.elapsed().as_secs(),
            });
            http::respond(&mut stream, 200, json, &[], body.to_string().as_bytes(), head)
        }
        Route::Credentials => credentials_endpoint(sh, &mut stream, &req, head),
        Route::Json | Route::SocketIo if !req.wants_websocket => {
            let body = http::error_body("upgrade-required", "this endpoint speaks WebSocket only");
            http::respond(&mut stream, 426, json, &[("Upgrade", "websocket")], &body, head)
        }
        Route::Json => return upgrade(sh, stream, ip, &req, rest, Dialect::Json, slot),
        Route::SocketIo => return upgrade(sh, stream, ip, &req, rest, Dialect::SocketIo, slot),
        Route::SocketIoRefused(msg) => {
            // Engine.IO's own error shape, so socket.io-client users see a familiar body.
            let body = serde_json::json!({ "code": 3, "message": msg }).to_string();
            http::respond(&mut stream, 400, json, &[], body.as_bytes(), head)
        }
        Route::MethodNotAllowed => {
            let body = http::error_body("method-not-allowed", "only GET is served");
            http::respond(&mut stream, 405, json, &[("Allow", "GET, HEAD")], &body, head)
        }
        Route::NotFound => {
            let body = http::error_body("not-found", "no such path; try /, /healthz, /ws or /socket.io/");
            http::respond(&mut stream, 404, json, &[], &body, head)
        }
    };
    if let Err(e) = result {
        tracing::debug!(%ip, error = %e, "HTTP response failed");
    }
}

fn credentials_endpoint(sh: &Shared, stream: &mut TcpStream, req: &Request, head: bool) -> io::Result<()> {
    let json = "application/json";
    let s = &sh.settings;
    if s.auth_token.is_none() {
        let body = http::error_body(
            "disabled",
            "the credentials endpoint is off: start tern-sidecar with --auth-token TOKEN (or the TERN_SIDECAR_AUTH_TOKEN \
             environment variable) and send 'Authorization: Bearer TOKEN'",
        );
        return http::respond(stream, 403, json, &[], &body, head);
    }
    if !req.bearer().is_some_and(|t| token_matches(sh, t)) {
        let body =
            http::error_body("unauthorized", "send 'Authorization: Bearer TOKEN' with the sidecar's --auth-token");
        return http::respond(stream, 401, json, &[("WWW-Authenticate", "Bearer realm=\"tern-sidecar\"")], &body, head);
    }
    let user = req
        .query_param("username")
        .filter(|u| {
            !u.is_empty() && u.len() <= 64 && u.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
        })
        .or_else(random_id)
        .unwrap_or_default();
    let r = creds::rest_response(&s.secret, &s.turn_uris, &user, s.credential_ttl, creds::unix_now());
    let body = serde_json::to_vec(&r).unwrap_or_default();
    http::respond(stream, 200, json, &[], &body, head)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Json,
    SocketIo,
}

fn origin_allowed(policy: &OriginPolicy, req: &Request) -> bool {
    let Some(origin) = req.origin.as_deref() else { return true };
    match policy {
        OriginPolicy::Any => true,
        OriginPolicy::List(list) => list.iter().any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin)),
        OriginPolicy::SameOrigin => {
            let authority = origin.split_once("://").map_or("", |(_, a)| a);
            req.host.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(authority))
        }
    }
}

fn upgrade(
    sh: &Arc<Shared>,
    mut stream: TcpStream,
    ip: IpAddr,
    req: &Request,
    rest: Vec<u8>,
    dialect: Dialect,
    slot: ConnSlot,
) {
    let json = "application/json";
    if !origin_allowed(&sh.settings.origins, req) {
        let origin = req.origin.as_deref().unwrap_or_default();
        tracing::info!(%ip, origin, "origin refused");
        let body = http::error_body(
            "origin-not-allowed",
            &format!("origin {origin:?} is not allowed; the operator can allow it with --allowed-origin {origin}"),
        );
        let _ = http::respond(&mut stream, 403, json, &[], &body, false);
        return;
    }
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
    let token = req.bearer().map(str::to_owned).or_else(|| req.query_param("token"));
    let authed = match (&sh.settings.auth_token, token) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(_), Some(t)) if token_matches(sh, &t) => true,
        (Some(_), Some(_)) => {
            let body = http::error_body("unauthorized", "the auth token is wrong");
            let _ = http::respond(&mut stream, 401, json, &[], &body, false);
            return;
        }
    };
    if io::Write::write_all(&mut stream, &http::switching_protocols(key)).is_err() {
        return;
    }
    let s = &sh.settings;
    let stream = Arc::new(stream);
    let id = sh.next_id.fetch_add(1, Ordering::Relaxed);
    let conn = Arc::new(Conn::new(id, ip, Arc::clone(&stream), s.max_write_buffer, sh.flusher.clone()));
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(s.max_write_buffer)
        .max_message_size(Some(s.max_message_size))
        .max_frame_size(Some(s.max_message_size));
    let ws = WebSocket::from_partially_read(ReadHalf::new(Arc::clone(&stream)), rest, Role::Server, Some(config));
    tracing::debug!(conn = id, %ip, ?dialect, "websocket open");
    let state = match dialect {
        Dialect::Json => State::Json(Slot::new(RoomKind::Json, authed)),
        Dialect::SocketIo => State::Sio { slots: Vec::new(), authed },
    };
    let mut reader =
        Reader { sh: Arc::clone(sh), conn, ws, live: Liveness::new(Instant::now()), dialect, state, _slot: slot };
    reader.start();
    if let Err(e) = stream.set_nonblocking(true) {
        tracing::debug!(%ip, error = %e, "cannot make the socket non-blocking");
        return reader.end(Flow::End);
    }
    sh.pool.submit(reader);
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

/// What the read loop does next.
pub(crate) enum Flow {
    Continue,
    Close(CloseCode, &'static str),
    End,
}

/// One WebSocket connection's read side and session, driven by a [`crate::pool`] worker.
pub(crate) struct Reader {
    sh: Arc<Shared>,
    conn: Arc<Conn>,
    ws: WebSocket<ReadHalf>,
    live: Liveness,
    dialect: Dialect,
    state: State,
    /// The connection's place under the connection limits, released when the reader drops.
    _slot: ConnSlot,
}

/// The member slots of a connection.
enum State {
    Json(Slot),
    Sio { slots: Vec<(Arc<str>, Slot)>, authed: bool },
    Done,
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
        if self.dialect == Dialect::SocketIo {
            let s = &self.sh.settings;
            let sid = random_id().unwrap_or_default();
            self.conn.send_text(&sio::open(
                &sid,
                s.ping_interval.as_millis(),
                s.ping_timeout.as_millis(),
                s.max_message_size,
            ));
            // The open packet announces the first ping one interval from now.
            self.live.next_ping = Instant::now() + s.ping_interval;
        }
    }

    /// Handles what the socket has, up to `budget` messages. `Ok(true)` once drained (the read
    /// would block), `Ok(false)` when the budget ran out first; `Err` ends the connection.
    pub(crate) fn on_readable(&mut self, budget: usize) -> Result<bool, Flow> {
        if self.conn.is_dead() {
            return Err(Flow::End);
        }
        for _ in 0..budget {
            let text = match self.read_one()? {
                Read::Text(t) => t,
                Read::Nothing => continue,
                Read::Drained => return Ok(true),
            };
            match std::mem::replace(&mut self.state, State::Done) {
                State::Json(mut slot) => {
                    let r = self.handle_json(&mut slot, &text);
                    self.state = State::Json(slot);
                    if let Err(refusal) = r {
                        self.ws.get_mut().deferred.flush();
                        self.send_error(&RoomKind::Json, refusal);
                    }
                }
                State::Sio { mut slots, authed } => {
                    let flow = self.handle_sio(&mut slots, authed, &text);
                    self.state = State::Sio { slots, authed };
                    match flow {
                        Flow::Continue => {}
                        other => return Err(other),
                    }
                }
                State::Done => return Err(Flow::End),
            }
        }
        Ok(false)
    }

    /// Pings and the ping timeout.
    pub(crate) fn on_tick(&mut self, now: Instant) -> Result<(), Flow> {
        let s = &self.sh.settings;
        if self.conn.is_dead() {
            return Err(Flow::End);
        }
        if self.live.awaiting_since.is_some_and(|t| now.duration_since(t) >= s.ping_timeout) {
            tracing::debug!(conn = self.conn.id, "ping timeout");
            return Err(Flow::End);
        }
        if now >= self.live.next_ping {
            match self.dialect {
                Dialect::Json => self.conn.send_control(opcode::PING, b""),
                Dialect::SocketIo => self.conn.send_text("2"),
            }
            self.live.next_ping = now + s.ping_interval;
            self.live.awaiting_since.get_or_insert(now);
        }
        Ok(())
    }

    /// Ends the connection: forwarded frames go out, the rooms hear `peer-left`, a close frame
    /// says why, and the socket closes.
    pub(crate) fn end(mut self, flow: Flow) {
        self.ws.get_mut().deferred.flush();
        match std::mem::replace(&mut self.state, State::Done) {
            State::Json(mut slot) => slot.leave(&self.sh),
            State::Sio { mut slots, .. } => {
                for (_, slot) in &mut slots {
                    slot.leave(&self.sh);
                }
            }
            State::Done => {}
        }
        self.close(flow);
        tracing::debug!(conn = self.conn.id, ip = %self.conn.ip, "websocket closed");
        self.conn.finish();
        let _ = self.sh.closer.try_send((Instant::now() + LINGER, Arc::clone(self.conn.stream())));
    }

    /// The socket's registration handle for the worker's poll.
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        self.conn.raw_fd()
    }

    /// Reads one frame and answers control frames.
    fn read_one(&mut self) -> Result<Read, Flow> {
        let dialect = self.dialect;
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
                if dialect == Dialect::Json {
                    self.ws.get_mut().deferred.flush();
                    self.send_error(&RoomKind::Json, (ErrorCode::MessageTooLarge, msg));
                }
                return Err(Flow::Close(CloseCode::Size, msg));
            }
            Err(tungstenite::Error::Protocol(e)) => {
                tracing::debug!(conn = self.conn.id, error = %e, "WebSocket protocol error");
                return Err(Flow::Close(CloseCode::Protocol, "WebSocket protocol error"));
            }
            Err(tungstenite::Error::Utf8(_)) => return Err(Flow::Close(CloseCode::Invalid, "text frame is not UTF-8")),
            Err(_) => return Err(Flow::End),
        };
        self.live.awaiting_since = None;
        match msg {
            Message::Text(t) => Ok(Read::Text(t)),
            Message::Binary(_) => {
                if dialect == Dialect::Json {
                    self.ws.get_mut().deferred.flush();
                    self.send_error(
                        &RoomKind::Json,
                        (ErrorCode::Unsupported, "binary messages are not supported; send JSON text"),
                    );
                    Ok(Read::Nothing)
                } else {
                    Err(Flow::Close(CloseCode::Unsupported, "binary attachments are not supported"))
                }
            }
            Message::Ping(p) => {
                self.conn.send_control(opcode::PONG, &p);
                Ok(Read::Nothing)
            }
            Message::Pong(_) | Message::Frame(_) => Ok(Read::Nothing),
            Message::Close(_) => {
                self.ws.get_mut().deferred.flush();
                self.conn.send_control(opcode::CLOSE, &1000u16.to_be_bytes());
                Err(Flow::End)
            }
        }
    }

    fn close(&self, flow: Flow) {
        if let Flow::Close(code, reason) = flow {
            let cf = CloseFrame { code, reason: reason.into() };
            let mut payload = u16::from(cf.code).to_be_bytes().to_vec();
            payload.extend_from_slice(reason.as_bytes());
            self.conn.send_control(opcode::CLOSE, &payload);
        }
    }

    fn send_error(&self, kind: &RoomKind, (code, message): Refusal) {
        self.conn.send_text(&session::encode(kind, &ServerEvent::Error { code, message }));
    }

    fn handle_json(&mut self, slot: &mut Slot, text: &str) -> Result<(), Refusal> {
        let sh = Arc::clone(&self.sh);
        let sh = &*sh;
        let msg = match ClientMessage::parse(text) {
            Ok(m) => m,
            Err(e) => {
                self.conn.send_text(&protocol::encode(&ServerEvent::Error {
                    code: ErrorCode::BadMessage,
                    message: &e.to_string(),
                }));
                return Ok(());
            }
        };
        let now = Instant::now();
        if !matches!(msg, ClientMessage::Signal { .. }) {
            // Anything this thread sends directly must not overtake what it forwarded.
            self.ws.get_mut().deferred.flush();
        }
        match msg {
            ClientMessage::Create => slot.create(sh, &self.conn, now).map(drop),
            ClientMessage::Join { code } => slot.join(sh, &self.conn, &code, now).map(drop),
            ClientMessage::Signal { data } => {
                let frame = text_frame(&protocol::encode_signal(&slot.id, data));
                slot.forward(sh, &frame, &mut self.ws.get_mut().deferred).map(drop)
            }
            ClientMessage::Leave => {
                slot.leave(sh);
                Ok(())
            }
            ClientMessage::Auth { token } => {
                if slot.authenticate(sh, &token) {
                    Ok(())
                } else {
                    Err((ErrorCode::Unauthorized, "wrong auth token"))
                }
            }
            ClientMessage::Ping => {
                self.conn.send_text(&protocol::encode(&ServerEvent::Pong));
                Ok(())
            }
        }
    }

    fn handle_sio(&mut self, slots: &mut Vec<(Arc<str>, Slot)>, authed: bool, text: &str) -> Flow {
        let packet = match EioPacket::parse(text) {
            Ok(EioPacket::Message(m)) => m,
            Ok(EioPacket::Ping(d)) => {
                self.conn.send_text(&format!("3{d}"));
                return Flow::Continue;
            }
            Ok(EioPacket::Pong(_) | EioPacket::Upgrade | EioPacket::Noop) => return Flow::Continue,
            Ok(EioPacket::Close) => return Flow::End,
            Err(_) => return Flow::Close(CloseCode::Invalid, "not an Engine.IO packet"),
        };
        let p = match SioPacket::parse(packet) {
            Ok(p) => p,
            Err(sio::SioError::Binary) => {
                return Flow::Close(CloseCode::Unsupported, "binary attachments are not supported");
            }
            Err(_) => return Flow::Close(CloseCode::Invalid, "not a Socket.IO packet"),
        };
        let sh = Arc::clone(&self.sh);
        let sh = &*sh;
        if p.kind != SioType::Event {
            // Anything this thread sends directly must not overtake what it forwarded.
            self.ws.get_mut().deferred.flush();
        }
        match p.kind {
            SioType::Connect => {
                if let Some((_, slot)) = slots.iter().find(|(n, _)| &**n == p.nsp) {
                    self.conn.send_text(&sio::connect_ok(p.nsp, &slot.id));
                    return Flow::Continue;
                }
                if slots.len() >= MAX_NAMESPACES {
                    self.conn.send_text(&sio::connect_error(p.nsp, "too many namespaces on one connection"));
                    return Flow::Continue;
                }
                let ok = authed
                    || match p.connect_token() {
                        Ok(Some(t)) => token_matches(sh, &t),
                        _ => false,
                    };
                if !ok {
                    self.conn.send_text(&sio::connect_error(
                        p.nsp,
                        "unauthorized: this server requires its auth token, e.g. io(url, { auth: { token } })",
                    ));
                    return Flow::Continue;
                }
                let nsp: Arc<str> = p.nsp.into();
                let slot = Slot::new(RoomKind::SocketIo(Arc::clone(&nsp)), true);
                self.conn.send_text(&sio::connect_ok(p.nsp, &slot.id));
                slots.push((nsp, slot));
            }
            SioType::Disconnect => {
                if let Some(i) = slots.iter().position(|(n, _)| &**n == p.nsp) {
                    let (_, mut slot) = slots.swap_remove(i);
                    slot.leave(sh);
                }
            }
            SioType::Event => {
                let Some((_, slot)) = slots.iter_mut().find(|(n, _)| &**n == p.nsp) else {
                    // socket.io ignores packets for namespaces the socket has not connected.
                    return Flow::Continue;
                };
                let result = match p.event() {
                    Ok(ev) => self.sio_event(slot, &ev),
                    Err(e) => {
                        tracing::debug!(conn = self.conn.id, error = %e, "bad event");
                        Err((ErrorCode::BadMessage, "an EVENT must be a JSON array starting with the event name"))
                    }
                };
                match (result, p.ack) {
                    (Ok(args), Some(id)) => self.conn.send_text(&sio::ack(p.nsp, id, &args)),
                    (Ok(_), None) => {}
                    (Err(r), ack) => {
                        self.ws.get_mut().deferred.flush();
                        self.send_error(&slot.kind, r);
                        if let Some(id) = ack {
                            let e =
                                serde_json::json!({ "error": { "code": r.0.as_str(), "message": r.1 } }).to_string();
                            self.conn.send_text(&sio::ack(p.nsp, id, &[e]));
                        }
                    }
                }
            }
            SioType::Ack | SioType::ConnectError => {}
        }
        Flow::Continue
    }

    /// Runs one event of the seed's flow; returns the ack arguments.
    fn sio_event(&mut self, slot: &mut Slot, ev: &sio::Event<'_>) -> Result<Vec<String>, Refusal> {
        let sh = Arc::clone(&self.sh);
        let sh = &*sh;
        let now = Instant::now();
        let nsp = match &slot.kind {
            RoomKind::SocketIo(n) => Arc::clone(n),
            RoomKind::Json => return Err((ErrorCode::BadMessage, "wrong dialect")),
        };
        if matches!(&*ev.name, "TV_INIT" | "JOIN_ROOM" | "LEAVE_ROOM") {
            // These send to the others directly: what was forwarded before goes first.
            self.ws.get_mut().deferred.flush();
        }
        match &*ev.name {
            "TV_INIT" => {
                let code = slot.create(sh, &self.conn, now)?;
                Ok(vec![serde_json::Value::from(code).to_string()])
            }
            "JOIN_ROOM" => {
                let code = ev.args.first().and_then(|a| join_code(a)).ok_or((
                    ErrorCode::BadMessage,
                    "JOIN_ROOM takes the code: a string, a number, or an object with a \"code\" field",
                ))?;
                let code = slot.join(sh, &self.conn, &code, now)?;
                Ok(vec![serde_json::json!({ "code": code }).to_string()])
            }
            "LEAVE_ROOM" => {
                slot.leave(sh);
                Ok(vec![])
            }
            name => {
                let out = match name {
                    "CLIENT_OFFER_TO_SERVER" => "CLIENT_OFFER_TO_TV",
                    "TV_ANSWER_TO_SERVER" => "TV_ANSWER_TO_CLIENT",
                    other => other,
                };
                let args: Vec<&str> = ev.args.iter().map(|a| a.get()).collect();
                slot.forward(sh, &text_frame(&sio::event(&nsp, out, &args)), &mut self.ws.get_mut().deferred)?;
                Ok(vec![])
            }
        }
    }
}

/// The code argument of `JOIN_ROOM`: `"123456"`, `123456` or `{ "code": "123456" }` (also
/// `room` / `roomId`, names seen in socket.io examples).
fn join_code(arg: &serde_json::value::RawValue) -> Option<String> {
    if let Some(c) = protocol::code_from_json(arg) {
        return Some(c.into_owned());
    }
    #[derive(serde::Deserialize)]
    struct Obj<'a> {
        #[serde(default, borrow)]
        code: Option<&'a serde_json::value::RawValue>,
        #[serde(default, borrow)]
        room: Option<&'a serde_json::value::RawValue>,
        #[serde(default, borrow, rename = "roomId")]
        room_id: Option<&'a serde_json::value::RawValue>,
    }
    if !arg.get().starts_with('{') {
        return None; // serde would also read a struct from an array
    }
    let o: Obj<'_> = serde_json::from_str(arg.get()).ok()?;
    let raw = o.code.or(o.room).or(o.room_id)?;
    protocol::code_from_json(raw).map(|c| c.into_owned())
}

fn sweep_loop(sh: &Arc<Shared>) {
    let tick = (sh.settings.room_ttl / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut last_limiter_sweep = Instant::now();
    while !sh.stop.load(Ordering::Acquire) {
        thread::sleep(tick);
        let now = Instant::now();
        for (room, members) in sh.rooms.expire(now) {
            tracing::debug!(room = %room.code, "room expired unpaired");
            let frame = text_frame(&session::encode(
                &room.kind,
                &ServerEvent::Error {
                    code: ErrorCode::RoomExpired,
                    message: "the room expired before it was paired; create a new one",
                },
            ));
            for m in members {
                m.conn.send_frame_bytes(&frame);
            }
        }
        if now.duration_since(last_limiter_sweep) >= Duration::from_secs(60) {
            sh.joins.sweep(now);
            last_limiter_sweep = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: Option<&str>, origin: Option<&str>) -> Request {
        Request { host: host.map(Into::into), origin: origin.map(Into::into), ..Request::default() }
    }

    #[test]
    fn origin_policies() {
        let same = OriginPolicy::SameOrigin;
        assert!(origin_allowed(&same, &req(Some("a:8080"), None)), "non-browser clients send no Origin");
        assert!(origin_allowed(&same, &req(Some("a:8080"), Some("http://a:8080"))));
        assert!(!origin_allowed(&same, &req(Some("a:8080"), Some("http://evil.example"))));
        assert!(!origin_allowed(&same, &req(Some("a:8080"), Some("null"))));
        let list = OriginPolicy::List(vec!["https://app.example/".into()]);
        assert!(origin_allowed(&list, &req(Some("x"), Some("https://app.example"))));
        assert!(!origin_allowed(&list, &req(Some("x"), Some("https://evil.example"))));
        assert!(origin_allowed(&OriginPolicy::Any, &req(None, Some("null"))));
    }

    #[test]
    fn join_code_accepts_the_shapes_seen_in_the_wild() {
        let raw = |s: &str| serde_json::from_str::<Box<serde_json::value::RawValue>>(s).unwrap();
        assert_eq!(join_code(&raw(r#""123456""#)).as_deref(), Some("123456"));
        assert_eq!(join_code(&raw("123456")).as_deref(), Some("123456"));
        assert_eq!(join_code(&raw(r#"{"code":"1"}"#)).as_deref(), Some("1"));
        assert_eq!(join_code(&raw(r#"{"roomId":7}"#)).as_deref(), Some("7"));
        assert_eq!(join_code(&raw("[1]")), None);
        assert_eq!(join_code(&raw("{}")), None);
    }
}
