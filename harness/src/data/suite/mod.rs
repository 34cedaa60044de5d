//! Suite YAML: where samples come from, how they are labelled (by wnid), which classes count and
//! how classes are weighted.
//!
//! ```yaml
//! name: imagenet-val
//! source:                    # exactly one of:
//!   image_folder: val        #   <root>/<wnid>/<image>            (ImageFolder layout)
//!   # files: samples         #   flat folder, wnid = file-name prefix (n01440764_tench.JPEG)
//!   # table: labels.csv      #   CSV/TSV/Parquet table of image path (or id) and wnid, e.g.
//!   # root: images           #   Kaggle's LOC_val_solution.csv; paths without an extension
//!   # path_column: path      #   match files by stem; a wnid cell's first word is the wnid
//!   # wnid_column: wnid      #   ("n01751748 1 2 3 4 ..." -> n01751748)
//!   # ground_truth: ILSVRC2012_validation_ground_truth.txt   # the devkit layout: a flat
//!   # images: ILSVRC2012_img_val                             # folder, the ground truth and
//!   # meta: meta.mat         #   meta.mat, or id_map: a table of id -> wnid (id_column, wnid_column)
//!   # laionet: {rows: laionet.parquet, images: img2dataset-out, ...}   (see sources::laionet)
//!   # checksum_column: sha256  # (table) sha256 of each image, for `shiftbench verify`
//! classes: [n01440764, n01443537]   # optional subset, or `classes_file:` a wnid list or a table
//! classes_where: {in_imagenet1k: 1} #   with a wnid column, filtered by column = value
//! remap: {n02112837: n02110185}     # optional: relabel (applied before the class subset)
//! checksums: sha256sums.txt         # optional: `sha256sum` output, "<hex>  <sample id>"
//! weights: equal             # equal | own | {table: f.tsv, wnid_column: wnid, weight_column: count}
//!                            #       | {suite: laionet.yaml}  (that suite's class frequencies)
//! ```
//!
//! Paths are relative to the suite file; `${VAR}` and `${VAR:-default}` expand from the
//! environment. YAML errors name the file, line and column.
//!
//! A sample whose label is not a WordNet id, or is no ImageNet class at all (in none of the
//! ImageNet-1k, -21k and -22k lists, nor the suite's own class list), is kept and counted as
//! failed, never dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shiftbench_model_config::{is_wnid, parse_wnid_list, yaml_error, IMAGENET1K, IMAGENET21K_GOOG, IMAGENET22K};

pub use crate::sources::ImageRef;
use crate::sources::{devkit, for_each_row, laionet};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceYaml {
    #[serde(default)]
    pub image_folder: Option<String>,
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

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum WeightsYaml {
    Named(String),
    Table {
        table: String,
        #[serde(default)]
        wnid_column: Option<String>,
        #[serde(default)]
        weight_column: Option<String>,
    },
    Suite {
        suite: String,
    },
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SuiteYaml {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub source: SourceYaml,
    #[serde(default)]
    pub classes: Option<Vec<String>>,
    #[serde(default)]
    pub classes_file: Option<String>,
    /// With a `classes_file` table: keep rows where every column equals its value.
    #[serde(default)]
    pub classes_where: BTreeMap<String, serde_yaml::Value>,
    /// Relabel samples (and class lists and weight tables): `{from_wnid: to_wnid}`.
    #[serde(default)]
    pub remap: BTreeMap<String, String>,
    /// A `sha256sum`-style file of image checksums by sample id, for `shiftbench verify`.
    #[serde(default)]
    pub checksums: Option<String>,
    #[serde(default)]
    pub weights: Option<WeightsYaml>,
}

/// One sample: a stable id (its path relative to the source root, or its table key), its label
/// and where its image is. `wnid` may be invalid (a table row with a bad label): such a sample is
/// counted as failed, never dropped; an absent image is counted as missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub id: String,
    pub wnid: String,
    pub image: ImageRef,
}

impl Sample {
    /// A sample whose image is a file.
    pub fn file(id: impl Into<String>, path: PathBuf, wnid: impl Into<String>) -> Sample {
        Sample { id: id.into(), wnid: wnid.into(), image: ImageRef::File(path) }
    }
}

/// Every wnid of the ImageNet-1k, ImageNet-21k (Google) and ImageNet-22k label lists.
pub fn imagenet_wnids() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        [IMAGENET1K, IMAGENET21K_GOOG, IMAGENET22K]
            .iter()
            .flat_map(|t| t.lines().map(str::trim).filter(|l| is_wnid(l)))
            .collect()
    })
}

