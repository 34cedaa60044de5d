//! A tally: per-class counts of what became of each sample, everything the metrics need. It is
//! built one way ([`Tally::add`]), whether the outcomes come from a predictions log
//! ([`Tally::from_records`]) or from per-sample results stored elsewhere (`score --results`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::results::metrics::ClassCounts;
use crate::results::predlog::{Record, Status};

/// Per-class status counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassStatus {
    pub expected: u64,
    pub evaluated: u64,
    pub failed: u64,
    pub missing: u64,
}

/// What became of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The model predicted: whether its top-1 and its top-5 hold the true class.
    Scored { top1: bool, top5: bool },
    /// It could not be evaluated: counted as failed and listed among the problems.
    Failed(&'a str),
    /// Its image (or its prediction) does not exist: counted as missing, and listed among the
    /// problems when there is a reason to give.
    Missing(Option<&'a str>),
}

/// Everything metrics need from a set of outcomes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub counts: BTreeMap<String, ClassCounts>,
    pub status: BTreeMap<String, ClassStatus>,
    pub total: ClassStatus,
    /// (id, reason) of every sample that failed or is missing, in the order added.
    pub problems: Vec<(String, String)>,
}

impl Tally {
    /// Counts sample `id` of class `wnid`.
    pub fn add(&mut self, id: &str, wnid: &str, outcome: Outcome) {
        let st = self.status.entry(wnid.to_string()).or_default();
        st.expected += 1;
        self.total.expected += 1;
        match outcome {
            Outcome::Scored { top1, top5 } => {
                st.evaluated += 1;
                self.total.evaluated += 1;
                let c = self.counts.entry(wnid.to_string()).or_default();
                c.n += 1;
                c.top1 += top1 as u64;
                c.top5 += top5 as u64;
            }
            Outcome::Failed(why) => {
                st.failed += 1;
                self.total.failed += 1;
                self.problems.push((id.to_string(), why.to_string()));
            }
            Outcome::Missing(why) => {
                st.missing += 1;
                self.total.missing += 1;
                if let Some(why) = why {
                    self.problems.push((id.to_string(), why.to_string()));
                }
            }
        }
    }

    /// Tallies records; a sample id seen twice counts once (its last record wins), so shard logs
    /// and resumed logs can be merged by concatenation. Problems come in id order.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Record>) -> Tally {
        let mut latest: BTreeMap<&str, &Record> = BTreeMap::new();
        for r in records {
            latest.insert(&r.id, r);
        }
        let mut t = Tally::default();
        for r in latest.values() {
            let outcome = match r.status {
                Status::Ok => Outcome::Scored {
                    top1: r.top.first() == Some(&r.wnid),
                    top5: r.top.iter().take(5).any(|w| w == &r.wnid),
                },
                Status::Failed => Outcome::Failed(r.error.as_deref().unwrap_or("failed")),
                Status::Missing => Outcome::Missing(Some(r.error.as_deref().unwrap_or("missing"))),
            };
            t.add(&r.id, &r.wnid, outcome);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::predlog::tests::rec;

    #[test]
    fn failures_are_counted_not_dropped() {
        let mut bad = rec("x", "n1", &[]);
        bad.status = Status::Failed;
        bad.error = Some("cannot decode".into());
        let mut gone = rec("y", "n2", &[]);
        gone.status = Status::Missing;
        let recs = [rec("a", "n1", &["n1"]), bad, gone];
        let t = Tally::from_records(&recs);
        assert_eq!(t.total, ClassStatus { expected: 3, evaluated: 1, failed: 1, missing: 1 });
        assert_eq!(t.counts["n1"].n, 1);
        assert!(!t.counts.contains_key("n2"));
        assert_eq!(t.problems[0], ("x".to_string(), "cannot decode".to_string()));
    }

    #[test]
    fn the_last_record_of_a_sample_wins_and_stored_misses_list_nothing() {
        let mut bad = rec("a", "n1", &[]);
        bad.status = Status::Failed;
        let t = Tally::from_records(&[bad, rec("a", "n1", &["n2", "n1"])]);
        assert_eq!(t.counts["n1"], ClassCounts { n: 1, top1: 0, top5: 1 });
        assert!(t.problems.is_empty());
        let mut t = Tally::default();
        t.add("x", "n1", Outcome::Missing(None));
        t.add("y", "n1", Outcome::Scored { top1: true, top5: true });
        assert_eq!(t.status["n1"], ClassStatus { expected: 2, evaluated: 1, failed: 0, missing: 1 });
        assert!(t.problems.is_empty());
    }
}
