//! Control-plane sessions: one UDP socket per simulated client, each working through a list of
//! TURN requests (Allocate, CreatePermission, ChannelBind, Refresh) with the long-term
//! credential handshake (401 → retry with USERNAME/REALM/NONCE/MESSAGE-INTEGRITY, 438 → new
//! nonce), retransmissions, and a bound on requests in flight. Every loop here is bounded by a
//! deadline.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Registry, Token};
use relay_proto::stun::Key;
use relay_proto::stun::attr::PasswordAlgorithm;
use tern_benches::client::{self, Auth, Request, Response};

/// First retransmission timeout (RFC 8489 uses 500 ms; loopback answers in microseconds).
const RTO: Duration = Duration::from_millis(250);
/// Sends of one request before the session fails.
const MAX_TRIES: u32 = 6;
/// Challenges accepted for one request (a 401 after credentials means they are wrong).
const MAX_CHALLENGES: u32 = 3;

/// A simulated client.
pub(crate) struct Session {
    pub(crate) sock: UdpSocket,
    /// The relayed address its Allocate got.
    pub(crate) relay: Option<SocketAddr>,
    /// Requests still to send, in order.
    pub(crate) steps: VecDeque<Request>,
    pub(crate) auth: Option<Auth>,
    pending: Option<Pending>,
    /// Why it gave up.
    pub(crate) failed: Option<String>,
}

struct Pending {
    tid: [u8; 12],
    sent: Instant,
    tries: u32,
    challenges: u32,
}

impl Session {
    /// A client socket on `local_ip`, connected to `server`, registered as `token`.
    pub(crate) fn open(
        registry: &Registry,
        token: Token,
        local_ip: std::net::IpAddr,
        server: SocketAddr,
    ) -> io::Result<Self> {
        let mut sock = UdpSocket::from_std(crate::big_socket(SocketAddr::new(local_ip, 0))?);
        sock.connect(server)?;
        registry.register(&mut sock, token, Interest::READABLE)?;
        Ok(Session { sock, relay: None, steps: VecDeque::new(), auth: None, pending: None, failed: None })
    }
}

/// What the engine learned about the server, shared by all sessions.
pub(crate) struct Engine {
    pub(crate) poll: Poll,
    events: Events,
    username: String,
    password: String,
    keys: Vec<(String, Key)>,
    next_tid: u64,
    buf: Vec<u8>,
    /// Requests answered with success.
    pub(crate) successes: u64,
    /// Retransmissions.
    pub(crate) retransmits: u64,
}

impl Engine {
    pub(crate) fn new(username: String, password: String) -> anyhow::Result<Engine> {
        Ok(Engine {
            poll: Poll::new().context("creating a poll")?,
            events: Events::with_capacity(4096),
            username,
            password,
            keys: Vec::new(),
            next_tid: u64::from(std::process::id()) << 40,
            buf: vec![0u8; 65536],
            successes: 0,
            retransmits: 0,
        })
    }

    fn auth_for(&mut self, realm: &str, nonce: &str) -> anyhow::Result<Auth> {
        let key = match self.keys.iter().find(|(r, _)| r == realm) {
            Some((_, k)) => *k,
            None => {
                let k = Key::long_term(PasswordAlgorithm::Md5, &self.username, realm, &self.password)
                    .map_err(|e| anyhow::anyhow!("password refused by SASLprep: {e}"))?;
                self.keys.push((realm.to_owned(), k));
                k
            }
        };
        Ok(Auth { username: self.username.clone(), realm: realm.to_owned(), nonce: nonce.to_owned(), key })
    }

    fn send_next(&mut self, s: &mut Session, now: Instant, tries: u32, challenges: u32) {
        self.next_tid += 1;
        let mut tid = [0u8; 12];
        tid[..8].copy_from_slice(&self.next_tid.to_be_bytes());
        tid[8..].copy_from_slice(&std::process::id().to_be_bytes());
        self.send_with(s, now, tries, challenges, tid);
    }

    /// Sends the current step with `tid` (a retransmission keeps its transaction id).
    fn send_with(&mut self, s: &mut Session, now: Instant, tries: u32, challenges: u32, tid: [u8; 12]) {
        let Some(req) = s.steps.front() else { return };
        let Some(n) = client::encode_request(&mut self.buf, req, tid, s.auth.as_ref()) else {
            s.failed = Some("request does not encode".into());
            return;
        };
        match s.sock.send(&self.buf[..n]) {
            Ok(_) | Err(_) => {} // a lost send is retransmitted like a lost datagram
        }
        s.pending = Some(Pending { tid, sent: now, tries, challenges });
    }

    fn retransmit(&mut self, s: &mut Session, now: Instant) {
        let Some(p) = &s.pending else { return };
        let rto = RTO * (1 << p.tries.min(4));
        if now.duration_since(p.sent) < rto {
            return;
        }
        if p.tries + 1 >= MAX_TRIES {
            s.pending = None;
            s.failed = Some(format!("no answer to {:?} after {MAX_TRIES} tries", s.steps.front()));
            return;
        }
        let (tries, ch, tid) = (p.tries + 1, p.challenges, p.tid);
        self.retransmits += 1;
        self.send_with(s, now, tries, ch, tid);
    }

