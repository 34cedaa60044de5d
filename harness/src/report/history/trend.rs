//! The trend plots of a history: per suite, each model's recall across the runs.

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::series::{History, RunPoint, Series};
use crate::report::compare::Verdict;
use crate::report::plot::draw::draw_svg;
use crate::report::plot::plots::{Plot, PlotKey};
use crate::results::metrics::{Estimate, Z95};

/// One plot per suite: each model's top-1 equal-weighted recall across the runs with 95% error
/// bars, a regression marked with a red ring.
pub fn trend_plots(h: &History) -> Result<Vec<Plot>> {
    let mut suites: Vec<&str> = Vec::new();
    for s in &h.series {
        if !suites.contains(&s.suite.as_str()) {
            suites.push(&s.suite);
        }
    }
    let mut plots = Vec::new();
    for suite in suites {
        let key = PlotKey::Trend { suite: suite.to_string() };
        let file = key.file();
        plots.push(Plot { svg: draw_svg((860, 520), |root| trend_plot(h, suite, &file, root))?, key });
    }
    Ok(plots)
}

fn trend_plot(h: &History, suite: &str, file: &str, root: &DrawingArea<SVGBackend, Shift>) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {file}: {e}");
    let series: Vec<&Series> = h.series.iter().filter(|s| s.suite == suite).collect();
    let values: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.top1_equal))
        .map(|e| (100.0 * (e.value - Z95 * e.se), 100.0 * (e.value + Z95 * e.se)))
        .collect();
    let lo = values.iter().map(|v| v.0).fold(f64::INFINITY, f64::min);
    let hi = values.iter().map(|v| v.1).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() { ((lo - 1.0).max(0.0), (hi + 1.0).min(100.0)) } else { (0.0, 100.0) };
    let n = h.runs.len().max(1);
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let labels: Vec<String> = h.runs.iter().map(RunPoint::short_name).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(format!("top-1 equal-weighted recall on {suite}, run by run"), ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), lo..hi)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        })
        .y_desc("recall, %")
        .label_style(("sans-serif", 11))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(|e| err(&e))?;
    const COLOURS: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(23, 190, 207),
    ];
    for (k, s) in series.iter().enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        let pts: Vec<(f64, Estimate)> =
            s.points.iter().filter_map(|p| p.top1_equal.map(|e| (p.run as f64, e))).collect();
        chart
            .draw_series(LineSeries::new(pts.iter().map(|(x, e)| (*x, 100.0 * e.value)), c.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(s.model.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|(x, e)| {
                let (v, d) = (100.0 * e.value, 100.0 * Z95 * e.se);
                ErrorBar::new_vertical(*x, v - d, v, v + d, c.stroke_width(1), 6)
            }))
            .map_err(|e| err(&e))?;
        let bad: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| p.verdict == Some(Verdict::Regression))
            .filter_map(|p| p.top1_equal.map(|e| (p.run as f64, 100.0 * e.value)))
            .collect();
        chart.draw_series(bad.into_iter().map(|p| Circle::new(p, 8, RED.stroke_width(2)))).map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(|e| err(&e))?;
    Ok(())
}
