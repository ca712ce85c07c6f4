//! Load generator for signaling servers: opens N WebSocket clients in pairs against a running
//! server, pairs them by code, holds them, then relays messages inside every pair and reports
//! messages per second and per server CPU-second, server memory per connection and pairing
//! latency (p50/p99).
//!
//! Speaks the sidecar's JSON protocol (`--dialect json`) or Socket.IO v4 over a raw WebSocket
//! with the seed's events (`--dialect sio`), so the same client measures tern-sidecar and a Node
//! socket.io server. Server CPU and memory come from `/proc/PID/stat` and `/proc/PID/status`.
//! Run by `scripts/bench-sidecar`; every loop is bounded by counts and a read timeout.

use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dialect {
    Json,
    Sio,
}

struct Opts {
    addr: String,
    dialect: Dialect,
    pairs: usize,
    threads: usize,
    rounds: usize,
    window: usize,
    hold: Duration,
    pid: u32,
    clk_tck: f64,
    label: String,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        addr: String::new(),
        dialect: Dialect::Json,
        pairs: 100,
        threads: 2,
        rounds: 50,
        window: 8,
        hold: Duration::from_secs(5),
        pid: 0,
        clk_tck: 100.0,
        label: "server".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().ok_or_else(|| format!("{} needs a value", args[i]))?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{}: {e}", args[i]));
        match args[i].as_str() {
            "--addr" => o.addr = v,
            "--dialect" => {
                o.dialect = match v.as_str() {
                    "json" => Dialect::Json,
                    "sio" => Dialect::Sio,
                    _ => return Err("--dialect json|sio".into()),
                }
            }
            "--pairs" => o.pairs = num(&v)?,
            "--threads" => o.threads = num(&v)?.max(1),
            "--rounds" => o.rounds = num(&v)?,
            "--window" => o.window = num(&v)?.max(1),
            "--hold" => o.hold = Duration::from_secs(num(&v)? as u64),
            "--pid" => o.pid = num(&v)? as u32,
            "--clk-tck" => o.clk_tck = num(&v)? as f64,
            "--label" => o.label = v,
            other => return Err(format!("unknown flag {other}")),
        }
        i += 2;
    }
    if o.addr.is_empty() || o.pid == 0 {
        return Err("usage: sidecar_load --addr HOST:PORT --pid SERVER_PID [--dialect json|sio] [--pairs N] \
                    [--threads T] [--rounds R] [--window W] [--hold SECONDS] [--clk-tck HZ] [--label NAME]"
            .into());
    }
    Ok(o)
}

struct Client {
    ws: WebSocket<TcpStream>,
    dialect: Dialect,
}

const READ_TIMEOUT: Duration = Duration::from_secs(20);

impl Client {
    fn connect(addr: &str, dialect: Dialect) -> io::Result<Client> {
        let path = match dialect {
            Dialect::Json => "/ws",
            Dialect::Sio => "/socket.io/?EIO=4&transport=websocket",
        };
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        // Frames queued with `queue` leave together on `flush`, as a browser's burst of candidates does.
        let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(64 * 1024);
        let (ws, _) = tungstenite::client::client_with_config(format!("ws://{addr}{path}"), stream, Some(config))
            .map_err(|e| io::Error::other(format!("handshake: {e}")))?;
        let mut c = Client { ws, dialect };
        if dialect == Dialect::Sio {
            let open = c.recv_text()?;
            if !open.starts_with('0') {
                return Err(io::Error::other(format!("expected an open packet, got {open}")));
            }
            c.send("40")?;
            c.recv_until(|t| t.starts_with("40"))?;
        }
        Ok(c)
    }

    fn send(&mut self, t: &str) -> io::Result<()> {
        self.ws.send(Message::text(t.to_owned())).map_err(io::Error::other)
    }

    fn queue(&mut self, t: &str) -> io::Result<()> {
        self.ws.write(Message::text(t.to_owned())).map_err(io::Error::other)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.ws.flush().map_err(io::Error::other)
    }

