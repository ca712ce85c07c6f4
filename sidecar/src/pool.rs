//! The read side after the handshake: a few worker threads, each a `mio::Poll` over its share
//! of the open connections. No async runtime: each connection is a [`Task`] that reads its
//! non-blocking socket until it would block and handles each message exactly as a blocking loop
//! would. The pool knows nothing of protocols; the transports ([`crate::transport`]) implement
//! [`Task`].
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

/// Messages one socket may have handled per turn.
const BUDGET: usize = 64;

const WAKER: Token = Token(usize::MAX);

/// One connection a worker drives.
pub trait Task: Send {
    /// The socket to wait on.
    fn raw_fd(&self) -> std::os::fd::RawFd;

    /// Handles what the socket has, up to `budget` messages.
    fn on_readable(&mut self, budget: usize) -> Step;

    /// Called once per tick for every task (pings, timeouts).
    fn on_tick(&mut self, now: Instant) -> Step;

    /// Ends the task after it returned [`Step::End`] (or when the worker cannot take it): it
    /// says goodbye as it sees fit and releases its socket.
    fn end(self: Box<Self>);
}

/// What a task wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The socket is drained (its next read would block): wait for readiness.
    Drained,
    /// The budget ran out with input left: run again on the next turn.
    More,
    /// Done: deregister and [`Task::end`].
    End,
}

/// A worker's inbox and doorbell.
type Inbox = (Sender<Box<dyn Task>>, Arc<Waker>);

/// Hands connections to the workers, round robin.
pub struct Pool {
    workers: Vec<Inbox>,
    next: AtomicUsize,
}

/// A worker not started yet.
pub struct Worker {
    poll: Poll,
    rx: Receiver<Box<dyn Task>>,
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
    pub fn new(n: usize, tick: Duration) -> io::Result<(Pool, Vec<Worker>)> {
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
    pub fn submit(&self, task: Box<dyn Task>) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        let (tx, waker) = &self.workers[i];
        match tx.send(task) {
            Ok(()) => {
                if let Err(e) = waker.wake() {
                    tracing::warn!(error = %e, "cannot wake a worker");
                }
            }
            Err(crossbeam_channel::SendError(t)) => t.end(),
        }
    }
}

impl Worker {
    /// Runs the worker for the life of the process.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut conns: HashMap<usize, Box<dyn Task>> = HashMap::new();
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
                    for task in self.rx.try_iter() {
                        let token = next_token;
                        next_token = next_token.wrapping_add(1) % (usize::MAX - 1);
                        let fd = task.raw_fd();
                        if let Err(e) =
                            self.poll.registry().register(&mut SourceFd(&fd), Token(token), Interest::READABLE)
                        {
                            tracing::warn!(error = %e, "cannot register a connection");
                            task.end();
                            continue;
                        }
                        conns.insert(token, task);
                        // Bytes that came with the handshake are already buffered: no event for them.
                        ready.push(token);
                    }
                } else {
                    ready.push(ev.token().0);
                }
            }
            for token in ready {
                let Some(task) = conns.get_mut(&token) else { continue };
                match task.on_readable(BUDGET) {
                    Step::Drained => {}
                    Step::More => again.push(token),
                    Step::End => self.close(&mut conns, token),
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                let dead: Vec<usize> =
                    conns.iter_mut().filter_map(|(t, r)| (r.on_tick(now) == Step::End).then_some(*t)).collect();
                for token in dead {
                    self.close(&mut conns, token);
                }
                next_tick = now + self.tick;
            }
        }
    }

    fn close(&self, conns: &mut HashMap<usize, Box<dyn Task>>, token: usize) {
        if let Some(task) = conns.remove(&token) {
            let fd = task.raw_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            task.end();
        }
    }
}
