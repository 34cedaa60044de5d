//! shiftbench: evaluate ImageNet classifiers on ImageNet and on LAIONet, per class and overall,
//! with the arithmetic of Shirali & Hardt, *What Makes ImageNet Look Unlike LAION* (ICLR 2024).
//!
//! The library is in layers that depend one way (`ARCHITECTURE.md` at the repository root maps
//! them, and the path of one sample through them):
//!
//! ```text
//! data | imaging | host  ->  results  ->  run  ->  report  ->  the CLI (main.rs)
//!          util: the ground floor under all of them
//! ```
//!
//! - [`data`]: suites, their sources and layouts, tables, class subsets and weights;
//! - [`imaging`] (the `shiftbench-imaging` crate): decode, Pillow-exact resize and crop, tensors;
//! - [`host`]: the [`Scorer`](host::Scorer) seam, plugin loading, worker processes;
//! - [`results`]: the predictions log, tallies, metrics, the result model, provenance, shards;
//! - [`run`]: orchestration (the run, the pipeline as stages, merge, score, plans);
//! - [`report`]: terminal tables, compare, every report format, plots;
//! - [`util`]: bounded reads, atomic writes, digests, Ctrl-C, locks;
//! - [`fuzzing`]: entry points that feed hostile bytes to every parser (fuzz targets, tests).
//!
//! The items most programs need are re-exported here.

pub mod data;
pub mod fuzzing;
pub mod host;
pub mod report;
pub mod results;
pub mod run;
pub mod util;

pub use shiftbench_imaging as imaging;

pub use data::demo;
pub use data::suite::Suite;
pub use host::{Isolation, ModelRef, Scorer};
pub use results::paths::{log_path, result_path, shard_log_path, slug};
pub use results::result::{EvalResult, RunResult};
pub use run::{run, run_with, EvalOptions, RunSpec};
