//! Plots of `shiftbench similarity`: the histogram of one model's per-class change in intra-class
//! similarity between two suites (coloured by whether the change is significant), and the paper's
//! figure of the change in per-class recall against the change in intra-class similarity.

use anyhow::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::draw::{err, legend, palette, FONT, SIZE};
use crate::results::similarity::{pearson, SuiteComparison, Verdict};

/// A chart with plain numbers on both axes.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The narrowest x axis of the histogram (cosine), so equal differences still get a readable axis.
const MIN_SIM_SPAN: f64 = 1e-3;
/// The narrowest y axis of the recall plot (percentage points).
const MIN_RECALL_SPAN: f64 = 1.0;

/// The histogram of `c`'s per-class differences of mean cosine (suite `b` minus suite `a`), each
/// bin's bar stacked by verdict, with the headline (the shares significantly lower and higher) under
/// the title, as SVG. `Err(reason)` when there is nothing to draw (fewer than two classes).
pub fn similarity_histogram(c: &SuiteComparison, model: &str) -> Result<Result<String, String>> {
    let mut svg = String::new();
    Ok(match histogram_into(c, model, &mut svg)? {
        None => Ok(svg),
        Some(why) => Err(why),
    })
}

/// [`similarity_histogram`] drawn into `svg`; `Some(reason)` when there is nothing to draw.
fn histogram_into(c: &SuiteComparison, model: &str, svg: &mut String) -> Result<Option<String>> {
    let classes: Vec<(f64, Verdict)> =
        c.classes.iter().filter(|d| d.diff.is_finite()).map(|d| (d.diff, d.verdict)).collect();
    if classes.len() < 2 {
        return Ok(Some(format!(
            "fewer than two classes with a similarity in both {} and {} ({} of {})",
            c.a,
            c.b,
            classes.len(),
            c.classes.len()
        )));
    }
    let (start, width, counts) = bins(&classes);
    let end = start + width * counts.len() as f64;
    let top = counts.iter().map(|n| n.iter().sum::<u32>()).max().unwrap_or(0).max(1) as f64 * 1.35;
    let span = end - start;
    let digits = decimals(span);
    let mean = classes.iter().map(|d| d.0).sum::<f64>() / classes.len() as f64;
    let k = c.classes.len();
    // Two classes or more here, so the shares exist.
    let headline = format!(
        "{} of {k} classes significantly lower ({:.1}%), {} higher ({:.1}%)",
        c.lower,
        100.0 * c.share_lower.unwrap_or_default(),
        c.higher,
        100.0 * c.share_higher.unwrap_or_default()
    );
    let root = svg_root(svg)?;
    let area = titled(&root, &format!("{model}: intra-class similarity, {} minus {}", c.b, c.a), &headline)?;
    let mut chart = ChartBuilder::on(&area)
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(start - width / 2.0..end + width / 2.0, 0.0..top)
        .map_err(err)?;
    mesh(
        &mut chart,
        &format!("mean cosine in {} minus mean cosine in {}, per class", c.b, c.a),
        "classes",
        &|v| signed(*v, span, digits),
        &|v| format!("{v:.0}"),
    )?;
    // Stacked from the axis up: lower, unclear, higher.
    let kinds = [
        (0, palette(3), format!("significantly lower in {}", c.b)),
        (1, palette(7), "unclear (95% interval holds 0)".to_string()),
        (2, palette(0), format!("significantly higher in {}", c.b)),
    ];
    for (kind, colour, label) in kinds {
        let style = colour.mix(0.8).filled();
        chart
            .draw_series(counts.iter().enumerate().filter(|(_, n)| n[kind] > 0).map(|(i, n)| {
                let x0 = start + width * i as f64;
                let below = n[..kind].iter().sum::<u32>() as f64;
                Rectangle::new([(x0, below), (x0 + width, below + n[kind] as f64)], style)
            }))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], style));
    }
    chart
        .draw_series(DashedLineSeries::new(vec![(0.0, 0.0), (0.0, top)], 6, 4, BLACK.stroke_width(1)))
        .map_err(err)?
        .label("no difference")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    let orange = palette(1);
    chart
        .draw_series(LineSeries::new(vec![(mean, 0.0), (mean, top)], orange.stroke_width(2)))
        .map_err(err)?
        .label(format!("mean difference {}", signed(mean, span, digits + 1)))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], orange.stroke_width(2)));
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(err)?;
    Ok(None)
}

