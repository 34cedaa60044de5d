//! The HTML report page, `report.html` in a `--report-dir`: one self-contained file (inline CSS,
//! inline SVG plots, a few lines of inline script; nothing fetched) that a CI job can publish.
//!
//! - a run ([`run_page`]): what it is (run id, shiftbench version, git revision, time), the models x
//!   suites summary, the full table, the problems, the plots, and per model and suite a
//!   drill-down of its classes (recall ± se, counts, the worst classes first) with its per-class
//!   plot and every failed or missing sample;
//! - a comparison ([`comparison_page`]): both sides, the verdict summary with what moved beyond
//!   the tolerance (regressions first), every metric's change with its verdict and test, and per
//!   model and suite the test's counts, the classes that moved most and every flipped sample;
//! - a history ([`history_page`]): the newest run's regressions first, each model and suite's
//!   trend across the runs, the trend plots, every point with its verdict, and the runs.
//!
//! **Templates**, not string concatenation: `templates/*.html` (minijinja, compiled into the
//! binary), with autoescaping on for every `.html` template, so each string from a suite, a
//! model or a log (names, sample ids, error messages, paths) is escaped wherever it goes. Only
//! three values are marked safe: the style sheet and the script (files of this crate) and each
//! plot's SVG, which is first checked by [`checked_svg`]: elements from a short list of drawing
//! elements only, no event-handler, link or style attribute, no comment, balanced tags (plotters'
//! SVG backend escapes `<`, `>`, `&` and quotes in its text and attributes; the check holds
//! whatever wrote the SVG). A plot that fails the check is left out with the reason, escaped.
//!
//! **Content Security Policy**: the page says `default-src 'none'` and allows its one script by
//! its SHA-256 only, so even markup that slipped through could neither run a script nor fetch
//! anything.
//!
//! Numbers read as in the terminal: recall in percent with two decimals, ± one standard error.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::report::compare::{fmt_num, metric, Comparison, MetricChange, PairChange, Side, Verdict, METRICS};
use crate::report::history::{History, Point};
use crate::report::sinks::fmt_change;
use crate::report::sinks::text::{fmt_p, metric_row, COMPARE_HEADER, COMPARE_RIGHT};
use crate::report::table::{fmt_est, models_in_order, problem_lines, suites_in_order, summary_cells};
use crate::results::metrics::Estimate;
use crate::results::paths::slug;
use crate::results::provenance::git_revision;
use crate::results::result::{EvalResult, RunResult};

/// The templates, by name (the `.html` ending turns autoescaping on).
const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("templates/base.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("run.html", include_str!("templates/run.html")),
    ("comparison.html", include_str!("templates/comparison.html")),
    ("history.html", include_str!("templates/history.html")),
];
const STYLE: &str = include_str!("templates/report.css");
const SCRIPT: &str = include_str!("templates/report.js");

/// How many problem lines the Problems section shows per group (every sample is in its
/// drill-down).
const PROBLEM_LINES: usize = 20;
/// How many failed or missing samples a drill-down lists (result.json has all).
const PROBLEMS_LISTED: usize = 1000;
/// How many classes that moved most a comparison shows before the full list.
const CLASSES_FIRST: usize = 20;

/// One cell of a table: its text, the number it sorts by, its CSS classes.
#[derive(Debug, Serialize)]
struct Cell {
    t: String,
    v: Option<f64>,
    c: Option<String>,
}

impl Cell {
    fn text(t: impl Into<String>) -> Cell {
        Cell { t: t.into(), v: None, c: None }
    }
    /// A model's or a suite's name: kept on one line.
    fn name(t: impl Into<String>) -> Cell {
        Cell::text(t).class("name")
    }
    fn num(t: impl Into<String>, v: Option<f64>) -> Cell {
        Cell { t: t.into(), v, c: None }
    }
    fn count(n: impl Into<u64>) -> Cell {
        let n = n.into();
        Cell { t: n.to_string(), v: Some(n as f64), c: None }
    }
    fn est(e: Option<Estimate>) -> Cell {
        Cell::num(fmt_est(e), e.map(|e| e.value))
    }
    fn class(mut self, c: &str) -> Cell {
        self.c = Some(c.to_string());
        self
    }
}

#[derive(Debug, Serialize)]
struct Row {
    class: Option<String>,
    cells: Vec<Cell>,
}

/// A sortable table (`macros.html`'s `table`).
#[derive(Debug, Serialize)]
struct Grid {
    id: String,
    /// Each header's lines.
    header: Vec<Vec<String>>,
    /// Right-aligned (numeric) columns.
    right: Vec<bool>,
    rows: Vec<Row>,
}

