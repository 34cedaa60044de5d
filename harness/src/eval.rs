//! The evaluation pipeline: samples -> decode -> preprocess -> batch -> model -> predictions log.
//!
//! Decoding and preprocessing run on a rayon pool one chunk ahead of inference (a bounded
//! channel holds one prepared chunk), so the CPU work and the model overlap and memory stays
//! bounded by two chunks whatever the suite size. Records are written in sample order and
//! flushed after every batch.

use std::collections::HashSet;
use std::sync::mpsc::sync_channel;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use shiftbench_model_config::is_wnid;

use crate::imaging::{load_tensor, Normaliser, MAX_FILE_BYTES};
use crate::interrupt::{self, Interrupted};
use crate::plugin::{ModelStopped, Scorer};
use crate::predlog::{LogHeader, LogWriter, Record, Status, LOG_VERSION};
use crate::suite::{Sample, Suite};

/// How many predictions each record keeps.
pub const TOP_K: usize = 5;

#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Images per model call (capped by the model's `max_batch`).
    pub batch: usize,
    /// Decode/preprocess threads.
    pub threads: usize,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions { batch: 32, threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1), progress: false }
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

pub fn log_header(model: &dyn Scorer, suite: &Suite) -> LogHeader {
    LogHeader {
        shiftbench_log: LOG_VERSION,
        model: model.card().name.to_string(),
        suite: suite.name.clone(),
        suite_digest: suite.digest.clone(),
        labels_digest: labels_digest(model.labels()),
    }
}

/// Indices of the `k` highest scores, best first; equal scores keep the lower index first (a
/// stable descending sort), so quantized models with tied scores rank deterministically.
pub fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    let mut top: Vec<usize> = Vec::with_capacity(k + 1);
    for (i, &s) in scores.iter().enumerate() {
        if top.len() == k && s <= scores[top[k - 1]] {
            continue;
        }
        let pos = top.iter().position(|&t| s > scores[t]).unwrap_or(top.len());
        top.insert(pos, i);
        top.truncate(k);
    }
    top
}

enum Prepared {
    Tensor(Vec<f32>),
    Failed(String),
    Missing(String),
}

fn prepare(s: &Sample, spec: &shiftbench_plugin::PreprocessSpec, norm: &Normaliser) -> Prepared {
    if !is_wnid(&s.wnid) {
        return Prepared::Failed(format!("label {:?} is not a WordNet id", s.wnid));
    }
    let bytes = match crate::safeio::read_bounded(&s.path, MAX_FILE_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Prepared::Missing(format!("{} does not exist", s.path.display()))
        }
        Err(e) => return Prepared::Failed(format!("cannot read {}: {e}", s.path.display())),
    };
    // A decoder bug must cost one sample, not the run.
    match std::panic::catch_unwind(|| load_tensor(&bytes, spec, norm)) {
        Ok(Ok(t)) => Prepared::Tensor(t),
        Ok(Err(e)) => Prepared::Failed(e),
        Err(_) => Prepared::Failed("the image decoder panicked on this file".into()),
    }
}

fn failed(s: &Sample, status: Status, error: String) -> Record {
    Record { id: s.id.clone(), wnid: s.wnid.clone(), status, top: vec![], scores: vec![], error: Some(error) }
}

