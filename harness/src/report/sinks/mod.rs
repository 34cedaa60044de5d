//! Report sinks: one result (a run's [`RunResult`](crate::results::result::RunResult) or a
//! [`Comparison`](crate::report::compare::Comparison)), many formats: a terminal
//! table, Markdown (for a pull-request comment), CSV, JSON and JUnit XML (for CI).
//!
//! Tables show recall in percent with two decimals, ± one standard error; CSV keeps fractions to
//! six decimals; JSON keeps every digit. In JUnit each model x suite is a test case: for a run it
//! fails when samples failed or are missing, for a comparison when a metric regressed; pairs on one
//! side of a comparison only are skipped test cases.
//!
//! One file per sink: [`text`] (the terminal), [`markdown`], [`csv`], [`junit`]; JSON is the
//! result model itself. [`format`](mod@format) holds the [`Format`]s and the number forms the sinks share;
//! [`render`] calls each sink for a format, and holds [`RunReport`] and [`ComparisonReport`], which
//! `report::documents` makes `Document`s of, for `report::write_folder` to write with their plots
//! and page.

pub mod csv;
pub mod format;
pub mod junit;
pub mod markdown;
pub mod render;
pub mod text;

pub use format::Format;
pub use render::{
    render_comparison, render_comparison_width, render_run, render_run_width, ComparisonReport, RunReport,
};
