//! LAIONet as the paper distributes it: a Parquet file (or a folder of them) of LAION-400M rows
//! with `SAMPLE_ID`, `URL`, `TEXT`, `NSFW`, the assigned class, text-to-synset similarity
//! columns such as `text_to_name_def_wnid_similarity_clip-vit-base-patch32`, and
//! `wnid_is_in_recognized_text`; joined with the images img2dataset fetched for those URLs.
//!
//! Rows are filtered as the paper filters them, each filter a suite setting with the paper's
//! default: similarity strictly above 0.82 on the CLIP column (0.58 for the `all-mpnet-base-v2`
//! column), `NSFW == "UNLIKELY"`, and rows whose `wnid_is_in_recognized_text` is true dropped
//! (null keeps the row). Each kept row is one sample; a row whose image img2dataset did not fetch
//! is a *missing* sample (counted, never an error).
//!
//! Variants, each a setting (see [`LaionetYaml`]):
//!
//! - `similarity_inclusive` (default `false`): the paper's dataset script keeps rows with
//!   `sims > th` (`scripts/createdataset/sample_laion_from_most_similars.py` in eval-on-laion),
//!   one of its notebooks `>=`; `true` keeps a row exactly at the threshold. Thresholds compare
//!   in the column's precision ([`Cell::passes`]): a float32 cell holding 0.82 is *at* 0.82.
//! - `similarity_filters: [{column, min}]`: more similarity filters, each applied like the
//!   first (a row must pass them all), e.g. CLIP > 0.82 *and* MPNet > 0.58.
//! - `max_per_class: N`: after every filter, each class keeps its N rows of highest
//!   `similarity_column` (ties broken by sample id, numerically when both are integers): the
//!   paper's top-50 variants. Classes are as the rows label them (before the suite's `remap`).
//!
//! Sample ids are the rows' `id_column`; the n-th row of an id already seen gets `<id>#n`,
//! counted over *all* rows, filtered or not, so an id names the same row whatever the filters:
//! a log made under loose filters can be re-scored under strict ones (`shiftbench score --log
//! --suite`, `shiftbench sweep`).
//!
//! The assigned class is read from `wnid_column` (default `name_def_wnid`). The paper's own files
//! keep the class in a pickled `wnid -> row indices` dictionary instead; `labels:` reads that
//! pickle directly (`table: wnid2laionindices(...).pkl`, see [`super::pickle`]) or the same as a
//! table (row key -> wnid).

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use shiftbench_model_config::is_wnid;

use super::pickle::{is_pickle, read_index_labels};
use super::webdataset::ImageIndex;
use crate::data::sample::{ImageRef, Sample};
use crate::data::table::{for_each_row, read_map, table_files, Cell};

fn d_id() -> String {
    "SAMPLE_ID".into()
}
fn d_url() -> String {
    "URL".into()
}
fn d_key() -> String {
    "key".into()
}
fn d_wnid() -> String {
    "name_def_wnid".into()
}
fn d_sim() -> Option<String> {
    Some(CLIP_SIMILARITY.into())
}
fn d_min() -> f64 {
    0.82
}
fn d_nsfw() -> Option<String> {
    Some("NSFW".into())
}
fn d_keep() -> Vec<String> {
    vec!["UNLIKELY".into()]
}
fn d_drop() -> Vec<String> {
    vec!["wnid_is_in_recognized_text".into()]
}

/// The paper's main similarity column.
pub const CLIP_SIMILARITY: &str = "text_to_name_def_wnid_similarity_clip-vit-base-patch32";

/// One more similarity filter (`similarity_filters:`): keep rows whose `column` is above `min`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimilarityFilter {
    pub column: String,
    pub min: f64,
}

/// How rows find their images.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JoinBy {
    /// The row's URL equals the `url` img2dataset recorded for the image.
    #[default]
    Url,
    /// The row's `key_column` equals the image's img2dataset key (file stem).
    Key,
}

/// `labels:` a table giving each row's wnid.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabelsTable {
    pub table: String,
    /// The table's row-key column (default `key`).
    #[serde(default = "d_key")]
    pub key_column: String,
    /// The table's wnid column (default `wnid`).
    #[serde(default = "d_wnid_plain")]
    pub wnid_column: String,
    /// The rows' column matching `key_column` (default: the rows' `id_column`).
    #[serde(default)]
    pub row_column: Option<String>,
}