impl Grid {
    fn new<S: AsRef<str>>(id: &str, header: &[S], right: &[bool]) -> Grid {
        Grid {
            id: id.to_string(),
            header: header.iter().map(|h| h.as_ref().split('\n').map(String::from).collect()).collect(),
            right: right.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row. Right-aligned cells get the class `num`, and the page's script sorts them by
    /// the number their text starts with: their sort value is kept only where the text has none.
    fn push(&mut self, class: Option<&str>, cells: Vec<Cell>) {
        let cells = cells
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                if self.right.get(i).copied().unwrap_or(false) {
                    c.c = Some(match c.c.take() {
                        Some(x) => format!("num {x}"),
                        None => "num".into(),
                    });
                    if starts_with_number(&c.t) {
                        c.v = None;
                    }
                }
                c
            })
            .collect();
        self.rows.push(Row { class: class.map(String::from), cells });
    }
}

/// Whether `t` starts with a number (`80.42 ± 0.17`, `+1.30`, `-25.00`, `3.414%`), as the page's
/// script reads it.
fn starts_with_number(t: &str) -> bool {
    let t = t.trim_start();
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    t.starts_with(|c: char| c.is_ascii_digit())
}

/// A plot on the page: its title and its SVG (checked, marked safe), or why it was left out.
#[derive(Debug, Serialize)]
struct Plot {
    title: String,
    svg: Value,
}

impl Plot {
    fn new(title: &str, svg: &str) -> Plot {
        let svg = match checked_svg(svg) {
            Ok(s) => Value::from_safe_string(s.to_string()),
            // A plain string: escaped like any other.
            Err(why) => Value::from(format!("(this plot was left out: {why})")),
        };
        Plot { title: title.to_string(), svg }
    }
}

/// Reads the SVG files `plot_run` wrote for a page: (the path relative to `root`, the SVG text).
pub fn read_plots(written: &[PathBuf], root: &Path) -> Result<Vec<(String, String)>> {
    written
        .iter()
        .map(|p| {
            let title = p.strip_prefix(root).unwrap_or(p).to_string_lossy().replace('\\', "/");
            let svg = std::fs::read_to_string(p).with_context(|| format!("cannot read the plot {}", p.display()))?;
            Ok((title, svg))
        })
        .collect()
}

/// The elements an inlined SVG may use (what plotters draws with, and a few of their kind).
const SVG_ELEMENTS: [&str; 13] =
    ["svg", "g", "rect", "circle", "ellipse", "line", "polyline", "polygon", "path", "text", "tspan", "title", "desc"];

/// `svg` if it is safe to put into the page as markup: one `<svg>` element (an XML declaration
/// before it is dropped) of drawing elements only ([`SVG_ELEMENTS`]), tags balanced, attributes
/// double-quoted with no `<` in them and none of them an event handler (`on...`), a link
/// (`...href`, `src`) or a style; no comment, CDATA or processing instruction. Else why not.
pub fn checked_svg(svg: &str) -> Result<&str, String> {
    let mut s = svg.trim();
    if s.starts_with("<?xml") {
        s = s[s.find("?>").ok_or("an unterminated XML declaration")? + 2..].trim_start();
    }
    if !s.starts_with("<svg") {
        return Err("it does not start with <svg>".into());
    }
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = s;
    let mut roots = 0;
    while let Some(i) = rest.find('<') {
        if stack.is_empty() && !rest[..i].trim().is_empty() {
            return Err("text outside the <svg> element".into());
        }
        rest = &rest[i + 1..];
        let closing = rest.starts_with('/');
        if closing {
            rest = &rest[1..];
        }
        let n = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
        let name = &rest[..n];
        if !SVG_ELEMENTS.contains(&name) {
            let shown: String = rest.chars().take(n.max(1)).collect();
            return Err(format!("an element that is not a drawing element: <{shown}>"));
        }
        rest = &rest[n..];
        if closing {
            rest = rest.trim_start();
            if !rest.starts_with('>') || stack.pop() != Some(name) {
                return Err(format!("an unbalanced </{name}>"));
            }
            rest = &rest[1..];
            continue;
        }
        if stack.is_empty() {
            roots += 1;
            if roots > 1 || name != "svg" {
                return Err("more than one root element".into());
            }
        }
        loop {
            let t = rest.trim_start();
            if t.len() == rest.len() && !t.starts_with('>') && !t.starts_with("/>") {
                return Err(format!("a malformed <{name}> tag"));
            }
            rest = t;
            if let Some(r) = rest.strip_prefix("/>") {
                rest = r;
                break;
            }
            if let Some(r) = rest.strip_prefix('>') {
                rest = r;
                stack.push(name);
                break;
            }
            let a = rest.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'))).unwrap_or(0);
            let attr = rest[..a].to_ascii_lowercase();
            if attr.is_empty() {
                return Err(format!("a malformed <{name}> tag"));
            }
            if attr.starts_with("on") || attr.contains("href") || attr == "src" || attr == "style" {
                return Err(format!("a {attr} attribute"));
            }
            rest = rest[a..].strip_prefix("=\"").ok_or_else(|| format!("an unquoted {attr} attribute"))?;
            let end = rest.find('"').ok_or_else(|| format!("an unterminated {attr} attribute"))?;
            if rest[..end].contains('<') {
                return Err(format!("a < in the {attr} attribute"));
            }
            rest = &rest[end + 1..];
        }
        if stack.is_empty() && roots == 1 && name == "svg" {
            // A self-closed root: nothing may follow.
            break;
        }
    }
    if !stack.is_empty() {
        return Err(format!("an unclosed <{}>", stack[stack.len() - 1]));
    }
    if !rest.trim().is_empty() {
        return Err("text after the </svg>".into());
    }
    Ok(s)
}

