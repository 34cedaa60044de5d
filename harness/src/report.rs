//! Results: one model on one suite, computed from a tally; the JSON result file (its schema is
//! documented in `docs/result-schema.md`); the terminal table.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};
use serde::{Deserialize, Serialize};

use crate::metrics::{ClassCounts, Estimate, Headline, TopK};
use crate::predlog::{ClassStatus, Tally};
use crate::provenance::RunInfo;

/// The version of the result file's schema (`shiftbench_result`). 2 added `run` (provenance).
pub const RESULT_VERSION: u32 = 2;

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
    /// How classes are weighted in the weighted columns (`equal`, `frequency` or `table`).
    #[serde(default)]
    pub weights: String,
    #[serde(default)]
    pub totals: ClassStatus,
    #[serde(default)]
    pub classes_present: usize,
    pub metrics: Headline,
    #[serde(default)]
    pub per_class: BTreeMap<String, PerClass>,
    /// Every sample that failed or is missing, with the reason.
    #[serde(default)]
    pub problems: Vec<Problem>,
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
        }
    }
}

/// The JSON result file of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub shiftbench_result: u32,
    #[serde(default)]
    pub shiftbench_version: String,
    /// What made the result (absent in version 1 results and in results built in code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunInfo>,
    pub results: Vec<EvalResult>,
}

impl RunResult {
    pub fn new(results: Vec<EvalResult>) -> RunResult {
        RunResult { shiftbench_result: RESULT_VERSION, shiftbench_version: env!("CARGO_PKG_VERSION").into(), run: None, results }
    }

    pub fn with_run(mut self, info: RunInfo) -> RunResult {
        self.run = Some(info);
        self
    }

    /// Reads a result file (or `<dir>/result.json` when given a folder). Results of schema
    /// version 1 and later read; fields this version does not know are ignored.
    pub fn read(path: &Path) -> Result<RunResult> {
        let file = if path.is_dir() { path.join("result.json") } else { path.to_path_buf() };
        let bytes = std::fs::read(&file).with_context(|| format!("cannot read result {}", file.display()))?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| anyhow!("{}: not JSON: {e}", file.display()))?;
        let version = v.get("shiftbench_result").and_then(|x| x.as_u64()).ok_or_else(|| {
            anyhow!("{}: not a shiftbench result (no shiftbench_result version field)", file.display())
        })?;
        match serde_json::from_value::<RunResult>(v) {
            Ok(r) => Ok(r),
            Err(e) if version > RESULT_VERSION as u64 => bail!(
                "{}: result schema version {version} is newer than this shiftbench reads ({RESULT_VERSION}): {e}",
                file.display()
            ),
            Err(e) => bail!("{}: {e}", file.display()),
        }
    }

    /// Writes the result atomically (a temporary file renamed into place).
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &serde_json::to_vec_pretty(self)?)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// crash never leaves a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".{}.tmp{}", path.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))?;
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
        if r.problems.is_empty() {
            continue;
        }
        out.push(format!(
            "{} on {}: {} failed, {} missing of {} samples",
            r.model, r.suite, r.totals.failed, r.totals.missing, r.totals.expected
        ));
        for p in r.problems.iter().take(limit) {
            out.push(format!("  {}: {}", p.id, p.reason));
        }
        if r.problems.len() > limit {
            out.push(format!("  ... and {} more (all listed in the JSON result)", r.problems.len() - limit));
        }
    }
    out
}
