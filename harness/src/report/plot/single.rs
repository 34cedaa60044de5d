//! The plots of a run on one suite, where there is no shift to draw: each model's top-1 recall
//! with its 95% interval (a dot-and-whisker plot, equal-weighted, and LAION-weighted where the
//! suite has LAION weights), and per model a histogram of its per-class top-1 recall.

use anyhow::Result;
use plotters::prelude::*;

use super::draw::{axis_label, bar, draw_svg, err, legend, palette, pct, square_range, FONT, SIZE};
use crate::results::metrics::Estimate;
use crate::results::result::{EvalResult, RunResult};

/// Each model's top-1 recall on `suite` with its 95% interval, one row per model in the run's
/// order; `Err(reason)` when no model has a recall there.
pub(super) fn recall_dots(run: &RunResult, suite: &str) -> Result<Result<String, String>> {
    let rows: Vec<(&str, Option<Estimate>, Option<Estimate>)> = run
        .results
        .iter()
        .filter(|r| r.suite == suite && r.error.is_none())
        .map(|r| {
            let laion = if r.weights == "equal" { None } else { r.metrics.top1_weighted };
            (r.model.as_str(), r.metrics.top1_equal, laion)
        })
        .filter(|(_, e, _)| e.is_some())
        .collect();
    if rows.is_empty() {
        return Ok(Err(format!("no model has a top-1 recall on {suite}")));
    }
    let n = rows.len();
    let (lo, hi) = square_range(rows.iter().flat_map(|(_, e, l)| {
        [e, l].into_iter().flatten().flat_map(|e| {
            let (v, d) = pct(*e);
            let (a, b) = bar(v, d);
            [a, b]
        })
    }));
    let height = (140 + 34 * n as u32).max(260);
    let names: Vec<String> = rows.iter().map(|(m, _, _)| m.to_string()).collect();
    let svg = draw_svg((SIZE.0, height), |root| {
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(format!("Top-1 recall on {suite}, by model"), (FONT, 20))
            .margin(18)
            .x_label_area_size(50)
            .y_label_area_size(160)
            .build_cartesian_2d(lo..hi, -0.5..(n as f64 - 0.5))
            .map_err(err)?;
        let span = hi - lo;
        chart
            .configure_mesh()
            .x_desc("top-1 recall (%), 95% interval (± 1.96 se)")
            .axis_desc_style((FONT, 15))
            .label_style((FONT, 13))
            .x_label_formatter(&|v| axis_label(*v, span))
            .y_labels(n)
            .y_label_formatter(&|y| {
                let i = y.round();
                // Top to bottom in the run's order.
                if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                    names[n - 1 - i as usize].clone()
                } else {
                    String::new()
                }
            })
            .disable_y_mesh()
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(err)?;
        let laion_too = rows.iter().any(|(_, _, l)| l.is_some());
        let kinds: [(usize, f64, &str); 2] =
            [(0, if laion_too { 0.12 } else { 0.0 }, "equal-weighted"), (1, -0.12, "LAION-weighted")];
        for (kind, offset, label) in kinds {
            let c = palette(kind);
            let pts: Vec<(f64, Estimate)> = rows
                .iter()
                .enumerate()
                .filter_map(|(i, (_, e, l))| {
                    let e = if kind == 0 { *e } else { *l };
                    e.map(|e| ((n - 1 - i) as f64 + offset, e))
                })
                .collect();
            if pts.is_empty() {
                continue;
            }
            chart
                .draw_series(pts.iter().map(|&(y, e)| {
                    let (v, d) = pct(e);
                    let (a, b) = bar(v, d);
                    ErrorBar::new_horizontal(y, a, v, b, c.stroke_width(2), 8)
                }))
                .map_err(err)?;
            chart
                .draw_series(pts.iter().map(|&(y, e)| Circle::new((pct(e).0, y), 5, c.filled())))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 9, y), 5, c.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    })?;
    Ok(Ok(svg))
}

/// The distribution of `r`'s per-class top-1 recall: bins ten points wide (the last holds 100%),
/// with the mean over classes marked; `Err(reason)` when no class has a recall.
pub(super) fn class_recall_histogram(r: &EvalResult) -> Result<Result<String, String>> {
    let recalls: Vec<f64> =
        r.per_class.values().filter(|c| c.counts.n > 0).filter_map(|c| c.recall_top1).map(|v| 100.0 * v).collect();
    if recalls.is_empty() {
        return Ok(Err(format!("{} has no per-class recall on {}", r.model, r.suite)));
    }
    let mut counts = [0u32; 10];
    for v in &recalls {
        counts[((v / 10.0).floor() as usize).min(9)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.15;
    let mean = recalls.iter().sum::<f64>() / recalls.len() as f64;
    let perfect = recalls.iter().filter(|v| **v >= 100.0).count();
    let zero = recalls.iter().filter(|v| **v <= 0.0).count();
    let svg = draw_svg(SIZE, |root| {
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{} on {}: per-class top-1 recall", r.model, r.suite), (FONT, 18))
            .margin(18)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..100.0, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("top-1 recall of the class (%)")
            .y_desc("classes")
            .axis_desc_style((FONT, 15))
            .label_style((FONT, 13))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .max_light_lines(4)
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(err)?;
        let c = palette(0);
        chart
            .draw_series(counts.iter().enumerate().filter(|(_, k)| **k > 0).map(|(i, &k)| {
                let x0 = 10.0 * i as f64;
                Rectangle::new([(x0 + 0.4, 0.0), (x0 + 9.6, k as f64)], c.mix(0.75).filled())
            }))
            .map_err(err)?
            .label(format!("classes ({}: {zero} at 0%, {perfect} at 100%)", recalls.len()))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.mix(0.75).filled()));
        let red = palette(3);
        chart
            .draw_series(LineSeries::new(vec![(mean, 0.0), (mean, top)], red.stroke_width(2)))
            .map_err(err)?
            .label(format!("mean over classes {mean:.2}%"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    })?;
    Ok(Ok(svg))
}
