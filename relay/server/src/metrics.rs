//! Counters and the Prometheus exporter (`prometheus`, `prometheus-port`, `prometheus-address`,
//! `prometheus-path`, `prometheus-username-labels`).
//!
//! Each worker keeps its counters as plain integers: the core's [`Stats`] and the shell's
//! [`ShellStats`]. About ten times a second (and at once on a control message) the worker copies
//! them into its own [`WorkerMetrics`], a cache-line-aligned block of relaxed atomics. The
//! exporter thread sums those blocks when scraped. No lock is taken on the data path, and a
//! scrape costs the workers nothing.
//!
//! No series is labelled by user name unless `prometheus-username-labels` is on; even then the
//! per-user series are built at scrape time from the live allocations, so a user whose last
//! allocation ended leaves no series behind (the label set cannot grow without bound, which is
//! how coturn's exporter leaked memory).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use relay_proto::policy::DenyReason;
use relay_proto::server::{SessionInfo, Stats, UnauthorizedReason};
use relay_proto::types::Transport;

use crate::control::Workers;
use crate::http::{Handler, Request, Response};

/// How often a worker copies its counters out.
pub(crate) const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// A worker that has not published for this long is reported as stalled by `/healthz`.
pub(crate) const STALL_AFTER: Duration = Duration::from_secs(10);

const TRANSPORTS: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Tls];
const AUTH_REASONS: usize = UnauthorizedReason::ALL.len();
const DENY_REASONS: usize = DenyReason::ALL.len();

/// Index of a transport in the `[_; 3]` arrays (the core's order: udp, tcp, tls).
pub(crate) fn transport_index(t: Transport) -> usize {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
    }
}

/// Counters the shell keeps next to the core's [`Stats`], as plain integers owned by the
/// worker; they reach the exporter with the next publication. The connection counters are
/// copied in from the worker's `ConnState` (`worker/conn.rs`) at publication.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShellStats {
    /// TLS handshakes begun (a ClientHello on the TLS port, or on the TCP port).
    pub(crate) tls_handshakes: u64,
    /// TLS handshakes that failed (bad ClientHello, no common version or suite, an alert).
    pub(crate) tls_handshake_failures: u64,
    /// TLS handshakes that did not finish within the handshake timeout.
    pub(crate) tls_handshake_timeouts: u64,
    /// TCP/TLS clients disconnected because they read too slowly.
    pub(crate) slow_readers: u64,
    /// TCP/TLS connections closed without an allocation after `max-allocate-timeout`.
    pub(crate) no_allocation_closes: u64,
    /// Live allocations by client transport, kept from the core's events.
    pub(crate) active: [u64; 3],
    /// Time spent asleep in `poll`, or in the coalescing sleep.
    pub(crate) idle: Duration,
    /// Coalescing sleeps taken (`relay-coalesce-us`).
    pub(crate) coalesce_sleeps: u64,
}

/// What a worker knows besides its counters, at publication time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gauges {
    pub(crate) allocations: usize,
    pub(crate) free_ports: usize,
    pub(crate) tcp_connections: usize,
    pub(crate) busy: Duration,
    pub(crate) draining: bool,
}

/// One worker's published counters. Written by that worker only; read by anyone.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct WorkerMetrics {
    allocations_created: [AtomicU64; 3],
    active: [AtomicU64; 3],
    packets_to_peer: AtomicU64,
    bytes_to_peer: AtomicU64,
    packets_from_peer: AtomicU64,
    bytes_from_peer: AtomicU64,
    auth_challenges: AtomicU64,
    auth_failures: [AtomicU64; AUTH_REASONS],
    stale_nonces: AtomicU64,
    peer_denied: [AtomicU64; DENY_REASONS],
    quota_rejections: AtomicU64,
    capacity_rejections: AtomicU64,
    drain_rejections: AtomicU64,
    malformed: AtomicU64,
    dropped_no_route: AtomicU64,
    binding_requests: AtomicU64,
    events_dropped: AtomicU64,
    challenges_suppressed: AtomicU64,
    dropped_bandwidth: AtomicU64,
    tls_handshakes: AtomicU64,
    tls_handshake_failures: AtomicU64,
    tls_handshake_timeouts: AtomicU64,
    slow_readers: AtomicU64,
    no_allocation_closes: AtomicU64,
    allocations: AtomicU64,
    free_ports: AtomicU64,
    tcp_connections: AtomicU64,
    busy_nanos: AtomicU64,
    coalesce_sleeps: AtomicU64,
    /// Milliseconds since [`Metrics::epoch`] at the last publication (0: never).
    heartbeat_ms: AtomicU64,
    /// The worker has entered drain mode (so its allocation count no longer grows).
    draining: AtomicBool,
}

