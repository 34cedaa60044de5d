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
//!
//! [`demo`] makes the synthetic suites of `shiftbench demo`.
//!
//! Nightly regressions: [`provenance`] (what a result was made from), [`compare`] (baselines),
//! [`sinks`] (Markdown, CSV, JSON, JUnit reports), [`plot`] (SVG plots), [`shard`] (`--shard i/N`
//! and merging shard logs), [`progress`] (progress bars on a terminal only).

pub mod compare;
pub mod demo;
pub mod eval;
pub mod fuzzing;
pub mod imaging;
pub mod interrupt;
pub mod metrics;
pub mod plan;
pub mod plot;
pub mod plugin;
pub mod predlog;
pub mod progress;
pub mod provenance;
pub mod report;
pub mod safeio;
pub mod score;
pub mod shard;
pub mod sinks;
pub mod sources;
pub mod suite;
pub mod verify;
pub mod worker;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use eval::EvalOptions;
use plugin::Scorer;
use shiftbench_plugin::ModelCard;
use predlog::{read_log, LogHeader, LogWriter, Tally};
use provenance::{ModelInfo, RunInfo, SuiteInfo};
use report::{EvalResult, RunResult};
use shard::Shard;
use suite::Suite;
use worker::Isolation;

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
    /// In a worker process per model (the CLI's default) or in this process.
    pub isolation: Isolation,
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

/// The result of a model that evaluated nothing on `suite`, with the reason.
fn stopped_result(model: &str, suite: &Suite, why: String) -> EvalResult {
    let none = predlog::Tally::default();
    EvalResult::from_tally(model, &suite.name, suite.weights.describe(), &none, &Default::default()).with_error(why, suite.samples.len())
}

/// The `name:` a model YAML sets explicitly, if `arg` is a model YAML that sets one: it names
/// the model in logs and tables whatever the plugin calls it, so one plugin can run under
/// several names (and several settings) in one run.
fn yaml_name(arg: &str) -> Option<String> {
    let p = Path::new(arg);
    if !matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
        return None;
    }
    let text = safeio::read_text_bounded(p, safeio::MAX_YAML_BYTES).ok()?;
    let y: shiftbench_model_config::ModelYaml = serde_yaml::from_str(&text).ok()?;
    y.name
}

/// A model under the name its model YAML gives it.
struct Renamed {
    inner: Box<dyn Scorer>,
    card: ModelCard,
}

impl Scorer for Renamed {
    fn card(&self) -> &ModelCard {
        &self.card
    }
    fn labels(&self) -> &[String] {
        self.inner.labels()
    }
    fn plugin_name(&self) -> &str {
        self.inner.plugin_name()
    }
    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>> {
        self.inner.infer(input, batch)
    }
    fn batch_size(&self, requested: usize) -> usize {
        self.inner.batch_size(requested)
    }
}

/// Opens `--model` `arg` as `spec.isolation` says, under its model YAML's `name:` if it sets one.
fn open_model(arg: &str, spec: &RunSpec) -> Result<Box<dyn Scorer>> {
    let model = worker::open_scorer(arg, spec.model_threads, &spec.isolation)?;
    Ok(match yaml_name(arg) {
        Some(n) if n != model.card().name.as_str() => {
            let mut card = model.card().clone();
            card.name = n.into();
            Box::new(Renamed { inner: model, card })
        }
        _ => model,
    })
}

/// One `--model` of a run.
struct Slot {
    arg: String,
    name: String,
    /// None once it failed to load or stopped on a suite (the next suite gets a fresh worker).
    model: Option<Box<dyn Scorer>>,
    /// Why it could not be loaded: every suite gets an error row.
    load_error: Option<String>,
}

