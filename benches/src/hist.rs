//! A fixed-memory latency histogram: log-linear buckets (32 sub-buckets per power of two, so
//! about 3 % relative error) from 1 ns to about 70 s. Recording is two shifts and an increment.

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
const MAX_EXP: usize = 37;

/// Latency samples in nanoseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; (MAX_EXP + 1) * SUB], total: 0, max: 0 }
    }
}

fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros() - SUB_BITS + 1;
    let sub = (v >> (exp - 1)) as usize & (SUB - 1);
    ((exp as usize).min(MAX_EXP) * SUB + sub).min((MAX_EXP + 1) * SUB - 1)
}

/// The largest value bucket `i` holds.
fn upper(i: usize) -> u64 {
    let (exp, sub) = (i / SUB, (i % SUB) as u64);
    if exp == 0 {
        return sub;
    }
    ((SUB as u64 + sub + 1) << (exp - 1)) - 1
}

impl Histogram {
    /// Records one sample.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[index(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The value at quantile `q` (0..=1): the upper edge of its bucket, capped at the maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_bucket_error() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v * 100);
        }
        for (q, want) in [(0.5, 5_000_000u64), (0.99, 9_900_000), (0.999, 9_990_000)] {
            let got = h.quantile(q);
            let err = (got as f64 - want as f64).abs() / want as f64;
            assert!(err < 0.04, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.quantile(1.0), 10_000_000);
        assert_eq!(h.len(), 100_000);
    }

    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for v in (0..1u64 << 40).step_by(1 << 27).chain(0..5000) {
            let i = index(v);
            assert!(upper(i) >= v, "{v} above its bucket's edge {}", upper(i));
            if v >= last {
                last = v;
            }
        }
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }
}