fn put(a: &AtomicU64, v: u64) {
    a.store(v, Ordering::Relaxed);
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl WorkerMetrics {
    /// Copies a worker's counters out. Called by that worker only.
    pub(crate) fn publish(&self, core: &Stats, shell: &ShellStats, g: Gauges, heartbeat: Duration) {
        // Written out without `..`: a counter added to the core does not compile until it is
        // published (and then rendered).
        let Stats {
            allocations_created,
            packets_to_peer,
            bytes_to_peer,
            packets_from_peer,
            bytes_from_peer,
            auth_challenges,
            auth_failures,
            stale_nonces,
            peer_denied,
            quota_rejections,
            capacity_rejections,
            malformed,
            dropped_no_route,
            binding_requests,
            events_dropped,
            challenges_suppressed,
            dropped_bandwidth,
            drain_rejections,
        } = core;
        for (a, v) in self.allocations_created.iter().zip(allocations_created) {
            put(a, *v);
        }
        for (a, v) in self.active.iter().zip(shell.active) {
            put(a, v);
        }
        put(&self.packets_to_peer, *packets_to_peer);
        put(&self.bytes_to_peer, *bytes_to_peer);
        put(&self.packets_from_peer, *packets_from_peer);
        put(&self.bytes_from_peer, *bytes_from_peer);
        put(&self.auth_challenges, *auth_challenges);
        for (a, v) in self.auth_failures.iter().zip(auth_failures) {
            put(a, *v);
        }
        put(&self.stale_nonces, *stale_nonces);
        for (a, v) in self.peer_denied.iter().zip(peer_denied) {
            put(a, *v);
        }
        put(&self.quota_rejections, *quota_rejections);
        put(&self.capacity_rejections, *capacity_rejections);
        put(&self.drain_rejections, *drain_rejections);
        put(&self.malformed, *malformed);
        put(&self.dropped_no_route, *dropped_no_route);
        put(&self.binding_requests, *binding_requests);
        put(&self.events_dropped, *events_dropped);
        put(&self.challenges_suppressed, *challenges_suppressed);
        put(&self.dropped_bandwidth, *dropped_bandwidth);
        put(&self.tls_handshakes, shell.tls_handshakes);
        put(&self.tls_handshake_failures, shell.tls_handshake_failures);
        put(&self.tls_handshake_timeouts, shell.tls_handshake_timeouts);
        put(&self.slow_readers, shell.slow_readers);
        put(&self.no_allocation_closes, shell.no_allocation_closes);
        put(&self.coalesce_sleeps, shell.coalesce_sleeps);
        put(&self.allocations, g.allocations as u64);
        put(&self.free_ports, g.free_ports as u64);
        put(&self.tcp_connections, g.tcp_connections as u64);
        put(&self.busy_nanos, u64::try_from(g.busy.as_nanos()).unwrap_or(u64::MAX));
        put(&self.heartbeat_ms, u64::try_from(heartbeat.as_millis()).unwrap_or(u64::MAX).max(1));
        self.draining.store(g.draining, Ordering::Release);
    }

    /// Live allocations at the last publication.
    pub(crate) fn allocations(&self) -> u64 {
        get(&self.allocations)
    }

    /// Whether the worker has acknowledged drain mode.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// Everything the exporter and the admin API read.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub(crate) workers: Vec<WorkerMetrics>,
    /// The process's start; worker heartbeats count from it.
    pub(crate) epoch: Instant,
    start_unix: f64,
    /// Drain mode was entered (SIGUSR1).
    pub(crate) draining: AtomicBool,
    /// The process is shutting down.
    pub(crate) stopping: AtomicBool,
    pub(crate) reloads_ok: AtomicU64,
    pub(crate) reloads_failed: AtomicU64,
}

impl Metrics {
    pub(crate) fn new(workers: usize, epoch: Instant) -> Self {
        let start_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        Metrics {
            workers: (0..workers).map(|_| WorkerMetrics::default()).collect(),
            epoch,
            start_unix,
            draining: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        }
    }

    /// Live allocations over all workers, as last published.
    pub(crate) fn total_allocations(&self) -> u64 {
        self.workers.iter().map(WorkerMetrics::allocations).sum()
    }

    /// Workers that have not published for [`STALL_AFTER`].
    pub(crate) fn stalled_workers(&self, now: Instant) -> Vec<usize> {
        let now_ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX);
        let limit = u64::try_from(STALL_AFTER.as_millis()).unwrap_or(u64::MAX);
        self.workers
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                let hb = get(&w.heartbeat_ms);
                // A worker that never published is stalled only once the process is old enough.
                now_ms.saturating_sub(hb) > limit
            })
            .map(|(i, _)| i)
            .collect()
    }
}

