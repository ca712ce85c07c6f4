//! `tern-relay`: the TURN/STUN relay. It reads `turnserver.conf` and `turnserver`'s command line,
//! binds every socket, then runs one mio worker per core around the sans-IO core in
//! `relay-proto`. The main thread runs the control loop (`control.rs`: signals, reload, drain);
//! the Prometheus exporter and the admin API have a small thread each.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod admin;
mod control;
mod host;
mod http;
mod logging;
mod metrics;
mod plan;
mod process;
mod sockets;
mod tls;
mod worker;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use relay_config::{Loaded, Outcome};
use relay_proto::server::Server;

use crate::control::{Controller, Workers};
use crate::host::Shared;
use crate::metrics::Metrics;
use crate::plan::Plan;
use crate::worker::{Worker, WorkerSockets};

fn main() {
    let outcome = match relay_config::parse_command_line(std::env::args_os().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(relay_config::ConfigError::EXIT_STATUS);
        }
    };
    let loaded = match outcome {
        Outcome::Run(l) => l,
        Outcome::Help(text) | Outcome::Version(text) | Outcome::CheckConfig(text) => {
            print!("{text}");
            return;
        }
    };
    if let Err(e) = run(loaded) {
        eprintln!("tern-relay: {e:#}");
        std::process::exit(1);
    }
}

/// A worker that panicked has lost its clients' allocations and its sockets; a process that
/// lives on without it looks healthy to systemd while relaying nothing for those clients.
/// So any panic, on any thread, is logged and ends the process with status 101, and the
/// supervisor restarts a whole relay. (Nothing from the network should panic: the fuzzers
/// and the property tests are there to keep it so.)
fn exit_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        let thread = std::thread::current();
        tracing::error!(target: "relay", thread = thread.name().unwrap_or("?"), panic = %info, "a thread panicked; exiting");
        std::process::exit(101);
    }));
}

