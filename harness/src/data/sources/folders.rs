//! Folder layouts: ImageFolder (`<root>/<wnid>/<image>`) and a flat folder whose file names
//! start with the wnid (`n01440764_tench.JPEG`). A sample's id is its path relative to the root.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use shiftbench_model_config::is_wnid;

use crate::data::sample::Sample;

/// The samples of an ImageFolder tree: every file (not hidden) in every folder under `root`,
/// labelled by its folder's name.
pub fn image_folder(root: &Path) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for entry in std::fs::read_dir(root).with_context(|| format!("cannot list {}", root.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.path().is_dir() || name.starts_with('.') {
            continue;
        }
        for f in list_files(&entry.path())? {
            samples.push(Sample::file(rel_id(root, &f), f, name.clone()));
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
