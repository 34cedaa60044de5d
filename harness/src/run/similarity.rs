//! `shiftbench similarity`: the paper's intra-class similarity of a model's embeddings, per suite
//! and class, and suites compared class by class ([`crate::results::similarity`] has the
//! arithmetic).
//!
//! Per suite, up to K images of each class are chosen ([`select`]: seeded and stable, the K of
//! smallest hash of (seed, sample id), so the choice does not depend on the suite's order or the
//! thread count, and growing K keeps the images already chosen). They go through the same pass as
//! a run ([`pipeline::evaluate_many`]: read and decode once, preprocess, batches to the model's
//! copies in worker processes) with the model answering with its embedding
//! ([`Output::Embedding`]). Each image's embedding is appended to an embeddings log,
//! `<out>/embeddings/<model>__<suite>.jsonl` (a predictions log whose records carry `embedding`),
//! flushed after every batch: a run that dies is resumed by running the same command again.
//! Memory holds at most K embeddings per class (read back class by class from the log), never
//! the suite.
//!
//! What can be checked before the pass is: a suite in which no class has `--min-per-class` chosen
//! images is refused ([`check_class_sizes`]: one photo per class needs its classes grouped with
//! `remap:`, as `suites/imagenet-samples-coarse.yaml` does), and so is a `--result` that does not
//! read or lacks the model on a suite.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::sample::Sample;
use crate::data::suite::Suite;
use crate::host::model::ModelRef;
use crate::host::scorer::{Output, Scorer};
use crate::host::worker::Isolation;
use crate::results::paths::embeddings_log_path;
use crate::results::predlog::{LogHeader, Record, Status};
use crate::results::provenance::RunInfo;
use crate::results::result::RunResult;
use crate::results::similarity::{compare, normalise, pair_stats, ClassSimilarity, SuiteComparison};
use crate::run::events::{Event, Reporter, Silent};
use crate::run::models::close_all;
use crate::run::options::EvalOptions;
use crate::run::pipeline::{Job, JobOutcome};
use crate::run::session::{ModelOptions, OpenModel, Session};
use crate::util::digest::sha256_hex;

/// The paper's number of images per class.
pub const DEFAULT_PER_CLASS: usize = 100;
/// Classes with fewer images are listed and skipped (the paper's notebooks use 7).
pub const DEFAULT_MIN_PER_CLASS: usize = 7;

/// What `shiftbench similarity` does.
#[derive(Debug, Clone)]
pub struct SimilaritySpec {
    /// The suites; the first is the reference the others are compared with.
    pub suites: Vec<PathBuf>,
    pub model: String,
    pub out: PathBuf,
    /// K: most images per class.
    pub per_class: usize,
    pub seed: u64,
    /// Classes with fewer images (after failures) are skipped.
    pub min_per_class: usize,
    pub eval: EvalOptions,
    pub model_threads: u32,
    pub replicas: Option<u32>,
    pub fresh: bool,
    pub isolation: Isolation,
    /// A run's result.json with the same model on the same suites: per-class recall changes
    /// against similarity changes.
    pub result: Option<PathBuf>,
}

/// A class left out of a suite's statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedClass {
    pub wnid: String,
    /// Embeddings it had.
    pub n: usize,
}

/// One suite's part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteSimilarity {
    pub suite: String,
    /// Samples in the suite, and chosen (at most K per class).
    pub samples: usize,
    pub chosen: usize,
    /// Chosen samples that gave an embedding, and those that did not (unreadable image, model
    /// error, non-finite embedding).
    pub embedded: usize,
    pub failed: usize,
    /// Classes with at least `min_per_class` embeddings, and their mean of `mean_cosine` (None,
    /// `null` in JSON, when there are none).
    pub classes: usize,
    pub mean_of_class_means: Option<f64>,
    /// Classes with fewer embeddings than `min_per_class`.
    pub skipped: Vec<SkippedClass>,
    /// The embeddings log.
    pub log: String,
}

/// A class's recall change against its similarity change, for one comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecallChange {
    pub a: String,
    pub b: String,
    pub wnid: String,
    /// mean_cosine in b minus in a.
    pub similarity_diff: f64,
    /// top-1 recall in b minus in a, in percentage points.
    pub recall_diff: f64,
}

