//! Relay mode: N clients push timestamped data through the server for a fixed time, at a fixed
//! total rate or saturating (each client keeps a bounded window in flight), and the report
//! counts sent, received and lost messages, latency quantiles and the server's CPU.
//!
//! Topologies:
//! - `c2c`: clients in pairs, each bound (channel, or permission for Send) to its partner's
//!   relayed address: client → relay A → relay B → client (one message = one delivery);
//! - `echo`: every client bound to an external echo peer: client → relay → peer → relay → client;
//! - `raw`: no TURN at all: clients send bare datagrams to a target (the bare forwarder, or the
//!   sink itself for the direct baseline) and a sink socket receives them.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use mio::net::UdpSocket;
use mio::{Events, Interest, Token};
use tern_benches::client::{self, DataTemplate, PROBE_LEN, Probe, Request};
use tern_benches::hist::Histogram;

use crate::engine::{Engine, Session, check_failures, delete_all};
use crate::{Common, Report, ServerCpu};

/// Channel numbers the generator binds: RFC 8656's range, starting here.
pub(crate) const FIRST_CHANNEL: u16 = 0x4000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Topology {
    C2c,
    Echo,
    Raw,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RelayArgs {
    /// c2c (pairs of clients), echo (through an echo peer) or raw (no TURN: ceiling/baseline).
    #[arg(long, value_enum, default_value = "c2c")]
    pub(crate) topology: Topology,
    /// Simulated clients (allocations); even for c2c.
    #[arg(long, default_value_t = 40)]
    pub(crate) allocs: usize,
    /// Send indications instead of ChannelData.
    #[arg(long)]
    pub(crate) send: bool,
    /// Total messages per second offered; 0 saturates (windowed).
    #[arg(long, default_value_t = 40_000)]
    pub(crate) rate: u64,
    /// Messages in flight per client when saturating.
    #[arg(long, default_value_t = 16)]
    pub(crate) window: u64,
    /// Seconds of traffic.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,
    /// Application payload bytes per message (at least 24: the probe).
    #[arg(long, default_value_t = 100)]
    pub(crate) size: usize,
    /// The echo peer (echo topology). Without it, one runs inside this process.
    #[arg(long)]
    pub(crate) peer: Option<SocketAddr>,
    /// Where raw datagrams go (raw topology): the forwarder, or the sink for the baseline.
    #[arg(long)]
    pub(crate) raw_target: Option<SocketAddr>,
    /// The sink socket's address (raw topology); the forwarder sends here.
    #[arg(long)]
    pub(crate) raw_sink: Option<SocketAddr>,
    /// Seconds to wait for stragglers after sending stops.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) drain: f64,
}

struct Flow {
    tmpl: DataTemplate,
    sent: u64,
    received: u64,
    written_off: u64,
    last_progress: Instant,
}

pub(crate) fn run(common: &Common, a: &RelayArgs) -> anyhow::Result<Report> {
    if a.size < PROBE_LEN || a.size > 65000 {
        bail!("--size must be within {PROBE_LEN}..=65000");
    }
    if a.topology == Topology::C2c && (a.allocs < 2 || !a.allocs.is_multiple_of(2)) {
        bail!("c2c needs an even number of allocations");
    }
    if a.allocs == 0 || a.allocs > 4096 {
        bail!("--allocs must be within 1..=4096");
    }
    let mut echo_thread = None;
    let mut sessions: Vec<Session>;
    let mut engine = Engine::new(String::new(), String::new())?;
    let setup_start = Instant::now();
    let mut sink: Option<UdpSocket> = None;
    let n = a.allocs;

    if a.topology == Topology::Raw {
        let (Some(target), Some(sink_addr)) = (a.raw_target, a.raw_sink) else {
            bail!("raw needs --raw-target and --raw-sink");
        };
        let mut s =
            UdpSocket::from_std(crate::big_socket(sink_addr).with_context(|| format!("binding the sink {sink_addr}"))?);
        engine.poll.registry().register(&mut s, Token(n), Interest::READABLE)?;
        sink = Some(s);
        sessions = (0..n)
            .map(|i| Session::open(engine.poll.registry(), Token(i), common.client_ip, target))
            .collect::<io::Result<_>>()?;
    } else {
        let (user, pass) = common.credentials()?.resolve(crate::unix_now());
        engine = Engine::new(user, pass)?;
        sessions = (0..n)
            .map(|i| Session::open(engine.poll.registry(), Token(i), common.client_ip, common.server))
            .collect::<io::Result<_>>()
            .context("opening client sockets (raise ulimit -n?)")?;
        for s in &mut sessions {
            s.steps.push_back(Request::Allocate);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        engine.run(&mut sessions, 128, deadline, &mut |_, _, _, _| false)?;
        check_failures(&sessions, 0)?;
        let peer = match (a.topology, a.peer) {
            (Topology::Echo, Some(p)) => Some(p),
            (Topology::Echo, None) => {
                let (addr, handle) = crate::peer::spawn(SocketAddr::new(common.client_ip, 0))?;
                echo_thread = Some(handle);
                Some(addr)
            }
            _ => None,
        };
        let relays: Vec<SocketAddr> = sessions.iter().map(|s| s.relay.unwrap_or(common.server)).collect();
        for (i, s) in sessions.iter_mut().enumerate() {
            let to = peer.unwrap_or(relays[i ^ 1]);
            s.steps.push_back(if a.send {
                Request::CreatePermission(vec![to])
            } else {
                Request::ChannelBind(FIRST_CHANNEL, to)
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        engine.run(&mut sessions, 128, deadline, &mut |_, _, _, _| false)?;
        check_failures(&sessions, 0)?;
    }
    let setup_s = setup_start.elapsed().as_secs_f64();

    // Data templates: what each client sends, and to whom it is addressed.
    let relays: Vec<Option<SocketAddr>> = sessions.iter().map(|s| s.relay).collect();
    let now = Instant::now();
    let mut flows: Vec<Flow> = (0..n)
        .map(|i| {
            let tmpl = match a.topology {
                Topology::Raw => DataTemplate::raw(a.size),
                _ if !a.send => DataTemplate::channel(FIRST_CHANNEL, a.size),
                _ => {
                    let to = match a.topology {
                        Topology::C2c => relays[i ^ 1],
                        _ => a.peer.or(echo_thread.as_ref().map(|h: &crate::peer::EchoHandle| h.addr)),
                    };
                    let to = to.ok_or_else(|| anyhow::anyhow!("no relayed address"))?;
                    DataTemplate::send(to, a.size, [i as u8; 12]).ok_or_else(|| anyhow::anyhow!("Send too big"))?
                }
            };
            Ok(Flow { tmpl, sent: 0, received: 0, written_off: 0, last_progress: now })
        })
        .collect::<anyhow::Result<_>>()?;

    let raw = a.topology == Topology::Raw;
    let mut hist = Histogram::default();
    let mut events = Events::with_capacity(4096);
    let mut buf = vec![0u8; 65536];
    let (mut sent, mut received, mut send_errors, mut foreign) = (0u64, 0u64, 0u64, 0u64);
    let mut seen = Vec::<u64>::new();
    let mut dups = 0u64;
    let cpu = ServerCpu::start(common.server_pid);
    let start = Instant::now();
    let duration = Duration::from_secs_f64(a.duration);
    let drain = Duration::from_secs_f64(a.drain);
    let mut next = 0usize;
    let mut last_scan = start;
    let mut send_end = None;
    loop {
        let now = Instant::now();
        let el = now.duration_since(start);
        if el < duration {
            if a.rate > 0 {
                let due = (a.rate as f64 * el.as_secs_f64()) as u64;
                while sent < due {
                    let i = next;
                    next = (next + 1) % n;
                    if !send_one(&mut sessions[i], &mut flows[i], i, sent, start) {
                        send_errors += 1;
                    }
                    sent += 1;
                }
            } else {
                for i in 0..n {
                    let f = &flows[i];
                    let room = a.window.saturating_sub(f.sent - f.received - f.written_off);
                    for _ in 0..room {
                        if !send_one(&mut sessions[i], &mut flows[i], i, sent, start) {
                            send_errors += 1;
                        }
                        sent += 1;
                    }
                }
                if now.duration_since(last_scan) > Duration::from_millis(50) {
                    last_scan = now;
                    for f in &mut flows {
                        if f.sent > f.received + f.written_off
                            && now.duration_since(f.last_progress) > Duration::from_millis(100)
                        {
                            f.written_off = f.sent - f.received;
                            f.last_progress = now;
                        }
                    }
                }
            }
        } else {
            let end = *send_end.get_or_insert(now);
            if received >= sent || now.duration_since(end) >= drain {
                break;
            }
        }
        events.clear();
        engine.poll.poll(&mut events, Some(Duration::from_millis(1))).context("poll")?;
        let now = Instant::now();
        let now_ns = now.duration_since(start).as_nanos() as u64;
        for ev in events.iter() {
            let t = ev.token().0;
            let sock = if t == n { sink.as_ref() } else { sessions.get(t).map(|s| &s.sock) };
            let Some(sock) = sock else { continue };
            loop {
                let len = match sock.recv(&mut buf) {
                    Ok(len) => len,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => continue,
                };
                let Some(p) = client::received_payload(&buf[..len], raw).and_then(Probe::read) else {
                    foreign += 1;
                    continue;
                };
                let (w, bit) = ((p.seq / 64) as usize, 1u64 << (p.seq % 64));
                if seen.len() <= w {
                    seen.resize(w + 1024, 0);
                }
                if seen[w] & bit != 0 {
                    dups += 1;
                    continue;
                }
                seen[w] |= bit;
                received += 1;
                hist.record(now_ns.saturating_sub(p.sent_ns));
                if let Some(f) = flows.get_mut(p.sender as usize) {
                    f.received += 1;
                    f.last_progress = now;
                }
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let send_s = send_end.map_or(elapsed, |e| e.duration_since(start).as_secs_f64());
    let server_cpu = cpu.finish();
    drop(echo_thread);
    if !raw {
        delete_all(&mut engine, &mut sessions)?;
    }
    let hops = match a.topology {
        Topology::Echo => 2,
        _ => 1,
    };
    let lost = sent.saturating_sub(received);
    Ok(Report {
        mode: format!(
            "relay-{}-{}",
            match a.topology {
                Topology::C2c => "c2c",
                Topology::Echo => "echo",
                Topology::Raw => "raw",
            },
            if raw {
                "raw"
            } else if a.send {
                "send"
            } else {
                "channel"
            }
        ),
        allocs: n as u64,
        offered_rate: a.rate,
        sent,
        received,
        lost,
        loss_pct: if sent > 0 { lost as f64 * 100.0 / sent as f64 } else { 0.0 },
        duplicates: dups,
        send_errors,
        foreign,
        pps: received as f64 / send_s.max(1e-9),
        rtt_p50_us: hist.quantile(0.5) as f64 / 1000.0,
        rtt_p99_us: hist.quantile(0.99) as f64 / 1000.0,
        rtt_p999_us: hist.quantile(0.999) as f64 / 1000.0,
        hops_per_msg: hops,
        setup_s,
        run_s: elapsed,
        ..Report::with_cpu(server_cpu, received)
    })
}

/// Sends flow `i`'s next message; `false` if the socket refused it.
fn send_one(s: &mut Session, f: &mut Flow, i: usize, seq: u64, start: Instant) -> bool {
    let p = Probe { sender: i as u32, seq, sent_ns: start.elapsed().as_nanos() as u64 };
    f.tmpl.stamp(&p);
    f.sent += 1;
    s.sock.send(&f.tmpl.bytes).is_ok()
}

/// The local IP the generator's clients use, when none is given: the server's own family's
/// loopback.
pub(crate) fn default_client_ip(server: SocketAddr) -> IpAddr {
    if server.is_ipv4() { IpAddr::from([127, 0, 0, 1]) } else { IpAddr::from(std::net::Ipv6Addr::LOCALHOST) }
}
