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
//! [`CHUNK_BYTES`] of crops. Records are written in sample order and flushed after every batch.
//!
//! A model that stops (its worker crashed or hung, it broke the interface: [`ModelStopped`]) is
//! dropped from the pass: the batch in flight is logged as failed with the reason, its later
//! samples stay out of its log, and the other models go on. A stop asked for with Ctrl-C
//! ([`interrupt::requested`]) ends the pass after the batch in flight with [`Interrupted`].
//!
//! Models whose label set is not a subset of ImageNet-1k (ImageNet-21k/22k models) predict among
//! the suite's classes only (see [`Argmax`]), as the paper does.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use shiftbench_plugin::PreprocessSpec;

use image::RgbImage;

use crate::imaging::{decode_for, resize_crop_part, to_tensor, Normaliser};
use crate::interrupt::{self, Interrupted};
use crate::plugin::{ModelStopped, Scorer};
use crate::predlog::{LogHeader, LogWriter, Record, Status, LOG_VERSION};
use crate::sources::ReadError;
use crate::suite::{Sample, Suite};

/// How many predictions each record keeps.
pub const TOP_K: usize = 5;

/// Most bytes of crops one chunk may hold (a few chunks are in flight at once).
pub const CHUNK_BYTES: usize = 128 << 20;

/// Which labels a model's top-k is taken over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Argmax {
    /// All labels for models whose labels are all ImageNet-1k classes; the suite's classes for
    /// models with other labels (ImageNet-21k/22k), whose extra classes no suite sample has.
    #[default]
    Auto,
    /// Always only the suite's classes.
    Suite,
    /// Always every label the model has.
    All,
}

impl std::str::FromStr for Argmax {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Argmax::Auto),
            "suite" => Ok(Argmax::Suite),
            "all" => Ok(Argmax::All),
            o => Err(format!("argmax must be auto, suite or all, not {o:?}")),
        }
    }
}

/// Images per model call when nothing says otherwise, for a model running as one copy.
pub const DEFAULT_BATCH: usize = 32;
/// Images per model call when nothing says otherwise, for a model running as several copies:
/// each copy computes on one core, where small batches stay in its caches (mobilenetv2-12-int8
/// on the 1,000 samples: 5% faster end to end than batches of 32, at half the memory).
pub const DEFAULT_COPY_BATCH: usize = 8;

/// The images per call asked of a model with `copies` copies when the options say `batch`
/// (0: [`DEFAULT_BATCH`] or [`DEFAULT_COPY_BATCH`]); the model's own limit applies after this.
pub fn requested_batch(batch: usize, copies: usize) -> usize {
    match batch {
        0 if copies > 1 => DEFAULT_COPY_BATCH,
        0 => DEFAULT_BATCH,
        b => b,
    }
}

#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Images per model call (capped by the model's `max_batch`); 0: see [`requested_batch`].
    pub batch: usize,
    /// Decode/preprocess threads.
    pub threads: usize,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Which labels predictions are taken over.
    pub argmax: Argmax,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            batch: DEFAULT_BATCH,
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            progress: false,
            argmax: Argmax::Auto,
        }
    }
}

pub fn labels_digest(labels: &[String]) -> String {
    let mut h = Sha256::new();
    for l in labels {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    format!("{:x}", h.finalize())
}

fn imagenet1k() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| shiftbench_model_config::IMAGENET1K.lines().map(str::trim).filter(|l| !l.is_empty()).collect())
}

/// The label indices a model's predictions are taken over on `suite` (ascending), or `None` for
/// all of them. See [`Argmax`].
pub fn allowed_labels(labels: &[String], suite: &Suite, argmax: Argmax) -> Option<Vec<usize>> {
    let restrict = match argmax {
        Argmax::All => false,
        Argmax::Suite => true,
        Argmax::Auto => !labels.iter().all(|l| imagenet1k().contains(l.as_str())),
    };
    if !restrict {
        return None;
    }
    let universe = suite.universe();
    let allowed: Vec<usize> = (0..labels.len()).filter(|&i| universe.contains(&labels[i])).collect();
    (allowed.len() < labels.len()).then_some(allowed)
}

/// The log header of `model` on `suite`. The labels digest covers the labels predictions are
/// taken over, so a log made with another restriction is not resumed.
pub fn log_header_for(model: &dyn Scorer, suite: &Suite, allowed: Option<&[usize]>) -> LogHeader {
    let labels: Vec<String> = match allowed {
        None => model.labels().to_vec(),
        Some(a) => a.iter().map(|&i| model.labels()[i].clone()).collect(),
    };
    LogHeader {
        shiftbench_log: LOG_VERSION,
        model: model.card().name.to_string(),
        suite: suite.name.clone(),
        suite_digest: suite.digest.clone(),
        labels_digest: labels_digest(&labels),
        shard: None,
    }
}

