//! SVG plots of a result (plotters' SVG backend; no fonts needed to draw them), each drawn into a
//! string: a [`Plot`] is its [`PlotKey`] (what it shows, which names its file) and its SVG text.
//! The report folder writes the files from these strings ([`write_plots`]) and the page embeds
//! the same strings; nothing is read back from disk.
//!
//! - `shift-top1-equal.svg`, `shift-top1-laion.svg`: the paper's Figure 1. One point per model,
//!   its recall on one suite (x, ImageNet) against another (y, LAIONet), with 95% error bars
//!   (± 1.96 se) both ways and the line y = x: points below it lose accuracy under the shift.
//!   With three models or more, the effective-robustness fit (`logit(y) = a + b logit(x)` over
//!   the models, see `results::robustness`) is drawn through them as a curve; with `group_by` a
//!   tag of the models (`tags:` in their model YAMLs), points are coloured by group and, when
//!   there are two groups or more, each group of three models or more gets its own fit.
//! - `class-gaps/<model>__<x>__<y>.svg`: per model, a histogram of its per-class change in top-1
//!   recall from suite x (the first) to suite y (every other), with the mean change.
//! - `equal-vs-laion.svg`: per model and suite, equal-weighted against LAION-weighted recall; points
//!   below y = x do worse on the classes that are frequent in LAION.
//! - `per-class/<model>__<suite>.svg`: per class, recall against the class's LAION frequency (log
//!   scale), with the mean recall of ten frequency bins.
//! - a run on one suite (no shift to draw; [`single`]): `recall-<suite>.svg`, each model's top-1
//!   recall with its 95% interval, and `class-recall/<model>__<suite>.svg`, the histogram of a
//!   model's per-class top-1 recall.
//!
//! One file each: [`plots`] (what a drawn plot is, and writing them), [`draw`] (what every plot is
//! drawn with), [`run`] (every plot of a run), [`shift`] (the scatter plots against y = x),
//! [`classes`], [`single`] and [`similarity`].

pub mod classes;
pub mod draw;
pub mod laionet;
pub mod plots;
pub mod run;
pub mod shift;
pub mod similarity;
pub mod single;

pub use plots::{write_plots, Plot, PlotKey, Plots};
pub use run::{plot_run, PlotOptions};
pub use shift::suites_in;
pub use similarity::{recall_vs_similarity, similarity_histogram};
