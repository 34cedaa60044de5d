//! How classes are weighted in the weighted (LAION-weighted) recall, decided in one place.
//!
//! A suite declares its weights (`weights:` in its YAML, [`WeightsYaml`]): `equal`, its own
//! class frequencies (`own`: LAIONet's are the LAION weights), a table's, or another suite's
//! frequencies. A merge takes them from the shards' result files, and `score` from a suite or a
//! `--weights-table`. Whatever their origin, they become a [`Weights`] value, and
//! [`Weights::for_classes`] gives every class of a tally its weight (0 for a class the weights do
//! not name), so every result is weighted by the same rule.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use shiftbench_model_config::is_wnid;

use crate::data::sample::Sample;
use crate::data::table::{column, read_table};

/// The `weights:` setting of a suite YAML.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum WeightsYaml {
    Named(String),
    Table {
        table: String,
        #[serde(default)]
        wnid_column: Option<String>,
        #[serde(default)]
        weight_column: Option<String>,
    },
    Suite {
        suite: String,
    },
}

/// How a suite's classes are weighted in the "weighted" (LAION-weighted) recall.
#[derive(Debug, Clone, PartialEq)]
pub enum Weights {
    /// Every class weighs 1.
    Equal,
    /// Relative frequencies, summing to 1 over the classes listed.
    Freq(BTreeMap<String, f64>),
    /// A weight table's values as given (`score --weights-table`): only their ratios matter.
    Table(BTreeMap<String, f64>),
}

impl Weights {
    /// `equal`, `frequency` or `table`: what a result's `weights` field says.
    pub fn describe(&self) -> &'static str {
        match self {
            Weights::Equal => "equal",
            Weights::Freq(_) => "frequency",
            Weights::Table(_) => "table",
        }
    }

    /// Weights as a result file records them: its `weights` kind and each class's weight.
    pub fn described(kind: &str, by_class: BTreeMap<String, f64>) -> Weights {
        match kind {
            "equal" => Weights::Equal,
            "table" => Weights::Table(by_class),
            _ => Weights::Freq(by_class),
        }
    }

    /// The weight of every class in `classes` (0 for a class these weights do not name).
    pub fn for_classes<'a>(&self, classes: impl Iterator<Item = &'a String>) -> BTreeMap<String, f64> {
        match self {
            Weights::Equal => classes.map(|c| (c.clone(), 1.0)).collect(),
            Weights::Freq(f) | Weights::Table(f) => {
                classes.map(|c| (c.clone(), f.get(c).copied().unwrap_or(0.0))).collect()
            }
        }
    }

    /// A table's weights, normalised to relative frequencies.
    pub fn normalised(by_class: BTreeMap<String, f64>) -> Weights {
        let total: f64 = by_class.values().sum();
        Weights::Freq(by_class.into_iter().map(|(k, v)| (k, v / total)).collect())
    }
}

/// Per-class relative frequencies of a sample list (samples whose label is no wnid left out).
pub fn frequencies(samples: &[Sample]) -> BTreeMap<String, f64> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for s in samples.iter().filter(|s| is_wnid(&s.wnid)) {
        *counts.entry(s.wnid.clone()).or_default() += 1;
    }
    let total: u64 = counts.values().sum();
    counts.into_iter().map(|(k, v)| (k, v as f64 / total.max(1) as f64)).collect()
}

/// Reads a weight table (CSV or TSV): per row a wnid and a non-negative number, summed per wnid.
/// A row whose wnid is not a WordNet id or whose weight is not a non-negative number is an error
/// naming its line; weights that sum to zero are an error too.
pub fn read_weight_table(path: &Path, wnid_col: &str, weight_col: &str) -> Result<BTreeMap<String, f64>> {
    let (header, rows) = read_table(path)?;
    let (wi, ci) = (column(&header, wnid_col, path)?, column(&header, weight_col, path)?);
    let mut w = BTreeMap::new();
    for (line, row) in rows {
        let wnid = row.get(wi).cloned().unwrap_or_default();
        if !is_wnid(&wnid) {
            bail!("{}:{line}: {wnid:?} is not a WordNet id", path.display());
        }
        let v: f64 = row
            .get(ci)
            .and_then(|s| s.parse().ok())
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| anyhow!("{}:{line}: {weight_col} must be a non-negative number", path.display()))?;
        *w.entry(wnid).or_insert(0.0) += v;
    }
    if w.values().sum::<f64>() <= 0.0 {
        bail!("{}: the weights sum to zero", path.display());
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_every_origin() {
        let classes: Vec<String> = ["n1", "n2"].iter().map(|s| s.to_string()).collect();
        let f = Weights::Freq([("n1".to_string(), 0.25)].into());
        assert_eq!(f.for_classes(classes.iter()), [("n1".to_string(), 0.25), ("n2".to_string(), 0.0)].into());
        assert_eq!(
            Weights::Equal.for_classes(classes.iter()),
            [("n1".to_string(), 1.0), ("n2".to_string(), 1.0)].into()
        );
        assert_eq!(Weights::described("table", BTreeMap::new()).describe(), "table");
        assert_eq!(Weights::described("frequency", BTreeMap::new()).describe(), "frequency");
        assert_eq!(Weights::described("equal", BTreeMap::new()), Weights::Equal);
        assert_eq!(
            Weights::normalised([("a".to_string(), 3.0), ("b".to_string(), 1.0)].into()),
            Weights::Freq([("a".to_string(), 0.75), ("b".to_string(), 0.25)].into())
        );
    }

    #[test]
    fn weight_tables_are_checked() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("w.csv");
        std::fs::write(&p, "wnid,count\nn01440764,30\nn01440764,10\nn01443537,10\n").unwrap();
        assert_eq!(
            read_weight_table(&p, "wnid", "count").unwrap(),
            [("n01440764".to_string(), 40.0), ("n01443537".to_string(), 10.0)].into()
        );
        std::fs::write(&p, "wnid,count\nn01440764,-1\n").unwrap();
        assert!(read_weight_table(&p, "wnid", "count").unwrap_err().to_string().contains("w.csv:2"));
        std::fs::write(&p, "wnid,count\ntench,1\n").unwrap();
        assert!(read_weight_table(&p, "wnid", "count").unwrap_err().to_string().contains("not a WordNet id"));
        std::fs::write(&p, "wnid,count\nn01440764,0\n").unwrap();
        assert!(read_weight_table(&p, "wnid", "count").unwrap_err().to_string().contains("sum to zero"));
    }
}
