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

/// Largest result file read.
pub const MAX_RESULT_BYTES: u64 = 1 << 30;
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
        let bytes = crate::safeio::read_bounded(&file, MAX_RESULT_BYTES).with_context(|| format!("cannot read result {}", file.display()))?;
        Self::from_slice(&bytes).map_err(|e| anyhow!("{}: {e:#}", file.display()))
    }

    /// Writes the result atomically (a temporary file renamed into place).
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &serde_json::to_vec_pretty(self)?)
    }

    /// Parses a result file's bytes (any schema version this shiftbench reads).
    pub fn from_slice(bytes: &[u8]) -> Result<RunResult> {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| anyhow!("not JSON: {e}"))?;
        let version = v
            .get("shiftbench_result")
            .and_then(|x| x.as_u64())
            .ok_or_else(|| anyhow!("not a shiftbench result (no shiftbench_result version field)"))?;
        match serde_json::from_value::<RunResult>(v) {
            Ok(r) => Ok(r),
            Err(e) if version > RESULT_VERSION as u64 => {
                bail!("result schema version {version} is newer than this shiftbench reads ({RESULT_VERSION}): {e}")
            }
            Err(e) => bail!("{e}"),
        }
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

/// The terminal table: a row per model and suite with its sample counts (expected, evaluated,
/// failed, missing), the classes present and the four recalls (percent, ± one standard error).
pub fn table(results: &[EvalResult]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(vec![
        "model",
        "suite",
        "expected",
        "evaluated",
        "failed",
        "missing",
        "classes",
        "top-1 equal-wt",
        "top-5 equal-wt",
        "top-1 LAION-wt",
        "top-5 LAION-wt",
    ]);
    let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
    for m in models_in_order(results) {
        for r in results.iter().filter(|r| r.model == m) {
            let x = &r.metrics;
            let mut row = vec![
                Cell::new(&r.model),
                Cell::new(&r.suite),
                right(r.totals.expected.to_string()),
                right(r.totals.evaluated.to_string()),
                right(r.totals.failed.to_string()),
                right(r.totals.missing.to_string()),
                right(r.classes_present.to_string()),
            ];
            if r.error.is_some() {
                row.extend([Cell::new("ERROR (see below)"), Cell::new(""), Cell::new(""), Cell::new("")]);
            } else {
                row.extend([x.top1_equal, x.top5_equal, x.top1_weighted, x.top5_weighted].map(|e| right(fmt_est(e))));
            }
            t.add_row(row);
        }
    }
    t
}

/// Models in order of first appearance.
pub fn models_in_order(results: &[EvalResult]) -> Vec<&str> {
    let mut models: Vec<&str> = Vec::new();
    for r in results {
        if !models.contains(&r.model.as_str()) {
            models.push(&r.model);
        }
    }
    models
}

/// Suites in order of first appearance; the first is the reference the others are compared with.
pub fn suites_in_order(results: &[EvalResult]) -> Vec<&str> {
    let mut suites: Vec<&str> = Vec::new();
    for r in results {
        if !suites.contains(&r.suite.as_str()) {
            suites.push(&r.suite);
        }
    }
    suites
}

/// One column of the summary table: its header and each model's value.
struct Column {
    header: String,
    /// Short names `--sort` also accepts.
    aliases: Vec<String>,
    /// Per model (in `models_in_order`), the estimate, or None.
    values: Vec<Option<Estimate>>,
    /// A drop: printed with a sign.
    signed: bool,
}

fn summary_columns(results: &[EvalResult]) -> Vec<Column> {
    let models = models_in_order(results);
    let suites = suites_in_order(results);
    let get = |m: &str, s: &str| results.iter().find(|r| r.model == m && r.suite == s).map(|r| r.metrics);
    let mut cols = Vec::new();
    let reference = suites[0];
    for (si, s) in suites.iter().enumerate() {
        cols.push(Column {
            header: format!("{s}\ntop-1 equal-wt"),
            aliases: vec![s.to_string()],
            values: models.iter().map(|m| get(m, s).and_then(|h| h.top1_equal)).collect(),
            signed: false,
        });
        cols.push(Column {
            header: format!("{s}\ntop-1 LAION-wt"),
            aliases: vec![format!("{s}:laion")],
            values: models.iter().map(|m| get(m, s).and_then(|h| h.top1_weighted)).collect(),
            signed: false,
        });
        if si == 0 {
            continue;
        }
        let drop = |pick: fn(&Headline) -> Option<Estimate>| -> Vec<Option<Estimate>> {
            models
                .iter()
                .map(|m| match (get(m, reference).and_then(|h| pick(&h)), get(m, s).and_then(|h| pick(&h))) {
                    (Some(a), Some(b)) => Some(a.minus(&b)),
                    _ => None,
                })
                .collect()
        };
        let first = si == 1;
        cols.push(Column {
            header: format!("drop {reference}\n-> {s} equal-wt"),
            aliases: if first { vec!["drop".into(), format!("drop:{s}")] } else { vec![format!("drop:{s}")] },
            values: drop(|h| h.top1_equal),
            signed: true,
        });
        cols.push(Column {
            header: format!("drop {reference}\n-> {s} LAION-wt"),
            aliases: if first { vec!["drop:laion".into(), format!("drop:{s}:laion")] } else { vec![format!("drop:{s}:laion")] },
            values: drop(|h| h.top1_weighted),
            signed: true,
        });
    }
    cols
}

