//! The decode stage: each sample some model still needs is read and decoded once (only the part
//! the crops read, for a JPEG), then resized and cropped once per spec that a model still
//! running needs. It runs on a rayon pool, a chunk at a time, ahead of the models.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;

use image::RgbImage;
use rayon::prelude::*;
use shiftbench_imaging::{decode_for, resize_crop_part};
use shiftbench_plugin::PreprocessSpec;

use crate::data::sample::{ReadError, Sample};
use crate::data::suite::Suite;
use crate::results::predlog::Record;
use crate::run::pipeline::plan::PassPlan;
use crate::util::digest::fingerprint;
use crate::util::interrupt;

/// A sample after reading, decoding, resizing and cropping for every spec some model needs, with
/// the fingerprint of the bytes read (None when none were).
pub struct Prepared {
    pub image: Option<String>,
    pub outcome: Outcome,
}

/// What became of a sample in the decode stage.
pub enum Outcome {
    /// Per spec: `None` when no model with that spec needs the sample, else the crop or why
    /// preprocessing failed.
    Crops(Vec<Option<Result<RgbImage, String>>>),
    Failed(String),
    Missing(String),
}

#[derive(Default)]
pub struct Counters {
    pub decoded: AtomicUsize,
    pub preprocessed: AtomicUsize,
}

pub fn prepare(s: &Sample, suite: &Suite, wanted: &[bool], specs: &[PreprocessSpec], n: &Counters) -> Prepared {
    if let Some(p) = suite.label_problem(&s.wnid) {
        return Prepared { image: None, outcome: Outcome::Failed(p) };
    }
    let bytes = match s.image.read() {
        Ok(b) => b,
        Err(ReadError::Missing(e)) => return Prepared { image: None, outcome: Outcome::Missing(e) },
        Err(ReadError::Failed(e)) => return Prepared { image: None, outcome: Outcome::Failed(e) },
    };
    let image = Some(fingerprint(&bytes));
    let outcome = decode_and_crop(&bytes, wanted, specs, n);
    Prepared { image, outcome }
}

/// Decodes `bytes` (only what the wanted specs read) and crops it for each wanted spec.
fn decode_and_crop(bytes: &[u8], wanted: &[bool], specs: &[PreprocessSpec], n: &Counters) -> Outcome {
    n.decoded.fetch_add(1, Ordering::Relaxed);
    // Only the part of the image that the wanted specs read is decoded (a JPEG's center
    // region). A decoder bug must cost one sample, not the run.
    let read: Vec<&PreprocessSpec> = specs.iter().zip(wanted).filter(|(_, &w)| w).map(|(s, _)| s).collect();
    let img = match std::panic::catch_unwind(|| decode_for(bytes, &read)) {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => return Outcome::Failed(e),
        Err(_) => return Outcome::Failed("the image decoder panicked on this file".into()),
    };
    let crops = specs
        .iter()
        .zip(wanted)
        .map(|(spec, &w)| {
            w.then(|| {
                n.preprocessed.fetch_add(1, Ordering::Relaxed);
                std::panic::catch_unwind(|| resize_crop_part(&img, spec))
                    .unwrap_or_else(|_| Err("preprocessing panicked on this image".to_string()))
            })
        })
        .collect();
    Outcome::Crops(crops)
}

/// The crop of sample `i` for spec `sp` (the pipeline asks only for prepared ones).
pub fn crop_of(prepared: &[Prepared], i: usize, sp: usize) -> &RgbImage {
    match &prepared[i].outcome {
        Outcome::Crops(c) => match &c[sp] {
            Some(Ok(img)) => img,
            _ => unreachable!("a batch holds only samples with a crop for its spec"),
        },
        _ => unreachable!("a batch holds only prepared samples"),
    }
}

/// The ids among `records` (a log being resumed) whose sample's image is no longer the one the
/// record was made from: its bytes' [`fingerprint`] differs, it disappeared, or it appeared (a
/// sample once missing). Records of samples that were never read (a label the suite cannot
/// score) and of ids not in `suite` are left alone. Reads every image once, on `threads` threads.
pub fn changed_images(suite: &Suite, records: &[Record], threads: usize) -> HashSet<String> {
    let by_id: HashMap<&str, &Sample> = suite.samples.iter().map(|s| (s.id.as_str(), s)).collect();
    let check = |r: &Record| -> Option<String> {
        let s = by_id.get(r.id.as_str())?;
        if suite.label_problem(&s.wnid).is_some() {
            return None;
        }
        let now = s.image.read().ok().map(|b| fingerprint(&b));
        (now != r.image).then(|| r.id.clone())
    };
    match rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build() {
        Ok(pool) => pool.install(|| records.par_iter().filter_map(check).collect()),
        Err(_) => records.iter().filter_map(check).collect(),
    }
}

/// Prepares the plan's chunks in order and sends each (its first index, its samples) down `tx`,
/// until every chunk is sent, no job is `alive`, a stop is asked for, or the receiver is gone.
/// A sample is prepared for the specs of the jobs that need it and are still alive.
pub fn decode_chunks(
    plan: &PassPlan,
    suite: &Suite,
    pool: &rayon::ThreadPool,
    counters: &Counters,
    alive: &[AtomicBool],
    tx: SyncSender<(usize, Vec<Prepared>)>,
) {
    for range in &plan.chunks {
        if interrupt::requested() || !alive.iter().any(|a| a.load(Ordering::SeqCst)) {
            break;
        }
        let first = range.start;
        let prepared: Vec<Prepared> = pool.install(|| {
            plan.todo[range.clone()]
                .par_iter()
                .enumerate()
                .map(|(k, s)| {
                    let mut wanted = vec![false; plan.specs.len()];
                    for j in 0..plan.jobs {
                        if plan.needs(first + k, j) && alive[j].load(Ordering::SeqCst) {
                            wanted[plan.spec_of[j]] = true;
                        }
                    }
                    prepare(s, suite, &wanted, &plan.specs, counters)
                })
                .collect()
        });
        if tx.send((first, prepared)).is_err() {
            break;
        }
    }
}