/// The log header of `model` on `suite` under `opts`.
pub fn log_header_opts(model: &dyn Scorer, suite: &Suite, opts: &EvalOptions) -> LogHeader {
    let allowed = allowed_labels(model.labels(), suite, opts.argmax);
    log_header_for(model, suite, allowed.as_deref())
}

/// The log header of `model` on `suite` with predictions over all its labels.
pub fn log_header(model: &dyn Scorer, suite: &Suite) -> LogHeader {
    log_header_for(model, suite, None)
}

/// Indices of the `k` highest scores, best first; equal scores keep the lower index first (a
/// stable descending sort), so quantized models with tied scores rank deterministically.
pub fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    top_k_among(scores, None, k)
}

/// [`top_k`] over the indices in `allowed` (ascending) only, or over all when `None`.
pub fn top_k_among(scores: &[f32], allowed: Option<&[usize]>, k: usize) -> Vec<usize> {
    let mut top: Vec<usize> = Vec::with_capacity(k + 1);
    let mut consider = |i: usize| {
        let s = scores[i];
        if top.len() == k && s <= scores[top[k - 1]] {
            return;
        }
        let pos = top.iter().position(|&t| s > scores[t]).unwrap_or(top.len());
        top.insert(pos, i);
        top.truncate(k);
    };
    if k == 0 {
        return top;
    }
    match allowed {
        None => (0..scores.len()).for_each(&mut consider),
        Some(a) => a.iter().copied().for_each(&mut consider),
    }
    top
}

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
}

/// A sample after reading, decoding, resizing and cropping for every spec some model needs.
enum Prepared {
    /// Per spec: `None` when no model with that spec needs the sample, else the crop or why
    /// preprocessing failed.
    Crops(Vec<Option<Result<RgbImage, String>>>),
    Failed(String),
    Missing(String),
}

struct Counters {
    decoded: AtomicUsize,
    preprocessed: AtomicUsize,
}

fn prepare(s: &Sample, suite: &Suite, wanted: &[bool], specs: &[PreprocessSpec], n: &Counters) -> Prepared {
    if let Some(p) = suite.label_problem(&s.wnid) {
        return Prepared::Failed(p);
    }
    let bytes = match s.image.read() {
        Ok(b) => b,
        Err(ReadError::Missing(e)) => return Prepared::Missing(e),
        Err(ReadError::Failed(e)) => return Prepared::Failed(e),
    };
    n.decoded.fetch_add(1, Ordering::Relaxed);
    // Only the part of the image that the wanted specs read is decoded (a JPEG's center
    // region). A decoder bug must cost one sample, not the run.
    let read: Vec<&PreprocessSpec> = specs.iter().zip(wanted).filter(|(_, &w)| w).map(|(s, _)| s).collect();
    let img = match std::panic::catch_unwind(|| decode_for(&bytes, &read)) {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => return Prepared::Failed(e),
        Err(_) => return Prepared::Failed("the image decoder panicked on this file".into()),
    };
    drop(bytes);
    let crops = specs
        .iter()
        .zip(wanted)
        .map(|(spec, &w)| {
            w.then(|| {
                n.preprocessed.fetch_add(1, Ordering::Relaxed);
                std::panic::catch_unwind(|| resize_crop_part(&img, spec)).unwrap_or_else(|_| Err("preprocessing panicked on this image".to_string()))
            })
        })
        .collect();
    Prepared::Crops(crops)
}

/// The crop of sample `i` for spec `sp` (the pipeline asks only for prepared ones).
fn crop_of(prepared: &[Prepared], i: usize, sp: usize) -> &RgbImage {
    match &prepared[i] {
        Prepared::Crops(c) => match &c[sp] {
            Some(Ok(img)) => img,
            _ => unreachable!("a batch holds only samples with a crop for its spec"),
        },
        _ => unreachable!("a batch holds only prepared samples"),
    }
}

fn failed(s: &Sample, status: Status, error: String) -> Record {
    Record { id: s.id.clone(), wnid: s.wnid.clone(), status, top: vec![], scores: vec![], error: Some(error) }
}

