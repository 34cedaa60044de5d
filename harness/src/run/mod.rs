//! The run layer: orchestration. Every command that runs models stands on a [`session`]: it
//! holds the output folder's lock (one run per folder and shard at a time), loads the suites,
//! resolves and opens the models and their logs, and drives passes, telling a
//! [`Reporter`](events::Reporter) what happens ([`events`]: the seam to the CLI, which alone
//! prints). [`run`] makes one pass over each suite for all models ([`pipeline`]), scores each
//! predictions log into a result and writes `result.json`; each model's speed in the run (from its
//! passes' timings) goes into its [`ModelInfo`](crate::results::provenance::ModelInfo).
//!
//! - [`session`]: the session; [`events`]: what it says;
//! - [`options`]: batch, threads, [`Argmax`]; [`topk`]: from scores to predictions;
//! - [`models`]: copies, threads and names of the models; [`pipeline`]: the pass, as stages;
//! - [`merge`]: shard logs into the unsharded result; [`score`]: results from logs or stored
//!   per-sample tables, and logs re-scored under another suite; [`sweep`]: a log re-scored at a
//!   range of LAIONet similarity thresholds; [`plan`]: run plans (YAML);
//! - [`similarity`]: the intra-class similarity of a model's embeddings per suite and class
//!   (`shiftbench similarity`), through the same pass.

pub mod events;
pub mod laionet;
pub mod merge;
pub mod models;
pub mod options;
pub mod pipeline;
pub mod plan;
pub mod score;
pub mod session;
pub mod similarity;
pub mod sweep;
pub mod topk;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::data::suite::Suite;
use crate::host::model::ModelRef;
use crate::host::scorer::Scorer;
use crate::host::worker::Isolation;
use crate::results::identity::Identity;
use crate::results::paths::{result_path, shard_log_path};
use crate::results::predlog::{read_log, LogHeader, LogWriter};
use crate::results::provenance::Speed;
use crate::results::result::{EvalResult, RunResult};
use crate::results::shard::Shard;
use crate::results::tally::Tally;
use events::{Reporter, Silent};
use models::{close_all, Replicas};
pub use options::{Argmax, EvalOptions};
use pipeline::{Job, JobOutcome};
use session::{ModelOptions, Session};

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

