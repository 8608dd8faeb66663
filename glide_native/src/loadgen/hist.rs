//! Latency histogram: HDR-style log-linear buckets in microseconds (under 1.6 % relative error), plus
//! GlideIM's fixed millisecond buckets so results compare with its published chart.

use serde::Serialize;

/// Sub-buckets per power of two (7 bits: values below 128 µs are exact).
const SUB: u64 = 128;
const HALF: u64 = SUB / 2;
/// Values are clamped here (~19 hours in µs): far past any timeout.
const MAX_VALUE: u64 = 1 << 36;
const BUCKETS: usize = (SUB + (36 - 7) * HALF) as usize;

/// GlideIM's delay buckets (`test/client_simulate.go`), upper bounds in ms; one more bucket for `> 4000`.
pub const GLIDE_BOUNDS_MS: [u64; 12] = [20, 50, 100, 200, 300, 500, 800, 1000, 1500, 2000, 3000, 4000];

fn index(v: u64) -> usize {
    let v = v.min(MAX_VALUE - 1);
    if v < SUB {
        return v as usize;
    }
    let shift = u64::from(63 - v.leading_zeros()) - 6; // v >> shift lands in [64, 128)
    (SUB + (shift - 1) * HALF + ((v >> shift) - HALF)) as usize
}

/// Highest value that falls in bucket `i` (what HDR calls the highest equivalent value).
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = (i - SUB) / HALF + 1;
    let sub = (i - SUB) % HALF + HALF;
    ((sub + 1) << shift) - 1
}

/// A latency histogram.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    glide: [u64; 13],
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            glide: [0; 13],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

/// Summary of a histogram, in milliseconds.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample.
    pub min_ms: f64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample (exact).
    pub max_ms: f64,
    /// GlideIM's buckets: `[label, count]`, labels `<=20` … `<=4000`, `>4000`.
    pub glide_buckets: Vec<(String, u64)>,
    /// Non-empty log buckets: `[upper bound ms, count]`, for plotting the distribution.
    pub buckets: Vec<(f64, u64)>,
}

impl Histogram {
    /// Records one sample (µs).
    pub fn record(&mut self, us: u64) {
        self.counts[index(us)] += 1;
        let ms_ceil = us.div_ceil(1000);
        let g = GLIDE_BOUNDS_MS
            .iter()
            .position(|&b| ms_ceil <= b)
            .unwrap_or(GLIDE_BOUNDS_MS.len());
        self.glide[g] += 1;
        self.count += 1;
        self.sum += u128::from(us);
        self.min = self.min.min(us);
        self.max = self.max.max(us);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value (µs) at quantile `q` in `[0, 1]`: the upper bound of the bucket holding it, capped by
    /// the exact maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }

    /// Percentiles and buckets in ms; `with_buckets` adds the (longer) log-bucket list.
    pub fn summary(&self, with_buckets: bool) -> Summary {
        let ms = |us: u64| us as f64 / 1000.0;
        let mut labels: Vec<String> = GLIDE_BOUNDS_MS.iter().map(|b| format!("<={b}")).collect();
        labels.push(">4000".into());
        Summary {
            count: self.count,
            min_ms: if self.count == 0 { 0.0 } else { ms(self.min) },
            mean_ms: if self.count == 0 {
                0.0
            } else {
                self.sum as f64 / self.count as f64 / 1000.0
            },
            p50_ms: ms(self.quantile(0.50)),
            p90_ms: ms(self.quantile(0.90)),
            p99_ms: ms(self.quantile(0.99)),
            p999_ms: ms(self.quantile(0.999)),
            max_ms: ms(self.max),
            glide_buckets: labels.into_iter().zip(self.glide.iter().copied()).collect(),
            buckets: if with_buckets {
                self.counts
                    .iter()
                    .enumerate()
                    .filter(|(_, &c)| c > 0)
                    .map(|(i, &c)| (ms(upper(i)), c))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_monotonic() {
        let mut last = None;
        for i in 0..BUCKETS {
            let hi = upper(i);
            if let Some(prev) = last {
                assert_eq!(index(prev + 1), i, "value {} should open bucket {i}", prev + 1);
                assert!(hi > prev);
            }
            assert_eq!(index(hi), i);
            last = Some(hi);
        }
    }

    #[test]
    fn relative_error_is_bounded() {
        for v in [1u64, 127, 128, 129, 1000, 4_999, 65_537, 1_000_000, 59_999_999] {
            let hi = upper(index(v));
            assert!(hi >= v);
            assert!((hi - v) as f64 <= v as f64 / 64.0 + 1.0, "v {v} hi {hi}");
        }
        assert_eq!(index(u64::MAX), index(MAX_VALUE - 1));
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v * 1000); // 1..1000 ms
        }
        let s = h.summary(true);
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() / 500.0 < 0.02, "{}", s.p50_ms);
        assert!((s.p99_ms - 990.0).abs() / 990.0 < 0.02, "{}", s.p99_ms);
        assert_eq!(s.max_ms, 1000.0);
        assert_eq!(s.min_ms, 1.0);
        assert!((s.mean_ms - 500.5).abs() < 1e-9);
        assert_eq!(s.buckets.iter().map(|b| b.1).sum::<u64>(), 1000);
    }

    #[test]
    fn glide_buckets_follow_its_bounds() {
        let mut h = Histogram::default();
        for us in [0, 20_000, 20_001, 50_000, 4_000_000, 4_000_001, 90_000_000] {
            h.record(us);
        }
        let s = h.summary(false);
        let get = |label: &str| s.glide_buckets.iter().find(|(l, _)| l == label).map(|(_, c)| *c);
        assert_eq!(get("<=20"), Some(2));
        assert_eq!(get("<=50"), Some(2));
        assert_eq!(get("<=4000"), Some(1));
        assert_eq!(get(">4000"), Some(2));
        assert_eq!(s.glide_buckets.len(), 13);
        assert!(s.buckets.is_empty());
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        let s = Histogram::default().summary(true);
        assert_eq!((s.count, s.p99_ms, s.max_ms, s.min_ms), (0, 0.0, 0.0, 0.0));
    }
}
