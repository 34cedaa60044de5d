//! `shiftbench history RUN...`: a series of nightly runs, oldest first. Per model and suite, the
//! trend of top-1 recall (equal- and LAION-weighted, ± se) and each run's verdict against the run
//! before it (paired where both runs' predictions logs allow: see [`crate::report::compare`]);
//! the run where a model first regressed is named, and the newest run's regressions decide the
//! exit status. A run is named by the folder or file it was given as (with its start time beside
//! it); a single run is a one-point history, with nothing to compare it with yet. Rendered as a
//! table, Markdown, CSV or JSON (its [`HistoryFormat`]s: no JUnit), and drawn as SVG trend plots;
//! as a [`Document`], `report::write_folder` writes all of them with the page.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{anyhow, Context, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::report::compare::{compare, Comparison, Tolerance, Verdict};
use crate::report::document::{Document, FormatSet, PlotPlace};
use crate::report::html::history_page;
use crate::report::plot::{draw_svg, Plot, PlotKey, Plots};
use crate::report::sinks::Format;
use crate::report::table::{fit, fmt_est};
use crate::results::metrics::{Estimate, Z95};
use crate::results::result::RunResult;

/// The version of the history's JSON.
pub const HISTORY_VERSION: u32 = 1;

/// One run of the series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPoint {
    /// The folder or file given, as given: what tables and the page name the run by.
    pub path: String,
    /// The run's start time, else the folder's name (kept for readers of older histories; two
    /// runs can share a start time, so nothing is named by it alone).
    pub label: String,
    /// When the run started, if its result recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_revision: Option<String>,
}

/// One model on one suite in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Index into [`History::runs`].
    pub run: usize,
    pub top1_equal: Option<Estimate>,
    pub top1_weighted: Option<Estimate>,
    /// Against the run before it (absent for the first run, or when the run before it lacks this
    /// model on this suite): the worst verdict over the four headline recalls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// The test behind the verdict: `paired` or `unpaired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// The top-1 equal-weighted change against the run before it, with the test's se.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Estimate>,
    /// The metrics that regressed (labels).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regressed: Vec<String>,
    /// The model stopped with an error on this suite in this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What changed against the run before it besides the numbers, as `compare` notes it
    /// (`model card changed: channel_order rgb -> bgr`, `samples 400 -> 380`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The model's speed in this run (all its suites), when the run recorded it: images per
    /// second end to end and milliseconds per image in the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_ms_per_image: Option<f64>,
}

/// One model on one suite across the runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub model: String,
    pub suite: String,
    pub points: Vec<Point>,
    /// The first run (index into [`History::runs`]) that regressed against the run before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_regression: Option<usize>,
}

/// Everything `shiftbench history` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub shiftbench_history: u32,
    pub tolerance: Tolerance,
    pub runs: Vec<RunPoint>,
    pub series: Vec<Series>,
}

impl RunPoint {
    /// The path given with the run's start time when recorded
    /// (`nights/2025-01-02 (2025-01-02T03:00:00Z)`).
    pub fn name(&self) -> String {
        match &self.started_at {
            Some(t) => format!("{} ({t})", self.path),
            None => self.path.clone(),
        }
    }

    /// A short name for a plot's axis: the folder given (or, for a result file, the folder
    /// holding it), as the user named it.
    pub fn short_name(&self) -> String {
        let p = Path::new(self.path.trim_end_matches(['/', '\\']));
        let is_file = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let folder = if is_file { p.parent().filter(|d| !d.as_os_str().is_empty()) } else { Some(p) };
        folder
            .or(Some(p))
            .and_then(Path::file_name)
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.clone())
    }
}

impl History {
    /// The series whose newest point (in the newest run) regressed against the run before it.
    pub fn newest_regressions(&self) -> Vec<&Series> {
        let last = self.runs.len().saturating_sub(1);
        self.series
            .iter()
            .filter(|s| s.points.last().is_some_and(|p| p.run == last && p.verdict == Some(Verdict::Regression)))
            .collect()
    }

