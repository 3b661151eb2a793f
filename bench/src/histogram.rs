//! A lock-free latency histogram with about 1.5% resolution, shared by every
//! receiving task so a delivery costs one atomic add and no allocation.

use std::sync::atomic::{AtomicU64, Ordering};

/// Values below this are counted exactly.
const EXACT: u64 = 128;
/// Sub-buckets per power of two above [`EXACT`].
const SUB: u64 = 64;
const BUCKETS: usize = (EXACT + (64 - 7) * SUB) as usize;

/// Counts of nanosecond values in log-linear buckets.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    pub fn record(&self, value: u64) {
        self.buckets[index(value)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(value, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// The value at quantile `q` (0 to 1), as the lower bound of its bucket.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return lower_bound(i).min(self.max());
            }
        }
        self.max()
    }
}

fn index(value: u64) -> usize {
    if value < EXACT {
        return value as usize;
    }
    let exponent = 63 - u64::from(value.leading_zeros());
    let mantissa = value >> (exponent - 6);
    (EXACT + (exponent - 7) * SUB + (mantissa - SUB)) as usize
}

fn lower_bound(index: usize) -> u64 {
    let index = index as u64;
    if index < EXACT {
        return index;
    }
    let exponent = (index - EXACT) / SUB + 7;
    let mantissa = (index - EXACT) % SUB + SUB;
    mantissa << (exponent - 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_within_two_percent() {
        for value in [0, 1, 127, 128, 1_000, 123_456, 9_999_999_999, u64::MAX] {
            let low = lower_bound(index(value));
            assert!(
                low <= value && value - low <= value / 50,
                "{value} -> {low}"
            );
        }
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let histogram = Histogram::new();
        for value in 1..=1000 {
            histogram.record(value * 1000);
        }
        let p50 = histogram.quantile(0.5);
        assert!((490_000..=500_000).contains(&p50), "{p50}");
        assert_eq!(histogram.max(), 1_000_000);
    }
}
