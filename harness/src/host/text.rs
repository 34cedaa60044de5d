//! Text encoders: what `shiftbench laionet build` embeds captions and class queries with.
//!
//! The seam is [`TextEncoder`]: the builder hands it texts and gets L2-normalised embeddings
//! back, wherever the encoder runs. [`open_text_encoder`] resolves the `--encoder` argument and
//! opens it behind the plugin interface (0.1.3's text encoders, [`crate::host::text_plugin`]), in
//! a worker process ([`crate::host::worker::text_client`]) or in this one as the
//! [`Isolation`] says. `--encoder` is one of:
//!
//! - a folder prepared by `scripts/export-text-encoder.py SRC DIR` (or its `encoder.yaml`): the
//!   plugin its `plugin:` names (default `onnx`) runs it, reading the rest of the file;
//! - a plugin (a bare name such as `example`, or a library's path) offering a built-in encoder.
//!
//! A sentence-transformers or CLIP folder as downloaded is refused with the command that exports
//! it: running its transformer needs ONNX Runtime, which only a plugin links.
//!
//! Whatever the plugin returns is checked here (one row of `dim` finite values per text) and every
//! row L2-normalised as sklearn's `normalize` does: divided by its norm, a row whose norm is below
//! `10 * f32::EPSILON` left as it is.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::model::find_plugin;
use super::text_plugin::{LoadedTextEncoder, TextBackend};
use super::worker::{Isolation, WorkerTextEncoder};
use crate::util::safeio::{read_text_bounded, MAX_YAML_BYTES};

/// An open text encoder.
pub trait TextEncoder: Send {
    /// The encoder's name, as the similarity column names it
    /// (`text_to_name_def_wnid_similarity_<name>`), e.g. `all-mpnet-base-v2`.
    fn name(&self) -> &str;

    /// Values in one embedding.
    fn dim(&self) -> usize;

    /// The embeddings of `texts`: `texts.len() * dim()` values, row-major, each row
    /// L2-normalised (so that a dot product is the cosine similarity).
    fn encode(&mut self, texts: &[&str]) -> Result<Vec<f32>>;
}

/// How to open a text encoder.
#[derive(Debug, Clone, Default)]
pub struct TextEncoderOptions {
    /// Threads the encoder may use (0: the plugin decides).
    pub threads: usize,
    /// In this process, or in a worker process.
    pub isolation: Isolation,
}

/// The name of the file an exported encoder folder is described by.
pub const ENCODER_YAML: &str = "encoder.yaml";

/// The most texts sent to an encoder in one call (fewer when the encoder says so): a bound on
/// what one call may take under the batch timeout (all-mpnet-base-v2 encodes 20-40 texts a
/// second on two busy cores, so 256 long captions stay well inside the default 300 s), and still
/// enough for the plugin's sort by length to cut most padding.
pub const TEXTS_PER_CALL: usize = 256;

/// What `--encoder` names, resolved: the plugin library and the encoder description it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderRef {
    pub library: PathBuf,
    /// The export's `encoder.yaml` (None: the plugin's built-in encoder).
    pub config: Option<PathBuf>,
}

/// The keys of `encoder.yaml` the host reads (the plugin reads the rest).
#[derive(serde::Deserialize)]
struct EncoderYaml {
    #[serde(default)]
    plugin: Option<String>,
}

