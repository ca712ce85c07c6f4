//! The read side after the handshake: a few worker threads, each a `mio::Poll` over its share
//! of the open WebSockets. No async runtime: tungstenite reads a non-blocking socket until it
//! would block, and the [`Reader`] handles each message exactly as a blocking loop would.
//!
//! Why not a thread per connection: on 2 cores the context switch per received batch cost more
//! than everything else a message needs, and 10,000 threads cost ~10 KiB of stack each. One
//! worker wake-up now serves every ready socket.
//!
//! Fairness: a socket gets at most [`BUDGET`] messages per turn; one with more input waits for
//! the next turn (mio is edge-triggered, so it is re-queued rather than re-armed). Liveness
//! (pings, ping timeouts) is checked for every connection once per tick.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::server::{Flow, Reader};

/// Messages one socket may have handled per turn.
const BUDGET: usize = 64;

const WAKER: Token = Token(usize::MAX);

/// Hands connections to the workers, round robin.
pub(crate) struct Pool {
    workers: Vec<(Sender<Reader>, Arc<Waker>)>,
    next: AtomicUsize,
}

/// A worker not started yet.
pub(crate) struct Worker {
    poll: Poll,
    rx: Receiver<Reader>,
    tick: Duration,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("workers", &self.workers.len()).finish()
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("tick", &self.tick).finish()
    }
}

impl Pool {
    /// A pool of `n` workers checking liveness every `tick`.
    pub(crate) fn new(n: usize, tick: Duration) -> io::Result<(Pool, Vec<Worker>)> {
        let mut handles = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (tx, rx) = crossbeam_channel::unbounded();
            handles.push((tx, waker));
            workers.push(Worker { poll, rx, tick });
        }
        Ok((Pool { workers: handles, next: AtomicUsize::new(0) }, workers))
    }

    /// Gives a connection to a worker.
    pub(crate) fn submit(&self, reader: Reader) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        let (tx, waker) = &self.workers[i];
        match tx.send(reader) {
            Ok(()) => {
                if let Err(e) = waker.wake() {
                    tracing::warn!(error = %e, "cannot wake a worker");
                }
            }
            Err(crossbeam_channel::SendError(r)) => r.end(Flow::End),
        }
    }
}

impl Worker {
    /// Runs the worker for the life of the process.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut conns: HashMap<usize, Reader> = HashMap::new();
        let mut next_token = 0usize;
        let mut again: Vec<usize> = Vec::new();
        let mut next_tick = Instant::now() + self.tick;
        loop {
            let timeout =
                if again.is_empty() { next_tick.saturating_duration_since(Instant::now()) } else { Duration::ZERO };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "poll failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            let mut ready: Vec<usize> = std::mem::take(&mut again);
            for ev in &events {
                if ev.token() == WAKER {
                    for reader in self.rx.try_iter() {
                        let token = next_token;
                        next_token = next_token.wrapping_add(1) % (usize::MAX - 1);
                        let fd = reader.raw_fd();
                        if let Err(e) =
                            self.poll.registry().register(&mut SourceFd(&fd), Token(token), Interest::READABLE)
                        {
                            tracing::warn!(error = %e, "cannot register a connection");
                            reader.end(Flow::End);
                            continue;
                        }
                        conns.insert(token, reader);
                        // Bytes that came with the handshake are already buffered: no event for them.
                        ready.push(token);
                    }
                } else {
                    ready.push(ev.token().0);
                }
            }
            for token in ready {
                let Some(reader) = conns.get_mut(&token) else { continue };
                match reader.on_readable(BUDGET) {
                    Ok(true) => {}
                    Ok(false) => again.push(token),
                    Err(flow) => self.close(&mut conns, token, flow),
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                let dead: Vec<(usize, Flow)> =
                    conns.iter_mut().filter_map(|(t, r)| r.on_tick(now).err().map(|f| (*t, f))).collect();
                for (token, flow) in dead {
                    self.close(&mut conns, token, flow);
                }
                next_tick = now + self.tick;
            }
        }
    }

    fn close(&self, conns: &mut HashMap<usize, Reader>, token: usize, flow: Flow) {
        if let Some(reader) = conns.remove(&token) {
            let fd = reader.raw_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            reader.end(flow);
        }
    }
}