fn d_wnid_plain() -> String {
    "wnid".into()
}

/// `source.laionet` in a suite YAML.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LaionetYaml {
    /// The LAIONet Parquet (or CSV/TSV) file, or a folder of them.
    pub rows: String,
    /// img2dataset's output folder (tar shards or shard folders), or one tar file.
    #[serde(default)]
    pub images: Option<String>,
    #[serde(default)]
    pub join: JoinBy,
    #[serde(default = "d_id")]
    pub id_column: String,
    #[serde(default = "d_url")]
    pub url_column: String,
    /// With `join: key`: the rows' column holding img2dataset's key.
    #[serde(default = "d_key")]
    pub key_column: String,
    #[serde(default = "d_wnid")]
    pub wnid_column: String,
    /// `null` disables the similarity filter.
    #[serde(default = "d_sim")]
    pub similarity_column: Option<String>,
    #[serde(default = "d_min")]
    pub min_similarity: f64,
    /// Keep rows exactly at a similarity threshold too (`>=`) instead of strictly above it
    /// (`>`, the paper's dataset script). Applies to every similarity filter.
    #[serde(default)]
    pub similarity_inclusive: bool,
    /// More similarity filters, each applied like `similarity_column` (a row must pass all).
    #[serde(default)]
    pub similarity_filters: Vec<SimilarityFilter>,
    /// Keep each class's N rows of highest `similarity_column` (after every filter; ties broken
    /// by sample id).
    #[serde(default)]
    pub max_per_class: Option<usize>,
    /// `null` disables the NSFW filter.
    #[serde(default = "d_nsfw")]
    pub nsfw_column: Option<String>,
    #[serde(default = "d_keep")]
    pub nsfw_keep: Vec<String>,
    /// Boolean columns; a row where any is true is dropped (`[]` disables).
    #[serde(default = "d_drop")]
    pub drop_if_true: Vec<String>,
    #[serde(default)]
    pub labels: Option<LabelsTable>,
    /// A column of sha256 checksums of the images, for `shiftbench verify`.
    #[serde(default)]
    pub checksum_column: Option<String>,
}

/// What loading did, for the user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadStats {
    pub rows: usize,
    pub below_similarity: usize,
    /// Rows dropped by each of `similarity_filters`, in order.
    pub below_filters: Vec<usize>,
    /// Rows dropped by `max_per_class`.
    pub over_max_per_class: usize,
    pub nsfw: usize,
    /// Rows dropped per `drop_if_true` column.
    pub flagged: BTreeMap<String, usize>,
    pub kept: usize,
    pub without_image: usize,
    pub shards: usize,
    pub warnings: Vec<String>,
}

impl LoadStats {
    pub fn describe(&self, y: &LaionetYaml) -> String {
        let mut parts = Vec::new();
        let below = if y.similarity_inclusive { "<" } else { "<=" };
        if let Some(c) = &y.similarity_column {
            parts.push(format!("{} with {c} {below} {}", self.below_similarity, y.min_similarity));
        }
        for (f, n) in y.similarity_filters.iter().zip(&self.below_filters) {
            parts.push(format!("{n} with {} {below} {}", f.column, f.min));
        }
        if let Some(c) = &y.nsfw_column {
            parts.push(format!("{} with {c} not in [{}]", self.nsfw, y.nsfw_keep.join(", ")));
        }
        for (c, n) in &self.flagged {
            parts.push(format!("{n} with {c} true"));
        }
        if let Some(m) = y.max_per_class {
            parts.push(format!("{} beyond the {m} most similar of their class", self.over_max_per_class));
        }
        let dropped = if parts.is_empty() { String::new() } else { format!(" (dropped {})", parts.join(", ")) };
        format!(
            "{} rows, {} kept{dropped}; {} kept rows have no image in {} shards",
            self.rows, self.kept, self.without_image, self.shards
        )
    }
}

/// Loaded LAIONet samples with their checksums (if a checksum column is set).
pub struct Loaded {
    pub samples: Vec<Sample>,
    pub checksums: BTreeMap<String, String>,
    pub stats: LoadStats,
}