    /// The next text message; answers Engine.IO pings on the way.
    fn recv_text(&mut self) -> io::Result<String> {
        for _ in 0..10_000 {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    if self.dialect == Dialect::Sio && t.as_str() == "2" {
                        self.send("3")?;
                        continue;
                    }
                    return Ok(t.to_string());
                }
                Ok(_) => continue,
                Err(e) => return Err(io::Error::other(e)),
            }
        }
        Err(io::Error::other("too many non-text frames"))
    }

    fn recv_until(&mut self, mut pred: impl FnMut(&str) -> bool) -> io::Result<String> {
        for _ in 0..1000 {
            let t = self.recv_text()?;
            if pred(&t) {
                return Ok(t);
            }
        }
        Err(io::Error::other("expected message never came"))
    }

    fn create(&mut self) -> io::Result<String> {
        match self.dialect {
            Dialect::Json => {
                self.send(r#"{"type":"create"}"#)?;
                let t = self.recv_until(|t| t.contains(r#""type":"created""#))?;
                let v: serde_json::Value = serde_json::from_str(&t).map_err(io::Error::other)?;
                Ok(v["code"].as_str().unwrap_or_default().to_owned())
            }
            Dialect::Sio => {
                self.send(r#"42["TV_INIT"]"#)?;
                let t = self.recv_until(|t| t.contains("TV_INIT_OK"))?;
                let v: serde_json::Value = serde_json::from_str(&t[2..]).map_err(io::Error::other)?;
                Ok(v[1].as_str().unwrap_or_default().to_owned())
            }
        }
    }

    /// Joins and waits until this member holds its ICE configuration.
    fn join(&mut self, code: &str) -> io::Result<()> {
        match self.dialect {
            Dialect::Json => {
                self.send(&format!(r#"{{"type":"join","code":"{code}"}}"#))?;
                self.recv_until(|t| t.contains(r#""type":"credentials""#) || t.contains(r#""type":"error""#))
                    .and_then(|t| if t.contains("error") { Err(io::Error::other(t)) } else { Ok(()) })
            }
            Dialect::Sio => {
                self.send(&format!(r#"42["JOIN_ROOM","{code}"]"#))?;
                self.recv_until(|t| t.contains("CONFIG_FEEDBACK") || t.contains("ERROR"))
                    .and_then(|t| if t.contains("ERROR") { Err(io::Error::other(t)) } else { Ok(()) })
            }
        }
    }

    fn signal_text(&self, i: usize) -> String {
        let cand = format!(
            r#"{{"candidate":"candidate:842163049 1 udp 1677729535 203.0.113.{} {} typ srflx raddr 10.0.0.1 rport 50000 generation 0 ufrag Zc5B network-cost 999","sdpMid":"0","sdpMLineIndex":0}}"#,
            i % 250,
            40000 + i % 20000
        );
        match self.dialect {
            Dialect::Json => format!(r#"{{"type":"signal","data":{cand}}}"#),
            Dialect::Sio => format!(r#"42["RTC_Candidate_Exchange",{cand}]"#),
        }
    }

    fn recv_signal(&mut self) -> io::Result<()> {
        let marker = match self.dialect {
            Dialect::Json => r#""type":"signal""#,
            Dialect::Sio => "RTC_Candidate_Exchange",
        };
        self.recv_until(|t| t.contains(marker)).map(drop)
    }
}

/// (utime + stime in seconds, RSS in KiB, threads) of `pid`.
fn proc_sample(pid: u32, clk_tck: f64) -> io::Result<(f64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').ok_or_else(|| io::Error::other("bad stat"))? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((ticks as f64 / clk_tck, field("VmRSS:"), field("Threads:")))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() {
    let o = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sidecar_load: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&o) {
        eprintln!("sidecar_load [{}]: {e}", o.label);
        std::process::exit(1);
    }
}

fn run(o: &Opts) -> io::Result<()> {
    let (_, rss0, threads0) = proc_sample(o.pid, o.clk_tck)?;

    // 1. Connect and pair, one pair after the other; latency = join sent → joiner has its ICE
    //    servers.
    let mut pairs: Vec<(Client, Client)> = Vec::with_capacity(o.pairs);
    let mut pairing_ms = Vec::with_capacity(o.pairs);
    let t_connect = Instant::now();
    for i in 0..o.pairs {
        let mut a = Client::connect(&o.addr, o.dialect).map_err(|e| io::Error::other(format!("pair {i}: {e}")))?;
        let code = a.create().map_err(|e| io::Error::other(format!("pair {i}: create: {e}")))?;
        let mut b = Client::connect(&o.addr, o.dialect).map_err(|e| io::Error::other(format!("pair {i}: {e}")))?;
        let t = Instant::now();
        b.join(&code).map_err(|e| io::Error::other(format!("pair {i}: join: {e}")))?;
        pairing_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        pairs.push((a, b));
    }
    let connect_secs = t_connect.elapsed().as_secs_f64();
    pairing_ms.sort_by(f64::total_cmp);

    // 2. Hold every connection, then sample the server's memory.
    std::thread::sleep(o.hold);
    let (cpu_hold, rss1, threads1) = proc_sample(o.pid, o.clk_tck)?;
    let conns = 2 * o.pairs;
    let kib_per_conn = rss1.saturating_sub(rss0) as f64 / conns as f64;

    // 3. Relay: every pair exchanges `window` messages per round, alternating direction, each
    //    client thread driving its share of the pairs in lockstep.
    let delivered = Arc::new(AtomicU64::new(0));
    let per_thread = o.pairs.div_ceil(o.threads);
    let mut chunks: Vec<Vec<(Client, Client)>> = Vec::new();
    while !pairs.is_empty() {
        let rest = pairs.split_off(pairs.len().saturating_sub(per_thread));
        chunks.push(rest);
    }
    let (cpu0, _, _) = proc_sample(o.pid, o.clk_tck)?;
    let t0 = Instant::now();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|mut chunk| {
            let delivered = Arc::clone(&delivered);
            let (rounds, window) = (o.rounds, o.window);
            std::thread::spawn(move || -> io::Result<()> {
                for r in 0..rounds {
                    for (a, b) in chunk.iter_mut() {
                        let (tx, _) = if r % 2 == 0 { (a, b) } else { (b, a) };
                        for k in 0..window {
                            let t = tx.signal_text(r * window + k);
                            tx.queue(&t)?;
                        }
                        tx.flush()?;
                    }
                    for (a, b) in chunk.iter_mut() {
                        let rx = if r % 2 == 0 { b } else { a };
                        for _ in 0..window {
                            rx.recv_signal()?;
                        }
                        delivered.fetch_add(window as u64, Ordering::Relaxed);
                    }
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| io::Error::other("client thread panicked"))??;
    }
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, rss2, _) = proc_sample(o.pid, o.clk_tck)?;
    let msgs = delivered.load(Ordering::Relaxed);
    let cpu = cpu1 - cpu0;

    let report = serde_json::json!({
        "label": o.label,
        "dialect": format!("{:?}", o.dialect).to_lowercase(),
        "connections": conns,
        "connect_and_pair_secs": round2(connect_secs),
        "pairing_ms_p50": round3(percentile(&pairing_ms, 0.50)),
        "pairing_ms_p99": round3(percentile(&pairing_ms, 0.99)),
        "pairing_ms_max": round3(percentile(&pairing_ms, 1.0)),
        "rss_kib_idle": rss0,
        "rss_kib_held": rss1,
        "kib_per_connection": round2(kib_per_conn),
        "server_threads": threads1,
        "server_threads_idle": threads0,
        "server_cpu_secs_connect_and_hold": round2(cpu_hold),
        "messages": msgs,
        "relay_secs": round2(secs),
        "msgs_per_sec": (msgs as f64 / secs).round(),
        "server_cpu_secs": round2(cpu),
        "msgs_per_server_cpu_sec": if cpu > 0.0 { (msgs as f64 / cpu).round() } else { f64::NAN },
        "rss_kib_after_relay": rss2,
    });
    println!("{report}");
    Ok(())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
