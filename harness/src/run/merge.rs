//! Merging the predictions logs of shards (`run --shard i/N`) into the exact result of the
//! unsharded run: the logs are the source of truth, the class weights come from the shards'
//! result files (or a suite), and metrics are computed from the concatenated records exactly as
//! for an unsharded run, so they are identical to the last bit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::data::weights::Weights;
use crate::results::predlog::{read_log, LogHeader, Record};
use crate::results::provenance::{RunInfo, Speed, SuiteInfo};
use crate::results::result::{EvalResult, RunResult};
use crate::results::shard::Shard;
use crate::results::tally::Tally;
use crate::run::events::{Event, Reporter};

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
    weights_override: &BTreeMap<String, Weights>,
    allow_partial: bool,
    reporter: &dyn Reporter,
) -> Result<Merged> {
    let (logs, result_files) = collect_inputs(inputs)?;
    if logs.is_empty() {
        bail!(
            "no predictions logs among {}",
            inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    reporter.report(Event::ReadingLogs { total: logs.len() });
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for l in &logs {
        let (h, recs) = read_log(l)?;
        let g = groups.entry((h.model.clone(), h.suite.clone())).or_default();
        if let Some(prev) = &g.header {
            let changes = LogHeader { shard: None, ..h.clone() }.changes_from(prev);
            if !changes.is_empty() {
                bail!(
                    "{} and {} are logs of {} on {} made by different models, cards, settings or suite contents ({}); \
                     they cannot be merged: run the shards again with one model YAML, or merge only the shards of one",
                    g.logs[0].display(),
                    l.display(),
                    h.model,
                    h.suite,
                    changes.join(", ")
                );
            }
        } else {
            g.header = Some(LogHeader { shard: None, ..h.clone() });
        }
        g.shards.insert(h.shard);
        g.logs.push(l.clone());
        g.records.extend(recs);
        reporter.report(Event::LogRead { log: l });
    }
    reporter.report(Event::LogsRead);

    // Weights, weight kinds and provenance from the shards' result files.
    let mut weights: BTreeMap<(String, String), (String, BTreeMap<String, f64>)> = BTreeMap::new();
    let mut shard_runs = Vec::new();
    for f in &result_files {
        let r = RunResult::read(f)?;
        for e in &r.results {
            let (_, w) = weights
                .entry((e.model.clone(), e.suite.clone()))
                .or_insert_with(|| (e.weights.clone(), BTreeMap::new()));
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
        let w = match (weights_override.get(suite), weights.get(&(model.clone(), suite.clone()))) {
            (Some(w), _) => w.clone(),
            (None, Some((kind, by_class))) => Weights::described(kind, by_class.clone()),
            (None, None) => Weights::Equal,
        };
        results.push(EvalResult::weighted(model, suite, &w, &tally));
    }
    // Keep the order of the shards' results (models, then suites, as run) where known.
    let order: Vec<(String, String)> =
        shard_runs.iter().flat_map(|r| r.results.iter().map(|e| (e.model.clone(), e.suite.clone()))).collect();
    results.sort_by_key(|e| order.iter().position(|k| k.0 == e.model && k.1 == e.suite).unwrap_or(usize::MAX));
    let mut run = RunResult::new(results).with_effective_robustness();
    run.run = Some(merged_info(&shard_runs, &logs));
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
    let missing: Vec<String> =
        (0..n).filter(|i| !shards.contains(&Some(Shard { index: *i, count: n }))).map(|i| format!("{i}/{n}")).collect();
    if !missing.is_empty() && !allow_partial {
        return Err(anyhow!(
            "{model} on {suite}: shard{} {} missing (pass --allow-partial to merge what is there)",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ") + if missing.len() > 1 { " are" } else { " is" }
        ));
    }
    Ok(())
}

/// The provenance of a merge: the shards' models and suites, with the shard-specific parts
/// dropped, and each model's speed summed over the shard runs (images and times).
pub fn merged_info(shards: &[RunResult], logs: &[PathBuf]) -> RunInfo {
    let mut info = RunInfo::start("merge");
    let infos: Vec<&RunInfo> = shards.iter().filter_map(|r| r.run.as_ref()).collect();
    if let Some(first) = infos.first() {
        info.threads = first.threads;
        info.batch = first.batch;
        info.model_threads = first.model_threads;
        info.models = first.models.clone();
        info.suites = first.suites.iter().map(|s| SuiteInfo { samples_in_shard: None, ..s.clone() }).collect();
    }
    for i in &infos {
        for m in &i.models {
            if !info.models.iter().any(|x| x.name == m.name) {
                info.models.push(m.clone());
            }
        }
        for s in &i.suites {
            if !info.suites.iter().any(|x| x.name == s.name) {
                info.suites.push(SuiteInfo { samples_in_shard: None, ..s.clone() });
            }
        }
    }
    // Summed over the shards' runs, each once (an earlier merge among the inputs would count
    // them twice).
    let mut runs: Vec<&RunInfo> = infos.iter().copied().filter(|i| i.kind == "run").collect();
    runs.sort_by(|a, b| a.id.cmp(&b.id));
    runs.dedup_by(|a, b| a.id == b.id);
    for m in &mut info.models {
        let same = runs.iter().flat_map(|i| &i.models).filter(|x| x.name == m.name);
        m.speed = Speed::sum(same.filter_map(|x| x.speed.as_ref()));
    }
    info.merged_runs = infos.iter().map(|i| i.id.clone()).collect();
    info.merged_logs = logs.iter().map(|l| l.display().to_string()).collect();
    info.finish();
    info
}
