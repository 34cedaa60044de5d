//! The ONNX plugin's text encoder (interface 0.1.3): a folder made by
//! `scripts/export-text-encoder.py`, described by its `encoder.yaml`:
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `name` | the encoder's name (`all-mpnet-base-v2`) | required |
//! | `model` | the ONNX graph, relative to the YAML: `input_ids` and `attention_mask` (int64, `[batch, sequence]`) in, `embedding` (`[batch, dim]`) out, pooling and projection inside | required |
//! | `tokenizer` | the model's `tokenizer.json`, read by the `tokenizers` crate | required |
//! | `max_seq_length` | tokens per text, special tokens included; longer texts are truncated | required |
//! | `pad_id` | the id padding positions get (their attention mask is 0) | 0 |
//! | `lowercase` | lowercase texts before tokenizing (sentence-transformers' `do_lower_case`) | false |
//! | `dim` | values per embedding, checked against the graph | from the graph |
//! | `batch_size` | texts per ONNX Runtime run | 32 |
//! | `threads` | intra-op threads; the request's wins when non-zero | ONNX Runtime's |
//! | `ort_library` | the ONNX Runtime library, relative to the YAML | as for models ([`crate::runtime`]) |
//!
//! Other keys (`kind`, `pooling`, `normalize`, `source`, ...) say what the export did; the plugin
//! does not need them. Tokenizing happens here, in Rust: each text truncated to `max_seq_length`
//! tokens; within one call the texts are sorted by token count, run `batch_size` at a time, each
//! run padded to its longest text, and the rows put back in the caller's order.

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::{TensorElementType, TensorRef};
use shiftbench_plugin::{TextEncoder, TextEncoderInfo, TextLoadRequest};
use tokenizers::{Tokenizer, TruncationParams};

use crate::runtime;
use crate::session::{build_session, Source};
use crate::settings::{Device, Settings};
use crate::tensors::extract;

/// Keys `encoder.yaml` may hold.
const KNOWN_KEYS: &[&str] = &[
    "plugin",
    "name",
    "kind",
    "model",
    "tokenizer",
    "max_seq_length",
    "pad_id",
    "lowercase",
    "dim",
    "batch_size",
    "threads",
    "ort_library",
    "pooling",
    "normalize",
    "source",
    "exported",
    "exported_with",
    "check_max_abs_diff",
];

/// The graph's input and output names.
const INPUT_IDS: &str = "input_ids";
const ATTENTION_MASK: &str = "attention_mask";
const OUTPUT: &str = "embedding";

/// A loaded ONNX text encoder.
pub struct OnnxTextEncoder {
    session: Session,
    tokenizer: Tokenizer,
    name: String,
    dim: usize,
    pad_id: i64,
    lowercase: bool,
    batch_size: usize,
    output_elem: TensorElementType,
}

/// `encoder.yaml`, read and checked.
struct EncoderYaml {
    path: PathBuf,
    map: serde_yaml::Mapping,
}

impl EncoderYaml {
    fn load(path: &Path) -> Result<EncoderYaml, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let value: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| format!("{} is not valid YAML: {e}", path.display()))?;
        let serde_yaml::Value::Mapping(map) = value else {
            return Err(format!("{} must be a mapping of keys (name:, model:, tokenizer:, ...)", path.display()));
        };
        for k in map.keys() {
            let k = k.as_str().unwrap_or("?");
            if !KNOWN_KEYS.contains(&k) {
                return Err(format!(
                    "{}: {k} is not a text encoder key; known keys: {}",
                    path.display(),
                    KNOWN_KEYS.join(", ")
                ));
            }
        }
        Ok(EncoderYaml { path: path.to_path_buf(), map })
    }

    fn get(&self, key: &str) -> Option<&serde_yaml::Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn str(&self, key: &str) -> Result<Option<&str>, String> {
        self.get(key)
            .map(|v| v.as_str().ok_or_else(|| format!("{}: {key} must be a string", self.path.display())))
            .transpose()
    }

    fn required_str(&self, key: &str) -> Result<&str, String> {
        self.str(key)?.ok_or_else(|| format!("{} has no {key}:", self.path.display()))
    }

    fn count(&self, key: &str) -> Result<Option<u64>, String> {
        self.get(key)
            .map(|v| v.as_u64().ok_or_else(|| format!("{}: {key} must be a whole number", self.path.display())))
            .transpose()
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        self.get(key)
            .map(|v| v.as_bool().ok_or_else(|| format!("{}: {key} must be true or false", self.path.display())))
            .transpose()
    }

    /// A file the YAML names, relative to its folder; a sentence naming it when it is missing.
    fn file(&self, key: &str) -> Result<PathBuf, String> {
        let rel = self.required_str(key)?;
        let p = self.path.parent().unwrap_or(Path::new(".")).join(rel);
        if !p.is_file() {
            return Err(format!(
                "text encoder folder {}: {rel} (its {key}:) does not exist; export the encoder again with scripts/export-text-encoder.py",
                self.path.parent().unwrap_or(Path::new(".")).display()
            ));
        }
        Ok(p)
    }
}