    /// One line: how many series, which regressed first where, and the newest run's verdict (or,
    /// with one run, that there is nothing to compare it with yet).
    pub fn summary(&self) -> String {
        let newest = self.newest_regressions();
        let ever: Vec<String> = self
            .series
            .iter()
            .filter_map(|s| {
                s.first_regression
                    .map(|i| format!("{} on {} first regressed in {}", s.model, s.suite, self.runs[i].path))
            })
            .collect();
        let runs = match self.runs.len() {
            1 => "1 run".to_string(),
            n => format!("{n} runs"),
        };
        let mut s = format!("{runs}, {} model/suite series", self.series.len());
        if !ever.is_empty() {
            let _ = write!(s, "; {}", ever.join("; "));
        }
        match newest.len() {
            _ if self.runs.len() == 1 => {
                s.push_str("; nothing to compare with yet (each run is compared with the run before it)")
            }
            0 => s.push_str("; the newest run did not regress"),
            n => {
                let _ = write!(s, "; the newest run regressed in {n} series");
            }
        }
        s
    }
}

/// Reads the runs (folders holding `result.json`, or result files), oldest first, and builds the
/// history; a missing or unreadable run is an error naming it.
pub fn history(paths: &[PathBuf], tol: Tolerance) -> Result<History> {
    if paths.is_empty() {
        return Err(anyhow!("give the run folders (or result files) to follow, oldest first"));
    }
    let mut results = Vec::new();
    for p in paths {
        if !p.exists() {
            return Err(anyhow!("run {} does not exist", p.display()));
        }
        let r = RunResult::read(p).with_context(|| format!("run {}", p.display()))?;
        results.push((p.display().to_string(), r));
    }
    Ok(build(&results, tol))
}

/// The history of runs given as (path, result), oldest first.
pub fn build(results: &[(String, RunResult)], tol: Tolerance) -> History {
    let runs = results
        .iter()
        .map(|(path, r)| {
            let label = r.run.as_ref().map(|i| i.started_at.clone()).unwrap_or_else(|| {
                Path::new(path).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or(path.clone())
            });
            RunPoint {
                path: path.clone(),
                label,
                started_at: r.run.as_ref().map(|i| i.started_at.clone()),
                run_id: r.run.as_ref().map(|i| i.id.clone()),
                git_revision: r.run.as_ref().and_then(|i| i.git_revision.clone()),
            }
        })
        .collect();
    // Each run against the one before it.
    let comparisons: Vec<Option<Comparison>> = (0..results.len())
        .map(|i| {
            (i > 0).then(|| {
                let ((bp, b), (np, n)) = (&results[i - 1], &results[i]);
                compare(b, n, bp, np, tol)
            })
        })
        .collect();
    let mut series: Vec<Series> = Vec::new();
    for (i, (_, r)) in results.iter().enumerate() {
        for e in &r.results {
            let at = match series.iter().position(|s| s.model == e.model && s.suite == e.suite) {
                Some(at) => at,
                None => {
                    series.push(Series {
                        model: e.model.clone(),
                        suite: e.suite.clone(),
                        points: Vec::new(),
                        first_regression: None,
                    });
                    series.len() - 1
                }
            };
            let pair =
                comparisons[i].as_ref().and_then(|c| c.pairs.iter().find(|p| p.model == e.model && p.suite == e.suite));
            let verdict = pair.map(|p| {
                let vs: Vec<Verdict> = p.metrics.iter().map(|m| m.verdict).collect();
                if vs.contains(&Verdict::Regression) {
                    Verdict::Regression
                } else if vs.contains(&Verdict::Improved) {
                    Verdict::Improved
                } else if vs.iter().all(|v| *v == Verdict::NotComparable) {
                    Verdict::NotComparable
                } else {
                    Verdict::Unchanged
                }
            });
            let s = &mut series[at];
            if verdict == Some(Verdict::Regression) && s.first_regression.is_none() {
                s.first_regression = Some(i);
            }
            let speed =
                r.run.as_ref().and_then(|i| i.models.iter().find(|m| m.name == e.model)).and_then(|m| m.speed.as_ref());
            s.points.push(Point {
                run: i,
                top1_equal: e.metrics.top1_equal,
                top1_weighted: e.metrics.top1_weighted,
                verdict,
                test: pair.and_then(|p| p.metrics.first().map(|m| m.test.clone())),
                change: pair.and_then(|p| p.metrics.first().and_then(|m| m.change)),
                regressed: pair.map(|p| p.regressions().map(|m| m.label.clone()).collect()).unwrap_or_default(),
                error: e.error.clone(),
                notes: pair.map(|p| p.notes.clone()).unwrap_or_default(),
                images_per_second: speed.map(|x| x.images_per_second),
                model_ms_per_image: speed.map(|x| x.model_ms_per_image),
            });
        }
    }
    History { shiftbench_history: HISTORY_VERSION, tolerance: tol, runs, series }
}

