//! # shiftbench-onnx-plugin: run any ONNX image classifier under shiftbench
//!
//! A generic plugin: one model YAML (schema in `shiftbench-model-config`) names the `.onnx` file,
//! the label list and the preprocessing; everything the model file itself declares is read from
//! it: the input name, its element type (f32, or f16, fed by converting the harness's f32), a
//! fixed or dynamic batch axis, the NCHW/NHWC shape, and the output's shape (`[N, classes]` or
//! `[N, classes, 1, 1]`, flattened per image). A YAML that contradicts the model is refused with
//! both values named.
//!
//! `embedding: <tensor>` names any tensor of the graph (an inner one included) as the model's
//! embedding: [`embedding`] adds it as a graph output of an in-memory copy of the model (with
//! [`graph`], a small protobuf reader and writer), and every run asks the session only for the
//! output it needs, so the scores are unchanged.
//!
//! It also offers a text encoder ([`text`], interface 0.1.3): a folder made by
//! `scripts/export-text-encoder.py` (its `encoder.yaml`), tokenized in Rust with the `tokenizers`
//! crate and run by ONNX Runtime.
//!
//! ONNX Runtime itself is loaded at run time (see [`runtime`]); `scripts/setup-onnxruntime.sh`
//! installs it where the plugin looks by default.
//!
//! This file is the plugin itself (loading a model into an [`OnnxClassifier`], its card, and
//! inference); `settings` reads `options:`, `session` builds the ONNX Runtime session, `tensors`
//! describes and reads a session's tensors (the embedding output included), [`plan`] checks the
//! YAML against what the model declares.
//!
//! Backend options (`options:` in the YAML):
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `threads` | intra-op threads; the harness's `LoadRequest.threads` wins when non-zero | 0 = ONNX Runtime's choice (one per physical core) |
//! | `optimization` | graph optimization level: `disable`, `basic`, `extended`, `layout`, `all` | `all` |
//! | `device` | `cpu`, `cuda` or `cuda:<id>` (CUDA needs the `cuda` feature) | `cuda` with the feature, else `cpu` |
//! | `spinning` | whether idle intra-op threads spin (`true`/`false`) | ONNX Runtime's (true) |
//! | `ort_library` | the ONNX Runtime library to load, relative to the YAML | see [`runtime`] |

use std::path::Path;

use ort::session::{Session, SessionOutputs};
use ort::value::{TensorElementType, TensorRef};
use shiftbench_model_config::{looks_like_probabilities, ModelConfig};
use shiftbench_plugin::{export_plugin, Classifier, LoadRequest, ModelCard, ScoreKind};

pub mod embedding;
pub mod graph;
pub mod plan;
pub mod runtime;
mod session;
mod settings;
mod tensors;
pub mod text;

pub use plan::{Elem, Plan, TensorInfo};
pub use settings::{Device, Settings, KNOWN_OPTIONS};

use session::{build_session, Source};
use tensors::{embedding_output, extract, tensor_info, EmbeddingOutput};

/// Which graph output a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Scores,
    Embedding,
}

/// A loaded ONNX classifier.
pub struct OnnxClassifier {
    session: Session,
    card: ModelCard,
    plan: Plan,
    device: Device,
    /// The model's inputs and outputs as ONNX Runtime reports them (an output the plugin added
    /// for the embedding left out).
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    /// The embedding, when the YAML names one.
    embedding: Option<EmbeddingOutput>,
    /// Reused f16 input buffer.
    f16_buf: Vec<half::f16>,
    /// Reused padding buffer for fixed-batch models called with fewer images.
    pad_buf: Vec<f32>,
}

impl OnnxClassifier {
    /// Loads a model from its YAML file.
    pub fn from_yaml(path: &Path, request_threads: u32) -> Result<OnnxClassifier, String> {
        let cfg = ModelConfig::load(path).map_err(|e| e.to_string())?;
        Self::from_config(&cfg, request_threads)
    }

