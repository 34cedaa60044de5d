//! Intra-class similarity, the paper's diagnosis of the accuracy drop: how alike a model finds the
//! images of one class. Per class, up to K images' embeddings are L2-normalised and their cosine
//! similarities taken over every pair i < j; a suite whose classes hold less alike images
//! (LAIONet, against ImageNet) is harder for a model trained on the alike ones.
//!
//! The arithmetic follows the paper's notebooks (alishiraliGit/eval-on-laion,
//! `compare_intra_class_similarites_of_laionet_vs_others.ipynb`):
//!
//! - embeddings are L2-normalised (a zero vector stays zero, as scikit-learn's `normalize` leaves
//!   it: its cosine with anything is 0);
//! - `mean_cosine` = the mean of the n(n-1)/2 cosines c_ij, i < j (never i = j);
//! - `std_cosine` = their standard deviation with divisor n_pairs (numpy's `np.std`);
//! - `se` = std_cosine / sqrt(n_pairs - 1), the notebook's `np.std(pw_sim) / np.sqrt(len(pw_sim) - 1)`
//!   (its error bar is 1.96 times that). It treats the pairs as independent, which they are not
//!   (each image is in n - 1 pairs), so the interval is optimistic; it is kept so that the numbers
//!   compare with the paper's;
//! - the difference of two suites' class means has se sqrt(se_a^2 + se_b^2); a class is
//!   significantly lower in suite b when diff + 1.96 se < 0 and higher when diff - 1.96 se > 0.
//!
//! Everything is computed in f64, class by class in a fixed order, so results do not depend on
//! the number of threads.

use serde::{Deserialize, Serialize};

/// The normal quantile of a two-sided 95% interval.
pub const Z95: f64 = 1.96;

/// `v` scaled to unit length, in f64; a zero (or non-finite-norm) vector stays all zeros.
pub fn normalise(v: &[f32]) -> Vec<f64> {
    let norm = v.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return vec![0.0; v.len()];
    }
    v.iter().map(|&x| x as f64 / norm).collect()
}

/// One class's intra-class similarity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairStats {
    /// Images (embeddings).
    pub n: usize,
    /// Pairs i < j: n(n-1)/2.
    pub pairs: usize,
    pub mean_cosine: f64,
    pub std_cosine: f64,
    pub se: f64,
}

/// The pairwise statistics of already-normalised embeddings.
/// None for fewer than 3 embeddings: with one pair there is no standard error.
pub fn pair_stats(unit: &[Vec<f64>]) -> Option<PairStats> {
    let n = unit.len();
    if n < 3 {
        return None;
    }
    let pairs = n * (n - 1) / 2;
    let mut cos = Vec::with_capacity(pairs);
    for i in 0..n {
        for j in i + 1..n {
            cos.push(unit[i].iter().zip(&unit[j]).map(|(a, b)| a * b).sum::<f64>());
        }
    }
    let mean = cos.iter().sum::<f64>() / pairs as f64;
    let var = cos.iter().map(|c| (c - mean) * (c - mean)).sum::<f64>() / pairs as f64;
    let std = var.sqrt();
    Some(PairStats { n, pairs, mean_cosine: mean, std_cosine: std, se: std / ((pairs - 1) as f64).sqrt() })
}

/// One row of `similarity.csv`: a class of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassSimilarity {
    pub suite: String,
    pub wnid: String,
    #[serde(flatten)]
    pub stats: PairStats,
}

/// Whether a class's similarity differs significantly between two suites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Significantly lower in the compared suite (upper end of the 95% interval below 0).
    Lower,
    /// Significantly higher (lower end above 0).
    Higher,
    /// The interval holds 0.
    Unclear,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Lower => "lower",
            Verdict::Higher => "higher",
            Verdict::Unclear => "unclear",
        }
    }
}

/// A class present (with enough images) in both the reference suite `a` and suite `b`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassDifference {
    pub wnid: String,
    pub n_a: usize,
    pub n_b: usize,
    pub mean_a: f64,
    pub mean_b: f64,
    /// mean_b - mean_a: negative when the class is less alike in `b`.
    pub diff: f64,
    /// sqrt(se_a^2 + se_b^2).
    pub se: f64,
    /// diff -/+ 1.96 se.
    pub lo: f64,
    pub hi: f64,
    pub verdict: Verdict,
}

