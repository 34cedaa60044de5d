//! What a result was made from, so that a stored result describes itself: the run (id, time,
//! shiftbench version and git revision, command, threads, batch size, shard), every model (its
//! card, plugin and the sha256 of its plugin library, model YAML and model file) and every suite
//! (its definition, checksum and content digest). Documented in `docs/result-schema.md`.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use shiftbench_plugin::{ModelCard, INTERFACE_VERSION};

use crate::data::suite::Suite;
pub use crate::host::card::PreprocessInfo;
use crate::host::model::ModelRef;
use crate::results::shard::Shard;
use crate::util::digest::{lines_digest, sha256_file, sha256_hex};
use crate::util::safeio;
use crate::util::sysinfo::hostname;
pub use crate::util::sysinfo::rfc3339;

/// The git revision shiftbench was built from (`git rev-parse HEAD` at build time, or the
/// `SHIFTBENCH_GIT_REV` environment variable of the build), if known.
pub fn git_revision() -> Option<&'static str> {
    option_env!("SHIFTBENCH_GIT_REV").filter(|s| !s.is_empty())
}

/// A file that went into a result: its path (as given), size and sha256; `error` says why the
/// checksum is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl FileInfo {
    /// Hashes `path` (streaming; fine for model files of gigabytes).
    pub fn of(path: &Path) -> FileInfo {
        let mut info = FileInfo { path: path.display().to_string(), bytes: None, sha256: None, error: None };
        match sha256_file(path) {
            Ok((bytes, sha)) => {
                info.bytes = Some(bytes);
                info.sha256 = Some(sha);
            }
            Err(e) => info.error = Some(e.to_string()),
        }
        info
    }
}

/// A model card in plain types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardInfo {
    pub name: String,
    /// How many labels (outputs) the model has.
    pub labels: usize,
    /// sha256 over the labels in output order, one per line: the same as the predictions log's
    /// `labels_digest`.
    pub labels_digest: String,
    pub scores: String,
    /// The card's batch limit (0: none).
    pub max_batch: u32,
    pub preprocess: PreprocessInfo,
}

impl CardInfo {
    pub fn of(card: &ModelCard, labels: &[String]) -> CardInfo {
        CardInfo {
            name: card.name.to_string(),
            labels: labels.len(),
            labels_digest: lines_digest(labels.iter().map(String::as_str)),
            scores: card.scores.as_str().into(),
            max_batch: card.max_batch,
            preprocess: PreprocessInfo::of(&card.preprocess),
        }
    }
}

/// One model of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The name results are filed under (the card's name).
    pub name: String,
    /// What `--model` said.
    pub reference: String,
    /// The plugin's own name and version.
    pub plugin: String,
    /// The plugin library, with its checksum.
    pub library: FileInfo,
    /// The model YAML, if the model was given as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<FileInfo>,
    /// The model file the YAML names (`model:`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_file: Option<FileInfo>,
    pub card: CardInfo,
    /// Images per model call actually used (the requested batch capped by the card).
    pub batch: usize,
    /// Copies of the model run side by side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<usize>,
    /// Threads each copy was asked to use (0: the plugin decided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// The model was given as a model file without a model YAML: its card (labels, scores,
    /// preprocessing) was read from the model or assumed (torchvision's defaults).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub card_assumed: bool,
    /// How fast the model went in this run; absent when it scored no image now (a run that only
    /// resumed finished logs, a model that could not be loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<Speed>,
    /// The model YAML's `tags:` (`pretraining: in22k`, `family: vit`): what `plot --group-by`
    /// groups by; absent when none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// How fast a model went in a run, over the images it scored in this run (a resumed run counts
/// only what it scored now), on every suite together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Speed {
    /// Images given to the model in this run (samples that failed before the model, unreadable
    /// images, are not counted).
    pub images: u64,
    /// Wall time, in seconds, of the passes over the suites in which the model scored images:
    /// reading, decoding, preprocessing and every model of the pass (the models of a run share
    /// its passes and take turns at each chunk).
    pub seconds: f64,
    /// Wall time, in seconds, inside the model's calls (the wall time of each batch's call, less
    /// the harness's normalisation of the crops into its input), summed over its copies.
    pub model_seconds: f64,
    /// `images / seconds`: the throughput of the run for this model, end to end. With several
    /// models in a run it is shared: each model's images over the same passes.
    pub images_per_second: f64,
    /// `model_seconds / images`, in milliseconds: the model's own cost per image (with a worker
    /// process, its round trip included). Copies run side by side, so with `replicas` > 1 this is
    /// the cost on one copy, above the wall time per image.
    pub model_ms_per_image: f64,
}

