//! shiftbench: evaluate ImageNet classifiers on ImageNet and on LAIONet, per class and overall,
//! with the arithmetic of Shirali & Hardt, *What Makes ImageNet Look Unlike LAION* (ICLR 2024).
//!
//! The flow, one module per stage: [`suite`] (which samples, which labels, which weights) ->
//! [`imaging`] (decode, preprocess) -> [`plugin`] (the model) -> [`eval`] (batches, top-k) ->
//! [`predlog`] (the predictions log, the source of truth) -> [`metrics`] (recall, Wilson se,
//! weighted means) -> [`report`] (tables, JSON). [`score`] scores predictions made elsewhere;
//! [`demo`] makes the synthetic suites of `shiftbench demo`. [`worker`] runs each model in a
//! worker process; [`interrupt`] stops a run cleanly on Ctrl-C; [`safeio`] and [`fuzzing`]
//! are about hostile input.

pub mod demo;
pub mod eval;
pub mod fuzzing;
pub mod imaging;
pub mod interrupt;
pub mod metrics;
pub mod plugin;
pub mod predlog;
pub mod report;
pub mod safeio;
pub mod score;
pub mod suite;
pub mod worker;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use eval::EvalOptions;
use plugin::{ModelStopped, Scorer};
use predlog::{read_log, LogWriter, Tally};
use report::{EvalResult, RunResult};
use suite::Suite;
use worker::Isolation;

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
    /// In a worker process per model (the CLI's default) or in this process.
    pub isolation: Isolation,
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

/// The result of a model that evaluated nothing on `suite`, with the reason.
fn stopped_result(model: &str, suite: &Suite, why: String) -> EvalResult {
    let none = predlog::Tally::default();
    EvalResult::from_tally(model, &suite.name, suite.weights.describe(), &none, &Default::default()).with_error(why, suite.samples.len())
}

/// Evaluates every model on every suite (resuming logs that exist), writes
/// `<out>/result.json` and returns the results.
///
/// A model that cannot be loaded, or that stops (its worker crashed or hung, it panicked, it
/// broke the interface) gets a result with `error` set for that suite, and the run goes on with
/// the next suite (in a fresh worker) and the next model. A stop asked for with Ctrl-C returns
/// [`interrupt::Interrupted`] once the logs are flushed.
pub fn run(spec: &RunSpec) -> Result<RunResult> {
    let suites: Vec<Suite> = spec.suites.iter().map(|p| Suite::load(p)).collect::<Result<_>>()?;
    // A misspelt --model fails now, not after hours of evaluating the others.
    for m in &spec.models {
        plugin::resolve_model(m).with_context(|| format!("model {m}"))?;
    }
    let mut results = Vec::new();
    let mut names: Vec<(String, &str)> = Vec::new();
    for m in &spec.models {
        let mut model: Option<Box<dyn Scorer>> = None;
        let mut load_error: Option<String> = None;
        for suite in &suites {
            if model.is_none() && load_error.is_none() {
                match worker::open_scorer(m, spec.model_threads, &spec.isolation) {
                    Ok(s) => model = Some(s),
                    Err(e) => load_error = Some(format!("model {m} could not be loaded: {e:#}")),
                }
            }
            let Some(scorer) = model.as_mut() else {
                let why = load_error.clone().unwrap_or_default();
                results.push(stopped_result(&worker::display_name(m), suite, why));
                continue;
            };
            let name = scorer.card().name.to_string();
            if let Some((_, other)) = names.iter().find(|(n, a)| n == &name && a != m) {
                let why = format!("--model {m} and --model {other} are both named {name:?}: they would share predictions logs; give one another `name:` in its model YAML");
                results.push(stopped_result(&name, suite, why));
                continue;
            }
            names.push((name.clone(), m));
            let log = log_path(&spec.out, &name, &suite.name);
            let header = eval::log_header(scorer.as_ref(), suite);
            let (mut writer, done) = LogWriter::open(&log, &header, spec.fresh)?;
            if !done.is_empty() && spec.eval.progress {
                eprintln!("resuming {}: {} of {} samples already in the log", log.display(), done.len(), suite.samples.len());
            }
            let outcome = eval::evaluate(scorer.as_mut(), suite, &mut writer, &done, &spec.eval);
            drop(writer);
            match outcome {
                Ok(_) => results.push(result_from_log(&log, &name, suite)?),
                Err(e) => {
                    let stop = e.downcast::<ModelStopped>()?;
                    results.push(result_from_log(&log, &name, suite)?.with_error(stop.0, suite.samples.len()));
                    model = None; // the next suite gets a fresh worker
                }
            }
        }
    }
    let run = RunResult::new(results);
    run.write(&spec.out.join("result.json"))?;
    Ok(run)
}
