//! # shiftbench-torchscript-plugin
//!
//! A generic shiftbench plugin that runs TorchScript modules (`torch.jit.trace` / `torch.jit.script`
//! output saved as `.pt`) with libtorch through `tch`. A model YAML (the schema of
//! `shiftbench-model-config`) names the module and its card:
//!
//! ```yaml
//! plugin: torchscript
//! model: squeezenet1.1-fp32.pt
//! scores: probabilities
//! preprocess: { channel_order: bgr, range: 0-255, mean: [104, 117, 123], std: [1, 1, 1] }
//! options: { threads: 4, device: cpu }
//! ```
//!
//! At load the module is put in eval mode and run once on a synthetic image of the card's size, so
//! that a wrong input size or a label list that does not match the output fails at load, with a
//! message naming both. Inference runs without gradient tracking. See README.md for the options.
//!
//! `embedding: <method>` names a method of the module (one exported with `@torch.jit.export` when
//! the module was scripted) that takes the same input batch as `forward` and returns one tensor
//! with the batch first (`[N, D]`, `[N, D, 1, 1]`, ...): each image's values, flattened, are its
//! embedding. The method is run at load on the synthetic image to learn `D` (and, with the batch
//! probe, on a batch of 2).
//!
//! This file is the plugin itself (loading, the load-time checks, inference); `options` sets up
//! libtorch from `options:`, `probe` makes the synthetic images and compares batches with single
//! images, `values` turns what a module returns (and libtorch's errors) into plain values.

use std::path::{Path, PathBuf};

use shiftbench_model_config::{assumed_preprocess, labels_for_width, looks_like_probabilities, ModelConfig};
use shiftbench_plugin::{export_plugin, Classifier, Layout, LoadRequest, ModelCard, PreprocessSpec, ScoreKind};
use tch::{CModule, Device, IValue, Kind, Tensor};

mod options;
mod probe;
mod values;

use options::{parameter_kind, parse_kind, select_device, set_quantized_engine};
use probe::batch_mismatch;
pub use probe::synthetic_images;
pub use values::torch_message;
use values::{fmt_per_image, ivalue_key, ivalue_kind, to_cpu_f32};

/// The keys this plugin reads from the YAML's `options:`; any other key is refused (a typo there
/// would otherwise be silently ignored).
pub const OPTION_KEYS: [&str; 4] = ["threads", "device", "qengine", "dtype"];

/// A TorchScript module ready to score images.
pub struct TorchScriptModel {
    module: CModule,
    card: ModelCard,
    yaml: PathBuf,
    device: Device,
    /// What the module's floating-point inputs are (the harness always sends f32).
    input_kind: Kind,
    /// `output:` of the YAML: which element of a tuple/list (index) or dict (key) are the scores.
    output: Option<String>,
    /// Why the batch probe chose one image per call, if it did.
    batch_note: Option<String>,
    /// `embedding:` of the YAML, probed at load.
    embedding: Option<Embedding>,
}

/// The method that gives a model's embedding, and how many values per image it returns.
#[derive(Debug, Clone)]
struct Embedding {
    method: String,
    len: usize,
}

impl Classifier for TorchScriptModel {
    fn load(request: &LoadRequest) -> Result<Self, String> {
        if request.config_path.is_empty() {
            return Err("the TorchScript plugin needs a model YAML (plugin: torchscript, model: <file>.pt); \
                        none was given"
                .into());
        }
        let config = ModelConfig::load(Path::new(request.config_path.as_str())).map_err(|e| e.to_string())?;
        Self::from_config(&config, request.threads)
    }

    fn card(&self) -> ModelCard {
        self.card.clone()
    }

