//! Latency summaries: nearest-rank percentiles, in milliseconds.

use std::fmt;
use std::time::Duration;

/// p50, p99 and max of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    /// Sample size.
    pub(crate) n: usize,
    /// Median, ms.
    pub(crate) p50: f64,
    /// 99th percentile, ms.
    pub(crate) p99: f64,
    /// Largest, ms.
    pub(crate) max: f64,
}

/// The nearest-rank percentile `p` (0–100] of an ascending, non-empty sample:
/// the smallest value with at least p% of the sample at or below it. With
/// fewer than 100 values p99 is the maximum.
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Summary {
    /// Summarizes `samples`; `None` when there are none.
    pub(crate) fn of(samples: &[Duration]) -> Option<Self> {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let max = *ms.last()?;
        Some(Self { n: ms.len(), p50: nearest_rank(&ms, 50.0), p99: nearest_rank(&ms, 99.0), max })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p50_ms={:.1} p99_ms={:.1} max_ms={:.1}", self.p50, self.p99, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = Summary::of(&ms(&(1..=200).rev().collect::<Vec<_>>())).unwrap();
        assert_eq!((s.n, s.p50, s.p99, s.max), (200, 100.0, 198.0, 200.0));
    }

    #[test]
    fn a_small_sample_has_its_maximum_as_p99() {
        let s = Summary::of(&ms(&[5, 1, 9])).unwrap();
        assert_eq!((s.p50, s.p99, s.max), (5.0, 9.0, 9.0));
        assert!(Summary::of(&[]).is_none());
    }
}