/// Suite `b` against the reference suite `a`, class by class, and the paper's headline: the share
/// of classes significantly lower and higher in `b`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteComparison {
    pub a: String,
    pub b: String,
    /// Classes in both, in wnid order.
    pub classes: Vec<ClassDifference>,
    pub lower: usize,
    pub higher: usize,
    /// `lower` and `higher` over the classes in both; None (`null` in JSON) when there are none.
    pub share_lower: Option<f64>,
    pub share_higher: Option<f64>,
    /// Mean and median of `diff` over the classes; None when there are none.
    pub mean_diff: Option<f64>,
    pub median_diff: Option<f64>,
}

/// Compares suite `b` with suite `a` over the classes both have (rows of one suite each).
pub fn compare(a_name: &str, a: &[ClassSimilarity], b_name: &str, b: &[ClassSimilarity]) -> SuiteComparison {
    let by_wnid: std::collections::BTreeMap<&str, &PairStats> = a.iter().map(|r| (r.wnid.as_str(), &r.stats)).collect();
    let mut classes: Vec<ClassDifference> = b
        .iter()
        .filter_map(|rb| {
            let sa = by_wnid.get(rb.wnid.as_str())?;
            let sb = &rb.stats;
            let diff = sb.mean_cosine - sa.mean_cosine;
            let se = (sa.se * sa.se + sb.se * sb.se).sqrt();
            let (lo, hi) = (diff - Z95 * se, diff + Z95 * se);
            let verdict = if hi < 0.0 {
                Verdict::Lower
            } else if lo > 0.0 {
                Verdict::Higher
            } else {
                Verdict::Unclear
            };
            Some(ClassDifference {
                wnid: rb.wnid.clone(),
                n_a: sa.n,
                n_b: sb.n,
                mean_a: sa.mean_cosine,
                mean_b: sb.mean_cosine,
                diff,
                se,
                lo,
                hi,
                verdict,
            })
        })
        .collect();
    classes.sort_by(|x, y| x.wnid.cmp(&y.wnid));
    let k = classes.len();
    let lower = classes.iter().filter(|c| c.verdict == Verdict::Lower).count();
    let higher = classes.iter().filter(|c| c.verdict == Verdict::Higher).count();
    let share = |x: usize| (k > 0).then(|| x as f64 / k as f64);
    let mut diffs: Vec<f64> = classes.iter().map(|c| c.diff).collect();
    diffs.sort_by(f64::total_cmp);
    let median = match k {
        0 => None,
        _ if k % 2 == 1 => Some(diffs[k / 2]),
        _ => Some((diffs[k / 2 - 1] + diffs[k / 2]) / 2.0),
    };
    SuiteComparison {
        a: a_name.to_string(),
        b: b_name.to_string(),
        lower,
        higher,
        share_lower: share(lower),
        share_higher: share(higher),
        mean_diff: (k > 0).then(|| diffs.iter().sum::<f64>() / k as f64),
        median_diff: median,
        classes,
    }
}