/// How a suite's classes are weighted in the "weighted" (LAION-weighted) recall.
#[derive(Debug, Clone, PartialEq)]
pub enum Weights {
    Equal,
    /// Relative frequencies, summing to 1 over the classes listed.
    Freq(BTreeMap<String, f64>),
}

impl Weights {
    pub fn describe(&self) -> &'static str {
        match self {
            Weights::Equal => "equal",
            Weights::Freq(_) => "frequency",
        }
    }

    /// The weight of every class in `classes`.
    pub fn for_classes<'a>(&self, classes: impl Iterator<Item = &'a String>) -> BTreeMap<String, f64> {
        match self {
            Weights::Equal => classes.map(|c| (c.clone(), 1.0)).collect(),
            Weights::Freq(f) => classes.map(|c| (c.clone(), f.get(c).copied().unwrap_or(0.0))).collect(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub path: PathBuf,
    pub samples: Vec<Sample>,
    pub weights: Weights,
    /// The class subset, if the suite declares one.
    pub classes: Option<BTreeSet<String>>,
    /// sha256 over the sorted (id, wnid) list: identifies the suite's content for resuming.
    pub digest: String,
    /// Pinned sha256 checksums (lower-case hex) by sample id.
    pub checksums: BTreeMap<String, String>,
    /// What loading found worth telling (filter counts, damaged shards), one line each.
    pub notes: Vec<String>,
}

/// Expands `${VAR}` and `${VAR:-default}`.
pub fn expand_env(s: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}').ok_or_else(|| anyhow!("unclosed ${{ in {s:?}"))?;
        let inner = &after[..end];
        let (var, default) = match inner.split_once(":-") {
            Some((v, d)) => (v, Some(d)),
            None => (inner, None),
        };
        match (std::env::var(var), default) {
            (Ok(v), _) if !v.is_empty() => out.push_str(&v),
            (_, Some(d)) => out.push_str(d),
            _ => bail!("environment variable {var} is not set (used in {s:?})"),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve(base: &Path, p: &str) -> Result<PathBuf> {
    Ok(base.join(expand_env(p)?))
}

/// The leading wnid of a file name such as `n01440764_tench.JPEG` or `n01440764_10026.JPEG`.
pub fn wnid_prefix(file_name: &str) -> Option<&str> {
    let head = file_name.get(..9)?;
    (is_wnid(head) && !file_name[9..].starts_with(|c: char| c.is_ascii_digit())).then_some(head)
}

fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_file() || entry.path().is_file() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

fn rel_id(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).to_string_lossy().replace('\\', "/")
}

fn delimiter_for(path: &Path, header: &str) -> u8 {
    match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()) {
        Some(e) if e == "tsv" || e == "tab" => b'\t',
        Some(e) if e == "csv" => b',',
        _ if header.contains('\t') => b'\t',
        _ => b',',
    }
}

/// Reads a CSV/TSV table into its header and rows (with 1-based line numbers).
pub fn read_table(path: &Path) -> Result<(Vec<String>, Vec<(usize, Vec<String>)>)> {
    let text = crate::safeio::read_text_bounded(path, crate::safeio::MAX_TABLE_BYTES).with_context(|| format!("cannot read table {}", path.display()))?;
    let delim = delimiter_for(path, text.lines().next().unwrap_or(""));
    let mut rdr = csv::ReaderBuilder::new().delimiter(delim).flexible(false).from_reader(text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .iter()
        .map(|s| s.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            anyhow!("{}:{line}: {e}", path.display())
        })?;
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
        rows.push((line, rec.iter().map(|s| s.trim().to_string()).collect()));
    }
    Ok((header, rows))
}

fn column(header: &[String], name: &str, path: &Path) -> Result<usize> {
    header
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| anyhow!("{}: no column {name:?} (columns: {})", path.display(), header.join(", ")))
}

