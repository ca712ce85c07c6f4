//! The `tern-sidecar` binary: flag errors exit non-zero with a sentence, a good command line
//! serves, and the secret never reaches a log line even at trace level.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tern-sidecar");

fn run_fail(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).env_remove("TERN_SIDECAR_STATIC_AUTH_SECRET").output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_flags_fail_clearly() {
    let cases: &[(&[&str], &str)] = &[
        (&["--turn-host", "127.0.0.1"], "no TURN secret"),
        (&["--static-auth-secret", "s"], "no TURN URIs"),
        (&["--static-auth-secret", "s", "--turn-host", "h", "--listen", "nowhere"], "invalid socket address"),
        (&["--static-auth-secret", "s", "--turn-host", "h", "--room-ttl", "5 fortnights"], "unknown unit"),
        (&["--static-auth-secret", "s", "--turn-host", "h", "--max-room-members", "1"], "not in 2..=16"),
        (&["--no-such-flag"], "unexpected argument"),
        (&["-c", "/nonexistent/turnserver.conf"], "turnserver.conf"),
    ];
    for (args, needle) in cases {
        let (code, err) = run_fail(args);
        assert_ne!(code, 0, "{args:?} succeeded");
        assert!(err.contains(needle), "{args:?}: expected {needle:?} in {err}");
    }
}

#[test]
fn serves_and_never_logs_the_secret() {
    let secret = "binary-test-secret-e41b";
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--turn-host", "127.0.0.1"])
        .env("TERN_SIDECAR_STATIC_AUTH_SECRET", secret)
        .env("RUST_LOG", "trace")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = loop {
        assert!(Instant::now() < deadline, "no listening line: {log}");
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("exited early: {log}");
        }
        log.push_str(&line);
        if let Some(i) = line.find("http://") {
            let rest = &line[i + 7..];
            break rest[..rest.find('/').unwrap()].to_owned();
        }
    };
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    child.kill().unwrap();
    let _ = child.wait();
    let _ = stderr.read_to_string(&mut log);
    assert!(log.contains("listening"));
    assert!(!log.contains(secret), "the secret reached the log:\n{log}");
}
