//! The images img2dataset fetched, indexed without unpacking anything.
//!
//! img2dataset writes, per shard, either a WebDataset tar (`00000.tar` holding
//! `000000000.jpg`, `000000000.json`, `000000000.txt`, ...) or a folder (`00000/` holding the same
//! files), plus `00000.parquet` listing every row it tried (`url`, `key`, `status`, ...). The
//! `.json` beside each image carries its `url`, `caption`, `key` and `status`.
//!
//! The index walks every shard once: for tar shards it reads only the member headers (seeking
//! over the data) and the small `.json` members, and records each image's offset and length, so
//! the pipeline later reads exactly one image's bytes at a time and memory holds only keys,
//! URLs and offsets. A shard whose images carry no `.json` is matched through its `.parquet`.
//! A damaged shard (a tar cut short by a crashed download) keeps what could be indexed and is
//! reported in [`ImageIndex::warnings`]; its lost images show up as missing samples.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::data::sample::ImageRef;
use crate::data::table::for_each_row;

/// Extensions img2dataset writes images with.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp"];
/// Largest `.json` sidecar read.
const MAX_JSON: u64 = 1 << 20;

/// Every image under an img2dataset output folder.
#[derive(Debug, Default)]
pub struct ImageIndex {
    /// Image by key (the file-name stem, img2dataset's `key`).
    pub images: HashMap<String, ImageRef>,
    /// Key by URL, from the `.json` sidecars or the shard `.parquet` files.
    pub urls: HashMap<String, String>,
    /// Shards indexed (tar files and folders).
    pub shards: usize,
    /// Problems met while indexing (damaged shards, duplicate keys), one sentence each.
    pub warnings: Vec<String>,
}

/// The WebDataset key and extension of a member or file name: `a/b/000000001.jpg` ->
/// (`000000001`, `jpg`); the key is everything before the first dot of the base name.
pub fn split_key(name: &str) -> Option<(&str, &str)> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let (k, e) = base.split_once('.')?;
    (!k.is_empty()).then_some((k, e))
}

#[derive(serde::Deserialize)]
struct Sidecar {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    key: Option<String>,
}

impl ImageIndex {
    fn add_image(&mut self, key: &str, r: ImageRef) {
        if self.images.contains_key(key) {
            self.warnings
                .push(format!("image key {key} appears twice; using the first ({})", self.images[key].describe()));
        } else {
            self.images.insert(key.to_string(), r);
        }
    }

    fn add_sidecar(&mut self, file_key: &str, text: &[u8]) {
        if let Ok(s) = serde_json::from_slice::<Sidecar>(text) {
            if let Some(url) = s.url {
                self.urls.entry(url).or_insert_with(|| s.key.unwrap_or_else(|| file_key.to_string()));
            }
        }
    }