/// The Prometheus text format, version 0.0.4.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape_label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// A label value with `\`, `"` and line feeds escaped, as the text format asks.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn sum(ws: &[WorkerMetrics], f: impl Fn(&WorkerMetrics) -> &AtomicU64) -> u64 {
    ws.iter().map(|w| get(f(w))).sum()
}

/// Process figures from /proc (Linux); absent elsewhere or when /proc is hidden.
fn process_figures() -> (Option<u64>, Option<u64>) {
    let fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count().saturating_sub(1) as u64);
    // statm: size resident shared ... in pages.
    let page = 4096u64;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map(|p| p * page);
    (fds, rss)
}

/// One user's live allocations, for `prometheus-username-labels`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UserTotals {
    pub(crate) allocations: u64,
    pub(crate) bytes_to_peer: u64,
    pub(crate) bytes_from_peer: u64,
}

/// Live sessions summed per user (REST timestamps dropped).
pub(crate) fn per_user<'a>(
    sessions: impl IntoIterator<Item = &'a SessionInfo>,
    rest_separator: Option<char>,
) -> BTreeMap<String, UserTotals> {
    let mut out: BTreeMap<String, UserTotals> = BTreeMap::new();
    for s in sessions {
        let t = out.entry(user_label(&s.username, rest_separator)).or_default();
        t.allocations += 1;
        t.bytes_to_peer += s.bytes_to_peer;
        t.bytes_from_peer += s.bytes_from_peer;
    }
    out
}

