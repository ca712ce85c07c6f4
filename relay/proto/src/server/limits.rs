//! Rate limits: token buckets for `max-bps` and `bps-capacity`, a per-source budget for
//! unauthenticated answers that keeps no per-source state, and a budget for log lines that
//! attackers can trigger (peer refusals).
//!
//! The 401 budget is a fixed table of counters indexed by a keyed hash of the source address:
//! its memory does not grow with the number of sources (spoofed floods cannot make the server
//! allocate), and a collision only makes two sources share a budget.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A token bucket of `rate` tokens per second, holding at most one second's worth.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: u64,
    tokens: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. `rate` 0 means unlimited.
    pub(crate) fn new(rate: u64, now: Instant) -> Self {
        TokenBucket { rate, tokens: rate, last: now }
    }

    /// Takes `n` tokens if there are that many; refills first.
    pub(crate) fn take(&mut self, n: u64, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        let add = (elapsed * u128::from(self.rate) / 1_000_000_000) as u64;
        if add > 0 {
            self.tokens = self.tokens.saturating_add(add).min(self.rate);
            // Advance by exactly the time those tokens stand for, so fractions are not lost.
            let used = Duration::from_nanos((u128::from(add) * 1_000_000_000 / u128::from(self.rate)) as u64);
            self.last = if self.tokens == self.rate { now } else { self.last + used };
        }
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

/// At most `per_second` log lines per second; the first line after a quiet spell reports how
/// many were suppressed, so a flood is visible in the log without writing it out.
#[derive(Debug, Clone)]
pub struct LogLimiter {
    per_second: u32,
    window: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogLimiter {
    /// A limiter of `per_second` lines per second (at least one).
    pub fn new(per_second: u32) -> Self {
        LogLimiter { per_second: per_second.max(1), window: None, used: 0, suppressed: 0 }
    }

    /// `Some(n)` if a line may be written now, `n` being how many were suppressed since the last
    /// written one; `None` if this one is suppressed.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.window.is_none_or(|w| now.saturating_duration_since(w) >= Duration::from_secs(1)) {
            self.window = Some(now);
            self.used = 0;
        }
        if self.used >= self.per_second {
            self.suppressed += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

const SLOTS: usize = 4096;

/// At most `per_second` answers per source address per second, in a fixed table.
#[derive(Debug)]
pub(crate) struct SourceBudget {
    per_second: u32,
    key: u64,
    slots: Box<[(u32, u32)]>,
}

impl SourceBudget {
    pub(crate) fn new(per_second: u32, key: u64) -> Self {
        SourceBudget { per_second, key, slots: vec![(u32::MAX, 0); SLOTS].into_boxed_slice() }
    }

    /// Whether one more answer to `ip` fits in this second (`now_s`, whole seconds).
    pub(crate) fn allow(&mut self, ip: IpAddr, now_s: u32) -> bool {
        if self.per_second == 0 {
            return true;
        }
        let slot = &mut self.slots[self.index(ip)];
        if slot.0 != now_s {
            *slot = (now_s, 0);
        }
        if slot.1 >= self.per_second {
            return false;
        }
        slot.1 += 1;
        true
    }

    fn index(&self, ip: IpAddr) -> usize {
        let v: u128 = match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        };
        // A keyed multiply-xorshift mix: enough to spread sources; the key is per process.
        let mut h = self.key ^ (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
        h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        (h ^ (h >> 33)) as usize % SLOTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_its_rate_and_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, t0);
        assert!(b.take(600, t0));
        assert!(!b.take(600, t0));
        assert!(b.take(400, t0));
        assert!(!b.take(1, t0));
        assert!(b.take(500, t0 + Duration::from_millis(500)));
        assert!(!b.take(100, t0 + Duration::from_millis(500)));
        // Never more than one second's worth.
        assert!(b.take(1000, t0 + Duration::from_secs(10)));
        assert!(!b.take(1, t0 + Duration::from_secs(10)));
        let mut unlimited = TokenBucket::new(0, t0);
        assert!(unlimited.take(u64::MAX, t0));
    }

    #[test]
    fn many_small_refills_add_up() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, t0);
        assert!(b.take(1000, t0));
        let mut got = 0;
        for ms in 1..=1000u64 {
            if b.take(1, t0 + Duration::from_millis(ms)) {
                got += 1;
            }
        }
        assert!(got >= 999, "lost fractional tokens: {got}");
    }

    #[test]
    fn log_limiter_allows_its_rate_and_reports_what_it_suppressed() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(2);
        assert_eq!(l.allow(t0), Some(0));
        assert_eq!(l.allow(t0 + Duration::from_millis(10)), Some(0));
        assert_eq!(l.allow(t0 + Duration::from_millis(20)), None);
        assert_eq!(l.allow(t0 + Duration::from_millis(999)), None);
        assert_eq!(l.allow(t0 + Duration::from_secs(1)), Some(2));
        assert_eq!(l.allow(t0 + Duration::from_secs(5)), Some(0));
    }

    #[test]
    fn source_budget_is_per_second_per_source() {
        let mut s = SourceBudget::new(3, 12345);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| s.allow(a, 7)));
        assert!(!s.allow(a, 7));
        assert!(s.allow(b, 7) || s.index(a) == s.index(b));
        assert!(s.allow(a, 8));
    }
}
