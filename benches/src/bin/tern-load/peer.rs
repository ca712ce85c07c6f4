//! An echo peer: every datagram goes back to where it came from. It runs as a thread of the
//! generator, or alone (`tern-load peer`) so that its CPU is not the generator's.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// A running echo thread; dropping it stops the thread.
pub(crate) struct EchoHandle {
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for EchoHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bind(listen: SocketAddr) -> anyhow::Result<UdpSocket> {
    let s = crate::big_socket(listen).with_context(|| format!("binding the echo peer on {listen}"))?;
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok(s)
}

fn echo_loop(s: &UdpSocket, stop: &AtomicBool, until: Option<Instant>) -> u64 {
    let mut buf = vec![0u8; 65536];
    let mut echoed = 0;
    while !stop.load(Ordering::Relaxed) && until.is_none_or(|u| Instant::now() < u) {
        if let Ok((n, from)) = s.recv_from(&mut buf)
            && s.send_to(&buf[..n], from).is_ok()
        {
            echoed += 1;
        }
    }
    echoed
}

/// Starts an echo thread on `listen` (port 0 picks one).
pub(crate) fn spawn(listen: SocketAddr) -> anyhow::Result<(SocketAddr, EchoHandle)> {
    let s = bind(listen)?;
    let addr = s.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::Builder::new().name("echo-peer".into()).spawn(move || {
        echo_loop(&s, &stop2, None);
    })?;
    Ok((addr, EchoHandle { addr, stop, thread: Some(thread) }))
}

/// Runs an echo peer in the foreground for at most `seconds`.
pub(crate) fn run_foreground(listen: SocketAddr, seconds: f64) -> anyhow::Result<u64> {
    let s = bind(listen)?;
    eprintln!("echo peer on {}", s.local_addr()?);
    let stop = AtomicBool::new(false);
    Ok(echo_loop(&s, &stop, Some(Instant::now() + Duration::from_secs_f64(seconds))))
}
