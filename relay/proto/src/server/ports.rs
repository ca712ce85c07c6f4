//! This worker's slice of the relay port range, as a bitmap.
//!
//! Each worker owns a disjoint slice of `min-port..=max-port`, so picking a port needs no
//! coordination. A pick starts at a CSPRNG-chosen offset and takes the next free port (or even
//! port, or even port whose successor is free, for EVEN-PORT). The bitmap is exact: after any
//! sequence of takes and frees the count of free ports is what it was (the coturn 4adbd82e
//! EVEN-PORT leak is the bug this guards against; a test checks conservation).

use std::ops::RangeInclusive;

/// What kind of port an Allocate needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortWish {
    Any,
    /// An even port (EVEN-PORT with R=0).
    Even,
    /// An even port whose successor is free too (EVEN-PORT with R=1).
    EvenPair,
}

#[derive(Debug, Clone)]
pub(crate) struct PortPool {
    first: u16,
    len: usize,
    used: Vec<u64>,
    free: usize,
}

impl PortPool {
    pub(crate) fn new(range: RangeInclusive<u16>) -> Self {
        let (first, last) = (*range.start(), *range.end());
        let len = if last >= first { usize::from(last - first) + 1 } else { 0 };
        PortPool { first, len, used: vec![0; len.div_ceil(64)], free: len }
    }

    pub(crate) fn contains(&self, port: u16) -> bool {
        port >= self.first && usize::from(port - self.first) < self.len
    }

    #[cfg(test)]
    pub(crate) fn capacity_for_tests(&self) -> usize {
        self.len
    }

    pub(crate) fn free_count(&self) -> usize {
        self.free
    }

    fn is_used(&self, i: usize) -> bool {
        self.used[i / 64] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: usize, used: bool) {
        let was = self.is_used(i);
        if used {
            self.used[i / 64] |= 1 << (i % 64);
        } else {
            self.used[i / 64] &= !(1 << (i % 64));
        }
        match (was, used) {
            (false, true) => self.free -= 1,
            (true, false) => self.free += 1,
            _ => {}
        }
    }

    /// Picks a free port matching `wish`, scanning from `start` (a random number), skipping
    /// ports for which `skip` says so (ports that failed to bind this time), and marks it used
    /// (and its successor, for `EvenPair`).
    pub(crate) fn take(&mut self, wish: PortWish, start: u64, skip: &[u16]) -> Option<u16> {
        if self.len == 0 {
            return None;
        }
        let offset = (start % self.len as u64) as usize;
        for k in 0..self.len {
            let i = (offset + k) % self.len;
            if self.is_used(i) {
                continue;
            }
            let port = self.first + i as u16;
            if skip.contains(&port) {
                continue;
            }
            let ok = match wish {
                PortWish::Any => true,
                PortWish::Even => port.is_multiple_of(2),
                PortWish::EvenPair => {
                    port.is_multiple_of(2) && i + 1 < self.len && !self.is_used(i + 1) && !skip.contains(&(port + 1))
                }
            };
            if !ok {
                continue;
            }
            self.set(i, true);
            if wish == PortWish::EvenPair {
                self.set(i + 1, true);
            }
            return Some(port);
        }
        None
    }

    /// Marks `port` free again. Ports outside this slice (a reservation another worker made)
    /// are ignored.
    pub(crate) fn release(&mut self, port: u16) {
        if self.contains(port) {
            self.set(usize::from(port - self.first), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn takes_every_port_once_then_none() {
        let mut p = PortPool::new(50000..=50009);
        let mut got: Vec<u16> = (0..10).map(|i| p.take(PortWish::Any, i * 7, &[]).unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (50000..=50009).collect::<Vec<_>>());
        assert_eq!(p.take(PortWish::Any, 3, &[]), None);
        p.release(50004);
        assert_eq!(p.take(PortWish::Any, 0, &[]), Some(50004));
    }

    #[test]
    fn even_pair_takes_two() {
        let mut p = PortPool::new(50001..=50004);
        let port = p.take(PortWish::EvenPair, 0, &[]).unwrap();
        assert_eq!(port, 50002);
        assert_eq!(p.free_count(), 2);
        assert_eq!(p.take(PortWish::EvenPair, 0, &[]), None);
        assert_eq!(p.take(PortWish::Even, 0, &[]), Some(50004));
    }

    #[test]
    fn skipped_ports_are_not_taken() {
        let mut p = PortPool::new(50000..=50001);
        assert_eq!(p.take(PortWish::Any, 0, &[50000]), Some(50001));
    }

    proptest! {
        #[test]
        fn ports_are_conserved(ops in prop::collection::vec((0u8..4, any::<u64>()), 0..200)) {
            let mut p = PortPool::new(60000..=60031);
            let mut held: Vec<u16> = Vec::new();
            for (op, r) in ops {
                match op {
                    0 => if let Some(x) = p.take(PortWish::Any, r, &[]) { held.push(x) },
                    1 => if let Some(x) = p.take(PortWish::Even, r, &[]) { prop_assert_eq!(x % 2, 0); held.push(x) },
                    2 => if let Some(x) = p.take(PortWish::EvenPair, r, &[]) { held.push(x); held.push(x + 1) },
                    _ => if !held.is_empty() { let i = (r as usize) % held.len(); p.release(held.swap_remove(i)); },
                }
                let mut sorted = held.clone();
                sorted.sort_unstable();
                sorted.dedup();
                prop_assert_eq!(sorted.len(), held.len(), "a port was handed out twice");
                prop_assert_eq!(p.free_count() + held.len(), 32);
            }
            for x in held { p.release(x); }
            prop_assert_eq!(p.free_count(), 32);
        }
    }
}
