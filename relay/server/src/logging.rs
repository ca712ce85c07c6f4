//! Logging with coturn's options: `log-file` (a path, or `stdout`, `-`, `syslog`),
//! `no-stdout-log`, `syslog`, `simple-log`, `verbose`/`Verbose`, plus Tern's `log-format`
//! (`text` or `json`: one JSON object a line). `RUST_LOG` overrides the level.
//!
//! Lines a remote party can cause are rate-limited per source: an event at INFO or above that
//! names a client or peer address (a `tuple`, `client`, `peer`, `from`, `source` or `addr`
//! field) passes at most [`BURST`] times per [`WINDOW`] for each (call site, source IP); the rest
//! are counted, and one line later says how many were suppressed. A client cannot flood the
//! log, and the counters in `/metrics` still see every event.
//!
//! The log file is opened in append mode and can be reopened (SIGHUP, after logrotate moved
//! it). Tern always writes to exactly the path given, which is what coturn's `simple-log` does;
//! without `simple-log` coturn would add a date and PID to the name, which logrotate setups
//! avoid anyway.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use relay_config::{Config, LogFormat, Verbosity};
use tracing::callsite::Identifier;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Events let through per (call site, source IP) and window.
pub(crate) const BURST: u32 = 10;
/// The rate limiter's window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Sources tracked at once; beyond this, events from new sources are suppressed (and counted)
/// until old windows expire.
const MAX_SOURCES: usize = 10_000;
/// The target of the limiter's own summaries (never limited).
const SUMMARY_TARGET: &str = "relay::ratelimit";

/// Where log lines go, and the rate limiter's state.
#[derive(Clone)]
pub(crate) struct LogHandle {
    inner: Arc<Sinks>,
    limiter: Arc<Mutex<Limiter>>,
}

struct Sinks {
    stdout: bool,
    syslog: bool,
    file: Option<(PathBuf, Mutex<File>)>,
}

impl LogHandle {
    /// Reopens the log file (SIGHUP).
    #[allow(dead_code)]
    pub(crate) fn reopen(&self) -> io::Result<()> {
        if let Some((path, f)) = &self.inner.file {
            let new = open(path)?;
            *f.lock().unwrap_or_else(|e| e.into_inner()) = new;
        }
        Ok(())
    }

    /// Writes the summaries of sources whose window has ended (the control loop calls it now
    /// and then, so a source that went quiet still gets its count).
    pub(crate) fn flush_suppressed(&self) {
        let done = self.limiter.lock().unwrap_or_else(|e| e.into_inner()).expire(Instant::now());
        emit_summaries(&done);
    }
}

fn open(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Installs the global subscriber.
pub(crate) fn init(cfg: &Config) -> anyhow::Result<LogHandle> {
    let mut stdout = !cfg.no_stdout_log;
    let mut syslog = cfg.syslog;
    let mut file = None;
    match cfg.log_file.as_deref() {
        None | Some("") => stdout = true,
        Some("stdout" | "-") => stdout = true,
        Some("syslog") => syslog = true,
        Some(p) => {
            let path = PathBuf::from(p);
            let f = open(&path).with_context(|| format!("opening log-file {}", path.display()))?;
            file = Some((path, Mutex::new(f)));
        }
    }
    if syslog {
        let ident = CString::new("tern-relay").unwrap_or_default();
        // SAFETY: openlog keeps the pointer; the CString is leaked so it lives for the process.
        unsafe { libc::openlog(ident.into_raw(), libc::LOG_PID, libc::LOG_DAEMON) };
    }
    let handle = LogHandle { inner: Arc::new(Sinks { stdout, syslog, file }), limiter: Arc::default() };
    let level = match cfg.verbosity {
        Verbosity::Normal => "info",
        Verbosity::Verbose => "debug",
        Verbosity::Extra => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let limit = RateLimit { limiter: handle.limiter.clone() };
    let fmt = tracing_subscriber::fmt::layer().with_writer(handle.clone()).with_ansi(false).with_target(false);
    let registry = tracing_subscriber::registry().with(filter).with(limit);
    let _ = match cfg.log_format {
        LogFormat::Text => registry.with(fmt).try_init(),
        LogFormat::Json => registry.with(fmt.json().flatten_event(true).with_current_span(false)).try_init(),
    };
    Ok(handle)
}

/// One formatted event, written to every sink when dropped.
pub(crate) struct LineWriter {
    sinks: Arc<Sinks>,
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if self.sinks.stdout {
            let _ = io::stdout().lock().write_all(&self.buf);
        }
        if let Some((_, f)) = &self.sinks.file {
            let _ = f.lock().unwrap_or_else(|e| e.into_inner()).write_all(&self.buf);
        }
        if self.sinks.syslog {
            let line = String::from_utf8_lossy(&self.buf);
            if let Ok(c) = CString::new(line.trim_end().replace('\0', " ")) {
                // SAFETY: a "%s" format with one valid NUL-terminated string argument.
                unsafe { libc::syslog(libc::LOG_INFO, c"%s".as_ptr(), c.as_ptr()) };
            }
        }
    }
}

impl<'a> MakeWriter<'a> for LogHandle {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter { sinks: self.inner.clone(), buf: Vec::with_capacity(256) }
    }
}

