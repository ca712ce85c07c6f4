//! Helpers: throwaway files and directories, and loading text as a config file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use relay_config::{ConfigError, Diagnostic, Loaded, Origin, Outcome, load_file, parse_command_line_in};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh empty directory for one test.
pub(crate) fn tempdir(tag: &str) -> PathBuf {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("relay-config-it-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `text` and a last line `no-tls` (so no test depends on a certificate lying around)
/// to a fresh file, and loads it with `load_file`. Line numbers are those of `text`.
pub(crate) fn load(text: &str) -> Result<Loaded, ConfigError> {
    load_raw(&format!("{text}\nno-tls\n"))
}

/// Writes `text` to a fresh file and loads it with `load_file`.
pub(crate) fn load_raw(text: &str) -> Result<Loaded, ConfigError> {
    let d = tempdir("load");
    let p = d.join("turnserver.conf");
    std::fs::write(&p, text).unwrap();
    load_file(&p)
}

/// Loads `text`, which must load; returns it.
pub(crate) fn ok(text: &str) -> Loaded {
    load(text).unwrap_or_else(|e| panic!("{text:?} does not load:\n{e}"))
}

/// Loads `text`, which must fail; returns the errors as `line: message`.
pub(crate) fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(l) => panic!("{text:?} loads: {:?}", l.config),
        Err(e) => e.errors.iter().map(short).collect(),
    }
}

/// The warnings of `text`, which must load, as `line: message`.
pub(crate) fn warnings(text: &str) -> Vec<String> {
    ok(text).warnings.iter().map(short).collect()
}

/// A diagnostic without the temporary file's path: `3: message`, `command line: message`.
pub(crate) fn short(d: &Diagnostic) -> String {
    match &d.origin {
        Origin::File { line, .. } => format!("{line}: {}", d.message),
        Origin::Whole { file: Some(_) } => format!("file: {}", d.message),
        _ => d.to_string(),
    }
}

/// Runs the command line (from `cwd`, default: an empty directory).
pub(crate) fn run(args: &[&str], cwd: Option<&Path>) -> Result<Outcome, ConfigError> {
    let d;
    let cwd = match cwd {
        Some(c) => c,
        None => {
            d = tempdir("cwd");
            &d
        }
    };
    parse_command_line_in(args, cwd)
}

/// Runs the command line, which must start the relay.
pub(crate) fn run_ok(args: &[&str], cwd: Option<&Path>) -> Loaded {
    match run(args, cwd) {
        Ok(Outcome::Run(l)) => l,
        Ok(o) => panic!("{args:?}: {o:?}"),
        Err(e) => panic!("{args:?}:\n{e}"),
    }
}

/// Writes a throwaway PEM-armoured certificate and key. relay-config only checks that the
/// files are there; reading them is the TLS layer's job.
pub(crate) fn pem_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("pkey.pem");
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nTUlJQnRlc3Q=\n-----END CERTIFICATE-----\n").unwrap();
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nTUlJQnRlc3Q=\n-----END PRIVATE KEY-----\n").unwrap();
    (cert, key)
}
