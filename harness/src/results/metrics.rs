//! The paper's arithmetic: per-class recall with a Wilson standard error, and equal-weighted or
//! class-weighted averages of it.
//!
//! - per-class recall `r_y = correct_y / n_y`, counting only samples that got a prediction;
//! - `se_y = (upper - lower) / 2 / 1.96` from the 95% Wilson score interval;
//! - weighted recall `sum w_y r_y / sum w_y` over the classes present (n_y > 0), with
//!   `se = sqrt(sum (w_y se_y)^2) / sum w_y`; equal weighting is `w_y = 1`.
//!
//! Every sum runs over classes in wnid order (a `BTreeMap`), so results are identical to the last
//! bit whatever order samples were evaluated in, on however many threads, shards or batches.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The normal quantile for a two-sided 95% interval, as scipy/statsmodels compute it.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Per-class tallies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCounts {
    /// Samples of this class that got a prediction.
    pub n: u64,
    pub top1: u64,
    pub top5: u64,
}

/// The 95% Wilson score interval for `k` successes out of `n`.
pub fn wilson_interval(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    (centre - half, centre + half)
}

/// The paper's per-class standard error: the Wilson interval's width / 2 / 1.96.
pub fn wilson_se(k: u64, n: u64) -> f64 {
    let (lo, hi) = wilson_interval(k, n);
    (hi - lo) / 2.0 / 1.96
}

/// A value with its standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub se: f64,
}

impl Estimate {
    /// `self - other` for independent estimates.
    pub fn minus(&self, other: &Estimate) -> Estimate {
        Estimate { value: self.value - other.value, se: (self.se * self.se + other.se * other.se).sqrt() }
    }
}

/// Which of the top-k counts to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopK {
    Top1,
    Top5,
}

impl ClassCounts {
    pub fn correct(&self, k: TopK) -> u64 {
        match k {
            TopK::Top1 => self.top1,
            TopK::Top5 => self.top5,
        }
    }
    pub fn recall(&self, k: TopK) -> f64 {
        self.correct(k) as f64 / self.n as f64
    }
    pub fn se(&self, k: TopK) -> f64 {
        wilson_se(self.correct(k), self.n)
    }
}

/// Weighted mean recall over the classes present in `counts` (n > 0). `weight(wnid)` gives each
/// class's weight; classes with weight 0 drop out. Returns `None` when no class present has a
/// positive weight.
pub fn weighted_recall(
    counts: &BTreeMap<String, ClassCounts>,
    k: TopK,
    weight: impl Fn(&str) -> f64,
) -> Option<Estimate> {
    let (mut sw, mut swr, mut swse2) = (0.0f64, 0.0f64, 0.0f64);
    for (wnid, c) in counts {
        if c.n == 0 {
            continue;
        }
        let w = weight(wnid);
        if w <= 0.0 || !w.is_finite() {
            continue;
        }
        let se = c.se(k);
        sw += w;
        swr += w * c.recall(k);
        swse2 += (w * se) * (w * se);
    }
    (sw > 0.0).then(|| Estimate { value: swr / sw, se: swse2.sqrt() / sw })
}

/// Equal-weighted mean recall over the classes present.
pub fn equal_recall(counts: &BTreeMap<String, ClassCounts>, k: TopK) -> Option<Estimate> {
    weighted_recall(counts, k, |_| 1.0)
}

/// The four headline numbers for one model on one suite.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    pub top1_equal: Option<Estimate>,
    pub top5_equal: Option<Estimate>,
    pub top1_weighted: Option<Estimate>,
    pub top5_weighted: Option<Estimate>,
}

impl Headline {
    pub fn compute(counts: &BTreeMap<String, ClassCounts>, weights: &BTreeMap<String, f64>) -> Headline {
        let w = |wnid: &str| weights.get(wnid).copied().unwrap_or(0.0);
        Headline {
            top1_equal: equal_recall(counts, TopK::Top1),
            top5_equal: equal_recall(counts, TopK::Top5),
            top1_weighted: weighted_recall(counts, TopK::Top1, w),
            top5_weighted: weighted_recall(counts, TopK::Top5, w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b}");
    }

    #[test]
    fn wilson_by_hand() {
        // k=8, n=10: p=0.8, z^2=3.841459; denom = 1.3841459; centre = (0.8 + 0.19207)/denom
        // = 0.716723; half = 1.959964*sqrt(0.016 + 0.0096036)/denom = 0.226653.
        let (lo, hi) = wilson_interval(8, 10);
        close(lo, 0.490162, 1e-6);
        close(hi, 0.943318, 1e-6);
        close(wilson_se(8, 10), (0.943318 - 0.490162) / 2.0 / 1.96, 1e-6);
        // All correct: the interval still has width.
        let (lo, hi) = wilson_interval(50, 50);
        close(hi, 1.0, 1e-12);
        close(lo, 0.928652, 1e-6);
        // Nothing correct is the mirror image.
        let (lo0, hi0) = wilson_interval(0, 50);
        close(lo0, 0.0, 1e-12);
        close(hi0, 1.0 - 0.928652, 1e-6);
    }

    #[test]
    fn weighted_and_equal_by_hand() {
        let mut c = BTreeMap::new();
        c.insert("a".to_string(), ClassCounts { n: 10, top1: 8, top5: 10 });
        c.insert("b".to_string(), ClassCounts { n: 4, top1: 1, top5: 3 });
        c.insert("z".to_string(), ClassCounts { n: 0, top1: 0, top5: 0 }); // absent: ignored
        let e = equal_recall(&c, TopK::Top1).unwrap();
        close(e.value, (0.8 + 0.25) / 2.0, 1e-15);
        let (sa, sb) = (wilson_se(8, 10), wilson_se(1, 4));
        close(e.se, (sa * sa + sb * sb).sqrt() / 2.0, 1e-15);
        // Weights 3 and 1 (relative frequencies 0.75 / 0.25 give the same).
        let w = |k: &str| {
            if k == "a" {
                0.75
            } else if k == "b" {
                0.25
            } else {
                9.0
            }
        };
        let e = weighted_recall(&c, TopK::Top1, w).unwrap();
        close(e.value, 0.75 * 0.8 + 0.25 * 0.25, 1e-15);
        close(e.se, ((0.75 * sa).powi(2) + (0.25 * sb).powi(2)).sqrt(), 1e-15);
        // A class with weight 0 is left out entirely.
        let e = weighted_recall(&c, TopK::Top5, |k| if k == "a" { 1.0 } else { 0.0 }).unwrap();
        close(e.value, 1.0, 0.0);
        assert!(weighted_recall(&c, TopK::Top1, |_| 0.0).is_none());
    }

    #[test]
    fn difference_adds_variances() {
        let d = Estimate { value: 0.9, se: 0.03 }.minus(&Estimate { value: 0.8, se: 0.04 });
        close(d.value, 0.1, 1e-12);
        close(d.se, 0.05, 1e-12);
    }
}
