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
//! The stages, each a file: [`plan`] (who needs what, the chunks), [`prepare`] (read, decode,
//! crop), [`dispatch`] (one model's batches of a chunk, its records); [`evaluate_many`] runs
//! them.

pub mod dispatch;
pub mod plan;
pub mod prepare;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::suite::Suite;
use crate::host::scorer::{ModelStopped, Scorer};
use crate::results::predlog::LogWriter;
use crate::run::options::EvalOptions;
use crate::util::interrupt::{self, Interrupted};
use plan::PassPlan;
use prepare::{decode_chunks, Counters};

/// One model's part in a pass: the model, its log and the sample ids its log already holds.
pub struct Job<'a> {
    pub model: &'a mut dyn Scorer,
    /// More copies of the same model (same card and labels), each scoring other batches at the
    /// same time on its own thread; empty for one copy.
    pub extra: Vec<&'a mut (dyn Scorer + Send)>,
    pub log: &'a mut LogWriter,
    pub done: &'a HashSet<String>,
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassStats {
    /// Samples read and decoded (each at most once).
    pub decoded: usize,
    /// Distinct preprocessing specs among the models.
    pub specs: usize,
    /// Tensors made (at most one per decoded sample and spec).
    pub preprocessed: usize,
    /// Samples evaluated now, per job.
    pub evaluated: Vec<usize>,
    /// Per job, why its model stopped ([`ModelStopped`]) when it did; its remaining samples were
    /// not evaluated.
    pub stopped: Vec<Option<String>>,
    /// Per job, images given to its model now (`evaluated` less the samples that failed before
    /// the model: unreadable or undecodable images).
    pub scored: Vec<usize>,
    /// Per job, wall time inside its model's calls, summed over its copies (see
    /// [`dispatch::ChunkDone::model_time`]).
    pub model_time: Vec<Duration>,
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
    let mut jobs = [Job { model, extra: Vec::new(), log, done }];
    let mut stats = evaluate_many(&mut jobs, suite, opts)?;
    match stats.stopped[0].take() {
        Some(why) => Err(ModelStopped(why).into()),
        None => Ok(stats.evaluated[0]),
    }
}

/// One pass over `suite` for every job: each sample some job still needs is read and decoded
/// once, preprocessed once per distinct spec among the jobs that need it, and scored by each of
/// those jobs' models; each job's records go to its own log, in sample order, flushed after
/// every batch.
///
/// A job whose model stops ([`ModelStopped`]) is left out of the rest of the pass (see
/// [`PassStats::stopped`]); the others go on. When [`interrupt::requested`], the pass ends after
/// the batch in flight with [`Interrupted`], every log flushed.
pub fn evaluate_many(jobs: &mut [Job<'_>], suite: &Suite, opts: &EvalOptions) -> Result<PassStats> {
    let started = Instant::now();
    let plan = PassPlan::new(jobs, suite, opts);
    let n_jobs = jobs.len();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .thread_name(|i| format!("shiftbench-decode-{i}"))
        .build()
        .context("cannot start decode threads")?;
    let bar = progress_bar(jobs, suite, plan.todo.len(), opts.progress);
    let counters = Counters::default();
    let mut evaluated = vec![0usize; n_jobs];
    let mut stopped: Vec<Option<String>> = vec![None; n_jobs];
    let (mut scored, mut model_time) = (vec![0usize; n_jobs], vec![Duration::ZERO; n_jobs]);
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
                if stopped[j].is_some() || !(first..first + prepared.len()).any(|t| plan.needs(t, j)) {
                    continue;
                }
                let done = dispatch::score_chunk(job, j, &plan, first, &prepared, &mut scratch)?;
                evaluated[j] += done.written;
                scored[j] += done.scored;
                model_time[j] += done.model_time;
                if let Some(why) = done.stopped {
                    stopped[j] = Some(why);
                    alive[j].store(false, Ordering::SeqCst);
                } else if done.halted {
                    interrupted = true;
                    break;
                }
            }
            bar.inc(prepared.len() as u64);
            let last = first + prepared.len() >= plan.todo.len();
            if interrupted || (!last && interrupt::requested()) {
                interrupted = true;
                break;
            }
        }
        Ok(())
    })?;
    if interrupted {
        bar.abandon();
        let (j, job) = jobs.iter().enumerate().find(|(j, _)| stopped[*j].is_none()).unwrap_or((0, &jobs[0]));
        return Err(Interrupted {
            log: job.log.path.clone(),
            done: job.done.len() + evaluated[j],
            total: suite.samples.len(),
        }
        .into());
    }
    if stopped.iter().any(Option::is_some) {
        bar.abandon();
    } else {
        bar.finish_and_clear();
    }
    Ok(PassStats {
        decoded: counters.decoded.load(Ordering::Relaxed),
        specs: plan.specs.len(),
        preprocessed: counters.preprocessed.load(Ordering::Relaxed),
        evaluated,
        stopped,
        scored,
        model_time,
        wall: started.elapsed(),
    })
}

/// The pass's progress bar (hidden unless `enabled`).
fn progress_bar(jobs: &[Job<'_>], suite: &Suite, len: usize, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len as u64);
    b.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    let who = if jobs.len() == 1 { jobs[0].model.card().name.to_string() } else { format!("{} models", jobs.len()) };
    b.set_prefix(format!("{who} on {}", suite.name));
    b
}
