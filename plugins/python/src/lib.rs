//! # shiftbench-python-plugin
//!
//! A shiftbench plugin that runs the user's own Python model: it embeds CPython (pyo3), imports
//! the file (`python:`) or module (`module:`) a model YAML names, calls its factory once with
//! `args:` as keyword arguments, and calls what the factory returned on every batch:
//!
//! ```yaml
//! plugin: python
//! python: my_resnet.py
//! factory: load                 # default
//! args: {weights: r50.pth}      # a string naming a file beside the YAML is passed as its path
//! labels: imagenet1k
//! device: cpu                   # where a torch.nn.Module runs (cuda, cuda:N)
//! ```
//!
//! The factory returns a callable taking a float32 batch (`[N, 3, H, W]`, a numpy array) and
//! returning scores `[N, labels]` (numpy, a torch tensor or nested lists), or a
//! `torch.nn.Module`, which is put in eval mode and called under `torch.inference_mode()` on a
//! tensor sharing the batch's memory (moved to `device`). The batch is a read-only numpy view of
//! the buffer the worker holds (no copy); the scores are converted to one contiguous float32
//! array by numpy and copied once.
//!
//! Failures: an exception in the model fails that batch's samples (with the exception's last
//! line); scores of the wrong shape or type stop the model (with the shapes); so do three
//! batches in a row failing before any succeeded. Rows with NaN are failed samples (the
//! harness's rule for non-finite scores).
//!
//! This file is the plugin (load, probes, calls); `interp` starts the interpreter with the
//! YAML's virtual environment; `glue.py` is the Python side (import, factory, the runner).

use std::ffi::{c_char, CStr};
use std::path::Path;
use std::time::Instant;

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyModule, PyTuple};
use shiftbench_model_config::{
    assumed_preprocess, labels_for_width, looks_like_probabilities, ModelConfig, PythonConfig, PythonSource,
};
use shiftbench_plugin::{export_plugin, Classifier, Layout, LoadRequest, ModelCard, ScoreKind};

pub mod interp;

/// The Python side of the plugin.
const GLUE: &CStr = pyo3::ffi::c_str!(include_str!("glue.py"));

/// Failed batches in a row, before any batch succeeded, after which the model is stopped.
pub const FAILURES_BEFORE_STOP: u32 = 3;

/// A Python model ready to score images.
pub struct PythonModel {
    runner: Py<PyAny>,
    glue: Py<PyModule>,
    card: ModelCard,
    /// The shape of one image (`[3, H, W]` or `[H, W, 3]`).
    image: [usize; 3],
    embedding_len: usize,
    description: String,
    /// Whether the last error leaves the model usable (see [`Classifier::can_go_on`]).
    usable: bool,
    failed_in_a_row: u32,
    succeeded: bool,
    /// With `SHIFTBENCH_PYTHON_TIMING` set: nanoseconds spent in `infer`/`embed` in all.
    timing: Option<u128>,
}

impl Classifier for PythonModel {
    fn load(request: &LoadRequest) -> Result<Self, String> {
        if request.config_path.is_empty() {
            return Err(
                "the Python plugin needs a model YAML (plugin: python, python: <file>.py); none was given".into()
            );
        }
        let config = ModelConfig::load(Path::new(request.config_path.as_str())).map_err(|e| e.to_string())?;
        Self::from_config(&config, request.threads)
    }

    fn card(&self) -> ModelCard {
        self.card.clone()
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        let labels = self.card.labels.len();
        self.call("infer", input, batch, Some(labels))
    }

    fn embedding_len(&self) -> usize {
        self.embedding_len
    }

    fn embed(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        if self.embedding_len == 0 {
            return Err(format!(
                "{}: this model has no embedding (an embed(batch) method or `embedding:`)",
                self.card.name
            ));
        }
        self.call("embed", input, batch, Some(self.embedding_len))
    }

    fn can_go_on(&self) -> bool {
        self.usable
    }
}

export_plugin!(PythonModel);

/// What a call into Python failed with, classified.
enum Failure {
    /// The user's code raised: this batch failed.
    Batch(String),
    /// The model's output cannot be used, or the plugin's side failed: stop the model.
    Fatal(String),
}

