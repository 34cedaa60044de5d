//! Paired statistics: two runs on the same samples compared sample by sample.
//!
//! Two runs of a model on one suite (yesterday's and today's) scored the same samples; treating
//! their recalls as independent estimates overstates the noise of the change and hides real
//! regressions of a few points. Here only the samples that got a prediction in **both** runs
//! count, matched by sample id, and for each the difference `d = correct_new - correct_base`
//! (-1, 0 or 1; top-1 and top-5 separately) is what varies.
//!
//! **Discordance and McNemar's test.** `b` samples went right -> wrong, `c` wrong -> right. Under
//! "no change" each discordant sample is a fair coin, so `p = min(1, 2 P(X <= min(b, c)))` with
//! `X ~ Binomial(b + c, 1/2)` (the exact two-sided McNemar test; `p = 1` when `b + c = 0`).
//!
//! **The paired standard error.** Per class `y` with `n_y` paired samples, the change of its
//! recall is `D_y = mean(d)` over its samples. The recalls shiftbench reports are (weighted)
//! means over classes, so their change is `D = sum_y w_y D_y / sum_y w_y` (`w_y = 1` for the
//! equal-weighted recall, the class's LAION weight for the LAION-weighted one), with
//!
//! ```text
//! se(D)^2 = sum_y w_y^2 s_y^2 / n_y  /  (sum_y w_y)^2
//! s_y^2   = (sum_i d_i^2 - n_y D_y^2) / (n_y - 1)       for n_y >= 2 (the class's own variance)
//! s_y^2   = (sum_i d_i^2 - N D^2) / (N - 1)               for n_y  = 1 (pooled over all N samples)
//! ```
//!
//! A class with one sample has no variance of its own; it borrows the variance of the
//! differences over the whole suite (the usual "collapsed strata" estimate), so a suite of
//! one sample per class (the 1,000 sample photos) gets the classic paired standard error
//! `sqrt(b + c - (b - c)^2 / N) / N` (with N - 1 in place of N inside). When every sample is
//! scored on both sides, `D` is exactly the change of the reported recall.
//!
//! Every sum runs in sample-id and wnid order: identical results at any thread count.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::results::metrics::Estimate;
use crate::results::predlog::{Record, Status};

/// Right -> wrong and wrong -> right counts with McNemar's exact p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Discordance {
    /// Right in the baseline, wrong now.
    pub right_to_wrong: u64,
    /// Wrong in the baseline, right now.
    pub wrong_to_right: u64,
    /// McNemar's exact two-sided p-value.
    pub p_value: f64,
}

/// One sample whose top-1 correctness changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flip {
    pub id: String,
    pub wnid: String,
    /// `right_to_wrong` or `wrong_to_right`.
    pub direction: String,
    /// The top-1 prediction before and after.
    pub before: String,
    pub after: String,
}

/// A class's paired top-1 change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMove {
    pub wnid: String,
    /// Samples scored on both sides.
    pub n: u64,
    pub right_to_wrong: u64,
    pub wrong_to_right: u64,
    /// Its top-1 recall's change, `(wrong_to_right - right_to_wrong) / n`.
    pub change: f64,
}

/// The paired changes of the four headline recalls (`new - baseline`), with paired standard
/// errors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedChanges {
    pub top1_equal: Option<Estimate>,
    pub top5_equal: Option<Estimate>,
    pub top1_weighted: Option<Estimate>,
    pub top5_weighted: Option<Estimate>,
}

/// Two runs of one model on one suite, compared sample by sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paired {
    /// Samples with a prediction on both sides (the ones compared).
    pub samples: u64,
    /// Samples with a prediction on one side only (left out).
    pub one_side_only: u64,
    pub top1: Discordance,
    pub top5: Discordance,
    pub changes: PairedChanges,
    /// Every sample whose top-1 correctness changed, in id order.
    pub flips: Vec<Flip>,
    /// Every class whose top-1 count changed, the most lost first (then by wnid).
    pub classes: Vec<ClassMove>,
}