    /// Indexes `root`: an img2dataset output folder (tar shards and/or shard folders), a single
    /// `.tar` file, or a folder of images.
    pub fn build(root: &Path) -> Result<ImageIndex> {
        let mut ix = ImageIndex::default();
        if root.is_file() {
            ix.index_tar(root)?;
            return Ok(ix);
        }
        if !root.is_dir() {
            bail!("image folder {} does not exist", root.display());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(root)
            .with_context(|| format!("cannot list {}", root.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !p.file_name().unwrap_or_default().to_string_lossy().starts_with('.'))
            .collect();
        entries.sort();
        let mut loose = Vec::new();
        for p in entries {
            let ext = p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
            if p.is_dir() {
                ix.index_folder(&p)?;
            } else if ext.as_deref() == Some("tar") {
                ix.index_tar(&p)?;
            } else {
                loose.push(p);
            }
        }
        if !loose.is_empty() {
            ix.index_files(&loose, root);
        }
        Ok(ix)
    }

    fn index_tar(&mut self, tar_path: &Path) -> Result<()> {
        self.shards += 1;
        let f = File::open(tar_path).with_context(|| format!("cannot open {}", tar_path.display()))?;
        let file_len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cut_short = false;
        let archive = Arc::new(tar_path.to_path_buf());
        let mut ar = tar::Archive::new(f);
        let mut images_without_url = Vec::new();
        let mut sidecar_keys = std::collections::HashSet::new();
        let entries = match ar.entries_with_seek() {
            Ok(e) => e,
            Err(e) => {
                self.warnings.push(format!("{} is not a readable tar archive: {e}", tar_path.display()));
                return Ok(());
            }
        };
        for entry in entries {
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.warnings
                        .push(format!("{} is damaged ({e}); images after that point are missing", tar_path.display()));
                    break;
                }
            };
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = match entry.path() {
                Ok(p) => p.to_string_lossy().into_owned(),
                Err(_) => continue,
            };
            let Some((key, ext)) = split_key(&name) else { continue };
            let (key, ext) = (key.to_string(), ext.to_ascii_lowercase());
            if entry.raw_file_position().saturating_add(entry.size()) > file_len {
                cut_short = true;
                break;
            }
            if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
                let r = ImageRef::Member {
                    archive: archive.clone(),
                    name: name.clone(),
                    offset: entry.raw_file_position(),
                    len: entry.size(),
                };
                self.add_image(&key, r);
                images_without_url.push(key);
            } else if ext == "json" && entry.size() <= MAX_JSON {
                let mut text = Vec::with_capacity(entry.size() as usize);
                if entry.read_to_end(&mut text).is_ok() {
                    self.add_sidecar(&key, &text);
                    sidecar_keys.insert(key);
                }
            }
        }
        if cut_short {
            self.warnings.push(format!("{} is cut short; the images after that point are missing", tar_path.display()));
        }
        images_without_url.retain(|k| !sidecar_keys.contains(k));
        if !images_without_url.is_empty() {
            self.read_shard_parquet(&tar_path.with_extension("parquet"));
        }
        Ok(())
    }

    fn index_folder(&mut self, dir: &Path) -> Result<()> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        self.shards += 1;
        let without = self.index_files(&files, dir);
        if without > 0 {
            let pq = dir.with_extension("parquet");
            self.read_shard_parquet(&pq);
        }
        Ok(())
    }

    /// Indexes loose files; returns how many images had no `.json` sidecar.
    fn index_files(&mut self, files: &[PathBuf], _dir: &Path) -> usize {
        let mut with_json = std::collections::HashSet::new();
        let mut images = Vec::new();
        for p in files {
            let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let Some((key, ext)) = split_key(&name) else { continue };
            let ext = ext.to_ascii_lowercase();
            if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
                self.add_image(key, ImageRef::File(p.clone()));
                images.push(key.to_string());
            } else if ext == "json" {
                if let Ok(text) = crate::util::safeio::read_bounded(p, MAX_JSON) {
                    self.add_sidecar(key, &text);
                    with_json.insert(key.to_string());
                }
            }
        }
        images.iter().filter(|k| !with_json.contains(*k)).count()
    }

    fn read_shard_parquet(&mut self, pq: &Path) {
        if !pq.is_file() {
            return;
        }
        let mut pairs = Vec::new();
        let r = for_each_row(pq, &[Some("key"), Some("url")], |_, c| {
            if let (Some(k), Some(u)) = (c[0].text(), c[1].text()) {
                pairs.push((u, k));
            }
            Ok(())
        });
        match r {
            Ok(()) => {
                for (u, k) in pairs {
                    self.urls.entry(u).or_insert(k);
                }
            }
            Err(e) => self.warnings.push(format!("{}: {e:#}", pq.display())),
        }
    }

    /// The image fetched from `url`, if any.
    pub fn by_url(&self, url: &str) -> Option<&ImageRef> {
        self.images.get(self.urls.get(url)?)
    }

    pub fn by_key(&self, key: &str) -> Option<&ImageRef> {
        self.images.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(b: &mut tar::Builder<Vec<u8>>, name: &str, body: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, body).unwrap();
    }

    #[test]
    fn indexes_tar_members_and_reads_them_in_place() {
        let d = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        add(&mut b, "000000000.jpg", b"first image");
        add(&mut b, "000000000.json", br#"{"url": "http://a/0.jpg", "key": "000000000", "status": "success"}"#);
        add(&mut b, "000000000.txt", b"a caption");
        add(&mut b, "000000001.png", b"second");
        add(&mut b, "000000001.json", br#"{"url": "http://a/1.png", "key": "000000001", "status": "success"}"#);
        let bytes = b.into_inner().unwrap();
        std::fs::write(d.path().join("00000.tar"), &bytes).unwrap();
        // A damaged shard: cut in the middle of its second member.
        let mut b = tar::Builder::new(Vec::new());
        add(&mut b, "000010000.jpg", b"kept");
        add(&mut b, "000010000.json", br#"{"url": "http://b/0.jpg"}"#);
        add(&mut b, "000010001.jpg", &[7u8; 3000]);
        let cut = b.into_inner().unwrap();
        std::fs::write(d.path().join("00001.tar"), &cut[..2048 + 512 + 100]).unwrap();
        // A folder shard.
        std::fs::create_dir(d.path().join("00002")).unwrap();
        std::fs::write(d.path().join("00002/000020000.jpg"), b"from a folder").unwrap();
        std::fs::write(d.path().join("00002/000020000.json"), br#"{"url": "http://c/0.jpg"}"#).unwrap();

        let ix = ImageIndex::build(d.path()).unwrap();
        assert_eq!(ix.shards, 3);
        assert_eq!(ix.by_url("http://a/0.jpg").unwrap().read().unwrap(), b"first image");
        assert_eq!(ix.by_url("http://a/1.png").unwrap().read().unwrap(), b"second");
        assert_eq!(ix.by_key("000010000").unwrap().read().unwrap(), b"kept");
        assert_eq!(ix.by_url("http://c/0.jpg").unwrap().read().unwrap(), b"from a folder");
        assert!(ix.by_url("http://nowhere").is_none());
        // The cut member is not indexed (its sample will count as missing); the shard is reported.
        assert!(ix.by_key("000010001").is_none());
        assert!(ix.warnings.iter().any(|w| w.contains("00001.tar")), "{:?}", ix.warnings);
        assert_eq!(split_key("./x/000000001.jpg"), Some(("000000001", "jpg")));
    }
}