/// Per-class relative frequencies of a sample list.
pub fn frequencies(samples: &[Sample]) -> BTreeMap<String, f64> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for s in samples.iter().filter(|s| is_wnid(&s.wnid)) {
        *counts.entry(s.wnid.clone()).or_default() += 1;
    }
    let total: u64 = counts.values().sum();
    counts.into_iter().map(|(k, v)| (k, v as f64 / total.max(1) as f64)).collect()
}

fn weights_from_table(path: &Path, wnid_col: &str, weight_col: &str) -> Result<Weights> {
    let (header, rows) = read_table(path)?;
    let (wi, ci) = (column(&header, wnid_col, path)?, column(&header, weight_col, path)?);
    let mut w = BTreeMap::new();
    for (line, row) in rows {
        let wnid = row.get(wi).cloned().unwrap_or_default();
        if !is_wnid(&wnid) {
            bail!("{}:{line}: {wnid:?} is not a WordNet id", path.display());
        }
        let v: f64 = row
            .get(ci)
            .and_then(|s| s.parse().ok())
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| anyhow!("{}:{line}: {weight_col} must be a non-negative number", path.display()))?;
        *w.entry(wnid).or_insert(0.0) += v;
    }
    let total: f64 = w.values().sum();
    if total <= 0.0 {
        bail!("{}: the weights sum to zero", path.display());
    }
    Ok(Weights::Freq(w.into_iter().map(|(k, v)| (k, v / total)).collect()))
}

/// Reads just the header row of a CSV/TSV table.
pub fn read_table_header(path: &Path) -> Result<Vec<String>> {
    use std::io::BufRead;
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| format!("cannot read table {}", path.display()))?;
    let mut first = String::new();
    // A header row is short: a file with no newline (or /dev/zero) is not read to its end.
    std::io::BufReader::new(f.take(crate::safeio::MAX_HEADER_BYTES)).read_line(&mut first)?;
    if first.len() as u64 >= crate::safeio::MAX_HEADER_BYTES {
        anyhow::bail!("{}: the header row is larger than {} bytes", path.display(), crate::safeio::MAX_HEADER_BYTES);
    }
    let delim = delimiter_for(path, &first);
    let mut rdr = csv::ReaderBuilder::new().delimiter(delim).from_reader(first.as_bytes());
    Ok(rdr
        .headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .iter()
        .map(|s| s.trim().to_string())
        .collect())
}

fn yaml_scalar(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

/// Reads a `sha256sum`-style file: `<64 hex>  <id>` (or `<hex> *<id>`) per line.
pub fn read_checksums(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = crate::safeio::read_text_bounded(path, crate::safeio::MAX_TABLE_BYTES).with_context(|| format!("cannot read checksums {}", path.display()))?;
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_end();
        if t.trim().is_empty() || t.starts_with('#') {
            continue;
        }
        let (hex, rest) = t.split_once(char::is_whitespace).ok_or_else(|| anyhow!("{}:{}: expected \"<sha256>  <id>\"", path.display(), i + 1))?;
        let id = rest.trim_start().trim_start_matches('*');
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || id.is_empty() {
            bail!("{}:{}: expected \"<sha256>  <id>\"", path.display(), i + 1);
        }
        out.insert(id.to_string(), hex.to_ascii_lowercase());
    }
    Ok(out)
}

