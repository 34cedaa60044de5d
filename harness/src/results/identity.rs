//! A log's identity: everything that decides the predictions (or embeddings) in it, as named
//! values, so that a log is resumed, merged or re-scored only under the model, card and settings
//! that wrote it, and so that a refusal can say *what* changed (`channel_order rgb -> bgr`).
//!
//! The names, and what each one is:
//!
//! | name | value |
//! |---|---|
//! | `plugin` | the plugin's own name and version (`onnx 0.1.0`) |
//! | `model file` | sha256 of the model file the model YAML names |
//! | `weights <file>` | sha256 of each external-data file an ONNX model names (weights stored beside it) |
//! | `plugin library` | sha256 of the plugin library, for a model without a model file (its code is the model) |
//! | `resize`, `crop`, `interpolation`, `channel_order`, `layout`, `scale`, `mean`, `std` | the card's preprocessing |
//! | `scores` | probabilities or logits |
//! | `labels` | how many labels, and the sha256 of the list in output order |
//! | `input`, `output` | the model YAML's tensor names, when set |
//! | `option <key>` | each `options:` entry of the model YAML but `threads` and `spinning` (which change speed, not results) |
//! | `argmax` | `--argmax` (a run's logs) |
//! | `embedding` | the embedding tensor or method (embeddings logs) |
//! | `python code`, `python factory`, `python args`, `python env`, `python device`, `python embedding` | a Python model's YAML keys (`module` and its file when found; its `.py` file's digest is the `model file`) |
//! | `python arg <key>` | sha256 of each file a Python model's `args:` value names (a folder: its path) |
//! | `python sources` | a digest of every `.py` file under the model code's folder (a `python:` file's folder, or a `module:`'s YAML folder): the helpers and local packages the code imports |
//!
//! The suite's content digest and the digest of the labels predictions are taken over stay in
//! the log header's own fields; each sample's image is fingerprinted in its record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shiftbench_model_config::{PythonConfig, PythonSource};

use crate::host::model::ModelRef;
use crate::results::provenance::{CardInfo, FileInfo, ModelInfo};

/// Options of a model YAML that change how fast a model runs, not what it answers.
const SPEED_OPTIONS: &[&str] = &["threads", "spinning"];

/// Largest ONNX model read whole to find its external-data files: protobuf's limit for one
/// message (a larger model keeps its weights outside, which is what this looks for).
const MAX_ONNX_BYTES: u64 = 2 << 30;

/// The identity of a log: named values (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Identity(pub BTreeMap<String, String>);

impl Identity {
    /// The identity of a loaded model: its files' digests, plugin, card and model YAML settings.
    pub fn of_model(info: &ModelInfo, model: &ModelRef) -> Identity {
        let mut id = Identity::default();
        id.set("plugin", &info.plugin);
        match &info.model_file {
            Some(f) => {
                id.set("model file", &file_digest(f));
                for w in external_weights(Path::new(&f.path)) {
                    let name = w.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    id.set(&format!("weights {name}"), &file_digest(&FileInfo::of(&w)));
                }
            }
            None => id.set("plugin library", &file_digest(&info.library)),
        }
        id.0.extend(Identity::of_card(&info.card).0);
        if let Some(cfg) = &model.config {
            if let Some(i) = &cfg.input {
                id.set("input", i);
            }
            if let Some(o) = &cfg.output {
                id.set("output", o);
            }
            for (k, v) in cfg.options.iter().filter(|(k, _)| !SPEED_OPTIONS.contains(&k.as_str())) {
                let v = serde_yaml::to_string(v).map(|s| s.trim_end().to_string()).unwrap_or_default();
                id.set(&format!("option {k}"), &v);
            }
            if let Some(p) = &cfg.python {
                id.0.extend(Identity::of_python(p, cfg.embedding.as_deref()).0);
            }
        }
        id
    }

    /// The part of a Python model's identity its YAML's Python keys decide (its code file's
    /// digest is the `model file`): the module (when its file was not found), the factory and
    /// its arguments, the environment, the device, the embedding, and the digest of every file
    /// an argument names (a folder is named, its files not read).
    pub fn of_python(p: &PythonConfig, embedding: Option<&str>) -> Identity {
        let mut id = Identity::default();
        match &p.source {
            PythonSource::File(_) => id.set("python code", "file"),
            PythonSource::Module(m) => {
                let found = p.code_file().map_or(" (its file not found: not hashed)".to_string(), |_| String::new());
                id.set("python code", &format!("module {m}{found}"));
            }
        }
        id.set("python factory", &p.factory);
        id.set("python args", &serde_json::to_string(&p.args).unwrap_or_else(|e| format!("unreadable ({e})")));
        let env =
            p.env_dir().map_or("(none)".to_string(), |e| std::path::absolute(&e).unwrap_or(e).display().to_string());
        id.set("python env", &env);
        id.set("python device", &p.device);
        id.set("python embedding", embedding.unwrap_or("(none)"));
        let root = match &p.source {
            PythonSource::File(f) => f.parent().map(Path::to_path_buf),
            PythonSource::Module(_) => Some(p.base.clone()),
        };
        if let Some(root) = root {
            id.set("python sources", &python_sources(&root));
        }
        for (at, path) in p.arg_paths() {
            let value = if path.is_dir() {
                format!("folder {} (its files are not hashed)", path.display())
            } else {
                file_digest(&FileInfo::of(&path))
            };
            id.set(&format!("python arg {at}"), &value);
        }
        id
    }