/// The paper's figure: per class (`(wnid, similarity change, recall change)`, the changes from
/// suite `a` to suite `b`, similarity in mean cosine, recall in percentage points), the change in
/// recall against the change in intra-class similarity, with the least-squares line and Pearson's
/// r, as SVG. `Err(reason)` when there is nothing to draw (fewer than three classes with both
/// changes).
pub fn recall_vs_similarity(
    points: &[(String, f64, f64)],
    a: &str,
    b: &str,
    model: &str,
) -> Result<Result<String, String>> {
    let mut svg = String::new();
    Ok(match recall_into(points, a, b, model, &mut svg)? {
        None => Ok(svg),
        Some(why) => Err(why),
    })
}

/// [`recall_vs_similarity`] drawn into `svg`; `Some(reason)` when there is nothing to draw.
fn recall_into(
    points: &[(String, f64, f64)],
    a: &str,
    b: &str,
    model: &str,
    svg: &mut String,
) -> Result<Option<String>> {
    let pts: Vec<(f64, f64)> =
        points.iter().filter(|p| p.1.is_finite() && p.2.is_finite()).map(|p| (p.1, p.2)).collect();
    if pts.len() < 3 {
        return Ok(Some(format!(
            "fewer than three classes with both a similarity and a recall change ({} of {})",
            pts.len(),
            points.len()
        )));
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
    // Equal values whose mean rounds off would give a fit and an r out of rounding noise.
    let r = if spread(&xs) && spread(&ys) { pearson(&xs, &ys) } else { None };
    let n = pts.len();
    let (x0, x1) = padded_range(xs.iter().copied().chain([0.0]), MIN_SIM_SPAN);
    let (y0, y1) = padded_range(ys.iter().copied().chain([0.0]), MIN_RECALL_SPAN);
    let (xspan, yspan) = (x1 - x0, y1 - y0);
    let digits = decimals(xspan);
    let r_text = match r {
        Some(r) => format!("{r:+.3}"),
        None => "undefined (no spread)".to_string(),
    };
    let root = svg_root(svg)?;
    let area = titled(
        &root,
        &format!("{model}: recall vs intra-class similarity, {b} minus {a}"),
        &format!("{n} classes, Pearson's r = {r_text}"),
    )?;
    let mut chart = ChartBuilder::on(&area)
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    mesh(
        &mut chart,
        &format!("intra-class similarity (mean cosine) in {b} minus in {a}"),
        &format!("top-1 recall in {b} minus in {a} (percentage points)"),
        &|v| signed(*v, xspan, digits),
        &|v| signed(*v, yspan, if yspan >= 8.0 { 0 } else { 1 }),
    )?;
    for line in [[(0.0, y0), (0.0, y1)], [(x0, 0.0), (x1, 0.0)]] {
        chart.draw_series(DashedLineSeries::new(line, 6, 4, BLACK.stroke_width(1))).map_err(err)?;
    }
    let c = palette(0);
    let few = n < 200;
    let dot = c.mix(if few { 0.85 } else { 0.45 }).filled();
    chart
        .draw_series(pts.iter().map(|&p| Circle::new(p, if few { 4 } else { 3 }, dot)))
        .map_err(err)?
        .label(format!("a class ({n} classes)"))
        .legend(move |(x, y)| Circle::new((x + 9, y), 4, dot));
    let red = palette(3);
    if let Some((slope, intercept)) = least_squares(&pts) {
        if let Some(line) = clip_line(slope, intercept, (x0, x1), (y0, y1)) {
            chart
                .draw_series(LineSeries::new(line, red.stroke_width(2)))
                .map_err(err)?
                .label(format!(
                    "least squares: y = {slope:.1} x {} {:.2}, r = {r_text}",
                    if intercept < 0.0 { '-' } else { '+' },
                    intercept.abs()
                ))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red.stroke_width(2)));
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(err)?;
    Ok(None)
}

/// A white SVG canvas of the plots' size, drawn into `svg`.
fn svg_root(svg: &mut String) -> Result<DrawingArea<SVGBackend<'_>, Shift>> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    Ok(root)
}

