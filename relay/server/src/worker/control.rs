//! The worker's side of the control plane: [`Control`] messages (reload, drain, the admin API's
//! sessions and kills, shutdown) and the publication of its counters for the exporter.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use relay_proto::server::{Event, SessionInfo};
use relay_proto::types::FiveTuple;

use super::{Control, Worker};
use crate::host::Host;
use crate::metrics::{Gauges, Metrics, PUBLISH_EVERY, ShellStats, transport_index};

/// A worker's operations state: its shell counters and where it publishes them.
pub(super) struct Ops {
    /// Counters the shell bumps (TLS handshakes, live allocations by transport, idle time).
    pub(crate) stats: ShellStats,
    metrics: Arc<Metrics>,
    index: usize,
    started: Instant,
    last_publish: Option<Instant>,
    draining: bool,
    /// An allocation came or went: publish at the end of this loop turn, so the allocation
    /// gauges (and drain's exit) never wait for the next wake-up.
    dirty: bool,
}

impl Ops {
    /// The state of worker `index`, publishing into `metrics.workers[index]`.
    pub(super) fn new(metrics: Arc<Metrics>, index: usize) -> Self {
        Ops {
            stats: ShellStats::default(),
            metrics,
            index,
            started: Instant::now(),
            last_publish: None,
            draining: false,
            dirty: false,
        }
    }

    /// Keeps the live-allocation gauges from the core's events.
    pub(super) fn count_event(&mut self, e: &Event) {
        match e {
            Event::AllocationCreated { tuple, .. } => {
                self.stats.active[transport_index(tuple.transport)] += 1;
                self.dirty = true;
            }
            Event::AllocationDeleted { tuple, .. } => {
                let n = &mut self.stats.active[transport_index(tuple.transport)];
                *n = n.saturating_sub(1);
                self.dirty = true;
            }
            Event::PeerDenied { .. } => {}
        }
    }
}

impl Worker {
    pub(super) fn handle_control(&mut self, msg: Control) {
        let now = Instant::now();
        match msg {
            Control::Shutdown => self.shared.shutdown.store(true, Ordering::Relaxed),
            Control::Reload(r) => {
                self.server.set_auth(r.auth.clone());
                self.server.set_policy(r.policy.clone());
                tracing::debug!(target: "relay", worker = self.id, "configuration reloaded");
            }
            Control::Drain { alternates } => {
                if !alternates.is_empty() {
                    self.server.set_alternate_servers(alternates);
                }
                self.server.set_draining(true);
                self.ops.draining = true;
                // Published at once: the control thread waits for every worker's
                // acknowledgement before it trusts the allocation count.
                self.publish_stats(now, true);
            }
            Control::Sessions(reply) => {
                let _ = reply.send(self.server.sessions(now));
            }
            Control::Kill { id, reply } => {
                let target = self.server.sessions(now).into_iter().find(|s| s.id.as_u64() == id);
                let killed = target.is_some_and(|s| self.kill_session(&s));
                let _ = reply.send(killed);
            }
        }
    }

    /// Ends one allocation; a TCP/TLS client's connection is closed with it, so the client
    /// learns at once.
    fn kill_session(&mut self, s: &SessionInfo) -> bool {
        let mut host = Host { registry: self.poll.registry(), relays: &mut self.relays, shared: &self.shared };
        let killed = self.server.kill(s.id, &mut host);
        self.flush();
        if killed {
            tracing::info!(target: "relay", tuple = %s.tuple, id = s.id.as_u64(), user = %s.username.escape_debug(), "allocation ended by the admin API");
            self.close_killed_connection(s.tuple);
        }
        killed
    }

    fn close_killed_connection(&mut self, tuple: FiveTuple) {
        if tuple.transport.is_stream()
            && let Some(&idx) = self.conn_by_tuple.get(&tuple)
        {
            self.close_conn(idx, "allocation ended by the admin API");
        }
    }

    /// Copies the counters out for the exporter: at most every [`PUBLISH_EVERY`], unless forced
    /// or an allocation came or went.
    pub(super) fn publish_stats(&mut self, now: Instant, force: bool) {
        let recent = self.ops.last_publish.is_some_and(|t| now.saturating_duration_since(t) < PUBLISH_EVERY);
        if recent && !force && !self.ops.dirty {
            return;
        }
        self.ops.last_publish = Some(now);
        self.ops.dirty = false;
        self.conn_state.export(&mut self.ops.stats);
        let busy = now.saturating_duration_since(self.ops.started).saturating_sub(self.ops.stats.idle);
        let g = Gauges {
            allocations: self.server.allocation_count(),
            free_ports: self.server.free_ports(),
            tcp_connections: self.conn_by_tuple.len(),
            busy,
            draining: self.ops.draining,
        };
        let heartbeat = now.saturating_duration_since(self.ops.metrics.epoch).max(Duration::from_millis(1));
        if let Some(m) = self.ops.metrics.workers.get(self.ops.index) {
            m.publish(self.server.stats(), &self.ops.stats, g, heartbeat);
        }
    }
}