    /// The part of an identity a card decides: preprocessing, scores and labels.
    pub fn of_card(card: &CardInfo) -> Identity {
        let mut id = Identity::default();
        let p = &card.preprocess;
        id.set("resize", &p.resize.to_string());
        id.set("crop", &p.crop.to_string());
        id.set("interpolation", &p.interpolation);
        id.set("channel_order", &p.channel_order);
        id.set("layout", &p.layout);
        id.set("scale", &p.scale.to_string());
        id.set("mean", &format!("{:?}", p.mean));
        id.set("std", &format!("{:?}", p.std));
        id.set("scores", &card.scores);
        id.set("labels", &format!("{} ({})", card.labels, card.labels_digest));
        id
    }

    /// Sets `name` to `value`.
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_string(), value.to_string());
    }

    /// This identity with `name` set to `value`.
    pub fn with(mut self, name: &str, value: &str) -> Identity {
        self.set(name, value);
        self
    }

    /// This identity without `name` (to compare the model part of logs of several suites, say).
    pub fn without(&self, name: &str) -> Identity {
        let mut id = self.clone();
        id.0.remove(name);
        id
    }

    /// What differs from `old` to `self`, one item per name: `channel_order rgb -> bgr`; digests
    /// shortened to 12 characters.
    pub fn changes_from(&self, old: &Identity) -> Vec<String> {
        let mut names: Vec<&String> = old.0.keys().chain(self.0.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|n| {
                let (a, b) = (old.0.get(n), self.0.get(n));
                (a != b).then(|| format!("{n} {} -> {}", shown(a), shown(b)))
            })
            .collect()
    }
}

/// What changed between two optional identities (a log written before identities were recorded
/// has none).
pub fn identity_changes(old: Option<&Identity>, new: Option<&Identity>) -> Vec<String> {
    match (old, new) {
        (Some(a), Some(b)) => b.changes_from(a),
        (None, None) => Vec::new(),
        (None, Some(_)) => vec!["the older log does not record which model file and card made it".into()],
        (Some(_), None) => vec!["the newer log does not record which model file and card made it".into()],
    }
}

/// A value for a message: digests cut to 12 characters, absent as `(none)`.
fn shown(v: Option<&String>) -> String {
    match v {
        None => "(none)".into(),
        Some(v) => short_digests(v),
    }
}

