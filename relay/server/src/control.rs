//! The control plane: signals, reload, drain and shutdown, and the handle through which the
//! admin API and the exporter reach the workers.
//!
//! The main thread runs [`Controller::run`]. A signal-hook thread forwards signals to it over a
//! channel; it acts on them and, in drain mode, watches the allocation count ten times a second.
//! Workers hear about it only through [`Control`] messages on their crossbeam channel, each
//! followed by a ring of the worker's mio `Waker`: nothing is shared with the data path.
//!
//! Signals, with coturn's meanings:
//! - `SIGTERM`, `SIGINT`: shut down now.
//! - `SIGHUP`: reopen the log file; reload `static-auth-secret`, `user` (and the other
//!   authentication options), the peer lists and the quotas from the configuration. Live
//!   allocations stay. A configuration that no longer loads is refused whole, with its
//!   `file:line` errors, and the running one stays.
//! - `SIGUSR1`: drain. New allocations are refused (300 to an alternate server if
//!   `drain-alternate-server` or `alternate-server` is set, else 508); existing ones keep
//!   relaying; the process exits once at most `drain-min-allocations` remain, or when
//!   `drain-timeout` has passed.
//! - `SIGUSR2` (certificate reload) is the TLS code's: `tls.rs` registers it itself, with a flag
//!   its watcher thread reads, so it is not in [`SIGNALS`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use mio::Waker;
use relay_config::{Config, Loaded, Secrets};
use relay_proto::policy::PeerPolicyConfig;
use relay_proto::server::{AuthConfig, SessionInfo};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};

use crate::host::Shared;
use crate::logging::LogHandle;
use crate::metrics::Metrics;
use crate::plan::{self, Plan};
use crate::worker::Control;

/// The signals the control loop handles.
pub(crate) const SIGNALS: &[i32] = &[SIGTERM, SIGINT, SIGHUP, SIGUSR1];

/// How often the control loop looks at a drain in progress.
const TICK: Duration = Duration::from_millis(100);
/// How often suppressed-log summaries are written.
const LOG_SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// What SIGHUP hands every worker.
#[derive(Debug, Clone)]
pub(crate) struct Reloadable {
    pub(crate) auth: AuthConfig,
    pub(crate) policy: PeerPolicyConfig,
}

struct WorkerHandle {
    tx: Sender<Control>,
    waker: Arc<Waker>,
}

/// Every worker's control channel and waker. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub(crate) struct Workers(Arc<Vec<WorkerHandle>>);

impl Workers {
    pub(crate) fn new(handles: Vec<(Sender<Control>, Arc<Waker>)>) -> Self {
        Workers(Arc::new(handles.into_iter().map(|(tx, waker)| WorkerHandle { tx, waker }).collect()))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Sends `msg` to worker `i` and wakes it. False if the worker is gone.
    pub(crate) fn send(&self, i: usize, msg: Control) -> bool {
        let Some(h) = self.0.get(i) else { return false };
        if h.tx.send(msg).is_err() {
            return false;
        }
        let _ = h.waker.wake();
        true
    }

    /// Sends `make(i)` to every worker.
    pub(crate) fn broadcast(&self, make: impl Fn(usize) -> Control) {
        for i in 0..self.len() {
            self.send(i, make(i));
        }
    }

    /// Every live allocation, with the worker that owns it. `None` if a worker did not answer
    /// within `timeout` (it is stuck, or the process is stopping).
    pub(crate) fn sessions(&self, timeout: Duration) -> Option<Vec<(usize, SessionInfo)>> {
        let deadline = Instant::now() + timeout;
        let mut replies = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            let (tx, rx) = crossbeam_channel::bounded(1);
            if !self.send(i, Control::Sessions(tx)) {
                return None;
            }
            replies.push((i, rx));
        }
        let mut out = Vec::new();
        for (i, rx) in replies {
            let list = rx.recv_deadline(deadline).ok()?;
            out.extend(list.into_iter().map(|s| (i, s)));
        }
        Some(out)
    }

    /// Ends allocation `id` of worker `worker`. `None` if the worker did not answer.
    pub(crate) fn kill(&self, worker: usize, id: u64, timeout: Duration) -> Option<bool> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if !self.send(worker, Control::Kill { id, reply: tx }) {
            return None;
        }
        rx.recv_timeout(timeout).ok()
    }

    /// Tells every worker to leave its loop.
    pub(crate) fn shutdown(&self, shared: &Shared) {
        shared.shutdown.store(true, Ordering::Relaxed);
        self.broadcast(|_| Control::Shutdown);
    }
}

