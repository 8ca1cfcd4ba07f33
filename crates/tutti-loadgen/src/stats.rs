//! Figures over many packets or listeners: a fixed-bucket histogram and percentiles.

use serde::Serialize;

/// Histogram of durations in 50 µs buckets up to 2 s (the last bucket holds the rest), with
/// the exact maximum.
#[derive(Clone, Debug)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max_us: f64,
}

const BUCKET_US: f64 = 50.0;
const BUCKETS: usize = 40_000;

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; BUCKETS],
            count: 0,
            max_us: 0.0,
        }
    }
}

impl Histogram {
    /// Counts one value, microseconds.
    pub fn record(&mut self, us: f64) {
        let us = us.max(0.0);
        let index = ((us / BUCKET_US) as usize).min(BUCKETS - 1);
        self.buckets[index] += 1;
        self.count += 1;
        self.max_us = self.max_us.max(us);
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (0–1) in milliseconds: the upper edge of its bucket.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let wanted = (q * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= wanted {
                return Some(((i + 1) as f64 * BUCKET_US).min(self.max_us) / 1000.0);
            }
        }
        Some(self.max_us / 1000.0)
    }

    /// The largest value, milliseconds.
    pub fn max_ms(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max_us / 1000.0)
    }
}

/// p50, p99 and maximum of a set of values.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Spread {
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

impl Spread {
    /// The spread of `values` (nearest-rank percentiles).
    pub fn of(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let i = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
            values[i]
        };
        Self {
            p50: Some(rank(0.5)),
            p99: Some(rank(0.99)),
            max: values.last().copied(),
        }
    }

    /// The spread a histogram holds, milliseconds.
    pub fn of_histogram(h: &Histogram) -> Self {
        Self {
            p50: h.quantile_ms(0.5),
            p99: h.quantile_ms(0.99),
            max: h.max_ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_histogram_and_of_values() {
        let mut h = Histogram::default();
        for us in 0..1000 {
            h.record(f64::from(us));
        }
        h.record(5_000_000.0);
        assert_eq!(h.count(), 1001);
        assert_eq!(h.quantile_ms(0.5), Some(0.55));
        assert_eq!(h.max_ms(), Some(5000.0));
        let s = Spread::of((1..=100).map(f64::from).collect());
        assert_eq!((s.p50, s.p99, s.max), (Some(50.0), Some(99.0), Some(100.0)));
        assert_eq!(Spread::of(Vec::new()), Spread::default());
    }
}
