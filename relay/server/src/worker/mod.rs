//! One worker: a thread with its own `mio::Poll`, its own SO_REUSEPORT listening sockets, its
//! own sans-IO [`Server`] and the relay sockets of the allocations that server owns.
//!
//! The worker moves bytes and nothing else: every decision is the core's. UDP datagrams are
//! read in batches into slots with the core's headroom, so it writes ChannelData headers in
//! place, and the answers go out in batches at the end of each turn ([`udp`]). Reads are
//! bounded per readiness event; a socket that was not drained is revisited on the next turn,
//! so one busy socket cannot starve the others.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use relay_proto::server::{Event, LogLimiter, Server, SessionInfo};
use relay_proto::types::{FiveTuple, Transport};
use rustc_hash::FxHashMap;

use crate::host::{Host, RelaySlots, Shared};

mod coalesce;
mod conn;
mod control;
pub(crate) mod handoff;
mod mmsg;
mod udp;

use self::coalesce::Coalescer;
use self::conn::{Conn, ConnState};
use self::control::Ops;
use self::handoff::Endpoint;
use self::udp::UdpIo;
use crate::process::thread_cpu_time;
use crate::sockets::{CONN_BASE, TCP_BASE, TLS_BASE, UDP_BASE, WAKER};
use crate::tls::TlsStore;

/// Datagrams read from one socket per readiness event before moving on.
pub(super) const READ_BUDGET: usize = 64;
/// Largest UDP payload.
pub(super) const MAX_DATAGRAM: usize = 65535;
/// Peer refusals handed to the logger per second per worker: a cheap flood guard in front of
/// the logging layer's fair per-source limit (10 lines a minute per source); the rest are
/// counted in the next line that passes.
const DENY_LOG_PER_SECOND: u32 = 200;

/// Messages to a worker from the control thread; the waker rings after each. Handled in
/// `control.rs`.
pub(crate) enum Control {
    /// Leave the loop.
    Shutdown,
    /// SIGHUP: new users, REST secrets and peer policy. Live allocations stay.
    Reload(Arc<crate::control::Reloadable>),
    /// SIGUSR1: refuse new allocations (300 to one of these alternates, or 508 if none).
    Drain { alternates: Vec<SocketAddr> },
    /// Admin API: this worker's allocations.
    Sessions(Sender<Vec<SessionInfo>>),
    /// Admin API: end one allocation (by [`relay_proto::server::AllocId::as_u64`]).
    Kill { id: u64, reply: Sender<bool> },
}

/// The sockets a worker starts with, bound before any thread starts.
pub(crate) struct WorkerSockets {
    pub(crate) udp: Vec<(SocketAddr, UdpSocket)>,
    pub(crate) tcp: Vec<(SocketAddr, TcpListener)>,
    /// TLS listeners (`tls-listening-port`).
    pub(crate) tls: Vec<(SocketAddr, TcpListener)>,
}