    fn describe(&self) -> String {
        let batch = match (&self.batch_note, self.card.max_batch) {
            (Some(why), _) => format!("one image per call ({why})"),
            (None, 0) => "any batch (probed with 2 images)".into(),
            (None, n) => format!("at most {n} per call (batch: in the YAML)"),
        };
        let embedding = match &self.embedding {
            Some(e) => format!("embedding: method `{}` of the module, {} values per image", e.method, e.len),
            None => "no embedding (`embedding:` names a method of the module)".into(),
        };
        format!(
            "TorchScript module on {:?}: inputs are positional (a TorchScript module declares no input size); fed as {:?}; output {}; {} scores per image; {batch}; {embedding}",
            self.device,
            self.input_kind,
            self.output.as_deref().unwrap_or("the forward result"),
            self.card.labels.len()
        )
    }

    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        self.check_call("infer", input, batch)?;
        if batch == 0 {
            return Ok(Vec::new());
        }
        self.run(input, batch).map_err(|e| format!("{}: {e}", self.card.name))
    }

    fn embedding_len(&self) -> usize {
        self.embedding.as_ref().map_or(0, |e| e.len)
    }

    fn embed(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        let name = &self.card.name;
        let Some(embedding) = &self.embedding else {
            return Err(format!("{name}: this model has no embedding (set `embedding:` in {})", self.yaml.display()));
        };
        self.check_call("embed", input, batch)?;
        if batch == 0 {
            return Ok(Vec::new());
        }
        let (values, dims) = self.run_embedding(&embedding.method, input, batch).map_err(|e| format!("{name}: {e}"))?;
        if values.len() != batch * embedding.len {
            return Err(format!(
                "{name}: the embedding method `{}` returned {} values per image (shape {dims:?}) for a batch of {batch}, \
                 but {} per image at load",
                embedding.method,
                fmt_per_image(values.len(), batch),
                embedding.len
            ));
        }
        Ok(values)
    }
}

export_plugin!(TorchScriptModel);

impl TorchScriptModel {
    /// Checks the input of one `what` call (`infer`, `embed`): `batch` images of the card's size,
    /// no more than the card's batch limit.
    fn check_call(&self, what: &str, input: &[f32], batch: usize) -> Result<(), String> {
        let name = &self.card.name;
        let per_image = self.card.preprocess.image_len();
        if input.len() != batch * per_image {
            return Err(format!(
                "{name}: {what} got {} values for {batch} images; expected {batch} x {per_image} (3 x {c} x {c})",
                input.len(),
                c = self.card.preprocess.crop
            ));
        }
        let max = self.card.max_batch as usize;
        if max > 0 && batch > max {
            return Err(format!(
                "{name}: {what} got a batch of {batch} images, but this model takes at most {max} per call"
            ));
        }
        Ok(())
    }

    /// Loads the module a parsed model YAML describes. `threads` is [`LoadRequest::threads`].
    pub fn from_config(config: &ModelConfig, threads: u32) -> Result<Self, String> {
        let yaml = config.path.clone();
        let at = |msg: String| format!("{}: {msg}", yaml.display());
        if let Some(unknown) = config.options.keys().find(|k| !OPTION_KEYS.contains(&k.as_str())) {
            return Err(at(format!(
                "unknown option `options.{unknown}` for the TorchScript plugin (known: {})",
                OPTION_KEYS.join(", ")
            )));
        }
        if let Some(input) = &config.input {
            return Err(at(format!(
                "`input: {input}` does not apply to TorchScript modules: their inputs are positional; remove it"
            )));
        }
        let model_path = config.require_model_file().map_err(|e| e.to_string())?;

        // Intra-op threads: the YAML's options.threads, else what the harness asks, else
        // libtorch's default (one per core). libtorch's setting is per process.
        let threads = match config.option_u64("threads").map_err(|e| e.to_string())? {
            Some(n) if n > 0 => Some(n),
            _ => (threads > 0).then_some(u64::from(threads)),
        };
        if let Some(n) = threads {
            tch::set_num_threads(n.min(i32::MAX as u64) as i32);
        }

        set_quantized_engine(config.option_str("qengine").map_err(|e| e.to_string())?).map_err(at)?;
        let device = select_device(config.option_str("device").map_err(|e| e.to_string())?).map_err(at)?;

        let mut module = CModule::load_on_device(model_path, device).map_err(|e| {
            at(format!("cannot load {} as a TorchScript module: {}", model_path.display(), torch_message(&e)))
        })?;
        module.f_set_eval().map_err(|e| at(format!("cannot put the module in eval mode: {}", torch_message(&e))))?;

        let input_kind = match config.option_str("dtype").map_err(|e| e.to_string())? {
            Some(name) => parse_kind(name).map_err(at)?,
            None => parameter_kind(&module).unwrap_or(Kind::Float),
        };

        let mut model = TorchScriptModel {
            module,
            card: ModelCard {
                name: config.name.as_str().into(),
                labels: config.labels.iter().map(|l| l.as_str().into()).collect(),
                preprocess: config.preprocess,
                max_batch: 1,
                scores: config.scores,
            },
            yaml: yaml.clone(),
            device,
            input_kind,
            output: config.output.clone(),
            batch_note: None,
            embedding: None,
        };

        // An assumed card: torchvision's preprocessing (a TorchScript module declares no input
        // size: 224), the labels and score kind from test images.
        if config.assumed {
            model.card.preprocess = assumed_preprocess(224, Layout::Nchw);
            let (a, b) =
                (synthetic_images(&model.card.preprocess, 1, 1), synthetic_images(&model.card.preprocess, 1, 2));
            model.assume_labels_and_scores(&[&a, &b]).map_err(at)?;
        }
        // One image of the card's size must give one score per label.
        let spec = model.card.preprocess;
        let a = synthetic_images(&spec, 1, 1);
        let scores_a = model
            .run(&a, 1)
            .map_err(|e| at(format!("test run on one {}x{} image failed: {e}", spec.crop, spec.crop)))?;
        let embedding_a = match &config.embedding {
            Some(method) => {
                let (embedding, values) = model.probe_embedding(method, &a).map_err(at)?;
                model.embedding = Some(embedding);
                values
            }
            None => Vec::new(),
        };

        model.card.max_batch = match config.batch {
            Some(n) if n > 0 => n,
            // `batch` unset or 0 ("what the model allows"): find out. Many TorchScript modules are
            // traced with a batch of 1 and may fail on, or silently mix, larger batches.
            _ => match model.probe_batch(&spec, &a, &scores_a, &embedding_a)? {
                Ok(()) => 0,
                Err(why) => {
                    eprintln!(
                        "shiftbench-torchscript: {}: one image per call ({why}); set `batch:` in {} to override",
                        config.name,
                        yaml.display()
                    );
                    model.batch_note = Some(why);
                    1
                }
            },
        };
        Ok(model)
    }