/// Reads and filters the rows and, unless `labels_only`, joins them with the images.
/// `resolve` turns a path written in the suite into a real path.
pub fn load(
    y: &LaionetYaml,
    resolve: &dyn Fn(&str) -> Result<std::path::PathBuf>,
    labels_only: bool,
) -> Result<Loaded> {
    if y.max_per_class == Some(0) {
        bail!("source.laionet: max_per_class must be at least 1");
    }
    if y.max_per_class.is_some() && y.similarity_column.is_none() {
        bail!("source.laionet: max_per_class keeps the rows of highest similarity_column, which is null");
    }
    let rows_path = resolve(&y.rows)?;
    let files = table_files(&rows_path).context("source.laionet.rows")?;
    let labels: Option<(HashMap<String, String>, String)> = match &y.labels {
        Some(l) => {
            let p = resolve(&l.table)?;
            let map = if is_pickle(&p) {
                read_index_labels(&p).context("source.laionet.labels")?
            } else {
                read_map(&p, &l.key_column, &l.wnid_column)?.into_iter().map(|(_, k, v)| (k, v)).collect()
            };
            Some((map, l.row_column.clone().unwrap_or_else(|| y.id_column.clone())))
        }
        None => None,
    };
    let index = if labels_only {
        None
    } else {
        let images = y
            .images
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("source.laionet: `images:` (img2dataset's output folder) is required"))?;
        let root = resolve(images)?;
        Some((ImageIndex::build(&root).context("source.laionet.images")?, root))
    };

    // Column order: id, url|key, wnid, similarity, nsfw, checksum, label key, then drop flags,
    // then the columns of the other similarity filters.
    let join_col = match y.join {
        JoinBy::Url => y.url_column.as_str(),
        JoinBy::Key => y.key_column.as_str(),
    };
    let mut wanted: Vec<Option<&str>> = vec![
        Some(&y.id_column),
        Some(join_col),
        if labels.is_some() { None } else { Some(&y.wnid_column) },
        y.similarity_column.as_deref(),
        y.nsfw_column.as_deref(),
        y.checksum_column.as_deref(),
        labels.as_ref().map(|(_, c)| c.as_str()),
    ];
    wanted.extend(y.drop_if_true.iter().map(|c| Some(c.as_str())));
    let filters_at = wanted.len();
    wanted.extend(y.similarity_filters.iter().map(|f| Some(f.column.as_str())));

    let mut stats = LoadStats { below_filters: vec![0; y.similarity_filters.len()], ..LoadStats::default() };
    let mut samples = Vec::new();
    // Per sample: its similarity (for max_per_class) and whether img2dataset fetched no image.
    let mut similarity: Vec<f64> = Vec::new();
    let mut unfetched: Vec<bool> = Vec::new();
    let mut checksums = BTreeMap::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let inclusive = y.similarity_inclusive;
    for file in &files {
        for_each_row(file, &wanted, |line, c: &[Cell]| {
            stats.rows += 1;
            // Ids are counted over every row, so a row's id does not depend on the filters.
            let base_id = c[0].text().unwrap_or_else(|| format!("row{}", stats.rows));
            let n = seen.entry(base_id.clone()).or_default();
            *n += 1;
            let id = if *n == 1 { base_id } else { format!("{base_id}#{n}") };
            if y.similarity_column.is_some() && !c[3].passes(y.min_similarity, inclusive) {
                stats.below_similarity += 1;
                return Ok(());
            }
            for (i, f) in y.similarity_filters.iter().enumerate() {
                if !c[filters_at + i].passes(f.min, inclusive) {
                    stats.below_filters[i] += 1;
                    return Ok(());
                }
            }
            if y.nsfw_column.is_some() && !c[4].text().is_some_and(|v| y.nsfw_keep.iter().any(|k| k == &v)) {
                stats.nsfw += 1;
                return Ok(());
            }
            for (i, col) in y.drop_if_true.iter().enumerate() {
                if c[7 + i].truth() == Some(true) {
                    *stats.flagged.entry(col.clone()).or_default() += 1;
                    return Ok(());
                }
            }
            let wnid = match &labels {
                Some((map, _)) => {
                    let k = c[6].text().unwrap_or_default();
                    map.get(&k).cloned().unwrap_or_else(|| format!("<row key {k:?} is not in the labels table>"))
                }
                None => c[2].text().unwrap_or_default(),
            };
            let join_value = c[1].text();
            let mut not_fetched = false;
            let image = match (&index, join_value) {
                (None, _) => ImageRef::Absent("images not indexed".into()),
                (Some(_), None) => ImageRef::Absent(format!("row {line} of {} has no {join_col}", file.display())),
                (Some((ix, root)), Some(v)) => {
                    let found = match y.join {
                        JoinBy::Url => ix.by_url(&v),
                        JoinBy::Key => ix.by_key(&v),
                    };
                    match found {
                        Some(r) => r.clone(),
                        None => {
                            not_fetched = true;
                            ImageRef::Absent(format!(
                                "img2dataset fetched no image for {join_col} {v} (looked in {})",
                                root.display()
                            ))
                        }
                    }
                }
            };
            if let Some(sum) = c[5].text() {
                checksums.insert(id.clone(), sum.to_ascii_lowercase());
            }
            samples.push(Sample { id, wnid, image });
            similarity.push(c[3].number().unwrap_or(f64::NEG_INFINITY));
            unfetched.push(not_fetched);
            Ok(())
        })?;
    }
    if let Some(m) = y.max_per_class {
        let keep = most_similar_per_class(&samples, &similarity, m);
        stats.over_max_per_class = keep.iter().filter(|k| !**k).count();
        let mut k = keep.iter();
        samples.retain(|_| *k.next().expect("one flag per sample"));
        let mut k = keep.iter();
        unfetched.retain(|_| *k.next().expect("one flag per sample"));
        let ids: std::collections::HashSet<&str> = samples.iter().map(|s| s.id.as_str()).collect();
        checksums.retain(|id, _| ids.contains(id.as_str()));
    }
    stats.kept = samples.len();
    stats.without_image = unfetched.iter().filter(|u| **u).count();
    if let Some((ix, _)) = &index {
        stats.shards = ix.shards;
        stats.warnings = ix.warnings.clone();
    }
    if stats.kept > 0 && !samples.iter().any(|s| is_wnid(&s.wnid)) {
        bail!(
            "source.laionet: none of the {} kept rows has a WordNet id in column {:?} (the paper's files hold the \
             synset text there and keep the labels in a pickled dict: convert it to a table and point `labels:` at it)",
            stats.kept,
            y.wnid_column
        );
    }
    Ok(Loaded { samples, checksums, stats })
}