/// Samples of a label table (CSV, TSV or Parquet): `path_column` -> `wnid_column`. A path without
/// an extension matches the file with that stem in `root` (Kaggle's `ImageId`); a wnid cell's
/// first word is the label (Kaggle's `PredictionString` is "n01751748 x0 y0 x1 y1 ...").
fn table_samples(table: &Path, root: &Path, pc: &str, wc: &str, checksum: Option<&str>) -> Result<(Vec<Sample>, BTreeMap<String, String>)> {
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

fn remap_wnid(remap: &BTreeMap<String, String>, w: String) -> String {
    match remap.get(&w) {
        Some(to) => to.clone(),
        None => w,
    }
}

impl Suite {
    /// Loads a suite: its samples (indexing its images), classes, weights and checksums.
    pub fn load(path: &Path) -> Result<Suite> {
        Self::load_depth(path, 0, false)
    }

    /// Loads a suite's labels only, without looking at its images (a LAIONet suite's tar shards
    /// are not indexed; every image is `Absent`): enough for its class frequencies.
    pub fn load_labels(path: &Path) -> Result<Suite> {
        Self::load_depth(path, 0, true)
    }

    fn load_depth(path: &Path, depth: usize, labels_only: bool) -> Result<Suite> {
        if depth > 4 {
            bail!("{}: weights refer to other suites too deeply (a cycle?)", path.display());
        }
        let text = crate::safeio::read_text_bounded(path, crate::safeio::MAX_YAML_BYTES).with_context(|| format!("cannot read suite {}", path.display()))?;
        let y: SuiteYaml = serde_yaml::from_str(&text).map_err(|e| anyhow!(yaml_error(path, &e)))?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let here = |key: &str| format!("{}: {key}", path.display());
        let mut notes = Vec::new();
        let mut checksums = BTreeMap::new();

        let src = &y.source;
        let kinds = [src.image_folder.is_some(), src.files.is_some(), src.table.is_some(), src.ground_truth.is_some(), src.laionet.is_some()]
            .iter()
            .filter(|k| **k)
            .count();
        if kinds != 1 {
            bail!("{}: source needs exactly one of image_folder, files, table, ground_truth (devkit) or laionet", here("source"));
        }
        let mut samples = Vec::new();
        if let Some(dir) = &src.image_folder {
            let root = resolve(&base, dir)?;
            if !root.is_dir() {
                bail!("{}: folder {} does not exist", here("source.image_folder"), root.display());
            }
            for entry in std::fs::read_dir(&root).with_context(|| format!("cannot list {}", root.display()))? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !entry.path().is_dir() || name.starts_with('.') {
                    continue;
                }
                for f in list_files(&entry.path())? {
                    samples.push(Sample::file(rel_id(&root, &f), f, name.clone()));
                }
            }
        } else if let Some(dir) = &src.files {
            let root = resolve(&base, dir)?;
            if !root.is_dir() {
                bail!("{}: folder {} does not exist", here("source.files"), root.display());
            }
            for f in list_files(&root)? {
                let name = f.file_name().unwrap_or_default().to_string_lossy().into_owned();
                let wnid = wnid_prefix(&name).map(str::to_string).unwrap_or_else(|| format!("<no wnid in {name:?}>"));
                samples.push(Sample::file(rel_id(&root, &f), f, wnid));
            }
        } else if let Some(t) = &src.table {
            let table = resolve(&base, t)?;
            let root = match &src.root {
                Some(r) => resolve(&base, r)?,
                None => table.parent().unwrap_or(Path::new(".")).to_path_buf(),
            };
            let (s, sums) = table_samples(
                &table,
                &root,
                src.path_column.as_deref().unwrap_or("path"),
                src.wnid_column.as_deref().unwrap_or("wnid"),
                src.checksum_column.as_deref(),
            )?;
            samples = s;
            checksums = sums;
        } else if let Some(gt) = &src.ground_truth {
            let images = src.images.as_deref().ok_or_else(|| anyhow!("{}: the devkit layout needs `images:` (the flat val folder)", here("source")))?;
            let id_map_path;
            let map = match (&src.meta, &src.id_map) {
                (Some(m), None) => {
                    id_map_path = resolve(&base, m)?;
                    devkit::IdMap::Meta(&id_map_path)
                }
                (None, Some(t)) => {
                    id_map_path = resolve(&base, t)?;
                    devkit::IdMap::Table {
                        path: &id_map_path,
                        id_column: src.id_column.as_deref().unwrap_or("ILSVRC2012_ID"),
                        wnid_column: src.wnid_column.as_deref().unwrap_or("wnid"),
                    }
                }
                _ => bail!("{}: the devkit layout needs exactly one of `meta:` (meta.mat) or `id_map:` (an id -> wnid table)", here("source")),
            };
            samples = devkit::load(&resolve(&base, images)?, &resolve(&base, gt)?, &map).with_context(|| here("source"))?;
        } else if let Some(l) = &src.laionet {
            let res = |p: &str| resolve(&base, p);
            let loaded = laionet::load(l, &res, labels_only).with_context(|| here("source.laionet"))?;
            if !labels_only {
                notes.push(format!("{}: {}", y.name, loaded.stats.describe(l)));
                notes.extend(loaded.stats.warnings.iter().map(|w| format!("{}: {w}", y.name)));
            }
            samples = loaded.samples;
            checksums = loaded.checksums;
        }
        if !y.remap.is_empty() {
            for (from, to) in &y.remap {
                if !is_wnid(from) || !is_wnid(to) {
                    bail!("{}: {from:?} -> {to:?} must map a WordNet id to a WordNet id", here("remap"));
                }
            }
            for s in &mut samples {
                s.wnid = remap_wnid(&y.remap, std::mem::take(&mut s.wnid));
            }
        }
        samples.sort_by(|a, b| a.id.cmp(&b.id));

        // An optional file setting that expands to nothing (`${VAR:-}` with VAR unset) is off.
        let optional = |v: &Option<String>| -> Result<Option<String>> {
            Ok(match v {
                Some(f) if expand_env(f)?.trim().is_empty() => None,
                other => other.clone(),
            })
        };
        let classes_file = optional(&y.classes_file)?;
        let mut classes = None;
        if y.classes.is_some() && classes_file.is_some() {
            bail!("{}: give classes or classes_file, not both", path.display());
        }
        if !y.classes_where.is_empty() && y.classes_file.is_none() {
            bail!("{}: classes_where filters a classes_file table", path.display());
        }
        if let Some(list) = &y.classes {
            let set = parse_wnid_list(&list.join("\n"), &here("classes")).map_err(|e| anyhow!(e))?;
            classes = Some(set.into_iter().collect::<BTreeSet<_>>());
        }
        if let Some(f) = &classes_file {
            let p = resolve(&base, f)?;
            let filters: Vec<(String, String)> = y.classes_where.iter().map(|(k, v)| (k.clone(), yaml_scalar(v))).collect();
            let set = crate::score::load_class_subset(&p, &filters).with_context(|| here("classes_file"))?;
            if set.is_empty() {
                bail!("{}: {} selects no classes", here("classes_file"), p.display());
            }
            classes = Some(set);
        }
        if let Some(set) = &mut classes {
            *set = std::mem::take(set).into_iter().map(|w| remap_wnid(&y.remap, w)).collect();
            samples.retain(|s| set.contains(&s.wnid));
        }

        let known = |w: &str| is_wnid(w) && (imagenet_wnids().contains(w) || classes.as_ref().is_some_and(|c| c.contains(w)));
        let own = || {
            let good: Vec<Sample> = samples.iter().filter(|s| known(&s.wnid)).cloned().collect();
            frequencies(&good)
        };
        let weights = match &y.weights {
            None => Weights::Equal,
            Some(WeightsYaml::Named(n)) if n == "equal" => Weights::Equal,
            Some(WeightsYaml::Named(n)) if n == "own" => Weights::Freq(own()),
            Some(WeightsYaml::Named(n)) => {
                bail!("{}: unknown weights {n:?}: use equal, own, {{table: ...}} or {{suite: ...}}", here("weights"))
            }
            Some(WeightsYaml::Table { table, wnid_column, weight_column }) => {
                let w = weights_from_table(
                    &resolve(&base, table)?,
                    wnid_column.as_deref().unwrap_or("wnid"),
                    weight_column.as_deref().unwrap_or("weight"),
                )
                .with_context(|| here("weights.table"))?;
                match w {
                    Weights::Freq(f) if !y.remap.is_empty() => {
                        let mut m = BTreeMap::new();
                        for (k, v) in f {
                            *m.entry(remap_wnid(&y.remap, k)).or_insert(0.0) += v;
                        }
                        Weights::Freq(m)
                    }
                    w => w,
                }
            }
            Some(WeightsYaml::Suite { suite }) => {
                // That suite's class frequencies (labels only: its images are not looked at).
                let other = Suite::load_depth(&resolve(&base, suite)?, depth + 1, true).with_context(|| here("weights.suite"))?;
                let good: Vec<Sample> = other.samples.iter().filter(|s| other.label_problem(&s.wnid).is_none()).cloned().collect();
                Weights::Freq(frequencies(&good))
            }
        };

        let mut h = Sha256::new();
        for s in &samples {
            h.update(s.id.as_bytes());
            h.update([0]);
            h.update(s.wnid.as_bytes());
            h.update([0]);
        }
        let digest = format!("{:x}", h.finalize());
        if let Some(c) = &optional(&y.checksums)? {
            let p = resolve(&base, c)?;
            checksums.extend(read_checksums(&p).with_context(|| here("checksums"))?);
        }
        Ok(Suite { name: y.name, path: path.to_path_buf(), samples, weights, classes, digest, checksums, notes })
    }

    /// The classes the suite's samples are labelled with.
    pub fn class_set(&self) -> BTreeSet<String> {
        self.samples.iter().filter(|s| self.label_problem(&s.wnid).is_none()).map(|s| s.wnid.clone()).collect()
    }

    /// The classes the suite contains: its declared class subset, or else its samples' classes.
    pub fn universe(&self) -> BTreeSet<String> {
        self.classes.clone().unwrap_or_else(|| self.class_set())
    }

    /// Why a label cannot be scored, if it cannot: not a WordNet id, or no ImageNet class.
    pub fn label_problem(&self, wnid: &str) -> Option<String> {
        if !is_wnid(wnid) {
            return Some(format!("label {wnid:?} is not a WordNet id"));
        }
        if !imagenet_wnids().contains(wnid) && !self.classes.as_ref().is_some_and(|c| c.contains(wnid)) {
            return Some(format!("label {wnid} is not an ImageNet class (in none of the ImageNet-1k, -21k, -22k lists)"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, body: &[u8]) -> PathBuf {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn image_folder_with_subset_and_own_weights() {
        let d = tempfile::tempdir().unwrap();
        for (w, n) in [("n01440764", 3), ("n01443537", 1), ("n01484850", 2)] {
            for i in 0..n {
                write(d.path(), &format!("val/{w}/{i}.JPEG"), b"x");
            }
        }
        write(d.path(), "val/.hidden/x.JPEG", b"x");
        let y = "name: t\nsource:\n  image_folder: val\nclasses: [n01440764, n01443537]\nweights: own\n";
        let s = Suite::load(&write(d.path(), "s.yaml", y.as_bytes())).unwrap();
        assert_eq!(s.samples.len(), 4);
        assert_eq!(s.samples[0].id, "n01440764/0.JPEG");
        assert_eq!(s.weights, Weights::Freq([("n01440764".into(), 0.75), ("n01443537".into(), 0.25)].into()));
    }

    #[test]
    fn table_source_and_weight_table() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "labels.tsv", b"path\tlabel\nimg/a.jpg\tn01440764\nimg/b.jpg\tbogus\n");
        write(d.path(), "w.csv", b"wnid,count\nn01440764,30\nn01443537,10\n");
        let y = "name: t\nsource:\n  table: labels.tsv\n  wnid_column: label\nweights: {table: w.csv, weight_column: count}\n";
        let s = Suite::load(&write(d.path(), "s.yaml", y.as_bytes())).unwrap();
        assert_eq!(s.samples.len(), 2);
        assert_eq!(s.samples[1].wnid, "bogus"); // kept, counted as failed later
        assert_eq!(s.samples[0].image, ImageRef::File(d.path().join("img/a.jpg")));
        match &s.weights {
            Weights::Freq(w) => assert_eq!(w["n01440764"], 0.75),
            _ => panic!(),
        }
    }

    #[test]
    fn kaggle_table_class_table_remap_and_checksums() {
        let d = tempfile::tempdir().unwrap();
        for n in ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG", "ILSVRC2012_val_00000003.JPEG"] {
            write(d.path(), &format!("val/{n}"), b"x");
        }
        // Kaggle's LOC_val_solution.csv: ids without extension, boxes after the wnid.
        write(
            d.path(),
            "LOC_val_solution.csv",
            b"ImageId,PredictionString\nILSVRC2012_val_00000002,n02112837 1 2 3 4 n02112837 5 6 7 8 \n\
              ILSVRC2012_val_00000001,n01440764 1 2 3 4 \nILSVRC2012_val_00000003,n01443537 1 1 1 1\nILSVRC2012_val_00000009,n01443537 0 0 0 0\n",
        );
        write(d.path(), "classes.tsv", b"wnid\tin_imagenet1k\nn01440764\t1\nn02112837\t1\nn01443537\t0\n");
        let h = "ab".repeat(32);
        write(d.path(), "sums.txt", format!("{h}  ILSVRC2012_val_00000001\n").as_bytes());
        let y = "name: t\nsource:\n  table: LOC_val_solution.csv\n  root: val\n  path_column: ImageId\n  wnid_column: PredictionString\n\
                 classes_file: classes.tsv\nclasses_where: {in_imagenet1k: 1}\nremap: {n02112837: n02110185}\nchecksums: sums.txt\nweights: own\n";
        let s = Suite::load(&write(d.path(), "s.yaml", y.as_bytes())).unwrap();
        let got: Vec<(&str, &str)> = s.samples.iter().map(|x| (x.id.as_str(), x.wnid.as_str())).collect();
        assert_eq!(got, vec![("ILSVRC2012_val_00000001", "n01440764"), ("ILSVRC2012_val_00000002", "n02110185")]);
        assert_eq!(s.samples[1].image, ImageRef::File(d.path().join("val/ILSVRC2012_val_00000002.JPEG")));
        assert_eq!(s.classes.as_ref().unwrap().iter().collect::<Vec<_>>(), ["n01440764", "n02110185"]);
        assert_eq!(s.checksums["ILSVRC2012_val_00000001"], h);
        assert_eq!(s.weights, Weights::Freq([("n01440764".into(), 0.5), ("n02110185".into(), 0.5)].into()));
        // An optional file that expands to nothing is off.
        let y = "name: t\nsource: {table: LOC_val_solution.csv, root: val, path_column: ImageId, wnid_column: PredictionString}\n\
                 classes_file: ${SHIFTBENCH_UNSET_CLASSES:-}\nclasses_where: {in_imagenet1k: 1}\n";
        let s = Suite::load(&write(d.path(), "s2.yaml", y.as_bytes())).unwrap();
        assert_eq!(s.samples.len(), 4);
        assert!(matches!(&s.samples[3].image, ImageRef::File(p) if p.ends_with("ILSVRC2012_val_00000009")));
        assert_eq!(s.label_problem("n01443537"), None);
        assert!(s.label_problem("n02112837").is_some()); // the paper's husky id is in no ImageNet list: remap it
        assert!(s.label_problem("n99999999").unwrap().contains("not an ImageNet class"));
        assert!(s.label_problem("tench").unwrap().contains("not a WordNet id"));
    }

    #[test]
    fn errors_name_the_place() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "s.yaml", b"name: t\nsource:\n  image_folder: val\n  colour: red\n");
        let e = format!("{:#}", Suite::load(&p).unwrap_err());
        assert!(e.contains("s.yaml:4:"), "{e}");
        let p = write(d.path(), "s2.yaml", b"name: t\nsource:\n  image_folder: nowhere\n");
        let e = format!("{:#}", Suite::load(&p).unwrap_err());
        assert!(e.contains("source.image_folder") && e.contains("does not exist"), "{e}");
        let p = write(d.path(), "s3.yaml", b"name: t\nsource: {files: ., table: x.csv}\n");
        assert!(format!("{:#}", Suite::load(&p).unwrap_err()).contains("exactly one"));
        write(d.path(), "t.csv", b"path,wnid\na.jpg,n01440764\na.jpg,n01440764\n");
        let p = write(d.path(), "s4.yaml", b"name: t\nsource: {table: t.csv}\n");
        let e = format!("{:#}", Suite::load(&p).unwrap_err());
        assert!(e.contains("t.csv:3") && e.contains("listed twice"), "{e}");
    }

    #[test]
    fn env_expansion_and_prefixes() {
        std::env::set_var("SHIFTBENCH_TEST_ROOT", "/data");
        assert_eq!(expand_env("${SHIFTBENCH_TEST_ROOT}/val").unwrap(), "/data/val");
        assert_eq!(expand_env("${SHIFTBENCH_UNSET_X:-../x}/val").unwrap(), "../x/val");
        assert!(expand_env("${SHIFTBENCH_UNSET_X}/val").is_err());
        assert_eq!(wnid_prefix("n01440764_tench.JPEG"), Some("n01440764"));
        assert_eq!(wnid_prefix("n014407641.JPEG"), None);
        assert_eq!(wnid_prefix("ILSVRC2012_val_00000001.JPEG"), None);
    }
}
