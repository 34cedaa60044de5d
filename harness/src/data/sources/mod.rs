//! Where a suite's images and labels come from, in the layouts people actually have:
//!
//! - [`devkit`]: a flat `ILSVRC2012_img_val` folder labelled by the devkit's
//!   `ILSVRC2012_validation_ground_truth.txt` and `meta.mat` (read by [`matfile`]) or an
//!   `id -> wnid` table;
//! - [`laionet`]: LAIONet as the paper distributes it (a Parquet of LAION rows), filtered as the
//!   paper filters it and joined with the images img2dataset fetched ([`webdataset`]: `.tar`
//!   shards read in place, or plain folders);
//! - [`folders`]: ImageFolder (`<root>/<wnid>/<image>`, or `<root>/<class index>/<image>` with
//!   `folder_labels: imagenet1k_index`, ImageNet-V2's layout) and a flat folder named by wnid;
//! - [`labels`]: a label table such as Kaggle's `LOC_val_solution.csv`.
//!
//! [`load`] reads the `source:` block of a suite YAML ([`SourceYaml`]) with the one layout it
//! names. A sample's image is an [`ImageRef`](crate::data::sample::ImageRef): a file, a member of
//! a tar archive, or absent, which the pipeline counts as missing.

pub mod devkit;
pub mod folders;
pub mod labels;
pub mod laionet;
pub mod matfile;
pub mod pickle;
pub mod webdataset;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::env::resolve;
use crate::data::sample::Sample;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceYaml {
    #[serde(default)]
    pub image_folder: Option<String>,
    /// ImageFolder layout: what the folder names are, `wnid` (default) or `imagenet1k_index`
    /// (folders `0`..`999`, ImageNet-V2's layout).
    #[serde(default)]
    pub folder_labels: Option<folders::FolderLabels>,
    #[serde(default)]
    pub files: Option<String>,
    #[serde(default)]
    pub table: Option<String>,
    #[serde(default)]
    pub root: Option<String>,
    #[serde(default)]
    pub path_column: Option<String>,
    #[serde(default)]
    pub wnid_column: Option<String>,
    /// Devkit layout: the ground-truth file (one devkit class id per line).
    #[serde(default)]
    pub ground_truth: Option<String>,
    /// Devkit layout: the flat folder of val images.
    #[serde(default)]
    pub images: Option<String>,
    /// Devkit layout: `meta.mat`, mapping devkit ids to wnids.
    #[serde(default)]
    pub meta: Option<String>,
    /// Devkit layout: a table mapping devkit ids to wnids (instead of `meta`).
    #[serde(default)]
    pub id_map: Option<String>,
    /// Devkit layout: the id column of `id_map` (default `ILSVRC2012_ID`).
    #[serde(default)]
    pub id_column: Option<String>,
    #[serde(default)]
    pub laionet: Option<laionet::LaionetYaml>,
    /// Table layout: a column of sha256 checksums.
    #[serde(default)]
    pub checksum_column: Option<String>,
}

/// What a source gave: its samples (in no particular order), the checksums it pins, and what
/// loading found worth telling (filter counts, damaged shards), one line each.
#[derive(Debug, Default)]
pub struct Loaded {
    pub samples: Vec<Sample>,
    pub checksums: BTreeMap<String, String>,
    pub notes: Vec<String>,
}

/// Loads the samples of a suite's `source:` block; `path` is the suite file (paths are relative
/// to its folder `base`, and messages name it), `suite_name` prefixes the notes. With
/// `labels_only`, a LAIONet source's images are not looked at.
pub fn load(src: &SourceYaml, base: &Path, path: &Path, suite_name: &str, labels_only: bool) -> Result<Loaded> {
    let here = |key: &str| format!("{}: {key}", path.display());
    // A path of the source, resolved; an unset `${VAR}` in it names the suite file and the key.
    let at = |key: &str, p: &str| resolve(base, p).with_context(|| here(key));
    let kinds = [
        src.image_folder.is_some(),
        src.files.is_some(),
        src.table.is_some(),
        src.ground_truth.is_some(),
        src.laionet.is_some(),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    if kinds != 1 {
        bail!(
            "{}: source needs exactly one of image_folder, files, table, ground_truth (devkit) or laionet",
            here("source")
        );
    }
    if src.folder_labels.is_some() && src.image_folder.is_none() {
        bail!("{}: folder_labels applies to the image_folder layout only", here("source"));
    }
    let mut checksums = BTreeMap::new();
    let mut notes = Vec::new();
    let samples;
    if let Some(dir) = &src.image_folder {
        let root = at("source.image_folder", dir)?;
        if !root.is_dir() {
            bail!("{}: folder {} does not exist", here("source.image_folder"), root.display());
        }
        samples = folders::image_folder(&root, src.folder_labels.unwrap_or_default())
            .with_context(|| here("source.image_folder"))?;
    } else if let Some(dir) = &src.files {
        let root = at("source.files", dir)?;
        if !root.is_dir() {
            bail!("{}: folder {} does not exist", here("source.files"), root.display());
        }
        samples = folders::flat_files(&root)?;
    } else if let Some(t) = &src.table {
        let table = at("source.table", t)?;
        let root = match &src.root {
            Some(r) => at("source.root", r)?,
            None => table.parent().unwrap_or(Path::new(".")).to_path_buf(),
        };
        let (s, sums) = labels::samples(
            &table,
            &root,
            src.path_column.as_deref().unwrap_or("path"),
            src.wnid_column.as_deref().unwrap_or("wnid"),
            src.checksum_column.as_deref(),
        )?;
        samples = s;
        checksums = sums;
    } else if let Some(gt) = &src.ground_truth {
        let images = src
            .images
            .as_deref()
            .ok_or_else(|| anyhow!("{}: the devkit layout needs `images:` (the flat val folder)", here("source")))?;
        let id_map_path;
        let map = match (&src.meta, &src.id_map) {
            (Some(m), None) => {
                id_map_path = at("source.meta", m)?;
                devkit::IdMap::Meta(&id_map_path)
            }
            (None, Some(t)) => {
                id_map_path = at("source.id_map", t)?;
                devkit::IdMap::Table {
                    path: &id_map_path,
                    id_column: src.id_column.as_deref().unwrap_or("ILSVRC2012_ID"),
                    wnid_column: src.wnid_column.as_deref().unwrap_or("wnid"),
                }
            }
            _ => bail!(
                "{}: the devkit layout needs exactly one of `meta:` (meta.mat) or `id_map:` (an id -> wnid table)",
                here("source")
            ),
        };
        let (images, gt) = (at("source.images", images)?, at("source.ground_truth", gt)?);
        samples = devkit::load(&images, &gt, &map).with_context(|| here("source"))?;
    } else if let Some(l) = &src.laionet {
        let res = |p: &str| resolve(base, p);
        let loaded = laionet::load(l, &res, labels_only).with_context(|| here("source.laionet"))?;
        if !labels_only {
            notes.push(format!("{}: {}", suite_name, loaded.stats.describe(l)));
            notes.extend(loaded.stats.warnings.iter().map(|w| format!("{}: {w}", suite_name)));
        }
        samples = loaded.samples;
        checksums = loaded.checksums;
    } else {
        unreachable!("exactly one source kind")
    }
    Ok(Loaded { samples, checksums, notes })
}
