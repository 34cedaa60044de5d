//! LAIONet as the paper distributes it: a Parquet file (or a folder of them) of LAION-400M rows
//! with `SAMPLE_ID`, `URL`, `TEXT`, `NSFW`, the assigned class, text-to-synset similarity
//! columns such as `text_to_name_def_wnid_similarity_clip-vit-base-patch32`, and
//! `wnid_is_in_recognized_text`; joined with the images img2dataset fetched for those URLs.
//!
//! Rows are filtered as the paper filters them, each filter a suite setting with the paper's
//! default: similarity `>=` 0.82 on the CLIP column (0.58 for the `all-mpnet-base-v2` column),
//! `NSFW == "UNLIKELY"`, and rows whose `wnid_is_in_recognized_text` is true dropped (null
//! keeps the row). Each kept row is one sample; a row whose image img2dataset did not fetch is a
//! *missing* sample (counted, never an error).
//!
//! The assigned class is read from `wnid_column` (default `name_def_wnid`). The paper's own files
//! keep the class in a pickled `wnid -> row indices` dictionary instead; `labels:` reads the same
//! as a table (row key -> wnid), which a three-line Python script makes from the pickle (see
//! `suites/laionet.yaml`).

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use shiftbench_model_config::is_wnid;

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
        if let Some(c) = &y.similarity_column {
            parts.push(format!("{} with {c} < {}", self.below_similarity, y.min_similarity));
        }
        if let Some(c) = &y.nsfw_column {
            parts.push(format!("{} with {c} not in [{}]", self.nsfw, y.nsfw_keep.join(", ")));
        }
        for (c, n) in &self.flagged {
            parts.push(format!("{n} with {c} true"));
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
    let rows_path = resolve(&y.rows)?;
    let files = table_files(&rows_path).context("source.laionet.rows")?;
    let labels: Option<(HashMap<String, String>, String)> = match &y.labels {
        Some(l) => {
            let p = resolve(&l.table)?;
            let map = read_map(&p, &l.key_column, &l.wnid_column)?.into_iter().map(|(_, k, v)| (k, v)).collect();
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

    // Column order: id, url|key, wnid, similarity, nsfw, checksum, label key, then drop flags.
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

    let mut stats = LoadStats::default();
    let mut samples = Vec::new();
    let mut checksums = BTreeMap::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for file in &files {
        for_each_row(file, &wanted, |line, c: &[Cell]| {
            stats.rows += 1;
            if y.similarity_column.is_some() && !c[3].at_least(y.min_similarity) {
                stats.below_similarity += 1;
                return Ok(());
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
            stats.kept += 1;
            let base_id = c[0].text().unwrap_or_else(|| format!("row{}", stats.rows));
            let n = seen.entry(base_id.clone()).or_default();
            *n += 1;
            let id = if *n == 1 { base_id } else { format!("{base_id}#{n}") };
            let wnid = match &labels {
                Some((map, _)) => {
                    let k = c[6].text().unwrap_or_default();
                    map.get(&k).cloned().unwrap_or_else(|| format!("<row key {k:?} is not in the labels table>"))
                }
                None => c[2].text().unwrap_or_default(),
            };
            let join_value = c[1].text();
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
                            stats.without_image += 1;
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
            Ok(())
        })?;
    }
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
