//! The report layer: one result model, many sinks. It reads results and never runs a model.
//!
//! - [`table`]: the terminal tables of a run, `--sort`, the problem lines;
//! - [`compare`]: a new result against a baseline, with a verdict per metric;
//! - [`sinks`]: every format (terminal, Markdown, CSV, JSON, JUnit), one file each;
//! - [`plot`]: SVG plots.

pub mod compare;
pub mod plot;
pub mod sinks;
pub mod table;
