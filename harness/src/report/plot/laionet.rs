//! The figures of `shiftbench laionet build`, as the paper draws them: Figure 3 (the density of
//! the candidates' caption-to-query similarities; the classes covered and the dataset's size
//! against the threshold) and Figure 4 (the classes' relative frequencies in the built LAIONet,
//! sorted, with the uniform frequency of ImageNet's classes).

use anyhow::Result;
use plotters::prelude::*;

use super::draw::{draw_svg, err, legend, palette, FONT};

/// Figure 3 as SVG: `density` counts in equal bins over [-1, 1]; `curve` is (threshold, classes
/// covered, rows kept); `threshold` the one chosen; `encoder` names the similarity.
pub fn similarity_figure(
    density: &[u64],
    curve: &[(f64, usize, u64)],
    threshold: f64,
    encoder: &str,
) -> Result<String> {
    draw_svg((1200, 480), |root| {
        let (left, right) = root.split_horizontally(600);
        let total: u64 = density.iter().sum::<u64>().max(1);
        let width = 2.0 / density.len() as f64;
        // Density: the share per unit of similarity.
        let dens: Vec<f64> = density.iter().map(|&n| n as f64 / total as f64 / width).collect();
        let first = density.iter().position(|&n| n > 0).unwrap_or(0);
        let last = density.iter().rposition(|&n| n > 0).unwrap_or(density.len() - 1);
        let (x0, x1) =
            ((-1.0 + width * first as f64 - 0.05).max(-1.0), (-1.0 + width * (last + 1) as f64 + 0.05).min(1.0));
        let top = dens.iter().cloned().fold(0.0, f64::max).max(1e-9) * 1.15;
        let mut chart = ChartBuilder::on(&left)
            .caption(format!("caption-to-query similarity ({encoder})"), (FONT, 17))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("cosine similarity of caption and query")
            .y_desc("density")
            .label_style((FONT, 13))
            .draw()
            .map_err(err)?;
        let blue = palette(0);
        chart
            .draw_series(dens.iter().enumerate().filter(|(_, d)| **d > 0.0).map(|(i, d)| {
                let a = -1.0 + width * i as f64;
                Rectangle::new([(a, 0.0), (a + width, *d)], blue.mix(0.7).filled())
            }))
            .map_err(err)?
            .label("candidates (one class named)")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], blue.mix(0.7).filled()));
        let red = palette(3);
        chart
            .draw_series(LineSeries::new(vec![(threshold, 0.0), (threshold, top)], red.stroke_width(2)))
            .map_err(err)?
            .label(format!("threshold {threshold}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;

        let max_classes = curve.iter().map(|c| c.1).max().unwrap_or(0).max(1) as f64 * 1.1;
        let max_rows = curve.iter().map(|c| c.2).max().unwrap_or(0).max(1) as f64 * 1.1;
        let mut chart = ChartBuilder::on(&right)
            .caption("classes covered and dataset size against the threshold", (FONT, 17))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .right_y_label_area_size(64)
            .build_cartesian_2d(0.0..1.0, 0.0..max_classes)
            .map_err(err)?
            .set_secondary_coord(0.0..1.0, 0.0..max_rows);
        chart
            .configure_mesh()
            .x_desc("threshold (similarity strictly above)")
            .y_desc("classes covered")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 13))
            .draw()
            .map_err(err)?;
        chart
            .configure_secondary_axes()
            .y_desc("rows kept")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 13))
            .draw()
            .map_err(err)?;
        let (c0, c1) = (palette(0), palette(1));
        chart
            .draw_series(LineSeries::new(curve.iter().map(|c| (c.0, c.1 as f64)), c0.stroke_width(2)))
            .map_err(err)?
            .label("classes covered")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c0.stroke_width(2)));
        chart
            .draw_secondary_series(LineSeries::new(curve.iter().map(|c| (c.0, c.2 as f64)), c1.stroke_width(2)))
            .map_err(err)?
            .label("rows kept (right axis)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c1.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(vec![(threshold, 0.0), (threshold, max_classes)], red.stroke_width(1)))
            .map_err(err)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font((FONT, 13))
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

/// Figure 4 as SVG: `freqs` the classes' relative frequencies sorted from the largest, against
/// the uniform frequency `1 / classes` (of the classes with a lemma).
pub fn frequency_figure(freqs: &[f64], classes: usize) -> Result<String> {
    draw_svg((760, 480), |root| {
        let n = freqs.len().max(1);
        let uniform = 1.0 / classes.max(1) as f64;
        let top = freqs.iter().cloned().fold(uniform, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(root)
            .caption("relative class frequencies in the built LAIONet", (FONT, 17))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..n as f64, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("classes, sorted by frequency")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_desc("relative frequency")
            .label_style((FONT, 13))
            .draw()
            .map_err(err)?;
        let blue = palette(0);
        chart
            .draw_series(
                freqs
                    .iter()
                    .enumerate()
                    .map(|(i, f)| Rectangle::new([(i as f64, 0.0), (i as f64 + 1.0, *f)], blue.mix(0.8).filled())),
            )
            .map_err(err)?
            .label(format!("{} classes with rows", freqs.len()))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], blue.mix(0.8).filled()));
        chart
            .draw_series(DashedLineSeries::new(vec![(0.0, uniform), (n as f64, uniform)], 6, 4, BLACK.stroke_width(1)))
            .map_err(err)?
            .label(format!("uniform over {classes} classes (ImageNet)"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}
