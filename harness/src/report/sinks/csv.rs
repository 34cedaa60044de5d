//! The CSV sinks: fractions to six decimals, one row per model, suite and metric (and per class).

use anyhow::Result;

use super::format::f6;
use crate::report::compare::{metric, Comparison, METRICS};
use crate::results::metrics::{Estimate, Headline};
use crate::results::result::{EvalResult, RunResult};
use crate::results::tally::ClassStatus;

/// The columns of a metric row: who, on what, how many samples, then one metric with its se.
pub(crate) const METRIC_ROW_HEADER: [&str; 11] =
    ["model", "suite", "weights", "expected", "evaluated", "failed", "missing", "classes", "metric", "value", "se"];

/// What a metric row says of one model on one suite.
pub(crate) struct Counted<'a> {
    pub model: &'a str,
    pub suite: &'a str,
    pub weights: &'a str,
    pub totals: &'a ClassStatus,
    pub classes: usize,
    pub metrics: &'a Headline,
}

impl<'a> Counted<'a> {
    pub fn of(r: &'a EvalResult) -> Counted<'a> {
        Counted {
            model: &r.model,
            suite: &r.suite,
            weights: &r.weights,
            totals: &r.totals,
            classes: r.classes_present,
            metrics: &r.metrics,
        }
    }
}

/// Writes one row per headline metric of `c` (fractions to six decimals), each after `prefix`.
pub(crate) fn write_metric_rows<W: std::io::Write>(
    w: &mut csv::Writer<W>,
    prefix: &[String],
    c: &Counted,
) -> Result<()> {
    for (k, _) in METRICS {
        let e = metric(c.metrics, k);
        let mut rec = prefix.to_vec();
        rec.extend([
            c.model.to_string(),
            c.suite.to_string(),
            c.weights.to_string(),
            c.totals.expected.to_string(),
            c.totals.evaluated.to_string(),
            c.totals.failed.to_string(),
            c.totals.missing.to_string(),
            c.classes.to_string(),
            k.to_string(),
            e.map(|e| f6(e.value)).unwrap_or_default(),
            e.map(|e| f6(e.se)).unwrap_or_default(),
        ]);
        w.write_record(&rec)?;
    }
    Ok(())
}

pub(crate) fn run_csv(run: &RunResult) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(METRIC_ROW_HEADER)?;
    for r in &run.results {
        write_metric_rows(&mut w, &[], &Counted::of(r))?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// Per-class counts and recall of every model on every suite, one row per class.
pub fn per_class_csv(run: &RunResult) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "model",
        "suite",
        "wnid",
        "expected",
        "evaluated",
        "failed",
        "missing",
        "top1",
        "top5",
        "recall_top1",
        "se_top1",
        "recall_top5",
        "se_top5",
        "weight",
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

pub(crate) fn comparison_csv(c: &Comparison) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "model",
        "suite",
        "metric",
        "baseline",
        "baseline_se",
        "new",
        "new_se",
        "change",
        "change_se",
        "z",
        "verdict",
        "test",
        "samples_paired",
        "right_to_wrong",
        "wrong_to_right",
        "mcnemar_p",
    ])?;
    let v = |e: Option<Estimate>| (e.map(|e| f6(e.value)).unwrap_or_default(), e.map(|e| f6(e.se)).unwrap_or_default());
    for p in &c.pairs {
        for m in &p.metrics {
            let (b, bse) = v(m.baseline);
            let (n, nse) = v(m.new);
            let (d, dse) = v(m.change);
            let z = m.z.map(|z| format!("{z:.2}")).unwrap_or_default();
            let verdict = serde_json::to_value(m.verdict)?.as_str().unwrap_or_default().to_string();
            // The discordance of the metric's top-k (top-1 for the top-1 metrics).
            let (paired, b_c_p) = match &p.paired {
                Some(pr) => {
                    let d = if m.metric.starts_with("top5") { pr.top5 } else { pr.top1 };
                    (
                        pr.samples.to_string(),
                        [d.right_to_wrong.to_string(), d.wrong_to_right.to_string(), format!("{:e}", d.p_value)],
                    )
                }
                None => (String::new(), Default::default()),
            };
            let [bb, cc, pp] = b_c_p;
            w.write_record([
                p.model.clone(),
                p.suite.clone(),
                m.metric.clone(),
                b,
                bse,
                n,
                nse,
                d,
                dse,
                z,
                verdict,
                m.test.clone(),
                paired,
                bb,
                cc,
                pp,
            ])?;
        }
    }
    for (list, verdict) in [(&c.only_in_baseline, "only_in_baseline"), (&c.only_in_new, "only_in_new")] {
        for u in list {
            let mut rec = vec![u.model.clone(), u.suite.clone()];
            rec.extend(vec![String::new(); 8]);
            rec.push(verdict.into());
            rec.extend(vec![String::new(); 5]);
            w.write_record(&rec)?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
