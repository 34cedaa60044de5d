//! The terminal sink of a comparison: a table with a row per model, suite and metric, and the
//! notes under it. (A run's terminal table is [`crate::report::table`].)

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};

use super::fmt_change;
use crate::report::compare::{Comparison, MetricChange, Verdict};
use crate::report::table::fmt_est;

pub(crate) const COMPARE_HEADER: [&str; 8] = ["model", "suite", "metric", "baseline", "new", "change", "z", "verdict"];

pub(crate) const COMPARE_RIGHT: [bool; 8] = [false, false, false, true, true, true, true, false];

pub(crate) fn comparison_rows(c: &Comparison) -> Vec<(Vec<String>, Verdict)> {
    let mut rows = Vec::new();
    for p in &c.pairs {
        for m in &p.metrics {
            rows.push((metric_row(&p.model, &p.suite, m), m.verdict));
        }
    }
    rows
}

pub(crate) fn metric_row(model: &str, suite: &str, m: &MetricChange) -> Vec<String> {
    vec![
        model.to_string(),
        suite.to_string(),
        m.label.clone(),
        fmt_est(m.baseline),
        fmt_est(m.new),
        m.change.map(fmt_change).unwrap_or_else(|| "n/a".into()),
        m.z.map(|z| format!("{z:+.1}")).unwrap_or_else(|| "n/a".into()),
        m.verdict.word().to_string(),
    ]
}

/// The terminal table of a comparison: a row per model, suite and metric.
pub fn comparison_table(c: &Comparison) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(COMPARE_HEADER.to_vec());
    for (row, _) in comparison_rows(c) {
        t.add_row(row.into_iter().zip(COMPARE_RIGHT).map(|(v, right)| {
            if right {
                Cell::new(v).set_alignment(CellAlignment::Right)
            } else {
                Cell::new(v)
            }
        }));
    }
    t
}

/// Lines under the table: what else changed, and what is on one side only.
pub fn comparison_notes(c: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    for p in &c.pairs {
        if !p.notes.is_empty() {
            out.push(format!("{} on {}: {}", p.model, p.suite, p.notes.join("; ")));
        }
    }
    for u in &c.only_in_baseline {
        out.push(format!("{} on {}: only in the baseline (not run this time)", u.model, u.suite));
    }
    for u in &c.only_in_new {
        out.push(format!("{} on {}: new (not in the baseline)", u.model, u.suite));
    }
    out
}
