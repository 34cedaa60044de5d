//! Report sinks: one result (a run's [`RunResult`] or a [`Comparison`]), many formats: a terminal
//! table, Markdown (for a pull-request comment), CSV, JSON and JUnit XML (for CI).
//!
//! Tables show recall in percent with two decimals, ± one standard error; CSV keeps fractions to
//! six decimals; JSON keeps every digit. In JUnit each model x suite is a test case: for a run it
//! fails when samples failed or are missing, for a comparison when a metric regressed; pairs on one
//! side of a comparison only are skipped test cases.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Result;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};

use crate::compare::{fmt_num, Comparison, MetricChange, Verdict, METRICS};
use crate::metrics::Estimate;
use crate::report::{fmt_est, problem_lines, table, write_atomic, EvalResult, RunResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Markdown,
    Csv,
    Json,
    Junit,
}

impl Format {
    pub const ALL: [Format; 5] = [Format::Table, Format::Markdown, Format::Csv, Format::Json, Format::Junit];

    /// The file-name ending of a report in this format.
    pub fn extension(&self) -> &'static str {
        match self {
            Format::Table => "txt",
            Format::Markdown => "md",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Junit => "junit.xml",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "table" | "text" | "txt" => Format::Table,
            "markdown" | "md" => Format::Markdown,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "junit" | "xml" => Format::Junit,
            _ => return Err(format!("unknown format {s:?}: use table, markdown, csv, json or junit")),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Runs

/// A run's result in `format`.
pub fn render_run(run: &RunResult, format: Format) -> Result<String> {
    Ok(match format {
        Format::Table => {
            let mut s = table(&run.results).to_string();
            s.push('\n');
            for l in problem_lines(&run.results, 10) {
                s.push_str(&l);
                s.push('\n');
            }
            s
        }
        Format::Markdown => run_markdown(run),
        Format::Csv => run_csv(run)?,
        Format::Json => String::from_utf8(serde_json::to_vec_pretty(run)?)? + "\n",
        Format::Junit => run_junit(run),
    })
}

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
            let mut row = vec![r.model.clone(), r.suite.clone(), format!("{} / {}", r.totals.evaluated, r.totals.expected)];
            row.push(r.classes_present.to_string());
            row.extend(METRICS.iter().map(|(k, _)| fmt_est(crate::compare::metric(&r.metrics, k))));
            rows.push(row);
        }
        let first = group[0];
        for r in group.iter().skip(1) {
            let mut row = vec![r.model.clone(), format!("change {} -> {}", first.suite, r.suite), String::new(), String::new()];
            row.extend(METRICS.iter().map(|(k, _)| {
                match (crate::compare::metric(&first.metrics, k), crate::compare::metric(&r.metrics, k)) {
                    (Some(a), Some(b)) => fmt_change(b.minus(&a)),
                    _ => "n/a".into(),
                }
            }));
            rows.push(row);
        }
    }
    rows
}