impl EncoderRef {
    /// Resolves `--encoder`; every failure is one sentence.
    pub fn resolve(arg: &str) -> Result<EncoderRef> {
        let p = Path::new(arg);
        if p.is_dir() {
            let yaml = p.join(ENCODER_YAML);
            if yaml.is_file() {
                return Self::from_yaml(&yaml);
            }
            let looks = |f: &str| p.join(f).is_file();
            if looks("sentence_bert_config.json") || looks("modules.json") || looks("config.json") {
                bail!(
                    "text encoder folder {arg} is a model as downloaded (sentence-transformers or Hugging Face), which \
                     shiftbench cannot run without exporting it to ONNX: run `scripts/export-text-encoder.py {arg} DIR` \
                     (it needs torch and transformers) and give --encoder DIR"
                );
            }
            bail!(
                "text encoder folder {arg} has no {ENCODER_YAML}: give a folder made by `scripts/export-text-encoder.py`, \
                 or a plugin with a built-in encoder (such as `example`)"
            );
        }
        if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            if !p.is_file() {
                bail!("text encoder description {arg} does not exist");
            }
            return Self::from_yaml(p);
        }
        let library = find_plugin(arg, Path::new(".")).with_context(|| {
            format!(
                "--encoder {arg} is neither a folder made by scripts/export-text-encoder.py nor a plugin with a text encoder"
            )
        })?;
        Ok(EncoderRef { library, config: None })
    }

    fn from_yaml(yaml: &Path) -> Result<EncoderRef> {
        let text =
            read_text_bounded(yaml, MAX_YAML_BYTES).map_err(|e| anyhow!("cannot read {}: {e}", yaml.display()))?;
        let parsed: EncoderYaml = serde_yaml::from_str(&text)
            .map_err(|e| anyhow!("{} is not a valid encoder description: {e}", yaml.display()))?;
        let plugin = parsed.plugin.unwrap_or_else(|| "onnx".to_string());
        let base = yaml.parent().unwrap_or(Path::new("."));
        let library =
            find_plugin(&plugin, base).with_context(|| format!("{} names plugin {plugin:?}", yaml.display()))?;
        Ok(EncoderRef { library, config: Some(yaml.to_path_buf()) })
    }
}

/// Opens the text encoder `arg` names.
pub fn open_text_encoder(arg: &str, options: &TextEncoderOptions) -> Result<Box<dyn TextEncoder>> {
    let r = EncoderRef::resolve(arg)?;
    open_resolved(&r, options)
}

/// Opens a resolved encoder as the options say.
pub fn open_resolved(r: &EncoderRef, options: &TextEncoderOptions) -> Result<Box<dyn TextEncoder>> {
    let threads = u32::try_from(options.threads).unwrap_or(u32::MAX);
    Ok(match &options.isolation {
        Isolation::InProcess => {
            Box::new(Checked::new(LoadedTextEncoder::load(&r.library, r.config.as_deref(), threads)?))
        }
        Isolation::Worker(o) => {
            Box::new(Checked::new(WorkerTextEncoder::spawn(o, &r.library, r.config.as_deref(), threads)?))
        }
    })
}

/// A [`TextBackend`] behind the checks and the normalisation: what [`open_text_encoder`] returns.
pub struct Checked<B: TextBackend> {
    backend: B,
}

impl<B: TextBackend> Checked<B> {
    pub fn new(backend: B) -> Self {
        Checked { backend }
    }
}

impl<B: TextBackend> TextEncoder for Checked<B> {
    fn name(&self) -> &str {
        &self.backend.info().name
    }

    fn dim(&self) -> usize {
        self.backend.info().dim
    }

    fn encode(&mut self, texts: &[&str]) -> Result<Vec<f32>> {
        let info = self.backend.info().clone();
        let per_call = match info.max_batch {
            0 => TEXTS_PER_CALL,
            n => n.min(TEXTS_PER_CALL),
        };
        let mut out = Vec::with_capacity(texts.len() * info.dim);
        for chunk in texts.chunks(per_call) {
            let raw = self.backend.encode_raw(chunk)?;
            if raw.len() != chunk.len() * info.dim {
                bail!(
                    "{} broke the interface: it returned {} values for {} texts of {} values each, expected {}",
                    info.who(),
                    raw.len(),
                    chunk.len(),
                    info.dim,
                    chunk.len() * info.dim
                );
            }
            if let Some(i) = raw.iter().position(|v| !v.is_finite()) {
                let t = i / info.dim;
                bail!("{} returned a value that is not finite ({}) for the text {:?}", info.who(), raw[i], chunk[t]);
            }
            let start = out.len();
            out.extend_from_slice(&raw);
            normalize_rows(&mut out[start..], info.dim);
        }
        Ok(out)
    }
}

