//! Lock-free histograms and counters for the request families, with ingress-nginx's buckets.
//!
//! A histogram keeps one non-cumulative counter per bucket plus an overflow counter and an
//! integer sum (nanoseconds or bytes), so observing is a bucket search and two relaxed
//! `fetch_add`s. The exposition makes the buckets cumulative and derives `_count` from
//! them, so `+Inf` always equals `_count` even when a scrape races an observation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Most finite buckets any family has (the time buckets).
pub const MAX_BUCKETS: usize = 11;

/// A family's bucket layout: upper bounds in the unit observed, and how `le` prints them.
pub struct Buckets {
    /// Inclusive upper bounds, ascending, in nanoseconds or bytes.
    pub bounds: &'static [u64],
    /// `le` label values, as Prometheus' Go client formats them.
    pub le: &'static [&'static str],
    /// Divisor that turns the integer sum into the exposed unit (1e9 for seconds, 1 for bytes).
    pub unit: f64,
}

const MS: u64 = 1_000_000;

/// ingress-nginx's time buckets (seconds): 0.005 … 10.
pub static TIME: Buckets = Buckets {
    bounds: &[
        5 * MS,
        10 * MS,
        25 * MS,
        50 * MS,
        100 * MS,
        250 * MS,
        500 * MS,
        1000 * MS,
        2500 * MS,
        5000 * MS,
        10_000 * MS,
    ],
    le: &["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"],
    unit: 1e9,
};

/// ingress-nginx's length buckets (bytes): 10, 20, … 100 — also used for `response_size`.
pub static LENGTH: Buckets = Buckets {
    bounds: &[10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    le: &["10", "20", "30", "40", "50", "60", "70", "80", "90", "100"],
    unit: 1.0,
};

/// ingress-nginx's size buckets (bytes) for the deprecated `bytes_sent`: 10 … 1e7.
pub static SIZE: Buckets = Buckets {
    bounds: &[10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000],
    le: &["10", "100", "1000", "10000", "100000", "1e+06", "1e+07"],
    unit: 1.0,
};

/// One histogram series. Which [`Buckets`] it uses is known by its family, not stored.
#[derive(Default)]
pub struct Histogram {
    /// `counts[i]` counts observations in bucket `i` (non-cumulative); the one after the
    /// last finite bound counts the overflow (`+Inf` only).
    counts: [AtomicU64; MAX_BUCKETS + 1],
    /// Sum of observations in the integer unit (nanoseconds or bytes).
    sum: AtomicU64,
}

impl Histogram {
    /// Observe `value` (nanoseconds or bytes) against `buckets`.
    #[inline]
    pub fn observe(&self, buckets: &Buckets, value: u64) {
        let i = buckets.bounds.iter().position(|&b| value <= b).unwrap_or(buckets.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Observe a duration against the time buckets.
    #[inline]
    pub fn observe_duration(&self, d: Duration) {
        self.observe(&TIME, u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Cumulative bucket counts (finite bounds then `+Inf`) and the sum in the exposed unit.
    pub fn read(&self, buckets: &Buckets) -> ([u64; MAX_BUCKETS + 1], f64) {
        let mut out = [0u64; MAX_BUCKETS + 1];
        let mut acc = 0u64;
        for (i, slot) in out.iter_mut().enumerate().take(buckets.bounds.len() + 1) {
            acc += self.counts[i].load(Ordering::Relaxed);
            *slot = acc;
        }
        (out, self.sum.load(Ordering::Relaxed) as f64 / buckets.unit)
    }
}

/// A monotonic counter.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
