//! Effective robustness, as Taori et al. (2020, "Measuring Robustness to Natural Distribution
//! Shifts in Image Classification") define it and imagenet-testbed computes it, and model ranks.
//!
//! For a reference suite x and a shifted suite y, over the models that have a recall strictly
//! between 0 and 1 on both (others are left out, with the reason), when they give at least
//! [`MIN_MODELS`] different points (two models that predict alike count once: a line through two
//! points fits exactly and says nothing):
//!
//! - the line `logit(r_y) = intercept + slope * logit(r_x)` is fitted by ordinary least squares,
//!   `slope = sum (u - u_mean)(v - v_mean) / sum (u - u_mean)^2`, `intercept = v_mean - slope *
//!   u_mean`, with `u = logit(r_x)`, `v = logit(r_y)` and `logit(p) = ln(p / (1 - p))`;
//! - a model's effective robustness is `r_y - expit(intercept + slope * logit(r_x))`, with
//!   `expit(z) = 1 / (1 + e^-z)`: how much better (positive) or worse than the line through the
//!   other models it does on y, given its recall on x. Recalls are fractions, so is the result.
//! - its 95% interval is a percentile bootstrap over classes: each of `B` replicates draws the
//!   classes (the sorted union of the classes present on x or y for the models fitted) with
//!   replacement, the same draw for every model and both suites; recomputes every recall from the
//!   drawn classes (`sum m_c w_c r_c / sum m_c w_c`, `m_c` the times class c was drawn, `w_c` 1 for
//!   equal weighting or the class's weight); refits the line over the models whose recalls stay
//!   strictly between 0 and 1 (a replicate with fewer than [`MIN_MODELS`] different points is
//!   unusable, and counted); and recomputes each model's effective robustness. The interval is the 2.5% and
//!   97.5% quantiles of a model's values (linear interpolation between order statistics, numpy's
//!   default).
//!
//! Replicate `b` draws from ChaCha8 seeded with the fixed seed, on stream `b`, taking each class
//! index as `(next_u64 * C) >> 64`: the same numbers on any machine and at any thread count
//! (replicates run in parallel, each on its own stream, and are collected in order). Sums run
//! over the models in name order and the classes in wnid order, so the numbers do not depend on
//! the order of the results either (`run`, `merge` and `score` list them differently).
//!
//! This file is pure arithmetic over plain inputs ([`Scores`]); `RunResult` gathers them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Fewest models a line is fitted to (two points always lie on a line).
pub const MIN_MODELS: usize = 3;
/// Bootstrap replicates.
pub const REPLICATES: usize = 1000;
/// The bootstrap's fixed seed.
pub const SEED: u64 = 2020;
/// The confidence level of the interval.
pub const LEVEL: f64 = 0.95;

/// `ln(p / (1 - p))`; infinite at 0 and 1.
pub fn logit(p: f64) -> f64 {
    p.ln() - (-p).ln_1p()
}

/// `1 / (1 + e^-z)`, the inverse of [`logit`], without overflow for large `|z|`.
pub fn expit(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Ordinary least squares of `v` on `u`: `(slope, intercept)`, or None with fewer than two
/// points or when every `u` is the same.
pub fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    if points.len() < 2 || points.iter().all(|p| p.0 == points[0].0) {
        return None;
    }
    let n = points.len() as f64;
    let um = points.iter().map(|p| p.0).sum::<f64>() / n;
    let vm = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut suu, mut suv) = (0.0, 0.0);
    for &(u, v) in points {
        suu += (u - um) * (u - um);
        suv += (u - um) * (v - vm);
    }
    if suu <= 0.0 || !suu.is_finite() {
        return None;
    }
    let slope = suv / suu;
    Some((slope, vm - slope * um))
}

/// The line `logit(r_y) = intercept + slope * logit(r_x)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    pub slope: f64,
    pub intercept: f64,
    /// The models it was fitted to.
    pub models: usize,
}

impl Fit {
    /// The recall on y the line predicts for recall `x` on x.
    pub fn predict(&self, x: f64) -> f64 {
        expit(self.intercept + self.slope * logit(x))
    }
}

