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
pub mod jpeg;
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

use anyhow::{bail, Context, Result};

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
    /// Threads each copy of a model may use (0: one core's share per copy when a model runs as
    /// several copies, else the plugin decides).
    pub model_threads: u32,
    /// Copies of each model to run side by side (`--replicas`); `None`: the model YAML's
    /// `replicas:`, else [`auto_replicas`].
    pub replicas: Option<u32>,
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
    inner: Box<dyn Scorer + Send>,
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

/// Most copies [`auto_replicas`] makes of one model.
pub const AUTO_MAX_REPLICAS: u32 = 4;
/// [`auto_replicas`] keeps the model files of all copies of one model within this many bytes.
pub const AUTO_REPLICA_BYTES: u64 = 2 << 30;

/// How many copies of a model run side by side when neither `--replicas` nor the model YAML's
/// `replicas:` says: one per core (at most [`AUTO_MAX_REPLICAS`], and no more than fit
/// [`AUTO_REPLICA_BYTES`] of model files) for a model YAML that runs on the CPU, so that each
/// copy computes on one core without waiting on the others (a batch-1 model keeps every core
/// busy, and nobody spins); 1 for a model YAML whose `options.device` is not `cpu`, and for
/// plugins given without a model YAML (a plugin of one's own may not expect to be loaded twice).
pub fn auto_replicas(config: Option<&shiftbench_model_config::ModelConfig>, cores: u32) -> u32 {
    let Some(cfg) = config else { return 1 };
    let on_cpu = match cfg.options.get("device") {
        None => true,
        Some(v) => v.as_str().is_some_and(|d| d.eq_ignore_ascii_case("cpu")),
    };
    if !on_cpu {
        return 1;
    }
    let mut r = cores.clamp(1, AUTO_MAX_REPLICAS);
    if let Some(size) = cfg.model_file.as_deref().and_then(|f| std::fs::metadata(f).ok()).map(|m| m.len()) {
        r = r.min((AUTO_REPLICA_BYTES / size.max(1)).clamp(1, u32::MAX as u64) as u32);
    }
    r
}

/// Copies and threads per copy for `--model` `arg`: `spec.replicas`, else the model YAML's
/// `replicas:`, else [`auto_replicas`]; threads as `spec.model_threads` says, else each copy's
/// share of the cores when there are several copies, else 0 (the plugin decides).
pub fn replicas_and_threads(arg: &str, spec: &RunSpec) -> (u32, u32) {
    let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    let config = match Path::new(arg).extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => shiftbench_model_config::ModelConfig::load(Path::new(arg)).ok(),
        _ => None,
    };
    let replicas = spec
        .replicas
        .or(config.as_ref().and_then(|c| c.replicas))
        .unwrap_or_else(|| auto_replicas(config.as_ref(), cores))
        .max(1);
    let threads = match spec.model_threads {
        0 if replicas > 1 => (cores / replicas).max(1),
        t => t,
    };
    (replicas, threads)
}

/// A model's copies, all ready (the first is the one reported on).
type Replicas = Vec<Box<dyn Scorer + Send>>;

/// Opens `--model` `arg` as `spec.isolation` says, under its model YAML's `name:` if it sets one,
/// as many times as [`replicas_and_threads`] says (worker copies load in parallel). Returns the
/// copies and the threads each was asked to use.
fn open_model(arg: &str, spec: &RunSpec) -> Result<(Replicas, u32)> {
    let (replicas, threads) = replicas_and_threads(arg, spec);
    let name = yaml_name(arg);
    let copies = worker::open_scorers(arg, threads, &spec.isolation, replicas as usize)?;
    let mut models: Replicas = Vec::with_capacity(copies.len());
    let (card0, labels0) = (copies[0].card().clone(), copies[0].labels().to_vec());
    for model in copies {
        if model.card() != &card0 || model.labels() != labels0 {
            bail!("two copies of model {arg} describe themselves differently; run it with --replicas 1");
        }
        models.push(match &name {
            Some(n) if n != model.card().name.as_str() => {
                let mut card = model.card().clone();
                card.name = n.as_str().into();
                Box::new(Renamed { inner: model, card })
            }
            _ => model,
        });
    }
    Ok((models, threads))
}

/// Closes every copy of every model at the same time: a worker takes tens of milliseconds to
/// exit (its runtime's teardown), which one after the other would add up at the end of a run.
fn close_all(models: Vec<Replicas>) {
    std::thread::scope(|s| {
        for m in models.into_iter().flatten() {
            s.spawn(move || drop(m));
        }
    });
}