/// Divides every row of `dim` values by its L2 norm, as sklearn's `normalize` does: a row whose
/// norm is below `10 * f32::EPSILON` (zero, say) is left as it is. The norm is summed in f64.
pub fn normalize_rows(values: &mut [f32], dim: usize) {
    for row in values.chunks_exact_mut(dim) {
        let norm = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() as f32;
        if norm < 10.0 * f32::EPSILON {
            continue;
        }
        for v in row {
            *v /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::text_plugin::EncoderInfo;

    /// Returns what it is told to: `rows` per call, or fails.
    struct Fake {
        info: EncoderInfo,
        reply: fn(&[&str]) -> Result<Vec<f32>>,
        calls: Vec<usize>,
    }

    impl TextBackend for Fake {
        fn info(&self) -> &EncoderInfo {
            &self.info
        }
        fn encode_raw(&mut self, texts: &[&str]) -> Result<Vec<f32>> {
            self.calls.push(texts.len());
            (self.reply)(texts)
        }
    }

    fn fake(max_batch: usize, reply: fn(&[&str]) -> Result<Vec<f32>>) -> Checked<Fake> {
        let info = EncoderInfo { name: "fake".into(), dim: 2, max_batch, plugin_name: "p 1".into() };
        Checked::new(Fake { info, reply, calls: vec![] })
    }

    #[test]
    fn rows_are_normalised_like_sklearn_and_calls_bounded() {
        let mut e = fake(2, |t| Ok(t.iter().flat_map(|s| [s.len() as f32, 4.0 * (s.len() % 2) as f32]).collect()));
        let out = e.encode(&["abc", "", "abcd", "x", "hello"]).unwrap();
        assert_eq!(e.backend.calls, vec![2, 2, 1]);
        // [3, 4] -> [0.6, 0.8]; [0, 0] stays; [4, 0] -> [1, 0]; [1, 4]; [5, 4].
        let expect = [
            0.6,
            0.8,
            0.0,
            0.0,
            1.0,
            0.0,
            1.0 / 17f32.sqrt(),
            4.0 / 17f32.sqrt(),
            5.0 / 41f32.sqrt(),
            4.0 / 41f32.sqrt(),
        ];
        for (a, b) in out.iter().zip(expect) {
            assert!((a - b).abs() < 1e-7, "{out:?}");
        }
        assert_eq!(e.name(), "fake");
        assert_eq!(e.dim(), 2);
        assert!(e.encode(&[]).unwrap().is_empty());
        let mut big = fake(0, |t| Ok(vec![1.0; 2 * t.len()]));
        big.encode(&vec!["a"; TEXTS_PER_CALL + 1]).unwrap();
        assert_eq!(big.backend.calls, vec![TEXTS_PER_CALL, 1]);
    }

    #[test]
    fn wrong_shapes_and_non_finite_values_are_sentences_naming_the_encoder() {
        let e = fake(0, |t| Ok(vec![1.0; 2 * t.len() + 1])).encode(&["a", "b"]).unwrap_err().to_string();
        assert_eq!(
            e,
            "text encoder fake (plugin p 1) broke the interface: it returned 5 values for 2 texts of 2 values each, expected 4"
        );
        let e = fake(0, |t| Ok(vec![f32::NAN; 2 * t.len()])).encode(&["a"]).unwrap_err().to_string();
        assert_eq!(e, "text encoder fake (plugin p 1) returned a value that is not finite (NaN) for the text \"a\"");
    }

    #[test]
    fn arguments_resolve_or_say_what_to_do() {
        let d = tempfile::tempdir().unwrap();
        let st = d.path().join("all-mpnet-base-v2");
        std::fs::create_dir(&st).unwrap();
        std::fs::write(st.join("sentence_bert_config.json"), "{}").unwrap();
        let e = EncoderRef::resolve(st.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("scripts/export-text-encoder.py") && e.contains("all-mpnet-base-v2"), "{e}");
        let empty = d.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let e = EncoderRef::resolve(empty.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("has no encoder.yaml"), "{e}");
        let bad = d.path().join("bad");
        std::fs::create_dir(&bad).unwrap();
        std::fs::write(bad.join(ENCODER_YAML), "plugin: [").unwrap();
        let e = EncoderRef::resolve(bad.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("is not a valid encoder description"), "{e}");
        let e = format!("{:#}", EncoderRef::resolve("no-such-encoder").unwrap_err());
        assert!(e.contains("neither a folder") && e.contains("no plugin named \"no-such-encoder\""), "{e}");
    }
}
