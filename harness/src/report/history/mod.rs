//! `shiftbench history RUN...`: a series of nightly runs, oldest first. Per model and suite, the
//! trend of top-1 recall (equal- and LAION-weighted, ± se) and each run's verdict against the run
//! before it (paired where both runs' predictions logs allow: see [`crate::report::compare`]);
//! the run where a model first regressed is named, and the newest run's regressions decide the
//! exit status. A run is named by the folder or file it was given as (with its start time beside
//! it); a single run is a one-point history, with nothing to compare it with yet. Rendered as a
//! table, Markdown, CSV or JSON (its [`HistoryFormat`]s: no JUnit), and drawn as SVG trend plots;
//! as a `Document`, `report::write_folder` writes all of them with the page.
//!
//! One file each: [`series`] (the history and how it is built), [`forms`] (its formats)
//! and [`trend`] (its plots). As a [`Document`](crate::report::Document), with its page, it is in
//! `report::documents`.

pub mod forms;
pub mod series;
pub mod trend;

pub use forms::{render, render_width, HistoryFormat};
pub use series::{build, history, note_lines, History, Point, RunPoint, Series, HISTORY_VERSION};
pub use trend::trend_plots;
