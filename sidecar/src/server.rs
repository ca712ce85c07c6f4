//! The process shell: binding, the accept loop, and the helper threads.
//!
//! Threads: `accept` (caps are checked here, so a refused connection costs no thread); one
//! short-lived `conn` per connection ([`CONN_STACK`] bytes of stack) that reads the HTTP head
//! with a deadline and answers it ([`crate::routes`]); a few `ws` workers ([`crate::pool`]) that
//! read the upgraded connections; one `flush` ([`crate::conn::Flusher`]); one `sweep` (room
//! expiry, limiter upkeep); one `close` (lets closed sockets linger so their last frames
//! arrive). Nothing from the network can panic a thread: every parse returns an error that
//! becomes an `error` message or an HTTP status.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::http;
use crate::limits::ConnRefused;
use crate::pool::{Pool, Worker};
use crate::routes;
use crate::session;
use crate::settings::Settings;
use crate::shared::{Helpers, LINGER, Lingering, Shared};

/// Stack of a connection thread. Parsing is iterative (serde_json validates nested JSON without
/// recursion, see `wire::json`), so a small stack is enough.
pub const CONN_STACK: usize = 128 * 1024;

/// A bound server, not yet accepting.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    helpers: Helpers,
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
        let tick = (settings.ping_interval.min(settings.ping_timeout) / 4)
            .clamp(Duration::from_millis(20), Duration::from_secs(1));
        let n = thread::available_parallelism().map_or(2, |n| n.get()).min(8);
        let (pool, workers) = Pool::new(n, tick)?;
        let (shared, helpers) = Shared::new(settings, Instant::now());
        Ok(Server { listener, shared, pool: Arc::new(pool), helpers, workers })
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
        let pool = Arc::clone(&self.pool);
        let listener = self.listener.try_clone()?;
        self.start_helpers()?;
        accept_loop(&listener, &shared, &pool);
        Ok(())
    }

    /// Serves on background threads.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let addr = self.local_addr()?;
        let shared = Arc::clone(&self.shared);
        let pool = Arc::clone(&self.pool);
        let listener = self.listener.try_clone()?;
        let sh = Arc::clone(&shared);
        self.start_helpers()?;
        let accept = thread::Builder::new().name("accept".into()).spawn(move || accept_loop(&listener, &sh, &pool))?;
        Ok(ServerHandle { addr, shared, accept: Some(accept) })
    }

    fn start_helpers(self) -> io::Result<()> {
        let Helpers { flusher, closer } = self.helpers;
        thread::Builder::new().name("flush".into()).stack_size(CONN_STACK).spawn(move || flusher.run())?;
        let sh = Arc::clone(&self.shared);
        thread::Builder::new().name("sweep".into()).stack_size(CONN_STACK).spawn(move || sweep_loop(&sh))?;
        for w in self.workers {
            thread::Builder::new().name("ws".into()).stack_size(4 * CONN_STACK).spawn(move || w.run())?;
        }
        thread::Builder::new().name("close".into()).stack_size(CONN_STACK).spawn(move || closer_loop(&closer))?;
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
        self.shared.stats.relayed.load(Ordering::Relaxed)
    }

    /// Stops accepting (open connections run on until their clients leave).
    pub fn shutdown(mut self) {
        self.stop_accepting();
    }

    fn stop_accepting(&mut self) {
        self.shared.stop();
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

fn accept_loop(listener: &TcpListener, sh: &Arc<Shared>, pool: &Arc<Pool>) {
    for stream in listener.incoming() {
        if sh.stopping() {
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
        let (sh2, pool2) = (Arc::clone(sh), Arc::clone(pool));
        let spawned = thread::Builder::new().name("conn".into()).stack_size(CONN_STACK).spawn(move || {
            let stream = theirs.lock().ok().and_then(|mut s| s.take());
            if let Some(stream) = stream {
                routes::handle_connection(&sh2, &pool2, stream, ip, slot);
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

/// Answers a refused connection without blocking the accept loop. The socket lingers a moment
/// on the closer thread, which reads and drops the request first (see [`LINGER`]).
fn refuse(sh: &Shared, stream: TcpStream, status: u16, code: &str, msg: &str) {
    let _ = stream.set_nonblocking(true);
    let _ = io::Write::write(&mut &stream, &http::quick_response(status, code, msg));
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // When the closer is saturated the socket closes now; the refusal still stands.
    let _ = sh.closer.try_send((Instant::now() + LINGER, Arc::new(stream)));
}

fn closer_loop(rx: &Receiver<Lingering>) {
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

fn sweep_loop(sh: &Arc<Shared>) {
    let tick = (sh.settings.room_ttl / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut last_limiter_sweep = Instant::now();
    while !sh.stopping() {
        thread::sleep(tick);
        let now = Instant::now();
        session::expire_rooms(sh, now);
        if now.duration_since(last_limiter_sweep) >= Duration::from_secs(60) {
            sh.joins.sweep(now);
            last_limiter_sweep = now;
        }
    }
}