/// The line through `(r_x, r_y)` recalls (fractions strictly between 0 and 1), fitted in logit
/// space; None with fewer than [`MIN_MODELS`] distinct points (through two, a line fits exactly
/// and says nothing: two models with the same predictions count once), when every `r_x` is the
/// same, or when a recall is 0, 1 or not a number.
pub fn fit_logit(points: &[(f64, f64)]) -> Option<Fit> {
    if !points.iter().all(|&(x, y)| inside(x) && inside(y)) || distinct(points) < MIN_MODELS {
        return None;
    }
    let logits: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (logit(x), logit(y))).collect();
    let (slope, intercept) = least_squares(&logits)?;
    Some(Fit { slope, intercept, models: points.len() })
}

/// How many different points `points` holds.
pub fn distinct(points: &[(f64, f64)]) -> usize {
    let mut v: Vec<(u64, u64)> = points.iter().map(|(x, y)| (x.to_bits(), y.to_bits())).collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

fn inside(p: f64) -> bool {
    p > 0.0 && p < 1.0
}

/// The `q` quantile (0..=1) of `sorted` (ascending) by linear interpolation between order
/// statistics (numpy's default): `h = (n - 1) q`, `v[floor h] + (h - floor h)(v[floor h + 1] -
/// v[floor h])`. None when empty.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = last as f64 * q.clamp(0.0, 1.0);
    let i = (h.floor() as usize).min(last);
    let j = (i + 1).min(last);
    Some(sorted[i] + (h - i as f64) * (sorted[j] - sorted[i]))
}

/// Ranks, 1 for the highest value; equal values share the better rank ("1, 1, 3"); None (no
/// value) is not ranked.
pub fn ranks(values: &[Option<f64>]) -> Vec<Option<usize>> {
    values.iter().map(|v| v.map(|v| 1 + values.iter().flatten().filter(|&&o| o > v).count())).collect()
}

/// Which recall the fit is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Top-1, classes weighted equally.
    Top1Equal,
    /// Top-1, classes weighted by the suite's weights (LAION frequencies).
    Top1Weighted,
}

impl Metric {
    /// The name in `result.json` (`top1_equal`, `top1_weighted`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Metric::Top1Equal => "top1_equal",
            Metric::Top1Weighted => "top1_weighted",
        }
    }

    pub fn parse(s: &str) -> Option<Metric> {
        [Metric::Top1Equal, Metric::Top1Weighted].into_iter().find(|m| m.as_str() == s)
    }

    /// `equal-wt` or `LAION-wt`, as the tables say.
    pub fn label(&self) -> &'static str {
        match self {
            Metric::Top1Equal => "equal-wt",
            Metric::Top1Weighted => "LAION-wt",
        }
    }
}

/// One class of one model on one suite.
#[derive(Debug, Clone, Copy)]
pub struct ClassScore<'a> {
    pub wnid: &'a str,
    /// Samples that got a prediction, and how many of them were right (top-1).
    pub n: u64,
    pub top1: u64,
    /// The class's weight in the weighted recall.
    pub weight: f64,
}

/// One model on one suite, as the analysis needs it.
#[derive(Debug, Clone)]
pub struct Scores<'a> {
    pub model: &'a str,
    pub suite: &'a str,
    /// The model stopped with an error on this suite.
    pub error: bool,
    /// How the suite weighs classes (`equal`, `frequency`, `table`).
    pub weights: &'a str,
    pub top1_equal: Option<f64>,
    pub top1_weighted: Option<f64>,
    pub classes: Vec<ClassScore<'a>>,
}

impl Scores<'_> {
    fn recall(&self, m: Metric) -> Option<f64> {
        match m {
            Metric::Top1Equal => self.top1_equal,
            Metric::Top1Weighted => self.top1_weighted,
        }
    }
}

/// The bootstrap's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    pub replicates: usize,
    pub seed: u64,
    pub level: f64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap { replicates: REPLICATES, seed: SEED, level: LEVEL }
    }
}

/// How the intervals of an entry were made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapInfo {
    pub replicates: usize,
    pub seed: u64,
    pub level: f64,
    /// Classes resampled (present on x or y for a model fitted).
    pub classes: usize,
    /// Replicates in which fewer than [`MIN_MODELS`] models kept a recall strictly between 0 and
    /// 1 on both suites (or every model the same recall on x): no line, so left out.
    #[serde(default)]
    pub unusable: usize,
}

/// One model's effective robustness (a fraction: 0.02 is two points of recall above the line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRobustness {
    pub value: f64,
    /// The bootstrap interval; null when no replicate could place the model.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Replicates the interval is drawn from, when fewer than all (the model's recall reached 0
    /// or 1 in some, or some were unusable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicates: Option<usize>,
}