/// Evaluates the suite's samples that are not in `done`, appending records to `log`.
/// Returns how many samples were evaluated now, or [`ModelStopped`] when the model stopped (the
/// batch in flight is logged as failed with the reason; later samples stay out of the log).
pub fn evaluate(model: &mut dyn Scorer, suite: &Suite, log: &mut LogWriter, done: &HashSet<String>, opts: &EvalOptions) -> Result<usize> {
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
    let n_jobs = jobs.len();
    let mut specs: Vec<PreprocessSpec> = Vec::new();
    let mut spec_of = Vec::with_capacity(n_jobs);
    for j in jobs.iter() {
        let s = j.model.card().preprocess;
        let i = specs.iter().position(|x| *x == s).unwrap_or_else(|| {
            specs.push(s);
            specs.len() - 1
        });
        spec_of.push(i);
    }
    let norms: Vec<Normaliser> = specs.iter().map(Normaliser::new).collect();
    let allowed: Vec<Option<Vec<usize>>> = jobs.iter().map(|j| allowed_labels(j.model.labels(), suite, opts.argmax)).collect();
    let batches: Vec<usize> = jobs.iter().map(|j| j.model.batch_size(requested_batch(opts.batch, 1 + j.extra.len()))).collect();
    let labels_of: Vec<Vec<String>> = jobs.iter().map(|j| j.model.labels().to_vec()).collect();
    let plugins: Vec<String> = jobs.iter().map(|j| j.model.plugin_name().to_string()).collect();

    // Which jobs need which samples: need[t * n_jobs + j].
    let mut todo: Vec<&Sample> = Vec::new();
    let mut need: Vec<bool> = Vec::new();
    for s in &suite.samples {
        let row: Vec<bool> = jobs.iter().map(|j| !j.done.contains(&s.id)).collect();
        if row.iter().any(|&b| b) {
            todo.push(s);
            need.extend(row);
        }
    }
    let bytes_per_sample: usize = specs.iter().map(|s| s.image_len()).sum::<usize>().max(1);
    // One batch for every copy of every model; a chunk holds two, so that every copy has
    // several batches to take.
    let per_round = batches.iter().zip(jobs.iter()).map(|(b, j)| b * (1 + j.extra.len())).max().unwrap_or(1);
    let per_chunk = 2 * per_round;
    let max_batch = batches.iter().copied().max().unwrap_or(1);
    let chunk = per_chunk.clamp(64, 1024).min((CHUNK_BYTES / bytes_per_sample).max(16)).max(max_batch.min(1024));

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .thread_name(|i| format!("shiftbench-decode-{i}"))
        .build()
        .context("cannot start decode threads")?;
    let bar = if opts.progress {
        let b = ProgressBar::new(todo.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .expect("template")
                .progress_chars("=> "),
        );
        let who = if n_jobs == 1 { jobs[0].model.card().name.to_string() } else { format!("{n_jobs} models") };
        b.set_prefix(format!("{who} on {}", suite.name));
        b
    } else {
        ProgressBar::hidden()
    };
    let counters = Counters { decoded: AtomicUsize::new(0), preprocessed: AtomicUsize::new(0) };
    let mut evaluated = vec![0usize; n_jobs];
    let mut stopped: Vec<Option<String>> = vec![None; n_jobs];
    // Jobs still going: the decoder prepares nothing for a stopped model.
    let alive: Vec<AtomicBool> = (0..n_jobs).map(|_| AtomicBool::new(true)).collect();
    let mut interrupted = false;

    // The first chunk is one batch per copy, so that the models start as soon as possible;
    // the rest are `chunk` samples.
    let first_chunk = per_round.min(chunk);
    let mut bounds = Vec::new();
    let mut at = 0;
    while at < todo.len() {
        let len = if at == 0 { first_chunk } else { chunk };
        bounds.push(at..(at + len).min(todo.len()));
        at += len;
    }

    std::thread::scope(|scope| -> Result<()> {
        // The decoder runs up to two chunks ahead of the models (one waiting in the channel), so
        // that its threads have work whenever a core is free, also while the models finish the
        // last batches of a chunk.
        let (tx, rx) = sync_channel::<(usize, Vec<Prepared>)>(1);
        let (todo_ref, need_ref, spec_of_ref, bounds_ref) = (&todo, &need, &spec_of, &bounds);
        let (specs_ref, pool_ref, counters_ref, alive_ref) = (&specs, &pool, &counters, &alive);
        let n_specs = specs.len();
        scope.spawn(move || {
            for range in bounds_ref.iter() {
                if interrupt::requested() || !alive_ref.iter().any(|a| a.load(Ordering::SeqCst)) {
                    break;
                }
                let first = range.start;
                let prepared: Vec<Prepared> = pool_ref.install(|| {
                    todo_ref[range.clone()]
                        .par_iter()
                        .enumerate()
                        .map(|(k, s)| {
                            let t = first + k;
                            let mut wanted = vec![false; n_specs];
                            for j in 0..n_jobs {
                                if need_ref[t * n_jobs + j] && alive_ref[j].load(Ordering::SeqCst) {
                                    wanted[spec_of_ref[j]] = true;
                                }
                            }
                            prepare(s, suite, &wanted, specs_ref, counters_ref)
                        })
                        .collect()
                });
                if tx.send((first, prepared)).is_err() {
                    break;
                }
            }
        });

        let mut input = Vec::new();
        for (first, prepared) in rx.into_iter() {
            let samples = &todo[first..first + prepared.len()];
            for (j, job) in jobs.iter_mut().enumerate() {
                if stopped[j].is_some() {
                    continue;
                }
                let mine: Vec<usize> = (0..samples.len()).filter(|&i| need[(first + i) * n_jobs + j]).collect();
                if mine.is_empty() {
                    continue;
                }
                let sp = spec_of[j];
                let mut records: Vec<Option<Record>> = vec![None; samples.len()];
                let mut ready: Vec<usize> = Vec::with_capacity(mine.len());
                for &i in &mine {
                    let s = samples[i];
                    match &prepared[i] {
                        Prepared::Failed(e) => records[i] = Some(failed(s, Status::Failed, e.clone())),
                        Prepared::Missing(e) => records[i] = Some(failed(s, Status::Missing, e.clone())),
                        Prepared::Crops(t) => match &t[sp] {
                            Some(Ok(_)) => ready.push(i),
                            Some(Err(e)) => records[i] = Some(failed(s, Status::Failed, e.clone())),
                            None => unreachable!("a needed sample of a running model is prepared for its spec"),
                        },
                    }
                }
                let per = job.model.labels().len();
                let k = TOP_K.min(allowed[j].as_ref().map_or(per, |a| a.len()));
                let groups: Vec<&[usize]> = ready.chunks(batches[j]).collect();
                // Records are written in sample order: `next` is the first one not yet written.
                let mut next = 0usize;
                let mut written = 0usize;
                let plugin = &plugins[j];
                let labels: &[String] = &labels_of[j];
                // What one batch's answer means for its samples' records; true when the model
                // stopped for good.
                let mut settle = |g: usize, answer: Result<Vec<f32>>, records: &mut Vec<Option<Record>>| -> bool {
                    let group = groups[g];
                    match answer {
                        Ok(scores) => {
                            for (n, &i) in group.iter().enumerate() {
                                let row = &scores[n * per..(n + 1) * per];
                                let s = samples[i];
                                records[i] = Some(if row.iter().any(|v| !v.is_finite()) {
                                    failed(s, Status::Failed, format!("plugin {plugin} returned non-finite scores"))
                                } else {
                                    let top = top_k_among(row, allowed[j].as_deref(), k);
                                    Record {
                                        id: s.id.clone(),
                                        wnid: s.wnid.clone(),
                                        status: Status::Ok,
                                        top: top.iter().map(|&t| labels[t].clone()).collect(),
                                        scores: top.iter().map(|&t| row[t]).collect(),
                                        error: None,
                                    }
                                });
                            }
                            false
                        }
                        Err(e) => {
                            for &i in group {
                                records[i] = Some(failed(samples[i], Status::Failed, format!("{e:#}")));
                            }
                            match e.downcast_ref::<ModelStopped>() {
                                Some(stop) => {
                                    if stopped[j].is_none() {
                                        stopped[j] = Some(stop.0.clone());
                                    }
                                    true
                                }
                                None => false,
                            }
                        }
                    }
                };
                // Scores batch `g` with one copy of the model: its crops are normalised straight
                // into the model's input (`buf`: a reusable buffer for models without their own).
                let (spec, norm) = (&specs[sp], &norms[sp]);
                let score = |g: usize, copy: &mut dyn Scorer, buf: &mut Vec<f32>| {
                    let group = groups[g];
                    let image_len = spec.image_len();
                    copy.infer_filled(group.len(), group.len() * image_len, buf, &mut |input: &mut [f32]| {
                        for (&i, dst) in group.iter().zip(input.chunks_exact_mut(image_len)) {
                            to_tensor(crop_of(&prepared, i, sp), spec, norm, dst);
                        }
                    })
                };
                // Batches are taken in order from a shared counter by this thread (the first
                // copy) and by one thread per extra copy; answers are settled here as they come,
                // and the records written as far as they are contiguous, flushed after every
                // batch, so a crash of the harness itself loses at most the batches in flight.
                let taken = AtomicUsize::new(0);
                let halt = AtomicBool::new(false);
                let take = || -> Option<usize> {
                    if halt.load(Ordering::SeqCst) {
                        return None;
                    }
                    if interrupt::requested() {
                        halt.store(true, Ordering::SeqCst);
                        return None;
                    }
                    let g = taken.fetch_add(1, Ordering::SeqCst);
                    (g < groups.len()).then_some(g)
                };
                let model = &mut *job.model;
                let log = &mut *job.log;
                let extra = &mut job.extra;
                let mut write_ready = |records: &Vec<Option<Record>>, next: &mut usize, written: &mut usize| -> Result<()> {
                    while let Some(Some(r)) = records.get(*next) {
                        log.write(r)?;
                        (*next, *written) = (*next + 1, *written + 1);
                    }
                    log.flush()?;
                    Ok(())
                };
                std::thread::scope(|sc| -> Result<()> {
                    let (atx, arx) = std::sync::mpsc::channel::<(usize, Result<Vec<f32>>)>();
                    for copy in extra.iter_mut() {
                        let atx = atx.clone();
                        let (take, score, halt) = (&take, &score, &halt);
                        sc.spawn(move || {
                            let mut buf = Vec::new();
                            while let Some(g) = take() {
                                let answer = score(g, &mut **copy, &mut buf);
                                let stop = matches!(&answer, Err(e) if e.is::<ModelStopped>());
                                if stop {
                                    halt.store(true, Ordering::SeqCst);
                                }
                                if atx.send((g, answer)).is_err() || stop {
                                    break;
                                }
                            }
                        });
                    }
                    drop(atx);
                    loop {
                        let mine = take();
                        if let Some(g) = mine {
                            let answer = score(g, &mut *model, &mut input);
                            if settle(g, answer, &mut records) {
                                halt.store(true, Ordering::SeqCst);
                            }
                        }
                        // The other copies' answers so far; once this thread has no batch left,
                        // all of them, until every copy is done.
                        loop {
                            let got = if mine.is_some() { arx.try_recv().ok() } else { arx.recv().ok() };
                            let Some((g, answer)) = got else { break };
                            if settle(g, answer, &mut records) {
                                halt.store(true, Ordering::SeqCst);
                            }
                        }
                        write_ready(&records, &mut next, &mut written)?;
                        if mine.is_none() {
                            return Ok(());
                        }
                    }
                })?;
                if stopped[j].is_some() {
                    alive[j].store(false, Ordering::SeqCst);
                } else if halt.load(Ordering::SeqCst) {
                    interrupted = true;
                }
                // The rest: all decided, unless the model stopped or a stop was asked for (then
                // the undecided stay out of the log).
                for r in records[next..].iter().flatten() {
                    log.write(r)?;
                    written += 1;
                }
                log.flush()?;
                evaluated[j] += written;
                if interrupted {
                    break;
                }
            }
            bar.inc(samples.len() as u64);
            let last = first + samples.len() >= todo.len();
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
        return Err(Interrupted { log: job.log.path.clone(), done: job.done.len() + evaluated[j], total: suite.samples.len() }.into());
    }
    if stopped.iter().any(Option::is_some) {
        bar.abandon();
    } else {
        bar.finish_and_clear();
    }
    Ok(PassStats {
        decoded: counters.decoded.load(Ordering::Relaxed),
        specs: specs.len(),
        preprocessed: counters.preprocessed.load(Ordering::Relaxed),
        evaluated,
        stopped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_breaks_ties_by_lower_index() {
        assert_eq!(top_k(&[0.1, 0.9, 0.5, 0.9, 0.2], 3), vec![1, 3, 2]);
        assert_eq!(top_k(&[1.0; 7], 5), vec![0, 1, 2, 3, 4]);
        assert_eq!(top_k(&[3.0, 1.0], 5), vec![0, 1]);
        assert_eq!(top_k(&[-1.0, -0.5, -2.0], 1), vec![1]);
        // Same as a stable descending sort on random data.
        let v: Vec<f32> = (0..1000u32).map(|i| ((i.wrapping_mul(2654435761) >> 7) % 97) as f32).collect();
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[b].partial_cmp(&v[a]).unwrap());
        assert_eq!(top_k(&v, 5), idx[..5].to_vec());
    }

    #[test]
    fn top_k_among_a_subset() {
        let s = [0.9, 0.1, 0.8, 0.8, 0.3];
        assert_eq!(top_k_among(&s, Some(&[1, 2, 3, 4]), 2), vec![2, 3]);
        assert_eq!(top_k_among(&s, Some(&[1, 4]), 5), vec![4, 1]);
        assert_eq!(top_k_among(&s, Some(&[]), 5), Vec::<usize>::new());
        assert_eq!(top_k_among(&s, None, 1), vec![0]);
    }
}