    /// Loads a model from a parsed model YAML.
    pub fn from_config(cfg: &ModelConfig, request_threads: u32) -> Result<OnnxClassifier, String> {
        let settings = Settings::from_config(cfg, request_threads)?;
        let model_path = cfg.require_model_file().map_err(|e| e.to_string())?;
        // `a/../../shared/x.onnx` reads badly in messages.
        let model_path = std::fs::canonicalize(model_path).unwrap_or_else(|_| model_path.to_path_buf());
        let yaml = cfg.path.display().to_string();
        let model = model_path.display().to_string();

        // The embedding is checked against the graph before ONNX Runtime is even loaded.
        let mut exposure = match &cfg.embedding {
            None => None,
            Some(name) => {
                let bytes = std::fs::read(&model_path).map_err(|e| format!("cannot read the model {model}: {e}"))?;
                let g = graph::Graph::parse(&bytes)
                    .map_err(|e| format!("{yaml}: embedding: cannot read the model {model} as ONNX: {e}"))?;
                Some(embedding::expose(&g, &bytes, name, embedding::Files { yaml: &yaml, model: &model })?)
            }
        };

        let choice = runtime::choose_library(
            settings.ort_library.as_deref(),
            &cfg.path,
            std::env::var_os("ORT_DYLIB_PATH"),
            runtime::default_library_path(),
        )?;
        let env = runtime::environment(&choice)?;

        // The changed copy of the model, when the embedding had to be made a graph output.
        let changed: Option<Vec<u8>> = exposure.as_mut().and_then(|x| x.model.take());
        let folder = model_path.parent().unwrap_or(Path::new("."));
        let source = match changed.as_deref() {
            Some(bytes) => Source::Memory { bytes, folder },
            None => Source::File(&model_path),
        };
        let (session, device) = build_session(&env, &settings, &source, &model_path, &cfg.path)?;
        // An output the plugin added is not one of the model's.
        let added = match (&changed, &exposure) {
            (Some(_), Some(x)) => Some(x.output.as_str()),
            _ => None,
        };

        let inputs: Vec<TensorInfo> = session.inputs().iter().map(|o| tensor_info(o.name(), o.dtype())).collect();
        let outputs: Vec<TensorInfo> = session
            .outputs()
            .iter()
            .filter(|o| Some(o.name()) != added)
            .map(|o| tensor_info(o.name(), o.dtype()))
            .collect();
        let mut wanted = plan::Wanted {
            yaml: &yaml,
            model: &model,
            input: cfg.input.as_deref(),
            output: cfg.output.as_deref(),
            preprocess: &cfg.preprocess,
            labels: cfg.labels.len(),
            batch: cfg.batch,
        };
        // An assumed card: the input size, layout and label list from the model itself.
        let (preprocess, labels) = if cfg.assumed {
            let a = plan::assume(&wanted, &inputs, &outputs)?;
            let (_, labels) =
                shiftbench_model_config::labels_for_width(a.classes).map_err(|e| format!("{model}: {e}"))?;
            (shiftbench_model_config::assumed_preprocess(a.crop, a.layout), labels)
        } else {
            (cfg.preprocess, cfg.labels.clone())
        };
        wanted.preprocess = &preprocess;
        wanted.labels = labels.len();
        let plan = plan::plan(&wanted, &inputs, &outputs)?;
        // ONNX Runtime keeps its own copy of the model.
        drop(changed);
        let embedding = match exposure {
            Some(x) => Some(embedding_output(&session, x, &plan, &yaml, &model)?),
            None => None,
        };

        let card = ModelCard {
            name: cfg.name.as_str().into(),
            labels: labels.iter().map(|l| l.as_str().into()).collect(),
            preprocess,
            max_batch: plan.max_batch,
            scores: cfg.scores,
        };
        let mut model = OnnxClassifier {
            session,
            card,
            plan,
            device,
            inputs,
            outputs,
            embedding,
            f16_buf: Vec::new(),
            pad_buf: Vec::new(),
        };
        if cfg.assumed {
            model.card.scores = model.probe_scores()?;
        }
        if model.embedding.as_ref().is_some_and(|e| e.len == 0) {
            model.probe_embedding_len().map_err(|e| format!("{yaml}: embedding: {e}"))?;
        }
        Ok(model)
    }

    /// Whether the model's scores are probabilities, by two test images (the mean image and a
    /// ramp): each score in [0, 1] and each image's scores summing to 1.
    fn probe_scores(&mut self) -> Result<ScoreKind, String> {
        let n = self.card.preprocess.image_len();
        let ramp: Vec<f32> = (0..n).map(|i| (i % 97) as f32 / 48.0 - 1.0).collect();
        let mut scores = self.infer(&vec![0.0; n], 1).map_err(|e| format!("a test image failed: {e}"))?;
        scores.extend(self.infer(&ramp, 1).map_err(|e| format!("a test image failed: {e}"))?);
        Ok(if looks_like_probabilities(&scores, self.card.labels.len()) {
            ScoreKind::Probabilities
        } else {
            ScoreKind::Logits
        })
    }

