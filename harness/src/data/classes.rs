//! Class subsets: a plain wnid list, or a table with a `wnid` column filtered by column values
//! (a suite's `classes_file:` with `classes_where:`, and `score --classes`).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use shiftbench_model_config::{is_wnid, parse_wnid_list};

use crate::data::table::{read_table, read_table_header};
use crate::util::safeio;

/// Loads a class subset: a plain wnid list, or a CSV/TSV table with a `wnid` column filtered by
/// `column=value` conditions.
pub fn load_class_subset(path: &Path, filters: &[(String, String)]) -> Result<BTreeSet<String>> {
    let header = read_table_header(path).map(|h| h.join(",")).unwrap_or_default();
    let is_table = header.contains(',') || header.contains('\t');
    let text = if is_table {
        String::new()
    } else {
        safeio::read_text_bounded(path, safeio::MAX_YAML_BYTES)
            .with_context(|| format!("cannot read {}", path.display()))?
    };
    if is_table {
        let (header, rows) = read_table(path)?;
        let wc =
            header.iter().position(|h| h == "wnid").ok_or_else(|| anyhow!("{}: no `wnid` column", path.display()))?;
        let conds: Vec<(usize, &str)> = filters
            .iter()
            .map(|(c, v)| {
                header
                    .iter()
                    .position(|h| h == c)
                    .map(|i| (i, v.as_str()))
                    .ok_or_else(|| anyhow!("{}: no column {c:?}", path.display()))
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
