//! The evaluation pipeline: samples -> decode -> preprocess -> batch -> model -> predictions log.
//!
//! Decoding and preprocessing run on a rayon pool one chunk ahead of inference (a bounded
//! channel holds one prepared chunk), so the CPU work and the model overlap and memory stays
//! bounded by two chunks whatever the suite size. Records are written in sample order and
//! flushed after every chunk.

use std::collections::HashSet;
use std::sync::mpsc::sync_channel;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::imaging::{load_tensor, Normaliser};
use crate::plugin::Scorer;
use crate::predlog::{LogHeader, LogWriter, Record, Status, LOG_VERSION};
use crate::sources::ReadError;
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

fn prepare(s: &Sample, suite: &Suite, spec: &shiftbench_plugin::PreprocessSpec, norm: &Normaliser) -> Prepared {
    if let Some(p) = suite.label_problem(&s.wnid) {
        return Prepared::Failed(p);
    }
    let bytes = match s.image.read() {
        Ok(b) => b,
        Err(ReadError::Missing(e)) => return Prepared::Missing(e),
        Err(ReadError::Failed(e)) => return Prepared::Failed(e),
    };
    match load_tensor(&bytes, spec, norm) {
        Ok(t) => Prepared::Tensor(t),
        Err(e) => Prepared::Failed(e),
    }
}

fn failed(s: &Sample, status: Status, error: String) -> Record {
    Record { id: s.id.clone(), wnid: s.wnid.clone(), status, top: vec![], scores: vec![], error: Some(error) }
}

/// Evaluates the suite's samples that are not in `done`, appending records to `log`.
/// Returns how many samples were evaluated now.
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
    let chunk = (batch * 4).clamp(64, 1024);
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
                let prepared: Vec<Prepared> = pool_ref.install(|| ch.par_iter().map(|s| prepare(s, suite, &spec, norm_ref)).collect());
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
            for group in ready.chunks(batch) {
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
                    }
                }
                for &i in group {
                    tensors[i] = None;
                }
            }
            for r in records.into_iter().flatten() {
                log.write(&r)?;
            }
            log.flush()?;
            evaluated += samples.len();
            bar.inc(samples.len() as u64);
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