pub(crate) struct Worker {
    id: usize,
    poll: Poll,
    server: Server,
    udp: Vec<(SocketAddr, UdpSocket)>,
    tcp: Vec<(SocketAddr, TcpListener)>,
    tls: Vec<(SocketAddr, TcpListener)>,
    /// The certificate for TLS connections; `None` when TLS is off.
    tls_store: Option<Arc<TlsStore>>,
    conn_state: ConnState,
    relays: RelaySlots,
    conns: Vec<Option<Conn>>,
    free_conns: Vec<usize>,
    conn_by_tuple: FxHashMap<FiveTuple, usize>,
    shared: Arc<Shared>,
    control: Receiver<Control>,
    io: UdpIo,
    pending: Vec<Token>,
    paused_accept: Option<Instant>,
    accept_failures: u64,
    last_accept_warning: Option<Instant>,
    max_allocate_timeout: Duration,
    coalesce: Option<Coalescer>,
    last_sweep: Instant,
    /// Counters and state of the operator's side (metrics, drain).
    ops: Ops,
    deny_log: LogLimiter,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: usize,
        poll: Poll,
        server: Server,
        sockets: WorkerSockets,
        shared: Arc<Shared>,
        control: Receiver<Control>,
        max_allocate_timeout: Duration,
        handoff: Endpoint,
    ) -> io::Result<Worker> {
        let WorkerSockets { mut udp, mut tcp, mut tls } = sockets;
        for (i, (_, s)) in udp.iter_mut().enumerate() {
            poll.registry().register(s, Token(UDP_BASE + i), Interest::READABLE)?;
        }
        for (i, (_, l)) in tcp.iter_mut().enumerate() {
            poll.registry().register(l, Token(TCP_BASE + i), Interest::READABLE)?;
        }
        for (i, (_, l)) in tls.iter_mut().enumerate() {
            poll.registry().register(l, Token(TLS_BASE + i), Interest::READABLE)?;
        }
        let io = UdpIo::new(handoff, udp.first().map(|(_, s)| s));
        Ok(Worker {
            id,
            poll,
            server,
            udp,
            tcp,
            tls,
            tls_store: None,
            conn_state: ConnState::default(),
            relays: RelaySlots::new(),
            conns: Vec::new(),
            free_conns: Vec::new(),
            conn_by_tuple: FxHashMap::default(),
            ops: Ops::new(shared.metrics.clone(), id),
            shared,
            control,
            io,
            pending: Vec::new(),
            paused_accept: None,
            accept_failures: 0,
            last_accept_warning: None,
            max_allocate_timeout,
            coalesce: None,
            last_sweep: Instant::now(),
            deny_log: LogLimiter::new(DENY_LOG_PER_SECOND),
        })
    }

    /// Serves TLS with this store's certificate (on the TLS listeners, and to ClientHellos on
    /// the TCP port).
    pub(crate) fn with_tls(mut self, store: Option<Arc<TlsStore>>) -> Worker {
        self.tls_store = store;
        self
    }

    /// `relay-coalesce-us`: after a turn that relayed only a few datagrams, wait this long
    /// before polling again, so the next turn finds several, in the epochs where that
    /// measurably saves CPU (see [`coalesce`](self::coalesce)).
    pub(crate) fn with_coalesce(mut self, coalesce: Option<Duration>) -> Worker {
        self.coalesce = coalesce.map(Coalescer::new);
        self
    }

    /// Runs until shutdown.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        tracing::debug!(target: "relay", worker = self.id, "worker started");
        loop {
            let now = Instant::now();
            let mut timeout = if self.pending.is_empty() { self.next_timeout(now) } else { Some(Duration::ZERO) };
            // Other workers ring the waker only while this one may sleep in poll.
            if self.io.handoff.may_sleep() {
                timeout = Some(Duration::ZERO);
            }
            let polled = self.poll.poll(&mut events, timeout);
            if self.io.handoff.awake() {
                self.pending.push(WAKER);
            }
            if let Err(e) = polled
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!(target: "relay", worker = self.id, error = %e, "poll failed");
                return;
            }
            self.ops.stats.idle += now.elapsed();
            let now = Instant::now();
            let unix_now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let mut ready: Vec<Token> = std::mem::take(&mut self.pending);
            ready.extend(events.iter().map(|e| e.token()));
            let relayed_before = self.relayed();
            for token in ready {
                self.dispatch(token, now, unix_now);
            }
            // Batched sends go out once per turn (and whenever the receive slots run low).
            self.flush_tx();
            if self.shared.shutdown.load(Ordering::Relaxed) {
                break;
            }
            self.server.handle_timeout(
                now,
                &mut Host { registry: self.poll.registry(), relays: &mut self.relays, shared: &self.shared },
            );
            self.flush();
            if now.duration_since(self.last_sweep) >= Duration::from_secs(1) {
                self.last_sweep = now;
                self.sweep_connections(now);
            }
            self.handshake_timers(now);
            if self.paused_accept.is_some_and(|t| t <= now) {
                self.paused_accept = None;
                for i in 0..self.tcp.len() {
                    self.pending.push(Token(TCP_BASE + i));
                }
                for i in 0..self.tls.len() {
                    self.pending.push(Token(TLS_BASE + i));
                }
            }
            self.publish_stats(now, false);
            // At moderate rates every datagram would cost a sleep and a wake-up in poll (about
            // 40 % of the CPU in an echo profile): with coalescing, a turn that relayed only a
            // few datagrams may be followed by a short sleep, so the next turn finds several.
            // Busy turns never sleep, so saturation throughput is unchanged.
            let relayed = self.relayed() - relayed_before;
            let pending = !self.pending.is_empty();
            if let Some(sleep) =
                self.coalesce.as_mut().and_then(|c| c.after_turn(now, relayed, pending, thread_cpu_time))
            {
                let t = Instant::now();
                std::thread::sleep(sleep);
                self.ops.stats.idle += t.elapsed();
                self.ops.stats.coalesce_sleeps += 1;
            }
        }
        tracing::debug!(target: "relay", worker = self.id, "worker stopped");
    }

    /// Datagrams relayed so far, both directions.
    fn relayed(&self) -> u64 {
        let s = self.server.stats();
        s.packets_to_peer + s.packets_from_peer
    }

    fn next_timeout(&self, now: Instant) -> Option<Duration> {
        let mut t = Duration::from_secs(1);
        if let Some(d) = self.server.poll_timeout() {
            t = t.min(d.saturating_duration_since(now));
        }
        if let Some(p) = self.paused_accept {
            t = t.min(p.saturating_duration_since(now));
        }
        if let Some(h) = self.handshake_timer() {
            t = t.min(h.saturating_duration_since(now));
        }
        Some(t)
    }

    fn dispatch(&mut self, token: Token, now: Instant, unix_now: u64) {
        match token.0 {
            p if p <= usize::from(u16::MAX) => self.relay_readable(p as u16, now),
            WAKER_ID => {
                self.control();
                self.handoff_ready(now);
            }
            t if (UDP_BASE..TCP_BASE).contains(&t) => self.udp_readable(t - UDP_BASE, now, unix_now),
            t if (TCP_BASE..TLS_BASE).contains(&t) => self.accept(t - TCP_BASE, false, now),
            t if (TLS_BASE..WAKER_ID).contains(&t) => self.accept(t - TLS_BASE, true, now),
            t if t >= CONN_BASE => self.conn_ready(t - CONN_BASE, now, unix_now),
            _ => {}
        }
    }

    // ---------------------------------------------------------------------------------
    // Control
    // ---------------------------------------------------------------------------------

    fn control(&mut self) {
        while let Ok(msg) = self.control.try_recv() {
            self.handle_control(msg);
        }
    }

    // ---------------------------------------------------------------------------------
    // Core outputs
    // ---------------------------------------------------------------------------------

    /// Sends queued control messages and acts on events.
    fn flush(&mut self) {
        while let Some(t) = self.server.poll_transmit() {
            match t.to.transport {
                Transport::Udp => {
                    if let Some((_, s)) = self.udp.iter().find(|(a, _)| *a == t.to.server) {
                        let _ = s.send_to(&t.data, t.to.client);
                    }
                }
                Transport::Tcp | Transport::Tls => {
                    if let Some(&idx) = self.conn_by_tuple.get(&t.to) {
                        self.conn_send(idx, &t.data, true);
                    }
                }
            }
        }
        while let Some(e) = self.server.poll_event() {
            self.ops.count_event(&e);
            match e {
                Event::AllocationCreated { tuple, relays, .. } => {
                    self.io.handoff.allocation_created(tuple, &relays);
                    self.set_has_allocation(tuple, true);
                }
                Event::AllocationDeleted { tuple, .. } => {
                    self.io.handoff.allocation_deleted(tuple);
                    self.set_has_allocation(tuple, false);
                }
                Event::PeerDenied { tuple, peer, reason } => {
                    // Clients choose how often this happens: a bounded number of lines per second.
                    if let Some(suppressed) = self.deny_log.allow(Instant::now()) {
                        tracing::info!(target: "relay", %tuple, %peer, %reason, suppressed, "peer refused by policy");
                    }
                }
            }
        }
    }

    fn set_has_allocation(&mut self, tuple: FiveTuple, v: bool) {
        if let Some(&idx) = self.conn_by_tuple.get(&tuple)
            && let Some(Some(c)) = self.conns.get_mut(idx)
        {
            c.has_allocation = v;
            if !v {
                // The allocation timeout starts again for a connection that lost its allocation.
                c.accepted = Instant::now();
            }
        }
    }
}

const WAKER_ID: usize = WAKER.0;
