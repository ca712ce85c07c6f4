//! `tern-load`: a TURN packet load generator. It speaks TURN itself with `relay-proto`'s codec,
//! so it drives any TURN server (Tern, coturn, …) given a host, a port and a REST secret or a
//! user and password.
//!
//! ```text
//! tern-load --server 127.0.0.1:3478 --secret S --server-pid PID relay --topology c2c --rate 40000
//! tern-load --server 127.0.0.1:3478 --user u --password p relay --topology echo --peer 127.0.0.1:5000 --send
//! tern-load ... relay --rate 0                      # saturate: each client keeps a window in flight
//! tern-load ... alloc --concurrency 32 --duration 5 # allocation churn with Refresh and delete
//! tern-load ... hold --allocs 16384                 # RSS per held allocation
//! tern-load peer --listen 127.0.0.1:5000            # an echo peer of its own
//! ```
//! Every mode prints one human line and, with `--json`, one JSON line (what
//! `scripts/bench-vs-coturn` reads). Runs are bounded in time: setup phases time out, traffic
//! stops after `--duration` plus `--drain`.

mod alloc;
mod engine;
mod peer;
mod relay;

use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::bail;
use clap::{Parser, Subcommand};
use serde::Serialize;
use tern_benches::client::Credentials;
use tern_benches::procfs;

#[derive(Debug, Parser)]
#[command(name = "tern-load", about = "TURN packet load generator (works against any TURN server)")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Clone, clap::Args)]
struct CommonArgs {
    /// The TURN server (UDP).
    #[arg(long, global = true, default_value = "127.0.0.1:3478")]
    server: SocketAddr,
    /// TURN REST shared secret (`static-auth-secret`).
    #[arg(long, global = true)]
    secret: Option<String>,
    /// The user part of REST usernames, or the static user (with --password).
    #[arg(long, global = true, default_value = "bench")]
    user: String,
    /// Static long-term password (instead of --secret).
    #[arg(long, global = true)]
    password: Option<String>,
    /// Local address of the simulated clients (default: loopback of the server's family).
    #[arg(long, global = true)]
    client_ip: Option<IpAddr>,
    /// The server's PID, for its CPU seconds and RSS from /proc.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Print a JSON line too.
    #[arg(long, global = true)]
    json: bool,
    /// A label copied into the report.
    #[arg(long, global = true, default_value = "")]
    label: String,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Relay data through allocations (c2c, echo) or through a bare forwarder (raw).
    Relay(relay::RelayArgs),
    /// Allocation churn: Allocate, Refresh, delete, again.
    Alloc(alloc::AllocArgs),
    /// Hold N allocations and report the server's RSS per allocation.
    Hold(alloc::HoldArgs),
    /// Run an echo peer.
    Peer {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Seconds to run.
        #[arg(long, default_value_t = 600.0)]
        duration: f64,
    },
}

/// What every mode needs.
pub(crate) struct Common {
    pub(crate) server: SocketAddr,
    pub(crate) client_ip: IpAddr,
    pub(crate) server_pid: Option<u32>,
    secret: Option<String>,
    user: String,
    password: Option<String>,
}

impl Common {
    pub(crate) fn credentials(&self) -> anyhow::Result<Credentials> {
        match (&self.secret, &self.password) {
            (Some(s), None) => Ok(Credentials::Rest { secret: s.clone(), user: self.user.clone() }),
            (None, Some(p)) => Ok(Credentials::User { username: self.user.clone(), password: p.clone() }),
            _ => bail!("give exactly one of --secret and --password"),
        }
    }
}

/// Socket buffers asked for (the kernel caps them at net.core.rmem_max/wmem_max): a generator
/// descheduled for a few milliseconds on a busy machine must not drop what it measures.
const SOCK_BUF: usize = 4 << 20;

/// A non-blocking UDP socket bound to `addr` with large buffers.
pub(crate) fn big_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(SOCK_BUF);
    let _ = s.set_send_buffer_size(SOCK_BUF);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The server's CPU over a measurement window.
pub(crate) struct ServerCpu {
    pid: Option<u32>,
    start: Option<f64>,
}

impl ServerCpu {
    pub(crate) fn start(pid: Option<u32>) -> Self {
        ServerCpu { pid, start: pid.and_then(procfs::cpu_seconds) }
    }