/// Renders every series. `users`: per-user totals when per-user labels are on.
pub(crate) fn render(m: &Metrics, users: Option<&BTreeMap<String, UserTotals>>) -> String {
    let ws = &m.workers[..];
    let mut e = Exposition::default();

    e.family("tern_allocations", "gauge", "Live allocations, by client transport.");
    for (i, t) in TRANSPORTS.iter().enumerate() {
        e.sample("tern_allocations", &[("transport", t.as_str())], sum(ws, |w| &w.active[i]));
    }
    e.family("tern_allocations_created_total", "counter", "Allocations created, by client transport.");
    for (i, t) in TRANSPORTS.iter().enumerate() {
        e.sample(
            "tern_allocations_created_total",
            &[("transport", t.as_str())],
            sum(ws, |w| &w.allocations_created[i]),
        );
    }
    e.family("tern_relayed_bytes_total", "counter", "Application bytes relayed, by direction.");
    e.sample("tern_relayed_bytes_total", &[("direction", "client_to_peer")], sum(ws, |w| &w.bytes_to_peer));
    e.sample("tern_relayed_bytes_total", &[("direction", "peer_to_client")], sum(ws, |w| &w.bytes_from_peer));
    e.family("tern_relayed_packets_total", "counter", "Datagrams relayed, by direction.");
    e.sample("tern_relayed_packets_total", &[("direction", "client_to_peer")], sum(ws, |w| &w.packets_to_peer));
    e.sample("tern_relayed_packets_total", &[("direction", "peer_to_client")], sum(ws, |w| &w.packets_from_peer));

    e.single(
        "tern_auth_challenges_total",
        "counter",
        "401 challenges to requests that carried no credentials (the normal first step).",
        sum(ws, |w| &w.auth_challenges),
    );
    e.family("tern_auth_failures_total", "counter", "Requests refused with 401 for bad credentials, by reason.");
    for r in UnauthorizedReason::ALL {
        e.sample("tern_auth_failures_total", &[("reason", r.as_str())], sum(ws, |w| &w.auth_failures[r.index()]));
    }
    e.single("tern_stale_nonces_total", "counter", "438 Stale Nonce answers.", sum(ws, |w| &w.stale_nonces));
    e.family("tern_peer_denied_total", "counter", "Peers refused by the peer policy, by reason.");
    for r in DenyReason::ALL {
        e.sample("tern_peer_denied_total", &[("reason", r.as_str())], sum(ws, |w| &w.peer_denied[r.index()]));
    }
    e.single(
        "tern_quota_rejections_total",
        "counter",
        "Allocations refused with 486 by user-quota or total-quota.",
        sum(ws, |w| &w.quota_rejections),
    );
    e.single(
        "tern_capacity_rejections_total",
        "counter",
        "Allocations refused with 508 for want of a relay port.",
        sum(ws, |w| &w.capacity_rejections),
    );
    e.single(
        "tern_drain_rejections_total",
        "counter",
        "Allocations refused with 508 while draining.",
        sum(ws, |w| &w.drain_rejections),
    );
    e.single(
        "tern_tls_handshakes_total",
        "counter",
        "TLS handshakes begun (on the TLS port, or a ClientHello on the TCP port).",
        sum(ws, |w| &w.tls_handshakes),
    );
    e.family("tern_tls_handshake_failures_total", "counter", "TLS handshakes that did not complete, by reason.");
    e.sample("tern_tls_handshake_failures_total", &[("reason", "error")], sum(ws, |w| &w.tls_handshake_failures));
    e.sample("tern_tls_handshake_failures_total", &[("reason", "timeout")], sum(ws, |w| &w.tls_handshake_timeouts));
    e.family("tern_connections_closed_total", "counter", "TCP/TLS client connections closed by a limit, by reason.");
    e.sample("tern_connections_closed_total", &[("reason", "slow_reader")], sum(ws, |w| &w.slow_readers));
    e.sample("tern_connections_closed_total", &[("reason", "no_allocation")], sum(ws, |w| &w.no_allocation_closes));
    e.single(
        "tern_malformed_packets_total",
        "counter",
        "Packets that were neither STUN nor valid ChannelData.",
        sum(ws, |w| &w.malformed),
    );
    e.family(
        "tern_dropped_packets_total",
        "counter",
        "Data dropped, by reason: no_route (no allocation, channel or permission), bandwidth (max-bps, bps-capacity).",
    );
    e.sample("tern_dropped_packets_total", &[("reason", "no_route")], sum(ws, |w| &w.dropped_no_route));
    e.sample("tern_dropped_packets_total", &[("reason", "bandwidth")], sum(ws, |w| &w.dropped_bandwidth));
    e.single(
        "tern_auth_challenges_suppressed_total",
        "counter",
        "401/438 answers not sent because their source was over its budget (unauthorized-ratelimit).",
        sum(ws, |w| &w.challenges_suppressed),
    );
    e.single(
        "tern_binding_requests_total",
        "counter",
        "STUN Binding requests answered.",
        sum(ws, |w| &w.binding_requests),
    );
    e.single(
        "tern_events_dropped_total",
        "counter",
        "Core events lost because the queue was full.",
        sum(ws, |w| &w.events_dropped),
    );

    e.family("tern_worker_allocations", "gauge", "Live allocations owned by each worker.");
    for (i, w) in ws.iter().enumerate() {
        e.sample("tern_worker_allocations", &[("worker", &i.to_string())], get(&w.allocations));
    }
    e.family("tern_worker_busy_seconds_total", "counter", "Time each worker spent working rather than waiting.");
    for (i, w) in ws.iter().enumerate() {
        let secs = get(&w.busy_nanos) as f64 / 1e9;
        e.sample("tern_worker_busy_seconds_total", &[("worker", &i.to_string())], secs);
    }
    e.family(
        "tern_worker_coalesce_sleeps_total",
        "counter",
        "Short sleeps after a small turn, so the next turn finds several datagrams (relay-coalesce-us).",
    );
    for (i, w) in ws.iter().enumerate() {
        e.sample("tern_worker_coalesce_sleeps_total", &[("worker", &i.to_string())], get(&w.coalesce_sleeps));
    }
    e.family("tern_worker_relayed_packets_total", "counter", "Datagrams relayed by each worker, both directions.");
    for (i, w) in ws.iter().enumerate() {
        let n = get(&w.packets_to_peer) + get(&w.packets_from_peer);
        e.sample("tern_worker_relayed_packets_total", &[("worker", &i.to_string())], n);
    }
    e.family("tern_worker_tcp_connections", "gauge", "Open TCP/TLS client connections of each worker.");
    for (i, w) in ws.iter().enumerate() {
        e.sample("tern_worker_tcp_connections", &[("worker", &i.to_string())], get(&w.tcp_connections));
    }
    e.family("tern_worker_free_relay_ports", "gauge", "Free relay ports in each worker's slice of the range.");
    for (i, w) in ws.iter().enumerate() {
        e.sample("tern_worker_free_relay_ports", &[("worker", &i.to_string())], get(&w.free_ports));
    }

    e.single("tern_draining", "gauge", "1 while draining (SIGUSR1).", u8::from(m.draining.load(Ordering::Relaxed)));
    e.family("tern_config_reloads_total", "counter", "SIGHUP reloads, by result.");
    e.sample("tern_config_reloads_total", &[("result", "success")], get(&m.reloads_ok));
    e.sample("tern_config_reloads_total", &[("result", "failure")], get(&m.reloads_failed));
    e.family("tern_build_info", "gauge", "The running version.");
    e.sample("tern_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);
    e.single("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.", m.start_unix);
    let (fds, rss) = process_figures();
    if let Some(n) = fds {
        e.single("process_open_fds", "gauge", "Open file descriptors.", n);
    }
    if let Some(n) = rss {
        e.single("process_resident_memory_bytes", "gauge", "Resident memory size.", n);
    }

    if let Some(per_user) = users {
        e.family("tern_user_allocations", "gauge", "Live allocations of each user (prometheus-username-labels).");
        for (u, t) in per_user {
            e.sample("tern_user_allocations", &[("user", u)], t.allocations);
        }
        e.family(
            "tern_user_relayed_bytes",
            "gauge",
            "Bytes relayed so far by each user's live allocations (prometheus-username-labels).",
        );
        for (u, t) in per_user {
            e.sample("tern_user_relayed_bytes", &[("user", u), ("direction", "client_to_peer")], t.bytes_to_peer);
            e.sample("tern_user_relayed_bytes", &[("user", u), ("direction", "peer_to_client")], t.bytes_from_peer);
        }
    }
    e.0
}

/// The user a TURN REST username stands for: the expiry timestamp is dropped, so one user is
/// one series however many credentials it gets.
pub(crate) fn user_label(username: &str, rest_separator: Option<char>) -> String {
    if let Some(sep) = rest_separator
        && let Some((a, b)) = username.split_once(sep)
    {
        let is_ts = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
        if is_ts(a) {
            return b.to_owned();
        }
        if is_ts(b) {
            return a.to_owned();
        }
    }
    username.to_owned()
}

/// The exporter's request handler.
pub(crate) fn handler(metrics: Arc<Metrics>, path: String, user_labels: Option<(Workers, Option<char>)>) -> Handler {
    Arc::new(move |req: &Request| {
        if req.method != "GET" && req.method != "HEAD" {
            return Response::text(405, "only GET\n").with_header("Allow", "GET, HEAD");
        }
        if req.path == path {
            let users = user_labels.as_ref().and_then(|(workers, sep)| {
                let sessions = workers.sessions(Duration::from_secs(2))?;
                Some(per_user(sessions.iter().map(|(_, s)| s), *sep))
            });
            let body = render(&metrics, users.as_ref());
            return Response::new(200, "text/plain; version=0.0.4; charset=utf-8", body);
        }
        if req.path == "/" {
            // coturn answers its health check on `/`.
            return Response::text(200, format!("tern-relay: metrics at {path}\n"));
        }
        Response::text(404, format!("not found: metrics are at {path}\n"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_counters_are_summed_over_workers() {
        let m = Metrics::new(2, Instant::now());
        let mut core = Stats { allocations_created: [3, 1, 0], bytes_to_peer: 1000, ..Stats::default() };
        core.auth_failures[UnauthorizedReason::BadIntegrity.index()] = 2;
        core.peer_denied[DenyReason::Private.index()] = 5;
        let shell = ShellStats { tls_handshakes: 4, active: [2, 1, 0], ..ShellStats::default() };
        let g = Gauges {
            allocations: 3,
            free_ports: 10,
            tcp_connections: 1,
            busy: Duration::from_millis(1500),
            draining: false,
        };
        m.workers[0].publish(&core, &shell, g, Duration::from_millis(5));
        m.workers[1].publish(&core, &shell, g, Duration::from_millis(5));
        let text = render(&m, None);
        for line in [
            "tern_allocations{transport=\"udp\"} 4",
            "tern_allocations_created_total{transport=\"udp\"} 6",
            "tern_relayed_bytes_total{direction=\"client_to_peer\"} 2000",
            "tern_auth_failures_total{reason=\"bad_integrity\"} 4",
            "tern_peer_denied_total{reason=\"private\"} 10",
            "tern_tls_handshakes_total 8",
            "tern_worker_busy_seconds_total{worker=\"1\"} 1.5",
            "tern_worker_allocations{worker=\"0\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert_eq!(m.total_allocations(), 6);
        assert!(!text.contains("user="), "no user labels unless asked");
        // Every sample belongs to a family announced before it.
        let mut typed = std::collections::HashSet::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_string());
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert!(typed.contains(name), "{name} has no TYPE line");
            }
        }
    }

    #[test]
    fn user_labels_drop_rest_timestamps_and_escape() {
        assert_eq!(user_label("1700000000:alice", Some(':')), "alice");
        assert_eq!(user_label("bob:1700000000", Some(':')), "bob");
        assert_eq!(user_label("carol:x", Some(':')), "carol:x");
        assert_eq!(user_label("1700000000:alice", None), "1700000000:alice");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let m = Metrics::new(1, Instant::now());
        let mut users = BTreeMap::new();
        users.insert("al\"ice".to_string(), UserTotals { allocations: 2, bytes_to_peer: 14, bytes_from_peer: 18 });
        let text = render(&m, Some(&users));
        assert!(text.contains("tern_user_allocations{user=\"al\\\"ice\"} 2"), "{text}");
        assert!(text.contains("tern_user_relayed_bytes{user=\"al\\\"ice\",direction=\"peer_to_client\"} 18"), "{text}");
    }

    #[test]
    fn a_worker_that_never_published_is_stalled_after_the_limit() {
        let t0 = Instant::now();
        let m = Metrics::new(2, t0);
        let g = Gauges { allocations: 0, free_ports: 0, tcp_connections: 0, busy: Duration::ZERO, draining: false };
        m.workers[0].publish(&Stats::default(), &ShellStats::default(), g, STALL_AFTER);
        assert!(m.stalled_workers(t0 + STALL_AFTER).is_empty());
        assert_eq!(m.stalled_workers(t0 + STALL_AFTER * 2), vec![1]);
    }
}
