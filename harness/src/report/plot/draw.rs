//! What every plot is drawn with: `draw_svg` (a drawing into a new SVG string), the size and
//! font of a plot, its palette, and the small forms of recall in percent (its 95% bar, the range
//! that covers a plot's points, the numbers on an axis).

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::results::metrics::{Estimate, Z95};

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

pub(super) const SIZE: (u32, u32) = (760, 720);
pub(super) const FONT: &str = "sans-serif";

pub(super) fn palette(i: usize) -> RGBColor {
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

pub(super) fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("cannot draw the plot: {e}")
}

/// Draws a chart's legend at `position`, the way every plot does.
pub(super) fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font((FONT, 13))
        .draw()
        .map_err(err)
}

/// The range `[lo, hi]` (in percent) covering `values`, padded, within 0..100.
pub(super) fn square_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
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

pub(super) fn pct(e: Estimate) -> (f64, f64) {
    (100.0 * e.value, 100.0 * Z95 * e.se)
}

/// The 95% bar around `v` (percent), kept within 0..100.
pub(super) fn bar(v: f64, e: f64) -> (f64, f64) {
    ((v - e).max(0.0), (v + e).min(100.0))
}

/// Axis numbers: whole percent unless the range is narrow.
pub(super) fn axis_label(v: f64, span: f64) -> String {
    if span >= 8.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
