//! A label table (CSV, TSV or Parquet) of image path (or id) -> wnid, such as Kaggle's
//! `LOC_val_solution.csv`, with an optional checksum column.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::folders::list_files;
use crate::data::sample::Sample;
use crate::data::table::for_each_row;

/// Samples of a label table (CSV, TSV or Parquet): `path_column` -> `wnid_column`. A path without
/// an extension matches the file with that stem in `root` (Kaggle's `ImageId`); a wnid cell's
/// first word is the label (Kaggle's `PredictionString` is "n01751748 x0 y0 x1 y1 ...").
pub fn samples(
    table: &Path,
    root: &Path,
    pc: &str,
    wc: &str,
    checksum: Option<&str>,
) -> Result<(Vec<Sample>, BTreeMap<String, String>)> {
    let mut samples = Vec::new();
    let mut sums = BTreeMap::new();
    let mut seen = HashSet::new();
    let mut stems: Option<HashMap<String, PathBuf>> = None;
    for_each_row(table, &[Some(pc), Some(wc), checksum], |line, c| {
        let p = c[0].text().unwrap_or_default();
        let wnid = c[1].text().unwrap_or_default().split_whitespace().next().unwrap_or("").to_string();
        if p.is_empty() {
            bail!("{}:{line}: empty image path", table.display());
        }
        if !seen.insert(p.clone()) {
            bail!("{}:{line}: image {p:?} is listed twice", table.display());
        }
        let direct = root.join(&p);
        let path = if Path::new(&p).extension().is_none() && !direct.is_file() {
            let stems = stems.get_or_insert_with(|| {
                list_files(root)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|f| Some((f.file_stem()?.to_string_lossy().into_owned(), f)))
                    .collect()
            });
            stems.get(&p).cloned().unwrap_or(direct)
        } else {
            direct
        };
        if let Some(h) = c[2].text() {
            sums.insert(p.clone(), h.to_ascii_lowercase());
        }
        samples.push(Sample::file(p, path, wnid));
        Ok(())
    })?;
    Ok((samples, sums))
}
