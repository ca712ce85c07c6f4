//! The core's deadlines: a min-heap with lazy deletion.
//!
//! Every lifetime (allocation, permission, channel, channel cool-down, port reservation) pushes
//! an entry when it is set or refreshed. Entries are never removed early: when one comes due,
//! the server checks the object's current deadline and ignores the entry if the object was
//! refreshed or is gone. So refreshing is O(log n) and nothing scans all allocations.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::time::Instant;

use super::allocation::AllocId;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    Allocation(AllocId),
    Permission(AllocId, IpAddr),
    Channel(AllocId, u16),
    Reservation(u64),
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, TimerKind)>>,
}

impl Timers {
    pub(crate) fn push(&mut self, at: Instant, kind: TimerKind) {
        self.heap.push(Reverse((at, kind)));
    }

    /// The earliest deadline, possibly of a stale entry (waking early is harmless).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops the next entry due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerKind> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, k))| k),
            _ => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.push(t0 + Duration::from_secs(5), TimerKind::Reservation(5));
        t.push(t0 + Duration::from_secs(1), TimerKind::Reservation(1));
        t.push(t0 + Duration::from_secs(3), TimerKind::Reservation(3));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_due(t0), None);
        let now = t0 + Duration::from_secs(4);
        assert_eq!(t.pop_due(now), Some(TimerKind::Reservation(1)));
        assert_eq!(t.pop_due(now), Some(TimerKind::Reservation(3)));
        assert_eq!(t.pop_due(now), None);
        assert_eq!(t.len(), 1);
    }
}