/// Evaluates the suite's samples that are not in `done`, appending records to `log`.
/// Returns how many samples were evaluated now.
///
/// Stops early with [`ModelStopped`] when the model cannot go on (the batch in flight is logged
/// as failed with the reason; later samples stay out of the log), and with [`Interrupted`] when
/// [`interrupt::requested`] (after the batch in flight). Either way everything decided so far is
/// written and flushed first.
pub fn evaluate(
    model: &mut dyn Scorer,
    suite: &Suite,
    log: &mut LogWriter,
    done: &HashSet<String>,
    opts: &EvalOptions,
) -> Result<usize> {
    let spec = model.card().preprocess;
    let norm = Normaliser::new(&spec);
    let todo: Vec<&Sample> = suite.samples.iter().filter(|s| !done.contains(&s.id)).collect();
    let batch = model.batch_size(opts.batch);
    // Prepared tensors of one chunk are held at once: keep that under about 2 GiB too.
    let chunk = (batch * 4).clamp(64, 1024).min((2 * crate::plugin::MAX_BATCH_VALUES / spec.image_len().max(1)).max(batch));
    let k = TOP_K.min(model.labels().len());
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
        b.set_prefix(format!("{} on {}", model.card().name, suite.name));
        b
    } else {
        ProgressBar::hidden()
    };
    let image_len = spec.image_len();

    std::thread::scope(|scope| -> Result<usize> {
        let (tx, rx) = sync_channel::<Vec<Prepared>>(1);
        let todo_ref = &todo;
        let (norm_ref, pool_ref) = (&norm, &pool);
        scope.spawn(move || {
            for ch in todo_ref.chunks(chunk) {
                if interrupt::requested() {
                    break;
                }
                let prepared: Vec<Prepared> = pool_ref.install(|| ch.par_iter().map(|s| prepare(s, &spec, norm_ref)).collect());
                if tx.send(prepared).is_err() {
                    break;
                }
            }
        });

        let mut evaluated = 0usize;
        let mut input = Vec::with_capacity(batch * image_len);
        for (ci, prepared) in rx.into_iter().enumerate() {
            let samples = &todo[ci * chunk..(ci * chunk + prepared.len())];
            let mut records: Vec<Option<Record>> = vec![None; samples.len()];
            let mut pending: Vec<usize> = Vec::with_capacity(batch);
            let mut tensors: Vec<Option<Vec<f32>>> = Vec::with_capacity(samples.len());
            for (i, p) in prepared.into_iter().enumerate() {
                match p {
                    Prepared::Tensor(t) => tensors.push(Some(t)),
                    Prepared::Failed(e) => {
                        records[i] = Some(failed(samples[i], Status::Failed, e));
                        tensors.push(None);
                    }
                    Prepared::Missing(e) => {
                        records[i] = Some(failed(samples[i], Status::Missing, e));
                        tensors.push(None);
                    }
                }
            }
            let ready: Vec<usize> = (0..samples.len()).filter(|&i| tensors[i].is_some()).collect();
            let mut stop: Option<anyhow::Error> = None;
            // Records are written in sample order: `next` is the first one not yet written.
            let (mut next, mut written) = (0usize, 0usize);
            for group in ready.chunks(batch) {
                if interrupt::requested() {
                    stop = Some(Interrupted { log: log.path.clone(), done: 0, total: suite.samples.len() }.into());
                    break;
                }
                input.clear();
                pending.clear();
                for &i in group {
                    input.extend_from_slice(tensors[i].as_ref().expect("ready"));
                    pending.push(i);
                }
                match model.infer(&input, group.len()) {
                    Ok(scores) => {
                        let per = model.labels().len();
                        for (j, &i) in pending.iter().enumerate() {
                            let row = &scores[j * per..(j + 1) * per];
                            let s = samples[i];
                            records[i] = Some(if row.iter().any(|v| !v.is_finite()) {
                                failed(s, Status::Failed, format!("plugin {} returned non-finite scores", model.plugin_name()))
                            } else {
                                let top = top_k(row, k);
                                Record {
                                    id: s.id.clone(),
                                    wnid: s.wnid.clone(),
                                    status: Status::Ok,
                                    top: top.iter().map(|&t| model.labels()[t].clone()).collect(),
                                    scores: top.iter().map(|&t| row[t]).collect(),
                                    error: None,
                                }
                            });
                        }
                    }
                    Err(e) => {
                        for &i in &pending {
                            records[i] = Some(failed(samples[i], Status::Failed, format!("{e:#}")));
                        }
                        if e.downcast_ref::<ModelStopped>().is_some() {
                            stop = Some(e);
                            break;
                        }
                    }
                }
                for &i in group {
                    tensors[i] = None;
                }
                // Flush after every batch, so a crash of the harness itself loses at most one.
                while let Some(Some(r)) = records.get(next) {
                    log.write(r)?;
                    (next, written) = (next + 1, written + 1);
                    bar.inc(1);
                }
                log.flush()?;
            }
            if stop.is_none() && interrupt::requested() {
                stop = Some(Interrupted { log: log.path.clone(), done: 0, total: suite.samples.len() }.into());
            }
            // The rest: all decided, unless the model stopped (then the undecided stay out).
            for r in records[next..].iter().flatten() {
                log.write(r)?;
                written += 1;
                bar.inc(1);
            }
            log.flush()?;
            evaluated += written;
            if let Some(mut e) = stop {
                bar.abandon();
                if let Some(i) = e.downcast_mut::<Interrupted>() {
                    i.done = done.len() + evaluated;
                }
                return Err(e);
            }
        }
        if interrupt::requested() && done.len() + evaluated < suite.samples.len() {
            bar.abandon();
            return Err(Interrupted { log: log.path.clone(), done: done.len() + evaluated, total: suite.samples.len() }.into());
        }
        bar.finish_and_clear();
        Ok(evaluated)
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
}
