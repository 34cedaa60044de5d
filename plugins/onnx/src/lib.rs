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
//! ONNX Runtime itself is loaded at run time (see [`runtime`]); `scripts/setup-onnxruntime.sh`
//! installs it where the plugin looks by default.
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

use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session, SessionOutputs};
use ort::value::{TensorElementType, TensorRef, ValueType};
use shiftbench_model_config::{looks_like_probabilities, ModelConfig};
use shiftbench_plugin::{export_plugin, Classifier, LoadRequest, ModelCard, ScoreKind};

pub mod embedding;
pub mod graph;
pub mod plan;
pub mod runtime;

pub use plan::{Elem, Plan, TensorInfo};

/// Options this plugin understands under `options:`.
pub const KNOWN_OPTIONS: &[&str] = &["threads", "optimization", "device", "spinning", "ort_library"];

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(i32),
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(id) => write!(f, "cuda:{id}"),
        }
    }
}

/// The settings taken from `options:` and the load request.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Intra-op threads; 0 = ONNX Runtime's default.
    pub threads: usize,
    pub optimization: GraphOptimizationLevel,
    pub device: Device,
    pub spinning: Option<bool>,
    pub ort_library: Option<String>,
}

fn parse_optimization(s: &str) -> Option<GraphOptimizationLevel> {
    Some(match s {
        "disable" => GraphOptimizationLevel::Disable,
        "basic" => GraphOptimizationLevel::Level1,
        "extended" => GraphOptimizationLevel::Level2,
        "layout" => GraphOptimizationLevel::Level3,
        "all" => GraphOptimizationLevel::All,
        _ => return None,
    })
}

fn parse_device(s: &str) -> Option<Device> {
    match s {
        "cpu" => Some(Device::Cpu),
        "cuda" | "gpu" => Some(Device::Cuda(0)),
        _ => s.strip_prefix("cuda:").and_then(|id| id.parse::<i32>().ok()).filter(|id| *id >= 0).map(Device::Cuda),
    }
}

impl Settings {
    /// Reads `options:`; `request_threads` (from the harness) overrides `options.threads` when
    /// non-zero.
    pub fn from_config(cfg: &ModelConfig, request_threads: u32) -> Result<Settings, String> {
        let yaml = cfg.path.display();
        for key in cfg.options.keys() {
            if !KNOWN_OPTIONS.contains(&key.as_str()) {
                return Err(format!(
                    "{yaml}: options.{key} is not an ONNX plugin option; known options: {}",
                    KNOWN_OPTIONS.join(", ")
                ));
            }
        }
        let e = |e: shiftbench_model_config::ConfigError| e.to_string();
        let yaml_threads = cfg.option_u64("threads").map_err(e)?.unwrap_or(0) as usize;
        let threads = if request_threads > 0 { request_threads as usize } else { yaml_threads };
        let optimization = match cfg.option_str("optimization").map_err(e)? {
            None => GraphOptimizationLevel::All,
            Some(s) => parse_optimization(s).ok_or_else(|| {
                format!("{yaml}: options.optimization is {s:?}; expected one of disable, basic, extended, layout, all")
            })?,
        };
        let device = match cfg.option_str("device").map_err(e)? {
            None if cfg!(feature = "cuda") => Device::Cuda(0),
            None => Device::Cpu,
            Some(s) => parse_device(s)
                .ok_or_else(|| format!("{yaml}: options.device is {s:?}; expected cpu, cuda or cuda:<id>"))?,
        };
        if matches!(device, Device::Cuda(_)) && !cfg!(feature = "cuda") {
            return Err(format!(
                "{yaml}: options.device is {device} but this ONNX plugin was built without CUDA support; rebuild it with `cargo build -p shiftbench-onnx-plugin --features cuda`, or set device: cpu"
            ));
        }
        let spinning = match cfg.options.get("spinning") {
            None => None,
            Some(v) => Some(v.as_bool().ok_or_else(|| format!("{yaml}: options.spinning must be true or false"))?),
        };
        let ort_library = cfg.option_str("ort_library").map_err(e)?.map(str::to_string);
        Ok(Settings { threads, optimization, device, spinning, ort_library })
    }
}

fn elem_of(ty: TensorElementType) -> Elem {
    match ty {
        TensorElementType::Float32 => Elem::F32,
        TensorElementType::Float16 => Elem::F16,
        other => Elem::Other(other.to_string()),
    }
}