/// Starts the thread that turns signals into messages for [`Controller::run`].
pub(crate) fn signal_channel() -> anyhow::Result<Receiver<i32>> {
    let mut signals = signal_hook::iterator::Signals::new(SIGNALS)?;
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new().name("tern-signals".into()).spawn(move || {
        for sig in signals.forever() {
            if tx.send(sig).is_err() {
                return;
            }
        }
    })?;
    Ok(rx)
}

struct Drain {
    deadline: Option<Instant>,
    min_allocations: u64,
}

/// Owns the running configuration and acts on signals.
pub(crate) struct Controller {
    loaded: Loaded,
    /// The configuration in force: the start-up one with every reload's reloadable parts.
    running: Config,
    plan: Plan,
    shared: Arc<Shared>,
    workers: Workers,
    metrics: Arc<Metrics>,
    log: LogHandle,
    drain: Option<Drain>,
}

/// What the control loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Continue,
    Exit,
}

impl Controller {
    pub(crate) fn new(
        loaded: Loaded,
        plan: Plan,
        shared: Arc<Shared>,
        workers: Workers,
        metrics: Arc<Metrics>,
        log: LogHandle,
    ) -> Self {
        let running = loaded.config.clone();
        Controller { loaded, running, plan, shared, workers, metrics, log, drain: None }
    }

    /// Runs until a signal or the end of a drain says to stop, then tells the workers to stop.
    /// The caller joins their threads, and only then drops the controller: dropping it closes
    /// the workers' wakers, and a waker closed before its worker saw the ring is a lost wake-up.
    pub(crate) fn run(&mut self, signals: &Receiver<i32>) {
        let mut last_summary = Instant::now();
        loop {
            match signals.recv_timeout(TICK) {
                Ok(sig) => {
                    if self.on_signal(sig) == Step::Exit {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    tracing::error!(target: "relay", "the signal thread ended; shutting down");
                    break;
                }
            }
            if self.drain_tick(Instant::now()) == Step::Exit {
                break;
            }
            if last_summary.elapsed() >= LOG_SUMMARY_EVERY {
                last_summary = Instant::now();
                self.log.flush_suppressed();
            }
        }
        self.metrics.stopping.store(true, Ordering::Relaxed);
        self.workers.shutdown(&self.shared);
    }

    pub(crate) fn on_signal(&mut self, sig: i32) -> Step {
        match sig {
            SIGTERM | SIGINT => {
                let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
                tracing::info!(target: "relay", signal = name, "shutting down");
                Step::Exit
            }
            SIGHUP => {
                self.reload();
                Step::Continue
            }
            SIGUSR1 => {
                self.start_drain(Instant::now());
                Step::Continue
            }
            _ => Step::Continue,
        }
    }

    /// SIGHUP: reopen the log file, then load the configuration again and hand its reloadable
    /// parts to the workers.
    pub(crate) fn reload(&mut self) {
        if let Err(e) = self.log.reopen() {
            tracing::error!(target: "relay", error = %e, "SIGHUP: cannot reopen the log file; logging goes on to the old one");
        }
        let new = match self.loaded.reload() {
            Ok(l) => l,
            Err(e) => {
                self.metrics.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(target: "relay", "SIGHUP: the configuration did not load, so the running one stays:\n{e}");
                return;
            }
        };
        for w in &new.warnings {
            tracing::warn!(target: "relay", "{w}");
        }
        let cfg = &new.config;
        let mut next = self.running.clone();
        take_reloadable(&mut next, cfg);
        let needs_restart = changed_options(&next, cfg);
        let r = Arc::new(Reloadable { auth: plan::auth_config(&next), policy: self.plan.policy_config(&next) });
        self.shared.set_quotas(next.user_quota, next.total_quota);
        self.workers.broadcast(|_| Control::Reload(r.clone()));
        self.metrics.reloads_ok.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            target: "relay",
            static_auth_secrets = next.static_auth_secrets.len(),
            users = next.users.len(),
            allowed_peer_ip = next.allowed_peer_ips.len(),
            denied_peer_ip = next.denied_peer_ips.len(),
            user_quota = next.user_quota,
            total_quota = next.total_quota,
            "SIGHUP: configuration reloaded; live allocations kept"
        );
        if !needs_restart.is_empty() {
            tracing::warn!(
                target: "relay",
                "SIGHUP: these options changed but only take effect on a restart: {}",
                needs_restart.join(", ")
            );
        }
        self.running = next;
        self.loaded = new;
    }

