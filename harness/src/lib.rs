//! shiftbench: evaluate ImageNet classifiers on ImageNet and on LAIONet, per class and overall,
//! with the arithmetic of Shirali & Hardt, *What Makes ImageNet Look Unlike LAION* (ICLR 2024).
//!
//! The flow, one module per stage: [`suite`] (which samples, which labels, which weights) ->
//! [`imaging`] (decode, preprocess) -> [`plugin`] (the model) -> [`eval`] (batches, top-k) ->
//! [`predlog`] (the predictions log, the source of truth) -> [`metrics`] (recall, Wilson se,
//! weighted means) -> [`report`] (tables, JSON). [`score`] scores predictions made elsewhere;
//! [`demo`] makes the synthetic suites of `shiftbench demo`.
//!
//! Nightly regressions: [`provenance`] (what a result was made from), [`compare`] (baselines),
//! [`sinks`] (Markdown, CSV, JSON, JUnit reports), [`plot`] (SVG plots), [`shard`] (`--shard i/N`
//! and merging shard logs), [`progress`] (progress bars on a terminal only).

pub mod compare;
pub mod demo;
pub mod eval;
pub mod imaging;
pub mod metrics;
pub mod plan;
pub mod plot;
pub mod plugin;
pub mod predlog;
pub mod progress;
pub mod provenance;
pub mod report;
pub mod score;
pub mod shard;
pub mod sinks;
pub mod sources;
pub mod suite;
pub mod verify;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use eval::EvalOptions;
use plugin::{LoadedModel, Scorer};
use predlog::{read_log, LogHeader, LogWriter, Tally};
use provenance::{ModelInfo, RunInfo, SuiteInfo};
use report::{EvalResult, RunResult};
use shard::Shard;
use suite::Suite;

/// What `shiftbench run` does.
#[derive(Debug, Clone, Default)]
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
    /// Evaluate only this shard of every suite.
    pub shard: Option<Shard>,
}

/// A file-name-safe form of a model or suite name.
pub fn slug(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' { c } else { '_' }).collect()
}

/// The predictions log of `model` on `suite` under `out`.
pub fn log_path(out: &Path, model: &str, suite: &str) -> PathBuf {
    out.join("predictions").join(format!("{}__{}.jsonl", slug(model), slug(suite)))
}

/// The predictions log of `model` on `suite` under `out`, for one shard:
/// `<model>__<suite>.shard-<i>-of-<N>.jsonl`, so shards can share a folder.
pub fn shard_log_path(out: &Path, model: &str, suite: &str, shard: Option<Shard>) -> PathBuf {
    match shard {
        None => log_path(out, model, suite),
        Some(s) => out.join("predictions").join(format!("{}__{}.{}.jsonl", slug(model), slug(suite), s.tag())),
    }
}

/// Where a run writes its result: `result.json`, or `result.shard-<i>-of-<N>.json` for a shard.
pub fn result_path(out: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        None => out.join("result.json"),
        Some(s) => out.join(format!("result.{}.json", s.tag())),
    }
}

/// Scores a suite's predictions log into a result.
pub fn result_from_log(log: &Path, model: &str, suite: &Suite) -> Result<EvalResult> {
    let (_, records) = read_log(log)?;
    let tally = Tally::from_records(&records);
    let weights = suite.weights.for_classes(tally.counts.keys());
    Ok(EvalResult::from_tally(model, &suite.name, suite.weights.describe(), &tally, &weights))
}

/// The `name:` a model YAML sets explicitly, if `arg` is a model YAML that sets one: it names
/// the model in logs and tables whatever the plugin calls it, so one plugin can run under
/// several names (and several settings) in one run.
fn yaml_name(arg: &str) -> Option<String> {
    let p = Path::new(arg);
    if !matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
        return None;
    }
    let y: shiftbench_model_config::ModelYaml = serde_yaml::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
    y.name
}

/// Evaluates every model on every suite (resuming logs that exist), writes
/// `<out>/result.json` (see [`result_path`]) and returns the results, model by model.
///
/// Each suite is one pass for all models ([`eval::evaluate_many`]): every image is read and
/// decoded once, and preprocessed once per distinct preprocessing spec, however many models
/// consume it.
pub fn run(spec: &RunSpec) -> Result<RunResult> {
    let mut info = RunInfo::start("run");
    (info.threads, info.batch, info.model_threads, info.shard) =
        (Some(spec.eval.threads), Some(spec.eval.batch), Some(spec.model_threads), spec.shard);
    let loading = progress::spinner("listing suites", spec.eval.progress);
    let mut suites: Vec<Suite> = spec.suites.iter().map(|p| Suite::load(p)).collect::<Result<_>>()?;
    loading.finish_and_clear();
    for n in suites.iter().flat_map(|s| &s.notes) {
        eprintln!("{n}");
    }
    for suite in &mut suites {
        let mut si = SuiteInfo::of(suite);
        if let Some(sh) = spec.shard {
            suite.samples.retain(|s| sh.contains(&s.id));
            si.samples_in_shard = Some(suite.samples.len());
        }
        info.suites.push(si);
    }
    let mut models = Vec::new();
    for m in &spec.models {
        let mut model = LoadedModel::open(m, spec.model_threads).with_context(|| format!("model {m}"))?;
        if let Some(n) = yaml_name(m) {
            model.card.name = n.into();
        }
        if let Some((other, _)) = models.iter().find(|(_, o): &&(String, LoadedModel)| o.card.name == model.card.name) {
            anyhow::bail!(
                "models {other} and {m} are both named {:?}: give them distinct `name:` in their model YAMLs",
                model.card.name.as_str()
            );
        }
        let batch = model.batch_size(spec.eval.batch);
        info.models.push(ModelInfo::new(m, &model.library, model.config.as_deref(), &model.plugin_name, &model.card, &model.labels, batch));
        models.push((m.clone(), model));
    }
    let mut per_model: Vec<Vec<EvalResult>> = models.iter().map(|_| Vec::new()).collect();
    for suite in &suites {
        let mut writers = Vec::with_capacity(models.len());
        let mut dones = Vec::with_capacity(models.len());
        for (_, model) in &models {
            let log = shard_log_path(&spec.out, model.card.name.as_str(), &suite.name, spec.shard);
            let header = LogHeader { shard: spec.shard, ..eval::log_header_opts(model, suite, &spec.eval) };
            let (writer, done) = LogWriter::open(&log, &header, spec.fresh)?;
            if !done.is_empty() && spec.eval.progress {
                eprintln!("resuming {}: {} of {} samples already in the log", log.display(), done.len(), suite.samples.len());
            }
            writers.push(writer);
            dones.push(done);
        }
        let mut jobs: Vec<eval::Job> = models
            .iter_mut()
            .zip(writers.iter_mut())
            .zip(dones.iter())
            .map(|(((_, model), log), done)| eval::Job { model: model as &mut dyn plugin::Scorer, log, done })
            .collect();
        eval::evaluate_many(&mut jobs, suite, &spec.eval).with_context(|| format!("suite {}", suite.name))?;
        drop(jobs);
        for ((writer, (_, model)), results) in writers.into_iter().zip(&models).zip(per_model.iter_mut()) {
            let log = writer.path.clone();
            drop(writer);
            results.push(result_from_log(&log, model.card.name.as_str(), suite)?);
        }
    }
    info.finish();
    let run = RunResult::new(per_model.into_iter().flatten().collect()).with_run(info);
    run.write(&result_path(&spec.out, spec.shard))?;
    Ok(run)
}