impl Speed {
    /// The speed of `images` scored in `seconds` of passes, `model_seconds` of them in the model;
    /// `None` for no image.
    pub fn new(images: u64, seconds: f64, model_seconds: f64) -> Option<Speed> {
        if images == 0 {
            return None;
        }
        let (seconds, model_seconds) = (seconds.max(1e-9), model_seconds.max(1e-9));
        Some(Speed {
            images,
            seconds: significant(seconds),
            model_seconds: significant(model_seconds),
            images_per_second: significant(images as f64 / seconds),
            model_ms_per_image: significant(model_seconds * 1000.0 / images as f64),
        })
    }

    /// Several runs' speeds as one (shards merged): images and times summed, so the rates are
    /// those of one machine running them one after the other.
    pub fn sum<'a>(speeds: impl IntoIterator<Item = &'a Speed>) -> Option<Speed> {
        let (mut images, mut seconds, mut model) = (0, 0.0, 0.0);
        for s in speeds {
            (images, seconds, model) = (images + s.images, seconds + s.seconds, model + s.model_seconds);
        }
        Speed::new(images, seconds, model)
    }
}

/// `x` to 5 significant digits (timings carry no more; never rounded to 0).
fn significant(x: f64) -> f64 {
    if !x.is_finite() || x <= 0.0 {
        return x;
    }
    let decimals = (4 - x.log10().floor() as i32).clamp(0, 15);
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

impl ModelInfo {
    /// Describes a loaded model: `model` is what `--model` said, resolved.
    pub fn new(model: &ModelRef, plugin: &str, card: &ModelCard, labels: &[String], batch: usize) -> ModelInfo {
        ModelInfo {
            name: card.name.to_string(),
            reference: model.arg.clone(),
            plugin: plugin.to_string(),
            library: FileInfo::of(&model.library),
            // A model given as a bare file has no YAML of the user's (the one shiftbench wrote for
            // it is gone with the run): `card_assumed` says so instead.
            config: model.config_path().filter(|_| !model.assumed()).map(FileInfo::of),
            model_file: model.model_file().map(FileInfo::of),
            card: CardInfo::of(card, labels),
            batch,
            replicas: None,
            threads: None,
            card_assumed: model.assumed(),
            speed: None,
            tags: model.config.as_ref().map(|c| c.tags.clone()).unwrap_or_default(),
        }
    }
}

/// One suite of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteInfo {
    pub name: String,
    pub path: String,
    /// sha256 of the suite YAML file.
    pub sha256: String,
    /// The suite YAML itself.
    pub definition: String,
    /// sha256 over the suite's sorted (sample id, wnid) list: the same as the predictions log's
    /// `suite_digest`; it changes when samples or labels change.
    pub content_digest: String,
    /// Samples in the suite.
    pub samples: usize,
    /// Samples in this run's shard (when sharded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_in_shard: Option<usize>,
    /// Classes the samples are labelled with.
    pub classes: usize,
    /// `equal` or `frequency`.
    pub weights: String,
    /// Why the YAML file could not be read again for `sha256` and `definition` (then both are
    /// empty); absent when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SuiteInfo {
    /// The suite as loaded, with its YAML file read again (size-capped like any suite YAML).
    pub fn of(suite: &Suite) -> SuiteInfo {
        let (sha256, definition, error) = match safeio::read_bounded(&suite.path, safeio::MAX_YAML_BYTES) {
            Ok(text) => (sha256_hex(&text), String::from_utf8_lossy(&text).into_owned(), None),
            Err(e) => (String::new(), String::new(), Some(e.to_string())),
        };
        SuiteInfo {
            name: suite.name.clone(),
            path: suite.path.display().to_string(),
            sha256,
            definition,
            content_digest: suite.digest.clone(),
            samples: suite.samples.len(),
            samples_in_shard: None,
            classes: suite.class_set().len(),
            weights: suite.weights.describe().into(),
            error,
        }
    }
}

/// The run that made a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Unique per run: `<UTC time>-<random hex>`.
    pub id: String,
    /// `run`, `score` or `merge`.
    pub kind: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub shiftbench_version: String,
    /// `git rev-parse HEAD` of the shiftbench build; absent when built outside git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_revision: Option<String>,
    /// The plugin interface version this shiftbench speaks.
    pub plugin_interface: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Decode/preprocess threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Requested images per model call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Threads the model was allowed (0: the plugin decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_threads: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// For a merge: the ids of the shard runs merged, and the logs read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_runs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_logs: Vec<String>,
    #[serde(default)]
    pub models: Vec<ModelInfo>,
    #[serde(default)]
    pub suites: Vec<SuiteInfo>,
    /// Other input files (for `score`: the results and labels tables).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<FileInfo>,
}

