//! Baselines: compare a new result with a stored one, metric by metric, and flag regressions.
//!
//! For each model and suite present in both results, every headline metric's change
//! `new - baseline` is judged against its standard error. A change is a **regression** when the
//! drop exceeds both `tolerance_se` standard errors and the absolute floor `min_drop` (a
//! fraction: 0.005 is half a percentage point); an **improvement** symmetrically. A model or
//! suite present on one side only is listed, not compared.
//!
//! **Paired** (the default wherever possible): when both results have the predictions logs of a
//! model on a suite beside them (a run folder's `predictions/`, a merge's shard logs, the logs a
//! `score --log` result was made from) and both logs were made from the same suite content, the
//! two runs are compared sample by sample ([`crate::results::paired`]): the change and its paired
//! standard error over the samples scored on both sides, right -> wrong and wrong -> right counts
//! with McNemar's exact p-value, the samples that flipped and the classes that moved most.
//! **Unpaired** otherwise, saying why: the standard error of a difference of independent
//! estimates, `sqrt(se_baseline^2 + se_new^2)`, which overstates the noise of two runs on the same
//! samples and so errs on the side of not crying wolf.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::results::identity::Identity;
use crate::results::metrics::{Estimate, Headline};
use crate::results::paired::{paired, Paired};
use crate::results::paths::slug;
use crate::results::predlog::{read_log, read_log_lenient, Record, LOG_VERSION};
use crate::results::provenance::FileInfo;
use crate::results::result::{EvalResult, RunResult};

/// When a drop counts as a regression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    /// The drop must exceed this many standard errors of the difference...
    pub se: f64,
    /// ...and this absolute amount (a fraction; 0.005 = 0.5 percentage points).
    pub min_drop: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { se: 3.0, min_drop: 0.005 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Dropped by more than the tolerance.
    Regression,
    /// Rose by more than the tolerance.
    Improved,
    /// Within the tolerance.
    Unchanged,
    /// Missing on one side (no class present with a positive weight).
    NotComparable,
}

impl Verdict {
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Regression => "REGRESSION",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "ok",
            Verdict::NotComparable => "n/a",
        }
    }
}

/// The headline metrics, in table order: (key, label).
pub const METRICS: [(&str, &str); 4] = [
    ("top1_equal", "top-1 equal-wt"),
    ("top5_equal", "top-5 equal-wt"),
    ("top1_weighted", "top-1 LAION-wt"),
    ("top5_weighted", "top-5 LAION-wt"),
];

/// A headline metric by key.
pub fn metric(h: &Headline, key: &str) -> Option<Estimate> {
    match key {
        "top1_equal" => h.top1_equal,
        "top5_equal" => h.top5_equal,
        "top1_weighted" => h.top1_weighted,
        "top5_weighted" => h.top5_weighted,
        _ => None,
    }
}

/// One metric of one model on one suite, before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricChange {
    pub metric: String,
    pub label: String,
    pub baseline: Option<Estimate>,
    pub new: Option<Estimate>,
    /// `new - baseline`, with the standard error of the difference.
    pub change: Option<Estimate>,
    /// `change / se` (absent when the se is 0 or a side is missing).
    pub z: Option<f64>,
    pub verdict: Verdict,
    /// The test the verdict used: `paired` or `unpaired`.
    #[serde(default)]
    pub test: String,
}

/// One model on one suite, before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairChange {
    pub model: String,
    pub suite: String,
    pub metrics: Vec<MetricChange>,
    /// What else changed between the two (samples, suite content, model files).
    pub notes: Vec<String>,
    /// The sample-by-sample comparison, when both sides' predictions logs were found and made
    /// from the same suite content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired: Option<Paired>,
    /// Why the comparison is unpaired, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpaired_because: Option<String>,
}

impl PairChange {
    pub fn regressions(&self) -> impl Iterator<Item = &MetricChange> {
        self.metrics.iter().filter(|m| m.verdict == Verdict::Regression)
    }
}

/// Which result a side of the comparison is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Side {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_revision: Option<String>,
    pub shiftbench_version: String,
}

impl Side {
    pub fn of(path: &str, r: &RunResult) -> Side {
        Side {
            path: path.to_string(),
            run_id: r.run.as_ref().map(|i| i.id.clone()),
            started_at: r.run.as_ref().map(|i| i.started_at.clone()),
            git_revision: r.run.as_ref().and_then(|i| i.git_revision.clone()),
            shiftbench_version: r.shiftbench_version.clone(),
        }
    }
}