/// Standard base64 with padding (for the script's hash in the Content Security Policy).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The page's Content Security Policy: nothing fetched, no script but the page's own.
fn csp() -> String {
    let hash = base64(&Sha256::digest(SCRIPT.as_bytes()));
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; img-src data:; \
         base-uri 'none'; form-action 'none'"
    )
}

fn environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in TEMPLATES {
        env.add_template(name, source).map_err(|e| anyhow!("the HTML template {name} is broken: {e:#}"))?;
    }
    Ok(env)
}

/// Renders the page template `name` with `ctx` and what every page has (title, style, script,
/// policy, generator).
fn render<S: Serialize>(name: &str, title: &str, ctx: S) -> Result<String> {
    let env = environment()?;
    let generator = match git_revision() {
        Some(r) => format!("{} at {}", env!("CARGO_PKG_VERSION"), &r[..12.min(r.len())]),
        None => env!("CARGO_PKG_VERSION").to_string(),
    };
    let page = minijinja::context! {
        title => title,
        generator => generator,
        csp => csp(),
        style => Value::from_safe_string(STYLE.to_string()),
        script => Value::from_safe_string(SCRIPT.to_string()),
        ..Value::from(minijinja::value::Serde(&ctx))
    };
    env.get_template(name)
        .and_then(|t| t.render(page))
        .map_err(|e| anyhow!("cannot render the HTML report ({name}): {e:#}"))
}

fn rev(r: Option<&str>) -> String {
    r.map(|r| format!(" at {}", &r[..12.min(r.len())])).unwrap_or_default()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A class's LAION share, as a percentage.
fn share(w: f64, total: f64) -> Cell {
    if total <= 0.0 {
        return Cell::num("n/a", None);
    }
    let p = 100.0 * w / total;
    let t = if p == 0.0 {
        "0".to_string()
    } else if p < 0.001 {
        "<0.001%".to_string()
    } else {
        format!("{p:.3}%")
    };
    Cell::num(t, Some(p))
}

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
    results: Grid,
    problems: Vec<String>,
    problem_count: u64,
    plots: Vec<Plot>,
    drill_plots: bool,
    drills: Vec<Drill>,
    provenance: Option<Provenance>,
}

const RESULTS_HEADER: [&str; 11] = [
    "model",
    "suite",
    "expected",
    "evaluated",
    "failed",
    "missing",
    "classes",
    "top-1 equal-wt",
    "top-5 equal-wt",
    "top-1 LAION-wt",
    "top-5 LAION-wt",
];

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