impl PythonModel {
    /// Loads the model a parsed model YAML describes. `threads` is [`LoadRequest::threads`].
    pub fn from_config(config: &ModelConfig, threads: u32) -> Result<Self, String> {
        let yaml = config.path.display().to_string();
        let at = |msg: String| format!("{yaml}: {msg}");
        let py_cfg = config.python.as_ref().ok_or_else(|| {
            at(format!(
                "the Python plugin runs `plugin: python` YAMLs (python: <file>.py); this one says plugin: {}",
                config.plugin
            ))
        })?;
        if let Some(unknown) = config.options.keys().next() {
            return Err(at(format!("`options.{unknown}`: the Python plugin reads no `options:`; its settings are top-level keys (device, args, ...)")));
        }
        if config.input.is_some() || config.output.is_some() {
            return Err(at("`input:`/`output:` name tensors of a model file; a Python model returns its scores itself: remove them".into()));
        }
        let env = py_cfg.env_dir();
        interp::start(env.as_deref(), threads).map_err(at)?;
        let mut model = Python::attach(|py| load_runner(py, config, py_cfg, env.as_deref(), threads)).map_err(at)?;
        model.probe(config).map_err(at)?;
        // The overhead figure (SHIFTBENCH_PYTHON_TIMING) counts the harness's calls, not the
        // load-time test runs.
        Python::attach(|py| {
            let r = model.runner.bind(py);
            r.setattr("inside_ns", 0).and_then(|_| r.setattr("calls", 0)).map_err(|e| err_text(py, &e))
        })
        .map_err(at)?;
        Ok(model)
    }

    /// One `infer` or `embed` call on `batch` images, with `width` values per image expected.
    fn call(&mut self, what: &str, input: &[f32], batch: usize, width: Option<usize>) -> Result<Vec<f32>, String> {
        let per_image: usize = self.image.iter().product();
        if input.len() != batch * per_image {
            return Err(format!(
                "{}: {what} got {} values for {batch} images of {per_image}",
                self.card.name,
                input.len()
            ));
        }
        if batch == 0 {
            return Ok(Vec::new());
        }
        let start = self.timing.is_some().then(Instant::now);
        let answer = Python::attach(|py| self.run(py, what, input, batch, width));
        if let (Some(t), Some(s)) = (self.timing.as_mut(), start) {
            *t += s.elapsed().as_nanos();
        }
        match answer {
            Ok(values) => {
                self.failed_in_a_row = 0;
                self.succeeded = true;
                Ok(values)
            }
            Err(Failure::Fatal(e)) => {
                self.usable = false;
                Err(e)
            }
            Err(Failure::Batch(e)) => {
                self.failed_in_a_row += 1;
                if !self.succeeded && self.failed_in_a_row >= FAILURES_BEFORE_STOP {
                    self.usable = false;
                    return Err(format!(
                        "the model raised on each of its first {FAILURES_BEFORE_STOP} batches; stopped (the last: {e})"
                    ));
                }
                Err(e)
            }
        }
    }

    /// Calls the runner's `what` on a read-only numpy view of `input` (no copy) and copies the
    /// float32 array it returns out once.
    fn run(
        &self,
        py: Python<'_>,
        what: &str,
        input: &[f32],
        batch: usize,
        width: Option<usize>,
    ) -> Result<Vec<f32>, Failure> {
        let shape =
            PyTuple::new(py, [batch, self.image[0], self.image[1], self.image[2]]).map_err(|e| self.fatal(py, e))?;
        let bytes = std::mem::size_of_val(input);
        // SAFETY: the memoryview points at `input`, which outlives the call that reads it: the
        // view is released below before this function returns, and a model that kept the batch
        // past the call (found by `release`) is stopped and never called again, so its code does
        // not run on the stale memory (a thread the model started itself is outside what the
        // plugin can guard). PyBUF_READ makes the view read-only, so Python cannot write through
        // a shared reference; the pointer is cast to *mut only because the C signature asks.
        let view = unsafe {
            let ptr = pyo3::ffi::PyMemoryView_FromMemory(
                input.as_ptr() as *mut c_char,
                bytes as pyo3::ffi::Py_ssize_t,
                pyo3::ffi::PyBUF_READ,
            );
            Bound::from_owned_ptr_or_err(py, ptr).map_err(|e| self.fatal(py, e))?
        };
        let answer = match self.runner.bind(py).call_method1(what, (&view, shape, width)) {
            // The scores are copied out before the view is released: an array the model returned
            // may itself be a view of its input.
            Ok(out) => PyBuffer::<f32>::get(&out).and_then(|buf| buf.to_vec(py)).map_err(|e| self.fatal(py, e)),
            Err(e) => Err(self.classify(py, e)),
        };
        self.release(py, &view).map_err(Failure::Fatal)?;
        answer
    }

