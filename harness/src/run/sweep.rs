//! `shiftbench sweep`: the paper's threshold analysis without running a model again. Predictions
//! logs made once, under a loose LAIONet similarity threshold, are re-scored ([`rescore`]) under
//! the suite loaded at each threshold of a range: per threshold, the samples, the classes and the
//! recalls with their standard errors.
//!
//! At each threshold the suite is loaded as its YAML says with only `min_similarity` changed
//! (labels only: its images are not looked at), so everything else follows the threshold as a
//! run at that threshold would have it: `max_per_class`, the class subset, and the weights
//! (`weights: own` are LAIONet's class frequencies after filtering at that threshold). The numbers
//! at a threshold are exactly those of `shiftbench score --log LOG --suite S` with S at that
//! threshold. Samples the log lacks (rows the log's own filters dropped) count as missing.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::suite::Suite;
use crate::results::metrics::Headline;
use crate::results::result::EvalResult;
use crate::results::tally::ClassStatus;
use crate::run::score::{not_in_logs, read_logs_by_model, records_by_id, rescore};

/// What `shiftbench sweep` re-scores.
#[derive(Debug, Clone, Default)]
pub struct SweepSpec {
    /// Predictions logs (of one suite; several models, or the shards of one run).
    pub logs: Vec<PathBuf>,
    /// The suite (a LAIONet source with a `similarity_column`).
    pub suite: PathBuf,
    /// The `min_similarity` values to load it at ([`parse_thresholds`]).
    pub thresholds: Vec<f64>,
}

/// One model at one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub min_similarity: f64,
    pub model: String,
    /// How classes are weighted in the weighted columns (`equal`, `frequency` or `table`).
    pub weights: String,
    /// The suite's samples at this threshold (`expected`) and what became of them.
    pub totals: ClassStatus,
    /// Classes with at least one evaluated sample.
    pub classes_present: usize,
    pub metrics: Headline,
}

impl SweepPoint {
    fn of(min_similarity: f64, r: &EvalResult) -> SweepPoint {
        SweepPoint {
            min_similarity,
            model: r.model.clone(),
            weights: r.weights.clone(),
            totals: r.totals,
            classes_present: r.classes_present,
            metrics: r.metrics,
        }
    }
}

/// A sweep: the suite, the column swept, and a point per threshold and model (thresholds in
/// the order given, models by name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub suite: String,
    pub similarity_column: String,
    /// Whether a row exactly at a threshold is kept (`>=`) or not (`>`).
    pub inclusive: bool,
    pub points: Vec<SweepPoint>,
}

/// Thresholds from `START:END:STEP` (both ends included) or a comma-separated list. Each value
/// of a range is rounded to the decimals written, so `0.70:0.90:0.02` gives exactly the numbers
/// `0.82` and so on that a suite file would hold.
pub fn parse_thresholds(s: &str) -> Result<Vec<f64>> {
    let num = |t: &str| -> Result<f64> {
        let v: f64 = t.trim().parse().with_context(|| format!("{t:?} is not a number"))?;
        if !v.is_finite() {
            bail!("{t:?} is not a finite number");
        }
        Ok(v)
    };
    let parts: Vec<&str> = s.split(':').collect();
    let out = match parts[..] {
        [one] => one.split(',').map(num).collect::<Result<Vec<f64>>>()?,
        [start, end, step] => {
            let decimals = parts
                .iter()
                .map(|p| {
                    let p = p.trim();
                    match p.find(['e', 'E']) {
                        Some(_) => 12,
                        None => p.split_once('.').map_or(0, |(_, f)| f.len()),
                    }
                })
                .max()
                .unwrap_or(0)
                .min(12) as i32;
            let scale = 10f64.powi(decimals);
            let (a, b, st) = (num(start)?, num(end)?, num(step)?);
            let (a, b, st) = ((a * scale).round() as i64, (b * scale).round() as i64, (st * scale).round() as i64);
            if st <= 0 {
                bail!("the step of {s:?} must be positive");
            }
            if b < a {
                bail!("{s:?} ends below its start");
            }
            if (b - a) / st >= 1000 {
                bail!("{s:?} makes more than 1000 thresholds");
            }
            // An integer over a power of ten: the f64 nearest the decimal, as a suite file reads it.
            (a..=b).step_by(st as usize).map(|k| k as f64 / scale).collect()
        }
        _ => bail!("expected START:END:STEP (e.g. 0.70:0.90:0.02) or a list (0.8,0.82), got {s:?}"),
    };
    if out.is_empty() {
        bail!("no thresholds in {s:?}");
    }
    Ok(out)
}

/// Re-scores the logs under the suite at every threshold.
pub fn sweep(spec: &SweepSpec) -> Result<Sweep> {
    let yaml = Suite::read_yaml(&spec.suite)?;
    let Some(l) = &yaml.source.laionet else {
        bail!(
            "{}: sweep varies a LAIONet source's min_similarity; this suite has no source.laionet",
            spec.suite.display()
        )
    };
    let Some(column) = l.similarity_column.clone() else {
        bail!("{}: source.laionet.similarity_column is null: there is no threshold to sweep", spec.suite.display())
    };
    let inclusive = l.similarity_inclusive;
    let by_model = read_logs_by_model(&spec.logs)?;
    if by_model.is_empty() {
        bail!("nothing to sweep: give --log FILE");
    }
    for (model, (suites, _, _)) in &by_model {
        if suites.len() > 1 {
            let names: Vec<&str> = suites.iter().map(String::as_str).collect();
            bail!("sweep re-scores the logs of one suite, but {model}'s logs are of {}", names.join(", "));
        }
    }
    let indexed: Vec<(&String, _, String)> =
        by_model.iter().map(|(m, (_, logs, recs))| (m, records_by_id(recs), not_in_logs(logs))).collect();
    let mut points = Vec::new();
    let mut name = yaml.name.clone();
    for &t in &spec.thresholds {
        let mut y = yaml.clone();
        if let Some(l) = y.source.laionet.as_mut() {
            l.min_similarity = t;
        }
        let suite = Suite::from_yaml(y, &spec.suite, true)
            .with_context(|| format!("{} at min_similarity {t}", spec.suite.display()))?;
        name = suite.name.clone();
        for (model, by_id, why) in &indexed {
            let (r, _) = rescore(model, by_id, &suite, &suite.weights, None, why);
            points.push(SweepPoint::of(t, &r));
        }
    }
    Ok(Sweep { suite: name, similarity_column: column, inclusive, points })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_the_decimals_written() {
        let t = parse_thresholds("0.70:0.90:0.02").unwrap();
        assert_eq!(t.len(), 11);
        assert_eq!(t[6], 0.82);
        assert_eq!((t[0], t[10]), (0.7, 0.9));
        assert_eq!(parse_thresholds("0.8, 0.82").unwrap(), vec![0.8, 0.82]);
        assert_eq!(parse_thresholds("0.5:0.6:0.07").unwrap(), vec![0.5, 0.57]);
        assert_eq!(parse_thresholds("0.58").unwrap(), vec![0.58]);
        for bad in ["0.9:0.7:0.02", "0.7:0.9:0", "0.7:0.9", "x", "0.1:0.9:0.0001", "nan"] {
            assert!(parse_thresholds(bad).is_err(), "{bad}");
        }
    }
}
