//! Results: one model on one suite, computed from a tally; the JSON result file; the terminal table.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};
use serde::{Deserialize, Serialize};

use crate::metrics::{ClassCounts, Estimate, Headline, TopK};
use crate::predlog::{ClassStatus, Tally};

pub const RESULT_VERSION: u32 = 1;
/// Largest result file read.
pub const MAX_RESULT_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerClass {
    #[serde(flatten)]
    pub status: ClassStatus,
    #[serde(flatten)]
    pub counts: ClassCounts,
    pub recall_top1: Option<f64>,
    pub se_top1: Option<f64>,
    pub recall_top5: Option<f64>,
    pub se_top5: Option<f64>,
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub id: String,
    pub reason: String,
}

/// One model on one suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    pub model: String,
    pub suite: String,
    /// How classes are weighted in the weighted columns (`equal` or `frequency`).
    pub weights: String,
    pub totals: ClassStatus,
    pub classes_present: usize,
    pub metrics: Headline,
    pub per_class: BTreeMap<String, PerClass>,
    /// Every sample that failed or is missing, with the reason.
    pub problems: Vec<Problem>,
    /// Set when the model could not be loaded or stopped (crashed, hung, panicked, broke the
    /// interface) on this suite: why. Then `metrics` are all null (the samples scored before the
    /// stop are still counted in `totals` and `per_class`), and `totals.expected` is the suite's
    /// size, so `expected - evaluated - failed - missing` samples were not evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl EvalResult {
    /// `weights` maps each class to its weight (0 or absent: not counted in weighted recall).
    pub fn from_tally(model: &str, suite: &str, weights_kind: &str, tally: &Tally, weights: &BTreeMap<String, f64>) -> EvalResult {
        let metrics = Headline::compute(&tally.counts, weights);
        let per_class = tally
            .status
            .iter()
            .map(|(wnid, st)| {
                let c = tally.counts.get(wnid).copied().unwrap_or_default();
                let has = c.n > 0;
                (
                    wnid.clone(),
                    PerClass {
                        status: *st,
                        counts: c,
                        recall_top1: has.then(|| c.recall(TopK::Top1)),
                        se_top1: has.then(|| c.se(TopK::Top1)),
                        recall_top5: has.then(|| c.recall(TopK::Top5)),
                        se_top5: has.then(|| c.se(TopK::Top5)),
                        weight: weights.get(wnid).copied().unwrap_or(0.0),
                    },
                )
            })
            .collect();
        EvalResult {
            model: model.to_string(),
            suite: suite.to_string(),
            weights: weights_kind.to_string(),
            totals: tally.total,
            classes_present: tally.counts.values().filter(|c| c.n > 0).count(),
            metrics,
            per_class,
            problems: tally.problems.iter().map(|(id, reason)| Problem { id: id.clone(), reason: reason.clone() }).collect(),
            error: None,
        }
    }

    /// Marks the result as stopped by `error` on a suite of `expected` samples: metrics from a
    /// partial run would be silently wrong, so they are dropped.
    pub fn with_error(mut self, error: String, expected: usize) -> EvalResult {
        self.error = Some(error);
        self.metrics = Headline { top1_equal: None, top5_equal: None, top1_weighted: None, top5_weighted: None };
        self.totals.expected = self.totals.expected.max(expected as u64);
        self
    }

    /// Samples of the suite with no record (the model stopped before them).
    pub fn not_evaluated(&self) -> u64 {
        let t = &self.totals;
        t.expected.saturating_sub(t.evaluated + t.failed + t.missing)
    }
}

/// The JSON result file of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub shiftbench_result: u32,
    pub shiftbench_version: String,
    pub results: Vec<EvalResult>,
}

impl RunResult {
    pub fn new(results: Vec<EvalResult>) -> RunResult {
        RunResult { shiftbench_result: RESULT_VERSION, shiftbench_version: env!("CARGO_PKG_VERSION").into(), results }
    }

    /// Writes the result atomically (a temporary file renamed into place).
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &serde_json::to_vec_pretty(self)?)
    }

    /// Reads a result file, refusing what is not one (with the reason) rather than guessing.
    pub fn read(path: &Path) -> Result<RunResult> {
        let bytes = crate::safeio::read_bounded(path, MAX_RESULT_BYTES).with_context(|| format!("cannot read result {}", path.display()))?;
        Self::from_slice(&bytes).with_context(|| format!("{} is not a shiftbench result", path.display()))
    }

    /// Parses a result file's bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<RunResult> {
        #[derive(Deserialize)]
        struct Version {
            shiftbench_result: u32,
        }
        let v: Version = serde_json::from_slice(bytes)?;
        if v.shiftbench_result != RESULT_VERSION {
            anyhow::bail!("result version {} is not supported (this shiftbench reads {RESULT_VERSION})", v.shiftbench_result);
        }
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// crash never leaves a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".{}.tmp{}", path.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        // On disk before the rename, so a power cut leaves the old file or the new one, whole.
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", tmp.display()));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot move {} into place", path.display()));
    }
    // Make the rename itself durable (best effort: not every platform can sync a folder).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// `80.42 ± 0.17` (percent).
