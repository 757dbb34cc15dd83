//! A histogram with fixed bucket bounds, for the figures components keep about themselves
//! (connection lifetimes, ping round trips) and monitoring reads (lp2p-metrics).

/// Observations counted per bucket: bucket `i` holds values at most `bounds[i]` (and above
/// `bounds[i - 1]`), a last bucket those above every bound. Counts saturate.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len().saturating_add(1)],
            sum: 0.0,
        }
    }

    /// Counts `value`.
    pub fn observe(&mut self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        if let Some(n) = self.counts.get_mut(bucket) {
            *n = n.saturating_add(1);
        }
        self.sum += value;
    }

    /// The upper bounds of the bounded buckets.
    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// The count of each bucket (not cumulative), the unbounded one last.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().fold(0, |a, n| a.saturating_add(*n))
    }

    /// The observed values added up.
    pub fn sum(&self) -> f64 {
        self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_that_holds_them() {
        static BOUNDS: [f64; 3] = [1.0, 10.0, 100.0];
        let mut h = Histogram::new(&BOUNDS);
        for v in [0.5, 1.0, 1.5, 10.0, 99.0, 1000.0, f64::INFINITY] {
            h.observe(v);
        }
        assert_eq!(h.counts(), &[2, 2, 1, 2]);
        assert_eq!(h.count(), 7);
        assert!(h.sum().is_infinite());
        assert_eq!(h.bounds(), &BOUNDS);
    }
}
