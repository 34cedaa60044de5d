//! The run layer: orchestration. [`run`] loads the suites, opens the models (each `--model`
//! resolved once, run as its copies), makes one pass over each suite for all models
//! ([`pipeline`]), scores each predictions log into a result and writes `result.json`. It holds
//! the output folder's lock meanwhile ([`lock_path`], [`DirLock`]): one run per folder (per shard)
//! at a time. Each model's speed in the run (from the pass's timings) goes into its [`ModelInfo`].
//!
//! - [`options`]: batch, threads, [`Argmax`]; [`topk`]: from scores to predictions;
//! - [`models`]: copies, threads and names of the models; [`pipeline`]: the pass, as stages;
//! - [`merge`]: shard logs into the unsharded result; [`score`]: results from logs or stored
//!   per-sample tables, and logs re-scored under another suite; [`sweep`]: a log re-scored at a
//!   range of LAIONet similarity thresholds; [`plan`]: run plans (YAML);
//! - [`similarity`]: the intra-class similarity of a model's embeddings per suite and class
//!   (`shiftbench similarity`), through the same pass.

pub mod merge;
pub mod models;
pub mod options;
pub mod pipeline;
pub mod plan;
pub mod score;
pub mod similarity;
pub mod sweep;
pub mod topk;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::data::suite::Suite;
use crate::host::card::card_summary;
use crate::host::model::ModelRef;
use crate::host::scorer::Scorer;
use crate::host::worker::Isolation;
use crate::results::identity::Identity;
use crate::results::paths::{lock_path, result_path, shard_log_path};
use crate::results::predlog::{read_log, LogHeader, LogWriter, Record};
use crate::results::provenance::{RunInfo, Speed, SuiteInfo};
use crate::results::result::{EvalResult, RunResult};
use crate::results::shard::Shard;
use crate::results::tally::Tally;
use crate::util::lock::{DirLock, Locked};
use crate::util::{interrupt, progress};
use models::{close_all, model_info, open_model, Slot};
pub use options::{Argmax, EvalOptions};
use pipeline::prepare::changed_images;

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
    /// `replicas:`, else [`models::auto_replicas`].
    pub replicas: Option<u32>,
    /// Replace existing logs instead of resuming them.
    pub fresh: bool,
    /// In a worker process per model (the CLI's default) or in this process.
    pub isolation: Isolation,
    /// Evaluate only this shard of every suite.
    pub shard: Option<Shard>,
}

/// Scores a suite's predictions log into a result.
pub fn result_from_log(log: &Path, model: &str, suite: &Suite) -> Result<EvalResult> {
    let (_, records) = read_log(log)?;
    Ok(EvalResult::weighted(model, &suite.name, &suite.weights, &Tally::from_records(&records)))
}

/// The result of a model that evaluated nothing on `suite`, with the reason.
fn stopped_result(model: &str, suite: &Suite, why: String) -> EvalResult {
    EvalResult::weighted(model, &suite.name, &suite.weights, &Tally::default()).with_error(why, suite.samples.len())
}