/// Evaluates every model on every suite (resuming logs that exist), writes
/// `<out>/result.json` (see [`result_path`]) and returns the results, model by model.
///
/// Each suite is one pass for all models ([`eval::evaluate_many`]): every image is read and
/// decoded once, and preprocessed once per distinct preprocessing spec, however many models
/// consume it.
///
/// Each model runs as `spec.isolation` says (a worker process per model, or in this process). A
/// model that cannot be loaded, or that stops (its worker crashed or hung, it panicked, it broke
/// the interface) gets a result with `error` set for that suite while the other models of the
/// pass go on; on the next suite it gets a fresh worker. A stop asked for with Ctrl-C returns
/// [`interrupt::Interrupted`] once the logs are flushed.
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
    // A misspelt --model fails now, not after hours of evaluating the others.
    let mut refs = Vec::with_capacity(spec.models.len());
    for m in &spec.models {
        refs.push(plugin::resolve_model(m).with_context(|| format!("model {m}"))?);
    }
    let mut slots: Vec<Slot> = Vec::new();
    for (m, r) in spec.models.iter().zip(&refs) {
        let slot = match open_model(m, spec) {
            Ok(model) => {
                let batch = model.batch_size(spec.eval.batch);
                info.models.push(ModelInfo::new(m, &r.library, r.config.as_deref(), model.plugin_name(), model.card(), model.labels(), batch));
                Slot { arg: m.clone(), name: model.card().name.to_string(), model: Some(model), load_error: None }
            }
            Err(e) => Slot {
                arg: m.clone(),
                name: yaml_name(m).unwrap_or_else(|| worker::display_name(m)),
                model: None,
                load_error: Some(format!("model {m} could not be loaded: {e:#}")),
            },
        };
        if let Some(other) = slots.iter().find(|o| o.name == slot.name) {
            anyhow::bail!(
                "models {} and {m} are both named {:?}: they would share predictions logs; give them distinct `name:` in their model YAMLs",
                other.arg,
                slot.name
            );
        }
        slots.push(slot);
    }
    let mut per_model: Vec<Vec<EvalResult>> = slots.iter().map(|_| Vec::new()).collect();
    for suite in &suites {
        // A model stopped on the previous suite gets a fresh worker.
        for slot in slots.iter_mut().filter(|s| s.model.is_none() && s.load_error.is_none()) {
            match open_model(&slot.arg, spec) {
                Ok(model) => slot.model = Some(model),
                Err(e) => slot.load_error = Some(format!("model {} could not be loaded: {e:#}", slot.arg)),
            }
        }
        let mut running: Vec<usize> = Vec::new();
        let mut writers = Vec::new();
        let mut dones = Vec::new();
        for (i, slot) in slots.iter().enumerate() {
            let Some(model) = slot.model.as_deref() else { continue };
            let log = shard_log_path(&spec.out, &slot.name, &suite.name, spec.shard);
            let header = LogHeader { shard: spec.shard, ..eval::log_header_opts(model, suite, &spec.eval) };
            let (writer, done) = LogWriter::open(&log, &header, spec.fresh)?;
            if !done.is_empty() && spec.eval.progress {
                eprintln!("resuming {}: {} of {} samples already in the log", log.display(), done.len(), suite.samples.len());
            }
            running.push(i);
            writers.push(writer);
            dones.push(done);
        }
        let stats = if running.is_empty() {
            None
        } else {
            let mut jobs: Vec<eval::Job> = slots
                .iter_mut()
                .filter_map(|s| s.model.as_deref_mut())
                .zip(writers.iter_mut())
                .zip(dones.iter())
                .map(|((model, log), done)| eval::Job { model, log, done })
                .collect();
            let stats = eval::evaluate_many(&mut jobs, suite, &spec.eval);
            drop(jobs);
            match stats {
                Ok(s) => Some(s),
                Err(e) if e.is::<interrupt::Interrupted>() => return Err(e),
                Err(e) => return Err(e.context(format!("suite {}", suite.name))),
            }
        };
        let mut logs: Vec<Option<PathBuf>> = slots.iter().map(|_| None).collect();
        for (&i, writer) in running.iter().zip(writers) {
            logs[i] = Some(writer.path.clone());
            drop(writer);
        }
        for (i, slot) in slots.iter_mut().enumerate() {
            let result = match (&logs[i], &slot.load_error) {
                (Some(log), _) => {
                    let r = result_from_log(log, &slot.name, suite)?;
                    let j = running.iter().position(|&x| x == i).expect("running");
                    match stats.as_ref().and_then(|s| s.stopped[j].clone()) {
                        Some(why) => {
                            slot.model = None; // the next suite gets a fresh worker
                            r.with_error(why, suite.samples.len())
                        }
                        None => r,
                    }
                }
                (None, why) => stopped_result(&slot.name, suite, why.clone().unwrap_or_default()),
            };
            per_model[i].push(result);
        }
    }
    info.finish();
    let run = RunResult::new(per_model.into_iter().flatten().collect()).with_run(info);
    run.write(&result_path(&spec.out, spec.shard))?;
    Ok(run)
}
