//! `relay-coalesce-us`: trade a little latency for CPU at moderate rates, only where it pays.
//!
//! At a few tens of thousands of datagrams a second a worker sleeps in `epoll_wait` and is
//! woken for nearly every datagram; the wake-ups are some 40 % of its CPU in an echo profile.
//! Sleeping a few tens of microseconds after a small turn lets the next turn find several
//! datagrams. Whether that pays depends on how the traffic arrives: datagrams that trickle in
//! one by one (independent clients, an echo peer) coalesce well, while bursts that already
//! arrive together gain nothing and each sleep costs a timer wake-up of its own (measured on
//! this project's VM: +70 % CPU per message for bursty client-to-client traffic, −27 % for
//! trickling echo traffic).
//!
//! So the worker measures instead of guessing. Time is cut into epochs of [`EPOCH`]; each
//! epoch runs with coalescing on or off, and at its end the worker's own CPU time per datagram
//! relayed in it updates that mode's estimate. The cheaper mode runs; every
//! [`EXPLORE_EVERY`]th epoch tries the other one, so a change in the traffic is noticed. An
//! epoch that relayed fewer than [`MIN_PER_EPOCH`] datagrams says nothing about the cost and
//! runs with coalescing off: at such rates a sleep finds nothing and the CPU does not matter.
//!
//! Pure: time and CPU time are passed in (the worker reads `CLOCK_THREAD_CPUTIME_ID`).

use std::time::{Duration, Instant};

/// A turn that relayed fewer datagrams than this may be followed by the sleep; busy turns
/// never sleep, so throughput at saturation is unchanged.
const SMALL_TURN: u64 = 8;
/// How long one mode runs before its cost is measured.
const EPOCH: Duration = Duration::from_millis(100);
/// Every this many epochs the mode that looks worse runs once more, to follow changes.
const EXPLORE_EVERY: u64 = 32;
/// Datagrams an epoch must relay (10,000 a second) for its cost to count.
const MIN_PER_EPOCH: u64 = 1_000;
/// How much one epoch's measurement moves a mode's estimate.
const WEIGHT: f64 = 0.25;

#[derive(Debug)]
pub(super) struct Coalescer {
    sleep: Duration,
    /// When the current epoch began, and the thread's CPU time then; `None` until the first
    /// turn on the worker's own thread (the worker is built on another one).
    epoch_start: Option<Instant>,
    epoch_cpu: Duration,
    epoch_relayed: u64,
    epochs: u64,
    on: bool,
    /// CPU nanoseconds per datagram: `[off, on]`; `None` until measured.
    cost: [Option<f64>; 2],
}

impl Coalescer {
    /// `sleep` is `relay-coalesce-us`.
    pub(super) fn new(sleep: Duration) -> Coalescer {
        Coalescer {
            sleep,
            epoch_start: None,
            epoch_cpu: Duration::ZERO,
            epoch_relayed: 0,
            epochs: 0,
            on: false,
            cost: [None; 2],
        }
    }

    /// Whether the current epoch's mode has coalescing on.
    #[cfg(test)]
    pub(super) fn is_on(&self) -> bool {
        self.on
    }

    /// After a turn that started at `now` and relayed `relayed` datagrams: how long to sleep
    /// before polling again, if at all. `pending` says the next turn has work already.
    /// `cpu` is called (once an epoch) for the worker thread's CPU time.
    pub(super) fn after_turn(
        &mut self,
        now: Instant,
        relayed: u64,
        pending: bool,
        cpu: impl FnOnce() -> Duration,
    ) -> Option<Duration> {
        let Some(start) = self.epoch_start else {
            self.epoch_start = Some(now);
            self.epoch_cpu = cpu();
            return None;
        };
        self.epoch_relayed += relayed;
        if now.saturating_duration_since(start) >= EPOCH {
            self.end_epoch(now, cpu());
        }
        (self.on && !pending && relayed > 0 && relayed < SMALL_TURN).then_some(self.sleep)
    }