/// Evaluates every model on every suite (resuming logs that exist), writes
/// `<out>/result.json` (see [`result_path`]) and returns the results, model by model.
///
/// Each suite is one pass for all models ([`pipeline::evaluate_many`]): every image is read and
/// decoded once, and preprocessed once per distinct preprocessing spec, however many models
/// consume it.
///
/// Each model runs as `spec.isolation` says (a worker process per model, or in this process). A
/// model that cannot be loaded, or that stops (its worker crashed or hung, it panicked, it broke
/// the interface) gets a result with `error` set for that suite while the other models of the
/// pass go on; on the next suite it gets a fresh worker. A stop asked for with Ctrl-C returns
/// [`interrupt::Interrupted`] once the logs are flushed.
///
/// The run holds the lock of `spec.out` (of its shard) from start to end: while another run
/// holds it, this one is refused with an error that names the other ([`Locked`]); a lock left by a
/// killed run is taken over, with a note on stderr.
pub fn run(spec: &RunSpec) -> Result<RunResult> {
    let _lock = lock_output(spec)?;
    let mut info = RunInfo::start("run");
    (info.threads, info.batch, info.model_threads, info.shard) =
        (Some(spec.eval.threads), Some(spec.eval.batch), Some(spec.model_threads), spec.shard);
    // A misspelt --model fails now, not after hours of evaluating the others (and before the
    // suites are listed, so that it is the first thing said).
    let mut refs = Vec::with_capacity(spec.models.len());
    for m in &spec.models {
        refs.push(ModelRef::resolve(m).with_context(|| format!("model {m}"))?);
    }
    let suites = load_suites(spec, &mut info)?;
    let mut slots = open_slots(refs, spec, &mut info)?;
    let mut per_model: Vec<Vec<EvalResult>> = slots.iter().map(|_| Vec::new()).collect();
    let mut timings = vec![Timing::default(); slots.len()];
    for suite in &suites {
        for (i, result) in run_suite(&mut slots, suite, spec, &mut timings)?.into_iter().enumerate() {
            per_model[i].push(result);
        }
    }
    for (slot, t) in slots.iter().zip(&timings) {
        if let Some(mi) = info.models.iter_mut().find(|m| m.name == slot.name) {
            mi.speed = Speed::new(t.images, t.wall.as_secs_f64(), t.model.as_secs_f64());
        }
    }
    close_all(slots.into_iter().filter_map(|s| s.copies).collect());
    info.finish();
    let run = RunResult::new(per_model.into_iter().flatten().collect()).with_run(info).with_effective_robustness();
    run.write(&result_path(&spec.out, spec.shard))?;
    Ok(run)
}

/// Takes the lock of `spec.out` for this run (its shard's, for a shard: the shards of one run
/// share a folder), saying so when it takes over a stale one.
fn lock_output(spec: &RunSpec) -> Result<DirLock> {
    let lock = DirLock::acquire(&lock_path(&spec.out, spec.shard)).map_err(|e| {
        if !e.is::<Locked>() {
            return e;
        }
        let shard = spec.shard.map(|s| format!(" (shard {s})")).unwrap_or_default();
        e.context(format!(
            "{}{shard} is being written by another shiftbench run (one at a time: wait for it to finish, or give this run another --out)",
            spec.out.display()
        ))
    })?;
    if let Some(why) = &lock.took_over {
        eprintln!("note: taking over the lock {}: {why}", lock.path().display());
    }
    Ok(lock)
}

/// What a model's passes took in this run, over every suite (for its [`Speed`]).
#[derive(Debug, Default, Clone, Copy)]
struct Timing {
    /// Images given to the model.
    images: u64,
    /// Wall time of the passes in which it scored images.
    wall: Duration,
    /// Time inside its calls, over its copies.
    model: Duration,
}

/// Loads the run's suites (only this run's shard of each), printing what loading noticed, and
/// records them in `info`.
fn load_suites(spec: &RunSpec, info: &mut RunInfo) -> Result<Vec<Suite>> {
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
    Ok(suites)
}

/// Opens every model (a model that cannot be loaded gets a slot with its error, so every suite
/// gets an error row for it) and records the ones that opened in `info`. Two models under one
/// name are refused: they would share predictions logs.
fn open_slots(refs: Vec<ModelRef>, spec: &RunSpec, info: &mut RunInfo) -> Result<Vec<Slot>> {
    let mut slots: Vec<Slot> = Vec::new();
    for r in refs {
        let slot = match open_model(&r, spec) {
            Ok((copies, threads)) => {
                let mi = model_info(&r, &copies, threads, &spec.eval);
                let identity = Identity::of_model(&mi, &r).with("argmax", spec.eval.argmax.as_str());
                info.models.push(mi);
                let model = &copies[0];
                if r.assumed() {
                    eprintln!(
                        "{}: no model YAML, so the card was read from the model or assumed (torchvision's defaults): {}",
                        r.arg,
                        card_summary(model.card(), model.labels())
                    );
                    eprintln!(
                        "  if the model was trained otherwise (BGR, 0-255, another size), pin its card: shiftbench model init {} --out {}.yaml, edit, and pass the YAML",
                        r.arg,
                        model.card().name
                    );
                }
                let name = model.card().name.to_string();
                Slot { model: r, name, identity, copies: Some(copies), load_error: None }
            }
            Err(e) => {
                let load_error = Some(format!("model {} could not be loaded: {e:#}", r.arg));
                Slot { name: r.display_name(), model: r, identity: Identity::default(), copies: None, load_error }
            }
        };
        if let Some(other) = slots.iter().find(|o| o.name == slot.name) {
            anyhow::bail!(
                "models {} and {} are both named {:?}: they would share predictions logs; give them distinct `name:` in their model YAMLs",
                other.model.arg,
                slot.model.arg,
                slot.name
            );
        }
        slots.push(slot);
    }
    Ok(slots)
}

