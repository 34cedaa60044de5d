//! The JUnit XML sink, for CI: each model x suite is a test case; for a run it fails when samples
//! failed or are missing, for a comparison when a metric regressed; pairs on one side of a
//! comparison only are skipped test cases.

use std::fmt::Write as _;

use super::text::metric_row;
use crate::report::compare::{fmt_num, metric, Comparison, MetricChange, METRICS};
use crate::report::table::fmt_est;
use crate::results::result::{EvalResult, RunResult};

pub(crate) fn run_junit(run: &RunResult) -> String {
    let failures = run.results.iter().filter(|r| !r.problems.is_empty()).count();
    let mut cases = String::new();
    for r in &run.results {
        let _ = writeln!(
            cases,
            "    <testcase classname=\"{}\" name=\"{}\">",
            xml(&format!("shiftbench.{}", r.model)),
            xml(&r.suite)
        );
        if !r.problems.is_empty() {
            let msg =
                format!("{} failed, {} missing of {} samples", r.totals.failed, r.totals.missing, r.totals.expected);
            let body: Vec<String> = r.problems.iter().take(50).map(|p| format!("{}: {}", p.id, p.reason)).collect();
            let _ = writeln!(
                cases,
                "      <failure type=\"samples\" message=\"{}\">{}</failure>",
                xml(&msg),
                xml(&body.join("\n"))
            );
        }
        let _ = writeln!(cases, "      <system-out>{}</system-out>", xml(&metric_lines(r)));
        cases.push_str("    </testcase>\n");
    }
    junit_document("shiftbench run", run.results.len(), failures, 0, &run_properties(run), &cases)
}

fn metric_lines(r: &EvalResult) -> String {
    let mut s =
        format!("{} / {} samples evaluated, {} classes\n", r.totals.evaluated, r.totals.expected, r.classes_present);
    for (k, label) in METRICS {
        let _ = writeln!(s, "{label}: {}", fmt_est(metric(&r.metrics, k)));
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

pub(crate) fn comparison_junit(c: &Comparison) -> String {
    let failures = c.pairs.iter().filter(|p| p.regressions().next().is_some()).count();
    let skipped = c.only_in_baseline.len() + c.only_in_new.len();
    let mut cases = String::new();
    for p in &c.pairs {
        let _ = writeln!(
            cases,
            "    <testcase classname=\"{}\" name=\"{}\">",
            xml(&format!("shiftbench.{}", p.model)),
            xml(&p.suite)
        );
        let regs: Vec<&MetricChange> = p.regressions().collect();
        if !regs.is_empty() {
            let msg: Vec<String> = regs
                .iter()
                .map(|m| {
                    let d = m.change.expect("a regression has a change");
                    format!(
                        "{} dropped {:.2} ± {:.2} points (z {:+.1})",
                        m.label,
                        -100.0 * d.value,
                        100.0 * d.se,
                        m.z.unwrap_or(f64::NAN)
                    )
                })
                .collect();
            let tol =
                format!("tolerance: {} se and {:.2} points", fmt_num(c.tolerance.se), 100.0 * c.tolerance.min_drop);
            let _ = writeln!(
                cases,
                "      <failure type=\"regression\" message=\"{}\">{}</failure>",
                xml(&format!("{} ({tol})", msg.join("; "))),
                xml(&regs.iter().map(|m| metric_row(&p.model, &p.suite, m).join(" | ")).collect::<Vec<_>>().join("\n"))
            );
        }
        let mut out: Vec<String> =
            p.metrics.iter().map(|m| metric_row(&p.model, &p.suite, m)[2..].join(" | ")).collect();
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

fn junit_document(
    name: &str,
    tests: usize,
    failures: usize,
    skipped: usize,
    props: &[(String, String)],
    cases: &str,
) -> String {
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
}
