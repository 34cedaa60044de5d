//! ImageNet val as the official download has it: a flat folder of
//! `ILSVRC2012_val_00000001.JPEG` ... `ILSVRC2012_val_00050000.JPEG`, labelled by the devkit's
//! `data/ILSVRC2012_validation_ground_truth.txt` (one devkit class id per line, line i for image
//! i) and `data/meta.mat` (the `synsets` struct array maps `ILSVRC2012_ID` to `WNID`), or by a
//! plain `id -> wnid` table instead of `meta.mat` (for example `imagenet1k_classes.tsv`, columns
//! `devkit_ILSVRC2012_ID` and `wnid`).
//!
//! Line i labels the file whose stem is `ILSVRC2012_val_{i:08}` (any extension). A folder whose
//! files do not follow that naming is matched in sorted file-name order instead, which needs
//! exactly one file per line. Sample ids are the stems (`ILSVRC2012_val_00000001`), the same ids
//! Kaggle's `LOC_val_solution.csv` uses, so logs of the two layouts line up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use shiftbench_model_config::is_wnid;

use super::matfile;
use crate::data::sample::{ImageRef, Sample};
use crate::data::table::read_map;
use crate::util::safeio;

/// How devkit class ids become wnids.
pub enum IdMap<'a> {
    /// A devkit `meta.mat`.
    Meta(&'a Path),
    /// A table with an id column and a wnid column.
    Table { path: &'a Path, id_column: &'a str, wnid_column: &'a str },
}

/// Reads the id -> wnid map.
pub fn read_id_map(m: &IdMap) -> Result<HashMap<u32, String>> {
    match m {
        IdMap::Meta(p) => {
            let bytes = safeio::read_bounded(p, safeio::MAX_MAT_BYTES)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let synsets = matfile::devkit_synsets(&bytes).map_err(|e| anyhow!("{}: {e}", p.display()))?;
            Ok(synsets.into_iter().collect())
        }
        IdMap::Table { path, id_column, wnid_column } => {
            let mut out = HashMap::new();
            for (line, id, wnid) in read_map(path, id_column, wnid_column)? {
                let id: u32 = id
                    .parse()
                    .map_err(|_| anyhow!("{}:{line}: {id_column} {id:?} is not a whole number", path.display()))?;
                if !is_wnid(&wnid) {
                    bail!("{}:{line}: {wnid_column} {wnid:?} is not a WordNet id", path.display());
                }
                if let Some(old) = out.insert(id, wnid.clone()) {
                    if old != wnid {
                        bail!("{}:{line}: id {id} maps to both {old} and {wnid}", path.display());
                    }
                }
            }
            Ok(out)
        }
    }
}

/// The devkit's ground-truth file: one class id per line.
pub fn read_ground_truth(p: &Path) -> Result<Vec<u32>> {
    let text =
        safeio::read_text_bounded(p, safeio::MAX_YAML_BYTES).with_context(|| format!("cannot read {}", p.display()))?;
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        out.push(t.parse().map_err(|_| anyhow!("{}:{}: {t:?} is not a class id", p.display(), i + 1))?);
    }
    if out.is_empty() {
        bail!("{}: no class ids", p.display());
    }
    Ok(out)
}

