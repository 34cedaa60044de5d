//! Folder layouts: ImageFolder (`<root>/<wnid>/<image>`, or `<root>/<class index>/<image>` as
//! ImageNet-V2 ships, with `folder_labels: imagenet1k_index`) and a flat folder whose file names
//! start with the wnid (`n01440764_tench.JPEG`). A sample's id is its path relative to the root.
//!
//! Class indices are those of the ImageNet-1k list in `suites/classes/imagenet1k.txt`
//! ([`shiftbench_model_config::IMAGENET1K`]): the 1,000 wnids sorted, which is the order
//! torchvision's `ImageFolder` gives the val folders and timm's `imagenet_synsets.txt` lists,
//! the order ImageNet-V2 numbers its folders in (a unit test below pins that the list is sorted).
//! A folder whose name is not an index 0..999 is an error naming it: it means the tree is not
//! in that layout (a wnid tree, say), and counting its images as failed would hide that.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use shiftbench_model_config::{is_wnid, IMAGENET1K};

use crate::data::sample::Sample;

/// What an ImageFolder tree's folder names are (`folder_labels:`).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum FolderLabels {
    /// The folder's name is the wnid (`val/n01440764/...`).
    #[default]
    #[serde(rename = "wnid")]
    Wnid,
    /// The folder's name is an ImageNet-1k class index 0..999 (`0/`, `1/`, ... `999/`): folder
    /// k holds the k-th wnid of the sorted ImageNet-1k list, as ImageNet-V2 ships.
    #[serde(rename = "imagenet1k_index")]
    Imagenet1kIndex,
}

/// The wnid of ImageNet-1k class index `name` (a folder name such as `0` or `999`), or None when
/// it is not a whole number below 1,000.
pub fn imagenet1k_wnid(name: &str) -> Option<&'static str> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let k: usize = name.parse().ok()?;
    IMAGENET1K.lines().map(str::trim).filter(|l| !l.is_empty()).nth(k)
}

/// The samples of an ImageFolder tree: every file (not hidden) in every folder under `root`,
/// labelled by its folder's name (a wnid, or a class index as `labels` says).
pub fn image_folder(root: &Path, labels: FolderLabels) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for entry in std::fs::read_dir(root).with_context(|| format!("cannot list {}", root.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.path().is_dir() || name.starts_with('.') {
            continue;
        }
        let wnid = match labels {
            FolderLabels::Wnid => name.clone(),
            FolderLabels::Imagenet1kIndex => match imagenet1k_wnid(&name) {
                Some(w) => w.to_string(),
                None => bail!(
                    "{}: folder {name:?} is not an ImageNet-1k class index 0..999 (with folder_labels: \
                     imagenet1k_index every folder is named by its class index, as ImageNet-V2 ships; a tree of \
                     wnid folders needs folder_labels: wnid)",
                    root.display()
                ),
            },
        };
        for f in list_files(&entry.path())? {
            samples.push(Sample::file(rel_id(root, &f), f, wnid.clone()));
        }
    }
    Ok(samples)
}

/// The samples of a flat folder, each labelled by the wnid its file name starts with (a file
/// without one gets a label that is no wnid, and is counted as failed).
pub fn flat_files(root: &Path) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for f in list_files(root)? {
        let name = f.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let wnid = wnid_prefix(&name).map(str::to_string).unwrap_or_else(|| format!("<no wnid in {name:?}>"));
        samples.push(Sample::file(rel_id(root, &f), f, wnid));
    }
    Ok(samples)
}

/// The leading wnid of a file name such as `n01440764_tench.JPEG` or `n01440764_10026.JPEG`.
pub fn wnid_prefix(file_name: &str) -> Option<&str> {
    let head = file_name.get(..9)?;
    (is_wnid(head) && !file_name[9..].starts_with(|c: char| c.is_ascii_digit())).then_some(head)
}

pub(crate) fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
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

pub(crate) fn rel_id(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).to_string_lossy().replace('\\', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Class index k is line k of the ImageNet-1k list, which is the 1,000 wnids sorted: the
    /// torchvision/timm class order, which ImageNet-V2's folder numbers follow.
    #[test]
    fn imagenet1k_indices_are_the_sorted_wnids() {
        let list: Vec<&str> = IMAGENET1K.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        assert_eq!(list.len(), 1000);
        assert!(list.windows(2).all(|w| w[0] < w[1]), "IMAGENET1K is not sorted (or has duplicates)");
        assert!(list.iter().all(|w| is_wnid(w)));
        assert_eq!(imagenet1k_wnid("0"), Some("n01440764")); // tench
        assert_eq!(imagenet1k_wnid("1"), Some("n01443537")); // goldfish
        assert_eq!(imagenet1k_wnid("999"), Some("n15075141")); // toilet tissue
        assert_eq!(imagenet1k_wnid("007"), imagenet1k_wnid("7"));
        for bad in ["1000", "-1", "", "n01440764", "1.0", " 1", "+1"] {
            assert_eq!(imagenet1k_wnid(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn index_folders_are_labelled_and_other_names_refused() {
        let d = tempfile::tempdir().unwrap();
        for (dir, f) in [("0", "a.jpeg"), ("999", "b.jpeg"), (".cache", "x.jpeg")] {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
            std::fs::write(d.path().join(dir).join(f), b"x").unwrap();
        }
        let mut s = image_folder(d.path(), FolderLabels::Imagenet1kIndex).unwrap();
        s.sort_by(|a, b| a.id.cmp(&b.id));
        let got: Vec<(&str, &str)> = s.iter().map(|x| (x.id.as_str(), x.wnid.as_str())).collect();
        assert_eq!(got, [("0/a.jpeg", "n01440764"), ("999/b.jpeg", "n15075141")]);
        std::fs::create_dir_all(d.path().join("1000")).unwrap();
        let e = image_folder(d.path(), FolderLabels::Imagenet1kIndex).unwrap_err().to_string();
        assert!(e.contains("folder \"1000\" is not an ImageNet-1k class index 0..999"), "{e}");
        // As wnid folders, the same tree gives labels that are no wnid (counted as failed later).
        assert!(image_folder(d.path(), FolderLabels::Wnid).unwrap().iter().any(|x| x.wnid == "999"));
    }
}