/// A model and suite present in one result only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unpaired {
    pub model: String,
    pub suite: String,
}

/// Everything `shiftbench compare` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub shiftbench_compare: u32,
    pub tolerance: Tolerance,
    pub baseline: Side,
    pub new: Side,
    pub pairs: Vec<PairChange>,
    pub only_in_baseline: Vec<Unpaired>,
    pub only_in_new: Vec<Unpaired>,
}

/// The version of the comparison's JSON. 2 added paired comparisons.
pub const COMPARE_VERSION: u32 = 2;

impl Comparison {
    /// How many metrics regressed.
    pub fn regressions(&self) -> usize {
        self.pairs.iter().map(|p| p.regressions().count()).sum()
    }

    pub fn improvements(&self) -> usize {
        self.pairs.iter().flat_map(|p| &p.metrics).filter(|m| m.verdict == Verdict::Improved).count()
    }

    /// One line: `2 regressions in 1 of 3 model/suite pairs (tolerance: 3 se and 0.50 points)`.
    pub fn summary(&self) -> String {
        let n = self.regressions();
        let bad = self.pairs.iter().filter(|p| p.regressions().next().is_some()).count();
        let tol =
            format!("tolerance: {} se and {:.2} points", fmt_num(self.tolerance.se), 100.0 * self.tolerance.min_drop);
        let mut s = if n == 0 {
            format!("no regression in {} model/suite pairs ({tol})", self.pairs.len())
        } else {
            format!(
                "{n} regression{} in {bad} of {} model/suite pairs ({tol})",
                if n == 1 { "" } else { "s" },
                self.pairs.len()
            )
        };
        let imp = self.improvements();
        if imp > 0 {
            s.push_str(&format!("; {imp} improvement{}", if imp == 1 { "" } else { "s" }));
        }
        if !self.only_in_baseline.is_empty() {
            s.push_str(&format!("; {} only in the baseline", self.only_in_baseline.len()));
        }
        if !self.only_in_new.is_empty() {
            s.push_str(&format!("; {} only in the new result", self.only_in_new.len()));
        }
        s
    }
}

/// `3`, `2.5`.
pub fn fmt_num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn judge(b: Option<Estimate>, n: Option<Estimate>, tol: &Tolerance) -> (Option<Estimate>, Option<f64>, Verdict) {
    let (Some(b), Some(n)) = (b, n) else { return (None, None, Verdict::NotComparable) };
    judge_change(n.minus(&b), tol)
}

/// The verdict on a change `d` (new - baseline, with its standard error).
fn judge_change(d: Estimate, tol: &Tolerance) -> (Option<Estimate>, Option<f64>, Verdict) {
    let z = (d.se > 0.0).then(|| d.value / d.se);
    let beyond = |x: f64| x > tol.min_drop && x > tol.se * d.se;
    let v = if beyond(-d.value) {
        Verdict::Regression
    } else if beyond(d.value) {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    };
    (Some(d), z, v)
}

fn notes(b: &EvalResult, n: &EvalResult, base: &RunResult, new: &RunResult) -> Vec<String> {
    let mut out = Vec::new();
    let (tb, tn) = (&b.totals, &n.totals);
    if tb.expected != tn.expected {
        out.push(format!("samples {} -> {}", tb.expected, tn.expected));
    }
    if tb.failed + tb.missing != tn.failed + tn.missing {
        out.push(format!("failed or missing {} -> {}", tb.failed + tb.missing, tn.failed + tn.missing));
    }
    if b.weights != n.weights {
        out.push(format!("weights {} -> {}", b.weights, n.weights));
    }
    let suite = |r: &RunResult| r.run.as_ref().and_then(|i| i.suites.iter().find(|s| s.name == b.suite).cloned());
    if let (Some(sb), Some(sn)) = (suite(base), suite(new)) {
        if sb.content_digest != sn.content_digest {
            out.push(format!("suite content changed ({} -> {})", short(&sb.content_digest), short(&sn.content_digest)));
        } else if sb.sha256 != sn.sha256 {
            out.push("suite definition changed".into());
        }
    }
    let model = |r: &RunResult| r.run.as_ref().and_then(|i| i.models.iter().find(|m| m.name == b.model).cloned());
    if let (Some(mb), Some(mn)) = (model(base), model(new)) {
        let sha = |f: &Option<FileInfo>| f.as_ref().and_then(|f| f.sha256.clone());
        if sha(&mb.model_file) != sha(&mn.model_file) {
            out.push("model file changed".into());
        }
        if mb.library.sha256 != mn.library.sha256 {
            out.push(format!("plugin library changed ({} -> {})", mb.plugin, mn.plugin));
        }
        if mb.card != mn.card {
            // Name what changed (`channel_order rgb -> bgr`), not only that something did.
            let mut what = Identity::of_card(&mn.card).changes_from(&Identity::of_card(&mb.card));
            if mb.card.max_batch != mn.card.max_batch {
                what.push(format!("max_batch {} -> {}", mb.card.max_batch, mn.card.max_batch));
            }
            if mb.card.name != mn.card.name {
                what.push(format!("name {} -> {}", mb.card.name, mn.card.name));
            }
            out.push(format!("model card changed: {}", what.join(", ")));
        }
    }
    out
}

