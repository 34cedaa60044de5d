//! The page of a comparison (`compare`, `run --baseline`).

use anyhow::Result;
use serde::Serialize;

use super::page::render;
use super::parts::{plural, rev, Cell, Grid};
use crate::report::compare::{fmt_num, Comparison, MetricChange, PairChange, Side, Verdict};
use crate::report::sinks::format::fmt_change;
use crate::report::sinks::text::{fmt_p, metric_row, COMPARE_HEADER, COMPARE_RIGHT};
use crate::report::table::fmt_est;

/// How many classes that moved most a comparison shows before the full list.
const CLASSES_FIRST: usize = 20;

#[derive(Debug, Serialize)]
struct PairSection {
    id: String,
    model: String,
    suite: String,
    line: String,
    regressions: usize,
    improvements: usize,
    test: String,
    notes: Vec<String>,
    classes: Option<Grid>,
    all_classes: Option<Grid>,
    flips: Option<Grid>,
}

#[derive(Debug, Serialize)]
struct ComparisonPage {
    baseline: Vec<(String, String)>,
    new: Vec<(String, String)>,
    summary: String,
    regressions: usize,
    tolerance_se: String,
    tolerance_points: String,
    moved: Option<Grid>,
    metrics: Grid,
    pairs: Vec<PairSection>,
    only_in_baseline: Vec<crate::report::compare::Unpaired>,
    only_in_new: Vec<crate::report::compare::Unpaired>,
}

fn side_meta(s: &Side) -> Vec<(String, String)> {
    let mut m = vec![("result".to_string(), s.path.clone())];
    if let Some(id) = &s.run_id {
        m.push(("run".into(), id.clone()));
    }
    if let Some(t) = &s.started_at {
        m.push(("time".into(), t.clone()));
    }
    m.push(("shiftbench".into(), format!("{}{}", s.shiftbench_version, rev(s.git_revision.as_deref()))));
    m.push(("git revision".into(), s.git_revision.clone().unwrap_or_else(|| "unknown".into())));
    m
}

pub(super) fn verdict_class(v: Verdict) -> Option<&'static str> {
    match v {
        Verdict::Regression => Some("regression"),
        Verdict::Improved => Some("improved"),
        _ => None,
    }
}

fn metric_cells(p: &PairChange, m: &MetricChange) -> Vec<Cell> {
    let text = metric_row(&p.model, &p.suite, m);
    let values = [
        None,
        None,
        None,
        m.baseline.map(|e| e.value),
        m.new.map(|e| e.value),
        m.change.map(|e| e.value),
        m.z,
        None,
        None,
    ];
    text.into_iter()
        .zip(values)
        .enumerate()
        .map(|(i, (t, v))| {
            let c = Cell::num(t, v);
            match (i, verdict_class(m.verdict)) {
                (0 | 1, _) => c.class("name"),
                (7, Some(k)) => c.class(k),
                _ => c,
            }
        })
        .collect()
}

