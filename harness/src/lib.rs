//! shiftbench: evaluate ImageNet classifiers on ImageNet and on LAIONet, per class and overall,
//! with the arithmetic of Shirali & Hardt, *What Makes ImageNet Look Unlike LAION* (ICLR 2024).
//!
//! The flow, one module per stage: [`suite`] (which samples, which labels, which weights) ->
//! [`imaging`] (decode, preprocess) -> [`plugin`] (the model) -> [`eval`] (batches, top-k) ->
//! [`predlog`] (the predictions log, the source of truth) -> [`metrics`] (recall, Wilson se,
//! weighted means) -> [`report`] (tables, JSON). [`score`] scores predictions made elsewhere;
//! [`demo`] makes the synthetic suites of `shiftbench demo`.

pub mod demo;
pub mod eval;
pub mod imaging;
pub mod metrics;
pub mod plugin;
pub mod predlog;
pub mod report;
pub mod score;
pub mod sources;
pub mod suite;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use eval::EvalOptions;
use plugin::LoadedModel;
use predlog::{read_log, LogWriter, Tally};
use report::{EvalResult, RunResult};
use suite::Suite;

/// What `shiftbench run` does.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub suites: Vec<PathBuf>,
    /// Model references: plugin library, plugin name or model YAML.
    pub models: Vec<String>,
    /// Folder for predictions logs and the result JSON.
    pub out: PathBuf,
    pub eval: EvalOptions,
    /// Threads the model may use (0: the plugin decides).
    pub model_threads: u32,
    /// Replace existing logs instead of resuming them.
    pub fresh: bool,
}

/// A file-name-safe form of a model or suite name.
pub fn slug(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' { c } else { '_' }).collect()
}

/// The predictions log of `model` on `suite` under `out`.
pub fn log_path(out: &Path, model: &str, suite: &str) -> PathBuf {
    out.join("predictions").join(format!("{}__{}.jsonl", slug(model), slug(suite)))
}

/// Scores a suite's predictions log into a result.
pub fn result_from_log(log: &Path, model: &str, suite: &Suite) -> Result<EvalResult> {
    let (_, records) = read_log(log)?;
    let tally = Tally::from_records(&records);
    let weights = suite.weights.for_classes(tally.counts.keys());
    Ok(EvalResult::from_tally(model, &suite.name, suite.weights.describe(), &tally, &weights))
}

/// Evaluates every model on every suite (resuming logs that exist), writes
/// `<out>/result.json` and returns the results.
pub fn run(spec: &RunSpec) -> Result<RunResult> {
    let suites: Vec<Suite> = spec.suites.iter().map(|p| Suite::load(p)).collect::<Result<_>>()?;
    let mut results = Vec::new();
    for m in &spec.models {
        let mut model = LoadedModel::open(m, spec.model_threads).with_context(|| format!("model {m}"))?;
        let name = model.card.name.to_string();
        for suite in &suites {
            let log = log_path(&spec.out, &name, &suite.name);
            let header = eval::log_header(&model, suite);
            let (mut writer, done) = LogWriter::open(&log, &header, spec.fresh)?;
            if !done.is_empty() && spec.eval.progress {
                eprintln!("resuming {}: {} of {} samples already in the log", log.display(), done.len(), suite.samples.len());
            }
            eval::evaluate(&mut model, suite, &mut writer, &done, &spec.eval)?;
            drop(writer);
            results.push(result_from_log(&log, &name, suite)?);
        }
    }
    let run = RunResult::new(results);
    run.write(&spec.out.join("result.json"))?;
    Ok(run)
}