fn run(loaded: Loaded) -> anyhow::Result<()> {
    let epoch = Instant::now();
    let cfg = &loaded.config;
    let log = logging::init(cfg).context("setting up logging")?;
    exit_on_panic();
    // Before anything else, so an early SIGHUP does not kill the process (its default action).
    let signals = control::signal_channel().context("installing signal handlers")?;
    for w in &loaded.warnings {
        tracing::warn!(target: "relay", "{w}");
    }
    for n in &loaded.notices {
        tracing::info!(target: "relay", "{n}");
    }
    let plan = Plan::new(cfg)?;

    let tls = tls::TlsSettings::from_config(cfg).map(tls::TlsStore::new).transpose()?;

    // Every socket is bound before anything starts, so a bad address stops the start-up.
    for addr in plan.listen_addrs() {
        sockets::ensure_free(addr, plan.udp, plan.tcp).with_context(|| format!("binding {addr}"))?;
    }
    for addr in plan.tls_listen_addrs() {
        sockets::ensure_free(addr, false, true).with_context(|| format!("binding TLS {addr}"))?;
    }
    let mut all_sockets = Vec::with_capacity(plan.workers);
    for _ in 0..plan.workers {
        let mut ws = WorkerSockets { udp: Vec::new(), tcp: Vec::new(), tls: Vec::new() };
        for addr in plan.listen_addrs() {
            if plan.udp {
                let s = sockets::udp_listener(addr).with_context(|| format!("binding UDP {addr}"))?;
                ws.udp.push((addr, s));
            }
            if plan.tcp {
                let l = sockets::tcp_listener(addr).with_context(|| format!("binding TCP {addr}"))?;
                ws.tcp.push((addr, l));
            }
        }
        for addr in plan.tls_listen_addrs() {
            ws.tls.push((addr, sockets::tcp_listener(addr).with_context(|| format!("binding TLS {addr}"))?));
        }
        all_sockets.push(ws);
    }
    // The operator's endpoints are bound before privileges drop too.
    let exporter = if cfg.prometheus {
        let ip = cfg.prometheus_address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Some(http::bind(SocketAddr::new(ip, cfg.prometheus_port), "prometheus (prometheus-address, prometheus-port)")?)
    } else {
        None
    };
    let admin_api = if cfg.admin_api {
        let addr = SocketAddr::new(cfg.admin_api_address, cfg.admin_api_port);
        Some(http::bind(addr, "admin-api (admin-api-address, admin-api-port)")?)
    } else {
        None
    };
    if let Some(p) = &cfg.pidfile {
        process::write_pidfile(p)?;
    }
    process::drop_privileges(cfg.proc_user.as_deref(), cfg.proc_group.as_deref())?;

    let metrics = Arc::new(Metrics::new(plan.workers, epoch));
    let shared = Arc::new(Shared::new(plan.user_quota, plan.total_quota, metrics.clone()));
    let now = Instant::now();
    let mut threads = Vec::new();
    let mut controls = Vec::new();
    // Every worker's poll and waker exist before any worker does: the relay short circuit
    // hands datagrams between workers and rings their wakers.
    let mut polls = Vec::with_capacity(plan.workers);
    let mut wakers = Vec::with_capacity(plan.workers);
    for _ in 0..plan.workers {
        let poll = mio::Poll::new().context("creating a poll")?;
        wakers.push(Arc::new(mio::Waker::new(poll.registry(), sockets::WAKER).context("creating a waker")?));
        polls.push(poll);
    }
    let endpoints = worker::handoff::mesh(&plan.slices, plan.relay_ips.clone(), wakers.clone());
    for (i, ((ws, poll), endpoint)) in all_sockets.into_iter().zip(polls).zip(endpoints).enumerate() {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
        let server = Server::new(plan.server_config(cfg, i), seed, now);
        let (tx, rx) = crossbeam_channel::unbounded();
        let worker = Worker::new(i, poll, server, ws, shared.clone(), rx, plan.max_allocate_timeout, endpoint)
            .context("registering sockets")?
            .with_tls(tls.clone())
            .with_coalesce(plan.coalesce);
        controls.push((tx, wakers[i].clone()));
        let t = std::thread::Builder::new()
            .name(format!("tern-worker-{i}"))
            .spawn(move || worker.run())
            .context("starting a worker thread")?;
        threads.push(t);
    }
    let workers = Workers::new(controls);
    if let Some(l) = exporter {
        let addr = l.local_addr().ok();
        let labels = cfg
            .prometheus_username_labels
            .then(|| (workers.clone(), cfg.use_auth_secret.then_some(cfg.rest_api_separator)));
        let h = metrics::handler(metrics.clone(), cfg.prometheus_path.clone(), labels);
        http::spawn("tern-metrics", l, h).context("starting the exporter thread")?;
        tracing::info!(target: "relay", addr = ?addr, path = %cfg.prometheus_path, "Prometheus exporter listening");
    }
    if let Some(l) = admin_api {
        let addr = l.local_addr().ok();
        let a = admin::Admin {
            workers: workers.clone(),
            metrics: metrics.clone(),
            token: cfg.admin_api_token.clone(),
            rest_separator: cfg.use_auth_secret.then_some(cfg.rest_api_separator),
        };
        http::spawn("tern-admin", l, admin::handler(a)).context("starting the admin API thread")?;
        tracing::info!(target: "relay", addr = ?addr, token = cfg.admin_api_token.is_some(), "admin API listening");
    }

    if let Some(t) = &tls {
        t.spawn_watcher()?;
    }
    let addrs: Vec<SocketAddr> = plan.listen_addrs();
    tracing::info!(
        target: "relay",
        listen = ?addrs,
        udp = plan.udp,
        tcp = plan.tcp,
        tls = ?plan.tls_listen_addrs(),
        relay = ?plan.relay_ips.iter().map(|r| (r.local, r.public)).collect::<Vec<_>>(),
        ports = %format!("{}-{}", cfg.min_port, cfg.max_port),
        workers = plan.workers,
        realm = %cfg.realm.as_deref().unwrap_or(plan::DEFAULT_REALM),
        "tern-relay listening"
    );

    let pidfile = cfg.pidfile.clone();
    let mut controller = Controller::new(loaded, plan, shared, workers, metrics, log);
    controller.run(&signals);
    for t in threads {
        let _ = t.join();
    }
    drop(controller);
    if let Some(p) = &pidfile {
        let _ = std::fs::remove_file(p);
    }
    tracing::info!(target: "relay", "tern-relay stopped");
    Ok(())
}
