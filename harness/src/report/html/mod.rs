//! The HTML report page, `report.html` in a `--report-dir`: one self-contained file (inline CSS,
//! inline SVG plots, a few lines of inline script; nothing fetched) that a CI job can publish.
//! The plots come as drawn (`report::plot::Plot`, the SVG text and what it shows), the same
//! strings the report folder writes as files; a page never reads a file back.
//!
//! - a run ([`run_page`]): what it is (run id, shiftbench version, git revision, time), the models x
//!   suites summary (ranks, drops and, with three models or more, effective robustness, with the
//!   fits and the largest per-class drops under it, as the terminal shows them), the full table,
//!   the problems, the plots, and per model and suite a
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

use anyhow::{anyhow, Result};
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::report::compare::{fmt_num, metric, Comparison, MetricChange, PairChange, Side, Verdict, METRICS};
use crate::report::document::PLOTS_DIR;
use crate::report::history::{History, Point};
use crate::report::plot::Plot as DrawnPlot;
use crate::report::sinks::fmt_change;
use crate::report::sinks::text::{fmt_p, metric_row, COMPARE_HEADER, COMPARE_RIGHT};
use crate::report::table::{fmt_est, models_in_order, problem_lines, suites_in_order, summary_cells_with};
use crate::results::metrics::Estimate;
use crate::results::provenance::git_revision;
use crate::results::result::{EvalResult, RunResult};

mod compare;
mod history;
mod run;
mod svg;

pub use compare::comparison_page;
pub use history::history_page;
pub use run::run_page;
pub use svg::checked_svg;

/// The templates, by name (the `.html` ending turns autoescaping on).
const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("run.html", include_str!("../templates/run.html")),
    ("comparison.html", include_str!("../templates/comparison.html")),
    ("history.html", include_str!("../templates/history.html")),
];
const STYLE: &str = include_str!("../templates/report.css");
const SCRIPT: &str = include_str!("../templates/report.js");

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

impl Plot {
    /// A drawn plot on a page, titled by its file in the report folder (`plots/<file>`).
    fn drawn(p: &DrawnPlot) -> Plot {
        Plot::new(&format!("{PLOTS_DIR}/{}", p.key.file()), &p.svg)
    }
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
