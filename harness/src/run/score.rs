//! `shiftbench score`: results from predictions logs (of one run, or of the shards of one run),
//! or from per-sample correctness tables made elsewhere, such as the LAIONet paper's
//! `ILSVRC2012_val.parquet` (columns `top_1_is_correct_<model>`, `top_5_is_correct_<model>`,
//! null where a model made no prediction), as Parquet, CSV or TSV (1/0/NA, true/false).
//!
//! With a suite (`score --log LOG --suite S`), a log is *re-scored* under S ([`rescore`]): S
//! defines the samples, their labels and the class weights. The log's samples that S excludes
//! are left out; S's samples the log lacks count as missing, with the reason; a sample whose
//! label S cannot score is failed, as a run fails it. So a log made under loose filters (a
//! LAIONet similarity threshold of 0.7, say) re-scored with S at 0.82 gives exactly what a run
//! of S gives, without running the model again ([`crate::run::sweep`] does it per threshold).
//! One caveat: a model whose predictions a run restricts to the suite's classes (`--argmax
//! suite`, or `auto` for a model with labels outside ImageNet-1k) predicted among the loose
//! suite's classes; re-scored under a suite with fewer classes it is not the same as a run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use shiftbench_model_config::is_wnid;

use crate::data::classes::load_class_subset;
use crate::data::suite::Suite;
use crate::data::table::{column_names, for_each_row};
use crate::data::weights::{read_weight_table, Weights};
use crate::results::identity::identity_changes;
use crate::results::predlog::{read_log, LogHeader, Record, Status};
use crate::results::provenance::{FileInfo, RunInfo, SuiteInfo};
use crate::results::result::{EvalResult, RunResult};
use crate::results::tally::{Outcome, Tally};

const TOP1: &str = "top_1_is_correct_";
const TOP5: &str = "top_5_is_correct_";

/// The model names a stored table has results for.
pub fn stored_models(columns: &[String]) -> Vec<String> {
    columns
        .iter()
        .filter_map(|c| c.strip_prefix(TOP1))
        .filter(|m| columns.iter().any(|c| c.strip_prefix(TOP5) == Some(*m)))
        .map(str::to_string)
        .collect()
}

/// Where the true label of each stored row comes from.
pub struct LabelSource<'a> {
    /// A table of `id -> wnid` (for example `ilsvrc2012_val_labels.tsv`), or None when the
    /// stored table has a wnid column itself.
    pub labels: Option<&'a Path>,
    pub id_column: Option<&'a str>,
    pub label_id_column: &'a str,
    pub wnid_column: &'a str,
}

/// Tallies each model's stored correctness per class. Rows whose class is outside `classes`
/// (when given) are left out; null cells are samples without a prediction (counted as missing).
pub fn tally_stored(
    path: &Path,
    models: &[String],
    src: &LabelSource,
    classes: Option<&BTreeSet<String>>,
) -> Result<BTreeMap<String, Tally>> {
    let columns = column_names(path)?;
    let id_col = match src.id_column {
        Some(c) => c.to_string(),
        None => ["__index_level_0__", "image", "id", "path"]
            .iter()
            .find(|c| columns.iter().any(|x| x == *c))
            .map(|c| c.to_string())
            .ok_or_else(|| anyhow!("{}: no id column found; name it with --id-column", path.display()))?,
    };
    for m in models {
        if !columns.contains(&format!("{TOP1}{m}")) {
            bail!("{}: no results for model {m:?} (has: {})", path.display(), stored_models(&columns).join(", "));
        }
    }
    let label_of: Option<HashMap<String, String>> = match src.labels {
        Some(lp) => {
            let mut map = HashMap::new();
            for_each_row(lp, &[Some(src.label_id_column), Some(src.wnid_column)], |_, c| {
                map.insert(c[0].text().unwrap_or_default(), c[1].text().unwrap_or_default());
                Ok(())
            })?;
            Some(map)
        }
        None => None,
    };
    let names: Vec<(String, String)> = models.iter().map(|m| (format!("{TOP1}{m}"), format!("{TOP5}{m}"))).collect();
    let mut wanted: Vec<Option<&str>> = vec![Some(&id_col), label_of.is_none().then_some(src.wnid_column)];
    for (c1, c5) in &names {
        wanted.push(Some(c1));
        wanted.push(Some(c5));
    }
    let mut tallies: Vec<Tally> = models.iter().map(|_| Tally::default()).collect();
    let mut row = 0usize;
    for_each_row(path, &wanted, |_, c| {
        row += 1;
        let id = c[0].text();
        let wnid = match &label_of {
            Some(map) => {
                let id = id.as_deref().ok_or_else(|| anyhow!("{}: row {row} has no id", path.display()))?;
                map.get(id)
                    .cloned()
                    .ok_or_else(|| anyhow!("{}: no label for {id}", src.labels.expect("a label table").display()))?
            }
            None => c[1].text().unwrap_or_default(),
        };
        if !is_wnid(&wnid) || classes.is_some_and(|cl| !cl.contains(&wnid)) {
            return Ok(());
        }
        let id = id.unwrap_or_default();
        for (m, tally) in tallies.iter_mut().enumerate() {
            let outcome = match (c[2 + 2 * m].truth(), c[3 + 2 * m].truth()) {
                (Some(top1), Some(top5)) => Outcome::Scored { top1, top5 },
                _ => Outcome::Missing(None),
            };
            tally.add(&id, &wnid, outcome);
        }
        Ok(())
    })?;
    Ok(models.iter().cloned().zip(tallies).collect())
}

