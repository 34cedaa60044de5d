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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::analysis::{class_gaps, ClassGap};
use crate::report::compare::metric;
use crate::results::metrics::{Estimate, Z95};
use crate::results::paths::slug;
use crate::results::result::{EvalResult, RunResult};
use crate::results::robustness::{fit_logit, Fit, MIN_MODELS};

mod classes;
mod similarity;
mod single;

use classes::{gap_histogram, per_class};
pub use similarity::{recall_vs_similarity, similarity_histogram};
use single::{class_recall_histogram, recall_dots};

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

/// What a plot shows. It names the plot's file ([`PlotKey::file`]) and lets a page find the plot
/// it wants (a model and suite's per-class plot) without rebuilding file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlotKey {
    /// Recall on suite x against suite y per model (top-5 or top-1; LAION- or equal-weighted).
    Shift { top5: bool, laion: bool },
    /// Equal- against LAION-weighted recall per model and suite.
    EqualVsLaion,
    /// One model's per-class recall on one suite against LAION frequency.
    PerClass { model: String, suite: String },
    /// One model's per-class change from suite x to suite y.
    ClassGaps { model: String, x: String, y: String },
    /// Each model's top-1 recall on the one suite of a run, with its interval.
    Recall { suite: String },
    /// The distribution of one model's per-class recall on the one suite of a run.
    ClassRecall { model: String, suite: String },
    /// A history's trend on one suite.
    Trend { suite: String },
    /// The per-class differences of intra-class similarity, suite `b` against `a`.
    SimilarityDifferences { a: String, b: String },
    /// Recall change against similarity change, suite `b` against `a`.
    RecallVsSimilarity { a: String, b: String },
}

impl PlotKey {
    /// The plot's file, relative to the folder the plots go into.
    pub fn file(&self) -> String {
        match self {
            PlotKey::Shift { top5, laion } => {
                format!("shift-{}-{}.svg", if *top5 { "top5" } else { "top1" }, if *laion { "laion" } else { "equal" })
            }
            PlotKey::EqualVsLaion => "equal-vs-laion.svg".into(),
            PlotKey::PerClass { model, suite } => format!("per-class/{}__{}.svg", slug(model), slug(suite)),
            PlotKey::ClassGaps { model, x, y } => format!("class-gaps/{}__{}__{}.svg", slug(model), slug(x), slug(y)),
            PlotKey::Recall { suite } => format!("recall-{}.svg", slug(suite)),
            PlotKey::ClassRecall { model, suite } => format!("class-recall/{}__{}.svg", slug(model), slug(suite)),
            PlotKey::Trend { suite } => format!("history-{}.svg", slug(suite)),
            PlotKey::SimilarityDifferences { a, b } => format!("similarity-differences.{}-vs-{}.svg", slug(b), slug(a)),
            PlotKey::RecallVsSimilarity { a, b } => format!("recall-vs-similarity.{}-vs-{}.svg", slug(b), slug(a)),
        }
    }
}

/// One drawn plot: what it shows and its SVG text.
#[derive(Debug, Clone)]
pub struct Plot {
    pub key: PlotKey,
    pub svg: String,
}

/// The plots drawn, and what could not be drawn (the plot, when it names one, and the reason).
#[derive(Debug, Default)]
pub struct Plots {
    pub plots: Vec<Plot>,
    pub skipped: Vec<(Option<PlotKey>, String)>,
    /// What the plots could not do as asked (a `group_by` tag no model has).
    pub notes: Vec<String>,
}

impl Plots {
    /// Keeps `svg` as the plot `key`, or notes why it was not drawn.
    fn add(&mut self, key: PlotKey, drawn: Result<String, String>) {
        match drawn {
            Ok(svg) => self.plots.push(Plot { key, svg }),
            Err(why) => self.skipped.push((Some(key), why)),
        }
    }