/// The predictions logs of `model` on `suite` that a result at `path` was made from: the logs
/// in the run folder's `predictions/` (shard logs too), and the logs a merge or a `score --log`
/// recorded; read and concatenated. Returns the suite content digest and the records, or why
/// there are none: no log, a log that cannot be read, or logs cut short (fewer records than the
/// result counts samples; a torn last line is read up to it).
pub fn logs_of(path: &str, r: &RunResult, model: &str, suite: &str) -> Result<(String, Vec<Record>), String> {
    let p = Path::new(path);
    let dir = if p.is_dir() { p.to_path_buf() } else { p.parent().map(Path::to_path_buf).unwrap_or_default() };
    let mut candidates: Vec<PathBuf> = Vec::new();
    let stem = format!("{}__{}", slug(model), slug(suite));
    if let Ok(entries) = std::fs::read_dir(dir.join("predictions")) {
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| {
                let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                name == format!("{stem}.jsonl")
                    || (name.starts_with(&format!("{stem}.shard-")) && name.ends_with(".jsonl"))
            })
            .collect();
        found.sort();
        candidates.extend(found);
    }
    if let Some(info) = &r.run {
        let recorded = info.merged_logs.iter().cloned().chain(info.inputs.iter().map(|f| f.path.clone()));
        for l in recorded.filter(|l| l.ends_with(".jsonl")) {
            let lp = PathBuf::from(&l);
            let lp = if lp.is_file() { lp } else { dir.join(&lp) };
            if lp.is_file() && !candidates.contains(&lp) {
                candidates.push(lp);
            }
        }
    }
    let mut digest: Option<String> = None;
    let mut records = Vec::new();
    // Why a log beside it could not be used, said when none could.
    let mut unreadable: Vec<String> = Vec::new();
    let mut used: Vec<String> = Vec::new();
    for c in &candidates {
        let (h, recs) = match read_log(c) {
            Ok(x) => x,
            // A torn last line (a log cut mid-record): the whole records before it, which the
            // count below then finds short.
            Err(e) => match read_log_lenient(c) {
                Ok((Some(h), recs, _)) if h.shiftbench_log == LOG_VERSION => (h, recs),
                _ => {
                    unreadable.push(format!("the predictions log {} cannot be read ({e:#})", c.display()));
                    continue;
                }
            },
        };
        if h.model != model || h.suite != suite {
            continue;
        }
        used.push(c.display().to_string());
        match &digest {
            Some(d) if *d != h.suite_digest => {
                return Err(format!("its logs beside {path} disagree on the suite's content"))
            }
            _ => digest = Some(h.suite_digest.clone()),
        }
        records.extend(recs);
    }
    let counted = r.results.iter().find(|e| e.model == model && e.suite == suite).map(|e| e.totals.expected);
    match (digest, counted) {
        (Some(_), Some(m)) if (records.len() as u64) < m => Err(format!(
            "the predictions log {} is cut: it holds {} records, the result counts {m}",
            used.join(" + "),
            records.len()
        )),
        (Some(d), _) => Ok((d, records)),
        (None, _) if !unreadable.is_empty() => Err(unreadable.join("; ")),
        (None, _) => Err(format!("no predictions log of {model} on {suite} beside {path}")),
    }
}

/// The paired comparison of one model on one suite, or why there is none.
fn pair_up(
    (b, base, base_path): (&EvalResult, &RunResult, &str),
    (n, new, new_path): (&EvalResult, &RunResult, &str),
) -> Result<Paired, String> {
    let (db, rb) = logs_of(base_path, base, &b.model, &b.suite)?;
    let (dn, rn) = logs_of(new_path, new, &n.model, &n.suite)?;
    if db != dn {
        return Err(format!("the suite's content changed ({} -> {})", short(&db), short(&dn)));
    }
    let weights: BTreeMap<String, f64> = n.per_class.iter().map(|(w, c)| (w.clone(), c.weight)).collect();
    Ok(paired(&rb, &rn, &weights))
}

