//! [`plot_run`]: every plot a run's result allows, as [`PlotOptions`] ask: the shift plots, or
//! with one suite the recall plots; equal- against LAION-weighted recall; per model and suite the
//! per-class plot, and per model the histograms of its per-class gaps between suites.

use anyhow::Result;

use super::classes::{gap_histogram, per_class};
use super::plots::{PlotKey, Plots};
use super::shift::{equal_vs_weighted, shift_plot, suites_in, tags_of};
use super::single::{class_recall_histogram, recall_dots};
use crate::report::analysis::{class_gaps, ClassGap};
use crate::results::result::RunResult;

/// Which plots and which suites.
#[derive(Debug, Clone, Default)]
pub struct PlotOptions {
    /// The x suite of the shift plots (default: the first suite in the result).
    pub x_suite: Option<String>,
    /// The y suite (default: the second).
    pub y_suite: Option<String>,
    /// Plot top-5 instead of top-1 recall.
    pub top5: bool,
    /// Colour and group the models of the shift plots by this tag of theirs (`run.models[].tags`),
    /// with a fit per group.
    pub group_by: Option<String>,
}

/// Draws every plot the result allows.
pub fn plot_run(run: &RunResult, opts: &PlotOptions) -> Result<Plots> {
    let mut plots = Plots::default();
    let k = if opts.top5 { "top5" } else { "top1" };
    let suites = suites_in(run);
    let x = opts.x_suite.clone().or_else(|| suites.first().cloned());
    let y = opts.y_suite.clone().or_else(|| suites.iter().find(|s| Some(*s) != x.as_ref()).cloned());
    match (x, y) {
        (Some(x), Some(y)) if x != y => {
            for (weighting, label) in [("equal", "equal-weighted"), ("weighted", "LAION-weighted")] {
                let key = format!("{k}_{weighting}");
                let plot = PlotKey::Shift { top5: opts.top5, laion: weighting != "equal" };
                let groups = opts.group_by.as_deref().map(|tag| (tag, tags_of(run, tag)));
                let drawn = shift_plot(run, &x, &y, &key, label, groups.as_ref().map(|(t, m)| (*t, m)))?
                    .ok_or_else(|| format!("no model has {label} recall on both {x} and {y}"));
                plots.add(plot, drawn);
            }
        }
        _ => plots.skipped.push((
            None,
            format!("shift plots: need two suites (the result has {}: {})", suites.len(), suites.join(", ")),
        )),
    }
    // One suite: no shift to draw, so each model's recall with its interval and the spread of
    // its classes' recall.
    if let [suite] = suites.as_slice() {
        plots.add(PlotKey::Recall { suite: suite.clone() }, recall_dots(run, suite)?);
        for r in run.results.iter().filter(|r| r.error.is_none()) {
            let key = PlotKey::ClassRecall { model: r.model.clone(), suite: r.suite.clone() };
            plots.add(key, class_recall_histogram(r)?);
        }
    }
    if let Some(tag) = &opts.group_by {
        let tagged = run.run.iter().flat_map(|i| &i.models).any(|m| m.tags.contains_key(tag));
        if !tagged {
            plots.notes.push(format!(
                "--group-by {tag}: no model of the result has a tag {tag:?} (tags come from `tags:` in the model YAMLs)"
            ));
        }
    }
    let drawn =
        equal_vs_weighted(run, k)?.ok_or_else(|| "no result has both equal- and LAION-weighted recall".to_string());
    plots.add(PlotKey::EqualVsLaion, drawn);
    for r in &run.results {
        let key = PlotKey::PerClass { model: r.model.clone(), suite: r.suite.clone() };
        plots.add(key, per_class(r, opts.top5)?);
    }
    // The x suite first, so the gaps are of every other suite (or the y suite asked for) against it.
    let mut by_x = run.results.clone();
    if let Some(x) = &opts.x_suite {
        by_x.sort_by_key(|r| &r.suite != x);
    }
    let gaps: Vec<ClassGap> =
        class_gaps(&by_x).into_iter().filter(|g| opts.y_suite.as_ref().is_none_or(|y| &g.y_suite == y)).collect();
    let mut pairs: Vec<(&str, &str, &str)> = Vec::new();
    for g in &gaps {
        if !pairs.contains(&(g.model.as_str(), g.x_suite.as_str(), g.y_suite.as_str())) {
            pairs.push((&g.model, &g.x_suite, &g.y_suite));
        }
    }
    for (m, x, y) in pairs {
        let mine: Vec<f64> =
            gaps.iter().filter(|g| g.model == m && g.x_suite == x && g.y_suite == y).map(|g| g.diff).collect();
        let key = PlotKey::ClassGaps { model: m.to_string(), x: x.to_string(), y: y.to_string() };
        plots.add(key, Ok(gap_histogram(m, x, y, &mine)?));
    }
    Ok(plots)
}