// ---------------------------------------------------------------------------------------------
// Per-source rate limiting
// ---------------------------------------------------------------------------------------------

/// The layer that drops events over the per-source budget.
struct RateLimit {
    limiter: Arc<Mutex<Limiter>>,
}

impl<S: Subscriber> Layer<S> for RateLimit {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        // DEBUG and TRACE are for whoever turned them on; only INFO and above are limited.
        if *meta.level() > Level::INFO || meta.target() == SUMMARY_TARGET {
            return true;
        }
        let mut v = SourceVisitor::default();
        event.record(&mut v);
        let Some(ip) = v.best() else { return true };
        let (pass, owed) = {
            let mut l = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
            l.check(meta.callsite(), ip, Instant::now())
        };
        // Written after the lock is released: the summary goes through this layer too.
        if let Some(n) = owed {
            emit_summaries(&[(ip, n)]);
        }
        pass
    }
}

fn emit_summaries(done: &[(IpAddr, u64)]) {
    for (ip, n) in done {
        tracing::warn!(target: SUMMARY_TARGET, source = %ip, suppressed = n, "suppressed {n} similar log lines caused by this source in the last {} s", WINDOW.as_secs());
    }
}

/// Finds the address of the remote party an event is about.
#[derive(Default)]
struct SourceVisitor {
    /// (priority, ip): a client beats a peer.
    found: Option<(u8, IpAddr)>,
}

impl SourceVisitor {
    fn best(&self) -> Option<IpAddr> {
        self.found.map(|(_, ip)| ip)
    }

    fn offer(&mut self, field: &Field, value: &str) {
        let prio = match field.name() {
            "tuple" | "client" | "source" | "from" => 0,
            "peer" | "addr" => 1,
            _ => return,
        };
        if self.found.is_some_and(|(p, _)| p <= prio) {
            return;
        }
        if let Some(ip) = source_ip(value) {
            self.found = Some((prio, ip));
        }
    }
}

impl Visit for SourceVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.offer(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if matches!(field.name(), "tuple" | "client" | "source" | "from" | "peer" | "addr") {
            self.offer(field, &format!("{value:?}"));
        }
    }
}

/// The IP address in a field: `1.2.3.4`, `1.2.3.4:5`, `[::1]:5`, or a 5-tuple as the core
/// prints it (`udp:1.2.3.4:5->6.7.8.9:3478`: the client's side).
fn source_ip(value: &str) -> Option<IpAddr> {
    let v = value.split("->").next().unwrap_or(value);
    let v = v.strip_prefix("udp:").or_else(|| v.strip_prefix("tcp:")).or_else(|| v.strip_prefix("tls:")).unwrap_or(v);
    v.parse::<SocketAddr>().map(|a| a.ip()).or_else(|_| v.parse::<IpAddr>()).ok()
}