/// A paired change by metric key.
fn paired_change(p: &Paired, key: &str) -> Option<Estimate> {
    match key {
        "top1_equal" => p.changes.top1_equal,
        "top5_equal" => p.changes.top5_equal,
        "top1_weighted" => p.changes.top1_weighted,
        "top5_weighted" => p.changes.top5_weighted,
        _ => None,
    }
}

fn short(s: &str) -> &str {
    &s[..12.min(s.len())]
}

/// Compares `new` with `baseline`. Pairs keep the new result's order; pairs only in the baseline
/// follow in its order.
pub fn compare(
    baseline: &RunResult,
    new: &RunResult,
    baseline_path: &str,
    new_path: &str,
    tol: Tolerance,
) -> Comparison {
    let key = |r: &EvalResult| (r.model.clone(), r.suite.clone());
    let base: BTreeMap<(String, String), &EvalResult> = baseline.results.iter().map(|r| (key(r), r)).collect();
    let newer: BTreeMap<(String, String), &EvalResult> = new.results.iter().map(|r| (key(r), r)).collect();
    let mut pairs = Vec::new();
    let mut only_in_new = Vec::new();
    for n in &new.results {
        let Some(b) = base.get(&key(n)) else {
            only_in_new.push(Unpaired { model: n.model.clone(), suite: n.suite.clone() });
            continue;
        };
        let (paired, unpaired_because) = match pair_up((b, baseline, baseline_path), (n, new, new_path)) {
            Ok(p) => (Some(p), None),
            Err(why) => (None, Some(why)),
        };
        let metrics = METRICS
            .iter()
            .map(|(k, label)| {
                let (bv, nv) = (metric(&b.metrics, k), metric(&n.metrics, k));
                let ((change, z, verdict), test) = match (&paired, bv.and(nv)) {
                    (Some(p), Some(_)) => match paired_change(p, k) {
                        Some(d) => (judge_change(d, &tol), "paired"),
                        None => ((None, None, Verdict::NotComparable), "paired"),
                    },
                    _ => (judge(bv, nv, &tol), "unpaired"),
                };
                MetricChange {
                    metric: k.to_string(),
                    label: label.to_string(),
                    baseline: bv,
                    new: nv,
                    change,
                    z,
                    verdict,
                    test: test.to_string(),
                }
            })
            .collect();
        pairs.push(PairChange {
            model: n.model.clone(),
            suite: n.suite.clone(),
            metrics,
            notes: notes(b, n, baseline, new),
            paired,
            unpaired_because,
        });
    }
    let only_in_baseline = baseline
        .results
        .iter()
        .filter(|b| !newer.contains_key(&key(b)))
        .map(|b| Unpaired { model: b.model.clone(), suite: b.suite.clone() })
        .collect();
    Comparison {
        shiftbench_compare: COMPARE_VERSION,
        tolerance: tol,
        baseline: Side::of(baseline_path, baseline),
        new: Side::of(new_path, new),
        pairs,
        only_in_baseline,
        only_in_new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(value: f64, se: f64) -> Option<Estimate> {
        Some(Estimate { value, se })
    }

    #[test]
    fn both_the_se_tolerance_and_the_floor_must_be_exceeded() {
        let tol = Tolerance::default();
        // 4 points down, se of the difference 1 point: a regression.
        assert_eq!(judge(e(0.80, 0.00707), e(0.76, 0.00707), &tol).2, Verdict::Regression);
        // 4 points down but se 2 points: 2 se, noise.
        assert_eq!(judge(e(0.80, 0.01414), e(0.76, 0.01414), &tol).2, Verdict::Unchanged);
        // 0.3 points down with a tiny se: many se, but under the absolute floor.
        assert_eq!(judge(e(0.80, 0.0001), e(0.797, 0.0001), &tol).2, Verdict::Unchanged);
        // Up by as much: improved.
        assert_eq!(judge(e(0.76, 0.00707), e(0.80, 0.00707), &tol).2, Verdict::Improved);
        assert_eq!(judge(None, e(0.8, 0.01), &tol).2, Verdict::NotComparable);
        let (d, z, _) = judge(e(0.9, 0.03), e(0.8, 0.04), &tol);
        assert!((d.unwrap().se - 0.05).abs() < 1e-12);
        assert!((z.unwrap() + 2.0).abs() < 1e-9);
    }

    #[test]
    fn numbers() {
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(2.5), "2.5");
    }
}
