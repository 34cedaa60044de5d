//! The history itself: one [`RunPoint`] per run, oldest first, and per model and suite a
//! [`Series`] of [`Point`]s, each compared with the run before it; [`history`] reads the runs and
//! [`build`] builds it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

use crate::report::compare::{compare, Comparison, Tolerance, Verdict};
use crate::results::metrics::Estimate;
use crate::results::result::RunResult;

/// The version of the history's JSON.
pub const HISTORY_VERSION: u32 = 1;

/// One run of the series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPoint {
    /// The folder or file given, as given: what tables and the page name the run by.
    pub path: String,
    /// The run's start time, else the folder's name (kept for readers of older histories; two
    /// runs can share a start time, so nothing is named by it alone).
    pub label: String,
    /// When the run started, if its result recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_revision: Option<String>,
}

/// One model on one suite in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Index into [`History::runs`].
    pub run: usize,
    pub top1_equal: Option<Estimate>,
    pub top1_weighted: Option<Estimate>,
    /// Against the last run before it in which this model has numbers on this suite (absent for
    /// its first such run): the worst verdict over the four headline recalls. When that is not
    /// the run just before, `notes` says which run it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// The test behind the verdict: `paired` or `unpaired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// The top-1 equal-weighted change against the run before it, with the test's se.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Estimate>,
    /// The metrics that regressed (labels).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regressed: Vec<String>,
    /// The model stopped with an error on this suite in this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What changed against the run before it besides the numbers, as `compare` notes it
    /// (`model card changed: channel_order rgb -> bgr`, `samples 400 -> 380`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The model's speed in this run (all its suites), when the run recorded it: images per
    /// second end to end and milliseconds per image in the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_ms_per_image: Option<f64>,
}

/// One model on one suite across the runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub model: String,
    pub suite: String,
    pub points: Vec<Point>,
    /// The first run (index into [`History::runs`]) that regressed against the run before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_regression: Option<usize>,
}

/// Everything `shiftbench history` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub shiftbench_history: u32,
    pub tolerance: Tolerance,
    pub runs: Vec<RunPoint>,
    pub series: Vec<Series>,
}

impl RunPoint {
    /// The path given with the run's start time when recorded
    /// (`nights/2025-01-02 (2025-01-02T03:00:00Z)`).
    pub fn name(&self) -> String {
        match &self.started_at {
            Some(t) => format!("{} ({t})", self.path),
            None => self.path.clone(),
        }
    }

    /// A short name for a plot's axis: the folder given (or, for a result file, the folder
    /// holding it), as the user named it.
    pub fn short_name(&self) -> String {
        let p = Path::new(self.path.trim_end_matches(['/', '\\']));
        let is_file = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let folder = if is_file { p.parent().filter(|d| !d.as_os_str().is_empty()) } else { Some(p) };
        folder
            .or(Some(p))
            .and_then(Path::file_name)
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.clone())
    }
}

impl History {
    /// The series whose newest point (in the newest run) regressed against the run before it.
    pub fn newest_regressions(&self) -> Vec<&Series> {
        let last = self.runs.len().saturating_sub(1);
        self.series
            .iter()
            .filter(|s| s.points.last().is_some_and(|p| p.run == last && p.verdict == Some(Verdict::Regression)))
            .collect()
    }

    /// One line: how many series, which regressed first where, and the newest run's verdict (or,
    /// with one run, that there is nothing to compare it with yet).
    pub fn summary(&self) -> String {
        let newest = self.newest_regressions();
        let ever: Vec<String> = self
            .series
            .iter()
            .filter_map(|s| {
                s.first_regression
                    .map(|i| format!("{} on {} first regressed in {}", s.model, s.suite, self.runs[i].path))
            })
            .collect();
        let runs = match self.runs.len() {
            1 => "1 run".to_string(),
            n => format!("{n} runs"),
        };
        let mut s = format!("{runs}, {} model/suite series", self.series.len());
        if !ever.is_empty() {
            let _ = write!(s, "; {}", ever.join("; "));
        }
        match newest.len() {
            _ if self.runs.len() == 1 => {
                s.push_str("; nothing to compare with yet (each run is compared with the run before it)")
            }
            0 => s.push_str("; the newest run did not regress"),
            n => {
                let _ = write!(s, "; the newest run regressed in {n} series");
            }
        }
        s
    }
}

/// Reads the runs (folders holding `result.json`, or result files), oldest first, and builds the
/// history; a missing or unreadable run is an error naming it.
pub fn history(paths: &[PathBuf], tol: Tolerance) -> Result<History> {
    if paths.is_empty() {
        return Err(anyhow!("give the run folders (or result files) to follow, oldest first"));
    }
    let mut results = Vec::new();
    for p in paths {
        if !p.exists() {
            return Err(anyhow!("run {} does not exist", p.display()));
        }
        let r = RunResult::read(p).with_context(|| format!("run {}", p.display()))?;
        results.push((p.display().to_string(), r));
    }
    Ok(build(&results, tol))
}