    /// Releases the memoryview over the batch; an error sentence when the model kept the batch
    /// (or a view of it, or a tensor over it) past the call: the next batch overwrites it.
    fn release(&self, py: Python<'_>, view: &Bound<'_, PyAny>) -> Result<(), String> {
        let kept = self.runner.bind(py).call_method0("kept").and_then(|k| k.extract::<bool>());
        // A view still exported (a memoryview of it kept) makes release raise: kept too.
        let released = view.call_method0("release").is_ok();
        match kept {
            Ok(false) if released => Ok(()),
            Ok(_) => Err("the model kept a reference to its input batch after the call; the batch is a view of the \
                          harness's buffer, valid only during the call: copy it (np.array(x)) to keep it"
                .to_string()),
            Err(e) => Err(err_text(py, &e)),
        }
    }

    fn fatal(&self, py: Python<'_>, e: PyErr) -> Failure {
        Failure::Fatal(format!("{}: {}", self.card.name, err_text(py, &e)))
    }

    /// An exception from the runner: the user's code raised (a failed batch), or its output is
    /// unusable (stop).
    fn classify(&self, py: Python<'_>, e: PyErr) -> Failure {
        let glue = self.glue.bind(py);
        let is = |name: &str| glue.getattr(name).is_ok_and(|cls| e.is_instance(py, &cls));
        let text = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
        if is("BatchError") {
            Failure::Batch(text)
        } else if is("OutputError") {
            Failure::Fatal(text)
        } else {
            self.fatal(py, e)
        }
    }

    /// Runs the model on test images at load: that it answers, the width of its scores (the
    /// labels of an assumed card), whether they are probabilities, and its embedding's length.
    fn probe(&mut self, config: &ModelConfig) -> Result<(), String> {
        let c = self.card.preprocess.crop;
        let (a, b) = (test_image(self.image, 0), test_image(self.image, 1));
        let labels = if config.assumed { None } else { Some(self.card.labels.len()) };
        let failed = |e: Failure| match e {
            Failure::Batch(e) | Failure::Fatal(e) => format!("test run on one {c}x{c} image: {e}"),
        };
        let first = Python::attach(|py| self.run(py, "infer", &a, 1, labels)).map_err(failed)?;
        if config.assumed {
            let second = Python::attach(|py| self.run(py, "infer", &b, 1, Some(first.len()))).map_err(failed)?;
            let (_, wnids) = labels_for_width(first.len())?;
            self.card.labels = wnids.iter().map(|l| l.as_str().into()).collect();
            let both: Vec<f32> = first.iter().chain(&second).copied().collect();
            self.card.scores =
                if looks_like_probabilities(&both, first.len()) { ScoreKind::Probabilities } else { ScoreKind::Logits };
        }
        let has_embedding = Python::attach(|py| {
            self.runner
                .bind(py)
                .call_method0("has_embedding")
                .and_then(|v| v.extract::<bool>())
                .map_err(|e| err_text(py, &e))
        })?;
        if has_embedding {
            let values = Python::attach(|py| self.run(py, "embed", &a, 1, None))
                .map_err(|e| format!("embedding: {}", failed(e)))?;
            if values.is_empty() {
                return Err("the embedding of a test image is empty".into());
            }
            self.embedding_len = values.len();
        }
        let embedding = match self.embedding_len {
            0 => "no embedding".to_string(),
            n => format!("embedding: {n} values per image"),
        };
        self.description = format!("{}; {} scores per image; {embedding}", self.description, self.card.labels.len());
        Ok(())
    }
}

impl Drop for PythonModel {
    fn drop(&mut self) {
        let Some(total) = self.timing else { return };
        let inside = Python::attach(|py| {
            let r = self.runner.bind(py);
            let get = |name: &str| r.getattr(name).and_then(|v| v.extract::<u128>()).unwrap_or(0);
            (get("inside_ns"), get("calls"))
        });
        let (inside, calls) = inside;
        if calls > 0 {
            eprintln!(
                "shiftbench-python: {}: {calls} calls, {:.1} us per call in the plugin outside the model's callable \
                 ({:.1} us inside it)",
                self.card.name,
                total.saturating_sub(inside) as f64 / calls as f64 / 1e3,
                inside as f64 / calls as f64 / 1e3
            );
        }
    }
}

/// An exception as one line: `Type: message`.
fn err_text(py: Python<'_>, e: &PyErr) -> String {
    let value = e.value(py);
    let name = value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
    let msg = value.str().map(|s| s.to_string()).unwrap_or_default();
    if msg.is_empty() {
        name
    } else {
        format!("{name}: {msg}")
    }
}

