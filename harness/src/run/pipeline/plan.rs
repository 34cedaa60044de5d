//! The plan of a pass, made before any image is read: the distinct preprocessing specs among the
//! models (and which model uses which), the labels each model predicts among, its batch size,
//! which samples each model still needs (a resumed log skips what it has), and how the samples
//! that some model needs are cut into chunks.

use shiftbench_imaging::Normaliser;
use shiftbench_plugin::PreprocessSpec;

use crate::data::sample::Sample;
use crate::data::suite::Suite;
use crate::run::options::{requested_batch, EvalOptions};
use crate::run::pipeline::job::Job;
use crate::run::topk::allowed_labels;

/// Most bytes of crops one chunk may hold (a few chunks are in flight at once).
pub const CHUNK_BYTES: usize = 128 << 20;

/// What every stage of a pass needs to know about the jobs.
pub struct PassPlan<'s> {
    /// The distinct preprocessing specs, and their normalisation tables.
    pub specs: Vec<PreprocessSpec>,
    pub norms: Vec<Normaliser>,
    /// Per job: the index of its spec in `specs`.
    pub spec_of: Vec<usize>,
    /// Per job: the labels its predictions are taken over (None: all).
    pub allowed: Vec<Option<Vec<usize>>>,
    /// Per job: images per model call.
    pub batches: Vec<usize>,
    /// Per job: its labels and its plugin's name.
    pub labels: Vec<Vec<String>>,
    pub plugins: Vec<String>,
    /// The samples some job still needs, in suite order.
    pub todo: Vec<&'s Sample>,
    /// `need[t * jobs + j]`: job `j` needs `todo[t]`.
    need: Vec<bool>,
    pub jobs: usize,
    /// The chunks: ranges of `todo`. The first is one batch for every copy of every model, so
    /// that the models start as soon as possible.
    pub chunks: Vec<std::ops::Range<usize>>,
}

impl<'s> PassPlan<'s> {
    pub fn new(jobs: &[Job<'_>], suite: &'s Suite, opts: &EvalOptions) -> PassPlan<'s> {
        let n_jobs = jobs.len();
        let mut specs: Vec<PreprocessSpec> = Vec::new();
        let mut spec_of = Vec::with_capacity(n_jobs);
        for j in jobs {
            let s = j.model.card().preprocess;
            let i = specs.iter().position(|x| *x == s).unwrap_or_else(|| {
                specs.push(s);
                specs.len() - 1
            });
            spec_of.push(i);
        }
        let norms = specs.iter().map(Normaliser::new).collect();
        let allowed = jobs.iter().map(|j| allowed_labels(j.model.labels(), suite, opts.argmax)).collect();
        let batches: Vec<usize> =
            jobs.iter().map(|j| j.model.batch_size(requested_batch(opts.batch, 1 + j.extra.len()))).collect();
        let labels = jobs.iter().map(|j| j.model.labels().to_vec()).collect();
        let plugins = jobs.iter().map(|j| j.model.plugin_name().to_string()).collect();

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
        let per_round = batches.iter().zip(jobs).map(|(b, j)| b * (1 + j.extra.len())).max().unwrap_or(1);
        let max_batch = batches.iter().copied().max().unwrap_or(1);
        let chunk =
            (2 * per_round).clamp(64, 1024).min((CHUNK_BYTES / bytes_per_sample).max(16)).max(max_batch.min(1024));
        let first_chunk = per_round.min(chunk);
        let mut chunks = Vec::new();
        let mut at = 0;
        while at < todo.len() {
            let len = if at == 0 { first_chunk } else { chunk };
            chunks.push(at..(at + len).min(todo.len()));
            at += len;
        }
        PassPlan { specs, norms, spec_of, allowed, batches, labels, plugins, todo, need, jobs: n_jobs, chunks }
    }

    /// Whether job `j` needs sample `todo[t]`.
    pub fn needs(&self, t: usize, j: usize) -> bool {
        self.need[t * self.jobs + j]
    }
}