/// Which samples `max_per_class: m` keeps: per class (the samples' `wnid`), the `m` of highest
/// `similarity`, ties broken by sample id ([`id_order`]).
fn most_similar_per_class(samples: &[Sample], similarity: &[f64], m: usize) -> Vec<bool> {
    let mut by_class: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in samples.iter().enumerate() {
        by_class.entry(s.wnid.as_str()).or_default().push(i);
    }
    let mut keep = vec![false; samples.len()];
    for idx in by_class.values_mut() {
        idx.sort_by(|&a, &b| {
            similarity[b].total_cmp(&similarity[a]).then_with(|| id_order(&samples[a].id, &samples[b].id))
        });
        for &i in idx.iter().take(m) {
            keep[i] = true;
        }
    }
    keep
}

/// The order of sample ids among equally similar rows: ids whose part before any `#` is an
/// integer come first, by that number; then everything by its text. (A total order, whatever the
/// ids look like.)
pub fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |id: &str| match id.split('#').next().unwrap_or(id).parse::<i128>() {
        Ok(v) => (0u8, v),
        Err(_) => (1u8, 0),
    };
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_are_broken_by_sample_id_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(id_order("9", "10"), Less);
        assert_eq!(id_order("10", "10#2"), Less);
        assert_eq!(id_order("10#2", "11"), Less);
        assert_eq!(id_order("11", "abc"), Less);
        assert_eq!(id_order("abc", "abd"), Less);
        let s = |id: &str, w: &str| Sample { id: id.into(), wnid: w.into(), image: ImageRef::Absent(String::new()) };
        let samples = [s("30", "a"), s("4", "a"), s("200", "a"), s("1", "b"), s("2", "b")];
        let keep = most_similar_per_class(&samples, &[0.9, 0.8, 0.8, 0.1, f64::NEG_INFINITY], 2);
        // a: 30 (0.9), then 4 and 200 tie at 0.8: 4 wins. b: both kept.
        assert_eq!(keep, [true, true, false, true, true]);
    }
}