impl TextEncoder for OnnxTextEncoder {
    fn load(request: &TextLoadRequest) -> Result<Self, String> {
        if request.config_path.is_empty() {
            return Err("the ONNX plugin has no built-in text encoder: give --encoder a folder made by scripts/export-text-encoder.py".into());
        }
        let y = EncoderYaml::load(Path::new(request.config_path.as_str()))?;
        let yaml = y.path.display().to_string();
        let name = y.required_str("name")?.to_string();
        let model = y.file("model")?;
        let tokenizer_path = y.file("tokenizer")?;
        let max_seq_length = y.count("max_seq_length")?.ok_or_else(|| format!("{yaml} has no max_seq_length:"))?;
        if !(2..=1 << 20).contains(&max_seq_length) {
            return Err(format!("{yaml}: max_seq_length {max_seq_length} is not a usable number of tokens"));
        }
        let pad_id = y.count("pad_id")?.unwrap_or(0) as i64;
        let lowercase = y.bool("lowercase")?.unwrap_or(false);
        let batch_size = y.count("batch_size")?.unwrap_or(32).clamp(1, 4096) as usize;
        let yaml_threads = y.count("threads")?.unwrap_or(0) as usize;

        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| format!("cannot read the tokenizer {}: {e}", tokenizer_path.display()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_seq_length as usize, ..Default::default() }))
            .map_err(|e| format!("{}: cannot truncate to {max_seq_length} tokens: {e}", tokenizer_path.display()))?;

        let settings = Settings {
            threads: if request.threads > 0 { request.threads as usize } else { yaml_threads },
            optimization: ort::session::builder::GraphOptimizationLevel::All,
            device: Device::Cpu,
            spinning: None,
            ort_library: y.str("ort_library")?.map(str::to_string),
        };
        let choice = runtime::choose_library(
            settings.ort_library.as_deref(),
            &y.path,
            std::env::var_os("ORT_DYLIB_PATH"),
            runtime::default_library_path(),
        )?;
        let env = runtime::environment(&choice)?;
        let (session, _) = build_session(&env, &settings, &Source::File(&model), &model, &y.path)?;
        for input in [INPUT_IDS, ATTENTION_MASK] {
            if !session.inputs().iter().any(|i| i.name() == input) {
                return Err(format!(
                    "{}: the graph has no input `{input}` (a text encoder graph takes input_ids and attention_mask); export it with scripts/export-text-encoder.py",
                    model.display()
                ));
            }
        }
        let output_elem = match session.outputs().iter().find(|o| o.name() == OUTPUT).map(|o| o.dtype()) {
            Some(ort::value::ValueType::Tensor { ty, .. }) => *ty,
            _ => {
                return Err(format!(
                    "{}: the graph has no tensor output `{OUTPUT}`; export it with scripts/export-text-encoder.py",
                    model.display()
                ))
            }
        };
        let mut encoder =
            OnnxTextEncoder { session, tokenizer, name, dim: 0, pad_id, lowercase, batch_size, output_elem };
        // The embedding's width, from one run (and checked against `dim:`).
        let probe = encoder.run_sorted(&["shiftbench"]).map_err(|e| format!("{yaml}: a test text failed: {e}"))?;
        let width = probe.len();
        match y.count("dim")? {
            Some(d) if d as usize != width => {
                return Err(format!("{yaml} says dim: {d}, but the graph gives embeddings of {width} values"))
            }
            _ if width == 0 => return Err(format!("{yaml}: the graph gives empty embeddings")),
            _ => encoder.dim = width,
        }
        Ok(encoder)
    }

    fn info(&self) -> TextEncoderInfo {
        TextEncoderInfo { name: self.name.as_str().into(), dim: self.dim as u32, max_batch: 0 }
    }

    fn encode(&mut self, texts: &[&str]) -> Result<Vec<f32>, String> {
        self.run_sorted(texts)
    }
}

