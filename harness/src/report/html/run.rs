//! The page of a run (`run`, `score`, `merge`).

use anyhow::Result;
use serde::Serialize;

use super::page::render;
use super::parts::{plural, rev, share, Cell, Grid, Plot};
use crate::report::analysis::{class_gaps, drop_lines, robustness_lines};
use crate::report::compare::{metric, METRICS};
use crate::report::plot::plots::{Plot as DrawnPlot, PlotKey};
use crate::report::table::{
    fmt_est, models_in_order, problem_lines, suites_in_order, summary_cells_with, RESULTS_HEADER,
};
use crate::results::metrics::Estimate;
use crate::results::result::{EvalResult, RunResult};
use crate::results::robustness::EffectiveRobustness;

/// How many problem lines the Problems section shows per group (every sample is in its
/// drill-down).
const PROBLEM_LINES: usize = 20;
/// How many failed or missing samples a drill-down lists (result.json has all).
const PROBLEMS_LISTED: usize = 1000;

#[derive(Debug, Serialize)]
struct Drill {
    id: String,
    model: String,
    suite: String,
    line: String,
    open: bool,
    error: Option<String>,
    plot: Option<Plot>,
    classes: Grid,
    problems: Vec<crate::results::result::Problem>,
    problem_total: usize,
    problems_left: bool,
}

#[derive(Debug, Serialize)]
struct Provenance {
    models: Option<Grid>,
    suites: Option<Grid>,
}

#[derive(Debug, Serialize)]
struct RunPage {
    meta: Vec<(String, String)>,
    lead: String,
    errors: Option<String>,
    summary: Option<Grid>,
    drops: bool,
    /// Whether the summary has effective robustness columns.
    robustness: bool,
    /// The effective robustness fits (the models left out, and why), then each model's largest
    /// per-class drops: the lines the terminal prints under the summary table.
    fits: Vec<String>,
    results: Grid,
    problems: Vec<String>,
    problem_count: u64,
    plots: Vec<Plot>,
    drill_plots: bool,
    drills: Vec<Drill>,
    provenance: Option<Provenance>,
}

fn results_grid(results: &[EvalResult]) -> Grid {
    let mut right = [true; 11];
    right[..2].copy_from_slice(&[false, false]);
    let mut g = Grid::new("results-table", &RESULTS_HEADER, &right);
    for m in models_in_order(results) {
        for r in results.iter().filter(|r| r.model == m) {
            let t = &r.totals;
            let mut cells = vec![
                Cell::name(&r.model),
                Cell::name(&r.suite),
                Cell::count(t.expected),
                Cell::count(t.evaluated),
                Cell::count(t.failed),
                Cell::count(t.missing),
                Cell::count(r.classes_present as u64),
            ];
            if r.error.is_some() {
                cells.push(Cell::text("ERROR (see Problems)").class("error"));
                cells.extend((0..3).map(|_| Cell::text("")));
            } else {
                cells.extend(METRICS.iter().map(|(k, _)| Cell::est(metric(&r.metrics, k))));
            }
            g.push(r.error.as_ref().map(|_| "regression"), cells);
        }
    }
    g
}

fn summary_grid(results: &[EvalResult], er: &[EffectiveRobustness]) -> Option<Grid> {
    if results.is_empty() {
        return None;
    }
    let (header, rows) = summary_cells_with(results, er);
    let right: Vec<bool> = (0..header.len()).map(|i| i > 0).collect();
    let mut g = Grid::new("summary-table", &header, &right);
    for row in rows {
        let cells = row.into_iter().enumerate().map(|(i, (t, v))| if i == 0 { Cell::name(t) } else { Cell::num(t, v) });
        g.push(None, cells.collect());
    }
    Some(g)
}