/// One line per point whose comparison with the run before it noted a change besides the
/// numbers: `model on suite in run: note; note`.
pub fn note_lines(h: &History) -> Vec<String> {
    let mut out = Vec::new();
    for s in &h.series {
        for p in s.points.iter().filter(|p| !p.notes.is_empty()) {
            out.push(format!("{} on {} in {}: {}", s.model, s.suite, h.runs[p.run].path, p.notes.join("; ")));
        }
    }
    out
}

fn verdict_cell(p: &Point) -> String {
    match (p.verdict, &p.test) {
        (None, _) => String::new(),
        (Some(v), Some(t)) => format!("{} ({t})", v.word()),
        (Some(v), None) => v.word().to_string(),
    }
}

fn change_cell(p: &Point) -> String {
    p.change.map(|d| format!("{:+.2} ± {:.2}", 100.0 * d.value, 100.0 * d.se)).unwrap_or_default()
}

const HEADER: [&str; 9] = [
    "model",
    "suite",
    "run",
    "started",
    "top-1 equal-wt",
    "top-1 LAION-wt",
    "change vs previous",
    "verdict",
    "img/s (ms/img in model)",
];

fn speed_cell(p: &Point) -> String {
    match (p.images_per_second, p.model_ms_per_image) {
        (Some(ips), Some(ms)) => format!("{ips:.1} ({ms:.2})"),
        _ => String::new(),
    }
}

fn rows(h: &History) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for s in &h.series {
        for p in &s.points {
            let mut verdict = verdict_cell(p);
            if s.first_regression == Some(p.run) {
                verdict.push_str(" <- first regression");
            }
            if let Some(e) = &p.error {
                verdict = format!("ERROR: {e}");
            }
            out.push(vec![
                s.model.clone(),
                s.suite.clone(),
                h.runs[p.run].path.clone(),
                h.runs[p.run].started_at.clone().unwrap_or_default(),
                fmt_est(p.top1_equal),
                fmt_est(p.top1_weighted),
                change_cell(p),
                verdict,
                speed_cell(p),
            ]);
        }
    }
    out
}

/// The formats of a history: no JUnit (compare the newest run with the one before it for that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryFormat {
    Table,
    Markdown,
    Csv,
    Json,
}

impl FormatSet for HistoryFormat {
    const ALL: &'static [HistoryFormat] =
        &[HistoryFormat::Table, HistoryFormat::Markdown, HistoryFormat::Csv, HistoryFormat::Json];
    fn format(self) -> Format {
        match self {
            HistoryFormat::Table => Format::Table,
            HistoryFormat::Markdown => Format::Markdown,
            HistoryFormat::Csv => Format::Csv,
            HistoryFormat::Json => Format::Json,
        }
    }
}

impl FromStr for HistoryFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<HistoryFormat, String> {
        Ok(match s.parse::<Format>()? {
            Format::Table => HistoryFormat::Table,
            Format::Markdown => HistoryFormat::Markdown,
            Format::Csv => HistoryFormat::Csv,
            Format::Json => HistoryFormat::Json,
            Format::Junit => {
                return Err("history has no JUnit form: compare the newest run with the one before it for that".into())
            }
        })
    }
}

