//! Comparing many architectures, for the reports: where each model loses from the first suite
//! to each other one, class by class ([`class_gaps`], written as `<stem>.class-gaps.csv` and
//! `.json`), and the lines printed under the models x suites table: the effective robustness
//! fits ([`robustness_lines`]) and the classes with the largest drops ([`drop_lines`]).
//!
//! A class gap is `recall_y - recall_x` (top-1, fractions) of one model on one class present in
//! both suites, with `se = sqrt(se_x^2 + se_y^2)` from the per-class Wilson standard errors (the
//! suites' samples are independent).

use std::cmp::Ordering;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::report::table::{fit, models_in_order, suites_in_order, summary_table_with};
use crate::results::result::EvalResult;
use crate::results::robustness::EffectiveRobustness;

/// One model's top-1 recall on one class, on suite x and on suite y, and the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassGap {
    pub model: String,
    pub x_suite: String,
    pub y_suite: String,
    pub wnid: String,
    pub n_x: u64,
    pub recall_x: f64,
    pub se_x: f64,
    pub n_y: u64,
    pub recall_y: f64,
    pub se_y: f64,
    /// `recall_y - recall_x`: negative where the model loses on y.
    pub diff: f64,
    /// `sqrt(se_x^2 + se_y^2)`.
    pub se: f64,
}

/// The per-class gaps of a result (`<stem>.class-gaps.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassGaps {
    /// The version of this file's schema.
    pub shiftbench_class_gaps: u32,
    /// The recall compared: `top1`.
    pub metric: String,
    pub gaps: Vec<ClassGap>,
}

/// Per model (in order), per suite after the first (in order), per class present in both (wnid
/// order): its top-1 recall on the first suite and on that suite. Results that stopped with an
/// error are left out.
pub fn class_gaps(results: &[EvalResult]) -> Vec<ClassGap> {
    let suites = suites_in_order(results);
    let Some((&x, ys)) = suites.split_first() else { return Vec::new() };
    let find = |m: &str, s: &str| results.iter().find(|r| r.model == m && r.suite == s && r.error.is_none());
    let mut out = Vec::new();
    for m in models_in_order(results) {
        let Some(a) = find(m, x) else { continue };
        for &y in ys {
            let Some(b) = find(m, y) else { continue };
            for (wnid, ca) in &a.per_class {
                let Some(cb) = b.per_class.get(wnid) else { continue };
                let (Some(rx), Some(sx), Some(ry), Some(sy)) = (ca.recall_top1, ca.se_top1, cb.recall_top1, cb.se_top1)
                else {
                    continue;
                };
                out.push(ClassGap {
                    model: m.to_string(),
                    x_suite: x.to_string(),
                    y_suite: y.to_string(),
                    wnid: wnid.clone(),
                    n_x: ca.counts.n,
                    recall_x: rx,
                    se_x: sx,
                    n_y: cb.counts.n,
                    recall_y: ry,
                    se_y: sy,
                    diff: ry - rx,
                    se: (sx * sx + sy * sy).sqrt(),
                });
            }
        }
    }
    out
}

