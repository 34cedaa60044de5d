//! The terminal sink of a comparison: a table with a row per model, suite and metric, and the
//! notes under it. (A run's terminal table is [`crate::report::table`].)

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};

use super::format::fmt_change;
use crate::report::compare::{Comparison, MetricChange, PairChange, Verdict};
use crate::report::table::fmt_est;

pub(crate) const COMPARE_HEADER: [&str; 9] =
    ["model", "suite", "metric", "baseline", "new", "change", "z", "verdict", "test"];

pub(crate) const COMPARE_RIGHT: [bool; 9] = [false, false, false, true, true, true, true, false, false];

/// How many flipped samples the terminal and Markdown list per model and suite (JSON has all).
pub const FLIPS_SHOWN: usize = 5;
/// How many classes that moved most they list.
pub const CLASSES_SHOWN: usize = 5;

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
        m.test.clone(),
    ]
}

/// `0.00025`, `2.5e-7`: a p-value in a few characters.
pub(crate) fn fmt_p(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

/// What the comparison of one model on one suite rests on: the paired test's counts, the first
/// flipped samples and the classes that moved most; or why it is unpaired.
pub(crate) fn test_lines(p: &PairChange) -> Vec<String> {
    let who = format!("{} on {}", p.model, p.suite);
    let Some(pr) = &p.paired else {
        return vec![format!(
            "{who}: unpaired (se of independent runs): {}",
            p.unpaired_because.as_deref().unwrap_or("no logs")
        )];
    };
    let mut out = vec![format!(
        "{who}: paired on {} samples{}: top-1 {} right->wrong, {} wrong->right (McNemar p = {}); top-5 {} right->wrong, {} wrong->right (p = {})",
        pr.samples,
        if pr.one_side_only > 0 { format!(" ({} scored on one side only, left out)", pr.one_side_only) } else { String::new() },
        pr.top1.right_to_wrong,
        pr.top1.wrong_to_right,
        fmt_p(pr.top1.p_value),
        pr.top5.right_to_wrong,
        pr.top5.wrong_to_right,
        fmt_p(pr.top5.p_value)
    )];
    if !pr.flips.is_empty() {
        let shown: Vec<String> = pr
            .flips
            .iter()
            .take(FLIPS_SHOWN)
            .map(|f| format!("{} {} ({} -> {})", f.id, f.direction.replace("_to_", "->"), f.before, f.after))
            .collect();
        let more = pr.flips.len().saturating_sub(FLIPS_SHOWN);
        out.push(format!(
            "  flipped: {}{}",
            shown.join(", "),
            if more > 0 { format!(", ... and {more} more (all in the JSON report)") } else { String::new() }
        ));
    }
    if !pr.classes.is_empty() {
        let shown: Vec<String> = pr
            .classes
            .iter()
            .take(CLASSES_SHOWN)
            .map(|c| {
                format!(
                    "{} {:+} of {} ({} lost, {} gained)",
                    c.wnid,
                    c.wrong_to_right as i64 - c.right_to_wrong as i64,
                    c.n,
                    c.right_to_wrong,
                    c.wrong_to_right
                )
            })
            .collect();
        out.push(format!("  classes that moved most: {}", shown.join(", ")));
    }
    out
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

/// Lines under the table: the test behind each verdict, what else changed, and what is on one
/// side only.
pub fn comparison_notes(c: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    for p in &c.pairs {
        out.extend(test_lines(p));
    }
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