/// Everything `similarity.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarityReport {
    pub shiftbench_similarity: u32,
    pub model: String,
    pub embedding_len: usize,
    pub per_class: usize,
    pub seed: u64,
    pub min_per_class: usize,
    pub suites: Vec<SuiteSimilarity>,
    /// Every class of every suite with enough images (the rows of `similarity.csv`).
    pub classes: Vec<ClassSimilarity>,
    /// Each suite after the first against the first.
    pub comparisons: Vec<SuiteComparison>,
    /// With `--result`: per comparison and class, recall change against similarity change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recall: Vec<RecallChange>,
    pub run: RunInfo,
}

/// A 64-bit FNV-1a hash of the seed and a sample id: the order [`select`] picks samples in.
fn pick_key(seed: u64, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.to_le_bytes().iter().chain(id.as_bytes()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Up to `k` samples of each class of `suite`: those of smallest [`pick_key`] (ties by id), in the
/// suite's order. The choice depends only on the seed and the sample ids of each class.
pub fn select(suite: &Suite, k: usize, seed: u64) -> Vec<Sample> {
    let mut by_class: BTreeMap<&str, Vec<(u64, &str)>> = BTreeMap::new();
    for s in &suite.samples {
        by_class.entry(s.wnid.as_str()).or_default().push((pick_key(seed, &s.id), s.id.as_str()));
    }
    let mut keep: HashSet<&str> = HashSet::new();
    for v in by_class.values_mut() {
        v.sort_unstable();
        keep.extend(v.iter().take(k).map(|&(_, id)| id));
    }
    suite.samples.iter().filter(|s| keep.contains(s.id.as_str())).cloned().collect()
}

/// Runs the similarity analysis: embeds the chosen samples of every suite (resuming the logs
/// that exist), computes the statistics and returns them (the CLI writes them out). Holds the lock
/// of `spec.out` meanwhile. Everything that can be checked before the pass is: the options, that
/// each suite has a class with `min_per_class` chosen images ([`check_class_sizes`]) and that
/// `--result` reads (before `--out` is made), and that it holds the model on every suite (once
/// the model is open and its name known).
pub fn similarity(spec: &SimilaritySpec) -> Result<SimilarityReport> {
    similarity_with(spec, &Silent)
}

/// [`similarity`], telling `reporter` what happens.
pub fn similarity_with(spec: &SimilaritySpec, reporter: &dyn Reporter) -> Result<SimilarityReport> {
    if spec.per_class < 2 {
        bail!("--per-class must be at least 2 (pairs of images are compared)");
    }
    if spec.min_per_class < 3 {
        bail!("--min-per-class must be at least 3: with 2 images there is one pair and no standard error");
    }
    if spec.per_class < spec.min_per_class {
        bail!(
            "--per-class {} is below --min-per-class {}: no class could have enough images; raise --per-class or lower --min-per-class",
            spec.per_class,
            spec.min_per_class
        );
    }
    if spec.suites.is_empty() {
        bail!("give at least one --suite");
    }
    if spec.result.is_some() && spec.suites.len() < 2 {
        bail!("--result sets recall changes against similarity changes between suites: give two --suite or more");
    }
    // A misspelt --model fails first, before a suite is listed.
    let model_ref = ModelRef::resolve(&spec.model).with_context(|| format!("model {}", spec.model))?;
    let mut session = Session::new("similarity", reporter);
    let info = &mut session.info;
    (info.threads, info.batch, info.model_threads) =
        (Some(spec.eval.threads), Some(spec.eval.batch), Some(spec.model_threads));
    let suites = session.load_suites(&spec.suites, None)?;
    let mut choices = Vec::new();
    for (i, (suite, p)) in suites.iter().zip(&spec.suites).enumerate() {
        if suite.samples.is_empty() {
            bail!("suite {} ({}) has no samples: nothing to embed", suite.name, p.display());
        }
        if suites[..i].iter().any(|s| s.name == suite.name) {
            bail!("two suites are named {:?}: their embeddings logs would collide; rename one", suite.name);
        }
        let chosen = select(suite, spec.per_class, spec.seed);
        check_class_sizes(&suite.name, &chosen, spec.min_per_class)?;
        choices.push(chosen);
    }
    let result = spec.result.as_deref().map(|p| RunResult::read(p).map(|r| (p, r))).transpose()?;
    // Nothing is written (not even --out made) before the input is known to be usable.
    session.lock(&spec.out, None)?;
    let opts =
        ModelOptions { model_threads: spec.model_threads, replicas: spec.replicas, isolation: spec.isolation.clone() };
    let mut model = session.open_model(&model_ref, &opts, &spec.eval)?;
    let name = model.name.clone();
    // The model's name is known now: check --result before the pass, not after it.
    let recall_model = match &result {
        Some((path, run)) => {
            let names: Vec<&str> = suites.iter().map(|s| s.name.as_str()).collect();
            match recall_model(path, run, &name, &names, reporter) {
                Ok(m) => Some(m),
                Err(e) => {
                    close_all(vec![model.copies]);
                    return Err(e);
                }
            }
        }
        None => None,
    };
    for c in model.copies.iter_mut() {
        c.set_output(Output::Embedding)?;
    }
    let embedding_len = model.copies[0].embedding_len();
    // The embedding a log holds is part of what decides it: another tensor or method is another log.
    let embedding =
        model_ref.config.as_ref().and_then(|c| c.embedding.clone()).unwrap_or_else(|| "(the plugin's)".into());
    model.identity.set("embedding", &embedding);

    let mut parts = Vec::new();
    let mut rows: Vec<Vec<ClassSimilarity>> = Vec::new();
    for (suite, chosen) in suites.iter().zip(choices) {
        let n_chosen = chosen.len();
        let log = embeddings_log_path(&spec.out, &name, &suite.name);
        embed_suite(&session, &mut model, suite, chosen, spec, embedding_len, &log)?;
        let (part, suite_rows) = suite_stats(suite, n_chosen, &log, spec.min_per_class)?;
        parts.push(part);
        rows.push(suite_rows);
    }
    close_all(vec![model.copies]);

    let mut comparisons = Vec::new();
    for (i, suite) in suites.iter().enumerate().skip(1) {
        comparisons.push(compare(&suites[0].name, &rows[0], &suite.name, &rows[i]));
    }
    let recall = match (&result, &recall_model) {
        (Some((_, run)), Some(m)) => recall_changes(run, m, &comparisons),
        _ => Vec::new(),
    };
    let info = session.finish();
    Ok(SimilarityReport {
        shiftbench_similarity: 1,
        model: name,
        embedding_len,
        per_class: spec.per_class,
        seed: spec.seed,
        min_per_class: spec.min_per_class,
        suites: parts,
        classes: rows.into_iter().flatten().collect(),
        comparisons,
        recall,
        run: info,
    })
}

/// Refuses a suite in which no class has `min_per_class` chosen images (every class would be
/// skipped after embedding them all), naming its largest class and the remedy.
pub fn check_class_sizes(suite: &str, chosen: &[Sample], min_per_class: usize) -> Result<()> {
    let mut sizes: HashMap<&str, usize> = HashMap::new();
    for s in chosen {
        *sizes.entry(s.wnid.as_str()).or_default() += 1;
    }
    let largest = sizes.values().copied().max().unwrap_or(0);
    if largest >= min_per_class {
        return Ok(());
    }
    let lower = if largest >= 3 { format!(", or lower --min-per-class to {largest}") } else { String::new() };
    bail!(
        "suite {suite} has no class with --min-per-class {min_per_class} images (its largest class has {largest}), \
         so every class would be skipped: group its classes into coarser ones with `remap:` to a parent wnid in the \
         suite YAML, as suites/imagenet-samples-coarse.yaml does for the one-photo-per-class ImageNet samples{lower}"
    )
}

/// Embeds the samples of `suite` chosen (`chosen`) that its log does not hold yet.
fn embed_suite(
    session: &Session<'_>,
    model: &mut OpenModel,
    suite: &Suite,
    chosen: Vec<Sample>,
    spec: &SimilaritySpec,
    embedding_len: usize,
    log: &Path,
) -> Result<()> {
    // The log is this model's embeddings of exactly this choice: a different model, card,
    // embedding, K, seed or suite content starts a new log (the old one kept aside), never mixed in.

    let ids: Vec<String> = chosen.iter().map(|s| format!("{}\t{}", s.id, s.wnid)).collect();
    let choice = format!("{}\nper_class {} seed {}\n{}", suite.digest, spec.per_class, spec.seed, ids.join("\n"));
    let header = LogHeader {
        identity: Some(model.identity.clone()),
        ..LogHeader::new(
            &model.name,
            &suite.name,
            &sha256_hex(choice.as_bytes()),
            &sha256_hex(format!("embedding {embedding_len}").as_bytes()),
        )
    };
    // The suite cut to the chosen samples (its other samples are not copied).
    let sub = Suite {
        name: suite.name.clone(),
        path: suite.path.clone(),
        samples: chosen,
        weights: suite.weights.clone(),
        classes: suite.classes.clone(),
        digest: suite.digest.clone(),
        checksums: suite.checksums.clone(),
        notes: Vec::new(),
    };
    let (mut writer, done) = session.open_log(log, &header, &sub, spec.fresh, spec.eval.threads)?;
    let mut outcome = JobOutcome::default();
    let (first, rest) = model.copies.split_first_mut().expect("at least one copy");
    let extra = rest.iter_mut().map(|m| &mut **m as &mut (dyn Scorer + Send)).collect();
    let mut jobs = [Job { model: &mut **first, extra, log: &mut writer, done: &done, outcome: &mut outcome }];
    session.pass(&sub, &mut jobs, &spec.eval)?;
    if let Some(why) = &outcome.stopped {
        bail!(
            "the model stopped on suite {}: {why}; the embeddings so far are kept in {}: run the same command again to resume",
            suite.name,
            log.display()
        );
    }
    Ok(())
}

/// Reads a suite's embeddings log back, class by class, into its statistics.
fn suite_stats(
    suite: &Suite,
    chosen: usize,
    log: &Path,
    min_per_class: usize,
) -> Result<(SuiteSimilarity, Vec<ClassSimilarity>)> {
    // Where each class's embeddings are in the log; then one class at a time in memory.
    let (offsets, failed) = index_log(log)?;
    let mut file = std::fs::File::open(log).with_context(|| format!("cannot read {}", log.display()))?;
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut embedded = 0;
    for (wnid, at) in offsets {
        let mut unit = Vec::with_capacity(at.len());
        for off in at {
            unit.push(normalise(&read_record_at(&mut file, off, log)?.embedding));
        }
        embedded += unit.len();
        match pair_stats(&unit).filter(|s| s.n >= min_per_class) {
            Some(stats) => rows.push(ClassSimilarity { suite: suite.name.clone(), wnid, stats }),
            None => skipped.push(SkippedClass { wnid, n: unit.len() }),
        }
    }
    let mean = (!rows.is_empty()).then(|| rows.iter().map(|r| r.stats.mean_cosine).sum::<f64>() / rows.len() as f64);
    let part = SuiteSimilarity {
        suite: suite.name.clone(),
        samples: suite.samples.len(),
        chosen,
        embedded,
        failed,
        classes: rows.len(),
        mean_of_class_means: mean,
        skipped,
        log: log.display().to_string(),
    };
    Ok((part, rows))
}

/// The byte offset of every embedding in an embeddings log, by class (a class whose chosen
/// samples all failed has none), and how many records hold no embedding.
fn index_log(log: &Path) -> Result<(BTreeMap<String, Vec<u64>>, usize)> {
    use std::io::BufRead;
    /// A record without its values (they are skipped, not parsed).
    #[derive(Deserialize)]
    struct Entry {
        wnid: String,
        status: Status,
        #[serde(default)]
        embedding: Option<serde::de::IgnoredAny>,
    }
    let f = std::fs::File::open(log).with_context(|| format!("cannot read {}", log.display()))?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let mut line = Vec::new();
    let (mut offsets, mut failed): (BTreeMap<String, Vec<u64>>, usize) = (BTreeMap::new(), 0);
    let mut at = r.read_until(b'\n', &mut line)? as u64; // the header, checked when the log was opened
    let mut n = 1;
    loop {
        line.clear();
        let len = r.read_until(b'\n', &mut line)?;
        if len == 0 {
            break;
        }
        n += 1;
        if !line.iter().all(u8::is_ascii_whitespace) {
            let e: Entry = serde_json::from_slice(&line)
                .map_err(|e| anyhow!("{}:{n}: not an embeddings record: {e}", log.display()))?;
            match (e.status, e.embedding.is_some()) {
                (Status::Ok, true) => offsets.entry(e.wnid).or_default().push(at),
                _ => {
                    failed += 1;
                    offsets.entry(e.wnid).or_default();
                }
            }
        }
        at += len as u64;
    }
    Ok((offsets, failed))
}

/// The record that starts at byte `off` of the log.
fn read_record_at(file: &mut std::fs::File, off: u64, log: &Path) -> Result<Record> {
    use std::io::{BufRead, Seek, SeekFrom};
    file.seek(SeekFrom::Start(off))?;
    let mut line = Vec::new();
    std::io::BufReader::new(&mut *file).read_until(b'\n', &mut line)?;
    serde_json::from_slice(&line).map_err(|e| anyhow!("{} at byte {off}: not an embeddings record: {e}", log.display()))
}

/// The model of the run result `run` (read from `path`) whose recall `similarity` uses: the one
/// named `model`, else its only one; an error unless it has a result on every suite of `suites`.
fn recall_model(path: &Path, run: &RunResult, model: &str, suites: &[&str], reporter: &dyn Reporter) -> Result<String> {
    let mut models: Vec<&str> = run.results.iter().map(|r| r.model.as_str()).collect();
    models.sort_unstable();
    models.dedup();
    let pick = if models.contains(&model) {
        model.to_string()
    } else if let [only] = models.as_slice() {
        let note = format!("{} holds model {only:?}, not {model:?}: its recall is used", path.display());
        reporter.report(Event::Note(&note));
        only.to_string()
    } else {
        bail!("{} has no results of model {model:?} (it has {})", path.display(), models.join(", "));
    };
    let missing: Vec<&str> =
        suites.iter().copied().filter(|s| !run.results.iter().any(|r| r.model == pick && r.suite == *s)).collect();
    if !missing.is_empty() {
        bail!(
            "{} has no result of model {pick:?} on suite {} (run it on every --suite, or leave out --result)",
            path.display(),
            missing.join(", ")
        );
    }
    Ok(pick)
}

/// Per comparison and class present in both: recall change (from `run`, the results of `model`,
/// checked by [`recall_model`] to cover every suite) against similarity change.
fn recall_changes(run: &RunResult, model: &str, comparisons: &[SuiteComparison]) -> Vec<RecallChange> {
    let recall_of = |suite: &str| -> HashMap<&str, f64> {
        run.results
            .iter()
            .find(|r| r.model == model && r.suite == suite)
            .map(|r| r.per_class.iter().filter_map(|(w, c)| c.recall_top1.map(|v| (w.as_str(), v))).collect())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for c in comparisons {
        let (ra, rb) = (recall_of(&c.a), recall_of(&c.b));
        for d in &c.classes {
            if let (Some(a), Some(b)) = (ra.get(d.wnid.as_str()), rb.get(d.wnid.as_str())) {
                out.push(RecallChange {
                    a: c.a.clone(),
                    b: c.b.clone(),
                    wnid: d.wnid.clone(),
                    similarity_diff: d.diff,
                    recall_diff: 100.0 * (b - a),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(samples: &[(&str, &str)]) -> Suite {
        let dir = std::env::temp_dir();
        Suite {
            name: "s".into(),
            path: dir.clone(),
            samples: samples.iter().map(|&(id, w)| Sample::file(id, dir.join(id), w)).collect(),
            weights: crate::data::weights::Weights::Equal,
            classes: None,
            digest: String::new(),
            checksums: Default::default(),
            notes: vec![],
        }
    }

    #[test]
    fn the_choice_is_seeded_stable_and_capped_per_class() {
        let mut v: Vec<(String, String)> = Vec::new();
        for i in 0..30 {
            v.push((format!("a{i:02}"), "n00000001".into()));
            if i < 3 {
                v.push((format!("b{i:02}"), "n00000002".into()));
            }
        }
        let pairs: Vec<(&str, &str)> = v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let s = suite(&pairs);
        let ids = |k, seed| select(&s, k, seed).into_iter().map(|x| x.id).collect::<Vec<_>>();
        let a = ids(10, 7);
        assert_eq!(a.iter().filter(|i| i.starts_with('a')).count(), 10);
        assert_eq!(a.iter().filter(|i| i.starts_with('b')).count(), 3, "a small class keeps all it has");
        assert_eq!(a, ids(10, 7), "the same seed chooses the same");
        assert_ne!(a, ids(10, 8), "another seed chooses otherwise");
        // In suite order, whatever order the suite lists its samples in.
        let mut rev = pairs.clone();
        rev.reverse();
        let mut b: Vec<String> = select(&suite(&rev), 10, 7).into_iter().map(|x| x.id).collect();
        b.reverse();
        assert_eq!(a, b);
        // A larger K keeps the images already chosen.
        let big = ids(20, 7);
        assert!(a.iter().all(|i| big.contains(i)));
        // The key is FNV-1a 64 over the seed's 8 little-endian bytes and the id (fixed values, so
        // a change of hash, which would change every choice, is seen).
        assert_eq!(pick_key(0, ""), 0xa8c7_f832_281a_39c5);
    }
}
