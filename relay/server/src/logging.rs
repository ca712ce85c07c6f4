//! Logging with coturn's options: `log-file` (a path, or `stdout`, `-`, `syslog`),
//! `no-stdout-log`, `syslog`, `simple-log`, `verbose`/`Verbose`. `RUST_LOG` overrides the level.
//!
//! The log file is opened in append mode and can be reopened (SIGHUP, after logrotate moved
//! it). Tern always writes to exactly the path given, which is what coturn's `simple-log` does;
//! without `simple-log` coturn would add a date and PID to the name, which logrotate setups
//! avoid anyway.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use relay_config::{Config, Verbosity};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Where log lines go.
#[derive(Clone)]
pub(crate) struct LogHandle {
    inner: Arc<Sinks>,
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
    let handle = LogHandle { inner: Arc::new(Sinks { stdout, syslog, file }) };
    let level = match cfg.verbosity {
        Verbosity::Normal => "info",
        Verbosity::Verbose => "debug",
        Verbosity::Extra => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(handle.clone())
        .with_ansi(false)
        .with_target(false)
        .try_init();
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
