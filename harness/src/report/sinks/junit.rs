//! The JUnit XML sink, for CI, written with `quick-junit` (the data model and serializer nextest
//! uses): each model x suite is a test case; for a run it fails when samples failed or are
//! missing, for a comparison when a metric regressed; pairs on one side of a comparison only are
//! skipped test cases. Text that XML 1.0 cannot hold (control characters) is filtered out by the
//! serializer, and everything is escaped.

use std::fmt::Write as _;

use anyhow::Result;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::text::{metric_row, test_lines};
use crate::report::compare::{fmt_num, metric, Comparison, MetricChange, METRICS};
use crate::report::table::fmt_est;
use crate::results::result::{EvalResult, RunResult};

/// A report holding one suite of `cases`, named `name`, with `properties`.
fn report(name: &str, properties: Vec<(String, String)>, cases: Vec<TestCase>) -> Result<String> {
    let mut suite = TestSuite::new(name);
    suite.add_properties(properties.into_iter().map(|(k, v)| Property::new(k, v)));
    suite.add_test_cases(cases);
    let mut report = Report::new(name);
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}

/// A test case for `model` on `suite`.
fn case(model: &str, suite: &str, status: TestCaseStatus) -> TestCase {
    let mut c = TestCase::new(suite, status);
    c.set_classname(format!("shiftbench.{model}"));
    c
}

/// A failed test case's status: `ty`, a one-line `message` and the `description` under it.
fn failure(ty: &str, message: String, description: String) -> TestCaseStatus {
    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
    s.set_type(ty).set_message(message).set_description(description);
    s
}

pub(crate) fn run_junit(run: &RunResult) -> Result<String> {
    let cases = run
        .results
        .iter()
        .map(|r| {
            let status = if r.problems.is_empty() {
                TestCaseStatus::success()
            } else {
                let msg = format!(
                    "{} failed, {} missing of {} samples",
                    r.totals.failed, r.totals.missing, r.totals.expected
                );
                let body: Vec<String> = r.problems.iter().take(50).map(|p| format!("{}: {}", p.id, p.reason)).collect();
                failure("samples", msg, body.join("\n"))
            };
            let mut c = case(&r.model, &r.suite, status);
            c.set_system_out(metric_lines(r));
            c
        })
        .collect();
    report("shiftbench run", run_properties(run), cases)
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

pub(crate) fn comparison_junit(c: &Comparison) -> Result<String> {
    let mut cases = Vec::new();
    for p in &c.pairs {
        let regs: Vec<&MetricChange> = p.regressions().collect();
        let status = if regs.is_empty() {
            TestCaseStatus::success()
        } else {
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
            let rows: Vec<String> = regs.iter().map(|m| metric_row(&p.model, &p.suite, m).join(" | ")).collect();
            failure("regression", format!("{} ({tol})", msg.join("; ")), rows.join("\n"))
        };
        let mut out: Vec<String> =
            p.metrics.iter().map(|m| metric_row(&p.model, &p.suite, m)[2..].join(" | ")).collect();
        out.extend(test_lines(p));
        out.extend(p.notes.iter().cloned());
        let mut case = case(&p.model, &p.suite, status);
        case.set_system_out(out.join("\n"));
        cases.push(case);
    }
    for (list, why) in [(&c.only_in_baseline, "only in the baseline"), (&c.only_in_new, "not in the baseline")] {
        for u in list {
            let mut s = TestCaseStatus::skipped();
            s.set_message(why);
            cases.push(case(&u.model, &u.suite, s));
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
    report("shiftbench compare", props, cases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::result::Problem;
    use crate::results::tally::{Outcome, Tally};

    /// Names and problems with XML's special characters (and a control character) come back as
    /// they were, through quick-junit's own reader; the counts are right.
    #[test]
    fn a_run_report_reads_back_with_its_counts_and_text() {
        let mut t = Tally::default();
        t.add("a", "n01440764", Outcome::Scored { top1: true, top5: true });
        t.add("b&<c>", "n01440764", Outcome::Failed("bad \"file\" 'x' \u{7}"));
        let w = [("n01440764".to_string(), 1.0)].into();
        let bad = EvalResult::from_tally("<script>m</script>", "s&1", "equal", &t, &w);
        let mut good = bad.clone();
        (good.model, good.problems) = ("m2".into(), Vec::<Problem>::new());
        let xml = run_junit(&RunResult::new(vec![bad, good])).unwrap();
        let r = Report::deserialize_from_str(&xml).unwrap();
        let s = &r.test_suites[0];
        assert_eq!((r.tests, r.failures, r.errors, s.tests, s.failures), (2, 1, 0, 2, 1));
        let c = &s.test_cases[0];
        assert_eq!(c.classname.as_ref().unwrap().as_str(), "shiftbench.<script>m</script>");
        assert_eq!(c.name.as_str(), "s&1");
        match &c.status {
            TestCaseStatus::NonSuccess { message, description, .. } => {
                assert_eq!(message.as_ref().unwrap().as_str(), "1 failed, 0 missing of 2 samples");
                assert!(
                    description.as_ref().unwrap().as_str().starts_with("b&<c>: bad \"file\" 'x'"),
                    "{description:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(!xml.contains("<script>"), "escaped: {xml}");
    }
}
