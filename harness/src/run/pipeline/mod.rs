//! The evaluation pipeline: samples -> read + decode (once) -> preprocess (once per distinct
//! preprocessing spec) -> batches -> every model with that spec -> one predictions log per model.
//!
//! One pass over a suite serves every model of a run. Each image is read and decoded once (only
//! the part the crops read, for a JPEG), then resized and cropped once for each distinct
//! [`PreprocessSpec`] among the models that still need it (models resuming a log skip what they
//! already have), and the 8-bit crop is handed to every model with that spec, each in its own
//! batches and its own log. A crop is normalised to f32 only when its batch is assembled,
//! straight into the model's input: a worker's shared memory ([`Scorer::infer_filled`]), so a
//! tensor is written once and never copied.
//!
//! Reading and decoding run on a rayon pool up to two chunks ahead of inference (a bounded
//! channel holds one prepared chunk), so the CPU work and the models overlap, and memory stays
//! bounded by a few chunks whatever the suite size: chunks are sized so that one holds at most
//! [`plan::CHUNK_BYTES`] of crops. Records are written in sample order and flushed after every batch.
//!
//! A model that stops (its worker crashed or hung, it broke the interface: [`ModelStopped`]) is
//! dropped from the pass: the batch in flight is logged as failed with the reason, its later
//! samples stay out of its log, and the other models go on. A stop asked for with Ctrl-C
//! ([`interrupt::requested`]) ends the pass after the batch in flight with [`Interrupted`].
//!
//! Models whose label set is not a subset of ImageNet-1k (ImageNet-21k/22k models) predict among
//! the suite's classes only (see [`Argmax`](crate::run::options::Argmax)), as the paper does.
//!
//! The stages, each a file: [`job`] (one model's part: what it is given, what it did), [`plan`]
//! (who needs what, the chunks), [`prepare`] (read, decode, crop), [`dispatch`] (one model's
//! batches of a chunk, its records); [`evaluate_many`] runs them, telling a
//! [`Reporter`](crate::run::events::Reporter) as it goes.

pub mod dispatch;
pub mod job;
pub mod plan;
pub mod prepare;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::data::suite::Suite;
use crate::host::scorer::{ModelStopped, Scorer};
use crate::results::predlog::LogWriter;
use crate::run::events::{Event, Reporter, Silent};
use crate::run::options::EvalOptions;
use crate::util::interrupt::{self, Interrupted};
pub use job::{Job, JobOutcome};
use plan::PassPlan;
use prepare::{decode_chunks, Counters};

/// What a pass did as a whole (each job's part is in its [`JobOutcome`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassStats {
    /// Samples read and decoded (each at most once).
    pub decoded: usize,
    /// Distinct preprocessing specs among the models.
    pub specs: usize,
    /// Tensors made (at most one per decoded sample and spec).
    pub preprocessed: usize,
    /// Wall time of the whole pass (reading, decoding, preprocessing, every model, the logs).
    pub wall: Duration,
}

/// Evaluates the suite's samples that are not in `done`, appending records to `log`.
/// Returns how many samples were evaluated now, or [`ModelStopped`] when the model stopped (the
/// batch in flight is logged as failed with the reason; later samples stay out of the log).
pub fn evaluate(
    model: &mut dyn Scorer,
    suite: &Suite,
    log: &mut LogWriter,
    done: &HashSet<String>,
    opts: &EvalOptions,
) -> Result<usize> {
    let mut outcome = JobOutcome::default();
    let mut jobs = [Job { model, extra: Vec::new(), log, done, outcome: &mut outcome }];
    evaluate_many(&mut jobs, suite, opts, &Silent)?;
    match outcome.stopped.take() {
        Some(why) => Err(ModelStopped(why).into()),
        None => Ok(outcome.evaluated),
    }
}

/// One pass over `suite` for every job: each sample some job still needs is read and decoded
/// once, preprocessed once per distinct spec among the jobs that need it, and scored by each of
/// those jobs' models; each job's records go to its own log, in sample order, flushed after
/// every batch.
///
/// A job whose model stops ([`ModelStopped`]) is left out of the rest of the pass (see
/// [`JobOutcome::stopped`]); the others go on. When [`interrupt::requested`], the pass ends after
/// the batch in flight with [`Interrupted`], every log flushed. What happens goes to `reporter`:
/// the pass starting, each chunk scored, the pass finishing.
pub fn evaluate_many(
    jobs: &mut [Job<'_>],
    suite: &Suite,
    opts: &EvalOptions,
    reporter: &dyn Reporter,
) -> Result<PassStats> {
    let started = Instant::now();
    let plan = PassPlan::new(jobs, suite, opts);
    let n_jobs = jobs.len();
    for job in jobs.iter_mut() {
        *job.outcome = JobOutcome::default();
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .thread_name(|i| format!("shiftbench-decode-{i}"))
        .build()
        .context("cannot start decode threads")?;
    let names: Vec<String> = jobs.iter().map(|j| j.model.card().name.to_string()).collect();
    reporter.report(Event::PassStarted { suite: &suite.name, models: &names, samples: plan.todo.len() });
    let counters = Counters::default();
    // Jobs still going: the decoder prepares nothing for a stopped model.
    let alive: Vec<AtomicBool> = (0..n_jobs).map(|_| AtomicBool::new(true)).collect();
    let mut interrupted = false;

    std::thread::scope(|scope| -> Result<()> {
        // The decoder runs up to two chunks ahead of the models (one waiting in the channel), so
        // that its threads have work whenever a core is free, also while the models finish the
        // last batches of a chunk.
        let (tx, rx) = sync_channel(1);
        let (plan_ref, pool_ref, counters_ref, alive_ref) = (&plan, &pool, &counters, &alive);
        scope.spawn(move || decode_chunks(plan_ref, suite, pool_ref, counters_ref, alive_ref, tx));

        let mut scratch = Vec::new();
        for (first, prepared) in rx.into_iter() {
            for (j, job) in jobs.iter_mut().enumerate() {
                if job.outcome.stopped.is_some() || !(first..first + prepared.len()).any(|t| plan.needs(t, j)) {
                    continue;
                }
                let done = dispatch::score_chunk(job, j, &plan, first, &prepared, &mut scratch)?;
                let o = &mut *job.outcome;
                (o.evaluated, o.scored, o.model_time) =
                    (o.evaluated + done.written, o.scored + done.scored, o.model_time + done.model_time);
                if let Some(why) = done.stopped {
                    o.stopped = Some(why);
                    alive[j].store(false, Ordering::SeqCst);
                } else if done.halted {
                    interrupted = true;
                    break;
                }
            }
            reporter.report(Event::ChunkScored { samples: prepared.len() });
            let last = first + prepared.len() >= plan.todo.len();
            if interrupted || (!last && interrupt::requested()) {
                interrupted = true;
                break;
            }
        }
        Ok(())
    })?;
    let complete = !interrupted && jobs.iter().all(|j| j.outcome.stopped.is_none());
    reporter.report(Event::PassFinished { suite: &suite.name, complete });
    if interrupted {
        let job = jobs.iter().find(|j| j.outcome.stopped.is_none()).unwrap_or(&jobs[0]);
        return Err(Interrupted {
            log: job.log.path.clone(),
            done: job.done.len() + job.outcome.evaluated,
            total: suite.samples.len(),
        }
        .into());
    }
    Ok(PassStats {
        decoded: counters.decoded.load(Ordering::Relaxed),
        specs: plan.specs.len(),
        preprocessed: counters.preprocessed.load(Ordering::Relaxed),
        wall: started.elapsed(),
    })
}
