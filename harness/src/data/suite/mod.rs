//! Suite YAML: where samples come from, how they are labelled (by wnid), which classes count and
//! how classes are weighted.
//!
//! ```yaml
//! name: imagenet-val
//! source:                    # exactly one of:
//!   image_folder: val        #   <root>/<wnid>/<image>            (ImageFolder layout)
//!   # folder_labels: imagenet1k_index  # folders 0..999 (ImageNet-V2); default: wnid
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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use shiftbench_model_config::{is_wnid, known_wnid, parse_wnid_list, yaml_error};

use crate::data::checksums::read_checksums;
use crate::data::classes::load_class_subset;
use crate::data::env::{expand_env, resolve};
use crate::data::sample::Sample;
use crate::data::sources::{self, SourceYaml};
use crate::data::weights::{frequencies, read_weight_table, Weights, WeightsYaml};
use crate::util::digest::pairs_digest;
use crate::util::safeio;

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

fn yaml_scalar(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
    }
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

    /// Reads and parses a suite file, without loading anything it names.
    pub fn read_yaml(path: &Path) -> Result<SuiteYaml> {
        let text = safeio::read_text_bounded(path, safeio::MAX_YAML_BYTES)
            .with_context(|| format!("cannot read suite {}", path.display()))?;
        serde_yaml::from_str(&text).map_err(|e| anyhow!(yaml_error(path, &e)))
    }

    /// Loads the suite file `path` from its parsed (and perhaps edited) YAML `y`, as
    /// [`Suite::load`] (or, with `labels_only`, [`Suite::load_labels`]) does: how `shiftbench
    /// sweep` loads a suite at other thresholds.
    pub fn from_yaml(y: SuiteYaml, path: &Path, labels_only: bool) -> Result<Suite> {
        Self::build(y, path, 0, labels_only)
    }

    fn load_depth(path: &Path, depth: usize, labels_only: bool) -> Result<Suite> {
        if depth > 4 {
            bail!("{}: weights refer to other suites too deeply (a cycle?)", path.display());
        }
        Self::build(Self::read_yaml(path)?, path, depth, labels_only)
    }

    fn build(y: SuiteYaml, path: &Path, depth: usize, labels_only: bool) -> Result<Suite> {
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let here = |key: &str| format!("{}: {key}", path.display());

        let loaded = sources::load(&y.source, &base, path, &y.name, labels_only)?;
        let (mut samples, mut checksums, notes) = (loaded.samples, loaded.checksums, loaded.notes);
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
            let filters: Vec<(String, String)> =
                y.classes_where.iter().map(|(k, v)| (k.clone(), yaml_scalar(v))).collect();
            let set = load_class_subset(&p, &filters).with_context(|| here("classes_file"))?;
            if set.is_empty() {
                bail!("{}: {} selects no classes", here("classes_file"), p.display());
            }
            classes = Some(set);
        }
        if let Some(set) = &mut classes {
            *set = std::mem::take(set).into_iter().map(|w| remap_wnid(&y.remap, w)).collect();
            samples.retain(|s| set.contains(&s.wnid));
        }

        let known = |w: &str| is_wnid(w) && (known_wnid(w) || classes.as_ref().is_some_and(|c| c.contains(w)));
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
                let w = read_weight_table(
                    &resolve(&base, table)?,
                    wnid_column.as_deref().unwrap_or("wnid"),
                    weight_column.as_deref().unwrap_or("weight"),
                )
                .with_context(|| here("weights.table"))?;
                match Weights::normalised(w) {
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
                let other = Suite::load_depth(&resolve(&base, suite)?, depth + 1, true)
                    .with_context(|| here("weights.suite"))?;
                let good: Vec<Sample> =
                    other.samples.iter().filter(|s| other.label_problem(&s.wnid).is_none()).cloned().collect();
                Weights::Freq(frequencies(&good))
            }
        };

        let digest = pairs_digest(samples.iter().map(|s| (s.id.as_str(), s.wnid.as_str())));
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
        if !known_wnid(wnid) && !self.classes.as_ref().is_some_and(|c| c.contains(wnid)) {
            return Some(format!(
                "label {wnid} is not an ImageNet class (in none of the ImageNet-1k, -21k, -22k lists)"
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::sample::ImageRef;
    use crate::data::sources::folders::wnid_prefix;

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
        // An unset variable in a path names the suite file and the key, whatever the layout.
        for (key, yaml) in [
            ("source.image_folder", "image_folder: ${SHIFTBENCH_UNSET_Y}/val"),
            ("source.files", "files: ${SHIFTBENCH_UNSET_Y}"),
            ("source.table", "table: ${SHIFTBENCH_UNSET_Y}/t.csv"),
            ("source.ground_truth", "images: .\n  ground_truth: ${SHIFTBENCH_UNSET_Y}\n  id_map: t.csv"),
        ] {
            let p = write(d.path(), "s5.yaml", format!("name: t\nsource:\n  {yaml}\n").as_bytes());
            let e = format!("{:#}", Suite::load(&p).unwrap_err());
            assert!(e.contains(&format!("s5.yaml: {key}: environment variable SHIFTBENCH_UNSET_Y is not set")), "{e}");
        }
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
