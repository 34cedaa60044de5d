//! One model's share of a prepared chunk: its samples that failed before the model are logged as
//! such; the rest go to the model in batches, taken in order from a shared counter by every copy
//! of the model (one thread each), normalised straight into the model's input; answers are
//! turned into records (top-k, or why the batch failed) and written in sample order, flushed
//! after every batch, so a crash of the harness itself loses at most the batches in flight.
//!
//! Each model call is timed (two `Instant`s per batch, and two around the normalisation into its
//! input, which is the harness's work and is left out): [`ChunkDone::model_time`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use shiftbench_imaging::to_tensor;

use crate::host::scorer::{ModelStopped, Output, Scorer};
use crate::results::predlog::{Record, Status};
use crate::run::pipeline::job::Job;
use crate::run::pipeline::plan::PassPlan;
use crate::run::pipeline::prepare::{crop_of, Outcome, Prepared};
use crate::run::topk::{top_k_among, TOP_K};
use crate::util::interrupt;

/// What a job's share of a chunk came to.
#[derive(Debug, Default)]
pub struct ChunkDone {
    /// Records written to the job's log.
    pub written: usize,
    /// Why the model stopped for good, if it did (its undecided samples stay out of the log).
    pub stopped: Option<String>,
    /// Batches were left untaken because a stop was asked for or the model stopped.
    pub halted: bool,
    /// Images given to the model (in batches it answered or failed).
    pub scored: usize,
    /// Wall time inside the model's calls (`Scorer::infer_filled`, less the normalisation of the
    /// crops into its input), summed over its copies.
    pub model_time: Duration,
}

/// Scores job `j`'s samples among `prepared` (the chunk of the plan's samples that starts at
/// `first`) and writes their records to its log. `scratch` is the input buffer of the job's
/// first copy (for models without one of their own).
pub fn score_chunk(
    job: &mut Job<'_>,
    j: usize,
    plan: &PassPlan,
    first: usize,
    prepared: &[Prepared],
    scratch: &mut Vec<f32>,
) -> Result<ChunkDone> {
    let samples = &plan.todo[first..first + prepared.len()];
    let sp = plan.spec_of[j];
    let mut records: Vec<Option<Record>> = vec![None; samples.len()];
    let mut ready: Vec<usize> = Vec::new();
    // The record of sample `i`, with the fingerprint of its image; one without a prediction.
    let record = |i: usize, status: Status| Record {
        image: prepared[i].image.clone(),
        ..Record::of(&samples[i].id, &samples[i].wnid, status)
    };
    let failed = |i: usize, status: Status, error: String| Record { error: Some(error), ..record(i, status) };
    for i in (0..samples.len()).filter(|&i| plan.needs(first + i, j)) {
        match &prepared[i].outcome {
            Outcome::Failed(e) => records[i] = Some(failed(i, Status::Failed, e.clone())),
            Outcome::Missing(e) => records[i] = Some(failed(i, Status::Missing, e.clone())),
            Outcome::Crops(t) => match &t[sp] {
                Some(Ok(_)) => ready.push(i),
                Some(Err(e)) => records[i] = Some(failed(i, Status::Failed, e.clone())),
                None => unreachable!("a needed sample of a running model is prepared for its spec"),
            },
        }
    }
    let labels: &[String] = &plan.labels[j];
    // Scores per image, or values per embedding for a model asked for its embeddings.
    let embedding = job.model.output() == Output::Embedding;
    let per = job.model.row_len();
    let allowed = plan.allowed[j].as_deref();
    let k = TOP_K.min(allowed.map_or(per, |a| a.len()));
    let groups: Vec<&[usize]> = ready.chunks(plan.batches[j]).collect();
    let plugin = &plan.plugins[j];
    let mut stopped: Option<String> = None;

    // What one batch's answer means for its samples' records; true when the model stopped.
    let mut settle = |g: usize, answer: Result<Vec<f32>>, records: &mut Vec<Option<Record>>| -> bool {
        let group = groups[g];
        match answer {
            Ok(scores) => {
                for (n, &i) in group.iter().enumerate() {
                    let row = &scores[n * per..(n + 1) * per];
                    records[i] = Some(if row.iter().any(|v| !v.is_finite()) {
                        let what = if embedding { "a non-finite embedding" } else { "non-finite scores" };
                        failed(i, Status::Failed, format!("plugin {plugin} returned {what}"))
                    } else if embedding {
                        Record { embedding: row.to_vec(), ..record(i, Status::Ok) }
                    } else {
                        let top = top_k_among(row, allowed, k);
                        Record {
                            top: top.iter().map(|&t| labels[t].clone()).collect(),
                            scores: top.iter().map(|&t| row[t]).collect(),
                            ..record(i, Status::Ok)
                        }
                    });
                }
                false
            }
            Err(e) => {
                for &i in group {
                    records[i] = Some(failed(i, Status::Failed, format!("{e:#}")));
                }
                match e.downcast_ref::<ModelStopped>() {
                    Some(stop) => {
                        stopped.get_or_insert_with(|| stop.0.clone());
                        true
                    }
                    None => false,
                }
            }
        }
    };
    // Scores batch `g` with one copy of the model: its crops are normalised straight into the
    // model's input (`buf`: a reusable buffer for models without their own). The call is timed,
    // less the normalisation.
    let (spec, norm) = (&plan.specs[sp], &plan.norms[sp]);
    let (model_nanos, scored) = (AtomicU64::new(0), AtomicUsize::new(0));
    let score = |g: usize, copy: &mut dyn Scorer, buf: &mut Vec<f32>| {
        let group = groups[g];
        let image_len = spec.image_len();
        let (start, mut filling) = (Instant::now(), Duration::ZERO);
        let answer = copy.infer_filled(group.len(), group.len() * image_len, buf, &mut |input: &mut [f32]| {
            let t = Instant::now();
            for (&i, dst) in group.iter().zip(input.chunks_exact_mut(image_len)) {
                to_tensor(crop_of(prepared, i, sp), spec, norm, dst);
            }
            filling += t.elapsed();
        });
        let inside = start.elapsed().saturating_sub(filling);
        model_nanos.fetch_add(u64::try_from(inside.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        scored.fetch_add(group.len(), Ordering::Relaxed);
        answer
    };
    // Batches are taken in order from a shared counter by this thread (the first copy) and by one
    // thread per extra copy; answers are settled here as they come.
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
    // Records are written in sample order: `next` is the first one not yet written.
    let (mut next, mut written) = (0usize, 0usize);
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
                let answer = score(g, &mut *model, scratch);
                if settle(g, answer, &mut records) {
                    halt.store(true, Ordering::SeqCst);
                }
            }
            // The other copies' answers so far; once this thread has no batch left, all of
            // them, until every copy is done.
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
    // The rest: all decided, unless the model stopped or a stop was asked for (then the
    // undecided stay out of the log).
    for r in records[next..].iter().flatten() {
        log.write(r)?;
        written += 1;
    }
    log.flush()?;
    Ok(ChunkDone {
        written,
        stopped,
        halted: halt.load(Ordering::SeqCst),
        scored: scored.into_inner(),
        model_time: Duration::from_nanos(model_nanos.into_inner()),
    })
}