/// The area under a title and a grey subtitle.
fn titled<'a>(
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    title: &str,
    subtitle: &str,
) -> Result<DrawingArea<SVGBackend<'a>, Shift>> {
    root.margin(12, 0, 0, 0)
        .titled(title, (FONT, 20))
        .map_err(err)?
        .titled(subtitle, (FONT, 14).into_font().color(&RGBColor(80, 80, 80)))
        .map_err(err)
}

/// The axes, their descriptions and the grid, in the style of the other plots.
fn mesh(
    chart: &mut Chart,
    x_desc: &str,
    y_desc: &str,
    x_fmt: &dyn Fn(&f64) -> String,
    y_fmt: &dyn Fn(&f64) -> String,
) -> Result<()> {
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .x_label_formatter(x_fmt)
        .y_label_formatter(y_fmt)
        .max_light_lines(4)
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(err)
}

/// The histogram's bins over the differences and 0: `(start, width, counts)`, the bins
/// `[start + i width, start + (i + 1) width)` aligned on multiples of a round width (so 0 is an
/// edge), each counting its classes by verdict (lower, unclear, higher).
fn bins(classes: &[(f64, Verdict)]) -> (f64, f64, Vec<[u32; 3]>) {
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for &(d, _) in classes {
        lo = lo.min(d);
        hi = hi.max(d);
    }
    if hi - lo < MIN_SIM_SPAN {
        let mid = (lo + hi) / 2.0;
        (lo, hi) = (mid - MIN_SIM_SPAN / 2.0, mid + MIN_SIM_SPAN / 2.0);
    }
    let target = ((classes.len() as f64).sqrt() * 1.5).clamp(10.0, 40.0);
    let width = nice_step((hi - lo) / target);
    let start = (lo / width).floor() * width;
    let n = (((hi - start) / width).floor() as usize + 1).max(1);
    let mut counts = vec![[0u32; 3]; n];
    for &(d, v) in classes {
        let i = (((d - start) / width).floor().max(0.0) as usize).min(n - 1);
        let kind = match v {
            Verdict::Lower => 0,
            Verdict::Unclear => 1,
            Verdict::Higher => 2,
        };
        counts[i][kind] += 1;
    }
    (start, width, counts)
}

/// The round step (1, 2, 2.5 or 5 times a power of ten) at or above `raw` (> 0).
fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let s = [1.0, 2.0, 2.5, 5.0].into_iter().find(|s| m <= s * (1.0 + 1e-9)).unwrap_or(10.0);
    s * p
}

/// Decimals that tell apart ticks about a tenth of `span` apart.
fn decimals(span: f64) -> usize {
    (-(span / 10.0).log10()).ceil().clamp(0.0, 8.0) as usize
}

/// `+0.05`, `-1.2`, `0` for (nearly) zero: no `-0.00`.
fn signed(v: f64, span: f64, digits: usize) -> String {
    if v.abs() <= span * 1e-9 {
        return format!("{:.digits$}", 0.0);
    }
    format!("{v:+.digits$}")
}

/// The range covering `values` (finite), at least `min_span` wide, padded by 8% each side.
fn padded_range(values: impl Iterator<Item = f64>, min_span: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 0.0);
    }
    if hi - lo < min_span {
        let mid = (lo + hi) / 2.0;
        (lo, hi) = (mid - min_span / 2.0, mid + min_span / 2.0);
    }
    let pad = (hi - lo) * 0.08;
    (lo - pad, hi + pad)
}

/// Whether `v` holds two different values.
fn spread(v: &[f64]) -> bool {
    v.iter().any(|x| *x != v[0])
}

