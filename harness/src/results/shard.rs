//! Scale-out: one run split into N shards by a stable hash of each sample id, and the merge of
//! their predictions logs into the exact result of the unsharded run.
//!
//! A sample belongs to shard `i` of `N` when the first eight bytes of `sha256(id)`, read as a
//! big-endian integer, are `i` modulo `N`. The hash depends on the id alone, so adding samples to a
//! suite never moves the others, and every machine agrees on the split (Rust's own hasher is
//! randomised per process and would not). Shards are numbered `0..N`, like a Slurm array
//! `--array=0-(N-1)` or a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`.
//!
//! Each shard writes its own predictions log (`<model>__<suite>.shard-<i>-of-<N>.jsonl`) and result
//! (`result.shard-<i>-of-<N>.json`), so shards can share one output folder. [`merge`] reads the
//! logs (the source of truth) and takes the class weights from the shards' result files; metrics
//! are computed from the concatenated records exactly as for an unsharded run, so they are
//! identical to the last bit.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::predlog::{read_log, LogHeader, Record, Tally};
use crate::report::{EvalResult, RunResult};

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether the sample `id` belongs to this shard.
    pub fn contains(&self, id: &str) -> bool {
        self.count <= 1 || shard_of(id, self.count) == self.index
    }

    /// `shard-<i>-of-<N>`: the suffix of this shard's log and result file names.
    pub fn tag(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// Parses `i/N` with `0 <= i < N`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("expected i/N (such as 0/4), got {s:?}"))?;
        let index: u32 = i.trim().parse().map_err(|_| format!("shard index {i:?} is not a number"))?;
        let count: u32 = n.trim().parse().map_err(|_| format!("shard count {n:?} is not a number"))?;
        if count == 0 {
            return Err("the shard count must be at least 1".into());
        }
        if index >= count {
            return Err(format!("shard {index}/{count} does not exist: shards are numbered 0 to {}", count - 1));
        }
        Ok(Shard { index, count })
    }
}