/// The gaps as CSV (fractions to six decimals), a row per model, suite pair and class.
pub fn gaps_csv(gaps: &[ClassGap]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "model", "x_suite", "y_suite", "wnid", "n_x", "recall_x", "se_x", "n_y", "recall_y", "se_y", "diff", "se",
    ])?;
    let f = |v: f64| format!("{v:.6}");
    for g in gaps {
        w.write_record([
            g.model.clone(),
            g.x_suite.clone(),
            g.y_suite.clone(),
            g.wnid.clone(),
            g.n_x.to_string(),
            f(g.recall_x),
            f(g.se_x),
            g.n_y.to_string(),
            f(g.recall_y),
            f(g.se_y),
            f(g.diff),
            f(g.se),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// The gaps as JSON ([`ClassGaps`], every digit kept).
pub fn gaps_json(gaps: &[ClassGap]) -> Result<String> {
    let doc = ClassGaps { shiftbench_class_gaps: 1, metric: "top1".into(), gaps: gaps.to_vec() };
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}

/// Largest drop first: by the change, then by how many standard errors it is, then by wnid.
fn by_drop(a: &&ClassGap, b: &&ClassGap) -> Ordering {
    a.diff.total_cmp(&b.diff).then((a.diff / a.se).total_cmp(&(b.diff / b.se))).then(a.wnid.cmp(&b.wnid))
}

/// Most models [`drop_lines`] lists per suite pair (the files have them all).
pub const DROP_LINES_MODELS: usize = 12;

/// Per suite pair, a line per model (at most [`DROP_LINES_MODELS`]): how many classes got worse
/// and better, the mean change, and its `per_model` largest drops (percent, ± se).
pub fn drop_lines(gaps: &[ClassGap], per_model: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for g in gaps {
        if !pairs.contains(&(g.x_suite.as_str(), g.y_suite.as_str())) {
            pairs.push((&g.x_suite, &g.y_suite));
        }
    }
    for (x, y) in pairs {
        out.push(format!("per-class top-1 recall, {x} -> {y}: the classes each model loses most (percent, ± se)"));
        let mut models: Vec<&str> = Vec::new();
        for g in gaps.iter().filter(|g| g.x_suite == x && g.y_suite == y) {
            if !models.contains(&g.model.as_str()) {
                models.push(&g.model);
            }
        }
        for m in models.iter().take(DROP_LINES_MODELS) {
            let mine: Vec<&ClassGap> =
                gaps.iter().filter(|g| g.model == *m && g.x_suite == x && g.y_suite == y).collect();
            let worse = mine.iter().filter(|g| g.diff < 0.0).count();
            let better = mine.iter().filter(|g| g.diff > 0.0).count();
            let mean = mine.iter().map(|g| g.diff).sum::<f64>() / mine.len() as f64;
            let mut drops: Vec<&ClassGap> = mine.iter().copied().filter(|g| g.diff < 0.0).collect();
            drops.sort_by(by_drop);
            let shown: Vec<String> = drops
                .iter()
                .take(per_model)
                .map(|g| {
                    format!(
                        "{} {:.1} -> {:.1} ({:+.1} ± {:.1})",
                        g.wnid,
                        100.0 * g.recall_x,
                        100.0 * g.recall_y,
                        100.0 * g.diff,
                        100.0 * g.se
                    )
                })
                .collect();
            out.push(format!(
                "  {m}: {worse} of {} classes worse, {better} better (mean {:+.2}){}{}",
                mine.len(),
                100.0 * mean,
                if shown.is_empty() { "" } else { "; largest drops: " },
                shown.join(", ")
            ));
        }
        if models.len() > DROP_LINES_MODELS {
            out.push(format!(
                "  ... and {} more models (every class of every model in the class-gaps report)",
                models.len() - DROP_LINES_MODELS
            ));
        }
    }
    out
}

/// A line per fit (its line in logit space, the models it was fitted to, the bootstrap), then
/// the models left out and why, or why there is no fit.
pub fn robustness_lines(er: &[EffectiveRobustness]) -> Vec<String> {
    let mut out = Vec::new();
    for e in er {
        let label = e.metric().map(|m| m.label()).unwrap_or(e.metric.as_str());
        let what = format!("effective robustness, top-1 {label}, {} -> {}", e.x_suite, e.y_suite);
        match &e.fit {
            Some(f) => out.push(format!(
                "{what}: logit(y) = {:.4} {} {:.4} logit(x) over {} models; {:.0}% intervals from {} bootstrap resamples of {} classes (seed {}{})",
                f.intercept,
                if f.slope < 0.0 { "-" } else { "+" },
                f.slope.abs(),
                f.models,
                100.0 * e.bootstrap.level,
                e.bootstrap.replicates,
                e.bootstrap.classes,
                e.bootstrap.seed,
                match e.bootstrap.unusable {
                    0 => String::new(),
                    n => format!(", {n} unusable"),
                }
            )),
            None => out.push(format!("{what}: no fit: {}", e.no_fit.as_deref().unwrap_or("unknown"))),
        }
        for l in &e.left_out {
            out.push(format!("  left out: {} ({})", l.model, l.reason));
        }
    }
    out
}

/// What follows the main table when the result has two suites or more: the models x suites
/// table (ranks, drops, effective robustness), the fits' lines and each model's largest
/// per-class drops. None with one suite.
pub fn summary_section(results: &[EvalResult], er: &[EffectiveRobustness], width: Option<u16>) -> Option<String> {
    if suites_in_order(results).len() < 2 {
        return None;
    }
    let mut t = summary_table_with(results, er);
    fit(&mut t, width);
    let mut s = t.to_string();
    s.push('\n');
    for l in robustness_lines(er).into_iter().chain(drop_lines(&class_gaps(results), 3)) {
        s.push_str(&l);
        s.push('\n');
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::results::metrics::ClassCounts;
    use crate::results::tally::{ClassStatus, Tally};

    fn result(model: &str, suite: &str, per_class: &[(&str, u64, u64)]) -> EvalResult {
        let mut t = Tally::default();
        for &(w, n, top1) in per_class {
            t.counts.insert(w.into(), ClassCounts { n, top1, top5: n });
            t.status.insert(w.into(), ClassStatus { expected: n, evaluated: n, failed: 0, missing: 0 });
        }
        EvalResult::from_tally(model, suite, "equal", &t, &BTreeMap::new())
    }

    #[test]
    fn gaps_by_hand() {
        let results = vec![
            result("m", "x", &[("n01", 10, 8), ("n02", 4, 1), ("n03", 5, 5)]),
            result("m", "y", &[("n01", 10, 2), ("n02", 4, 3), ("n04", 3, 3)]),
        ];
        let g = class_gaps(&results);
        // n03 and n04 are in one suite only.
        assert_eq!(g.iter().map(|g| g.wnid.as_str()).collect::<Vec<_>>(), ["n01", "n02"]);
        let (sx, sy) = (crate::results::metrics::wilson_se(8, 10), crate::results::metrics::wilson_se(2, 10));
        assert!((g[0].diff - (0.2 - 0.8)).abs() < 1e-15);
        assert!((g[0].se - (sx * sx + sy * sy).sqrt()).abs() < 1e-15);
        let lines = drop_lines(&g, 3);
        assert_eq!(lines[0], "per-class top-1 recall, x -> y: the classes each model loses most (percent, ± se)");
        assert!(lines[1].starts_with(
            "  m: 1 of 2 classes worse, 1 better (mean -5.00); largest drops: n01 80.0 -> 20.0 (-60.0 ± "
        ));
        let csv = gaps_csv(&g).unwrap();
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.lines().nth(1).unwrap().starts_with("m,x,y,n01,10,0.800000,"), "{csv}");
        let back: ClassGaps = serde_json::from_str(&gaps_json(&g).unwrap()).unwrap();
        assert_eq!(back.gaps, g);
    }
}