fn summary_grid(results: &[EvalResult]) -> Option<Grid> {
    if results.is_empty() {
        return None;
    }
    let (header, rows) = summary_cells(results);
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

/// The page of a run: `plots` are (title, SVG text) as [`read_plots`] gives them; a per-class
/// plot (a title ending in `per-class/<model>__<suite>.svg`) goes into its model and suite's
/// drill-down, the others into the Plots section.
pub fn run_page(run: &RunResult, plots: &[(String, String)]) -> Result<String> {
    let results = &run.results;
    let models = models_in_order(results);
    let suites = suites_in_order(results);
    let mut used = vec![false; plots.len()];
    let mut drills = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let own = format!("per-class/{}__{}.svg", slug(&r.model), slug(&r.suite));
        let plot = plots.iter().enumerate().find(|(j, (t, _))| !used[*j] && t.ends_with(&own)).map(|(j, (t, s))| {
            used[j] = true;
            Plot::new(t, s)
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
    let page_plots =
        plots.iter().zip(&used).filter(|(_, u)| !**u).map(|((t, s), _)| Plot::new(t, s)).collect::<Vec<_>>();
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
        summary: summary_grid(results),
        drops: suites.len() > 1,
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

fn verdict_class(v: Verdict) -> Option<&'static str> {
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

#[derive(Debug, Serialize)]
struct HistoryPage {
    meta: Vec<(String, String)>,
    summary: String,
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
/// first, the trend of each model and suite across the runs, the trend plots (title, SVG text,
/// as [`read_plots`] gives them), every point with its change and verdict, and the runs.
pub fn history_page(h: &History, plots: &[(String, String)]) -> Result<String> {
    let label = |i: usize| h.runs.get(i).map(|r| r.label.clone()).unwrap_or_default();
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
    header.extend(h.runs.iter().map(|r| r.label.clone()));
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
        &["model", "suite", "run", "top-1 equal-wt", "top-1 LAION-wt", "change vs previous", "verdict"],
        &[false, false, false, true, true, true, false],
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
                ],
            );
        }
    }

    let mut runs =
        Grid::new("runs-table", &["#", "run", "run id", "git revision", "result"], &[true, false, false, false, false]);
    for (i, r) in h.runs.iter().enumerate() {
        runs.push(
            None,
            vec![
                Cell::count(i as u64 + 1),
                Cell::name(&r.label),
                Cell::text(r.run_id.clone().unwrap_or_default()).class("mono"),
                Cell::text(r.git_revision.as_deref().map(|g| &g[..12.min(g.len())]).unwrap_or("")).class("mono"),
                Cell::text(&r.path),
            ],
        );
    }

    let mut meta = vec![("runs".to_string(), h.runs.len().to_string())];
    if let (Some(a), Some(b)) = (h.runs.first(), h.runs.last()) {
        meta.push(("from".into(), format!("{} ({})", a.label, a.path)));
        meta.push(("to".into(), format!("{} ({})", b.label, b.path)));
    }
    meta.push(("series".into(), format!("{} model/suite pairs", h.series.len())));
    let n = h.newest_regressions().len();
    let title = match n {
        0 => "shiftbench history: the newest run did not regress".to_string(),
        n => format!("shiftbench history: the newest run regressed in {}", plural(n, "series", "series")),
    };
    let page = HistoryPage {
        meta,
        summary: h.summary(),
        tolerance_se: fmt_num(h.tolerance.se),
        tolerance_points: format!("{:.2}", 100.0 * h.tolerance.min_drop),
        newest: (!newest.rows.is_empty()).then_some(newest),
        trend,
        points,
        runs,
        plots: plots.iter().map(|(t, s)| Plot::new(t, s)).collect(),
    };
    render("history.html", &title, page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        // The SHA-256 of "abc", as `openssl dgst -sha256 -binary | base64` prints it.
        assert_eq!(base64(&Sha256::digest(b"abc")), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
    }

    #[test]
    fn svg_check() {
        let ok = "<svg width=\"10\" viewBox=\"0 0 10 10\" xmlns=\"http://www.w3.org/2000/svg\">\n<rect x=\"0\"/>\n\
                  <text x=\"1\">&lt;script&gt; a &amp; b</text>\n</svg>\n";
        assert_eq!(checked_svg(ok), Ok(ok.trim()));
        assert!(checked_svg(&format!("<?xml version=\"1.0\"?>\n{ok}")).is_ok());
        for bad in [
            "<div></div>",
            "<svg><script>alert(1)</script></svg>",
            "<svg><rect onload=\"alert(1)\"/></svg>",
            "<svg><rect ONclick=\"x\"/></svg>",
            "<svg><a xlink:href=\"javascript:x\"></a></svg>",
            "<svg><image href=\"x\"/></svg>",
            "<svg><rect style=\"x\"/></svg>",
            "<svg><rect x=1/></svg>",
            "<svg><rect x=\"<b>\"/></svg>",
            "<svg><text>a</svg>",
            "<svg></svg><svg></svg>",
            "<svg></svg><img src=x onerror=alert(2)>",
            "<svg><!-- c --></svg>",
            "<svg><text><![CDATA[x]]></text></svg>",
            "<svg><foreignObject><p>x</p></foreignObject></svg>",
            "<svg><rect x=\"1\"y=\"2\"/></svg>",
            "<svg",
        ] {
            assert!(checked_svg(bad).is_err(), "{bad} passed");
        }
    }
}