/// How to order models: a summary-table column (its header, a suite name for that suite's
/// equal-weighted top-1, `<suite>:laion`, `drop`, `drop:laion`, `drop:<suite>`,
/// `drop:<suite>:laion`) or `model`, optionally followed by `:asc` or `:desc`. Numbers sort
/// descending by default (best, or largest drop, first), names ascending; models without a
/// value go last.
pub fn sort_models(results: &[EvalResult], key: &str) -> Result<Vec<String>, String> {
    let (key, dir) = match key.rsplit_once(':') {
        Some((k, d)) if d.eq_ignore_ascii_case("asc") || d.eq_ignore_ascii_case("desc") => (k, Some(d.eq_ignore_ascii_case("asc"))),
        _ => (key, None),
    };
    let models = models_in_order(results);
    let mut idx: Vec<usize> = (0..models.len()).collect();
    if key.eq_ignore_ascii_case("model") {
        idx.sort_by(|&a, &b| models[a].cmp(models[b]));
        if dir == Some(false) {
            idx.reverse();
        }
        return Ok(idx.into_iter().map(|i| models[i].to_string()).collect());
    }
    let cols = summary_columns(results);
    let col = cols
        .iter()
        .find(|c| c.header.replace('\n', " ").eq_ignore_ascii_case(key) || c.aliases.iter().any(|a| a.eq_ignore_ascii_case(key)))
        .ok_or_else(|| {
            let mut names: Vec<String> = vec!["model".into()];
            for c in &cols {
                names.extend(c.aliases.iter().cloned());
            }
            format!("--sort {key:?}: no such column (use one of: {}, or a column header)", names.join(", "))
        })?;
    let ascending = dir.unwrap_or(false);
    idx.sort_by(|&a, &b| match (col.values[a], col.values[b]) {
        (Some(x), Some(y)) => {
            let o = x.value.total_cmp(&y.value);
            if ascending {
                o
            } else {
                o.reverse()
            }
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    Ok(idx.into_iter().map(|i| models[i].to_string()).collect())
}

/// `results` reordered model by model as `order` says (models not in `order` keep their place
/// after those that are).
pub fn ordered(results: &[EvalResult], order: &[String]) -> Vec<EvalResult> {
    let mut out: Vec<EvalResult> = Vec::with_capacity(results.len());
    for m in order {
        out.extend(results.iter().filter(|r| &r.model == m).cloned());
    }
    out.extend(results.iter().filter(|r| !order.contains(&r.model)).cloned());
    out
}

/// The models x suites table: one row per model; for each suite its equal-weighted and
/// LAION-weighted top-1 recall, and for each suite after the first the drop from the first
/// (reference minus suite: positive means worse), under both weightings. Percent, ± one
/// standard error. Needs two suites or more to say anything the main table does not.
pub fn summary_table(results: &[EvalResult]) -> Table {
    let cols = summary_columns(results);
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    let mut header = vec!["model".to_string()];
    header.extend(cols.iter().map(|c| c.header.clone()));
    t.set_header(header);
    for (mi, m) in models_in_order(results).iter().enumerate() {
        let mut row = vec![Cell::new(m)];
        for c in &cols {
            let text = match (c.values[mi], c.signed) {
                (Some(e), true) => format!("{:+.2} ± {:.2}", 100.0 * e.value, 100.0 * e.se),
                (v, _) => fmt_est(v),
            };
            row.push(Cell::new(text).set_alignment(CellAlignment::Right));
        }
        t.add_row(row);
    }
    t
}

/// Lines describing failed and missing samples: per suite (once, when every model met the same
/// problems, as they do when images cannot be read) the totals, the classes affected and the
/// first `limit` samples with their reasons, then a count of the rest.
pub fn problem_lines(results: &[EvalResult], limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    for suite in suites_in_order(results) {
        for r in results.iter().filter(|r| r.suite == suite) {
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
        }
        let rs: Vec<&EvalResult> = results.iter().filter(|r| r.suite == suite && !r.problems.is_empty()).collect();
        if rs.is_empty() {
            continue;
        }
        let all_models = results.iter().filter(|r| r.suite == suite).count();
        let same = rs.len() == all_models && rs.iter().all(|r| r.problems == rs[0].problems);
        let groups: Vec<(String, &EvalResult)> = if same && all_models > 1 {
            vec![(format!("every model on {suite}"), rs[0])]
        } else {
            rs.iter().map(|r| (format!("{} on {suite}", r.model), *r)).collect()
        };
        for (who, r) in groups {
            out.push(format!(
                "{who}: {} failed, {} missing of {} samples",
                r.totals.failed, r.totals.missing, r.totals.expected
            ));
            let classes: Vec<String> = r
                .per_class
                .iter()
                .filter(|(_, c)| c.status.failed + c.status.missing > 0)
                .map(|(w, c)| match (c.status.failed, c.status.missing) {
                    (f, 0) => format!("{w} {f} failed"),
                    (0, m) => format!("{w} {m} missing"),
                    (f, m) => format!("{w} {f} failed + {m} missing"),
                })
                .collect();
            let shown = classes.len().min(limit);
            out.push(format!(
                "  by class: {}{}",
                classes[..shown].join(", "),
                if classes.len() > shown { format!(", ... ({} classes in all)", classes.len()) } else { String::new() }
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
    }
    out
}