/// `v` with every run of 40 or more hex digits cut to its first 12.
pub fn short_digests(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 40 {
            out.push_str(&run[..12]);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in v.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The most `.py` files [`python_sources`] reads, and how deep it goes.
const MAX_SOURCES: usize = 5000;
const MAX_SOURCE_DEPTH: usize = 8;

/// A digest of every `.py` file under `root` (relative path and sha256 of each, in path order),
/// so that editing a helper module the model's code imports starts its log over. Hidden folders,
/// `__pycache__`, `site-packages` and virtual environments (a folder holding `pyvenv.cfg`) are
/// not entered; at most [`MAX_SOURCES`] files, [`MAX_SOURCE_DEPTH`] folders deep.
fn python_sources(root: &Path) -> String {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        if depth > MAX_SOURCE_DEPTH || out.len() >= MAX_SOURCES || dir.join("pyvenv.cfg").exists() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.starts_with('.') || name == "__pycache__" || name == "site-packages" || name == "node_modules" {
                continue;
            }
            if p.is_dir() {
                walk(&p, depth + 1, out);
            } else if name.ends_with(".py") && out.len() < MAX_SOURCES {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(root, 0, &mut files);
    let lines: Vec<String> = files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(root).unwrap_or(f).display().to_string();
            let digest = crate::util::digest::sha256_file(f).map_or_else(|e| format!("unreadable ({e})"), |(_, d)| d);
            format!("{rel}\t{digest}")
        })
        .collect();
    let capped = if files.len() >= MAX_SOURCES { format!(" (the first {MAX_SOURCES})") } else { String::new() };
    format!(
        "{} .py files{capped} under {} ({})",
        files.len(),
        root.display(),
        &crate::util::digest::lines_digest(lines.iter().map(String::as_str))
    )
}

/// A file's digest, or why it has none (a file that cannot be read never matches a readable one).
fn file_digest(f: &FileInfo) -> String {
    match (&f.sha256, &f.error) {
        (Some(s), _) => s.clone(),
        (None, Some(e)) => format!("unreadable ({e})"),
        (None, None) => "unknown".into(),
    }
}

/// The external-data files an ONNX model names (weights stored beside the model: `location`
/// entries of its tensors), that exist, in name order. Other files: none.
///
/// An ONNX tensor with external data holds `StringStringEntryProto { key: "location", value }`,
/// which protobuf lays out as the bytes `0x0a 0x08 "location" 0x12 <varint length> <value>`: this
/// looks for that pattern rather than parsing the whole graph (the core links no ONNX reader).
pub fn external_weights(model: &Path) -> Vec<PathBuf> {
    let is_onnx = model.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    // Mapped, not read into memory: a model of gigabytes costs no copy (its sha256 was just
    // streamed over the same pages, so they are in the page cache).
    let Some(bytes) = is_onnx.then(|| map_model(model)).flatten() else {
        return Vec::new();
    };
    let dir = model.parent().unwrap_or(Path::new("."));
    let mut found: Vec<PathBuf> = locations(&bytes)
        .into_iter()
        .filter(|l| !l.is_empty() && !l.contains("..") && !Path::new(l).is_absolute())
        .map(|l| dir.join(l))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The model file mapped read-only, if it is one of at most [`MAX_ONNX_BYTES`].
fn map_model(model: &Path) -> Option<memmap2::Mmap> {
    let f = std::fs::File::open(model).ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_ONNX_BYTES {
        return None;
    }
    // SAFETY: the map is only read, as plain bytes with no invariant to break; shiftbench never
    // writes model files, and another process rewriting it meanwhile can only change which names
    // are found (the model file's digest, taken separately, then differs anyway).
    unsafe { memmap2::Mmap::map(&f) }.ok()
}

/// The values of the `location` entries in `bytes` (see [`external_weights`]).
fn locations(bytes: &[u8]) -> Vec<String> {
    const KEY: &[u8] = b"\x0a\x08location\x12";
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(pos) = bytes[at..].windows(KEY.len()).position(|w| w == KEY) {
        let mut i = at + pos + KEY.len();
        at = i;
        let (mut len, mut shift) = (0usize, 0u32);
        while let Some(&b) = bytes.get(i) {
            i += 1;
            len |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 || shift > 28 {
                break;
            }
        }
        if let Some(v) = bytes.get(i..i.saturating_add(len)) {
            if let Ok(s) = std::str::from_utf8(v) {
                out.push(s.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(pairs: &[(&str, &str)]) -> Identity {
        let mut i = Identity::default();
        for (k, v) in pairs {
            i.set(k, v);
        }
        i
    }

    #[test]
    fn changes_name_each_field_that_differs() {
        let a = id(&[("channel_order", "rgb"), ("crop", "224"), ("argmax", "auto")]);
        let b = id(&[("channel_order", "bgr"), ("crop", "224"), ("option device", "cuda")]);
        assert_eq!(
            b.changes_from(&a),
            vec!["argmax auto -> (none)", "channel_order rgb -> bgr", "option device (none) -> cuda"]
        );
        assert!(a.changes_from(&a).is_empty());
        let sha1 = "a".repeat(64);
        let sha2 = "b".repeat(64);
        let c = id(&[("model file", &sha1)]).changes_from(&id(&[("model file", &sha2)]));
        assert_eq!(c, vec![format!("model file {} -> {}", "b".repeat(12), "a".repeat(12))]);
        assert_eq!(short_digests(&format!("1000 ({sha1})")), format!("1000 ({})", "a".repeat(12)));
        assert_eq!(identity_changes(None, None), Vec::<String>::new());
        assert_eq!(identity_changes(None, Some(&a)).len(), 1);
        assert_eq!(a.without("argmax"), id(&[("channel_order", "rgb"), ("crop", "224")]));
    }

    #[test]
    fn external_data_locations_are_found_in_an_onnx_file() {
        let d = tempfile::tempdir().unwrap();
        // Two tensors naming the same file, one naming a missing one, one trying to leave the folder.
        let mut model = b"\x08\x07junk".to_vec();
        for name in ["w.bin", "w.bin", "gone.bin", "../x.bin"] {
            model.extend_from_slice(b"\x0a\x08location\x12");
            model.push(name.len() as u8);
            model.extend_from_slice(name.as_bytes());
            model.extend_from_slice(b"\x0a\x06offset\x12\x010");
        }
        std::fs::write(d.path().join("m.onnx"), &model).unwrap();
        std::fs::write(d.path().join("w.bin"), b"weights").unwrap();
        std::fs::write(d.path().join("x.bin"), b"weights").unwrap();
        assert_eq!(external_weights(&d.path().join("m.onnx")), vec![d.path().join("w.bin")]);
        assert_eq!(locations(&model), vec!["w.bin", "w.bin", "gone.bin", "../x.bin"]);
        // Not an ONNX file: nothing.
        std::fs::write(d.path().join("m.pt"), &model).unwrap();
        assert!(external_weights(&d.path().join("m.pt")).is_empty());
    }
}