/// The history of runs given as (path, result), oldest first.
pub fn build(results: &[(String, RunResult)], tol: Tolerance) -> History {
    let runs = results
        .iter()
        .map(|(path, r)| {
            let label = r.run.as_ref().map(|i| i.started_at.clone()).unwrap_or_else(|| {
                Path::new(path).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or(path.clone())
            });
            RunPoint {
                path: path.clone(),
                label,
                started_at: r.run.as_ref().map(|i| i.started_at.clone()),
                run_id: r.run.as_ref().map(|i| i.id.clone()),
                git_revision: r.run.as_ref().and_then(|i| i.git_revision.clone()),
            }
        })
        .collect();
    // Each model on each suite is compared with the last run before it in which it has numbers
    // (a night whose model failed to load leaves no baseline, so the night after it is compared
    // with the last good one, not left without a verdict). Comparisons are made once per pair of
    // runs.
    let mut comparisons: BTreeMap<(usize, usize), Comparison> = BTreeMap::new();
    let mut last_with_numbers: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut series: Vec<Series> = Vec::new();
    for (i, (_, r)) in results.iter().enumerate() {
        for e in &r.results {
            let at = match series.iter().position(|s| s.model == e.model && s.suite == e.suite) {
                Some(at) => at,
                None => {
                    series.push(Series {
                        model: e.model.clone(),
                        suite: e.suite.clone(),
                        points: Vec::new(),
                        first_regression: None,
                    });
                    series.len() - 1
                }
            };
            let against = last_with_numbers.get(&(e.model.as_str(), e.suite.as_str())).copied();
            if e.error.is_none() && e.metrics.top1_equal.is_some() {
                last_with_numbers.insert((e.model.as_str(), e.suite.as_str()), i);
            }
            let pair = against.and_then(|j| {
                let c = comparisons.entry((j, i)).or_insert_with(|| {
                    let ((bp, b), (np, n)) = (&results[j], &results[i]);
                    compare(b, n, bp, np, tol)
                });
                c.pairs.iter().find(|p| p.model == e.model && p.suite == e.suite).cloned()
            });
            let pair = pair.as_ref();
            let verdict = pair.map(|p| {
                let vs: Vec<Verdict> = p.metrics.iter().map(|m| m.verdict).collect();
                if vs.contains(&Verdict::Regression) {
                    Verdict::Regression
                } else if vs.contains(&Verdict::Improved) {
                    Verdict::Improved
                } else if vs.iter().all(|v| *v == Verdict::NotComparable) {
                    Verdict::NotComparable
                } else {
                    Verdict::Unchanged
                }
            });
            let s = &mut series[at];
            if verdict == Some(Verdict::Regression) && s.first_regression.is_none() {
                s.first_regression = Some(i);
            }
            let speed =
                r.run.as_ref().and_then(|i| i.models.iter().find(|m| m.name == e.model)).and_then(|m| m.speed.as_ref());
            s.points.push(Point {
                run: i,
                top1_equal: e.metrics.top1_equal,
                top1_weighted: e.metrics.top1_weighted,
                verdict,
                test: pair.and_then(|p| p.metrics.first().map(|m| m.test.clone())),
                change: pair.and_then(|p| p.metrics.first().and_then(|m| m.change)),
                regressed: pair.map(|p| p.regressions().map(|m| m.label.clone()).collect()).unwrap_or_default(),
                error: e.error.clone(),
                notes: {
                    let mut notes = pair.map(|p| p.notes.clone()).unwrap_or_default();
                    if let Some(j) = against.filter(|&j| j + 1 < i) {
                        notes.insert(0, format!("compared with {}, the last run with numbers", results[j].0));
                    }
                    notes
                },
                images_per_second: speed.map(|x| x.images_per_second),
                model_ms_per_image: speed.map(|x| x.model_ms_per_image),
            });
        }
    }
    History { shiftbench_history: HISTORY_VERSION, tolerance: tol, runs, series }
}

/// One line per point whose comparison with the run before it noted a change besides the
/// numbers: `model on suite in run: note; note`.
pub fn note_lines(h: &History) -> Vec<String> {
    let mut out = Vec::new();
    for s in &h.series {
        for p in s.points.iter().filter(|p| !p.notes.is_empty()) {
            out.push(format!("{} on {} in {}: {}", s.model, s.suite, h.runs[p.run].path, p.notes.join("; ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::weights::Weights;
    use crate::results::predlog::{Record, Status};
    use crate::results::result::EvalResult;
    use crate::results::tally::Tally;

    /// A run of model m on suite s: `right` of 200 samples (2 classes) predicted right.
    fn run(right: usize) -> RunResult {
        let records: Vec<Record> = (0..200)
            .map(|i| {
                let wnid = if i % 2 == 0 { "n01440764" } else { "n01443537" };
                let top = if i < right { wnid } else { "n01484850" };
                Record { top: vec![top.into()], scores: vec![1.0], ..Record::of(&format!("{i}"), wnid, Status::Ok) }
            })
            .collect();
        RunResult::new(vec![EvalResult::weighted("m", "s", &Weights::Equal, &Tally::from_records(&records))])
    }

    #[test]
    fn a_night_after_an_error_row_is_compared_with_the_last_night_with_numbers() {
        let failed =
            RunResult::new(vec![EvalResult::weighted("m", "s", &Weights::Equal, &Tally::default())
                .with_error("could not load".into(), 200)]);
        let runs = vec![("n1".to_string(), run(180)), ("n2".to_string(), failed), ("n3".to_string(), run(120))];
        let h = build(&runs, Tolerance::default());
        let p = &h.series[0].points;
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].verdict, Some(Verdict::NotComparable), "an error row has no numbers to judge");
        assert_eq!(p[2].verdict, Some(Verdict::Regression), "night 3 against night 1: {:?}", p[2]);
        assert!(p[2].notes[0].contains("compared with n1, the last run with numbers"), "{:?}", p[2].notes);
        assert_eq!(h.series[0].first_regression, Some(2));
        // Consecutive nights say nothing of the kind.
        let h = build(&[("a".to_string(), run(180)), ("b".to_string(), run(120))], Tolerance::default());
        assert_eq!(h.series[0].points[1].verdict, Some(Verdict::Regression));
        assert!(h.series[0].points[1].notes.iter().all(|n| !n.contains("compared with")));
    }
}
