//! Per-class plots: recall against LAION frequency, and the histogram of per-class gaps between
//! two suites.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::draw::{bar, draw_svg, err, legend, palette, FONT, SIZE};
use crate::results::metrics::Z95;
use crate::results::result::EvalResult;

/// Per-class recall against LAION frequency, as SVG; `Err(reason)` when there is nothing to draw.
pub(super) fn per_class(r: &EvalResult, top5: bool) -> Result<Result<String, String>> {
    if r.weights == "equal" {
        return Ok(Err("the suite has equal class weights, so no LAION frequency to plot against".into()));
    }
    let total: f64 = r.per_class.values().filter(|c| c.counts.n > 0).map(|c| c.weight).sum();
    let mut pts: Vec<(f64, f64, f64)> = r
        .per_class
        .values()
        .filter(|c| c.counts.n > 0 && c.weight > 0.0)
        .filter_map(|c| {
            let (rec, se) = if top5 { (c.recall_top5, c.se_top5) } else { (c.recall_top1, c.se_top1) };
            rec.map(|rec| (c.weight / total, 100.0 * rec, 100.0 * Z95 * se.unwrap_or(0.0)))
        })
        .collect();
    let zero = r.per_class.values().filter(|c| c.counts.n > 0 && c.weight <= 0.0).count();
    if pts.len() < 2 || total <= 0.0 {
        return Ok(Err("fewer than two classes with a positive weight".into()));
    }
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (fmin, fmax) = (pts[0].0, pts[pts.len() - 1].0);
    let (lo, hi) = if fmax / fmin < 1.5 { (fmin / 1.5, fmax * 1.5) } else { (fmin / 1.25, fmax * 1.25) };
    // Few classes: each with its 95% bar; many: the points and a binned mean.
    let few = pts.len() < 40;
    draw_svg(SIZE, |root| per_class_chart(r, top5, &pts, zero, (lo, hi), few, root)).map(Ok)
}