fn class_grid(id: &str, r: &EvalResult) -> Grid {
    let header = [
        "class",
        if r.weights == "equal" { "weight share" } else { "LAION share" },
        "expected",
        "evaluated",
        "failed",
        "missing",
        "top-1 right",
        "top-5 right",
        "top-1 recall",
        "top-5 recall",
    ];
    let mut right = [true; 10];
    right[0] = false;
    let mut g = Grid::new(id, &header, &right);
    let total: f64 = r.per_class.values().map(|c| c.weight).sum();
    let mut classes: Vec<(&String, &crate::results::result::PerClass)> = r.per_class.iter().collect();
    // The worst first; classes without a recall (no sample evaluated) last.
    classes.sort_by(|a, b| match (a.1.recall_top1, b.1.recall_top1) {
        (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.0.cmp(b.0)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.0.cmp(b.0),
    });
    let est = |v: Option<f64>, se: Option<f64>| v.map(|value| Estimate { value, se: se.unwrap_or(0.0) });
    for (wnid, c) in classes {
        let s = &c.status;
        let problems = s.failed + s.missing > 0;
        g.push(
            None,
            vec![
                Cell::text(wnid).class("mono"),
                share(c.weight, total),
                Cell::count(s.expected),
                Cell::count(s.evaluated),
                if problems { Cell::count(s.failed).class("error") } else { Cell::count(s.failed) },
                if problems { Cell::count(s.missing).class("error") } else { Cell::count(s.missing) },
                Cell::count(c.counts.top1),
                Cell::count(c.counts.top5),
                Cell::est(est(c.recall_top1, c.se_top1)),
                Cell::est(est(c.recall_top5, c.se_top5)),
            ],
        );
    }
    g
}

fn run_meta(run: &RunResult) -> Vec<(String, String)> {
    let mut m: Vec<(String, String)> = Vec::new();
    match &run.run {
        Some(i) => {
            m.push(("run".into(), format!("{} ({})", i.id, i.kind)));
            let time = match &i.finished_at {
                Some(f) => format!("{} to {f}", i.started_at),
                None => i.started_at.clone(),
            };
            m.push(("time".into(), time));
            m.push(("shiftbench".into(), format!("{}{}", run.shiftbench_version, rev(i.git_revision.as_deref()))));
            m.push(("git revision".into(), i.git_revision.clone().unwrap_or_else(|| "unknown".into())));
            if let Some(h) = &i.host {
                m.push(("host".into(), h.clone()));
            }
            if !i.command.is_empty() {
                m.push(("command".into(), i.command.join(" ")));
            }
        }
        None => {
            m.push(("run".into(), "not recorded (a result without provenance)".into()));
            m.push(("shiftbench".into(), run.shiftbench_version.clone()));
        }
    }
    m
}

fn provenance(run: &RunResult) -> Option<Provenance> {
    let i = run.run.as_ref()?;
    let models = (!i.models.is_empty()).then(|| {
        let mut g = Grid::new("models-table", &["model", "plugin", "reference", "batch"], &[false, false, false, true]);
        for m in &i.models {
            g.push(
                None,
                vec![Cell::name(&m.name), Cell::text(&m.plugin), Cell::text(&m.reference), Cell::count(m.batch as u64)],
            );
        }
        g
    });
    let suites = (!i.suites.is_empty()).then(|| {
        let mut g = Grid::new(
            "suites-table",
            &["suite", "definition", "samples", "classes", "weights", "content digest"],
            &[false, false, true, true, false, false],
        );
        for s in &i.suites {
            g.push(
                None,
                vec![
                    Cell::name(&s.name),
                    Cell::text(&s.path),
                    Cell::count(s.samples as u64),
                    Cell::count(s.classes as u64),
                    Cell::text(&s.weights),
                    Cell::text(&s.content_digest[..12.min(s.content_digest.len())]).class("mono"),
                ],
            );
        }
        g
    });
    Some(Provenance { models, suites })
}

/// The page of a run: a model and suite's per-class plot goes into its drill-down, the other
/// plots into the Plots section.
pub fn run_page(run: &RunResult, plots: &[DrawnPlot]) -> Result<String> {
    let results = &run.results;
    let models = models_in_order(results);
    let suites = suites_in_order(results);
    let mut used = vec![false; plots.len()];
    let mut drills = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let own = PlotKey::PerClass { model: r.model.clone(), suite: r.suite.clone() };
        let plot = plots.iter().enumerate().find(|(j, p)| !used[*j] && p.key == own).map(|(j, p)| {
            used[j] = true;
            Plot::drawn(p)
        });
        let m = &r.metrics;
        let line = if r.error.is_some() {
            format!("stopped with an error; {} classes", r.classes_present)
        } else {
            format!(
                "top-1 {} equal-wt, {} LAION-wt; {} classes",
                fmt_est(m.top1_equal),
                fmt_est(m.top1_weighted),
                r.classes_present
            )
        };
        drills.push(Drill {
            id: format!("class-{i}"),
            model: r.model.clone(),
            suite: r.suite.clone(),
            line,
            open: false,
            error: r.error.clone(),
            plot,
            classes: class_grid(&format!("classes-{i}"), r),
            problems: r.problems.iter().take(PROBLEMS_LISTED).cloned().collect(),
            problem_total: r.problems.len(),
            problems_left: r.problems.len() > PROBLEMS_LISTED,
        });
    }
    let drill_plots = used.iter().any(|u| *u);
    let page_plots = plots.iter().zip(&used).filter(|(_, u)| !**u).map(|(p, _)| Plot::drawn(p)).collect::<Vec<_>>();
    let (failed, missing, expected) = results
        .iter()
        .fold((0, 0, 0), |(f, m, e), r| (f + r.totals.failed, m + r.totals.missing, e + r.totals.expected));
    let lead = format!(
        "{} on {}: {}. {} failed and {} missing of {} samples.",
        plural(models.len(), "model", "models"),
        plural(suites.len(), "suite", "suites"),
        plural(results.len(), "result", "results"),
        failed,
        missing,
        expected
    );
    let n_err = run.model_errors();
    let errors = (n_err > 0).then(|| {
        format!("{} stopped with an error (see Problems)", plural(n_err, "model/suite pair", "model/suite pairs"))
    });
    let title = match &run.run {
        Some(i) => format!("shiftbench {} {}", i.kind, i.id),
        None => "shiftbench results".to_string(),
    };
    let page = RunPage {
        meta: run_meta(run),
        lead,
        errors,
        summary: summary_grid(results, &run.effective_robustness),
        drops: suites.len() > 1,
        robustness: !run.effective_robustness.is_empty(),
        fits: robustness_lines(&run.effective_robustness)
            .into_iter()
            .chain(drop_lines(&class_gaps(results), 3))
            .collect(),
        results: results_grid(results),
        problems: problem_lines(results, PROBLEM_LINES),
        problem_count: failed + missing + n_err as u64,
        plots: page_plots,
        drill_plots,
        drills,
        provenance: provenance(run),
    };
    render("run.html", &title, page)
}