    /// The embedding's length when its shape leaves it open: one run on the mean image.
    fn probe_embedding_len(&mut self) -> Result<(), String> {
        let n = self.card.preprocess.image_len();
        let run_batch = self.plan.fixed_batch.unwrap_or(1);
        let (shape, values) = self.run(&vec![0.0; n * run_batch], run_batch, Target::Embedding)?;
        let e = self.embedding.as_mut().expect("an embedding");
        if shape.first().copied() != Some(run_batch as i64) || values.is_empty() || values.len() % run_batch != 0 {
            return Err(format!(
                "`{}` has shape {} for a batch of {run_batch}; an embedding needs one row of values per image",
                e.exposure.tensor,
                plan::fmt_dims(&shape)
            ));
        }
        e.len = values.len() / run_batch;
        Ok(())
    }

    /// How the model is fed and read (for diagnostics and tests).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Where inference runs (after any CUDA fallback).
    pub fn device(&self) -> Device {
        self.device
    }

    /// The graph output read for the embedding (the tensor `embedding:` names, or its
    /// dequantized copy), if the YAML names one.
    pub fn embedding_output(&self) -> Option<&str> {
        self.embedding.as_ref().map(|e| e.exposure.output.as_str())
    }

    /// One session run on `run_batch` images: the shape and values (as f32) of the output
    /// `target` reads.
    fn run(&mut self, input: &[f32], run_batch: usize, target: Target) -> Result<(Vec<i64>, Vec<f32>), String> {
        let [a, b, c] = self.plan.image_dims;
        let shape = [run_batch, a, b, c];
        let name = self.plan.input.as_str();
        // With an embedding the session has an extra output: ask only for the one wanted.
        let options = self.embedding.as_ref().map(|e| match target {
            Target::Scores => &e.scores_only,
            Target::Embedding => &e.embedding_only,
        });
        let session = &mut self.session;
        macro_rules! run_with {
            ($t:expr) => {
                match options {
                    Some(o) => session.run_with_options(ort::inputs![name => $t], o),
                    None => session.run(ort::inputs![name => $t]),
                }
            };
        }
        let outputs: SessionOutputs<'_> = match self.plan.input_elem {
            Elem::F16 => {
                // Whole-slice conversion: F16C vector instructions where the CPU has them.
                use half::slice::HalfFloatSliceExt;
                self.f16_buf.resize(input.len(), half::f16::ZERO);
                self.f16_buf.convert_from_f32_slice(input);
                let t = TensorRef::from_array_view((shape, self.f16_buf.as_slice())).map_err(|e| e.to_string())?;
                run_with!(t)
            }
            _ => {
                let t = TensorRef::from_array_view((shape, input)).map_err(|e| e.to_string())?;
                run_with!(t)
            }
        }
        .map_err(|e| format!("ONNX Runtime failed to run {}: {e}", self.card.name))?;
        let (name, elem) = match (target, &self.embedding) {
            (Target::Embedding, Some(e)) => (e.exposure.output.as_str(), e.elem),
            (Target::Embedding, None) => return Err("this model has no embedding".into()),
            (Target::Scores, _) => (
                self.plan.output.as_str(),
                match self.plan.output_elem {
                    Elem::F16 => TensorElementType::Float16,
                    _ => TensorElementType::Float32,
                },
            ),
        };
        let out = outputs.get(name).ok_or_else(|| format!("ONNX Runtime returned no output `{name}`"))?;
        extract(out, elem)
    }

    /// The scores (or embeddings) of `batch` images, after the checks every call gets; fixed
    /// batches larger than the call are padded with zero images whose rows are dropped.
    fn call(&mut self, what: &str, input: &[f32], batch: usize, target: Target) -> Result<Vec<f32>, String> {
        if batch == 0 {
            return Ok(Vec::new());
        }
        let per_image = self.card.preprocess.image_len();
        if input.len() != batch * per_image {
            return Err(format!(
                "{what} got {} values for {batch} images; expected {} ({per_image} per image)",
                input.len(),
                batch * per_image
            ));
        }
        let max = self.card.max_batch as usize;
        if max > 0 && batch > max {
            return Err(format!("{what} got {batch} images but {} takes at most {max} per call", self.card.name));
        }
        let row = match (target, &self.embedding) {
            (Target::Embedding, Some(e)) => e.len,
            _ => self.plan.classes,
        };
        match self.plan.fixed_batch {
            Some(fixed) if batch < fixed => {
                // A fixed batch larger than this call: pad with zero images, drop their rows.
                let mut buf = std::mem::take(&mut self.pad_buf);
                buf.clear();
                buf.extend_from_slice(input);
                buf.resize(fixed * per_image, 0.0);
                let r = self.run(&buf, fixed, target);
                self.pad_buf = buf;
                let (shape, values) = r?;
                let mut values = self.check_rows(target, fixed, &shape, values)?;
                values.truncate(batch * row);
                Ok(values)
            }
            _ => {
                let (shape, values) = self.run(input, batch, target)?;
                self.check_rows(target, batch, &shape, values)
            }
        }
    }

    /// Checks that a run on `run_batch` images gave one row per image.
    fn check_rows(
        &self,
        target: Target,
        run_batch: usize,
        shape: &[i64],
        values: Vec<f32>,
    ) -> Result<Vec<f32>, String> {
        let (name, row, unit) = match (target, &self.embedding) {
            (Target::Embedding, Some(e)) => (e.exposure.tensor.as_str(), e.len, "embedding values"),
            _ => (self.plan.output.as_str(), self.plan.classes, "scores"),
        };
        if shape.first().copied() != Some(run_batch as i64) || values.len() != run_batch * row {
            let what = if target == Target::Embedding { "embedding" } else { "output" };
            return Err(format!(
                "the model's {what} `{name}` has shape {} for a batch of {run_batch}; expected {run_batch} x {row} {unit}",
                plan::fmt_dims(shape)
            ));
        }
        Ok(values)
    }
}

