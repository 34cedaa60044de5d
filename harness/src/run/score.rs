//! `shiftbench score`: results from predictions logs (of one run, or of the shards of one run),
//! or from per-sample correctness tables made elsewhere, such as the LAIONet paper's
//! `ILSVRC2012_val.parquet` (columns `top_1_is_correct_<model>`, `top_5_is_correct_<model>`,
//! null where a model made no prediction), as Parquet, CSV or TSV (1/0/NA, true/false).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use shiftbench_model_config::is_wnid;

use crate::data::classes::load_class_subset;
use crate::data::suite::Suite;
use crate::data::table::{column_names, for_each_row};
use crate::data::weights::{read_weight_table, Weights};
use crate::results::predlog::{read_log, Record};
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
    /// With logs: the suite whose class weights to use (default: equal weights).
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

/// Scores logs and/or a stored table into a result, with its provenance.
pub fn score(spec: &ScoreSpec) -> Result<RunResult> {
    let classes = spec.classes.as_deref().map(|p| load_class_subset(p, &spec.classes_where)).transpose()?;
    let table_weights = match &spec.weights_table {
        Some(p) => Some(Weights::Table(read_weight_table(p, &spec.wnid_column, &spec.weight_column)?)),
        None => None,
    };
    let mut results = Vec::new();
    if !spec.logs.is_empty() {
        let suite = spec.suite.as_deref().map(Suite::load_labels).transpose()?;
        let weights =
            table_weights.clone().or_else(|| suite.as_ref().map(|s| s.weights.clone())).unwrap_or(Weights::Equal);
        let mut groups: BTreeMap<(String, String), Vec<Record>> = BTreeMap::new();
        for l in &spec.logs {
            let (h, recs) = read_log(l)?;
            groups.entry((h.model, h.suite)).or_default().extend(recs);
        }
        for ((model, suite_name), mut recs) in groups {
            if let Some(c) = &classes {
                recs.retain(|r| c.contains(&r.wnid));
            }
            results.push(EvalResult::weighted(&model, &suite_name, &weights, &Tally::from_records(&recs)));
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
    info.suites = spec.suite.as_deref().map(Suite::load).transpose()?.iter().map(SuiteInfo::of).collect();
    info.finish();
    Ok(RunResult::new(results).with_run(info))
}