/// A history is a report ([`Document`]): `history.<ext>` in each of its formats, a trend plot per
/// suite in `plots/`, and `report.html`.
impl Document for History {
    type Format = HistoryFormat;
    const PLOTS: PlotPlace = PlotPlace::Folder;
    fn stem(&self) -> &str {
        "history"
    }
    fn render_width(&self, format: HistoryFormat, width: Option<u16>) -> Result<String> {
        render_width(self, format, width)
    }
    fn plots(&self) -> Result<Plots> {
        Ok(Plots { plots: trend_plots(self)?, ..Plots::default() })
    }
    fn page(&self, plots: &[Plot]) -> Result<Option<(String, String)>> {
        Ok(Some(("report.html".into(), history_page(self, plots)?)))
    }
}

/// The history in `format`.
pub fn render(h: &History, format: HistoryFormat) -> Result<String> {
    render_width(h, format, None)
}

/// The history in `format`, its table fitted to a terminal `width` columns wide (`None`: full
/// width).
pub fn render_width(h: &History, format: HistoryFormat, width: Option<u16>) -> Result<String> {
    Ok(match format {
        HistoryFormat::Table => {
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
            t.set_header(HEADER.to_vec());
            for r in rows(h) {
                t.add_row(r.into_iter().enumerate().map(|(i, v)| {
                    if (4..7).contains(&i) || i == 8 {
                        Cell::new(v).set_alignment(CellAlignment::Right)
                    } else {
                        Cell::new(v)
                    }
                }));
            }
            fit(&mut t, width);
            let mut s = format!("{t}\n");
            for l in note_lines(h) {
                let _ = writeln!(s, "{l}");
            }
            let _ = writeln!(s, "{}", h.summary());
            s
        }
        HistoryFormat::Markdown => {
            let mut s = String::from("### shiftbench history\n\n");
            let _ = writeln!(s, "| {} |", HEADER.join(" | "));
            let _ = writeln!(s, "|---|---|---|---|---:|---:|---:|---|---:|");
            for r in rows(h) {
                let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
                let _ = writeln!(s, "| {} |", cells.join(" | "));
            }
            let _ = writeln!(s, "\nRecall in percent, ± one standard error. {}.", h.summary());
            s
        }
        HistoryFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([
                "model",
                "suite",
                "run",
                "run_id",
                "top1_equal",
                "top1_equal_se",
                "top1_weighted",
                "top1_weighted_se",
                "change",
                "change_se",
                "verdict",
                "test",
                "first_regression",
                "images_per_second",
                "model_ms_per_image",
                "path",
                "started_at",
            ])?;
            let v = |e: Option<Estimate>| {
                (
                    e.map(|e| format!("{:.6}", e.value)).unwrap_or_default(),
                    e.map(|e| format!("{:.6}", e.se)).unwrap_or_default(),
                )
            };
            for s in &h.series {
                for p in &s.points {
                    let ((a, ase), (b, bse), (d, dse)) = (v(p.top1_equal), v(p.top1_weighted), v(p.change));
                    let verdict = p
                        .verdict
                        .map(|x| serde_json::to_value(x).map(|j| j.as_str().unwrap_or_default().to_string()))
                        .transpose()?;
                    w.write_record([
                        s.model.clone(),
                        s.suite.clone(),
                        h.runs[p.run].label.clone(),
                        h.runs[p.run].run_id.clone().unwrap_or_default(),
                        a,
                        ase,
                        b,
                        bse,
                        d,
                        dse,
                        verdict.unwrap_or_default(),
                        p.test.clone().unwrap_or_default(),
                        (s.first_regression == Some(p.run)).to_string(),
                        p.images_per_second.map(|v| v.to_string()).unwrap_or_default(),
                        p.model_ms_per_image.map(|v| v.to_string()).unwrap_or_default(),
                        h.runs[p.run].path.clone(),
                        h.runs[p.run].started_at.clone().unwrap_or_default(),
                    ])?;
                }
            }
            String::from_utf8(w.into_inner()?)?
        }
        HistoryFormat::Json => String::from_utf8(serde_json::to_vec_pretty(h)?)? + "\n",
    })
}

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