/// The least-squares line `y = slope x + intercept` through `pts`; None when x has no spread.
fn least_squares(pts: &[(f64, f64)]) -> Option<(f64, f64)> {
    if !pts.iter().any(|p| p.0 != pts[0].0) {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 || !sxx.is_finite() {
        return None;
    }
    let slope = sxy / sxx;
    Some((slope, my - slope * mx))
}

/// The part of the line `y = slope x + intercept` inside the box `x` by `y` (None when it misses).
fn clip_line(slope: f64, intercept: f64, x: (f64, f64), y: (f64, f64)) -> Option<Vec<(f64, f64)>> {
    let (mut x0, mut x1) = x;
    if slope != 0.0 {
        let (a, b) = ((y.0 - intercept) / slope, (y.1 - intercept) / slope);
        x0 = x0.max(a.min(b));
        x1 = x1.min(a.max(b));
    } else if !(y.0..=y.1).contains(&intercept) {
        return None;
    }
    (x0 < x1).then(|| vec![(x0, slope * x0 + intercept), (x1, slope * x1 + intercept)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::similarity::{compare, ClassSimilarity, PairStats};

    fn row(suite: &str, wnid: &str, mean: f64, se: f64) -> ClassSimilarity {
        ClassSimilarity {
            suite: suite.into(),
            wnid: wnid.into(),
            stats: PairStats { n: 10, pairs: 45, mean_cosine: mean, std_cosine: 0.1, se },
        }
    }

    /// Suite `b` against `a`: class 1 significantly lower, 2 unclear, 3 higher (as in
    /// `results::similarity`'s hand-worked test), 4 lower.
    fn comparison(a: &str, b: &str) -> SuiteComparison {
        let ra = [
            row(a, "n00000001", 0.6, 0.03),
            row(a, "n00000002", 0.5, 0.03),
            row(a, "n00000003", 0.2, 0.06),
            row(a, "n00000004", 0.5, 0.01),
        ];
        let rb = [
            row(b, "n00000001", 0.4, 0.04),
            row(b, "n00000002", 0.55, 0.04),
            row(b, "n00000003", 0.5, 0.08),
            row(b, "n00000004", 0.45, 0.01),
        ];
        compare(a, &ra, b, &rb)
    }

    fn svg(drawn: Result<String, String>) -> String {
        let s = drawn.expect("drawn");
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"), "{s}");
        s
    }

    #[test]
    fn histogram_draws_the_headline_and_escapes_names() {
        let c = comparison("imagenet", "laionet");
        assert_eq!((c.lower, c.higher, c.classes.len()), (2, 1, 4));
        let s = svg(similarity_histogram(&c, "vit").unwrap());
        for want in [
            "vit: intra-class similarity, laionet minus imagenet",
            "2 of 4 classes significantly lower (50.0%), 1 higher (25.0%)",
            "significantly lower in laionet",
            "unclear (95% interval holds 0)",
            "significantly higher in laionet",
            "no difference",
            "mean difference",
        ] {
            assert!(s.contains(want), "{want}");
        }
        // Names from the user reach the SVG escaped.
        let c = comparison("a<b", "x&y");
        let s = svg(similarity_histogram(&c, "m<1>&co").unwrap());
        assert!(s.contains("m&lt;1&gt;&amp;co: intra-class similarity, x&amp;y minus a&lt;b"), "{s}");
        assert!(!s.contains("m<1>") && !s.contains("x&y"));
        // Nothing to draw: one class, or only NaN differences.
        let mut one = comparison("a", "b");
        one.classes.truncate(1);
        let why = similarity_histogram(&one, "m").unwrap().expect_err("a reason");
        assert!(why.contains("fewer than two classes"), "{why}");
        let mut nan = comparison("a", "b");
        nan.classes.iter_mut().skip(1).for_each(|x| x.diff = f64::NAN);
        assert!(similarity_histogram(&nan, "m").unwrap().is_err());
        // All differences equal (and zero): an axis of some width all the same.
        let mut flat = comparison("a", "b");
        flat.classes.iter_mut().for_each(|x| x.diff = 0.0);
        svg(similarity_histogram(&flat, "m").unwrap());
    }

    #[test]
    fn bins_are_round_and_count_every_class() {
        let classes =
            [(-0.19, Verdict::Lower), (-0.04, Verdict::Lower), (0.02, Verdict::Unclear), (0.29, Verdict::Higher)];
        let (start, width, counts) = bins(&classes);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(width, 0.05) && close(start, -0.2), "{start} {width}");
        assert!(start + width * counts.len() as f64 > 0.29);
        let total: [u32; 3] = counts.iter().fold([0; 3], |t, n| [t[0] + n[0], t[1] + n[1], t[2] + n[2]]);
        assert_eq!(total, [2, 1, 1]);
        // 0 is an edge: -0.04 is in the bin below it, 0.02 in the one above.
        let zero = (-start / width).round() as usize;
        assert_eq!(counts[zero - 1][0], 1);
        assert_eq!(counts[zero][1], 1);
        let (_, width, counts) = bins(&[(0.0, Verdict::Unclear), (0.0, Verdict::Unclear)]);
        assert!(width > 0.0 && counts.iter().map(|n| n[1]).sum::<u32>() == 2);
        assert!(close(nice_step(0.03), 0.05) && close(nice_step(0.2), 0.2) && close(nice_step(2.2), 2.5));
        assert_eq!(signed(-1e-17, 0.4, 2), "0.00");
        assert_eq!(signed(-0.05, 0.4, 2), "-0.05");
    }

    #[test]
    fn recall_plot_draws_the_fit_and_r() {
        // y = 100 x exactly, with a NaN class left out: r = 1.
        let points: Vec<(String, f64, f64)> = [(-0.1, -10.0), (0.0, 0.0), (0.05, 5.0), (0.2, 20.0), (f64::NAN, 3.0)]
            .iter()
            .enumerate()
            .map(|(i, &(x, y))| (format!("n{i:08}"), x, y))
            .collect();
        let s = svg(recall_vs_similarity(&points, "in<1>", "laion&co", "m<&>").unwrap());
        for want in [
            "m&lt;&amp;&gt;: recall vs intra-class similarity, laion&amp;co minus in&lt;1&gt;",
            "4 classes, Pearson&apos;s r = +1.000",
            "a class (4 classes)",
            "least squares: y = 100.0 x",
        ] {
            assert!(s.contains(want), "{want}\n{s}");
        }
        // Fewer than three usable classes.
        let why = recall_vs_similarity(&points[..2], "a", "b", "m").unwrap();
        assert!(why.expect_err("a reason").contains("fewer than three"));
        let mut nan = points.clone();
        nan[0].2 = f64::NAN;
        nan[1].1 = f64::INFINITY;
        assert!(recall_vs_similarity(&nan, "a", "b", "m").unwrap().is_err());
        // All equal: no spread, no fit, no r, but a plot with axes of some width.
        let same: Vec<(String, f64, f64)> = (0..3).map(|i| (format!("c{i}"), 0.1, -2.0)).collect();
        let s = svg(recall_vs_similarity(&same, "a", "b", "m").unwrap());
        assert!(s.contains("undefined (no spread)") && !s.contains("least squares"));
    }

    #[test]
    fn ranges_and_the_fit_line() {
        assert_eq!(padded_range([1.0, 1.0].into_iter(), 1.0), (0.5 - 0.08, 1.5 + 0.08));
        let (lo, hi) = padded_range([0.0, 10.0, f64::NAN].into_iter(), 1.0);
        assert!((lo + 0.8).abs() < 1e-12 && (hi - 10.8).abs() < 1e-12);
        assert_eq!(least_squares(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]), Some((2.0, 1.0)));
        assert_eq!(least_squares(&[(1.0, 1.0), (1.0, 3.0)]), None);
        // y = 2x + 1 in [0, 10] x [0, 5]: from x = 0 to x = 2.
        assert_eq!(clip_line(2.0, 1.0, (0.0, 10.0), (0.0, 5.0)), Some(vec![(0.0, 1.0), (2.0, 5.0)]));
        assert_eq!(clip_line(0.0, 7.0, (0.0, 10.0), (0.0, 5.0)), None);
        assert_eq!(clip_line(-1.0, 100.0, (0.0, 10.0), (0.0, 5.0)), None);
    }
}