/// One `--model` of a run.
struct Slot {
    arg: String,
    name: String,
    /// Its copies; None once it failed to load or stopped on a suite (the next suite gets fresh
    /// workers).
    model: Option<Replicas>,
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
            Ok((models, threads)) => {
                let model = &models[0];
                let batch = model.batch_size(eval::requested_batch(spec.eval.batch, models.len()));
                let mut mi = ModelInfo::new(m, &r.library, r.config.as_deref(), model.plugin_name(), model.card(), model.labels(), batch);
                (mi.replicas, mi.threads) = (Some(models.len()), Some(threads));
                info.models.push(mi);
                Slot { arg: m.clone(), name: model.card().name.to_string(), model: Some(models), load_error: None }
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
                Ok((models, _)) => slot.model = Some(models),
                Err(e) => slot.load_error = Some(format!("model {} could not be loaded: {e:#}", slot.arg)),
            }
        }
        let mut running: Vec<usize> = Vec::new();
        let mut writers = Vec::new();
        let mut dones = Vec::new();
        for (i, slot) in slots.iter().enumerate() {
            let Some(model) = slot.model.as_ref().map(|m| &*m[0]) else { continue };
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
                .filter_map(|s| s.model.as_mut())
                .zip(writers.iter_mut())
                .zip(dones.iter())
                .map(|((models, log), done)| {
                    let (first, rest) = models.split_first_mut().expect("at least one copy");
                    let extra = rest.iter_mut().map(|m| &mut **m as &mut (dyn Scorer + Send)).collect();
                    eval::Job { model: &mut **first, extra, log, done }
                })
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
    close_all(slots.into_iter().filter_map(|s| s.model).collect());
    info.finish();
    let run = RunResult::new(per_model.into_iter().flatten().collect()).with_run(info);
    run.write(&result_path(&spec.out, spec.shard))?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, yaml: &str, model_bytes: u64) -> shiftbench_model_config::ModelConfig {
        std::fs::write(dir.join("m.onnx"), vec![0u8; model_bytes as usize]).unwrap();
        let p = dir.join("m.yaml");
        std::fs::write(&p, format!("plugin: onnx\nmodel: m.onnx\n{yaml}")).unwrap();
        shiftbench_model_config::ModelConfig::load(&p).unwrap()
    }

    #[test]
    fn auto_replicas_one_per_core_on_the_cpu_within_limits() {
        let d = tempfile::tempdir().unwrap();
        let small = config(d.path(), "", 1000);
        assert_eq!(auto_replicas(Some(&small), 2), 2);
        assert_eq!(auto_replicas(Some(&small), 1), 1);
        assert_eq!(auto_replicas(Some(&small), 64), AUTO_MAX_REPLICAS);
        assert_eq!(auto_replicas(Some(&config(d.path(), "options: {device: cpu}\n", 1000)), 8), 4);
        // A GPU model runs once; so does a plugin given without a model YAML.
        assert_eq!(auto_replicas(Some(&config(d.path(), "options: {device: cuda}\n", 1000)), 8), 1);
        assert_eq!(auto_replicas(None, 8), 1);
        // Copies of a big model stay within AUTO_REPLICA_BYTES of model files.
        let big = config(d.path(), "", AUTO_REPLICA_BYTES / 3 + 1);
        assert_eq!(auto_replicas(Some(&big), 8), 2);
    }

    #[test]
    fn replicas_and_threads_follow_the_flag_then_the_yaml() {
        let d = tempfile::tempdir().unwrap();
        config(d.path(), "replicas: 3\n", 10);
        let arg = d.path().join("m.yaml").to_string_lossy().into_owned();
        let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
        let spec = RunSpec::default();
        assert_eq!(replicas_and_threads(&arg, &spec), (3, (cores / 3).max(1)));
        let spec = RunSpec { replicas: Some(1), ..RunSpec::default() };
        assert_eq!(replicas_and_threads(&arg, &spec), (1, 0), "one copy: the plugin picks its threads");
        let spec = RunSpec { replicas: Some(2), model_threads: 5, ..RunSpec::default() };
        assert_eq!(replicas_and_threads(&arg, &spec), (2, 5));
        // replicas: 0 in a model YAML is refused when the YAML is read.
        std::fs::write(d.path().join("z.yaml"), "plugin: onnx\nmodel: m.onnx\nreplicas: 0\n").unwrap();
        let e = shiftbench_model_config::ModelConfig::load(&d.path().join("z.yaml")).unwrap_err().to_string();
        assert!(e.contains("replicas is 0"), "{e}");
    }
}