fn run_markdown(run: &RunResult) -> String {
    let mut s = String::from("### shiftbench results\n\n");
    if let Some(i) = &run.run {
        let _ = writeln!(s, "Run `{}` ({}), shiftbench {}{}.\n", i.id, i.started_at, run.shiftbench_version, rev(i.git_revision.as_deref()));
    }
    let mut header = vec!["model", "suite", "evaluated / expected", "classes"];
    header.extend(METRICS.iter().map(|(_, l)| *l));
    s.push_str(&md_table(&header, &run_rows(&run.results), &[false, false, true, true, true, true, true, true], |_| false));
    s.push_str("\nRecall in percent, ± one standard error.\n");
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

fn run_csv(run: &RunResult) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["model", "suite", "weights", "expected", "evaluated", "failed", "missing", "classes", "metric", "value", "se"])?;
    for r in &run.results {
        for (k, _) in METRICS {
            let e = crate::compare::metric(&r.metrics, k);
            w.write_record([
                r.model.clone(),
                r.suite.clone(),
                r.weights.clone(),
                r.totals.expected.to_string(),
                r.totals.evaluated.to_string(),
                r.totals.failed.to_string(),
                r.totals.missing.to_string(),
                r.classes_present.to_string(),
                k.to_string(),
                e.map(|e| f6(e.value)).unwrap_or_default(),
                e.map(|e| f6(e.se)).unwrap_or_default(),
            ])?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// Per-class counts and recall of every model on every suite, one row per class.
pub fn per_class_csv(run: &RunResult) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "model", "suite", "wnid", "expected", "evaluated", "failed", "missing", "top1", "top5", "recall_top1", "se_top1", "recall_top5",
        "se_top5", "weight",
    ])?;
    let o = |v: Option<f64>| v.map(f6).unwrap_or_default();
    for r in &run.results {
        for (wnid, c) in &r.per_class {
            w.write_record([
                r.model.clone(),
                r.suite.clone(),
                wnid.clone(),
                c.status.expected.to_string(),
                c.status.evaluated.to_string(),
                c.status.failed.to_string(),
                c.status.missing.to_string(),
                c.counts.top1.to_string(),
                c.counts.top5.to_string(),
                o(c.recall_top1),
                o(c.se_top1),
                o(c.recall_top5),
                o(c.se_top5),
                format!("{}", c.weight),
            ])?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn run_junit(run: &RunResult) -> String {
    let failures = run.results.iter().filter(|r| !r.problems.is_empty()).count();
    let mut cases = String::new();
    for r in &run.results {
        let _ = writeln!(cases, "    <testcase classname=\"{}\" name=\"{}\">", xml(&format!("shiftbench.{}", r.model)), xml(&r.suite));
        if !r.problems.is_empty() {
            let msg = format!("{} failed, {} missing of {} samples", r.totals.failed, r.totals.missing, r.totals.expected);
            let body: Vec<String> = r.problems.iter().take(50).map(|p| format!("{}: {}", p.id, p.reason)).collect();
            let _ = writeln!(cases, "      <failure type=\"samples\" message=\"{}\">{}</failure>", xml(&msg), xml(&body.join("\n")));
        }
        let _ = writeln!(cases, "      <system-out>{}</system-out>", xml(&metric_lines(r)));
        cases.push_str("    </testcase>\n");
    }
    junit_document("shiftbench run", run.results.len(), failures, 0, &run_properties(run), &cases)
}

fn metric_lines(r: &EvalResult) -> String {
    let mut s = format!("{} / {} samples evaluated, {} classes\n", r.totals.evaluated, r.totals.expected, r.classes_present);
    for (k, label) in METRICS {
        let _ = writeln!(s, "{label}: {}", fmt_est(crate::compare::metric(&r.metrics, k)));
    }
    s
}

fn run_properties(run: &RunResult) -> Vec<(String, String)> {
    let mut p = vec![("shiftbench_version".to_string(), run.shiftbench_version.clone())];
    if let Some(i) = &run.run {
        p.push(("run_id".into(), i.id.clone()));
        p.push(("started_at".into(), i.started_at.clone()));
        if let Some(g) = &i.git_revision {
            p.push(("git_revision".into(), g.clone()));
        }
    }
    p
}

// ---------------------------------------------------------------------------------------------
// Comparisons

/// A comparison in `format`.
pub fn render_comparison(c: &Comparison, format: Format) -> Result<String> {
    Ok(match format {
        Format::Table => {
            let mut s = comparison_table(c).to_string();
            s.push('\n');
            for l in comparison_notes(c) {
                s.push_str(&l);
                s.push('\n');
            }
            s.push_str(&c.summary());
            s.push('\n');
            s
        }
        Format::Markdown => comparison_markdown(c),
        Format::Csv => comparison_csv(c)?,
        Format::Json => String::from_utf8(serde_json::to_vec_pretty(c)?)? + "\n",
        Format::Junit => comparison_junit(c),
    })
}

const COMPARE_HEADER: [&str; 8] = ["model", "suite", "metric", "baseline", "new", "change", "z", "verdict"];
const COMPARE_RIGHT: [bool; 8] = [false, false, false, true, true, true, true, false];

fn fmt_change(d: Estimate) -> String {
    format!("{:+.2} ± {:.2}", 100.0 * d.value, 100.0 * d.se)
}

fn comparison_rows(c: &Comparison) -> Vec<(Vec<String>, Verdict)> {
    let mut rows = Vec::new();
    for p in &c.pairs {
        for m in &p.metrics {
            rows.push((metric_row(&p.model, &p.suite, m), m.verdict));
        }
    }
    rows
}

fn metric_row(model: &str, suite: &str, m: &MetricChange) -> Vec<String> {
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
        t.add_row(
            row.into_iter()
                .zip(COMPARE_RIGHT)
                .map(|(v, right)| if right { Cell::new(v).set_alignment(CellAlignment::Right) } else { Cell::new(v) }),
        );
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

fn rev(r: Option<&str>) -> String {
    r.map(|r| format!(" at {}", &r[..12.min(r.len())])).unwrap_or_default()
}

fn side_line(name: &str, s: &crate::compare::Side) -> String {
    let mut l = format!("**{name}**: `{}`", s.path);
    if let Some(id) = &s.run_id {
        let _ = write!(l, ", run `{id}`");
    }
    let _ = write!(l, ", shiftbench {}{}", s.shiftbench_version, rev(s.git_revision.as_deref()));
    l
}

fn comparison_markdown(c: &Comparison) -> String {
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
    let _ = writeln!(s, "<details><summary>All {} metrics of {} model/suite pairs</summary>\n", all.len(), c.pairs.len());
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

fn comparison_csv(c: &Comparison) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "model", "suite", "metric", "baseline", "baseline_se", "new", "new_se", "change", "change_se", "z", "verdict",
    ])?;
    let v = |e: Option<Estimate>| (e.map(|e| f6(e.value)).unwrap_or_default(), e.map(|e| f6(e.se)).unwrap_or_default());
    for p in &c.pairs {
        for m in &p.metrics {
            let (b, bse) = v(m.baseline);
            let (n, nse) = v(m.new);
            let (d, dse) = v(m.change);
            let z = m.z.map(|z| format!("{z:.2}")).unwrap_or_default();
            let verdict = serde_json::to_value(m.verdict)?.as_str().unwrap_or_default().to_string();
            w.write_record([p.model.clone(), p.suite.clone(), m.metric.clone(), b, bse, n, nse, d, dse, z, verdict])?;
        }
    }
    for (list, verdict) in [(&c.only_in_baseline, "only_in_baseline"), (&c.only_in_new, "only_in_new")] {
        for u in list {
            let mut rec = vec![u.model.clone(), u.suite.clone()];
            rec.extend(vec![String::new(); 8]);
            rec.push(verdict.into());
            w.write_record(&rec)?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn comparison_junit(c: &Comparison) -> String {
    let failures = c.pairs.iter().filter(|p| p.regressions().next().is_some()).count();
    let skipped = c.only_in_baseline.len() + c.only_in_new.len();
    let mut cases = String::new();
    for p in &c.pairs {
        let _ = writeln!(cases, "    <testcase classname=\"{}\" name=\"{}\">", xml(&format!("shiftbench.{}", p.model)), xml(&p.suite));
        let regs: Vec<&MetricChange> = p.regressions().collect();
        if !regs.is_empty() {
            let msg: Vec<String> = regs
                .iter()
                .map(|m| {
                    let d = m.change.expect("a regression has a change");
                    format!("{} dropped {:.2} ± {:.2} points (z {:+.1})", m.label, -100.0 * d.value, 100.0 * d.se, m.z.unwrap_or(f64::NAN))
                })
                .collect();
            let tol = format!("tolerance: {} se and {:.2} points", fmt_num(c.tolerance.se), 100.0 * c.tolerance.min_drop);
            let _ = writeln!(
                cases,
                "      <failure type=\"regression\" message=\"{}\">{}</failure>",
                xml(&format!("{} ({tol})", msg.join("; "))),
                xml(&regs.iter().map(|m| metric_row(&p.model, &p.suite, m).join(" | ")).collect::<Vec<_>>().join("\n"))
            );
        }
        let mut out: Vec<String> = p.metrics.iter().map(|m| metric_row(&p.model, &p.suite, m)[2..].join(" | ")).collect();
        out.extend(p.notes.iter().cloned());
        let _ = writeln!(cases, "      <system-out>{}</system-out>", xml(&out.join("\n")));
        cases.push_str("    </testcase>\n");
    }
    for (list, why) in [(&c.only_in_baseline, "only in the baseline"), (&c.only_in_new, "not in the baseline")] {
        for u in list {
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{}\" name=\"{}\">\n      <skipped message=\"{}\"/>\n    </testcase>",
                xml(&format!("shiftbench.{}", u.model)),
                xml(&u.suite),
                xml(why)
            );
        }
    }
    let mut props = vec![
        ("baseline".to_string(), c.baseline.path.clone()),
        ("new".to_string(), c.new.path.clone()),
        ("tolerance_se".to_string(), fmt_num(c.tolerance.se)),
        ("min_drop".to_string(), fmt_num(c.tolerance.min_drop)),
    ];
    if let Some(id) = &c.new.run_id {
        props.push(("new_run_id".into(), id.clone()));
    }
    if let Some(id) = &c.baseline.run_id {
        props.push(("baseline_run_id".into(), id.clone()));
    }
    junit_document("shiftbench compare", c.pairs.len() + skipped, failures, skipped, &props, &cases)
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Writes a run's report in every format under `dir` as `<stem>.<ext>`, plus
/// `<stem>.per-class.csv`; returns the paths.
pub fn write_run_reports(dir: &Path, stem: &str, run: &RunResult) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for f in Format::ALL {
        let p = dir.join(format!("{stem}.{}", f.extension()));
        write_atomic(&p, render_run(run, f)?.as_bytes())?;
        out.push(p);
    }
    let p = dir.join(format!("{stem}.per-class.csv"));
    write_atomic(&p, per_class_csv(run)?.as_bytes())?;
    out.push(p);
    Ok(out)
}

/// Writes a comparison in every format under `dir` as `<stem>.<ext>`; returns the paths.
pub fn write_comparison_reports(dir: &Path, stem: &str, c: &Comparison) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for f in Format::ALL {
        let p = dir.join(format!("{stem}.{}", f.extension()));
        write_atomic(&p, render_comparison(c, f)?.as_bytes())?;
        out.push(p);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn f6(v: f64) -> String {
    format!("{v:.6}")
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

/// Escapes text for XML attributes and content, dropping characters XML 1.0 cannot hold.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn junit_document(name: &str, tests: usize, failures: usize, skipped: usize, props: &[(String, String)], cases: &str) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!("tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\"");
    let _ = writeln!(s, "<testsuites name=\"{}\" {counts}>", xml(name));
    let _ = writeln!(s, "  <testsuite name=\"{}\" {counts}>", xml(name));
    if !props.is_empty() {
        s.push_str("    <properties>\n");
        for (k, v) in props {
            let _ = writeln!(s, "      <property name=\"{}\" value=\"{}\"/>", xml(k), xml(v));
        }
        s.push_str("    </properties>\n");
    }
    s.push_str(cases);
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escaping() {
        assert_eq!(xml("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
        assert_eq!(xml("bell\u{7}"), "bell\u{FFFD}");
    }

    #[test]
    fn formats_parse() {
        assert_eq!("markdown".parse::<Format>().unwrap(), Format::Markdown);
        assert_eq!("JUnit".parse::<Format>().unwrap(), Format::Junit);
        assert!("pdf".parse::<Format>().is_err());
    }
}