/// [`per_class`]'s drawing: `pts` are (LAION share, recall %, 95% half-width) by share.
fn per_class_chart(
    r: &EvalResult,
    top5: bool,
    pts: &[(f64, f64, f64)],
    zero: usize,
    (lo, hi): (f64, f64),
    few: bool,
    root: &DrawingArea<SVGBackend, Shift>,
) -> Result<()> {
    let ticks = log_ticks(lo, hi);
    root.fill(&WHITE).map_err(err)?;
    let kk = if top5 { "top-5" } else { "top-1" };
    let mut chart = ChartBuilder::on(root)
        .caption(format!("{} on {}: per-class {kk} recall", r.model, r.suite), (FONT, 20))
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d((lo..hi).log_scale().with_key_points(ticks), -2.0..102.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("LAION frequency of the class (share of LAION weight, log scale)")
        .y_desc(format!("{kk} recall (%)"))
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .x_label_formatter(&|v| fmt_share(*v))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .max_light_lines(4)
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(err)?;
    let c = palette(0);
    if few {
        chart
            .draw_series(pts.iter().map(|&(f, rec, e)| {
                let (y0, y1) = bar(rec, e);
                ErrorBar::new_vertical(f, y0, rec, y1, c.stroke_width(1), 6)
            }))
            .map_err(err)?;
    }
    chart
        .draw_series(pts.iter().map(|&(f, rec, _)| {
            Circle::new((f, rec), if few { 4 } else { 3 }, c.mix(if few { 1.0 } else { 0.45 }).filled())
        }))
        .map_err(err)?
        .label(if few {
            format!("a class, 95% bar ({} classes)", pts.len())
        } else {
            format!("a class ({} classes)", pts.len())
        })
        .legend(move |(x, y)| Circle::new((x + 9, y), 3, c.mix(0.6).filled()));
    // Mean recall in ten bins of equal class count, at the bins' geometric mean frequency.
    let bins = if few { 0 } else { 10 };
    let means: Vec<(f64, f64)> = (0..bins)
        .map(|b| {
            let part = &pts[b * pts.len() / bins..(b + 1) * pts.len() / bins];
            let lf = part.iter().map(|p| p.0.ln()).sum::<f64>() / part.len() as f64;
            (lf.exp(), part.iter().map(|p| p.1).sum::<f64>() / part.len() as f64)
        })
        .collect();
    let red = palette(3);
    if !means.is_empty() {
        chart
            .draw_series(LineSeries::new(means.clone(), red.stroke_width(2)))
            .map_err(err)?
            .label("mean recall of ten frequency bins")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red.stroke_width(2)));
        chart.draw_series(means.iter().map(|&p| Circle::new(p, 4, red.filled()))).map_err(err)?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    if zero > 0 {
        root.draw(&Text::new(
            format!("{zero} classes with LAION weight 0 not shown"),
            (12, SIZE.1 as i32 - 14),
            (FONT, 11).into_font().color(&RGBColor(100, 100, 100)),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// A histogram of one model's per-class changes `diffs` (fractions) from suite `x` to `y`: bins
/// five percentage points wide, centred on multiples of five, with the mean change marked. Returns
/// the SVG.
pub(super) fn gap_histogram(model: &str, x: &str, y: &str, diffs: &[f64]) -> Result<String> {
    const WIDTH: f64 = 5.0;
    let mut counts = [0u32; 41]; // -100, -95, ..., +100
    for d in diffs {
        let bin = ((100.0 * d + 100.0) / WIDTH).round().clamp(0.0, 40.0) as usize;
        counts[bin] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.12;
    let mean = 100.0 * diffs.iter().sum::<f64>() / diffs.len().max(1) as f64;
    let (worse, better) = (diffs.iter().filter(|d| **d < 0.0).count(), diffs.iter().filter(|d| **d > 0.0).count());
    draw_svg(SIZE, |root| {
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{model}: per-class top-1 recall, {x} -> {y}"), (FONT, 18))
            .margin(18)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(-105.0..105.0, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(format!("recall on {y} minus recall on {x} (percentage points)"))
            .y_desc("classes")
            .axis_desc_style((FONT, 15))
            .label_style((FONT, 13))
            .x_label_formatter(&|v| format!("{v:+.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .max_light_lines(4)
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(err)?;
        let c = palette(0);
        chart
            .draw_series(counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, &n)| {
                let centre = -100.0 + WIDTH * i as f64;
                Rectangle::new([(centre - WIDTH / 2.0, 0.0), (centre + WIDTH / 2.0, n as f64)], c.mix(0.75).filled())
            }))
            .map_err(err)?
            .label(format!("classes ({} in both suites: {worse} worse, {better} better)", diffs.len()))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.mix(0.75).filled()));
        chart
            .draw_series(DashedLineSeries::new(vec![(0.0, 0.0), (0.0, top)], 6, 4, BLACK.stroke_width(1)))
            .map_err(err)?
            .label("no change")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
        let red = palette(3);
        chart
            .draw_series(LineSeries::new(vec![(mean, 0.0), (mean, top)], red.stroke_width(2)))
            .map_err(err)?
            .label(format!("mean change {mean:+.2} points"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    })
}

/// Ticks at 1, 2 and 5 times powers of ten within `lo..hi` (only the powers of ten when the
/// range spans more than three decades).
pub(super) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut v = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    let steps: &[f64] = if hi / lo > 1000.0 { &[1.0] } else { &[1.0, 2.0, 5.0] };
    while decade <= hi {
        for &m in steps {
            let t = m * decade;
            if t >= lo && t <= hi {
                v.push(t);
            }
        }
        decade *= 10.0;
    }
    v
}

/// `0.1%`, `0.01%`, `2%`.
pub(super) fn fmt_share(v: f64) -> String {
    let p = 100.0 * v;
    if p >= 1.0 {
        format!("{p:.0}%")
    } else {
        let digits = (-p.log10()).ceil().max(1.0) as usize;
        format!("{p:.digits$}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plot::draw::square_range;

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
}
