//! The decode stage: each sample some model still needs is read and decoded once (only the part
//! the crops read, for a JPEG), then resized and cropped once per spec that a model still
//! running needs. It runs on a rayon pool, a chunk at a time, ahead of the models.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;

use image::RgbImage;
use rayon::prelude::*;
use shiftbench_imaging::{decode_for, resize_crop_part};
use shiftbench_plugin::PreprocessSpec;

use crate::data::sample::{ReadError, Sample};
use crate::data::suite::Suite;
use crate::results::predlog::{Record, Status};
use crate::run::pipeline::plan::PassPlan;
use crate::util::interrupt;

/// A sample after reading, decoding, resizing and cropping for every spec some model needs.
pub enum Prepared {
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
                std::panic::catch_unwind(|| resize_crop_part(&img, spec))
                    .unwrap_or_else(|_| Err("preprocessing panicked on this image".to_string()))
            })
        })
        .collect();
    Prepared::Crops(crops)
}

/// The crop of sample `i` for spec `sp` (the pipeline asks only for prepared ones).
pub fn crop_of(prepared: &[Prepared], i: usize, sp: usize) -> &RgbImage {
    match &prepared[i] {
        Prepared::Crops(c) => match &c[sp] {
            Some(Ok(img)) => img,
            _ => unreachable!("a batch holds only samples with a crop for its spec"),
        },
        _ => unreachable!("a batch holds only prepared samples"),
    }
}

pub fn failed(s: &Sample, status: Status, error: String) -> Record {
    Record {
        id: s.id.clone(),
        wnid: s.wnid.clone(),
        status,
        top: vec![],
        scores: vec![],
        error: Some(error),
        embedding: vec![],
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