    /// SIGUSR1: refuse new allocations and wait for the live ones to end.
    pub(crate) fn start_drain(&mut self, now: Instant) {
        if self.drain.is_some() {
            tracing::info!(target: "relay", "SIGUSR1: already draining");
            return;
        }
        let c = &self.running;
        let alternates: Vec<SocketAddr> = if c.drain_alternate_servers.is_empty() {
            c.alternate_servers.clone()
        } else {
            c.drain_alternate_servers.clone()
        };
        let deadline = (c.drain_timeout > 0).then(|| now + Duration::from_secs(u64::from(c.drain_timeout)));
        self.drain = Some(Drain { deadline, min_allocations: u64::from(c.drain_min_allocations) });
        self.metrics.draining.store(true, Ordering::Relaxed);
        self.workers.broadcast(|_| Control::Drain { alternates: alternates.clone() });
        tracing::info!(
            target: "relay",
            allocations = self.metrics.total_allocations(),
            alternates = ?alternates,
            timeout_secs = c.drain_timeout,
            min_allocations = c.drain_min_allocations,
            "SIGUSR1: draining: new allocations are refused ({}), live ones keep relaying; the process exits when they end",
            if alternates.is_empty() { "508" } else { "300 to an alternate server" }
        );
    }

    /// Whether a drain in progress is over.
    pub(crate) fn drain_tick(&mut self, now: Instant) -> Step {
        let Some(d) = &self.drain else { return Step::Continue };
        let live = self.metrics.total_allocations();
        if d.deadline.is_some_and(|t| now >= t) {
            tracing::warn!(target: "relay", allocations = live, "drain-timeout passed; exiting with allocations still live");
            return Step::Exit;
        }
        // Until every worker has acknowledged, its published count may still grow.
        if !self.metrics.workers.iter().all(|w| w.is_draining()) {
            return Step::Continue;
        }
        if live <= d.min_allocations {
            tracing::info!(target: "relay", allocations = live, "drained; exiting");
            return Step::Exit;
        }
        Step::Continue
    }
}

/// Copies the options SIGHUP reloads from `new` into `running`.
fn take_reloadable(running: &mut Config, new: &Config) {
    // Authentication.
    running.static_auth_secrets = new.static_auth_secrets.clone();
    running.use_auth_secret = new.use_auth_secret;
    running.users = new.users.clone();
    running.lt_cred_mech = new.lt_cred_mech;
    running.no_auth = new.no_auth;
    running.rest_api_separator = new.rest_api_separator;
    // Peer policy.
    running.allowed_peer_ips = new.allowed_peer_ips.clone();
    running.denied_peer_ips = new.denied_peer_ips.clone();
    running.allow_loopback_peers = new.allow_loopback_peers;
    running.no_multicast_peers = new.no_multicast_peers;
    // Quotas.
    running.user_quota = new.user_quota;
    running.total_quota = new.total_quota;
    // Read by this thread only when a drain starts.
    running.drain_timeout = new.drain_timeout;
    running.drain_min_allocations = new.drain_min_allocations;
    running.drain_alternate_servers = new.drain_alternate_servers.clone();
}

/// The options whose lines differ between two configurations (in turnserver.conf form).
fn changed_options(running: &Config, new: &Config) -> Vec<String> {
    let a = relay_config::to_turnserver_conf(running, Secrets::Shown);
    let b = relay_config::to_turnserver_conf(new, Secrets::Shown);
    let name = |l: &str| l.trim_start_matches('#').split('=').next().unwrap_or("").trim().to_string();
    let set_a: std::collections::BTreeSet<&str> = a.lines().collect();
    let set_b: std::collections::BTreeSet<&str> = b.lines().collect();
    let mut names: Vec<String> = set_a
        .symmetric_difference(&set_b)
        .filter(|l| !l.starts_with("# ----") && !l.trim().is_empty())
        .map(|l| name(l))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloadable_options_are_not_reported_as_needing_a_restart() {
        let old = Config::default();
        let mut new = old.clone();
        new.static_auth_secrets = vec!["new-secret".into()];
        new.use_auth_secret = true;
        new.user_quota = 7;
        new.denied_peer_ips = vec![relay_config::IpRange::single("10.0.0.1".parse().unwrap())];
        new.listening_port = 3479;
        new.realm = Some("example.org".into());
        let mut next = old.clone();
        take_reloadable(&mut next, &new);
        assert_eq!(next.static_auth_secrets, new.static_auth_secrets);
        assert_eq!(next.user_quota, 7);
        assert_eq!(next.listening_port, 3478, "not reloadable");
        assert_eq!(changed_options(&next, &new), vec!["listening-port".to_string(), "realm".to_string()]);
        assert!(changed_options(&next, &next).is_empty());
    }
}