/// A model left out of a fit, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub model: String,
    pub reason: String,
}

/// The fit of suite `y_suite` against `x_suite` under one metric, and every model's effective
/// robustness (`result.json`'s `effective_robustness[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectiveRobustness {
    pub x_suite: String,
    pub y_suite: String,
    /// `top1_equal` or `top1_weighted`.
    pub metric: String,
    /// Absent when no line could be fitted (`no_fit` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<Fit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_fit: Option<String>,
    /// By model name: the models fitted.
    #[serde(default)]
    pub models: BTreeMap<String, ModelRobustness>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
    pub bootstrap: BootstrapInfo,
}

impl EffectiveRobustness {
    /// The metric, if this shiftbench knows it.
    pub fn metric(&self) -> Option<Metric> {
        Metric::parse(&self.metric)
    }
}

fn first_appearance<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    for i in items {
        if !v.contains(&i) {
            v.push(i);
        }
    }
    v
}

/// Effective robustness of every model on every suite after the first against the first (in the
/// order they appear in `cells`), top-1 equal-weighted and, when a suite of the pair weighs
/// classes other than equally, LAION-weighted. Empty with fewer than [`MIN_MODELS`] models or
/// fewer than two suites.
pub fn effective_robustness(cells: &[Scores], boot: &Bootstrap) -> Vec<EffectiveRobustness> {
    let models = first_appearance(cells.iter().map(|c| c.model));
    let suites = first_appearance(cells.iter().map(|c| c.suite));
    if models.len() < MIN_MODELS || suites.len() < 2 {
        return Vec::new();
    }
    let x = suites[0];
    let mut out = Vec::new();
    for &y in &suites[1..] {
        let weighted = cells.iter().any(|c| (c.suite == x || c.suite == y) && c.weights != "equal");
        out.push(entry(cells, &models, x, y, Metric::Top1Equal, boot));
        if weighted {
            out.push(entry(cells, &models, x, y, Metric::Top1Weighted, boot));
        }
    }
    out
}

/// A model's recalls on x and y, or why it is left out.
fn usable<'c, 'a>(
    cells: &'c [Scores<'a>],
    model: &str,
    x: &str,
    y: &str,
    m: Metric,
) -> Result<(&'c Scores<'a>, &'c Scores<'a>, f64, f64), String> {
    let find = |s: &str| cells.iter().find(|c| c.model == model && c.suite == s);
    let mut got = Vec::new();
    for s in [x, y] {
        let c = find(s).ok_or_else(|| format!("no result on {s}"))?;
        if c.error {
            return Err(format!("stopped with an error on {s}"));
        }
        let r = c.recall(m).ok_or_else(|| format!("no {} top-1 recall on {s}", m.label()))?;
        if !inside(r) {
            return Err(format!("recall {} on {s}: a recall of 0 or 1 has no logit", if r <= 0.0 { 0 } else { 1 }));
        }
        got.push((c, r));
    }
    Ok((got[0].0, got[1].0, got[0].1, got[1].1))
}

/// Per class of the resampled set, `w_c` and `w_c r_c` of one model on one suite (0 where the
/// class is absent or weighs nothing).
struct Dense {
    w: Vec<f64>,
    wr: Vec<f64>,
}

impl Dense {
    fn of(s: &Scores, m: Metric, index: &HashMap<&str, usize>) -> Dense {
        let (mut w, mut wr) = (vec![0.0; index.len()], vec![0.0; index.len()]);
        for c in s.classes.iter().filter(|c| c.n > 0) {
            let weight = match m {
                Metric::Top1Equal => 1.0,
                Metric::Top1Weighted if c.weight > 0.0 && c.weight.is_finite() => c.weight,
                Metric::Top1Weighted => 0.0,
            };
            let i = index[c.wnid];
            w[i] = weight;
            wr[i] = weight * (c.top1 as f64 / c.n as f64);
        }
        Dense { w, wr }
    }

    /// The recall over the classes drawn `counts` times each.
    fn recall(&self, counts: &[u32]) -> Option<f64> {
        let (mut sw, mut swr) = (0.0, 0.0);
        for ((&k, &w), &wr) in counts.iter().zip(&self.w).zip(&self.wr) {
            if k > 0 {
                sw += k as f64 * w;
                swr += k as f64 * wr;
            }
        }
        (sw > 0.0).then(|| swr / sw)
    }
}

