//! Abuse limits that are not about one message: connections in total and per client address,
//! join attempts per address (a token bucket), and a global cap on failed joins per minute
//! against code guessing spread over many addresses (SECURITY.md §6).
//!
//! IPv6 clients are counted per /64, since one host usually owns a whole /64.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The key limits are counted under: the address, or its /64 for IPv6.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::V6(o.into())
            }
        },
    }
}

/// Why a connection was refused before any thread started for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnRefused {
    /// `--max-connections` reached.
    Total,
    /// `--max-connections-per-ip` reached for this address.
    PerIp,
}

/// Live connection counts.
#[derive(Debug)]
pub struct ConnLimits {
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_total: usize,
    max_per_ip: usize,
}

/// Holds one connection slot; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnSlot {
    limits: Arc<ConnLimits>,
    key: IpAddr,
}

impl ConnLimits {
    /// Limits of `max_total` connections, `max_per_ip` from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        ConnLimits { total: AtomicUsize::new(0), per_ip: Mutex::new(HashMap::new()), max_total, max_per_ip }
    }

    /// Takes a slot for a connection from `ip`.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnSlot, ConnRefused> {
        let key = client_key(ip);
        let mut per_ip = lock(&self.per_ip);
        if self.total.load(Ordering::Relaxed) >= self.max_total {
            return Err(ConnRefused::Total);
        }
        let n = per_ip.entry(key).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(ConnRefused::PerIp);
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(ConnSlot { limits: Arc::clone(self), key })
    }

    /// Open connections.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut per_ip = lock(&self.limits.per_ip);
        if let Some(n) = per_ip.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.key);
            }
        }
        self.limits.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a join attempt was refused before the room table was consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinThrottled {
    /// This address used up its join attempts.
    PerIp,
    /// Too many failed joins across all clients this minute.
    Global,
}

/// Join-attempt accounting.
#[derive(Debug)]
pub struct JoinLimiter {
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    per_minute: f64,
    failures: Mutex<(Instant, u32)>,
    max_failures_per_minute: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

const MINUTE: Duration = Duration::from_secs(60);

impl JoinLimiter {
    /// `per_minute` attempts per address (burst of the same size), `max_failures_per_minute`
    /// failed attempts in total.
    pub fn new(per_minute: u32, max_failures_per_minute: u32, now: Instant) -> Self {
        JoinLimiter {
            buckets: Mutex::new(HashMap::new()),
            per_minute: f64::from(per_minute.max(1)),
            failures: Mutex::new((now, 0)),
            max_failures_per_minute,
        }
    }

    /// Spends one attempt for `ip`, or says why not.
    pub fn attempt(&self, ip: IpAddr, now: Instant) -> Result<(), JoinThrottled> {
        {
            let mut f = lock(&self.failures);
            if now.duration_since(f.0) >= MINUTE {
                *f = (now, 0);
            }
            if f.1 >= self.max_failures_per_minute {
                return Err(JoinThrottled::Global);
            }
        }
        let mut buckets = lock(&self.buckets);
        let b = buckets.entry(client_key(ip)).or_insert(Bucket { tokens: self.per_minute, at: now });
        let refill = now.duration_since(b.at).as_secs_f64() * self.per_minute / 60.0;
        b.tokens = (b.tokens + refill).min(self.per_minute);
        b.at = now;
        if b.tokens < 1.0 {
            return Err(JoinThrottled::PerIp);
        }
        b.tokens -= 1.0;
        Ok(())
    }

    /// Records a failed join (wrong, full or expired code).
    pub fn failed(&self, now: Instant) {
        let mut f = lock(&self.failures);
        if now.duration_since(f.0) >= MINUTE {
            *f = (now, 0);
        }
        f.1 += 1;
        if f.1 == self.max_failures_per_minute {
            tracing::warn!(
                limit = self.max_failures_per_minute,
                "failed joins reached the global limit: someone may be guessing room codes; refusing joins for the \
                 rest of the minute"
            );
        }
    }

    /// Forgets buckets that have refilled completely.
    pub fn sweep(&self, now: Instant) {
        lock(&self.buckets).retain(|_, b| now.duration_since(b.at) < MINUTE);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(client_key("2001:db8::1".parse().unwrap()), client_key("2001:db8::ffff:1".parse().unwrap()));
        assert_ne!(client_key("2001:db8::1".parse().unwrap()), client_key("2001:db8:0:1::1".parse().unwrap()));
        assert_eq!(client_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn connection_slots_are_counted_and_released() {
        let l = Arc::new(ConnLimits::new(3, 2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = l.acquire(a).unwrap();
        let _s2 = l.acquire(a).unwrap();
        assert_eq!(l.acquire(a).unwrap_err(), ConnRefused::PerIp);
        let _s3 = l.acquire(b).unwrap();
        assert_eq!(l.acquire(b).unwrap_err(), ConnRefused::Total);
        drop(s1);
        assert_eq!(l.total(), 2);
        assert!(l.acquire(a).is_ok());
    }

    #[test]
    fn join_bucket_refills_over_time() {
        let t0 = Instant::now();
        let j = JoinLimiter::new(6, 1000, t0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..6 {
            j.attempt(ip, t0).unwrap();
        }
        assert_eq!(j.attempt(ip, t0), Err(JoinThrottled::PerIp));
        assert!(j.attempt("192.0.2.9".parse().unwrap(), t0).is_ok(), "other addresses are unaffected");
        assert!(j.attempt(ip, t0 + Duration::from_secs(10)).is_ok(), "one token back after 10 s at 6/min");
        assert_eq!(j.attempt(ip, t0 + Duration::from_secs(10)), Err(JoinThrottled::PerIp));
    }

    #[test]
    fn global_failures_close_joins_for_the_minute() {
        let t0 = Instant::now();
        let j = JoinLimiter::new(100, 3, t0);
        for _ in 0..3 {
            j.failed(t0);
        }
        assert_eq!(j.attempt("192.0.2.1".parse().unwrap(), t0), Err(JoinThrottled::Global));
        assert!(j.attempt("192.0.2.1".parse().unwrap(), t0 + MINUTE).is_ok());
    }
}
