//! Suite YAML: where samples come from, how they are labelled (by wnid), which classes count and
//! how classes are weighted.
//!
//! ```yaml
//! name: imagenet-val
//! source:                    # exactly one of:
//!   image_folder: val        #   <root>/<wnid>/<image>            (ImageFolder layout)
//!   # files: samples         #   flat folder, wnid = file-name prefix (n01440764_tench.JPEG)
//!   # table: labels.csv      #   CSV/TSV table of image path and wnid
//!   # root: images           #   table: where paths are relative to (default: the table's folder)
//!   # path_column: path      #   table: column names (defaults: path, wnid)
//!   # wnid_column: wnid
//! classes: [n01440764, n01443537]   # optional subset (or `classes_file: subset.txt`)
//! weights: equal             # equal | own | {table: f.tsv, wnid_column: wnid, weight_column: count}
//!                            #       | {suite: laionet.yaml}  (that suite's class frequencies)
//! ```
//!
//! Paths are relative to the suite file; `${VAR}` and `${VAR:-default}` expand from the
//! environment. YAML errors name the file, line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shiftbench_model_config::{is_wnid, parse_wnid_list, yaml_error};

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
    #[serde(default)]
    pub weights: Option<WeightsYaml>,
}

/// One sample: a stable id (its path relative to the source root, or its table key), the file,
/// and its label. `wnid` may be invalid (a table row with a bad label): such a sample is counted
/// as failed, never dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub id: String,
    pub path: PathBuf,
    pub wnid: String,
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

impl Suite {
    pub fn load(path: &Path) -> Result<Suite> {
        Self::load_depth(path, 0)
    }

    fn load_depth(path: &Path, depth: usize) -> Result<Suite> {
        if depth > 4 {
            bail!("{}: weights refer to other suites too deeply (a cycle?)", path.display());
        }
        let text = crate::safeio::read_text_bounded(path, crate::safeio::MAX_YAML_BYTES).with_context(|| format!("cannot read suite {}", path.display()))?;
        let y: SuiteYaml = serde_yaml::from_str(&text).map_err(|e| anyhow!(yaml_error(path, &e)))?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let here = |key: &str| format!("{}: {key}", path.display());

        let src = &y.source;
        let kinds = [&src.image_folder, &src.files, &src.table].iter().filter(|k| k.is_some()).count();
        if kinds != 1 {
            bail!("{}: source needs exactly one of image_folder, files or table", here("source"));
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
                    samples.push(Sample { id: rel_id(&root, &f), path: f, wnid: name.clone() });
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
                samples.push(Sample { id: rel_id(&root, &f), path: f, wnid });
            }
        } else if let Some(t) = &src.table {
            let table = resolve(&base, t)?;
            let root = match &src.root {
                Some(r) => resolve(&base, r)?,
                None => table.parent().unwrap_or(Path::new(".")).to_path_buf(),
            };
            let (header, rows) = read_table(&table)?;
            let pc = column(&header, src.path_column.as_deref().unwrap_or("path"), &table)?;
            let wc = column(&header, src.wnid_column.as_deref().unwrap_or("wnid"), &table)?;
            let mut seen = BTreeSet::new();
            for (line, row) in rows {
                let p = row.get(pc).cloned().unwrap_or_default();
                let wnid = row.get(wc).cloned().unwrap_or_default();
                if p.is_empty() {
                    bail!("{}:{line}: empty image path", table.display());
                }
                if !seen.insert(p.clone()) {
                    bail!("{}:{line}: image {p:?} is listed twice", table.display());
                }
                samples.push(Sample { id: p.clone(), path: root.join(&p), wnid });
            }
        }
        samples.sort_by(|a, b| a.id.cmp(&b.id));

        let mut classes = None;
        if y.classes.is_some() && y.classes_file.is_some() {
            bail!("{}: give classes or classes_file, not both", path.display());
        }
        if let Some(list) = &y.classes {
            let set = parse_wnid_list(&list.join("\n"), &here("classes")).map_err(|e| anyhow!(e))?;
            classes = Some(set.into_iter().collect::<BTreeSet<_>>());
        }
        if let Some(f) = &y.classes_file {
            let p = resolve(&base, f)?;
            let text = crate::safeio::read_text_bounded(&p, crate::safeio::MAX_YAML_BYTES).with_context(|| format!("{}: cannot read {}", here("classes_file"), p.display()))?;
            classes = Some(parse_wnid_list(&text, &p.display().to_string()).map_err(|e| anyhow!(e))?.into_iter().collect());
        }
        if let Some(set) = &classes {
            samples.retain(|s| set.contains(&s.wnid));
        }

        let weights = match &y.weights {
            None => Weights::Equal,
            Some(WeightsYaml::Named(n)) if n == "equal" => Weights::Equal,
            Some(WeightsYaml::Named(n)) if n == "own" => Weights::Freq(frequencies(&samples)),
            Some(WeightsYaml::Named(n)) => {
                bail!("{}: unknown weights {n:?}: use equal, own, {{table: ...}} or {{suite: ...}}", here("weights"))
            }
            Some(WeightsYaml::Table { table, wnid_column, weight_column }) => weights_from_table(
                &resolve(&base, table)?,
                wnid_column.as_deref().unwrap_or("wnid"),
                weight_column.as_deref().unwrap_or("weight"),
            )
            .with_context(|| here("weights.table"))?,
            Some(WeightsYaml::Suite { suite }) => {
                let other = Suite::load_depth(&resolve(&base, suite)?, depth + 1).with_context(|| here("weights.suite"))?;
                Weights::Freq(frequencies(&other.samples))
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
        Ok(Suite { name: y.name, path: path.to_path_buf(), samples, weights, classes, digest })
    }

    /// The classes the suite's samples are labelled with.
    pub fn class_set(&self) -> BTreeSet<String> {
        self.samples.iter().filter(|s| is_wnid(&s.wnid)).map(|s| s.wnid.clone()).collect()
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
        assert_eq!(s.samples[0].path, d.path().join("img/a.jpg"));
        match &s.weights {
            Weights::Freq(w) => assert_eq!(w["n01440764"], 0.75),
            _ => panic!(),
        }
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
