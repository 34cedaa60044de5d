//! The results layer: what a run produces and how it is scored, independent of how it ran.
//!
//! - [`predlog`]: the predictions log, the source of truth (one JSON line per sample, resumable);
//! - [`identity`]: what decides a log's records (model file, plugin, card, settings), so a log
//!   is resumed or merged only under the model that wrote it;
//! - [`tally`]: per-class counts of what became of each sample;
//! - [`metrics`]: recall with its Wilson standard error, equal- and LAION-weighted means;
//! - [`result`]: the result model ([`EvalResult`], [`RunResult`]) and the result file;
//! - [`provenance`]: what a result was made from (run, models, suites, files);
//! - [`paired`]: two runs on the same samples compared sample by sample (McNemar, paired se);
//! - [`robustness`]: effective robustness (a logit-linear fit over models, bootstrap intervals)
//!   and ranks;
//! - [`similarity`]: intra-class similarity of embeddings (mean pairwise cosine per class) and
//!   two suites compared class by class, as the paper does;
//! - [`shard`]: the `--shard i/N` value and the stable split; [`paths`]: where files go.

pub mod identity;
pub mod metrics;
pub mod paired;
pub mod paths;
pub mod predlog;
pub mod provenance;
pub mod result;
pub mod robustness;
pub mod shard;
pub mod similarity;
pub mod tally;

pub use result::{EvalResult, RunResult};
pub use tally::Tally;
