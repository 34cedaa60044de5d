//! The result model: one model on one suite ([`EvalResult`], computed from a tally and class
//! weights) and the JSON result file of a run ([`RunResult`], its schema documented in
//! `docs/result-schema.md`). Every report is drawn from these.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::weights::Weights;
use crate::results::metrics::{ClassCounts, Headline, TopK};
use crate::results::provenance::RunInfo;
use crate::results::robustness::{self, Bootstrap, ClassScore, EffectiveRobustness, Scores};
use crate::results::tally::{ClassStatus, Tally};
use crate::util::files::write_atomic;
use crate::util::safeio;

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
    pub fn from_tally(
        model: &str,
        suite: &str,
        weights_kind: &str,
        tally: &Tally,
        weights: &BTreeMap<String, f64>,
    ) -> EvalResult {
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
            problems: tally
                .problems
                .iter()
                .map(|(id, reason)| Problem { id: id.clone(), reason: reason.clone() })
                .collect(),
            error: None,
        }
    }

    /// [`EvalResult::from_tally`] with `weights` giving every class of the tally its weight: how
    /// every result is weighted, whatever the weights' origin.
    pub fn weighted(model: &str, suite: &str, weights: &Weights, tally: &Tally) -> EvalResult {
        Self::from_tally(model, suite, weights.describe(), tally, &weights.for_classes(tally.counts.keys()))
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
    /// With three models or more and two suites or more: each model's effective robustness on
    /// every suite after the first against the first ([`robustness`]); absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effective_robustness: Vec<EffectiveRobustness>,
}

impl RunResult {
    pub fn new(results: Vec<EvalResult>) -> RunResult {
        RunResult {
            shiftbench_result: RESULT_VERSION,
            shiftbench_version: env!("CARGO_PKG_VERSION").into(),
            run: None,
            results,
            effective_robustness: Vec::new(),
        }
    }

    /// Computes [`RunResult::effective_robustness`] from the results (nothing with fewer than
    /// three models or two suites): what `run`, `merge` and `score` do before writing.
    pub fn with_effective_robustness(mut self) -> RunResult {
        let cells: Vec<Scores> = self
            .results
            .iter()
            .map(|r| Scores {
                model: &r.model,
                suite: &r.suite,
                error: r.error.is_some(),
                weights: &r.weights,
                top1_equal: r.metrics.top1_equal.map(|e| e.value),
                top1_weighted: r.metrics.top1_weighted.map(|e| e.value),
                classes: r
                    .per_class
                    .iter()
                    .map(|(wnid, c)| ClassScore { wnid, n: c.counts.n, top1: c.counts.top1, weight: c.weight })
                    .collect(),
            })
            .collect();
        self.effective_robustness = robustness::effective_robustness(&cells, &Bootstrap::default());
        self
    }

    pub fn with_run(mut self, info: RunInfo) -> RunResult {
        self.run = Some(info);
        self
    }

    /// Reads a result file (or `<dir>/result.json` when given a folder). Results of schema
    /// version 1 and later read; fields this version does not know are ignored.
    pub fn read(path: &Path) -> Result<RunResult> {
        let file = if path.is_dir() { path.join("result.json") } else { path.to_path_buf() };
        let bytes = safeio::read_bounded(&file, MAX_RESULT_BYTES)
            .with_context(|| format!("cannot read result {}", file.display()))?;
        Self::from_slice(&bytes).map_err(|e| anyhow!("{}: {e:#}", file.display()))
    }

    /// Writes the result atomically (a temporary file renamed into place).
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &serde_json::to_vec_pretty(self)?)
    }

    /// How many model/suite pairs ended with an error (the model could not be loaded or stopped).
    pub fn model_errors(&self) -> usize {
        self.results.iter().filter(|r| r.error.is_some()).count()
    }

    /// Every sample that failed or is missing, as `id (suite): reason`; a sample that failed for
    /// every model is named once.
    pub fn problem_samples(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.results {
            for p in &r.problems {
                if seen.insert((r.suite.clone(), p.id.clone())) {
                    names.push(format!("{} ({}): {}", p.id, r.suite, p.reason));
                }
            }
        }
        names
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
