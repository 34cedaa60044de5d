//! The Markdown sink, for a pull-request comment.

use std::fmt::Write as _;

use super::format::fmt_change;
use super::text::{comparison_notes, comparison_rows, COMPARE_HEADER, COMPARE_RIGHT};
use crate::report::analysis::{class_gaps, drop_lines, robustness_lines};
use crate::report::compare::{metric, Comparison, Side, Verdict, METRICS};
use crate::report::table::{fmt_est, models_in_order, problem_lines, suites_in_order, summary_cells_with};
use crate::results::result::{EvalResult, RunResult};

fn run_rows(results: &[EvalResult]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut models: Vec<&str> = Vec::new();
    for r in results {
        if !models.contains(&r.model.as_str()) {
            models.push(&r.model);
        }
    }
    for m in models {
        let group: Vec<&EvalResult> = results.iter().filter(|r| r.model == m).collect();
        for r in &group {
            let mut row =
                vec![r.model.clone(), r.suite.clone(), format!("{} / {}", r.totals.evaluated, r.totals.expected)];
            row.push(r.classes_present.to_string());
            row.extend(METRICS.iter().map(|(k, _)| fmt_est(metric(&r.metrics, k))));
            rows.push(row);
        }
        let first = group[0];
        for r in group.iter().skip(1) {
            let mut row =
                vec![r.model.clone(), format!("change {} -> {}", first.suite, r.suite), String::new(), String::new()];
            row.extend(METRICS.iter().map(|(k, _)| match (metric(&first.metrics, k), metric(&r.metrics, k)) {
                (Some(a), Some(b)) => fmt_change(b.minus(&a)),
                _ => "n/a".into(),
            }));
            rows.push(row);
        }
    }
    rows
}

pub(crate) fn run_markdown(run: &RunResult) -> String {
    let mut s = String::from("### shiftbench results\n\n");
    if let Some(i) = &run.run {
        let _ = writeln!(
            s,
            "Run `{}` ({}), shiftbench {}{}.\n",
            i.id,
            i.started_at,
            run.shiftbench_version,
            rev(i.git_revision.as_deref())
        );
    }
    let mut header = vec!["model", "suite", "evaluated / expected", "classes"];
    header.extend(METRICS.iter().map(|(_, l)| *l));
    s.push_str(&md_table(
        &header,
        &run_rows(&run.results),
        &[false, false, true, true, true, true, true, true],
        |_| false,
    ));
    s.push_str("\nRecall in percent, ± one standard error.\n");
    if suites_in_order(&run.results).len() > 1 && models_in_order(&run.results).len() > 1 {
        s.push_str(&comparing_models(run));
    }
    let problems = problem_lines(&run.results, 10);
    if !problems.is_empty() {
        s.push_str("\n<details><summary>Failed or missing samples</summary>\n\n```\n");
        for l in problems {
            s.push_str(&l);
            s.push('\n');
        }
        s.push_str("```\n</details>\n");
    }
    s
}

/// Several models on several suites: the models x suites table (ranks, drops, effective
/// robustness) and, folded, the fits and each model's largest per-class drops.
fn comparing_models(run: &RunResult) -> String {
    let (header, rows) = summary_cells_with(&run.results, &run.effective_robustness);
    let header: Vec<String> = header.iter().map(|h| h.replace('\n', " ")).collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = rows.into_iter().map(|r| r.into_iter().map(|(t, _)| t).collect()).collect();
    let right: Vec<bool> = (0..header.len()).map(|i| i > 0).collect();
    let mut s = String::from("\n#### Comparing the models\n\n");
    s.push_str(&md_table(&header, &rows, &right, |_| false));
    s.push_str(
        "\nRank 1 = best top-1 equal-weighted, with the places gained (+) or lost (-) since the first suite. \
         Drops and effective robustness in percentage points; effective robustness with its 95% bootstrap interval.\n",
    );
    let lines: Vec<String> = robustness_lines(&run.effective_robustness)
        .into_iter()
        .chain(drop_lines(&class_gaps(&run.results), 3))
        .collect();
    if !lines.is_empty() {
        s.push_str("\n<details><summary>Fits and the largest per-class drops</summary>\n\n```\n");
        for l in lines {
            s.push_str(&l);
            s.push('\n');
        }
        s.push_str("```\n</details>\n");
    }
    s
}

fn side_line(name: &str, s: &Side) -> String {
    let mut l = format!("**{name}**: `{}`", s.path);
    if let Some(id) = &s.run_id {
        let _ = write!(l, ", run `{id}`");
    }
    let _ = write!(l, ", shiftbench {}{}", s.shiftbench_version, rev(s.git_revision.as_deref()));
    l
}

pub(crate) fn comparison_markdown(c: &Comparison) -> String {
    let n = c.regressions();
    let mut s = if n == 0 {
        "### shiftbench: no regression\n\n".to_string()
    } else {
        format!("### shiftbench: {n} regression{}\n\n", if n == 1 { "" } else { "s" })
    };
    let _ = writeln!(s, "{}  \n{}\n", side_line("baseline", &c.baseline), side_line("new", &c.new));
    // What moved beyond the tolerance first; every metric in a collapsed table after it.
    let all = comparison_rows(c);
    let moved: Vec<Vec<String>> = all
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Regression | Verdict::Improved))
        .map(|(r, _)| r.clone())
        .collect();
    let moved_bold: Vec<bool> = all
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Regression | Verdict::Improved))
        .map(|(_, v)| *v == Verdict::Regression)
        .collect();
    if moved.is_empty() {
        s.push_str("No metric moved beyond the tolerance.\n\n");
    } else {
        s.push_str(&md_table(&COMPARE_HEADER, &moved, &COMPARE_RIGHT, |i| moved_bold[i]));
        s.push('\n');
    }
    let _ =
        writeln!(s, "<details><summary>All {} metrics of {} model/suite pairs</summary>\n", all.len(), c.pairs.len());
    let rows: Vec<Vec<String>> = all.iter().map(|(r, _)| r.clone()).collect();
    s.push_str(&md_table(&COMPARE_HEADER, &rows, &COMPARE_RIGHT, |i| all[i].1 == Verdict::Regression));
    s.push_str("\n</details>\n");
    let _ = writeln!(s, "\nRecall in percent, ± one standard error. {}.", capitalise(&c.summary()));
    let notes = comparison_notes(c);
    if !notes.is_empty() {
        s.push('\n');
        for l in notes {
            let _ = writeln!(s, "- {}", md_escape(&l));
        }
    }
    s
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn md_table(header: &[&str], rows: &[Vec<String>], right: &[bool], bold: impl Fn(usize) -> bool) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| {} |", header.iter().map(|h| md_escape(h)).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(s, "|{}|", right.iter().map(|r| if *r { "---:" } else { "---" }).collect::<Vec<_>>().join("|"));
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .map(|c| {
                let c = md_escape(c);
                if bold(i) && !c.is_empty() {
                    format!("**{c}**")
                } else {
                    c
                }
            })
            .collect();
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    s
}

fn rev(r: Option<&str>) -> String {
    r.map(|r| format!(" at {}", &r[..12.min(r.len())])).unwrap_or_default()
}