impl RunSpec {
    /// How its models' copies are opened.
    pub fn model_options(&self) -> ModelOptions {
        ModelOptions { model_threads: self.model_threads, replicas: self.replicas, isolation: self.isolation.clone() }
    }
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

/// [`run_with`], telling nobody what happens.
pub fn run(spec: &RunSpec) -> Result<RunResult> {
    run_with(spec, &Silent)
}

/// Evaluates every model on every suite (resuming logs that are the same model's), writes
/// `<out>/result.json` (see [`result_path`]) and returns the results, model by model; what happens
/// goes to `reporter`.
///
/// Each suite is one pass for all models ([`pipeline::evaluate_many`]): every image is read and
/// decoded once, and preprocessed once per distinct preprocessing spec, however many models
/// consume it.
///
/// Each model runs as `spec.isolation` says (a worker process per model, or in this process). A
/// model that cannot be loaded, or that stops (its worker crashed or hung, it panicked, it broke
/// the interface) gets a result with `error` set for that suite while the other models of the
/// pass go on; on the next suite it gets a fresh worker. A stop asked for with Ctrl-C returns
/// [`interrupt::Interrupted`](crate::util::interrupt::Interrupted) once the logs are flushed.
///
/// The run holds the lock of `spec.out` (of its shard) from the suites' loading to the end
/// ([`Session::lock`]).
pub fn run_with(spec: &RunSpec, reporter: &dyn Reporter) -> Result<RunResult> {
    // A misspelt --model fails now, before the folder is locked or a suite listed.
    let refs = Session::resolve(&spec.models)?;
    let mut session = Session::new("run", reporter);
    let info = &mut session.info;
    (info.threads, info.batch, info.model_threads) =
        (Some(spec.eval.threads), Some(spec.eval.batch), Some(spec.model_threads));
    let suites = session.load_suites(&spec.suites, spec.shard)?;
    session.lock(&spec.out, spec.shard)?;
    let mut models = open_models(&mut session, refs, spec)?;
    for suite in &suites {
        run_suite(&session, &mut models, suite, spec)?;
    }
    for m in &models {
        if let Some(mi) = session.info.models.iter_mut().find(|mi| mi.name == m.name) {
            let t = &m.timing;
            mi.speed = Speed::new(t.images, t.wall.as_secs_f64(), t.model.as_secs_f64());
        }
    }
    let info = session.finish();
    close_all(models.iter_mut().filter_map(|m| m.copies.take()).collect());
    let results = models.into_iter().flat_map(|m| m.results).collect();
    let run = RunResult::new(results).with_run(info).with_effective_robustness();
    run.write(&result_path(&spec.out, spec.shard))?;
    Ok(run)
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

/// One `--model` of a run, and what it has done so far.
struct RunModel {
    model: ModelRef,
    name: String,
    /// What decides its predictions (written into its logs' headers; empty when it did not load).
    identity: Identity,
    /// Its copies; None once it failed to load or stopped on a suite (the next suite gets fresh
    /// copies).
    copies: Option<Replicas>,
    /// Why it could not be loaded: every suite gets an error row.
    load_error: Option<String>,
    /// Its results, suite by suite.
    results: Vec<EvalResult>,
    timing: Timing,
}

/// Opens every model (a model that cannot be loaded gets an error, so every suite gets an error
/// row for it). Two models under one name are refused: they would share predictions logs.
fn open_models(session: &mut Session<'_>, refs: Vec<ModelRef>, spec: &RunSpec) -> Result<Vec<RunModel>> {
    let mut models: Vec<RunModel> = Vec::new();
    for r in refs {
        let (name, identity, copies, load_error) = match session.open_model(&r, &spec.model_options(), &spec.eval) {
            Ok(m) => (m.name, m.identity.with("argmax", spec.eval.argmax.as_str()), Some(m.copies), None),
            Err(e) => (
                r.display_name(),
                Identity::default(),
                None,
                Some(format!("model {} could not be loaded: {e:#}", r.arg)),
            ),
        };
        if let Some(other) = models.iter().find(|o| o.name == name) {
            anyhow::bail!(
                "models {} and {} are both named {:?}: they would share predictions logs; give them distinct `name:` in their model YAMLs",
                other.model.arg,
                r.arg,
                name
            );
        }
        models.push(RunModel {
            model: r,
            name,
            identity,
            copies,
            load_error,
            results: Vec::new(),
            timing: Timing::default(),
        });
    }
    Ok(models)
}

/// A model's part in one pass: its log, what the log already holds, and what the pass did.
struct InPass {
    log: LogWriter,
    done: std::collections::HashSet<String>,
    outcome: JobOutcome,
}

/// One pass over `suite` for every model that runs, then each model's result on it: scored from
/// its log, or an error row for a model that could not be loaded or stopped. Adds what each
/// model's pass took to its timing.
fn run_suite(session: &Session<'_>, models: &mut [RunModel], suite: &Suite, spec: &RunSpec) -> Result<()> {
    // A model stopped on the previous suite gets fresh copies.
    for m in models.iter_mut().filter(|m| m.copies.is_none() && m.load_error.is_none()) {
        match session.reopen(&m.model, &spec.model_options()) {
            Ok(copies) => m.copies = Some(copies),
            Err(e) => m.load_error = Some(format!("model {} could not be loaded: {e:#}", m.model.arg)),
        }
    }
    // Each running model's log, opened (resumed when it is the same model's).
    let mut parts: Vec<Option<InPass>> = Vec::with_capacity(models.len());
    for m in models.iter() {
        let Some(first) = m.copies.as_ref().map(|c| &*c[0]) else {
            parts.push(None);
            continue;
        };
        let path = shard_log_path(&spec.out, &m.name, &suite.name, spec.shard);
        let header = LogHeader {
            shard: spec.shard,
            identity: Some(m.identity.clone()),
            ..topk::log_header_opts(first, suite, &spec.eval)
        };
        let (log, done) = session.open_log(&path, &header, suite, spec.fresh, spec.eval.threads)?;
        parts.push(Some(InPass { log, done, outcome: JobOutcome::default() }));
    }
    let stats = {
        let mut jobs: Vec<Job<'_>> = models
            .iter_mut()
            .zip(parts.iter_mut())
            .filter_map(|(m, part)| {
                let (copies, part) = (m.copies.as_mut()?, part.as_mut()?);
                let (first, rest) = copies.split_first_mut().expect("at least one copy");
                let extra = rest.iter_mut().map(|c| &mut **c as &mut (dyn Scorer + Send)).collect();
                Some(Job {
                    model: &mut **first,
                    extra,
                    log: &mut part.log,
                    done: &part.done,
                    outcome: &mut part.outcome,
                })
            })
            .collect();
        if jobs.is_empty() {
            None
        } else {
            Some(session.pass(suite, &mut jobs, &spec.eval)?)
        }
    };
    for (m, part) in models.iter_mut().zip(parts) {
        let result = match (part, &m.load_error) {
            (Some(part), _) => {
                let o = &part.outcome;
                if let (Some(s), true) = (&stats, o.scored > 0) {
                    let t = &mut m.timing;
                    (t.images, t.wall, t.model) = (t.images + o.scored as u64, t.wall + s.wall, t.model + o.model_time);
                }
                let path = part.log.path.clone();
                drop(part.log);
                let r = result_from_log(&path, &m.name, suite)?;
                match &o.stopped {
                    Some(why) => {
                        m.copies = None; // the next suite gets fresh copies
                        r.with_error(why.clone(), suite.samples.len())
                    }
                    None => r,
                }
            }
            (None, why) => stopped_result(&m.name, suite, why.clone().unwrap_or_default()),
        };
        m.results.push(result);
    }
    Ok(())
}