fn pair_section(i: usize, p: &PairChange) -> PairSection {
    let regressions = p.regressions().count();
    let improvements = p.metrics.iter().filter(|m| m.verdict == Verdict::Improved).count();
    let top1 = p.metrics.iter().find(|m| m.metric == "top1_equal");
    let line = match top1 {
        Some(m) => format!(
            "top-1 equal-wt {} → {} ({}, {})",
            fmt_est(m.baseline),
            fmt_est(m.new),
            m.change.map(fmt_change).unwrap_or_else(|| "n/a".into()),
            if m.test.is_empty() { "unpaired" } else { &m.test }
        ),
        None => String::new(),
    };
    let (mut classes, mut all_classes, mut flips) = (None, None, None);
    let test = match &p.paired {
        None => format!(
            "Unpaired (standard errors of independent runs): {}.",
            p.unpaired_because.as_deref().unwrap_or("no predictions logs")
        ),
        Some(pr) => {
            let class_grid = |id: String, n: usize| {
                let mut g = Grid::new(
                    &id,
                    &["class", "paired samples", "right → wrong", "wrong → right", "net", "top-1 change"],
                    &[false, true, true, true, true, true],
                );
                for c in pr.classes.iter().take(n) {
                    let net = c.wrong_to_right as i64 - c.right_to_wrong as i64;
                    g.push(
                        None,
                        vec![
                            Cell::text(&c.wnid).class("mono"),
                            Cell::count(c.n),
                            Cell::count(c.right_to_wrong),
                            Cell::count(c.wrong_to_right),
                            Cell::num(format!("{net:+}"), Some(net as f64)),
                            Cell::num(format!("{:+.2}", 100.0 * c.change), Some(c.change)),
                        ],
                    );
                }
                g
            };
            if !pr.classes.is_empty() {
                classes = Some(class_grid(format!("pair-{i}-classes"), CLASSES_FIRST));
                if pr.classes.len() > CLASSES_FIRST {
                    all_classes = Some(class_grid(format!("pair-{i}-all-classes"), pr.classes.len()));
                }
            }
            if !pr.flips.is_empty() {
                let mut g = Grid::new(
                    &format!("pair-{i}-flips"),
                    &["sample", "class", "top-1", "before", "after"],
                    &[false, false, false, false, false],
                );
                for f in &pr.flips {
                    let (dir, class) = match f.direction.as_str() {
                        "right_to_wrong" => ("right → wrong", "regression"),
                        "wrong_to_right" => ("wrong → right", "improved"),
                        other => (other, ""),
                    };
                    let d = Cell::text(dir);
                    g.push(
                        None,
                        vec![
                            Cell::text(&f.id).class("mono"),
                            Cell::text(&f.wnid).class("mono"),
                            if class.is_empty() { d } else { d.class(class) },
                            Cell::text(&f.before).class("mono"),
                            Cell::text(&f.after).class("mono"),
                        ],
                    );
                }
                flips = Some(g);
            }
            format!(
                "Paired on {} samples{}: top-1 {} right → wrong, {} wrong → right (McNemar p = {}); top-5 {} right → \
                 wrong, {} wrong → right (p = {}).",
                pr.samples,
                if pr.one_side_only > 0 {
                    format!(" ({} scored on one side only, left out)", pr.one_side_only)
                } else {
                    String::new()
                },
                pr.top1.right_to_wrong,
                pr.top1.wrong_to_right,
                fmt_p(pr.top1.p_value),
                pr.top5.right_to_wrong,
                pr.top5.wrong_to_right,
                fmt_p(pr.top5.p_value)
            )
        }
    };
    PairSection {
        id: format!("pair-{i}"),
        model: p.model.clone(),
        suite: p.suite.clone(),
        line,
        regressions,
        improvements,
        test,
        notes: p.notes.clone(),
        classes,
        all_classes,
        flips,
    }
}

/// The page of a comparison.
pub fn comparison_page(c: &Comparison) -> Result<String> {
    let mut metrics = Grid::new("metrics-table", &COMPARE_HEADER, &COMPARE_RIGHT);
    let mut moved = Grid::new("moved-table", &COMPARE_HEADER, &COMPARE_RIGHT);
    for v in [Verdict::Regression, Verdict::Improved] {
        for p in &c.pairs {
            for m in p.metrics.iter().filter(|m| m.verdict == v) {
                moved.push(verdict_class(v), metric_cells(p, m));
            }
        }
    }
    for p in &c.pairs {
        for m in &p.metrics {
            metrics.push(verdict_class(m.verdict), metric_cells(p, m));
        }
    }
    let n = c.regressions();
    let title = if n == 0 {
        "shiftbench compare: no regression".to_string()
    } else {
        format!("shiftbench compare: {}", plural(n, "regression", "regressions"))
    };
    let page = ComparisonPage {
        baseline: side_meta(&c.baseline),
        new: side_meta(&c.new),
        summary: c.summary(),
        regressions: n,
        tolerance_se: fmt_num(c.tolerance.se),
        tolerance_points: format!("{:.2}", 100.0 * c.tolerance.min_drop),
        moved: (!moved.rows.is_empty()).then_some(moved),
        metrics,
        pairs: c.pairs.iter().enumerate().map(|(i, p)| pair_section(i, p)).collect(),
        only_in_baseline: c.only_in_baseline.clone(),
        only_in_new: c.only_in_new.clone(),
    };
    render("comparison.html", &title, page)
}