/// McNemar's exact two-sided p-value for `b` and `c` discordant pairs:
/// `min(1, 2 P(X <= min(b, c)))`, `X ~ Binomial(b + c, 1/2)`, summed in log space (exact for
/// millions of pairs).
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // ln P(X = i) for i = 0..=k, by ln C(n, i) = ln C(n, i - 1) + ln(n - i + 1) - ln(i).
    let mut ln_term = -(n as f64) * std::f64::consts::LN_2;
    let mut terms = Vec::with_capacity(k as usize + 1);
    terms.push(ln_term);
    for i in 1..=k {
        ln_term += ((n - i + 1) as f64).ln() - (i as f64).ln();
        terms.push(ln_term);
    }
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tail = max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln();
    (2.0 * tail.exp()).min(1.0)
}

/// Per class: samples, sum of d, sum of d^2, for top-1 and top-5.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    n: u64,
    s1: i64,
    q1: u64,
    s5: i64,
    q5: u64,
    b1: u64,
    c1: u64,
}

fn top1_right(r: &Record) -> bool {
    r.top.first() == Some(&r.wnid)
}

fn top5_right(r: &Record) -> bool {
    r.top.iter().take(5).any(|w| w == &r.wnid)
}

/// The paired change of a (weighted) mean over classes of per-class mean differences, with its
/// standard error (see the module docs). `per_class`: (weight, n, sum d, sum d^2); `pooled`: the
/// variance of d over all samples. None when no class has a positive weight.
fn paired_mean(per_class: &[(f64, u64, i64, u64)], pooled: f64) -> Option<Estimate> {
    let total_w: f64 = per_class.iter().map(|c| c.0).sum();
    if total_w <= 0.0 {
        return None;
    }
    let (mut value, mut var) = (0.0, 0.0);
    for &(w, n, s, q) in per_class {
        if w == 0.0 || n == 0 {
            continue;
        }
        let nf = n as f64;
        let mean = s as f64 / nf;
        let s2 = if n >= 2 { ((q as f64 - nf * mean * mean) / (nf - 1.0)).max(0.0) } else { pooled };
        value += w * mean;
        var += w * w * s2 / nf;
    }
    Some(Estimate { value: value / total_w, se: var.sqrt() / total_w })
}

