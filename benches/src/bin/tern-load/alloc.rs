//! Allocation modes.
//! - `alloc`: allocation churn. Each of K concurrent clients runs Allocate (401 challenge, then
//!   authenticated), Refresh, Refresh LIFETIME=0 (delete), then starts over from a new socket
//!   (a new 5-tuple, so a new challenge), for a fixed time.
//! - `hold`: opens N allocations (optionally a channel each), waits, and reads the server's
//!   RSS to give the memory each allocation costs; then deletes them.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mio::Token;
use tern_benches::client::Request;
use tern_benches::procfs;

use crate::engine::{Engine, Session, check_failures, delete_all};
use crate::relay::FIRST_CHANNEL;
use crate::{Common, Report, ServerCpu};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AllocArgs {
    /// Clients working at once.
    #[arg(long, default_value_t = 32)]
    pub(crate) concurrency: usize,
    /// Seconds of churn.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) duration: f64,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct HoldArgs {
    /// Allocations to hold.
    #[arg(long, default_value_t = 1000)]
    pub(crate) allocs: usize,
    /// Bind one channel per allocation (to a loopback address) too.
    #[arg(long)]
    pub(crate) channel: bool,
    /// Seconds to hold them before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) settle: f64,
    /// Requests in flight during setup.
    #[arg(long, default_value_t = 256)]
    pub(crate) window: usize,
}

fn cycle() -> [Request; 3] {
    [Request::Allocate, Request::Refresh(600), Request::Refresh(0)]
}

pub(crate) fn churn(common: &Common, a: &AllocArgs) -> anyhow::Result<Report> {
    let (user, pass) = common.credentials()?.resolve(crate::unix_now());
    let mut engine = Engine::new(user, pass)?;
    let k = a.concurrency.clamp(1, 4096);
    let mut sessions: Vec<Session> = (0..k)
        .map(|i| Session::open(engine.poll.registry(), Token(i), common.client_ip, common.server))
        .collect::<io::Result<_>>()?;
    for s in &mut sessions {
        s.steps.extend(cycle());
    }
    let (client_ip, server) = (common.client_ip, common.server);
    let mut completed = 0u64;
    let mut reopen_errors = 0u64;
    let mut mismatches = 0u64;
    let mut refused = 0u64;
    let cpu = ServerCpu::start(common.server_pid);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.duration);
    engine.run(&mut sessions, k, deadline, &mut |i, s, registry, now| {
        match &s.failed {
            None => completed += 1,
            // coturn keeps a deleted allocation's 5-tuple for a while and answers 437 when the
            // kernel hands the port to a new socket at once: as a client would, take another.
            Some(f) if f.ends_with(" 437") && s.relay.is_none() => mismatches += 1,
            // Out of relay ports (coturn holds a deleted allocation's port for a while): count
            // it and try again, as a client would.
            Some(f) if f.ends_with(" 508") && s.relay.is_none() => refused += 1,
            Some(_) => return false,
        }
        if now >= deadline {
            return false;
        }
        let _ = registry.deregister(&mut s.sock);
        match Session::open(registry, Token(i), client_ip, server) {
            Ok(fresh) => {
                *s = fresh;
                s.steps.extend(cycle());
                true
            }
            Err(_) => {
                reopen_errors += 1;
                false
            }
        }
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    let server_cpu = cpu.finish();
    let failed = sessions.iter().filter(|s| s.failed.is_some()).count() as u64;
    if let Some(f) = sessions.iter().find_map(|s| s.failed.as_deref()) {
        eprintln!("tern-load: {failed} clients failed; first: {f}");
    }
    if refused > 0 {
        eprintln!("tern-load: {refused} Allocates answered 508 (no relay port free)");
    }
    if mismatches > 0 {
        eprintln!("tern-load: {mismatches} Allocates answered 437 on a reused port (retried on another)");
    }
    delete_all(&mut engine, &mut sessions)?;
    Ok(Report {
        mode: "alloc".into(),
        allocs: completed,
        allocs_per_s: completed as f64 / elapsed,
        send_errors: reopen_errors + failed + refused,
        retransmits: engine.retransmits,
        run_s: elapsed,
        ..Report::with_cpu(server_cpu, completed)
    })
}

pub(crate) fn hold(common: &Common, a: &HoldArgs) -> anyhow::Result<Report> {
    let (user, pass) = common.credentials()?.resolve(crate::unix_now());
    let mut engine = Engine::new(user, pass)?;
    let rss_before = common.server_pid.and_then(procfs::rss_kib);
    let mut sessions: Vec<Session> = (0..a.allocs)
        .map(|i| Session::open(engine.poll.registry(), Token(i), common.client_ip, common.server))
        .collect::<io::Result<_>>()
        .context("opening client sockets (raise ulimit -n)")?;
    let peer = SocketAddr::new(common.client_ip, 9);
    for s in &mut sessions {
        s.steps.push_back(Request::Allocate);
        if a.channel {
            s.steps.push_back(Request::ChannelBind(FIRST_CHANNEL, peer));
        }
    }
    let cpu = ServerCpu::start(common.server_pid);
    let start = Instant::now();
    engine.run(&mut sessions, a.window, start + Duration::from_secs(120), &mut |_, _, _, _| false)?;
    let setup_s = start.elapsed().as_secs_f64();
    let failed = check_failures(&sessions, a.allocs)?;
    let held = sessions.iter().filter(|s| s.relay.is_some() && s.failed.is_none()).count() as u64;
    std::thread::sleep(Duration::from_secs_f64(a.settle));
    let rss_after = common.server_pid.and_then(procfs::rss_kib);
    let server_cpu = cpu.finish();
    if failed > 0 {
        eprintln!(
            "tern-load: {failed} allocations failed; first: {}",
            sessions.iter().find_map(|s| s.failed.as_deref()).unwrap_or("?")
        );
    }
    delete_all(&mut engine, &mut sessions)?;
    let (rss_per, rss_total_per) = match (rss_before, rss_after) {
        (Some(b), Some(x)) if held > 0 => {
            (Some(x.saturating_sub(b) as f64 * 1024.0 / held as f64), Some(x as f64 * 1024.0 / held as f64))
        }
        _ => (None, None),
    };
    Ok(Report {
        mode: "hold".into(),
        allocs: held,
        send_errors: failed as u64,
        retransmits: engine.retransmits,
        setup_s,
        allocs_per_s: held as f64 / setup_s.max(1e-9),
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        rss_bytes_per_alloc: rss_per,
        rss_total_bytes_per_alloc: rss_total_per,
        ..Report::with_cpu(server_cpu, held)
    })
}
