//! The scatter plots of recall on one axis against recall on another, with the line y = x and
//! 95% error bars both ways: the shift plots (suite x against suite y per model, with the
//! effective-robustness fits, overall and per group of a tag) and equal- against LAION-weighted
//! recall per model and suite.

use std::collections::BTreeMap;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::draw::{axis_label, bar, draw_svg, err, legend, palette, pct, square_range, FONT, SIZE};
use crate::report::compare::metric;
use crate::results::metrics::Estimate;
use crate::results::result::RunResult;
use crate::results::robustness::{fit_logit, Fit, MIN_MODELS};

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

struct Point {
    label: String,
    group: usize,
    x: Estimate,
    y: Estimate,
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
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
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
pub(super) fn tags_of(run: &RunResult, tag: &str) -> BTreeMap<String, String> {
    run.run.iter().flat_map(|i| &i.models).filter_map(|m| Some((m.name.clone(), m.tags.get(tag)?.clone()))).collect()
}

pub(super) fn shift_plot(
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

pub(super) fn equal_vs_weighted(run: &RunResult, k: &str) -> Result<Option<String>> {
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
    use super::*;
    use crate::results::result::EvalResult;

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