    fn end_epoch(&mut self, now: Instant, cpu: Duration) {
        let used = cpu.saturating_sub(self.epoch_cpu);
        let mode = usize::from(self.on);
        let busy = self.epoch_relayed >= MIN_PER_EPOCH;
        if busy {
            let c = used.as_nanos() as f64 / self.epoch_relayed as f64;
            self.cost[mode] = Some(match self.cost[mode] {
                Some(old) => old + WEIGHT * (c - old),
                None => c,
            });
        }
        self.epochs += 1;
        self.on = busy
            && match self.cost {
                // Measure each mode once before choosing.
                [None, _] => false,
                [Some(_), None] => true,
                [Some(off), Some(on)] => (on < off) != self.epochs.is_multiple_of(EXPLORE_EVERY),
            };
        self.epoch_start = Some(now);
        self.epoch_cpu = cpu;
        self.epoch_relayed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLEEP: Duration = Duration::from_micros(50);

    /// Runs `epochs` epochs of `per_epoch` datagrams in turns of `turn`, charging `cost_off`
    /// or `cost_on` ns per datagram depending on the mode in force; returns the modes seen.
    fn drive(
        c: &mut Coalescer,
        t: &mut Instant,
        cpu: &mut Duration,
        epochs: usize,
        per_epoch: u64,
        turn: u64,
        costs: [u64; 2],
    ) -> Vec<bool> {
        let mut modes = Vec::new();
        for _ in 0..epochs {
            modes.push(c.is_on());
            let turns = per_epoch / turn;
            for i in 0..turns {
                *t += EPOCH / turns as u32;
                *cpu += Duration::from_nanos(costs[usize::from(c.is_on())] * turn);
                let now = *t;
                let cpu_now = *cpu;
                let _ = c.after_turn(now, turn, false, || cpu_now);
                let _ = i;
            }
        }
        modes
    }

    #[test]
    fn idle_or_slow_workers_never_sleep() {
        let mut t = Instant::now();
        let mut cpu = Duration::ZERO;
        let mut c = Coalescer::new(SLEEP);
        let _ = c.after_turn(t, 0, false, || cpu);
        // 500 datagrams an epoch (5,000 a second): below the floor.
        let modes = drive(&mut c, &mut t, &mut cpu, 50, 500, 1, [1_000, 100]);
        assert!(modes.iter().all(|on| !on), "{modes:?}");
        assert_eq!(c.after_turn(t, 1, false, || cpu), None);
    }

    #[test]
    fn keeps_coalescing_where_it_is_cheaper() {
        let mut t = Instant::now();
        let mut cpu = Duration::ZERO;
        let mut c = Coalescer::new(SLEEP);
        let _ = c.after_turn(t, 0, false, || cpu);
        let modes = drive(&mut c, &mut t, &mut cpu, 64, 4_000, 2, [15_000, 10_000]);
        let on = modes.iter().skip(2).filter(|m| **m).count();
        // On but for one exploring epoch in 32.
        assert!(on >= 62 - 62 / 32 - 1, "on in {on} of 62 epochs: {modes:?}");
        assert!(on < 62, "it never explored the other mode: {modes:?}");
        assert_eq!(c.after_turn(t, 1, true, || cpu), None, "pending work: no sleep");
        assert_eq!(c.after_turn(t, SMALL_TURN, false, || cpu), None, "busy turn: no sleep");
    }

    #[test]
    fn stops_coalescing_where_it_costs_more_and_notices_a_change() {
        let mut t = Instant::now();
        let mut cpu = Duration::ZERO;
        let mut c = Coalescer::new(SLEEP);
        let _ = c.after_turn(t, 0, false, || cpu);
        let modes = drive(&mut c, &mut t, &mut cpu, 64, 4_000, 2, [4_000, 7_000]);
        let on = modes.iter().skip(2).filter(|m| **m).count();
        assert!(on <= 62 / 32 + 1, "on in {on} of 62 epochs: {modes:?}");
        // The traffic changes: now coalescing pays. Within a few exploring rounds it is on.
        let modes = drive(&mut c, &mut t, &mut cpu, 96, 4_000, 2, [12_000, 6_000]);
        let tail_on = modes.iter().skip(64).filter(|m| **m).count();
        assert!(tail_on >= 28, "on in {tail_on} of the last 32 epochs: {modes:?}");
    }

    #[test]
    fn sleeps_only_after_small_turns_when_on() {
        let mut t = Instant::now();
        let mut cpu = Duration::ZERO;
        let mut c = Coalescer::new(SLEEP);
        let _ = c.after_turn(t, 0, false, || cpu);
        drive(&mut c, &mut t, &mut cpu, 8, 4_000, 2, [15_000, 10_000]);
        assert!(c.is_on());
        assert_eq!(c.after_turn(t, 1, false, || cpu), Some(SLEEP));
        assert_eq!(c.after_turn(t, 0, false, || cpu), None, "an empty turn (a timer) never sleeps");
    }
}