impl Classifier for OnnxClassifier {
    fn load(request: &LoadRequest) -> Result<Self, String> {
        let path = request.config_path.as_str();
        if path.is_empty() {
            return Err(
                "the ONNX plugin runs models described by a model YAML (plugin: onnx, model: <file>.onnx, ...); name that YAML file instead of the plugin library"
                    .to_string(),
            );
        }
        OnnxClassifier::from_yaml(Path::new(path), request.threads)
    }

    fn card(&self) -> ModelCard {
        self.card.clone()
    }

    fn describe(&self) -> String {
        let list = |v: &[TensorInfo]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
        let p = &self.plan;
        let batch = match p.fixed_batch {
            Some(b) => format!("fixed at {b} (smaller calls are padded)"),
            None => "dynamic".into(),
        };
        let mut s = format!(
            "ONNX model on {}: inputs {}; outputs {}\nfeeds `{}` as {} {:?} per image, batch {batch}; reads `{}` ({}), {} scores per image",
            self.device,
            list(&self.inputs),
            list(&self.outputs),
            p.input,
            p.input_elem,
            p.image_dims,
            p.output,
            p.output_elem,
            p.classes
        );
        if let Some(e) = &self.embedding {
            let x = &e.exposure;
            let how = match &x.dequantize {
                Some(q) => format!(
                    ", dequantized with `{}`{}",
                    q.scale,
                    q.zero_point.as_ref().map(|z| format!(" and `{z}`")).unwrap_or_default()
                ),
                None => String::new(),
            };
            s.push_str(&format!(
                "\nembedding `{}` (the output of {}{how}): {} {}, {} values per image",
                x.tensor,
                x.producer,
                e.elem,
                plan::fmt_dims(&e.dims),
                e.len
            ));
        }
        s
    }

    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        self.call("infer", input, batch, Target::Scores)
    }

    fn embedding_len(&self) -> usize {
        self.embedding.as_ref().map_or(0, |e| e.len)
    }

    fn embed(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        let Some(e) = &self.embedding else {
            return Err(format!(
                "{} has no embedding; name a tensor of the model with `embedding:` in its YAML",
                self.card.name
            ));
        };
        let (len, tensor) = (e.len, e.exposure.tensor.clone());
        let values = self.call("embed", input, batch, Target::Embedding)?;
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            let image = bad / len.max(1);
            return Err(format!(
                "the embedding `{tensor}` of image {} of {batch} has a non-finite value ({} at position {})",
                image + 1,
                values[bad],
                bad % len.max(1)
            ));
        }
        Ok(values)
    }
}

// The classifier, and the text encoder of a folder made by scripts/export-text-encoder.py.
export_plugin!(OnnxClassifier, text_encoder = text::OnnxTextEncoder);