/// What `shiftbench score` scores, and how.
#[derive(Debug, Clone, Default)]
pub struct ScoreSpec {
    /// Predictions logs (logs of the shards of one run are merged).
    pub logs: Vec<PathBuf>,
    /// With logs: the suite to re-score them under ([`rescore`]: its samples, labels and class
    /// weights); None: the logs' own samples, equal weights.
    pub suite: Option<PathBuf>,
    /// A stored per-sample results table.
    pub results: Option<PathBuf>,
    /// With `results`: a table of sample id -> wnid, its id column, and the results table's own
    /// id column (found by name when None).
    pub labels: Option<PathBuf>,
    pub label_id_column: String,
    pub id_column: Option<String>,
    /// The wnid column of the labels (or results) table.
    pub wnid_column: String,
    /// With `results`: the models to score (empty: every model in the table).
    pub models: Vec<String>,
    /// A class subset (a wnid list, or a table filtered by `classes_where`).
    pub classes: Option<PathBuf>,
    pub classes_where: Vec<(String, String)>,
    /// Class weights from a table (`wnid_column` and `weight_column`), instead of the suite's.
    pub weights_table: Option<PathBuf>,
    pub weight_column: String,
}

/// What re-scoring a log under a suite did, in samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rescored {
    /// The suite's samples the log has.
    pub from_log: usize,
    /// The suite's samples the log lacks: counted as missing.
    pub not_in_log: usize,
    /// The log's samples the suite excludes: left out.
    pub left_out: usize,
    /// The suite's samples whose label in the log differs from the suite's (scored against the
    /// suite's label).
    pub relabelled: usize,
}

impl Rescored {
    /// One line for the user: what re-scoring `model`'s log under `suite` did.
    pub fn describe(&self, model: &str, suite: &Suite) -> String {
        let relabelled = match self.relabelled {
            0 => String::new(),
            n => format!(", {n} relabelled as the suite labels them"),
        };
        format!(
            "{model}: re-scored under {} ({}): {} of its {} samples from the log, {} not in the log (counted as \
             missing), {} of the log's samples left out{relabelled}",
            suite.name,
            suite.path.display(),
            self.from_log,
            suite.samples.len(),
            self.not_in_log,
            self.left_out,
        )
    }
}

/// Predictions logs grouped by model: per model, the suites its logs name, its logs and their
/// records (concatenated, so shard logs merge).
pub type LogsByModel = BTreeMap<String, (BTreeSet<String>, Vec<PathBuf>, Vec<Record>)>;

/// Reads predictions logs, grouped by model.
pub fn read_logs_by_model(logs: &[PathBuf]) -> Result<LogsByModel> {
    let mut by_model: LogsByModel = BTreeMap::new();
    let mut first: BTreeMap<String, (PathBuf, LogHeader)> = BTreeMap::new();
    for l in logs {
        let (h, recs) = read_log(l)?;
        // One model's logs of several suites: the same model file, card and settings.
        let changes = |a: &LogHeader, b: &LogHeader| identity_changes(a.identity.as_ref(), b.identity.as_ref());
        same_model(&mut first, h.model.clone(), l, &h, changes)?;
        let e = by_model.entry(h.model).or_default();
        e.0.insert(h.suite);
        e.1.push(l.clone());
        e.2.extend(recs);
    }
    Ok(by_model)
}

