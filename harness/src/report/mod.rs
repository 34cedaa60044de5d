//! The report layer: one result model, many sinks. It reads results and never runs a model.
//!
//! - [`table`]: the terminal tables of a run, `--sort`, the problem lines;
//! - [`analysis`]: comparing many architectures: per-class gaps between suites, and the lines on
//!   effective robustness and the largest drops;
//! - [`compare`]: a new result against a baseline, with a verdict per metric;
//! - [`history`]: a series of runs, each against the one before it, and its trend plots;
//! - [`sinks`]: every format (terminal, Markdown, CSV, JSON, JUnit), one file each;
//! - [`sweep`]: the forms of a LAIONet threshold sweep;
//! - [`similarity`]: the files and lines of `shiftbench similarity` (intra-class similarity);
//! - [`plot`]: SVG plots;
//! - [`html`]: the HTML report page (`report.html`), from templates;
//! - [`document`]: the one fan-out: every report is a [`Document`] with the formats it has, and
//!   [`write_folder`] writes its formats, files, plots and page.
//! - [`documents`]: the reports that have a page (a run, a comparison, a history) as
//!   [`Document`]s, above their formats, plots and page.

pub mod analysis;
pub mod compare;
pub mod document;
pub mod documents;
pub mod history;
pub mod html;
pub mod laionet;
pub mod plot;
pub mod similarity;
pub mod sinks;
pub mod sweep;
pub mod table;

pub use document::{write_folder, Document, FormatSet, Written};