/// How many times each of `n` classes is drawn in bootstrap replicate `replicate`: `n` draws
/// with replacement from ChaCha8 seeded with `seed`, on stream `replicate`.
pub fn resample(seed: u64, replicate: usize, n: usize) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(replicate as u64);
    let mut counts = vec![0u32; n];
    for _ in 0..n {
        counts[((rng.next_u64() as u128 * n as u128) >> 64) as usize] += 1;
    }
    counts
}

fn entry(cells: &[Scores], models: &[&str], x: &str, y: &str, m: Metric, boot: &Bootstrap) -> EffectiveRobustness {
    let mut fitted = Vec::new();
    let mut left_out = Vec::new();
    for &model in models {
        match usable(cells, model, x, y, m) {
            Ok(u) => fitted.push((model, u)),
            Err(reason) => left_out.push(LeftOut { model: model.to_string(), reason }),
        }
    }
    // In name order, so the sums (and so the last bits) do not depend on the order of the results.
    fitted.sort_by_key(|(model, _)| *model);
    let classes: BTreeSet<&str> = fitted
        .iter()
        .flat_map(|(_, (a, b, _, _))| a.classes.iter().chain(&b.classes))
        .filter(|c| c.n > 0)
        .map(|c| c.wnid)
        .collect();
    let mut e = EffectiveRobustness {
        x_suite: x.to_string(),
        y_suite: y.to_string(),
        metric: m.as_str().to_string(),
        fit: None,
        no_fit: None,
        models: BTreeMap::new(),
        left_out,
        bootstrap: BootstrapInfo {
            replicates: boot.replicates,
            seed: boot.seed,
            level: boot.level,
            classes: classes.len(),
            unusable: 0,
        },
    };
    if fitted.len() < MIN_MODELS {
        e.no_fit = Some(format!(
            "{} model(s) with a recall strictly between 0 and 1 on both suites; a fit needs {MIN_MODELS}",
            fitted.len()
        ));
        return e;
    }
    let points: Vec<(f64, f64)> = fitted.iter().map(|(_, (_, _, rx, ry))| (*rx, *ry)).collect();
    if distinct(&points) < MIN_MODELS {
        e.no_fit = Some(format!(
            "the {} models give only {} different pairs of recalls (models with the same predictions count once); a fit needs {MIN_MODELS}",
            points.len(),
            distinct(&points)
        ));
        return e;
    }
    let Some(fit) = fit_logit(&points) else {
        e.no_fit = Some(format!("every model has the same recall on {x}: no line can be fitted"));
        return e;
    };
    e.fit = Some(fit);

    let index: HashMap<&str, usize> = classes.iter().enumerate().map(|(i, w)| (*w, i)).collect();
    let dense: Vec<(Dense, Dense)> =
        fitted.iter().map(|(_, (a, b, _, _))| (Dense::of(a, m, &index), Dense::of(b, m, &index))).collect();
    let replicates: Vec<Option<Vec<Option<f64>>>> = (0..boot.replicates)
        .into_par_iter()
        .map(|b| {
            let counts = resample(boot.seed, b, index.len());
            let mut pts = Vec::with_capacity(dense.len());
            let mut which = Vec::with_capacity(dense.len());
            for (i, (dx, dy)) in dense.iter().enumerate() {
                if let (Some(xb), Some(yb)) = (dx.recall(&counts), dy.recall(&counts)) {
                    if inside(xb) && inside(yb) {
                        pts.push((xb, yb));
                        which.push(i);
                    }
                }
            }
            if pts.len() < MIN_MODELS {
                return None;
            }
            let f = fit_logit(&pts)?;
            let mut er = vec![None; dense.len()];
            for (&i, &(xb, yb)) in which.iter().zip(&pts) {
                er[i] = Some(yb - f.predict(xb));
            }
            Some(er)
        })
        .collect();
    e.bootstrap.unusable = replicates.iter().filter(|r| r.is_none()).count();
    let tail = (1.0 - boot.level) / 2.0;
    for (i, (model, (_, _, rx, ry))) in fitted.iter().enumerate() {
        let mut values: Vec<f64> = replicates.iter().flatten().filter_map(|r| r[i]).collect();
        values.sort_by(f64::total_cmp);
        e.models.insert(
            model.to_string(),
            ModelRobustness {
                value: ry - fit.predict(*rx),
                ci_low: percentile(&values, tail),
                ci_high: percentile(&values, 1.0 - tail),
                replicates: (values.len() < boot.replicates).then_some(values.len()),
            },
        );
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b}");
    }

    #[test]
    fn logit_and_expit_by_hand() {
        close(logit(0.5), 0.0, 0.0);
        close(logit(0.8), 4f64.ln(), 1e-15); // 0.8 / 0.2 = 4
        close(logit(0.25), -(3f64.ln()), 1e-15);
        close(expit(4f64.ln()), 0.8, 1e-15);
        close(expit(-(4f64.ln())), 0.2, 1e-15);
        close(expit(0.0), 0.5, 0.0);
        for p in [1e-9, 0.01, 0.3, 0.5, 0.77, 0.999] {
            close(expit(logit(p)), p, 1e-12);
        }
        assert_eq!(logit(1.0), f64::INFINITY);
        assert_eq!(logit(0.0), f64::NEG_INFINITY);
        // No overflow to NaN far out.
        assert_eq!(expit(-800.0), 0.0);
        assert_eq!(expit(800.0), 1.0);
    }

    #[test]
    fn least_squares_by_hand() {
        // (1,2), (2,3), (3,5): means 2 and 10/3, Suu = 2, Suv = (-1)(-4/3) + (1)(5/3) = 3.
        let (slope, intercept) = least_squares(&[(1.0, 2.0), (2.0, 3.0), (3.0, 5.0)]).unwrap();
        close(slope, 1.5, 1e-15);
        close(intercept, 1.0 / 3.0, 1e-15);
        assert!(least_squares(&[(1.0, 2.0)]).is_none());
        assert!(least_squares(&[(1.0, 2.0), (1.0, 3.0), (1.0, 4.0)]).is_none(), "vertical: no slope");
        assert!(fit_logit(&[(0.5, 0.5), (1.0, 0.6), (0.7, 0.2)]).is_none(), "recall 1 has no logit");
        assert!(fit_logit(&[(0.5, 0.5), (0.6, 0.6), (0.6, 0.6)]).is_none(), "two different points");
        assert!(fit_logit(&[(0.5, 0.5), (0.6, 0.6), (0.6, 0.7)]).is_some());
    }

    #[test]
    fn percentiles_and_ranks() {
        close(percentile(&[1.0, 2.0, 3.0, 4.0], 0.25).unwrap(), 1.75, 1e-15);
        let v: Vec<f64> = (0..=100).map(f64::from).collect();
        close(percentile(&v, 0.025).unwrap(), 2.5, 1e-12);
        close(percentile(&v, 0.975).unwrap(), 97.5, 1e-12);
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7.0], 0.975), Some(7.0));
        assert_eq!(
            ranks(&[Some(0.8), Some(0.6), Some(0.8), None, Some(0.9)]),
            [Some(2), Some(4), Some(2), None, Some(1)]
        );
    }

    /// `right` of 20 classes right (one sample each), the rest wrong; each class weighs `w(i)`.
    fn cell<'a>(model: &'a str, suite: &'a str, right: usize, w: fn(usize) -> f64) -> Scores<'a> {
        const WNIDS: [&str; 20] = [
            "n00000000",
            "n00000001",
            "n00000002",
            "n00000003",
            "n00000004",
            "n00000005",
            "n00000006",
            "n00000007",
            "n00000008",
            "n00000009",
            "n00000010",
            "n00000011",
            "n00000012",
            "n00000013",
            "n00000014",
            "n00000015",
            "n00000016",
            "n00000017",
            "n00000018",
            "n00000019",
        ];
        let classes: Vec<ClassScore> = WNIDS
            .iter()
            .enumerate()
            .map(|(i, wnid)| ClassScore { wnid, n: 1, top1: (i < right) as u64, weight: w(i) })
            .collect();
        let sw: f64 = classes.iter().map(|c| c.weight).sum();
        let weighted = classes.iter().map(|c| c.weight * c.top1 as f64).sum::<f64>() / sw;
        Scores {
            model,
            suite,
            error: false,
            weights: "equal",
            top1_equal: Some(right as f64 / 20.0),
            top1_weighted: Some(weighted),
            classes,
        }
    }

    fn one(_: usize) -> f64 {
        1.0
    }

    /// x recalls 1/2, 3/4, 9/10 (logits 0, L, 2L with L = ln 3).
    fn three(y: [usize; 3]) -> Vec<Scores<'static>> {
        let mut v = Vec::new();
        for (m, (rx, ry)) in ["a", "b", "c"].into_iter().zip([10, 15, 18].into_iter().zip(y)) {
            v.push(cell(m, "x", rx, one));
            v.push(cell(m, "y", ry, one));
        }
        v
    }

    #[test]
    fn three_models_on_a_line_fit_exactly() {
        // y recalls 1/4, 1/2, 3/4: logits -L, 0, L. The line is v = u - L: slope 1, intercept
        // -ln 3, and every model lies on it.
        let er = effective_robustness(&three([5, 10, 15]), &Bootstrap { replicates: 50, ..Bootstrap::default() });
        assert_eq!(er.len(), 1, "equal weights only: the weighted fit would be the same");
        let e = &er[0];
        assert_eq!((e.x_suite.as_str(), e.y_suite.as_str(), e.metric.as_str()), ("x", "y", "top1_equal"));
        let fit = e.fit.unwrap();
        close(fit.slope, 1.0, 1e-14);
        close(fit.intercept, -(3f64.ln()), 1e-14);
        assert_eq!(fit.models, 3);
        for m in e.models.values() {
            close(m.value, 0.0, 1e-15);
        }
    }

    #[test]
    fn three_models_off_the_line_by_hand() {
        // y recalls 1/4, 1/2, 9/10: logits -L, 0, 2L against 0, L, 2L. Means L and L/3,
        // Suu = 2 L^2, Suv = (-L)(-4L/3) + (L)(5L/3) = 3 L^2: slope 3/2, intercept L/3 - 3L/2 =
        // -7L/6. Predictions expit(-7L/6), expit(L/3), expit(11L/6), i.e. 3^k / (1 + 3^k) for
        // k = -7/6, 1/3, 11/6.
        let er = effective_robustness(&three([5, 10, 18]), &Bootstrap { replicates: 200, ..Bootstrap::default() });
        let e = &er[0];
        let l = 3f64.ln();
        let fit = e.fit.unwrap();
        close(fit.slope, 1.5, 1e-14);
        close(fit.intercept, -7.0 * l / 6.0, 1e-14);
        let pred = |k: f64| 3f64.powf(k) / (1.0 + 3f64.powf(k));
        close(e.models["a"].value, 0.25 - pred(-7.0 / 6.0), 1e-14);
        close(e.models["b"].value, 0.5 - pred(1.0 / 3.0), 1e-14);
        close(e.models["c"].value, 0.9 - pred(11.0 / 6.0), 1e-14);
        close(e.models["a"].value, 0.032_741_4, 1e-6);
        close(e.models["b"].value, -0.090_541_4, 1e-6);
        close(e.models["c"].value, 0.017_728_1, 1e-6);
        // The interval brackets the estimate.
        for m in e.models.values() {
            let (lo, hi) = (m.ci_low.unwrap(), m.ci_high.unwrap());
            assert!(lo <= m.value && m.value <= hi, "{m:?}");
        }
        assert_eq!(e.bootstrap.classes, 20);
    }

    #[test]
    fn the_bootstrap_is_reproducible_and_independent_of_threads() {
        let cells = three([5, 10, 18]);
        let boot = Bootstrap::default();
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| effective_robustness(&cells, &boot))
        };
        let one = on(1);
        assert_eq!(one, on(4), "the same to the last bit on 1 and 4 threads");
        assert_eq!(one, effective_robustness(&cells, &boot), "and run after run");
        let mut reversed = cells.clone();
        reversed.reverse();
        reversed.rotate_left(1); // x first again: the models in reverse order
        assert_eq!(reversed[0].suite, "x");
        assert_eq!(one, effective_robustness(&reversed, &boot), "and in any order of the models");
        let other = effective_robustness(&cells, &Bootstrap { seed: 7, ..boot });
        assert_eq!(other[0].fit, one[0].fit, "the point estimates do not depend on the seed");
        assert_ne!(other[0].models["a"].ci_low, one[0].models["a"].ci_low, "the intervals do");
        // The draws themselves: n draws with replacement, fixed by (seed, replicate).
        let c = resample(SEED, 0, 20);
        assert_eq!(c.iter().sum::<u32>(), 20);
        assert_eq!(c, resample(SEED, 0, 20));
        assert_ne!(c, resample(SEED, 1, 20));
    }

    #[test]
    fn models_without_a_usable_recall_are_left_out_saying_why() {
        let mut cells = three([5, 10, 18]);
        cells.push(cell("perfect", "x", 20, one));
        cells.push(cell("perfect", "y", 12, one));
        cells.push(cell("stopped", "x", 12, one));
        let mut s = cell("stopped", "y", 3, one);
        s.error = true;
        cells.push(s);
        cells.push(cell("absent", "x", 12, one));
        let er = effective_robustness(&cells, &Bootstrap { replicates: 20, ..Bootstrap::default() });
        let e = &er[0];
        let why: Vec<(&str, &str)> = e.left_out.iter().map(|l| (l.model.as_str(), l.reason.as_str())).collect();
        assert_eq!(
            why,
            [
                ("perfect", "recall 1 on x: a recall of 0 or 1 has no logit"),
                ("stopped", "stopped with an error on y"),
                ("absent", "no result on y"),
            ]
        );
        assert_eq!(e.models.len(), 3);
        // The same fit as without them.
        close(e.fit.unwrap().slope, 1.5, 1e-14);
        // Too few left: no fit, and why.
        let two: Vec<Scores> = cells.iter().filter(|c| c.model != "a").cloned().collect();
        let e = &effective_robustness(&two, &Bootstrap { replicates: 20, ..Bootstrap::default() })[0];
        assert!(e.fit.is_none() && e.models.is_empty());
        assert_eq!(
            e.no_fit.as_deref(),
            Some("2 model(s) with a recall strictly between 0 and 1 on both suites; a fit needs 3")
        );
        // Two models that predict alike give one point.
        let mut twins = three([5, 10, 18]);
        twins.push(cell("c-twin", "x", 18, one));
        twins.push(cell("c-twin", "y", 18, one));
        let e = &effective_robustness(&twins[2..], &Bootstrap { replicates: 20, ..Bootstrap::default() })[0];
        assert!(e.fit.is_none(), "b, c and c's twin are two points");
        assert!(e.no_fit.as_deref().unwrap().starts_with("the 3 models give only 2 different pairs"), "{e:?}");
        let e = &effective_robustness(&twins, &Bootstrap { replicates: 20, ..Bootstrap::default() })[0];
        assert_eq!(e.fit.unwrap().models, 4);
        close(e.models["c"].value, e.models["c-twin"].value, 0.0);
        // Fewer than three models or one suite: nothing at all.
        assert!(effective_robustness(&cells[..4], &Bootstrap::default()).is_empty());
    }

    #[test]
    fn weighted_suites_get_a_weighted_fit_from_the_class_weights() {
        // Weights 1 / (i + 1): the weighted recalls differ from the equal ones.
        fn zipf(i: usize) -> f64 {
            1.0 / (i as f64 + 1.0)
        }
        let mut cells = Vec::new();
        for (m, (rx, ry)) in ["a", "b", "c"].into_iter().zip([(10, 5), (15, 10), (18, 18)]) {
            for (s, r) in [("x", rx), ("y", ry)] {
                let mut c = cell(m, s, r, zipf);
                c.weights = "table";
                cells.push(c);
            }
        }
        let er = effective_robustness(&cells, &Bootstrap { replicates: 100, ..Bootstrap::default() });
        assert_eq!(er.iter().map(|e| e.metric.as_str()).collect::<Vec<_>>(), ["top1_equal", "top1_weighted"]);
        let w = &er[1];
        let pts: Vec<(f64, f64)> = ["a", "b", "c"]
            .iter()
            .map(|m| {
                let r = |s: &str| cells.iter().find(|c| c.model == *m && c.suite == s).unwrap().top1_weighted.unwrap();
                (r("x"), r("y"))
            })
            .collect();
        let fit = fit_logit(&pts).unwrap();
        assert_eq!(w.fit, Some(fit));
        close(w.models["b"].value, pts[1].1 - fit.predict(pts[1].0), 1e-15);
        // A replicate's recall is the weighted mean over the classes drawn: with every class drawn
        // once it is the weighted recall itself.
        let index: HashMap<&str, usize> = cells[0].classes.iter().enumerate().map(|(i, c)| (c.wnid, i)).collect();
        let d = Dense::of(&cells[0], Metric::Top1Weighted, &index);
        close(d.recall(&[1; 20]).unwrap(), cells[0].top1_weighted.unwrap(), 1e-15);
    }
}