/// One pass over `suite` for every model that runs, then each model's result on it (slot by
/// slot): scored from its log, or an error row for a model that could not be loaded or stopped.
/// Adds what each model's pass took to its `timings`.
fn run_suite(slots: &mut [Slot], suite: &Suite, spec: &RunSpec, timings: &mut [Timing]) -> Result<Vec<EvalResult>> {
    // A model stopped on the previous suite gets a fresh worker.
    for slot in slots.iter_mut().filter(|s| s.copies.is_none() && s.load_error.is_none()) {
        match open_model(&slot.model, spec) {
            Ok((copies, _)) => slot.copies = Some(copies),
            Err(e) => slot.load_error = Some(format!("model {} could not be loaded: {e:#}", slot.model.arg)),
        }
    }
    let mut running: Vec<usize> = Vec::new();
    let mut writers = Vec::new();
    let mut dones = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        let Some(model) = slot.copies.as_ref().map(|m| &*m[0]) else { continue };
        let log = shard_log_path(&spec.out, &slot.name, &suite.name, spec.shard);
        let header = LogHeader {
            shard: spec.shard,
            identity: Some(slot.identity.clone()),
            ..topk::log_header_opts(model, suite, &spec.eval)
        };
        let changed = |records: &[Record]| changed_images(suite, records, spec.eval.threads);
        let (writer, resumed) = LogWriter::resume(&log, &header, spec.fresh, &changed)?;
        if let Some(line) = resumed.describe(&log, suite.samples.len()) {
            eprintln!("{line}");
        }
        let done = resumed.done;
        running.push(i);
        writers.push(writer);
        dones.push(done);
    }
    let stats = if running.is_empty() {
        None
    } else {
        let mut jobs: Vec<pipeline::Job> = slots
            .iter_mut()
            .filter_map(|s| s.copies.as_mut())
            .zip(writers.iter_mut())
            .zip(dones.iter())
            .map(|((copies, log), done)| {
                let (first, rest) = copies.split_first_mut().expect("at least one copy");
                let extra = rest.iter_mut().map(|m| &mut **m as &mut (dyn Scorer + Send)).collect();
                pipeline::Job { model: &mut **first, extra, log, done }
            })
            .collect();
        let stats = pipeline::evaluate_many(&mut jobs, suite, &spec.eval);
        drop(jobs);
        match stats {
            Ok(s) => {
                for (j, &i) in running.iter().enumerate().filter(|&(j, _)| s.scored[j] > 0) {
                    let t = &mut timings[i];
                    (t.images, t.wall, t.model) =
                        (t.images + s.scored[j] as u64, t.wall + s.wall, t.model + s.model_time[j]);
                }
                Some(s)
            }
            Err(e) if e.is::<interrupt::Interrupted>() => return Err(e),
            Err(e) => return Err(e.context(format!("suite {}", suite.name))),
        }
    };
    let mut logs: Vec<Option<PathBuf>> = slots.iter().map(|_| None).collect();
    for (&i, writer) in running.iter().zip(writers) {
        logs[i] = Some(writer.path.clone());
        drop(writer);
    }
    let mut results = Vec::with_capacity(slots.len());
    for (i, slot) in slots.iter_mut().enumerate() {
        let result = match (&logs[i], &slot.load_error) {
            (Some(log), _) => {
                let r = result_from_log(log, &slot.name, suite)?;
                let j = running.iter().position(|&x| x == i).expect("running");
                match stats.as_ref().and_then(|s| s.stopped[j].clone()) {
                    Some(why) => {
                        slot.copies = None; // the next suite gets a fresh worker
                        r.with_error(why, suite.samples.len())
                    }
                    None => r,
                }
            }
            (None, why) => stopped_result(&slot.name, suite, why.clone().unwrap_or_default()),
        };
        results.push(result);
    }
    Ok(results)
}