/// Pearson's correlation of two equally long series; None for fewer than 2 points or a series
/// without spread (undefined).
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    if n < 2 {
        return None;
    }
    let (mx, my) = (x[..n].iter().sum::<f64>() / n as f64, y[..n].iter().sum::<f64>() / n as f64);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (x[i] - mx, y[i] - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some(sxy / (sxx * syy).sqrt()).filter(|r| r.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn normalising_keeps_direction_and_leaves_zero_alone() {
        assert_eq!(normalise(&[3.0, 4.0]), vec![0.6, 0.8]);
        assert_eq!(normalise(&[0.0, 0.0, 0.0]), vec![0.0; 3]);
        assert_eq!(normalise(&[-2.0]), vec![-1.0]);
    }

    /// Three unit vectors with cosines 1 (a,b), 0 (a,c), 0 (b,c), worked by hand:
    /// mean 1/3, variance ((2/3)^2 + 2 (1/3)^2) / 3 = 2/9, std sqrt(2)/3, se std / sqrt(2) = 1/3.
    #[test]
    fn three_vectors_by_hand() {
        let u: Vec<Vec<f64>> = [[1.0, 0.0], [2.0, 0.0], [0.0, 5.0]].iter().map(|v| normalise(v)).collect();
        let s = pair_stats(&u).unwrap();
        assert_eq!((s.n, s.pairs), (3, 3));
        assert!(close(s.mean_cosine, 1.0 / 3.0), "{s:?}");
        assert!(close(s.std_cosine, 2f64.sqrt() / 3.0), "{s:?}");
        assert!(close(s.se, 1.0 / 3.0), "{s:?}");
    }

    /// Four vectors at 0, 90, 180 and 270 degrees: cosines 0, -1, 0, 0, -1, 0 (pairs 01 02 03 12
    /// 13 23): mean -1/3; deviations 1/3 (x4) and -2/3 (x2): variance (4/9 + 8/9) / 6 = 2/9;
    /// se = sqrt(2/9) / sqrt(5).
    #[test]
    fn four_vectors_by_hand() {
        let u: Vec<Vec<f64>> =
            [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]].iter().map(|v| normalise(v)).collect();
        let s = pair_stats(&u).unwrap();
        assert_eq!((s.n, s.pairs), (4, 6));
        assert!(close(s.mean_cosine, -1.0 / 3.0));
        assert!(close(s.std_cosine, (2.0f64 / 9.0).sqrt()));
        assert!(close(s.se, (2.0f64 / 9.0).sqrt() / 5f64.sqrt()));
        // Identical embeddings: every cosine 1, no spread.
        let same = vec![normalise(&[0.3, -0.4]); 5];
        let s = pair_stats(&same).unwrap();
        assert!(close(s.mean_cosine, 1.0) && s.std_cosine < 1e-12 && s.pairs == 10);
        // Too few for a standard error.
        assert_eq!(pair_stats(&u[..2]), None);
    }

    fn row(suite: &str, wnid: &str, mean: f64, se: f64) -> ClassSimilarity {
        ClassSimilarity {
            suite: suite.into(),
            wnid: wnid.into(),
            stats: PairStats { n: 10, pairs: 45, mean_cosine: mean, std_cosine: 0.1, se },
        }
    }

    /// Differences by hand: class 1 drops 0.2 with se sqrt(0.03^2 + 0.04^2) = 0.05, so its
    /// interval is -0.2 +/- 0.098: lower. Class 2 rises 0.05 with se 0.05: [-0.048, 0.148],
    /// unclear. Class 3 rises 0.3 with se 0.1: higher. Class 4 is in `a` only: left out.
    #[test]
    fn differences_and_the_headline_by_hand() {
        let a = [
            row("in", "n00000001", 0.6, 0.03),
            row("in", "n00000002", 0.5, 0.03),
            row("in", "n00000003", 0.2, 0.06),
            row("in", "n00000004", 0.5, 0.01),
        ];
        let b = [
            row("laion", "n00000003", 0.5, 0.08),
            row("laion", "n00000001", 0.4, 0.04),
            row("laion", "n00000002", 0.55, 0.04),
        ];
        let c = compare("in", &a, "laion", &b);
        assert_eq!(
            c.classes.iter().map(|d| d.wnid.as_str()).collect::<Vec<_>>(),
            ["n00000001", "n00000002", "n00000003"]
        );
        let d1 = &c.classes[0];
        assert!(close(d1.diff, -0.2) && close(d1.se, 0.05) && close(d1.lo, -0.298) && close(d1.hi, -0.102));
        assert_eq!(d1.verdict, Verdict::Lower);
        assert!(close(c.classes[1].diff, 0.05) && close(c.classes[1].lo, 0.05 - 0.098));
        assert_eq!(c.classes[1].verdict, Verdict::Unclear);
        assert!(close(c.classes[2].se, 0.1));
        assert_eq!(c.classes[2].verdict, Verdict::Higher);
        assert_eq!((c.lower, c.higher), (1, 1));
        assert!(close(c.share_lower.unwrap(), 1.0 / 3.0) && close(c.share_higher.unwrap(), 1.0 / 3.0));
        assert!(close(c.mean_diff.unwrap(), (-0.2 + 0.05 + 0.3) / 3.0) && close(c.median_diff.unwrap(), 0.05));
        // No class in common: no shares, no mean or median (null in JSON, never NaN).
        let none = compare("in", &a[3..], "laion", &b[..1]);
        assert!(none.classes.is_empty());
        assert_eq!((none.share_lower, none.share_higher, none.mean_diff, none.median_diff), (None, None, None, None));
    }

    #[test]
    fn pearson_by_hand() {
        assert!(close(pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap(), 1.0));
        assert!(close(pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap(), -1.0));
        // x = 1,2,3,4; y = 1,3,2,4: sxy = 4, sxx = syy = 5: r = 0.8.
        assert!(close(pearson(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap(), 0.8));
        assert_eq!((pearson(&[1.0], &[1.0]), pearson(&[1.0, 1.0], &[1.0, 2.0])), (None, None));
    }
}
