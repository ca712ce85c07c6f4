//! What the sans-IO core asks of the shell ([`RelayHost`]): relay sockets in this worker's
//! poll, EVEN-PORT reservations that any worker can claim, and the quotas that span workers.
//!
//! Only control work crosses threads here (a reservation or a quota check per Allocate), and
//! only through [`Shared`]'s small mutexes; the data path never touches them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use relay_proto::server::{QuotaError, RelayHost, RelayOpenError, RelayOptions};

use crate::metrics::Metrics;
use crate::sockets;

/// A reserved relay port: bound, not yet registered with any worker's poll.
#[derive(Debug)]
struct Reservation {
    addr: SocketAddr,
    expires: Instant,
    sock: UdpSocket,
}

/// State every worker sees.
#[derive(Debug)]
pub(crate) struct Shared {
    /// EVEN-PORT reservations: the held socket of port+1, bound when the reservation was made.
    reservations: Mutex<HashMap<u64, Reservation>>,
    users: Mutex<HashMap<String, u32>>,
    total: AtomicU32,
    quotas: Mutex<(u32, u32)>,
    /// Set on SIGTERM/SIGINT: workers leave their loops.
    pub(crate) shutdown: AtomicBool,
    /// Where each worker publishes its counters (its own block; no lock).
    pub(crate) metrics: Arc<Metrics>,
}

impl Shared {
    pub(crate) fn new(user_quota: u32, total_quota: u32, metrics: Arc<Metrics>) -> Self {
        Shared {
            reservations: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            total: AtomicU32::new(0),
            quotas: Mutex::new((user_quota, total_quota)),
            shutdown: AtomicBool::new(false),
            metrics,
        }
    }

    /// Replaces `user-quota` and `total-quota` (SIGHUP). Allocations over a lowered quota stay;
    /// new ones are counted against the new figures.
    pub(crate) fn set_quotas(&self, user_quota: u32, total_quota: u32) {
        *self.quotas.lock().unwrap_or_else(|e| e.into_inner()) = (user_quota, total_quota);
    }
}

/// This worker's relay sockets, indexed by port (a port names one socket per worker).
pub(crate) struct RelaySlots {
    slots: Vec<Option<(UdpSocket, SocketAddr)>>,
    open: usize,
}

impl RelaySlots {
    pub(crate) fn new() -> Self {
        RelaySlots { slots: (0..=u16::MAX as usize).map(|_| None).collect(), open: 0 }
    }

    pub(crate) fn get(&self, port: u16) -> Option<&(UdpSocket, SocketAddr)> {
        self.slots[usize::from(port)].as_ref()
    }

    fn insert(&mut self, registry: &Registry, addr: SocketAddr, mut sock: UdpSocket) -> Result<(), RelayOpenError> {
        let port = addr.port();
        if self.slots[usize::from(port)].is_some() {
            return Err(RelayOpenError::InUse);
        }
        registry
            .register(&mut sock, Token(usize::from(port)), Interest::READABLE)
            .map_err(|_| RelayOpenError::Other)?;
        self.slots[usize::from(port)] = Some((sock, addr));
        self.open += 1;
        Ok(())
    }

    fn remove(&mut self, registry: &Registry, addr: SocketAddr) {
        let slot = &mut self.slots[usize::from(addr.port())];
        if slot.as_ref().is_some_and(|(_, a)| *a == addr)
            && let Some((mut sock, _)) = slot.take()
        {
            let _ = registry.deregister(&mut sock);
            self.open -= 1;
        }
    }
}

/// The [`RelayHost`] a worker lends its core for one call.
pub(crate) struct Host<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) relays: &'a mut RelaySlots,
    pub(crate) shared: &'a Shared,
}

/// A relay socket bound to `addr`; a failure other than "address in use" is logged.
fn relay_socket(addr: SocketAddr, opts: RelayOptions) -> Result<UdpSocket, RelayOpenError> {
    sockets::relay_socket(addr, opts.dont_fragment).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            return RelayOpenError::InUse;
        }
        tracing::warn!(target: "relay", %addr, error = %e, "cannot open relay socket");
        RelayOpenError::Other
    })
}

impl RelayHost for Host<'_> {
    fn open_relay(&mut self, addr: SocketAddr, opts: RelayOptions) -> Result<(), RelayOpenError> {
        let sock = relay_socket(addr, opts)?;
        self.relays.insert(self.registry, addr, sock)
    }

    fn close_relay(&mut self, addr: SocketAddr) {
        self.relays.remove(self.registry, addr);
    }

    fn reserve(
        &mut self,
        token: u64,
        addr: SocketAddr,
        expires: Instant,
        opts: RelayOptions,
    ) -> Result<(), RelayOpenError> {
        let sock = relay_socket(addr, opts)?;
        self.shared
            .reservations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, Reservation { addr, expires, sock });
        Ok(())
    }

    fn claim_reservation(&mut self, token: u64, now: Instant, opts: RelayOptions) -> Option<SocketAddr> {
        let Some(r) = self.shared.reservations.lock().unwrap_or_else(|e| e.into_inner()).remove(&token) else {
            tracing::debug!(target: "relay", token, "unknown reservation token");
            return None;
        };
        if r.expires <= now {
            tracing::debug!(target: "relay", token, "reservation expired");
            return None;
        }
        if opts.dont_fragment
            && let Err(e) = sockets::set_dont_fragment(&socket2::SockRef::from(&r.sock), r.addr.is_ipv6())
        {
            tracing::warn!(target: "relay", addr = %r.addr, error = %e, "cannot set DONT-FRAGMENT on a reserved relay socket");
            return None;
        }
        match self.relays.insert(self.registry, r.addr, r.sock) {
            Ok(()) => Some(r.addr),
            Err(e) => {
                tracing::debug!(target: "relay", token, addr = %r.addr, error = ?e, "reserved port cannot be opened");
                None
            }
        }
    }

    fn release_reservation(&mut self, token: u64) {
        self.shared.reservations.lock().unwrap_or_else(|e| e.into_inner()).remove(&token);
    }

    fn acquire_quota(&mut self, user: &str) -> Result<(), QuotaError> {
        let (user_quota, total_quota) = *self.shared.quotas.lock().unwrap_or_else(|e| e.into_inner());
        let mut users = self.shared.users.lock().unwrap_or_else(|e| e.into_inner());
        if total_quota > 0 && self.shared.total.load(Ordering::Relaxed) >= total_quota {
            return Err(QuotaError::Total);
        }
        let n = users.entry(user.to_owned()).or_insert(0);
        if user_quota > 0 && *n >= user_quota {
            return Err(QuotaError::User);
        }
        *n += 1;
        self.shared.total.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn release_quota(&mut self, user: &str) {
        let mut users = self.shared.users.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = users.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                users.remove(user);
            }
        }
        let _ = self.shared.total.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(1));
    }
}