/// Reads predictions logs, grouped by model and suite.
fn read_logs_by_model_and_suite(logs: &[PathBuf]) -> Result<BTreeMap<(String, String), Vec<Record>>> {
    let mut groups: BTreeMap<(String, String), Vec<Record>> = BTreeMap::new();
    let mut first: BTreeMap<String, (PathBuf, LogHeader)> = BTreeMap::new();
    for l in logs {
        let (h, recs) = read_log(l)?;
        // Shards of one model on one suite: the same header but for the shard.
        let changes = |a: &LogHeader, b: &LogHeader| {
            LogHeader { shard: None, ..b.clone() }.changes_from(&LogHeader { shard: None, ..a.clone() })
        };
        same_model(&mut first, format!("{}\n{}", h.model, h.suite), l, &h, changes)?;
        groups.entry((h.model, h.suite)).or_default().extend(recs);
    }
    Ok(groups)
}

/// Refuses to read `log` (header `h`) together with the first log read under the same `key`
/// (`first` remembers it) when `changes` finds they differ: the records of two models, cards or
/// settings are never scored as one.
fn same_model(
    first: &mut BTreeMap<String, (PathBuf, LogHeader)>,
    key: String,
    log: &Path,
    h: &LogHeader,
    changes: impl Fn(&LogHeader, &LogHeader) -> Vec<String>,
) -> Result<()> {
    match first.get(&key) {
        None => {
            first.insert(key, (log.to_path_buf(), h.clone()));
        }
        Some((l0, h0)) => {
            let c = changes(h0, h);
            if !c.is_empty() {
                bail!(
                    "{} and {} are both logs of model {} but were made by different models, cards or settings ({}): \
                     they cannot be scored as one; give the logs of one run",
                    l0.display(),
                    log.display(),
                    h.model,
                    c.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// A log's records by sample id; the last record of an id wins, as [`Tally::from_records`]
/// counts them.
pub fn records_by_id(records: &[Record]) -> HashMap<&str, &Record> {
    records.iter().map(|r| (r.id.as_str(), r)).collect()
}

/// Why a suite's sample without a record in `logs` counts as missing.
pub fn not_in_logs(logs: &[PathBuf]) -> String {
    match logs {
        [one] => format!("not in the predictions log re-scored ({})", one.display()),
        many => format!("in none of the {} predictions logs re-scored", many.len()),
    }
}

/// One model's log records re-scored under `suite` (see the module doc): per sample of the suite
/// (in a class of `classes`, when given), its record from `by_id` labelled with the suite's
/// label, a failed record when the suite cannot score its label (as a run fails it), or a
/// missing one, `not_in_log` saying why. Weighted by `weights` (the suite's, or a table's).
pub fn rescore(
    model: &str,
    by_id: &HashMap<&str, &Record>,
    suite: &Suite,
    weights: &Weights,
    classes: Option<&BTreeSet<String>>,
    not_in_log: &str,
) -> (EvalResult, Rescored) {
    let mut done = Rescored::default();
    let mut records = Vec::with_capacity(suite.samples.len());
    for s in &suite.samples {
        let found = by_id.get(s.id.as_str());
        done.from_log += found.is_some() as usize;
        let record = match (suite.label_problem(&s.wnid), found) {
            (Some(why), _) => Record::failed(&s.id, &s.wnid, Status::Failed, why),
            (None, Some(r)) => {
                done.relabelled += (r.wnid != s.wnid) as usize;
                Record { wnid: s.wnid.clone(), ..(*r).clone() }
            }
            (None, None) => {
                done.not_in_log += 1;
                Record::failed(&s.id, &s.wnid, Status::Missing, not_in_log.to_string())
            }
        };
        if classes.is_none_or(|c| c.contains(&record.wnid)) {
            records.push(record);
        }
    }
    done.left_out = by_id.len() - done.from_log;
    (EvalResult::weighted(model, &suite.name, weights, &Tally::from_records(&records)), done)
}

/// Scores logs and/or a stored table into a result, with its provenance.
pub fn score(spec: &ScoreSpec) -> Result<RunResult> {
    score_noted(spec).map(|(run, _)| run)
}

/// [`score`], and what re-scoring under a suite did, one line per model.
pub fn score_noted(spec: &ScoreSpec) -> Result<(RunResult, Vec<String>)> {
    let classes = spec.classes.as_deref().map(|p| load_class_subset(p, &spec.classes_where)).transpose()?;
    let table_weights = match &spec.weights_table {
        Some(p) => Some(Weights::Table(read_weight_table(p, &spec.wnid_column, &spec.weight_column)?)),
        None => None,
    };
    let mut results = Vec::new();
    let mut notes = Vec::new();
    // Labels only: a LAIONet suite's images are not needed to re-score (and its sample ids are
    // the same without them).
    let suite = spec.suite.as_deref().map(Suite::load_labels).transpose()?;
    if !spec.logs.is_empty() {
        let weights =
            table_weights.clone().or_else(|| suite.as_ref().map(|s| s.weights.clone())).unwrap_or(Weights::Equal);
        match &suite {
            None => {
                for ((model, suite_name), mut recs) in read_logs_by_model_and_suite(&spec.logs)? {
                    if let Some(c) = &classes {
                        recs.retain(|r| c.contains(&r.wnid));
                    }
                    results.push(EvalResult::weighted(&model, &suite_name, &weights, &Tally::from_records(&recs)));
                }
            }
            Some(suite) => {
                for (model, (suites, logs, recs)) in read_logs_by_model(&spec.logs)? {
                    if suites.len() > 1 {
                        let names: Vec<&str> = suites.iter().map(String::as_str).collect();
                        bail!(
                            "--suite re-scores the logs of one suite, but {model}'s logs are of {}: \
                             re-score them one suite at a time",
                            names.join(", ")
                        );
                    }
                    let by_id = records_by_id(&recs);
                    let (r, done) = rescore(&model, &by_id, suite, &weights, classes.as_ref(), &not_in_logs(&logs));
                    if done.from_log == 0 && !suite.samples.is_empty() && !by_id.is_empty() {
                        let logged = suites.iter().next().map(String::as_str).unwrap_or_default();
                        bail!(
                            "none of the {} samples of suite {} ({}) is in {model}'s log of suite {logged}: --suite \
                             re-scores a log under that suite's samples; to weigh a log by another suite's class \
                             frequencies, re-score it under its own suite with `weights: {{suite: ...}}` (as \
                             suites/imagenet-val.yaml does) or pass --weights-table",
                            suite.samples.len(),
                            suite.name,
                            suite.path.display()
                        );
                    }
                    notes.push(done.describe(&model, suite));
                    results.push(r);
                }
            }
        }
    }
    if let Some(res) = &spec.results {
        let models = if spec.models.is_empty() { stored_models(&column_names(res)?) } else { spec.models.clone() };
        if models.is_empty() {
            bail!("{}: no top_1_is_correct_<model> / top_5_is_correct_<model> column pairs", res.display());
        }
        let src = LabelSource {
            labels: spec.labels.as_deref(),
            id_column: spec.id_column.as_deref(),
            label_id_column: &spec.label_id_column,
            wnid_column: &spec.wnid_column,
        };
        let suite_name = res.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let weights = table_weights.clone().unwrap_or(Weights::Equal);
        for (m, tally) in tally_stored(res, &models, &src, classes.as_ref())? {
            results.push(EvalResult::weighted(&m, &suite_name, &weights, &tally));
        }
    }
    if results.is_empty() {
        bail!("nothing to score: give --log FILE or --results FILE");
    }
    let mut info = RunInfo::start("score");
    info.inputs = spec
        .results
        .iter()
        .chain(&spec.labels)
        .chain(&spec.classes)
        .chain(&spec.weights_table)
        .chain(&spec.logs)
        .map(|p| FileInfo::of(p))
        .collect();
    info.suites = suite.iter().map(SuiteInfo::of).collect();
    info.finish();
    Ok((RunResult::new(results).with_run(info).with_effective_robustness(), notes))
}