    /// Where the module runs.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The floating-point kind inputs are converted to before the forward pass.
    pub fn input_kind(&self) -> Kind {
        self.input_kind
    }

    /// When the batch probe limited the model to one image per call: why.
    pub fn batch_note(&self) -> Option<&str> {
        self.batch_note.as_deref()
    }

    /// The embedding method on one synthetic image (`a`): that it exists, returns a tensor and
    /// how many values per image; and the values.
    fn probe_embedding(&self, method: &str, a: &[f32]) -> Result<(Embedding, Vec<f32>), String> {
        if method.trim().is_empty() {
            return Err("`embedding:` is empty; it names a method of the module (such as `embed`)".into());
        }
        let c = self.card.preprocess.crop;
        let (values, dims) = self.run_embedding(method, a, 1).map_err(|e| {
            // libtorch's words when the module has no such method.
            if e.contains(&format!("Method '{method}' is not defined")) {
                format!(
                    "`embedding: {method}`: the module has no method `{method}`; a scripted module keeps `forward` \
                     and the methods marked @torch.jit.export (see the TorchScript plugin's README)"
                )
            } else {
                format!("`embedding: {method}`: test run on one {c}x{c} image failed: {e}")
            }
        })?;
        if values.is_empty() {
            return Err(format!("`embedding: {method}`: the method returned an empty tensor (shape {dims:?})"));
        }
        Ok((Embedding { method: method.to_string(), len: values.len() }, values))
    }

    /// Runs a batch of 2 (images `a` and a second synthetic one) and checks that it gives the
    /// same scores (and embeddings, when the model has one), row by row, as one image at a time.
    /// `Ok(Err(why))` when it does not; `Err` only when a single-image run itself fails. `scores_a`
    /// and `embedding_a`: what `a` gave alone.
    fn probe_batch(
        &self,
        spec: &PreprocessSpec,
        a: &[f32],
        scores_a: &[f32],
        embedding_a: &[f32],
    ) -> Result<Result<(), String>, String> {
        let b = synthetic_images(spec, 1, 2);
        let scores_b = self.run(&b, 1).map_err(|e| format!("{}: test run failed: {e}", self.yaml.display()))?;
        let ab: Vec<f32> = a.iter().chain(b.iter()).copied().collect();
        let scores_ab = match self.run(&ab, 2) {
            Ok(s) => s,
            Err(e) => return Ok(Err(format!("a batch of 2 failed: {e}"))),
        };
        if let Some(why) = batch_mismatch(&[scores_a, &scores_b], &scores_ab, "scored differently") {
            return Ok(Err(why));
        }
        let Some(embedding) = &self.embedding else { return Ok(Ok(())) };
        let m = &embedding.method;
        let (embedding_b, _) = self
            .run_embedding(m, &b, 1)
            .map_err(|e| format!("{}: `embedding: {m}`: test run failed: {e}", self.yaml.display()))?;
        if embedding_b.len() != embedding.len {
            return Err(format!(
                "{}: `embedding: {m}`: the method returned {} values for one test image and {} for another; an \
                 embedding has the same length for every image",
                self.yaml.display(),
                embedding.len,
                embedding_b.len()
            ));
        }
        let emb_ab = match self.run_embedding(m, &ab, 2) {
            Ok((v, _)) if v.len() == 2 * embedding.len => v,
            Ok((v, dims)) => {
                return Ok(Err(format!(
                    "the embedding method `{m}` returned shape {dims:?} for a batch of 2 ({} values per image, {} for \
                     one image)",
                    fmt_per_image(v.len(), 2),
                    embedding.len
                )))
            }
            Err(e) => return Ok(Err(format!("a batch of 2 failed: {e}"))),
        };
        Ok(batch_mismatch(&[embedding_a, &embedding_b], &emb_ab, "gave a different embedding")
            .map_or(Ok(()), |why| Err(format!("the embedding method `{m}`: {why}"))))
    }

