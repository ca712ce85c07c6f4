//! The state every thread shares: the settings, the room table, the limits and the counters,
//! plus the channels to the helper threads (the outbox flusher and the closer).
//!
//! Building a [`Shared`] opens no socket and starts no thread (the server does that with the
//! receiving ends), so the session logic above it runs in unit tests as it does in the server.

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use subtle::ConstantTimeEq;

use crate::conn::{Conn, Flusher};
use crate::limits::{ConnLimits, JoinLimiter};
use crate::rooms::{LocalRooms, RoomTable};
use crate::settings::Settings;

/// A socket to close once its deadline passes (see [`crate::server`]'s closer thread).
pub type Lingering = (Instant, Arc<TcpStream>);

/// How long a finished socket lingers before it is closed. Closing a socket with unread input
/// makes the kernel send a reset, which can destroy the last answer before the client reads it;
/// the closer thread reads and drops what arrives meanwhile.
pub const LINGER: Duration = Duration::from_millis(500);

/// State shared by every thread.
#[derive(Debug)]
pub struct Shared {
    /// The settings.
    pub settings: Settings,
    /// The room table.
    pub rooms: Box<dyn RoomTable>,
    /// Connection counts.
    pub conns: Arc<ConnLimits>,
    /// Join-attempt limits.
    pub joins: JoinLimiter,
    /// Counters for `/healthz`.
    pub stats: Stats,
    /// Registers connections whose outbox has a backlog with the flusher thread.
    pub flusher: Sender<Arc<Conn>>,
    /// Sockets that should linger a moment before they close.
    pub closer: Sender<Lingering>,
    next_id: AtomicU64,
    stop: AtomicBool,
    /// When the server started.
    pub started: Instant,
}

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages forwarded to other members.
    pub relayed: AtomicU64,
}

/// The receiving ends of [`Shared`]'s channels, for the threads the server starts.
#[derive(Debug)]
pub struct Helpers {
    /// The outbox flusher.
    pub flusher: Flusher,
    /// Sockets to close after their deadline.
    pub closer: Receiver<Lingering>,
}

impl Shared {
    /// Shared state for `settings`, and the helper ends the server runs.
    pub fn new(settings: Settings, now: Instant) -> (Arc<Shared>, Helpers) {
        let (flusher, flusher_tx) = Flusher::new(settings.write_timeout);
        let (closer, closer_rx) = crossbeam_channel::bounded(4096);
        let shared = Arc::new(Shared {
            rooms: Box::new(LocalRooms::new(settings.room_code_length, settings.room_ttl, settings.max_room_members)),
            conns: Arc::new(ConnLimits::new(settings.max_connections, settings.max_connections_per_ip)),
            joins: JoinLimiter::new(settings.max_joins_per_minute, settings.max_failed_joins_per_minute, now),
            stats: Stats::default(),
            flusher: flusher_tx,
            closer,
            next_id: AtomicU64::new(1),
            stop: AtomicBool::new(false),
            started: now,
            settings,
        });
        (shared, Helpers { flusher, closer: closer_rx })
    }

    /// A process-unique connection id (log correlation only).
    pub fn next_conn_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether `token` is the configured auth token (constant time).
    pub fn token_matches(&self, token: &str) -> bool {
        self.settings.auth_token.as_ref().is_some_and(|t| bool::from(t.expose().ct_eq(token.as_bytes())))
    }

    /// Asks the accept loop and the sweeper to stop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Whether [`Shared::stop`] was called.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}