    /// CPU seconds since [`ServerCpu::start`].
    pub(crate) fn finish(self) -> Option<f64> {
        let end = self.pid.and_then(procfs::cpu_seconds)?;
        Some(end - self.start?)
    }
}

/// One run's figures. Fields that do not apply to a mode stay at their defaults.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Report {
    pub(crate) label: String,
    pub(crate) mode: String,
    pub(crate) allocs: u64,
    pub(crate) offered_rate: u64,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) lost: u64,
    pub(crate) loss_pct: f64,
    pub(crate) duplicates: u64,
    pub(crate) send_errors: u64,
    pub(crate) foreign: u64,
    pub(crate) retransmits: u64,
    pub(crate) pps: f64,
    pub rtt_p50_us: f64,
    pub rtt_p99_us: f64,
    pub rtt_p999_us: f64,
    pub(crate) hops_per_msg: u32,
    pub(crate) setup_s: f64,
    pub(crate) run_s: f64,
    pub(crate) server_cpu_s: Option<f64>,
    /// Messages delivered (relay), allocations completed (alloc) or held (hold) per server
    /// CPU-second.
    pub(crate) per_server_cpu_s: Option<f64>,
    pub(crate) allocs_per_s: f64,
    pub(crate) rss_before_kib: Option<u64>,
    pub(crate) rss_after_kib: Option<u64>,
    pub(crate) rss_bytes_per_alloc: Option<f64>,
    pub(crate) rss_total_bytes_per_alloc: Option<f64>,
}

impl Report {
    fn with_cpu(cpu: Option<f64>, units: u64) -> Report {
        Report {
            server_cpu_s: cpu,
            per_server_cpu_s: cpu.filter(|c| *c > 0.0).map(|c| units as f64 / c),
            ..Report::default()
        }
    }

    fn human(&self) -> String {
        let cpu = match (self.server_cpu_s, self.per_server_cpu_s) {
            (Some(c), Some(p)) => format!(" server_cpu={c:.2}s per_cpu_s={p:.0}"),
            (Some(c), None) => format!(" server_cpu={c:.2}s"),
            _ => String::new(),
        };
        match self.mode.as_str() {
            "alloc" => format!(
                "{} alloc: completed={} allocs/s={:.0} failures={} retransmits={}{cpu}",
                self.label, self.allocs, self.allocs_per_s, self.send_errors, self.retransmits
            ),
            "hold" => format!(
                "{} hold: allocs={} setup={:.2}s rss_before={:?}KiB rss_after={:?}KiB bytes/alloc={:.0} total_bytes/alloc={:.0} failures={}",
                self.label,
                self.allocs,
                self.setup_s,
                self.rss_before_kib,
                self.rss_after_kib,
                self.rss_bytes_per_alloc.unwrap_or(f64::NAN),
                self.rss_total_bytes_per_alloc.unwrap_or(f64::NAN),
                self.send_errors
            ),
            _ => format!(
                "{} {}: allocs={} offered={} sent={} received={} lost={} ({:.3}%) pps={:.0} p50={:.0}us p99={:.0}us p99.9={:.0}us send_errors={}{cpu}",
                self.label,
                self.mode,
                self.allocs,
                self.offered_rate,
                self.sent,
                self.received,
                self.lost,
                self.loss_pct,
                self.pps,
                self.rtt_p50_us,
                self.rtt_p99_us,
                self.rtt_p999_us,
                self.send_errors
            ),
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let c = cli.common;
    let common = Common {
        server: c.server,
        client_ip: c.client_ip.unwrap_or_else(|| relay::default_client_ip(c.server)),
        server_pid: c.server_pid,
        secret: c.secret,
        user: c.user,
        password: c.password,
    };
    let result = match &cli.mode {
        Mode::Relay(a) => relay::run(&common, a),
        Mode::Alloc(a) => alloc::churn(&common, a),
        Mode::Hold(a) => alloc::hold(&common, a),
        Mode::Peer { listen, duration } => match peer::run_foreground(*listen, *duration) {
            Ok(n) => {
                eprintln!("echo peer: {n} datagrams echoed");
                return;
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(mut r) => {
            r.label = c.label;
            println!("{}", r.human());
            if c.json {
                match serde_json::to_string(&r) {
                    Ok(j) => println!("JSON {j}"),
                    Err(e) => eprintln!("tern-load: {e}"),
                }
            }
        }
        Err(e) => {
            eprintln!("tern-load: {e:#}");
            std::process::exit(1);
        }
    }
}