pub fn fmt_est(e: Option<Estimate>) -> String {
    match e {
        Some(e) => format!("{:.2} ± {:.2}", 100.0 * e.value, 100.0 * e.se),
        None => "n/a".into(),
    }
}

fn fmt_drop(a: Option<Estimate>, b: Option<Estimate>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => {
            let d = b.minus(&a);
            format!("{:+.2} ± {:.2}", 100.0 * d.value, 100.0 * d.se)
        }
        _ => "n/a".into(),
    }
}

/// The terminal table: a row per model and suite (recall in percent, ± one standard error),
/// then for each model with several suites a row with the change from its first suite to each
/// other one (the drop).
pub fn table(results: &[EvalResult]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(vec![
        "model",
        "suite",
        "evaluated / expected",
        "classes",
        "top-1 equal-wt",
        "top-5 equal-wt",
        "top-1 LAION-wt",
        "top-5 LAION-wt",
    ]);
    let mut models: Vec<&str> = Vec::new();
    for r in results {
        if !models.contains(&r.model.as_str()) {
            models.push(&r.model);
        }
    }
    for m in models {
        let rows: Vec<&EvalResult> = results.iter().filter(|r| r.model == m).collect();
        for r in &rows {
            let m = &r.metrics;
            if r.error.is_some() {
                t.add_row(vec![
                    Cell::new(&r.model),
                    Cell::new(&r.suite),
                    Cell::new(format!("{} / {}", r.totals.evaluated, r.totals.expected)).set_alignment(CellAlignment::Right),
                    Cell::new(r.classes_present).set_alignment(CellAlignment::Right),
                    Cell::new("ERROR (see below)"),
                    Cell::new(""),
                    Cell::new(""),
                    Cell::new(""),
                ]);
                continue;
            }
            t.add_row(vec![
                Cell::new(&r.model),
                Cell::new(&r.suite),
                Cell::new(format!("{} / {}", r.totals.evaluated, r.totals.expected)).set_alignment(CellAlignment::Right),
                Cell::new(r.classes_present).set_alignment(CellAlignment::Right),
                Cell::new(fmt_est(m.top1_equal)).set_alignment(CellAlignment::Right),
                Cell::new(fmt_est(m.top5_equal)).set_alignment(CellAlignment::Right),
                Cell::new(fmt_est(m.top1_weighted)).set_alignment(CellAlignment::Right),
                Cell::new(fmt_est(m.top5_weighted)).set_alignment(CellAlignment::Right),
            ]);
        }
        let first = rows[0];
        for r in rows.iter().skip(1) {
            let (a, b) = (&first.metrics, &r.metrics);
            t.add_row(vec![
                Cell::new(&r.model),
                Cell::new(format!("change {} -> {}", first.suite, r.suite)),
                Cell::new(""),
                Cell::new(""),
                Cell::new(fmt_drop(a.top1_equal, b.top1_equal)).set_alignment(CellAlignment::Right),
                Cell::new(fmt_drop(a.top5_equal, b.top5_equal)).set_alignment(CellAlignment::Right),
                Cell::new(fmt_drop(a.top1_weighted, b.top1_weighted)).set_alignment(CellAlignment::Right),
                Cell::new(fmt_drop(a.top5_weighted, b.top5_weighted)).set_alignment(CellAlignment::Right),
            ]);
        }
    }
    t
}

/// Lines describing failed and missing samples (at most `limit`, then a count).
pub fn problem_lines(results: &[EvalResult], limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    for r in results {
        if let Some(e) = &r.error {
            out.push(format!("{} on {}: ERROR: {e}", r.model, r.suite));
            if r.not_evaluated() > 0 {
                out.push(format!(
                    "  {} of {} samples were not evaluated; run the same command again to retry them",
                    r.not_evaluated(),
                    r.totals.expected
                ));
            }
        }
        if r.problems.is_empty() {
            continue;
        }
        out.push(format!(
            "{} on {}: {} failed, {} missing of {} samples",
            r.model, r.suite, r.totals.failed, r.totals.missing, r.totals.expected
        ));
        // The batch in flight when a model stopped failed with the error above: count it once.
        let stopped = r.problems.iter().filter(|p| Some(&p.reason) == r.error.as_ref()).count();
        if stopped > 0 {
            out.push(format!("  {stopped} samples in the batch in flight failed with that ERROR (ids in the JSON result)"));
        }
        let others: Vec<&Problem> = r.problems.iter().filter(|p| Some(&p.reason) != r.error.as_ref()).collect();
        for p in others.iter().take(limit) {
            out.push(format!("  {}: {}", p.id, p.reason));
        }
        if others.len() > limit {
            out.push(format!("  ... and {} more (all listed in the JSON result)", others.len() - limit));
        }
    }
    out
}