impl OnnxTextEncoder {
    /// Token ids of every text (truncated, no padding).
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, String> {
        let encoded = if self.lowercase {
            let lower: Vec<String> = texts.iter().map(|t| t.to_lowercase()).collect();
            self.tokenizer.encode_batch(lower, true)
        } else {
            self.tokenizer.encode_batch(texts.to_vec(), true)
        }
        .map_err(|e| format!("cannot tokenize: {e}"))?;
        Ok(encoded.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// The embeddings of `texts` in their order: tokenized, sorted by length, run `batch_size`
    /// at a time with each run padded to its longest text.
    fn run_sorted(&mut self, texts: &[&str]) -> Result<Vec<f32>, String> {
        let ids = self.tokenize(texts)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out: Vec<f32> = Vec::new();
        for chunk in order.chunks(self.batch_size) {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
            let emb = self.run(&rows)?;
            let width = emb.len() / chunk.len();
            if out.is_empty() {
                out = vec![0.0; texts.len() * width];
            }
            if self.dim != 0 && width != self.dim || out.len() != texts.len() * width {
                return Err(format!("the graph gave rows of {width} values, not {}", out.len() / texts.len()));
            }
            for (r, &i) in chunk.iter().enumerate() {
                out[i * width..(i + 1) * width].copy_from_slice(&emb[r * width..(r + 1) * width]);
            }
        }
        Ok(out)
    }

    /// One ONNX Runtime run on `rows` of token ids, padded to the longest.
    fn run(&mut self, rows: &[&[u32]]) -> Result<Vec<f32>, String> {
        let b = rows.len();
        let n = rows.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![self.pad_id; b * n];
        let mut mask = vec![0i64; b * n];
        for (r, row) in rows.iter().enumerate() {
            for (j, &t) in row.iter().enumerate() {
                ids[r * n + j] = t as i64;
                mask[r * n + j] = 1;
            }
        }
        let e = |e: ort::Error| e.to_string();
        let ids_t = TensorRef::from_array_view(([b, n], ids.as_slice())).map_err(e)?;
        let mask_t = TensorRef::from_array_view(([b, n], mask.as_slice())).map_err(e)?;
        let outputs = self
            .session
            .run(ort::inputs![INPUT_IDS => ids_t, ATTENTION_MASK => mask_t])
            .map_err(|e| format!("ONNX Runtime failed to run {}: {e}", self.name))?;
        let out = outputs.get(OUTPUT).ok_or_else(|| format!("ONNX Runtime returned no output `{OUTPUT}`"))?;
        let (shape, values) = extract(out, self.output_elem)?;
        if shape.len() != 2 || shape[0] != b as i64 || values.len() != b * shape[1].max(0) as usize {
            return Err(format!("the graph's output has shape {shape:?} for {b} texts; expected [{b}, dim]"));
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &Path) -> Result<OnnxTextEncoder, String> {
        let yaml = dir.join("encoder.yaml");
        OnnxTextEncoder::load(&TextLoadRequest { config_path: yaml.to_string_lossy().into_owned().into(), threads: 1 })
    }

    #[test]
    fn a_folder_missing_a_file_or_a_key_is_one_sentence_naming_it() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("encoder.yaml"),
            "name: x\nmodel: model.onnx\ntokenizer: tokenizer.json\nmax_seq_length: 8\n",
        )
        .unwrap();
        let e = load(d.path()).err().unwrap();
        assert_eq!(
            e,
            format!(
                "text encoder folder {}: model.onnx (its model:) does not exist; export the encoder again with scripts/export-text-encoder.py",
                d.path().display()
            )
        );
        std::fs::write(d.path().join("model.onnx"), b"not onnx").unwrap();
        let e = load(d.path()).err().unwrap();
        assert!(e.contains("tokenizer.json (its tokenizer:) does not exist"), "{e}");
        std::fs::write(d.path().join("tokenizer.json"), "{").unwrap();
        std::fs::write(d.path().join("encoder.yaml"), "name: x\nmodel: model.onnx\ntokenizer: tokenizer.json\n")
            .unwrap();
        let e = load(d.path()).err().unwrap();
        assert!(e.ends_with("encoder.yaml has no max_seq_length:"), "{e}");
        std::fs::write(d.path().join("encoder.yaml"), "name: x\nmodle: model.onnx\n").unwrap();
        let e = load(d.path()).err().unwrap();
        assert!(e.contains("modle is not a text encoder key"), "{e}");
        std::fs::write(
            d.path().join("encoder.yaml"),
            "name: x\nmodel: model.onnx\ntokenizer: tokenizer.json\nmax_seq_length: 8\n",
        )
        .unwrap();
        let e = load(d.path()).err().unwrap();
        assert!(e.starts_with("cannot read the tokenizer") && e.contains("tokenizer.json"), "{e}");
        let e = OnnxTextEncoder::load(&TextLoadRequest { config_path: "".into(), threads: 0 }).err().unwrap();
        assert!(e.contains("no built-in text encoder"), "{e}");
    }
}