    fn on_datagram(&mut self, s: &mut Session, n: usize, now: Instant) -> anyhow::Result<()> {
        let Some((tid, resp)) = client::parse_response(&self.buf[..n]) else { return Ok(()) };
        let Some(p) = &s.pending else { return Ok(()) };
        if p.tid != tid {
            return Ok(()); // a late answer to a retransmitted request
        }
        let challenges = p.challenges;
        s.pending = None;
        match resp {
            Response::Success { relayed } => {
                if matches!(s.steps.front(), Some(Request::Allocate)) {
                    s.relay = relayed;
                    if relayed.is_none() {
                        s.failed = Some("Allocate success without XOR-RELAYED-ADDRESS".into());
                        return Ok(());
                    }
                }
                self.successes += 1;
                s.steps.pop_front();
                self.send_next(s, now, 0, 0);
            }
            Response::Challenge { realm, nonce } => {
                if challenges >= MAX_CHALLENGES {
                    s.failed = Some("credentials refused (401 after authenticating)".into());
                    return Ok(());
                }
                s.auth = Some(self.auth_for(&realm, &nonce)?);
                self.send_next(s, now, 0, challenges + 1);
            }
            Response::Error(437) if matches!(s.steps.front(), Some(Request::Refresh(0))) => {
                // Already gone: what a delete wanted.
                s.steps.pop_front();
                self.send_next(s, now, 0, 0);
            }
            Response::Error(code) => {
                s.failed = Some(format!("{:?} answered {code}", s.steps.front()));
            }
        }
        Ok(())
    }

    /// Drives `sessions` until each has finished its steps, failed, or `deadline` passes. At most
    /// `window` requests are in flight. `refill` is called for a session that finished (or
    /// failed: `failed` is set) and may give it new work (returning `true`); tokens are session
    /// indices.
    pub(crate) fn run(
        &mut self,
        sessions: &mut [Session],
        window: usize,
        deadline: Instant,
        refill: &mut dyn FnMut(usize, &mut Session, &Registry, Instant) -> bool,
    ) -> anyhow::Result<()> {
        let mut next_start = 0usize;
        let mut in_flight = 0usize;
        let mut last_scan = Instant::now();
        let mut started = vec![false; sessions.len()];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            while in_flight < window && next_start < sessions.len() {
                let s = &mut sessions[next_start];
                started[next_start] = true;
                next_start += 1;
                if !s.steps.is_empty() && s.failed.is_none() {
                    self.send_next(s, now, 0, 0);
                    in_flight += 1;
                }
            }
            if in_flight == 0 && next_start >= sessions.len() {
                return Ok(());
            }
            let timeout = (deadline - now).min(Duration::from_millis(20));
            self.poll.poll(&mut self.events, Some(timeout)).context("poll")?;
            let now = Instant::now();
            let ready: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
            for i in ready {
                let Some(s) = sessions.get_mut(i) else { continue };
                loop {
                    let n = match s.sock.recv(&mut self.buf) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => continue,
                    };
                    let was_pending = s.pending.is_some();
                    self.on_datagram(s, n, now)?;
                    if was_pending && s.pending.is_none() {
                        in_flight -= 1;
                        if (s.steps.is_empty() || s.failed.is_some()) && refill(i, s, self.poll.registry(), now) {
                            self.send_next(s, now, 0, 0);
                        }
                        if s.pending.is_some() {
                            in_flight += 1;
                        }
                        // A refilled session has a new socket: read it on its next event.
                        break;
                    }
                }
            }
            if now.duration_since(last_scan) >= Duration::from_millis(50) {
                last_scan = now;
                for (i, s) in sessions.iter_mut().enumerate() {
                    if started[i] && s.pending.is_some() {
                        self.retransmit(s, now);
                        if s.pending.is_none() {
                            in_flight -= 1;
                        }
                    }
                }
            }
        }
    }
}

/// Deletes (Refresh LIFETIME=0) every allocation the sessions hold, so the server's 5-tuples
/// are free for the next run; bounded by a few seconds.
pub(crate) fn delete_all(engine: &mut Engine, sessions: &mut [Session]) -> anyhow::Result<()> {
    for s in sessions.iter_mut() {
        s.steps.clear();
        s.pending = None;
        s.failed = None;
        if s.relay.is_some() {
            s.steps.push_back(Request::Refresh(0));
        }
    }
    engine.run(sessions, 256, Instant::now() + Duration::from_secs(5), &mut |_, _, _, _| false)
}

/// Fails with the first session's error when more than `tolerated` sessions failed.
pub(crate) fn check_failures(sessions: &[Session], tolerated: usize) -> anyhow::Result<usize> {
    let failed: Vec<&str> = sessions.iter().filter_map(|s| s.failed.as_deref()).collect();
    if failed.len() > tolerated {
        bail!("{} of {} clients failed; first: {}", failed.len(), sessions.len(), failed[0]);
    }
    Ok(failed.len())
}
