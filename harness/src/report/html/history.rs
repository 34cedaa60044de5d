//! The page of a history (`history`).

use anyhow::Result;
use serde::Serialize;

use super::compare::verdict_class;
use super::page::render;
use super::parts::{plural, Cell, Grid, Plot};
use crate::report::compare::fmt_num;
use crate::report::history::series::{History, Point};
use crate::report::plot::plots::Plot as DrawnPlot;
use crate::report::sinks::format::fmt_change;

#[derive(Debug, Serialize)]
struct HistoryPage {
    meta: Vec<(String, String)>,
    summary: String,
    /// Whether any run had a run before it to be compared with.
    compared: bool,
    tolerance_se: String,
    tolerance_points: String,
    newest: Option<Grid>,
    trend: Grid,
    points: Grid,
    runs: Grid,
    plots: Vec<Plot>,
}

/// A point's verdict against the run before it, as its row's or cell's class.
fn point_class(p: &Point) -> Option<&'static str> {
    if p.error.is_some() {
        return Some("regression");
    }
    p.verdict.and_then(verdict_class)
}

/// The page of a history (`shiftbench history`): the summary with the newest run's regressions
/// first, the trend of each model and suite across the runs, the trend plots, every point with
/// its change and verdict, and the runs.
pub fn history_page(h: &History, plots: &[DrawnPlot]) -> Result<String> {
    // A run is named by the path it was given as (two runs can share a start time).
    let label = |i: usize| h.runs.get(i).map(|r| r.path.clone()).unwrap_or_default();
    let change = |p: &Point| match p.change {
        Some(d) => Cell::num(fmt_change(d), Some(d.value)),
        None => Cell::text(""),
    };
    let verdict = |p: &Point, first: bool| {
        let mut t = match (&p.error, p.verdict, &p.test) {
            (Some(e), _, _) => format!("ERROR: {e}"),
            (None, None, _) => String::new(),
            (None, Some(v), Some(t)) if !t.is_empty() => format!("{} ({t})", v.word()),
            (None, Some(v), _) => v.word().to_string(),
        };
        if first {
            t.push_str(", the first regression");
        }
        let c = Cell::text(t);
        match point_class(p) {
            Some(k) => c.class(k),
            None => c,
        }
    };

    let mut newest = Grid::new(
        "newest-table",
        &["model", "suite", "top-1 equal-wt", "change vs previous", "regressed", "first regressed in"],
        &[false, false, true, true, false, false],
    );
    for s in h.newest_regressions() {
        let Some(p) = s.points.last() else { continue };
        newest.push(
            Some("regression"),
            vec![
                Cell::name(&s.model),
                Cell::name(&s.suite),
                Cell::est(p.top1_equal),
                change(p),
                Cell::text(p.regressed.join(", ")),
                Cell::text(s.first_regression.map(label).unwrap_or_default()),
            ],
        );
    }

    let mut header: Vec<String> = vec!["model".into(), "suite".into()];
    header.extend(h.runs.iter().map(|r| match &r.started_at {
        Some(t) => format!("{}\n{t}", r.path),
        None => r.path.clone(),
    }));
    header.push("first regressed in".into());
    let mut right = vec![false, false];
    right.extend(h.runs.iter().map(|_| true));
    right.push(false);
    let mut trend = Grid::new("trend-table", &header, &right);
    for s in &h.series {
        let mut cells = vec![Cell::name(&s.model), Cell::name(&s.suite)];
        for i in 0..h.runs.len() {
            cells.push(match s.points.iter().find(|p| p.run == i) {
                Some(p) if p.error.is_some() => Cell::text("ERROR").class("regression"),
                Some(p) => {
                    let c = Cell::est(p.top1_equal);
                    match point_class(p) {
                        Some(k) => c.class(k),
                        None => c,
                    }
                }
                None => Cell::text(""),
            });
        }
        cells.push(Cell::text(s.first_regression.map(label).unwrap_or_default()));
        trend.push(None, cells);
    }

    let mut points = Grid::new(
        "points-table",
        &["model", "suite", "run", "top-1 equal-wt", "top-1 LAION-wt", "change vs previous", "verdict", "what changed"],
        &[false, false, false, true, true, true, false, false],
    );
    for s in &h.series {
        for p in &s.points {
            points.push(
                point_class(p),
                vec![
                    Cell::name(&s.model),
                    Cell::name(&s.suite),
                    Cell::num(label(p.run), Some(p.run as f64)).class("name"),
                    Cell::est(p.top1_equal),
                    Cell::est(p.top1_weighted),
                    change(p),
                    verdict(p, s.first_regression == Some(p.run)),
                    Cell::text(p.notes.join("; ")),
                ],
            );
        }
    }

    let mut runs = Grid::new(
        "runs-table",
        &["#", "run", "started", "run id", "git revision"],
        &[true, false, false, false, false],
    );
    for (i, r) in h.runs.iter().enumerate() {
        runs.push(
            None,
            vec![
                Cell::count(i as u64 + 1),
                Cell::name(&r.path),
                Cell::text(r.started_at.clone().unwrap_or_default()),
                Cell::text(r.run_id.clone().unwrap_or_default()).class("mono"),
                Cell::text(r.git_revision.as_deref().map(|g| &g[..12.min(g.len())]).unwrap_or("")).class("mono"),
            ],
        );
    }

    let mut meta = vec![("runs".to_string(), h.runs.len().to_string())];
    if let (Some(a), Some(b)) = (h.runs.first(), h.runs.last()) {
        meta.push(("from".into(), a.name()));
        meta.push(("to".into(), b.name()));
    }
    meta.push(("series".into(), format!("{} model/suite pairs", h.series.len())));
    let n = h.newest_regressions().len();
    let title = match n {
        _ if h.runs.len() == 1 => "shiftbench history: one run, nothing to compare with yet".to_string(),
        0 => "shiftbench history: the newest run did not regress".to_string(),
        n => format!("shiftbench history: the newest run regressed in {}", plural(n, "series", "series")),
    };
    let page = HistoryPage {
        meta,
        summary: h.summary(),
        compared: h.runs.len() > 1,
        tolerance_se: fmt_num(h.tolerance.se),
        tolerance_points: format!("{:.2}", 100.0 * h.tolerance.min_drop),
        newest: (!newest.rows.is_empty()).then_some(newest),
        trend,
        points,
        runs,
        plots: plots.iter().map(Plot::drawn).collect(),
    };
    render("history.html", &title, page)
}