impl RunInfo {
    /// A run starting now.
    pub fn start(kind: &str) -> RunInfo {
        let now = SystemTime::now();
        let nanos = now.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let host = hostname();
        let salt = sha256_hex(format!("{nanos} {} {}", std::process::id(), host.as_deref().unwrap_or("")).as_bytes());
        let stamp = rfc3339(now).replace(['-', ':'], "");
        RunInfo {
            id: format!("{}-{}", stamp, &salt[..8]),
            kind: kind.into(),
            started_at: rfc3339(now),
            finished_at: None,
            shiftbench_version: env!("CARGO_PKG_VERSION").into(),
            git_revision: git_revision().map(str::to_string),
            plugin_interface: INTERFACE_VERSION.to_string(),
            command: std::env::args().collect(),
            host,
            threads: None,
            batch: None,
            model_threads: None,
            shard: None,
            merged_runs: vec![],
            merged_logs: vec![],
            models: vec![],
            suites: vec![],
            inputs: vec![],
        }
    }

    pub fn finish(&mut self) {
        self.finished_at = Some(rfc3339(SystemTime::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_checksums() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let i = FileInfo::of(&p);
        assert_eq!(i.sha256.as_deref(), Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        assert_eq!(i.bytes, Some(3));
        let missing = FileInfo::of(&d.path().join("nope"));
        assert!(missing.sha256.is_none() && missing.error.is_some());
    }

    /// The suite YAML is read again for its checksum and text; when it cannot be (gone since the
    /// suite was loaded, or larger than a suite YAML may be), the error is recorded instead of
    /// the checksum of nothing.
    #[test]
    fn suite_info_records_why_its_yaml_could_not_be_read() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("img")).unwrap();
        std::fs::write(d.path().join("img/n01440764_1.jpg"), b"x").unwrap();
        let yaml = d.path().join("s.yaml");
        let text = "name: s\nsource:\n  files: img\n";
        std::fs::write(&yaml, text).unwrap();
        let suite = Suite::load(&yaml).unwrap();
        let read = SuiteInfo::of(&suite);
        assert_eq!((read.sha256.as_str(), read.definition.as_str()), (sha256_hex(text.as_bytes()).as_str(), text));
        assert_eq!(read.error, None);
        assert!(serde_json::to_value(&read).unwrap().get("error").is_none(), "no `error` key when it was read");

        std::fs::remove_file(&yaml).unwrap();
        let gone = SuiteInfo::of(&suite);
        assert_eq!((gone.sha256.as_str(), gone.definition.as_str()), ("", ""));
        assert!(gone.error.as_deref().is_some_and(|e| e.contains("No such file")), "{:?}", gone.error);
        let json = serde_json::to_value(&gone).unwrap();
        assert_eq!(serde_json::from_value::<SuiteInfo>(json).unwrap(), gone, "read back as written");

        std::fs::write(&yaml, vec![b'#'; safeio::MAX_YAML_BYTES as usize + 1]).unwrap();
        let big = SuiteInfo::of(&suite);
        assert!(big.error.as_deref().is_some_and(|e| e.contains("larger than")), "{:?}", big.error);
    }

    #[test]
    fn speeds() {
        assert_eq!(Speed::new(0, 1.0, 1.0), None);
        let s = Speed::new(1000, 2.5, 1.25).unwrap();
        assert_eq!((s.images, s.seconds, s.model_seconds), (1000, 2.5, 1.25));
        assert_eq!((s.images_per_second, s.model_ms_per_image), (400.0, 1.25));
        // Rounded to 5 significant digits, never to 0.
        let t = Speed::new(3, 7.0, 0.000_012_345_678).unwrap();
        assert_eq!((t.images_per_second, t.model_ms_per_image), (0.42857, 0.0041152));
        assert_eq!(t.model_seconds, 0.000_012_346);
        // Shards: summed.
        let both = Speed::sum([&s, &Speed::new(1000, 7.5, 0.75).unwrap()]).unwrap();
        assert_eq!(
            (both.images, both.seconds, both.images_per_second, both.model_ms_per_image),
            (2000, 10.0, 200.0, 1.0)
        );
        assert_eq!(Speed::sum([]), None);
        // Absent from the JSON when None, and read back when there.
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["images_per_second"], 400.0);
        assert_eq!(serde_json::from_value::<Speed>(json).unwrap(), s);
    }

    #[test]
    fn ids_are_unique() {
        let (a, b) = (RunInfo::start("run"), RunInfo::start("run"));
        assert_ne!(a.id, b.id);
        assert!(a.id.starts_with(&a.started_at[..4]));
    }
}