    /// The skipped plots as lines, each plot named by its file under `dir`.
    pub fn skipped_lines(&self, dir: &Path) -> Vec<String> {
        self.skipped
            .iter()
            .map(|(k, why)| match k {
                Some(k) => format!("{}: {why}", dir.join(k.file()).display()),
                None => why.clone(),
            })
            .collect()
    }
}

/// Writes each plot's SVG as `dir/<its file>` (creating `dir` even when there is none); returns
/// the paths, in the plots' order.
pub fn write_plots(plots: &[Plot], dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow!("cannot create {}: {e}", dir.display()))?;
    let mut out = Vec::with_capacity(plots.len());
    for p in plots {
        let file = dir.join(p.key.file());
        if let Some(d) = file.parent() {
            std::fs::create_dir_all(d).map_err(|e| anyhow!("cannot create {}: {e}", d.display()))?;
        }
        crate::util::files::write_atomic(&file, p.svg.as_bytes())?;
        out.push(file);
    }
    Ok(out)
}

/// Draws into a new SVG string of `size` with `draw`.
pub(crate) fn draw_svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

const SIZE: (u32, u32) = (760, 720);
const FONT: &str = "sans-serif";

fn palette(i: usize) -> RGBColor {
    const P: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    P[i % P.len()]
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("cannot draw the plot: {e}")
}

/// Suites in order of first appearance.
pub fn suites_in(run: &RunResult) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in &run.results {
        if !v.contains(&r.suite) {
            v.push(r.suite.clone());
        }
    }
    v
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

/// The range `[lo, hi]` (in percent) covering `values`, padded, within 0..100.
fn square_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 100.0);
    }
    let pad = ((hi - lo) * 0.08).max(1.0);
    ((lo - pad).max(0.0), (hi + pad).min(100.0))
}

struct Point {
    label: String,
    group: usize,
    x: Estimate,
    y: Estimate,
}

fn pct(e: Estimate) -> (f64, f64) {
    (100.0 * e.value, 100.0 * Z95 * e.se)
}

/// The 95% bar around `v` (percent), kept within 0..100.
fn bar(v: f64, e: f64) -> (f64, f64) {
    ((v - e).max(0.0), (v + e).min(100.0))
}

/// Axis numbers: whole percent unless the range is narrow.
fn axis_label(v: f64, span: f64) -> String {
    if span >= 8.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A plot's title and its axes' descriptions.
struct Labels<'a> {
    title: &'a str,
    x: &'a str,
    y: &'a str,
}