    /// The forward pass: `batch` images laid out as the card says, to `batch * labels` f32 scores.
    fn run(&self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        let (out, b) = self.forward(input, batch)?;
        let dims = out.size();
        let labels = self.card.labels.len();
        if batch > 1 && dims.first() != Some(&b) {
            return Err(format!(
                "for a batch of {batch} images the model returned shape {dims:?}, without that batch \
                 dimension first (a module traced with a fixed batch size? set `batch: 1` in {})",
                self.yaml.display()
            ));
        }
        let numel = out.numel();
        if numel != batch * labels {
            return Err(format!(
                "the model returns {} scores per image (output shape {dims:?}) but the label list of {} has \
                 {labels} labels; `labels:` must list the model's classes in output order",
                fmt_per_image(numel, batch),
                self.yaml.display()
            ));
        }
        let mut scores = vec![0f32; numel];
        out.f_copy_data(&mut scores, numel).map_err(|e| torch_message(&e))?;
        Ok(scores)
    }

    /// The embedding method `method` on `batch` images laid out as the card says: its values (all
    /// finite), row-major, and the shape it returned. It must return one tensor with the batch
    /// first (checked for a batch of more than one).
    fn run_embedding(&self, method: &str, input: &[f32], batch: usize) -> Result<(Vec<f32>, Vec<i64>), String> {
        let out = self.call(Some(method), input, batch).map_err(|e| format!("the method `{method}` failed: {e}"))?;
        let out = match out {
            IValue::Tensor(t) => t,
            other => {
                return Err(format!(
                    "the method `{method}` returns a {} rather than a tensor; an embedding method returns one \
                     tensor [N, D] (or [N, D, 1, 1])",
                    ivalue_kind(&other)
                ))
            }
        };
        let out = to_cpu_f32(out).map_err(|e| format!("cannot read the embedding: {}", torch_message(&e)))?;
        let dims = out.size();
        if batch > 1 && dims.first() != Some(&(batch as i64)) {
            return Err(format!(
                "for a batch of {batch} images the method `{method}` returned shape {dims:?}, without that batch \
                 dimension first"
            ));
        }
        let numel = out.numel();
        if numel % batch != 0 {
            return Err(format!(
                "the method `{method}` returned {numel} values (shape {dims:?}) for {batch} images, not a multiple"
            ));
        }
        let mut values = vec![0f32; numel];
        out.f_copy_data(&mut values, numel).map_err(|e| torch_message(&e))?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            let per_image = numel / batch;
            return Err(format!(
                "the embedding of image {} (method `{method}`) has a non-finite value ({} at position {})",
                i / per_image,
                values[i],
                i % per_image
            ));
        }
        Ok((values, dims))
    }

    /// The module's output for `batch` images laid out as the card says (on the CPU, f32), and the
    /// batch as a tensor dimension.
    fn forward(&self, input: &[f32], batch: usize) -> Result<(Tensor, i64), String> {
        let out = self.call(None, input, batch)?;
        let out = self.select_output(out)?;
        let out = to_cpu_f32(out).map_err(|e| format!("cannot read the output: {}", torch_message(&e)))?;
        Ok((out, batch as i64))
    }

    /// Calls `forward` (`method` None) or another method of the module on `batch` images laid out
    /// as the card says, without gradient tracking.
    fn call(&self, method: Option<&str>, input: &[f32], batch: usize) -> Result<IValue, String> {
        let _no_grad = tch::no_grad_guard();
        let spec = &self.card.preprocess;
        let (b, c) = (batch as i64, i64::from(spec.crop));
        let shape = match spec.layout {
            Layout::Nchw => [b, 3, c, c],
            Layout::Nhwc => [b, c, c, 3],
        };
        let mut x = Tensor::f_from_slice(input).and_then(|t| t.f_view(shape)).map_err(|e| torch_message(&e))?;
        if self.input_kind != Kind::Float {
            x = x.f_to_kind(self.input_kind).map_err(|e| torch_message(&e))?;
        }
        if self.device != Device::Cpu {
            x = x.f_to_device(self.device).map_err(|e| torch_message(&e))?;
        }
        match method {
            None => self
                .module
                .forward_is(&[IValue::Tensor(x)])
                .map_err(|e| format!("the forward pass failed: {}", torch_message(&e))),
            Some(m) => self.module.method_is(m, &[IValue::Tensor(x)]).map_err(|e| torch_message(&e)),
        }
    }

    /// An assumed card's label list and score kind, from the output of test images: the labels
    /// by the number of scores per image, probabilities when every score is in [0, 1] and each
    /// image's sum to 1.
    fn assume_labels_and_scores(&mut self, images: &[&[f32]]) -> Result<(), String> {
        let mut scores = Vec::new();
        for img in images {
            let (out, _) = self.forward(img, 1).map_err(|e| format!("a test image failed: {e}"))?;
            let numel = out.numel();
            let mut v = vec![0f32; numel];
            out.f_copy_data(&mut v, numel).map_err(|e| torch_message(&e))?;
            scores.extend(v);
        }
        let per_image = scores.len() / images.len().max(1);
        let (_, labels) = labels_for_width(per_image).map_err(|e| format!("{}: {e}", self.yaml.display()))?;
        self.card.labels = labels.iter().map(|l| l.as_str().into()).collect();
        self.card.scores =
            if looks_like_probabilities(&scores, per_image) { ScoreKind::Probabilities } else { ScoreKind::Logits };
        Ok(())
    }

    /// Picks the score tensor out of what `forward` returned.
    fn select_output(&self, out: IValue) -> Result<Tensor, String> {
        let want = self.output.as_deref();
        let describe = |v: &IValue| ivalue_kind(v);
        let picked = match (out, want) {
            (IValue::Tensor(t), None) => return Ok(t),
            (IValue::Tensor(_), Some(w)) => {
                return Err(format!("`output: {w}` is set, but the module returns a single tensor; remove it"))
            }
            (IValue::Tuple(items) | IValue::GenericList(items), Some(w)) => {
                let i: usize = w.parse().map_err(|_| {
                    format!("the module returns a tuple/list of {}; `output:` must be an index, not {w:?}", items.len())
                })?;
                let n = items.len();
                items
                    .into_iter()
                    .nth(i)
                    .ok_or_else(|| format!("`output: {i}` but the module returns only {n} values"))?
            }
            (IValue::TensorList(items), Some(w)) => {
                let i: usize = w.parse().map_err(|_| {
                    format!(
                        "the module returns a list of {} tensors; `output:` must be an index, not {w:?}",
                        items.len()
                    )
                })?;
                let n = items.len();
                return items
                    .into_iter()
                    .nth(i)
                    .ok_or_else(|| format!("`output: {i}` but the module returns only {n} tensors"));
            }
            (IValue::GenericDict(items), Some(w)) => {
                let keys: Vec<String> = items.iter().map(|(k, _)| ivalue_key(k)).collect();
                items.into_iter().find(|(k, _)| ivalue_key(k) == w).map(|(_, v)| v).ok_or_else(|| {
                    format!("`output: {w}` is not a key of the module's output (keys: {})", keys.join(", "))
                })?
            }
            (other, None) => {
                return Err(format!(
                    "the module returns a {} rather than a tensor; set `output:` in the model YAML to the \
                     index (tuple/list) or key (dict) of the scores",
                    describe(&other)
                ))
            }
            (other, Some(w)) => return Err(format!("`output: {w}` cannot select from a {}", describe(&other))),
        };
        match picked {
            IValue::Tensor(t) => Ok(t),
            other => Err(format!("the selected output is a {}, not a tensor", describe(&other))),
        }
    }
}