/// A deterministic test image of `shape`: 0 all zeros; 1 a ramp over [-1, 1].
fn test_image(shape: [usize; 3], which: usize) -> Vec<f32> {
    let n: usize = shape.iter().product();
    (0..n).map(|i| if which == 0 { 0.0 } else { (i % 251) as f32 / 125.0 - 1.0 }).collect()
}

/// Imports the user's code in the started interpreter and calls its factory.
fn load_runner(
    py: Python<'_>,
    config: &ModelConfig,
    py_cfg: &PythonConfig,
    env: Option<&Path>,
    threads: u32,
) -> Result<PythonModel, String> {
    let sys = py.import("sys").map_err(|e| err_text(py, &e))?;
    let version: String = sys.getattr("version").and_then(|v| v.extract()).map_err(|e| err_text(py, &e))?;
    let version = version.split_whitespace().next().unwrap_or("").to_string();
    let prefix: String = sys.getattr("base_prefix").and_then(|v| v.extract()).map_err(|e| err_text(py, &e))?;
    let env_words = match env {
        Some(e) => format!("the environment {} (Python {version})", e.display()),
        None => format!(
            "the plugin's Python {version} ({prefix}; no python_env: or VIRTUAL_ENV names a virtual environment)"
        ),
    };
    // The code's folder first on sys.path, as `python file.py` has it; for a module the YAML's.
    let (kind, source, folder) = match &py_cfg.source {
        PythonSource::File(f) => {
            let abs = std::path::absolute(f).unwrap_or_else(|_| f.clone());
            let folder = abs.parent().map(Path::to_path_buf).unwrap_or_default();
            ("file", abs.to_string_lossy().into_owned(), folder)
        }
        PythonSource::Module(m) => ("module", m.clone(), std::path::absolute(&py_cfg.base).unwrap_or_default()),
    };
    let path = sys.getattr("path").map_err(|e| err_text(py, &e))?;
    let path = path.cast::<PyList>().map_err(|e| e.to_string())?;
    let folder = folder.to_string_lossy().into_owned();
    if !path.contains(&folder).unwrap_or(false) {
        path.insert(0, &folder).map_err(|e| err_text(py, &e))?;
    }
    let glue =
        PyModule::from_code(py, GLUE, c"shiftbench_glue.py", c"shiftbench_glue").map_err(|e| err_text(py, &e))?;
    let args = serde_json::to_string(&py_cfg.resolved_args())
        .map_err(|e| format!("`args:` cannot be passed to Python: {e}"))?;
    let args = py
        .import("json")
        .and_then(|json| json.call_method1("loads", (args,)))
        .and_then(|a| a.cast_into::<PyDict>().map_err(PyErr::from))
        .map_err(|e| err_text(py, &e))?;
    let embedding = config.embedding.as_deref();
    let runner = glue
        .call_method1("load", (kind, &source, &py_cfg.factory, args, &py_cfg.device, embedding, threads, &env_words))
        .map_err(|e| {
            let is_load_error = glue.getattr("LoadError").is_ok_and(|cls| e.is_instance(py, &cls));
            if is_load_error {
                e.value(py).str().map(|s| s.to_string()).unwrap_or_default()
            } else {
                format!("{source}: {}", err_text(py, &e))
            }
        })?;
    let kind_words: String = runner.getattr("kind").and_then(|k| k.extract()).unwrap_or_default();
    let mut card = ModelCard {
        name: config.name.as_str().into(),
        labels: config.labels.iter().map(|l| l.as_str().into()).collect(),
        preprocess: config.preprocess,
        max_batch: config.batch.unwrap_or(0),
        scores: config.scores,
    };
    if config.assumed {
        card.preprocess = assumed_preprocess(224, Layout::Nchw);
    }
    let c = card.preprocess.crop as usize;
    let image = match card.preprocess.layout {
        Layout::Nchw => [3, c, c],
        Layout::Nhwc => [c, c, 3],
    };
    let description = format!(
        "Python model from {source} ({}(), {kind_words}) in {env_words}; batch {}",
        py_cfg.factory,
        match card.max_batch {
            0 => "any size".to_string(),
            n => format!("at most {n}"),
        }
    );
    Ok(PythonModel {
        runner: runner.unbind(),
        glue: glue.unbind(),
        card,
        image,
        embedding_len: 0,
        description,
        usable: true,
        failed_in_a_row: 0,
        succeeded: false,
        timing: std::env::var_os("SHIFTBENCH_PYTHON_TIMING").filter(|v| !v.is_empty()).map(|_| 0),
    })
}