fn scatter_with_diagonal(
    area: &DrawingArea<SVGBackend, Shift>,
    labels: &Labels,
    points: &[Point],
    groups: &[String],
    label_points: bool,
    fits: &[(String, RGBColor, Fit)],
) -> Result<()> {
    area.fill(&WHITE).map_err(err)?;
    let (lo, hi) = square_range(points.iter().flat_map(|p| {
        let ((x, ex), (y, ey)) = (pct(p.x), pct(p.y));
        let ((x0, x1), (y0, y1)) = (bar(x, ex), bar(y, ey));
        [x0, x1, y0, y1]
    }));
    let span = hi - lo;
    let mut chart = ChartBuilder::on(area)
        .caption(labels.title, (FONT, 20))
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi, lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(labels.x)
        .y_desc(labels.y)
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .x_label_formatter(&|v| axis_label(*v, span))
        .y_label_formatter(&|v| axis_label(*v, span))
        .max_light_lines(4)
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(DashedLineSeries::new(vec![(lo, lo), (hi, hi)], 6, 4, BLACK.stroke_width(1)))
        .map_err(err)?
        .label("y = x")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    for (label, colour, fit) in fits {
        let c = *colour;
        let mut labelled = false;
        for segment in fit_curve(fit, lo, hi) {
            let series = chart.draw_series(LineSeries::new(segment, c.stroke_width(2))).map_err(err)?;
            if !labelled {
                series
                    .label(label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
                labelled = true;
            }
        }
    }
    for (gi, g) in groups.iter().enumerate() {
        let c = palette(gi);
        let mine: Vec<&Point> = points.iter().filter(|p| p.group == gi).collect();
        if mine.is_empty() {
            continue;
        }
        chart
            .draw_series(mine.iter().map(|p| {
                let ((x, _), (y, ey)) = (pct(p.x), pct(p.y));
                let (y0, y1) = bar(y, ey);
                ErrorBar::new_vertical(x, y0, y, y1, c.stroke_width(1), 6)
            }))
            .map_err(err)?;
        chart
            .draw_series(mine.iter().map(|p| {
                let ((x, ex), (y, _)) = (pct(p.x), pct(p.y));
                let (x0, x1) = bar(x, ex);
                ErrorBar::new_horizontal(y, x0, x, x1, c.stroke_width(1), 6)
            }))
            .map_err(err)?;
        chart
            .draw_series(mine.iter().map(|p| Circle::new((pct(p.x).0, pct(p.y).0), 4, c.filled())))
            .map_err(err)?
            .label(g.as_str())
            .legend(move |(x, y)| Circle::new((x + 9, y), 4, c.filled()));
    }
    if label_points {
        // Labels go right of their point (left of it in the right third of the plot); a label that
        // would overlap one already placed is left out (the legend still names the colours).
        let mut placed: Vec<(i32, i32, i32, i32)> = Vec::new();
        let mut labels = Vec::new();
        for p in points {
            let (x, y) = (pct(p.x).0, pct(p.y).0);
            let (px, py) = chart.backend_coord(&(x, y));
            let left = x > lo + 0.66 * span;
            let w = (p.label.chars().count() as f64 * 6.6) as i32;
            let (x0, x1) = if left { (px - 6 - w, px - 6) } else { (px + 6, px + 6 + w) };
            let rect = (x0, py - 18, x1, py - 4);
            if placed.iter().any(|q| rect.0 < q.2 && q.0 < rect.2 && rect.1 < q.3 && q.1 < rect.3) {
                continue;
            }
            placed.push(rect);
            labels.push((x, y, left, p.label.clone()));
        }
        chart
            .draw_series(labels.into_iter().map(|(x, y, left, label)| {
                let style = TextStyle::from((FONT, 12).into_font())
                    .pos(Pos::new(if left { HPos::Right } else { HPos::Left }, VPos::Bottom));
                EmptyElement::at((x, y)) + Text::new(label, (if left { -6 } else { 6 }, -4), style)
            }))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font((FONT, 13))
        .draw()
        .map_err(err)?;
    area.draw(&Text::new(
        "error bars: 95% interval (± 1.96 se)",
        (SIZE.0 as i32 - 250, SIZE.1 as i32 - 14),
        (FONT, 11).into_font().color(&RGBColor(100, 100, 100)),
    ))
    .map_err(err)?;
    Ok(())
}

/// The fit through `points` (recalls strictly between 0 and 1; [`MIN_MODELS`] of them or more).
fn fit_points<'a>(points: impl Iterator<Item = &'a Point>) -> Option<Fit> {
    let xy: Vec<(f64, f64)> =
        points.map(|p| (p.x.value, p.y.value)).filter(|&(x, y)| x > 0.0 && x < 1.0 && y > 0.0 && y < 1.0).collect();
    if xy.len() < MIN_MODELS {
        return None;
    }
    fit_logit(&xy)
}

/// The fit's curve in percent, `100 expit(a + b logit(x / 100))`, over `lo..hi` on both axes: the
/// runs of points inside the plot.
fn fit_curve(fit: &Fit, lo: f64, hi: f64) -> Vec<Vec<(f64, f64)>> {
    const STEPS: usize = 240;
    let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for i in 0..=STEPS {
        let x = lo + (hi - lo) * i as f64 / STEPS as f64;
        let y = if x > 0.0 && x < 100.0 { 100.0 * fit.predict(x / 100.0) } else { f64::NAN };
        if y.is_finite() && (lo..=hi).contains(&y) {
            segments.last_mut().expect("one").push((x, y));
        } else if !segments.last().expect("one").is_empty() {
            segments.push(Vec::new());
        }
    }
    segments.retain(|s| s.len() > 1);
    segments
}

/// Each model's value of tag `tag`, from the result's provenance (`run.models[].tags`).
fn tags_of(run: &RunResult, tag: &str) -> BTreeMap<String, String> {
    run.run.iter().flat_map(|i| &i.models).filter_map(|m| Some((m.name.clone(), m.tags.get(tag)?.clone()))).collect()
}

fn shift_plot(
    run: &RunResult,
    xs: &str,
    ys: &str,
    key: &str,
    label: &str,
    group_by: Option<(&str, &BTreeMap<String, String>)>,
) -> Result<Option<String>> {
    let mut points = Vec::new();
    let mut models: Vec<String> = Vec::new();
    for a in run.results.iter().filter(|r| r.suite == xs) {
        let Some(b) = run.results.iter().find(|r| r.suite == ys && r.model == a.model) else { continue };
        if let (Some(x), Some(y)) = (metric(&a.metrics, key), metric(&b.metrics, key)) {
            models.push(a.model.clone());
            points.push(Point { label: a.model.clone(), group: models.len() - 1, x, y });
        }
    }
    if points.is_empty() {
        return Ok(None);
    }
    let k = if key.starts_with("top5") { "Top-5" } else { "Top-1" };
    let many = models.len() > 10;
    let mut fits = Vec::new();
    if let Some(f) = fit_points(points.iter()) {
        fits.push((format!("logit-linear fit, {} models", f.models), RGBColor(90, 90, 90), f));
    }
    let groups = match group_by {
        Some((tag, values)) => {
            // Groups in name order, models without the tag last.
            let tags: Vec<String> =
                points.iter().map(|p| values.get(&p.label).cloned().unwrap_or_else(|| format!("(no {tag})"))).collect();
            let mut groups: Vec<String> = tags.clone();
            groups.sort_by_key(|g| (g.starts_with("(no "), g.clone()));
            groups.dedup();
            for (p, t) in points.iter_mut().zip(&tags) {
                p.group = groups.iter().position(|g| g == t).expect("a group");
            }
            // One group's fit would be the fit of all.
            for (gi, g) in groups.iter().enumerate().filter(|_| groups.len() > 1) {
                if let Some(f) = fit_points(points.iter().filter(|p| p.group == gi)) {
                    fits.push((format!("fit, {tag} = {g} ({} models)", f.models), palette(gi), f));
                }
            }
            groups.into_iter().map(|g| format!("{tag} = {g}")).collect()
        }
        None if many => {
            points.iter_mut().for_each(|p| p.group = 0);
            vec!["models".to_string()]
        }
        None => models,
    };
    let svg = draw_svg(SIZE, |root| {
        scatter_with_diagonal(
            root,
            &Labels {
                title: &format!("{k} recall ({label}): {xs} vs {ys}"),
                x: &format!("{xs} recall (%)"),
                y: &format!("{ys} recall (%)"),
            },
            &points,
            &groups,
            !many,
            &fits,
        )
    })?;
    Ok(Some(svg))
}

fn equal_vs_weighted(run: &RunResult, k: &str) -> Result<Option<String>> {
    let suites = suites_in(run);
    let mut points = Vec::new();
    for r in &run.results {
        if r.weights == "equal" {
            continue; // both axes would be the same number
        }
        if let (Some(x), Some(y)) =
            (metric(&r.metrics, &format!("{k}_equal")), metric(&r.metrics, &format!("{k}_weighted")))
        {
            let group = suites.iter().position(|s| s == &r.suite).unwrap_or(0);
            points.push(Point { label: r.model.clone(), group, x, y });
        }
    }
    if points.is_empty() {
        return Ok(None);
    }
    let models = run.results.iter().map(|r| &r.model).collect::<std::collections::BTreeSet<_>>().len();
    let kk = if k == "top5" { "Top-5" } else { "Top-1" };
    let svg = draw_svg(SIZE, |root| {
        scatter_with_diagonal(
            root,
            &Labels {
                title: &format!("{kk} recall: equal- vs LAION-weighted"),
                x: "equal-weighted recall (%)",
                y: "LAION-weighted recall (%)",
            },
            &points,
            &suites,
            models <= 6,
            &[],
        )
    })?;
    Ok(Some(svg))
}

#[cfg(test)]
mod tests {
    use super::classes::{fmt_share, log_ticks};
    use super::*;

    #[test]
    fn shares() {
        assert_eq!(fmt_share(0.02), "2%");
        assert_eq!(fmt_share(0.001), "0.1%");
        assert_eq!(fmt_share(0.0001), "0.01%");
        assert_eq!(square_range([50.0, 60.0].into_iter()), (49.0, 61.0));
        let t: Vec<String> = log_ticks(0.03, 0.4).iter().map(|v| fmt_share(*v)).collect();
        assert_eq!(t, ["5%", "10%", "20%"]);
        assert_eq!(log_ticks(2e-7, 0.05).len(), 5);
    }

    /// A model of the same recall in each of `k` of 20 classes (one sample each) on a suite.
    fn result(model: &str, suite: &str, k: u64) -> EvalResult {
        use crate::results::metrics::ClassCounts;
        use crate::results::tally::{ClassStatus, Tally};
        let mut t = Tally::default();
        for c in 0..20u64 {
            let w = format!("n{c:08}");
            t.counts.insert(w.clone(), ClassCounts { n: 1, top1: (c < k) as u64, top5: 1 });
            t.status.insert(w, ClassStatus { expected: 1, evaluated: 1, failed: 0, missing: 0 });
        }
        EvalResult::from_tally(model, suite, "equal", &t, &BTreeMap::new())
    }

    #[test]
    fn shift_plots_draw_a_fit_overall_and_per_group() {
        // Two groups of three models, each on a line of its own.
        let models = [("a1", 8, 6), ("a2", 12, 9), ("a3", 16, 13), ("b1", 9, 3), ("b2", 13, 5), ("b3", 17, 10)];
        let mut results = Vec::new();
        for (m, x, y) in models {
            results.push(result(m, "x", x));
            results.push(result(m, "y", y));
        }
        let run = RunResult::new(results);
        let tags: BTreeMap<String, String> =
            models.iter().map(|(m, _, _)| (m.to_string(), m[..1].to_string())).filter(|(m, _)| m != "b3").collect();
        let svg = shift_plot(&run, "x", "y", "top1_equal", "equal", Some(("arch", &tags))).unwrap().expect("drawn");
        let wanted =
            ["logit-linear fit, 6 models", "arch = a", "arch = b", "arch = (no arch)", "fit, arch = a (3 models)"];
        for want in wanted {
            assert!(svg.contains(want), "{want}");
        }
        assert!(!svg.contains("fit, arch = b"), "b3 has no tag: b is two models");
        // The fit's curve is the fit: a point on it is 100 expit(a + b logit(x / 100)).
        let f = fit_logit(&[(0.4, 0.3), (0.6, 0.45), (0.8, 0.65)]).unwrap();
        let curve = fit_curve(&f, 20.0, 90.0);
        assert_eq!(curve.len(), 1);
        for &(x, y) in &curve[0] {
            assert!((y - 100.0 * f.predict(x / 100.0)).abs() < 1e-9 && (20.0..=90.0).contains(&y));
        }
        // Ungrouped: one fit, the models each a colour.
        let svg = shift_plot(&run, "x", "y", "top1_equal", "equal", None).unwrap().expect("drawn");
        assert!(svg.contains("logit-linear fit, 6 models") && svg.contains("b3") && !svg.contains("fit, arch"));
    }
}