/// The `n` in `ILSVRC2012_val_0000000n`.
fn val_number(stem: &str) -> Option<usize> {
    let digits = stem.strip_prefix("ILSVRC2012_val_")?;
    (digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Samples of a flat val folder labelled by the ground truth and an id map.
pub fn load(images: &Path, ground_truth: &Path, map: &IdMap) -> Result<Vec<Sample>> {
    let ids = read_ground_truth(ground_truth)?;
    let id_map = read_id_map(map)?;
    if !images.is_dir() {
        bail!("image folder {} does not exist", images.display());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(images)
        .with_context(|| format!("cannot list {}", images.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !p.file_name().unwrap_or_default().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    let stem = |p: &Path| p.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    let label = |id: u32| id_map.get(&id).cloned().unwrap_or_else(|| format!("<devkit id {id} is not in the id map>"));
    let named: HashMap<usize, &PathBuf> = files.iter().filter_map(|p| val_number(&stem(p)).map(|n| (n, p))).collect();
    let mut samples = Vec::with_capacity(ids.len());
    if !named.is_empty() || files.is_empty() {
        for (i, &id) in ids.iter().enumerate() {
            let n = i + 1;
            let sid = format!("ILSVRC2012_val_{n:08}");
            let image = match named.get(&n) {
                Some(p) => ImageRef::File((*p).clone()),
                None => ImageRef::Absent(format!("no {sid}.* in {}", images.display())),
            };
            samples.push(Sample { id: sid, wnid: label(id), image });
        }
        let extra = named.keys().filter(|&&n| n == 0 || n > ids.len()).count();
        if extra > 0 {
            bail!(
                "{}: {extra} images are numbered beyond the {} lines of {}",
                images.display(),
                ids.len(),
                ground_truth.display()
            );
        }
    } else {
        if files.len() != ids.len() {
            bail!(
                "{} holds {} files not named ILSVRC2012_val_NNNNNNNN, so they are matched to {} in sorted order, \
                 which needs exactly {} files",
                images.display(),
                files.len(),
                ground_truth.display(),
                ids.len()
            );
        }
        for (p, &id) in files.iter().zip(&ids) {
            let sid = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
            samples.push(Sample { id: sid, wnid: label(id), image: ImageRef::File(p.clone()) });
        }
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_files_missing_files_and_unknown_ids() {
        let d = tempfile::tempdir().unwrap();
        let val = d.path().join("val");
        std::fs::create_dir(&val).unwrap();
        std::fs::write(val.join("ILSVRC2012_val_00000001.JPEG"), b"a").unwrap();
        std::fs::write(val.join("ILSVRC2012_val_00000003.png"), b"c").unwrap();
        std::fs::write(d.path().join("gt.txt"), "2\n1\n999\n").unwrap();
        let meta = matfile::write_synsets_mat(&[(1, "n02119789", "kit fox"), (2, "n02100735", "English setter")], true);
        std::fs::write(d.path().join("meta.mat"), meta).unwrap();
        let s = load(&val, &d.path().join("gt.txt"), &IdMap::Meta(&d.path().join("meta.mat"))).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].id.as_str(), s[0].wnid.as_str()), ("ILSVRC2012_val_00000001", "n02100735"));
        assert!(matches!(s[1].image, ImageRef::Absent(_)));
        assert_eq!(s[1].wnid, "n02119789");
        assert!(s[2].wnid.contains("999"));
        assert_eq!(s[2].image, ImageRef::File(val.join("ILSVRC2012_val_00000003.png")));
        // The same with a table as the id map.
        std::fs::write(d.path().join("ids.tsv"), "devkit_ILSVRC2012_ID\twnid\n1\tn02119789\n2\tn02100735\n").unwrap();
        let t =
            IdMap::Table { path: &d.path().join("ids.tsv"), id_column: "devkit_ILSVRC2012_ID", wnid_column: "wnid" };
        assert_eq!(load(&val, &d.path().join("gt.txt"), &t).unwrap(), s);
    }

    #[test]
    fn unconventional_names_match_in_sorted_order() {
        let d = tempfile::tempdir().unwrap();
        let val = d.path().join("val");
        std::fs::create_dir(&val).unwrap();
        for n in ["b.jpg", "a.jpg"] {
            std::fs::write(val.join(n), b"x").unwrap();
        }
        std::fs::write(d.path().join("gt.txt"), "1\n2\n").unwrap();
        std::fs::write(d.path().join("ids.csv"), "id,wnid\n1,n02119789\n2,n02100735\n").unwrap();
        let t = IdMap::Table { path: &d.path().join("ids.csv"), id_column: "id", wnid_column: "wnid" };
        let s = load(&val, &d.path().join("gt.txt"), &t).unwrap();
        assert_eq!((s[0].id.as_str(), s[0].wnid.as_str()), ("a.jpg", "n02119789"));
        std::fs::write(d.path().join("gt.txt"), "1\n").unwrap();
        assert!(load(&val, &d.path().join("gt.txt"), &t).unwrap_err().to_string().contains("exactly 1 files"));
    }
}