/// Compares `new` with `baseline` sample by sample (records of one model on one suite; for a
/// sample seen twice in a log, its last record counts). `weights` gives each class its LAION
/// weight (0 or absent: left out of the weighted recall).
pub fn paired<'a>(
    baseline: impl IntoIterator<Item = &'a Record>,
    new: impl IntoIterator<Item = &'a Record>,
    weights: &BTreeMap<String, f64>,
) -> Paired {
    let latest = |rs: &mut dyn Iterator<Item = &'a Record>| -> BTreeMap<&'a str, &'a Record> {
        rs.filter(|r| r.status == Status::Ok).map(|r| (r.id.as_str(), r)).collect()
    };
    let base = latest(&mut baseline.into_iter());
    let newer = latest(&mut new.into_iter());
    let mut sums: BTreeMap<&str, Sums> = BTreeMap::new();
    let (mut flips, mut t1, mut t5) = (Vec::new(), (0u64, 0u64), (0u64, 0u64));
    let (mut all_s1, mut all_q1, mut all_s5, mut all_q5, mut n_all) = (0i64, 0u64, 0i64, 0u64, 0u64);
    for (id, b) in &base {
        let Some(n) = newer.get(id) else { continue };
        let d1 = top1_right(n) as i64 - top1_right(b) as i64;
        let d5 = top5_right(n) as i64 - top5_right(b) as i64;
        let s = sums.entry(b.wnid.as_str()).or_default();
        s.n += 1;
        (s.s1, s.q1, s.s5, s.q5) = (s.s1 + d1, s.q1 + (d1 * d1) as u64, s.s5 + d5, s.q5 + (d5 * d5) as u64);
        (all_s1, all_q1, all_s5, all_q5, n_all) =
            (all_s1 + d1, all_q1 + (d1 * d1) as u64, all_s5 + d5, all_q5 + (d5 * d5) as u64, n_all + 1);
        match d1 {
            -1 => {
                s.b1 += 1;
                t1.0 += 1;
            }
            1 => {
                s.c1 += 1;
                t1.1 += 1;
            }
            _ => {}
        }
        match d5 {
            -1 => t5.0 += 1,
            1 => t5.1 += 1,
            _ => {}
        }
        if d1 != 0 {
            flips.push(Flip {
                id: id.to_string(),
                wnid: b.wnid.clone(),
                direction: if d1 < 0 { "right_to_wrong" } else { "wrong_to_right" }.into(),
                before: b.top.first().cloned().unwrap_or_default(),
                after: n.top.first().cloned().unwrap_or_default(),
            });
        }
    }
    let one_side_only = (base.keys().filter(|k| !newer.contains_key(*k)).count()
        + newer.keys().filter(|k| !base.contains_key(*k)).count()) as u64;
    let pooled = |s: i64, q: u64| {
        let n = n_all as f64;
        if n_all >= 2 {
            ((q as f64 - s as f64 * s as f64 / n) / (n - 1.0)).max(0.0)
        } else {
            0.0
        }
    };
    let (p1, p5) = (pooled(all_s1, all_q1), pooled(all_s5, all_q5));
    let rows = |w: &dyn Fn(&str) -> f64, top5: bool| -> Vec<(f64, u64, i64, u64)> {
        sums.iter()
            .map(|(wnid, s)| (w(wnid), s.n, if top5 { s.s5 } else { s.s1 }, if top5 { s.q5 } else { s.q1 }))
            .collect()
    };
    let equal = |_: &str| 1.0;
    let laion = |wnid: &str| weights.get(wnid).copied().unwrap_or(0.0);
    let changes = PairedChanges {
        top1_equal: paired_mean(&rows(&equal, false), p1),
        top5_equal: paired_mean(&rows(&equal, true), p5),
        top1_weighted: paired_mean(&rows(&laion, false), p1),
        top5_weighted: paired_mean(&rows(&laion, true), p5),
    };
    let mut classes: Vec<ClassMove> = sums
        .iter()
        .filter(|(_, s)| s.b1 + s.c1 > 0)
        .map(|(wnid, s)| ClassMove {
            wnid: wnid.to_string(),
            n: s.n,
            right_to_wrong: s.b1,
            wrong_to_right: s.c1,
            change: (s.c1 as f64 - s.b1 as f64) / s.n as f64,
        })
        .collect();
    classes.sort_by(|a, b| a.change.total_cmp(&b.change).then_with(|| a.wnid.cmp(&b.wnid)));
    Paired {
        samples: n_all,
        one_side_only,
        top1: Discordance { right_to_wrong: t1.0, wrong_to_right: t1.1, p_value: mcnemar_exact(t1.0, t1.1) },
        top5: Discordance { right_to_wrong: t5.0, wrong_to_right: t5.1, p_value: mcnemar_exact(t5.0, t5.1) },
        changes,
        flips,
        classes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, wnid: &str, top1: &str) -> Record {
        Record {
            id: id.into(),
            wnid: wnid.into(),
            status: Status::Ok,
            top: vec![top1.to_string()],
            scores: vec![1.0],
            error: None,
            embedding: vec![],
            image: None,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn mcnemar_by_hand() {
        // b = 1, c = 4: 2 * (1 + 5) / 32 = 0.375.
        assert!(close(mcnemar_exact(1, 4), 0.375));
        assert!(close(mcnemar_exact(4, 1), 0.375));
        // b = c: the tail holds at least half the mass: p = 1.
        assert_eq!(mcnemar_exact(3, 3), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // b = 0, c = 6: 2 / 64.
        assert!(close(mcnemar_exact(0, 6), 2.0 / 64.0));
        // 35 vs 10: 2 * sum_{i<=10} C(45, i) / 2^45 = 2.4708778460080794e-4 (Python's exact
        // integers: `2 * sum(math.comb(45, i) for i in range(11)) / 2**45`).
        let p = mcnemar_exact(35, 10);
        assert!(close(p, 2.4708778460080794e-4), "{p}");
        // Large counts stay finite and symmetric.
        let p = mcnemar_exact(500_000, 501_000);
        assert!(p > 0.0 && p < 1.0 && close(p, mcnemar_exact(501_000, 500_000)), "{p}");
    }

    /// Class a: 3 samples, d = (-1, 0, +1) top-1; class b: 1 sample, d = -1; class c: 2 samples,
    /// d = (0, 0). By hand: N = 6, sum d = -1, sum d^2 = 3; pooled s^2 = (3 - 1/6) / 5 = 17/30.
    /// D_a = 0, s_a^2 = (2 - 0) / 2 = 1; D_b = -1, s_b^2 = 17/30 (pooled); D_c = 0, s_c^2 = 0.
    /// Equal: D = -1/3, se^2 = (1/3 + 17/30 + 0) / 9 = 0.1; LAION weights a 1, b 2, c 1:
    /// D = -2/4, se^2 = (1/3 + 4 * 17/30) / 16.
    #[test]
    fn paired_se_by_hand_with_a_one_sample_class() {
        let base = [
            rec("1", "na", "na"),
            rec("2", "na", "na"),
            rec("3", "na", "x"),
            rec("4", "nb", "nb"),
            rec("5", "nc", "nc"),
            rec("6", "nc", "x"),
        ];
        let new = [
            rec("1", "na", "x"),
            rec("2", "na", "na"),
            rec("3", "na", "na"),
            rec("4", "nb", "x"),
            rec("5", "nc", "nc"),
            rec("6", "nc", "x"),
        ];
        let w: BTreeMap<String, f64> = [("na".into(), 1.0), ("nb".into(), 2.0), ("nc".into(), 1.0)].into();
        let p = paired(&base, &new, &w);
        assert_eq!((p.samples, p.one_side_only), (6, 0));
        assert_eq!((p.top1.right_to_wrong, p.top1.wrong_to_right), (2, 1));
        assert!(close(p.top1.p_value, 1.0));
        let e = p.changes.top1_equal.unwrap();
        assert!(close(e.value, -1.0 / 3.0) && close(e.se, 0.1f64.sqrt()), "{e:?}");
        let wgt = p.changes.top1_weighted.unwrap();
        assert!(close(wgt.value, -0.5) && close(wgt.se, ((1.0 / 3.0 + 4.0 * 17.0 / 30.0) / 16.0f64).sqrt()), "{wgt:?}");
        // Top-5 holds top-1 here: the same numbers.
        assert_eq!(p.changes.top5_equal, p.changes.top1_equal);
        assert_eq!(
            p.flips.iter().map(|f| (f.id.as_str(), f.direction.as_str())).collect::<Vec<_>>(),
            [("1", "right_to_wrong"), ("3", "wrong_to_right"), ("4", "right_to_wrong")]
        );
        assert_eq!(p.classes.iter().map(|c| c.wnid.as_str()).collect::<Vec<_>>(), ["nb", "na"]);
    }

    /// One sample per class (the 1,000 sample photos): the classic paired se over all samples.
    #[test]
    fn one_sample_per_class_is_the_classic_paired_se() {
        let n = 1000;
        let mut base = Vec::new();
        let mut new = Vec::new();
        for i in 0..n {
            let w = format!("n{i:08}");
            let (b_right, n_right) = match i {
                0..35 => (true, false),
                35..45 => (false, true),
                45..800 => (true, true),
                _ => (false, false),
            };
            base.push(rec(&i.to_string(), &w, if b_right { &w } else { "x" }));
            new.push(rec(&i.to_string(), &w, if n_right { &w } else { "x" }));
        }
        let p = paired(&base, &new, &BTreeMap::new());
        let e = p.changes.top1_equal.unwrap();
        // D = (10 - 35) / 1000; s^2 = (45 - 1000 * 0.025^2) / 999; se = sqrt(s^2 / 1000).
        assert!(close(e.value, -0.025));
        assert!(close(e.se, ((45.0 - 0.625) / 999.0 / 1000.0f64).sqrt()), "{e:?}");
        assert!((e.se - 0.00666).abs() < 1e-5);
        assert!(p.changes.top1_weighted.is_none(), "no class has a weight");
        assert!(close(p.top1.p_value, 2.4708778460080794e-4));
    }

    #[test]
    fn only_samples_scored_on_both_sides_count() {
        let mut failed = rec("2", "na", "na");
        failed.status = Status::Failed;
        let p = paired(
            &[rec("1", "na", "na"), rec("2", "na", "na")],
            &[rec("1", "na", "x"), failed, rec("3", "na", "na")],
            &BTreeMap::new(),
        );
        assert_eq!((p.samples, p.one_side_only, p.top1.right_to_wrong), (1, 2, 1));
    }
}