#[derive(Debug)]
struct Bucket {
    window_start: Instant,
    passed: u32,
    suppressed: u64,
}

/// Fixed-window counters per (call site, source).
#[derive(Default)]
struct Limiter {
    buckets: HashMap<(Identifier, IpAddr), Bucket>,
    /// Events of sources that found the table full.
    overflow: u64,
    last_expire: Option<Instant>,
}

impl Limiter {
    /// Whether an event passes, and a count of suppressed events owed a summary (when its
    /// source's previous window had any).
    fn check(&mut self, callsite: Identifier, ip: IpAddr, now: Instant) -> (bool, Option<u64>) {
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&(callsite.clone(), ip)) {
            if self.last_expire.is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1)) {
                self.last_expire = Some(now);
                // Expired windows make room; their summaries are dropped with them here,
                // counted in `overflow`.
                let before: u64 = self.buckets.values().map(|b| b.suppressed).sum();
                self.buckets.retain(|_, b| now.saturating_duration_since(b.window_start) < WINDOW);
                let after: u64 = self.buckets.values().map(|b| b.suppressed).sum();
                self.overflow += before - after;
            }
            if self.buckets.len() >= MAX_SOURCES {
                self.overflow += 1;
                return (false, None);
            }
        }
        let b = self.buckets.entry((callsite, ip)).or_insert(Bucket { window_start: now, passed: 0, suppressed: 0 });
        let mut owed = None;
        if now.saturating_duration_since(b.window_start) >= WINDOW {
            if b.suppressed > 0 {
                owed = Some(b.suppressed);
            }
            *b = Bucket { window_start: now, passed: 0, suppressed: 0 };
        }
        if b.passed < BURST {
            b.passed += 1;
            (true, owed)
        } else {
            b.suppressed += 1;
            (false, owed)
        }
    }

    /// Drops ended windows; returns the suppressed counts they owe, summed per source.
    fn expire(&mut self, now: Instant) -> Vec<(IpAddr, u64)> {
        let mut owed: HashMap<IpAddr, u64> = HashMap::new();
        self.buckets.retain(|(_, ip), b| {
            if now.saturating_duration_since(b.window_start) < WINDOW {
                return true;
            }
            if b.suppressed > 0 {
                *owed.entry(*ip).or_default() += b.suppressed;
            }
            false
        });
        let mut out: Vec<(IpAddr, u64)> = owed.into_iter().collect();
        if self.overflow > 0 {
            out.push((IpAddr::from([0, 0, 0, 0]), std::mem::take(&mut self.overflow)));
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callsite() -> Identifier {
        struct Cs;
        impl tracing::Callsite for Cs {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                unreachable!()
            }
        }
        static CS: Cs = Cs;
        Identifier(&CS)
    }

    #[test]
    fn sources_are_found_in_tuples_and_addresses() {
        assert_eq!(source_ip("udp:192.0.2.1:5000->198.51.100.1:3478"), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(source_ip("tls:[2001:db8::1]:5000->[2001:db8::2]:5349"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(source_ip("192.0.2.9"), Some("192.0.2.9".parse().unwrap()));
        assert_eq!(source_ip("[::1]:80"), Some("::1".parse().unwrap()));
        assert_eq!(source_ip("worker 3"), None);
    }

    #[test]
    fn each_source_gets_a_burst_per_window_and_a_count_of_the_rest() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let passed = (0..100).filter(|_| l.check(callsite(), a, t0).0).count();
        assert_eq!(passed, BURST as usize);
        assert!(l.check(callsite(), b, t0).0, "another source has its own budget");
        // The next window lets the source through again and owes the summary.
        assert_eq!(l.check(callsite(), a, t0 + WINDOW), (true, Some(100 - u64::from(BURST))));
        for _ in 0..20 {
            l.check(callsite(), a, t0 + WINDOW);
        }
        assert_eq!(l.expire(t0 + WINDOW), vec![], "the window has not ended");
        assert_eq!(l.expire(t0 + WINDOW * 2), vec![(a, 11)]);
        assert!(l.buckets.is_empty());
    }
}
