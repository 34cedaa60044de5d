//! What a page is built of: the `Cell`s, rows and sortable `Grid`s of its tables, its
//! `Plot`s (each SVG checked before it is inlined), and the small forms of text every page uses.

use minijinja::Value;
use serde::Serialize;

use super::svg::checked_svg;
use crate::report::document::PLOTS_DIR;
use crate::report::plot::plots::Plot as DrawnPlot;
use crate::report::table::fmt_est;
use crate::results::metrics::Estimate;

/// One cell of a table: its text, the number it sorts by, its CSS classes.
#[derive(Debug, Serialize)]
pub(super) struct Cell {
    t: String,
    v: Option<f64>,
    c: Option<String>,
}

impl Cell {
    pub(super) fn text(t: impl Into<String>) -> Cell {
        Cell { t: t.into(), v: None, c: None }
    }
    /// A model's or a suite's name: kept on one line.
    pub(super) fn name(t: impl Into<String>) -> Cell {
        Cell::text(t).class("name")
    }
    pub(super) fn num(t: impl Into<String>, v: Option<f64>) -> Cell {
        Cell { t: t.into(), v, c: None }
    }
    pub(super) fn count(n: impl Into<u64>) -> Cell {
        let n = n.into();
        Cell { t: n.to_string(), v: Some(n as f64), c: None }
    }
    pub(super) fn est(e: Option<Estimate>) -> Cell {
        Cell::num(fmt_est(e), e.map(|e| e.value))
    }
    pub(super) fn class(mut self, c: &str) -> Cell {
        self.c = Some(c.to_string());
        self
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Row {
    class: Option<String>,
    cells: Vec<Cell>,
}

/// A sortable table (`macros.html`'s `table`).
#[derive(Debug, Serialize)]
pub(super) struct Grid {
    id: String,
    /// Each header's lines.
    header: Vec<Vec<String>>,
    /// Right-aligned (numeric) columns.
    right: Vec<bool>,
    pub(super) rows: Vec<Row>,
}

impl Grid {
    pub(super) fn new<S: AsRef<str>>(id: &str, header: &[S], right: &[bool]) -> Grid {
        Grid {
            id: id.to_string(),
            header: header.iter().map(|h| h.as_ref().split('\n').map(String::from).collect()).collect(),
            right: right.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row. Right-aligned cells get the class `num`, and the page's script sorts them by
    /// the number their text starts with: their sort value is kept only where the text has none.
    pub(super) fn push(&mut self, class: Option<&str>, cells: Vec<Cell>) {
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
pub(super) struct Plot {
    title: String,
    svg: Value,
}

impl Plot {
    pub(super) fn new(title: &str, svg: &str) -> Plot {
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
    pub(super) fn drawn(p: &DrawnPlot) -> Plot {
        Plot::new(&format!("{PLOTS_DIR}/{}", p.key.file()), &p.svg)
    }
}

pub(super) fn rev(r: Option<&str>) -> String {
    r.map(|r| format!(" at {}", &r[..12.min(r.len())])).unwrap_or_default()
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A class's LAION share, as a percentage.
pub(super) fn share(w: f64, total: f64) -> Cell {
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
