//! # shiftbench-onnx-plugin: run any ONNX image classifier under shiftbench
//!
//! A generic plugin: one model YAML (schema in `shiftbench-model-config`) names the `.onnx` file,
//! the label list and the preprocessing; everything the model file itself declares is read from
//! it: the input name, its element type (f32, or f16, fed by converting the harness's f32), a
//! fixed or dynamic batch axis, the NCHW/NHWC shape, and the output's shape (`[N, classes]` or
//! `[N, classes, 1, 1]`, flattened per image). A YAML that contradicts the model is refused with
//! both values named.
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
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};
use shiftbench_model_config::{looks_like_probabilities, ModelConfig};
use shiftbench_plugin::{export_plugin, Classifier, LoadRequest, ModelCard, ScoreKind};

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

/// A loaded ONNX classifier.
pub struct OnnxClassifier {
    session: Session,
    card: ModelCard,
    plan: Plan,
    device: Device,
    /// The model's inputs and outputs as ONNX Runtime reports them.
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
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

        let choice = runtime::choose_library(
            settings.ort_library.as_deref(),
            &cfg.path,
            std::env::var_os("ORT_DYLIB_PATH"),
            runtime::default_library_path(),
        )?;
        let env = runtime::environment(&choice)?;

        let (session, device) = build_session(&env, &settings, &model_path, &cfg.path)?;

        let inputs: Vec<TensorInfo> = session.inputs().iter().map(|o| tensor_info(o.name(), o.dtype())).collect();
        let outputs: Vec<TensorInfo> = session.outputs().iter().map(|o| tensor_info(o.name(), o.dtype())).collect();
        let yaml = cfg.path.display().to_string();
        let model = model_path.display().to_string();
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

        let card = ModelCard {
            name: cfg.name.as_str().into(),
            labels: labels.iter().map(|l| l.as_str().into()).collect(),
            preprocess,
            max_batch: plan.max_batch,
            scores: cfg.scores,
        };
        let mut model =
            OnnxClassifier { session, card, plan, device, inputs, outputs, f16_buf: Vec::new(), pad_buf: Vec::new() };
        if cfg.assumed {
            model.card.scores = model.probe_scores()?;
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

    /// How the model is fed and read (for diagnostics and tests).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Where inference runs (after any CUDA fallback).
    pub fn device(&self) -> Device {
        self.device
    }

    fn run(&mut self, input: &[f32], run_batch: usize) -> Result<Vec<f32>, String> {
        let [a, b, c] = self.plan.image_dims;
        let shape = [run_batch, a, b, c];
        let name = self.plan.input.as_str();
        let outputs = match self.plan.input_elem {
            Elem::F16 => {
                // Whole-slice conversion: F16C vector instructions where the CPU has them.
                use half::slice::HalfFloatSliceExt;
                self.f16_buf.resize(input.len(), half::f16::ZERO);
                self.f16_buf.convert_from_f32_slice(input);
                let t = TensorRef::from_array_view((shape, self.f16_buf.as_slice())).map_err(|e| e.to_string())?;
                self.session.run(ort::inputs![name => t])
            }
            _ => {
                let t = TensorRef::from_array_view((shape, input)).map_err(|e| e.to_string())?;
                self.session.run(ort::inputs![name => t])
            }
        }
        .map_err(|e| format!("ONNX Runtime failed to run {}: {e}", self.card.name))?;
        let out = outputs
            .get(&self.plan.output)
            .ok_or_else(|| format!("ONNX Runtime returned no output `{}`", self.plan.output))?;
        let (shape, scores): (Vec<i64>, Vec<f32>) = match self.plan.output_elem {
            Elem::F16 => {
                let (s, v) = out.try_extract_tensor::<half::f16>().map_err(|e| e.to_string())?;
                (s.to_vec(), v.iter().map(|x| x.to_f32()).collect())
            }
            _ => {
                let (s, v) = out.try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
                (s.to_vec(), v.to_vec())
            }
        };
        let want = run_batch * self.plan.classes;
        if shape.first().copied() != Some(run_batch as i64) || scores.len() != want {
            return Err(format!(
                "the model's output `{}` has shape {} for a batch of {run_batch}; expected {run_batch} x {} scores",
                self.plan.output,
                plan::fmt_dims(&shape),
                self.plan.classes
            ));
        }
        Ok(scores)
    }
}

fn build_session(
    env: &ort::environment::Environment,
    settings: &Settings,
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
    let load_err = |e: ort::Error| format!("ONNX Runtime cannot load the model {}: {e}", model.display());

    #[cfg(feature = "cuda")]
    if let Device::Cuda(id) = settings.device {
        match cuda::session(&builder, id, model) {
            Ok(s) => return Ok((s, Device::Cuda(id))),
            Err(why) => eprintln!(
                "warning: shiftbench ONNX plugin: CUDA is unavailable for {} ({why}); running on the CPU",
                model.display()
            ),
        }
    }
    let session = builder.commit_from_file(model).map_err(load_err)?;
    Ok((session, Device::Cpu))
}

#[cfg(feature = "cuda")]
mod cuda {
    use std::path::Path;

    use ort::ep::{ExecutionProvider, CUDA};
    use ort::session::builder::SessionBuilder;
    use ort::session::Session;

    /// A session on CUDA device `id`, or why not.
    pub fn session(builder: &SessionBuilder, id: i32, model: &Path) -> Result<Session, String> {
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
        b.commit_from_file(model).map_err(|e| e.to_string())
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
        format!(
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
        )
    }

    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        if batch == 0 {
            return Ok(Vec::new());
        }
        let per_image = self.card.preprocess.image_len();
        if input.len() != batch * per_image {
            return Err(format!(
                "infer got {} values for {batch} images; expected {} ({per_image} per image)",
                input.len(),
                batch * per_image
            ));
        }
        let max = self.card.max_batch as usize;
        if max > 0 && batch > max {
            return Err(format!("infer got {batch} images but {} takes at most {max} per call", self.card.name));
        }
        match self.plan.fixed_batch {
            Some(fixed) if batch < fixed => {
                // A fixed batch larger than this call: pad with zero images, drop their scores.
                let mut buf = std::mem::take(&mut self.pad_buf);
                buf.clear();
                buf.extend_from_slice(input);
                buf.resize(fixed * per_image, 0.0);
                let r = self.run(&buf, fixed);
                self.pad_buf = buf;
                let mut scores = r?;
                scores.truncate(batch * self.plan.classes);
                Ok(scores)
            }
            _ => self.run(input, batch),
        }
    }
}

export_plugin!(OnnxClassifier);
