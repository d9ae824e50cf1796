//! Order statistics shared by the reports that print percentiles (the
//! campaign summary's claim times, the API's campaign statistics). Pure:
//! numbers in, numbers out; no clock (callers measure, this counts).

use hdrhistogram::Histogram;
use serde::{Serialize, Serializer};

/// The value at quantile `q` (0..=1) of `sorted` (ascending), by nearest
/// rank; None when there are no values.
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Durations in microseconds, counted in fixed memory however many are
/// recorded (a `duecall serve` run lasts days and claims millions of
/// times): a histogram with three significant figures, so a quantile is
/// within 0.1 % of the exact one, and the maximum is exact.
#[derive(Debug, Clone)]
pub struct Durations {
    hist: Histogram<u64>,
    /// The largest duration recorded, exactly (the histogram's own maximum
    /// is its bucket's top).
    max: u64,
}

/// The largest duration a [`Durations`] tells apart: one hour. Longer ones
/// are counted as one hour (a claim that long is a stalled store anyway).
const MAX_US: u64 = 3_600_000_000;

impl Default for Durations {
    fn default() -> Self {
        Durations {
            // 1 µs .. 1 h at 3 significant figures: about 30 KB, fixed.
            hist: Histogram::new_with_bounds(1, MAX_US, 3).expect("constant bounds are valid"),
            max: 0,
        }
    }
}

impl Durations {
    /// Counts one duration (clamped to 1 µs .. 1 h).
    pub fn record(&mut self, us: u64) {
        let us = us.clamp(1, MAX_US);
        self.hist.saturating_record(us);
        self.max = self.max.max(us);
    }

    /// How many durations were counted.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The duration at quantile `q` (0..=1); None when nothing was counted.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.hist.is_empty() {
            return None;
        }
        if q >= 1.0 {
            return Some(self.max);
        }
        Some(self.hist.value_at_quantile(q.max(0.0)))
    }
}

/// What a report shows of [`Durations`]: the count, p50, p95 and max.
impl Serialize for Durations {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Durations", 4)?;
        st.serialize_field("count", &self.count())?;
        st.serialize_field("p50_us", &self.quantile(0.5))?;
        st.serialize_field("p95_us", &self.quantile(0.95))?;
        st.serialize_field("max_us", &self.quantile(1.0))?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::{quantile, Durations};

    #[test]
    fn nearest_rank_quantiles_of_ten_values() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(quantile(&v, 0.5), Some(5));
        assert_eq!(quantile(&v, 0.95), Some(10));
        assert_eq!(quantile(&v, 0.0), Some(1));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn durations_agree_with_the_exact_quantiles_within_a_tenth_of_a_percent() {
        let mut d = Durations::default();
        let mut exact = Vec::new();
        // A skewed spread like claim times: most fast, a long tail.
        let mut x: u64 = 12345;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let us = 500
                + (x >> 40) % 2_000
                + if (x >> 20).is_multiple_of(50) {
                    30_000
                } else {
                    0
                };
            d.record(us);
            exact.push(us);
        }
        exact.sort_unstable();
        assert_eq!(d.count(), 20_000);
        for q in [0.5, 0.95, 0.99] {
            let want = quantile(&exact, q).unwrap() as f64;
            let got = d.quantile(q).unwrap() as f64;
            assert!(
                (got - want).abs() / want < 0.001,
                "q {q}: {got} vs exact {want}"
            );
        }
        assert_eq!(d.quantile(1.0), exact.last().copied());
    }

    #[test]
    fn durations_clamp_what_is_out_of_range_and_report_count_and_quantiles() {
        let mut d = Durations::default();
        assert_eq!(d.quantile(0.5), None);
        d.record(0);
        d.record(u64::MAX);
        assert_eq!(d.count(), 2);
        assert_eq!(d.quantile(0.0), Some(1));
        assert_eq!(d.quantile(1.0), Some(3_600_000_000));
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["count"], 2);
        assert_eq!(v["p50_us"], 1);
    }
}