/// The stable hash of a sample id: the first eight bytes of its sha256, big-endian.
pub fn id_hash(id: &str) -> u64 {
    let d = Sha256::digest(id.as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The shard (of `count`) that the sample `id` belongs to.
pub fn shard_of(id: &str, count: u32) -> u32 {
    (id_hash(id) % count.max(1) as u64) as u32
}

/// Shards of one model on one suite found among the inputs of a merge.
#[derive(Debug, Default)]
struct Group {
    header: Option<LogHeader>,
    logs: Vec<PathBuf>,
    shards: BTreeSet<Option<Shard>>,
    records: Vec<Record>,
}

/// What [`merge`] produced, and what it noticed.
#[derive(Debug)]
pub struct Merged {
    pub run: RunResult,
    /// The logs that were merged.
    pub logs: Vec<PathBuf>,
    /// The result files whose weights and provenance were used.
    pub results: Vec<PathBuf>,
}

fn is_result_file(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.starts_with("result") && name.ends_with(".json") && !name.starts_with('.')
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    v.sort();
    Ok(v)
}

/// Splits merge inputs into predictions logs and result files. A folder contributes its
/// `result*.json` and the logs under its `predictions/` (or directly in it).
pub fn collect_inputs(inputs: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut logs, mut results) = (Vec::new(), Vec::new());
    for p in inputs {
        if p.is_dir() {
            for e in sorted_entries(p)? {
                if is_result_file(&e) {
                    results.push(e);
                } else if e.extension().is_some_and(|x| x == "jsonl") {
                    logs.push(e);
                }
            }
            let pred = p.join("predictions");
            if pred.is_dir() {
                logs.extend(sorted_entries(&pred)?.into_iter().filter(|e| e.extension().is_some_and(|x| x == "jsonl")));
            }
        } else if p.extension().is_some_and(|x| x == "jsonl") {
            logs.push(p.clone());
        } else if p.extension().is_some_and(|x| x == "json") {
            results.push(p.clone());
        } else if !p.exists() {
            bail!("{} does not exist", p.display());
        } else {
            bail!("{}: expected a predictions log (.jsonl), a result file (.json) or an output folder", p.display());
        }
    }
    logs.dedup();
    results.dedup();
    Ok((logs, results))
}

/// Merges shard logs into one result. Class weights (and provenance) come from the shards' result
/// files; `weights_override` (a suite's weights, by suite name) replaces them, and without either
/// a suite is scored with equal weights. Every shard `0..N` of each model and suite must be
/// present unless `allow_partial`.
pub fn merge(
    inputs: &[PathBuf],
    weights_override: &BTreeMap<String, (String, BTreeMap<String, f64>)>,
    allow_partial: bool,
    progress: bool,
) -> Result<Merged> {
    let (logs, result_files) = collect_inputs(inputs)?;
    if logs.is_empty() {
        bail!("no predictions logs among {}", inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    let bar = crate::progress::bar(logs.len() as u64, "reading logs", progress);
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for l in &logs {
        bar.set_message(l.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let (h, recs) = read_log(l)?;
        let g = groups.entry((h.model.clone(), h.suite.clone())).or_default();
        if let Some(prev) = &g.header {
            if prev.suite_digest != h.suite_digest || prev.labels_digest != h.labels_digest {
                bail!(
                    "{} and {} are logs of {} on {} but of different suite contents or label lists; they cannot be merged",
                    g.logs[0].display(),
                    l.display(),
                    h.model,
                    h.suite
                );
            }
        } else {
            g.header = Some(LogHeader { shard: None, ..h.clone() });
        }
        g.shards.insert(h.shard);
        g.logs.push(l.clone());
        g.records.extend(recs);
        bar.inc(1);
    }
    bar.finish_and_clear();

    // Weights, weight kinds and provenance from the shards' result files.
    let mut weights: BTreeMap<(String, String), (String, BTreeMap<String, f64>)> = BTreeMap::new();
    let mut shard_runs = Vec::new();
    for f in &result_files {
        let r = RunResult::read(f)?;
        for e in &r.results {
            let (_, w) = weights.entry((e.model.clone(), e.suite.clone())).or_insert_with(|| (e.weights.clone(), BTreeMap::new()));
            for (wnid, c) in &e.per_class {
                // A class with no evaluated sample in a shard shows weight 0 there.
                if c.weight != 0.0 || !w.contains_key(wnid) {
                    w.insert(wnid.clone(), c.weight);
                }
            }
        }
        shard_runs.push(r);
    }

    let mut results = Vec::new();
    for ((model, suite), g) in &groups {
        check_shards(model, suite, &g.shards, allow_partial)?;
        let tally = Tally::from_records(&g.records);
        let (kind, w) = match (weights_override.get(suite), weights.get(&(model.clone(), suite.clone()))) {
            (Some((kind, w)), _) | (None, Some((kind, w))) => {
                (kind.clone(), tally.counts.keys().map(|k| (k.clone(), w.get(k).copied().unwrap_or(0.0))).collect())
            }
            (None, None) => ("equal".to_string(), tally.counts.keys().map(|k| (k.clone(), 1.0)).collect::<BTreeMap<_, _>>()),
        };
        results.push(EvalResult::from_tally(model, suite, &kind, &tally, &w));
    }
    // Keep the order of the shards' results (models, then suites, as run) where known.
    let order: Vec<(String, String)> =
        shard_runs.iter().flat_map(|r| r.results.iter().map(|e| (e.model.clone(), e.suite.clone()))).collect();
    results.sort_by_key(|e| {
        order.iter().position(|k| k.0 == e.model && k.1 == e.suite).unwrap_or(usize::MAX)
    });
    let mut run = RunResult::new(results);
    run.run = Some(crate::provenance::merged_info(&shard_runs, &logs));
    Ok(Merged { run, logs, results: result_files })
}

fn check_shards(model: &str, suite: &str, shards: &BTreeSet<Option<Shard>>, allow_partial: bool) -> Result<()> {
    if shards.contains(&None) {
        return Ok(()); // an unsharded log covers everything
    }
    let counts: BTreeSet<u32> = shards.iter().flatten().map(|s| s.count).collect();
    if counts.len() > 1 {
        bail!(
            "{model} on {suite}: logs of different shardings ({}) cannot be merged; use one --shard i/N for all",
            counts.iter().map(|c| format!("N={c}")).collect::<Vec<_>>().join(", ")
        );
    }
    let Some(&n) = counts.first() else { return Ok(()) };
    let missing: Vec<String> = (0..n).filter(|i| !shards.contains(&Some(Shard { index: *i, count: n }))).map(|i| format!("{i}/{n}")).collect();
    if !missing.is_empty() && !allow_partial {
        return Err(anyhow!(
            "{model} on {suite}: shard{} {} missing (pass --allow-partial to merge what is there)",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ") + if missing.len() > 1 { " are" } else { " is" }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        assert_eq!("2/7".parse::<Shard>().unwrap(), Shard { index: 2, count: 7 });
        assert_eq!(Shard { index: 2, count: 7 }.to_string(), "2/7");
        assert_eq!(Shard { index: 2, count: 7 }.tag(), "shard-2-of-7");
        assert!("7/7".parse::<Shard>().unwrap_err().contains("numbered 0 to 6"));
        assert!("1/0".parse::<Shard>().is_err());
        assert!("1".parse::<Shard>().is_err());
    }

    #[test]
    fn the_split_is_stable_and_a_partition() {
        // Fixed values: the split must never change between versions or machines.
        assert_eq!(id_hash("n01440764/a.JPEG"), id_hash("n01440764/a.JPEG"));
        assert_eq!(shard_of("", 1), 0);
        let h = format!("{:016x}", id_hash("abc"));
        assert_eq!(h, "ba7816bf8f01cfea"); // sha256("abc") starts ba7816bf 8f01cfea
        let ids: Vec<String> = (0..1000).map(|i| format!("img{i}")).collect();
        for n in [1u32, 3, 7] {
            let mut seen = 0;
            for i in 0..n {
                let s = Shard { index: i, count: n };
                let mine = ids.iter().filter(|id| s.contains(id)).count();
                assert!(n == 1 || mine > 1000 / n as usize / 2, "shard {s} got {mine}");
                seen += mine;
            }
            assert_eq!(seen, ids.len());
        }
    }
}