fn tensor_info(name: &str, ty: &ValueType) -> TensorInfo {
    match ty {
        ValueType::Tensor { ty, shape, .. } => {
            TensorInfo { name: name.to_string(), elem: elem_of(*ty), dims: shape.to_vec() }
        }
        other => {
            TensorInfo { name: name.to_string(), elem: Elem::Other(format!("non-tensor {other:?}")), dims: Vec::new() }
        }
    }
}

/// Which graph output a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Scores,
    Embedding,
}

/// The embedding (`embedding:` in the YAML) as the session has it.
struct EmbeddingOutput {
    /// The tensor named, and how the model was changed to expose it.
    exposure: embedding::Exposure,
    /// The element type and shape of the graph output read (after any dequantization).
    elem: TensorElementType,
    dims: Vec<i64>,
    /// Values per image.
    len: usize,
    /// Run options that ask the session for the scores only, and for the embedding only.
    scores_only: RunOptions<HasSelectedOutputs>,
    embedding_only: RunOptions<HasSelectedOutputs>,
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

/// Where ONNX Runtime reads the model from.
enum Source<'a> {
    /// The file, as it is.
    File(&'a Path),
    /// A changed copy in memory (an output added); `folder` is the model file's folder, where
    /// external data files are looked for.
    Memory { bytes: &'a [u8], folder: &'a Path },
}

/// ONNX Runtime's session option for the folder of external data files when a model is loaded
/// from memory (`kOrtSessionOptionsModelExternalInitializersFileFolderPath`).
const EXTERNAL_DATA_FOLDER: &str = "session.model_external_initializers_file_folder_path";

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

/// The tensor `out` (of element type `elem`) as its shape and f32 values.
fn extract(out: &ort::value::DynValue, elem: TensorElementType) -> Result<(Vec<i64>, Vec<f32>), String> {
    let e = |e: ort::Error| e.to_string();
    Ok(match elem {
        TensorElementType::Float16 => {
            let (s, v) = out.try_extract_tensor::<half::f16>().map_err(e)?;
            (s.to_vec(), v.iter().map(|x| x.to_f32()).collect())
        }
        TensorElementType::Bfloat16 => {
            let (s, v) = out.try_extract_tensor::<half::bf16>().map_err(e)?;
            (s.to_vec(), v.iter().map(|x| x.to_f32()).collect())
        }
        TensorElementType::Float64 => {
            let (s, v) = out.try_extract_tensor::<f64>().map_err(e)?;
            (s.to_vec(), v.iter().map(|&x| x as f32).collect())
        }
        _ => {
            let (s, v) = out.try_extract_tensor::<f32>().map_err(e)?;
            (s.to_vec(), v.to_vec())
        }
    })
}

/// Checks the embedding output the session reports and works out its length (0 = left to a
/// probe run: a dimension after the batch axis is dynamic).
fn embedding_output(
    session: &Session,
    exposure: embedding::Exposure,
    plan: &Plan,
    yaml: &str,
    model: &str,
) -> Result<EmbeddingOutput, String> {
    let tensor = exposure.tensor.as_str();
    let out = session.outputs().iter().find(|o| o.name() == exposure.output).ok_or_else(|| {
        format!(
            "{yaml}: embedding `{tensor}`: ONNX Runtime does not list `{}` among the outputs of {model}",
            exposure.output
        )
    })?;
    let (elem, dims) = match out.dtype() {
        ValueType::Tensor { ty, shape, .. } => (*ty, shape.to_vec()),
        other => return Err(format!("{yaml}: embedding `{tensor}` of the model {model} is not a tensor ({other:?})")),
    };
    if !matches!(
        elem,
        TensorElementType::Float32
            | TensorElementType::Float16
            | TensorElementType::Bfloat16
            | TensorElementType::Float64
    ) {
        return Err(format!(
            "{yaml}: embedding `{tensor}` of the model {model} has element type {elem}{}; name a floating-point tensor (or a quantized one the graph gives a scale and zero point for)",
            if exposure.dequantize.is_some() { " after dequantization" } else { "" }
        ));
    }
    let shown = || format!("{elem} {}", plan::fmt_dims(&dims));
    let Some(&first) = dims.first() else {
        return Err(format!(
            "{yaml}: embedding `{tensor}` of the model {model} is a scalar ({}); an embedding needs one row of values per image",
            shown()
        ));
    };
    match plan.fixed_batch {
        Some(b) if first > 0 && first as usize != b => {
            return Err(format!(
                "{yaml}: embedding `{tensor}` of the model {model} is {} but the model's batch is {b}; an embedding needs one row of values per image",
                shown()
            ))
        }
        None if first > 0 => {
            return Err(format!(
                "{yaml}: embedding `{tensor}` of the model {model} is {}, a fixed first axis, but the model's batch is dynamic; an embedding needs one row of values per image",
                shown()
            ))
        }
        _ => {}
    }
    let rest = &dims[1..];
    let len = if rest.iter().all(|&d| d > 0) { rest.iter().product::<i64>() as usize } else { 0 };
    let select = |name: &str| {
        RunOptions::new()
            .map(|o| o.with_outputs(OutputSelector::no_default().with(name)))
            .map_err(|e| format!("cannot create ONNX Runtime run options: {e}"))
    };
    Ok(EmbeddingOutput {
        scores_only: select(&plan.output)?,
        embedding_only: select(&exposure.output)?,
        exposure,
        elem,
        dims,
        len,
    })
}

fn build_session(
    env: &ort::environment::Environment,
    settings: &Settings,
    source: &Source<'_>,
    model: &Path,
    yaml: &Path,
) -> Result<(Session, Device), String> {
    let opt = |e: ort::Error<SessionBuilder>| format!("cannot configure ONNX Runtime for {}: {e}", yaml.display());
    let mut builder = Session::builder(env)
        .map_err(|e| format!("cannot create an ONNX Runtime session for {}: {e}", yaml.display()))?
        .with_optimization_level(settings.optimization)
        .map_err(opt)?;
    if settings.threads > 0 {
        builder = builder.with_intra_threads(settings.threads).map_err(opt)?;
    }
    if let Some(spin) = settings.spinning {
        builder = builder.with_intra_op_spinning(spin).map_err(opt)?;
    }
    if let Source::Memory { folder, .. } = source {
        // External data files are found beside the model file, as when it is loaded from there.
        let folder = folder.to_str().ok_or_else(|| {
            format!(
                "the folder of the model {} is not valid UTF-8, which ONNX Runtime needs to find external data in it",
                model.display()
            )
        })?;
        builder = builder.with_config_entry(EXTERNAL_DATA_FOLDER, folder).map_err(opt)?;
    }
    let load_err = |e: ort::Error| format!("ONNX Runtime cannot load the model {}: {e}", model.display());

    #[cfg(feature = "cuda")]
    if let Device::Cuda(id) = settings.device {
        match cuda::session(&builder, id, source) {
            Ok(s) => return Ok((s, Device::Cuda(id))),
            Err(why) => eprintln!(
                "warning: shiftbench ONNX plugin: CUDA is unavailable for {} ({why}); running on the CPU",
                model.display()
            ),
        }
    }
    let session = commit(&mut builder, source).map_err(load_err)?;
    Ok((session, Device::Cpu))
}

fn commit(builder: &mut SessionBuilder, source: &Source<'_>) -> ort::Result<Session> {
    match source {
        Source::File(path) => builder.commit_from_file(path),
        Source::Memory { bytes, .. } => builder.commit_from_memory(bytes),
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use ort::ep::{ExecutionProvider, CUDA};
    use ort::session::builder::SessionBuilder;
    use ort::session::Session;

    use super::Source;

    /// A session on CUDA device `id`, or why not.
    pub fn session(builder: &SessionBuilder, id: i32, source: &Source<'_>) -> Result<Session, String> {
        match <CUDA as ExecutionProvider>::is_available() {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "the loaded ONNX Runtime ({}) was built without the CUDA execution provider; the PyPI onnxruntime wheel is CPU-only, use the library from onnxruntime-gpu",
                    crate::runtime::loaded_library().map(|p| p.display().to_string()).unwrap_or_default()
                ))
            }
            Err(e) => return Err(e.to_string()),
        }
        let mut b = builder.clone();
        let ep = CUDA::default().with_device_id(id);
        ep.register(&mut b).map_err(|e| e.to_string())?;
        // Nodes CUDA cannot run stay on the CPU, as ONNX Runtime does by default.
        super::commit(&mut b, source).map_err(|e| e.to_string())
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

export_plugin!(OnnxClassifier);
