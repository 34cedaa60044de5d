//! Scoring predictions made elsewhere: per-sample correctness tables such as the LAIONet paper's
//! `ILSVRC2012_val.parquet` (columns `top_1_is_correct_<model>`, `top_5_is_correct_<model>`,
//! null where a model made no prediction), as Parquet, CSV or TSV (1/0/NA, true/false).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use parquet::schema::types::Type;
use shiftbench_model_config::{is_wnid, parse_wnid_list};

use crate::metrics::ClassCounts;
use crate::predlog::{ClassStatus, Tally};
use crate::suite::read_table;

const TOP1: &str = "top_1_is_correct_";
const TOP5: &str = "top_5_is_correct_";

/// A stored per-sample table: column name -> values (None = null / NA).
pub struct StoredTable {
    pub columns: Vec<String>,
    pub rows: usize,
    pub data: HashMap<String, Vec<Option<String>>>,
}

fn is_parquet(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// The column names of a stored table.
pub fn stored_columns(path: &Path) -> Result<Vec<String>> {
    if is_parquet(path) {
        let r = SerializedFileReader::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
            .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
        Ok(r.metadata().file_metadata().schema().get_fields().iter().map(|f| f.name().to_string()).collect())
    } else {
        Ok(read_table(path)?.0)
    }
}

fn field_to_string(f: &Field) -> Option<String> {
    match f {
        Field::Null => None,
        Field::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        Field::Str(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Reads the named columns of a stored table.
pub fn read_stored(path: &Path, wanted: &[String]) -> Result<StoredTable> {
    let mut data: HashMap<String, Vec<Option<String>>> = wanted.iter().map(|c| (c.clone(), Vec::new())).collect();
    let columns = stored_columns(path)?;
    for w in wanted {
        if !columns.contains(w) {
            bail!("{}: no column {w:?}", path.display());
        }
    }
    let mut rows = 0usize;
    if is_parquet(path) {
        let r = SerializedFileReader::new(File::open(path)?)?;
        let schema = r.metadata().file_metadata().schema();
        let fields = schema.get_fields().iter().filter(|f| wanted.iter().any(|w| w == f.name())).cloned().collect();
        let proj = Type::group_type_builder(schema.name()).with_fields(fields).build()?;
        for row in r.get_row_iter(Some(proj))? {
            let row = row.with_context(|| format!("{}: corrupt row {}", path.display(), rows + 1))?;
            for (name, f) in row.get_column_iter() {
                if let Some(col) = data.get_mut(name) {
                    col.push(field_to_string(f));
                }
            }
            rows += 1;
        }
    } else {
        let (header, table) = read_table(path)?;
        let idx: Vec<(String, usize)> =
            wanted.iter().map(|w| (w.clone(), header.iter().position(|h| h == w).expect("checked"))).collect();
        for (_, row) in table {
            for (name, i) in &idx {
                let v = row.get(*i).cloned().filter(|s| !s.is_empty() && s != "NA" && s != "nan" && s != "None");
                data.get_mut(name).expect("wanted").push(v);
            }
            rows += 1;
        }
    }
    Ok(StoredTable { columns, rows, data })
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "1.0" => Some(true),
        "0" | "false" | "0.0" => Some(false),
        _ => None,
    }
}

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
/// (when given) are left out; null cells are samples without a prediction (not counted).
pub fn tally_stored(
    path: &Path,
    models: &[String],
    src: &LabelSource,
    classes: Option<&BTreeSet<String>>,
) -> Result<BTreeMap<String, Tally>> {
    let columns = stored_columns(path)?;
    let id_col = match src.id_column {
        Some(c) => c.to_string(),
        None => ["__index_level_0__", "image", "id", "path"]
            .iter()
            .find(|c| columns.iter().any(|x| x == *c))
            .map(|c| c.to_string())
            .ok_or_else(|| anyhow!("{}: no id column found; name it with --id-column", path.display()))?,
    };
    let mut wanted = vec![id_col.clone()];
    let own_wnid = src.labels.is_none();
    if own_wnid {
        wanted.push(src.wnid_column.to_string());
    }
    for m in models {
        if !columns.contains(&format!("{TOP1}{m}")) {
            bail!("{}: no results for model {m:?} (has: {})", path.display(), stored_models(&columns).join(", "));
        }
        wanted.push(format!("{TOP1}{m}"));
        wanted.push(format!("{TOP5}{m}"));
    }
    let t = read_stored(path, &wanted)?;
    let ids = &t.data[&id_col];
    let wnids: Vec<String> = if let Some(lp) = src.labels {
        let (header, rows) = read_table(lp)?;
        let ic = header.iter().position(|h| h == src.label_id_column).ok_or_else(|| anyhow!("{}: no column {:?}", lp.display(), src.label_id_column))?;
        let wc = header.iter().position(|h| h == src.wnid_column).ok_or_else(|| anyhow!("{}: no column {:?}", lp.display(), src.wnid_column))?;
        let map: HashMap<String, String> = rows.into_iter().map(|(_, r)| (r[ic].clone(), r[wc].clone())).collect();
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                let id = id.as_deref().ok_or_else(|| anyhow!("{}: row {} has no id", path.display(), i + 1))?;
                map.get(id).cloned().ok_or_else(|| anyhow!("{}: no label for {id}", lp.display()))
            })
            .collect::<Result<_>>()?
    } else {
        t.data[src.wnid_column].iter().map(|w| w.clone().unwrap_or_default()).collect()
    };
    let mut out = BTreeMap::new();
    for m in models {
        let (c1, c5) = (&t.data[&format!("{TOP1}{m}")], &t.data[&format!("{TOP5}{m}")]);
        let mut tally = Tally::default();
        for i in 0..t.rows {
            let wnid = &wnids[i];
            if !is_wnid(wnid) || classes.is_some_and(|c| !c.contains(wnid)) {
                continue;
            }
            let st: &mut ClassStatus = tally.status.entry(wnid.clone()).or_default();
            st.expected += 1;
            tally.total.expected += 1;
            let (v1, v5) = (c1[i].as_deref().and_then(parse_bool), c5[i].as_deref().and_then(parse_bool));
            match (v1, v5) {
                (Some(a), Some(b)) => {
                    st.evaluated += 1;
                    tally.total.evaluated += 1;
                    let c: &mut ClassCounts = tally.counts.entry(wnid.clone()).or_default();
                    c.n += 1;
                    c.top1 += a as u64;
                    c.top5 += b as u64;
                }
                _ => {
                    st.missing += 1;
                    tally.total.missing += 1;
                }
            }
        }
        out.insert(m.clone(), tally);
    }
    Ok(out)
}

/// Loads a class subset: a plain wnid list, or a CSV/TSV table with a `wnid` column filtered by
/// `column=value` conditions.
pub fn load_class_subset(path: &Path, filters: &[(String, String)]) -> Result<BTreeSet<String>> {
    let header = crate::suite::read_table_header(path).map(|h| h.join(",")).unwrap_or_default();
    let is_table = header.contains(',') || header.contains('\t');
    let text = if is_table {
        String::new()
    } else {
        crate::safeio::read_text_bounded(path, crate::safeio::MAX_YAML_BYTES).with_context(|| format!("cannot read {}", path.display()))?
    };
    if is_table {
        let (header, rows) = read_table(path)?;
        let wc = header.iter().position(|h| h == "wnid").ok_or_else(|| anyhow!("{}: no `wnid` column", path.display()))?;
        let conds: Vec<(usize, &str)> = filters
            .iter()
            .map(|(c, v)| {
                header.iter().position(|h| h == c).map(|i| (i, v.as_str())).ok_or_else(|| anyhow!("{}: no column {c:?}", path.display()))
            })
            .collect::<Result<_>>()?;
        Ok(rows
            .into_iter()
            .filter(|(_, r)| conds.iter().all(|(i, v)| r.get(*i).map(String::as_str) == Some(*v)))
            .map(|(_, r)| r[wc].clone())
            .filter(|w| is_wnid(w))
            .collect())
    } else {
        if !filters.is_empty() {
            bail!("{}: --classes-where needs a table with a header, not a plain list", path.display());
        }
        Ok(parse_wnid_list(&text, &path.display().to_string()).map_err(|e| anyhow!(e))?.into_iter().collect())
    }
}
