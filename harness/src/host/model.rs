//! What `--model` names, resolved once: a model YAML whose `plugin:` names a plugin, a model file
//! (`.onnx`, `.pt`/`.pth` for TorchScript, `.py` for Python) run by the matching plugin with an *assumed card*,
//! or a plugin library (a path, or a bare name such as `example` found next to the `shiftbench`
//! executable or in `$SHIFTBENCH_PLUGIN_PATH`). The YAML is read and checked here, once;
//! everything else (the name results are filed under, the copies to run, the provenance of the
//! result) asks the [`ModelRef`].
//!
//! For a model file the harness writes a model YAML with `defaults: torchvision` into a private
//! temporary folder that lives as long as the [`ModelRef`] (worker processes read it): the plugin
//! then reads the input size and label list from the model and assumes torchvision's
//! preprocessing (see `shiftbench_model_config`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use shiftbench_model_config::ModelConfig;

/// A `--model` argument, resolved.
#[derive(Debug, Clone)]
pub struct ModelRef {
    /// What `--model` said.
    pub arg: String,
    /// The plugin library.
    pub library: PathBuf,
    /// The model YAML, read and checked (None: the plugin was named directly).
    pub config: Option<ModelConfig>,
    /// For a model file given directly: the folder of the YAML written for it (removed when the
    /// last clone of this value is dropped).
    _assumed_yaml: Option<Arc<TempFolder>>,
}

/// A temporary folder removed on drop.
#[derive(Debug)]
struct TempFolder(PathBuf);

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The plugin that runs a model file, by its extension: `onnx` for `.onnx`, `torchscript` for
/// `.pt`/`.pth`, `python` for `.py` (a file with a `load()` function).
pub fn plugin_for_model_file(arg: &str) -> Option<&'static str> {
    match Path::new(arg).extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
        Some("onnx") => Some("onnx"),
        Some("pt" | "pth") => Some("torchscript"),
        Some("py") => Some("python"),
        _ => None,
    }
}

/// Whether `arg` looks like a plugin library (a shared-library file name).
fn is_library_name(arg: &str) -> bool {
    let suffix = std::env::consts::DLL_SUFFIX;
    arg.ends_with(suffix) || arg.contains(&format!("{suffix}."))
}

/// Whether a `--model` argument names a model YAML (by its extension).
pub fn is_model_yaml(arg: &str) -> bool {
    matches!(Path::new(arg).extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

impl ModelRef {
    /// A resolved model from its parts (for callers that resolved it themselves).
    pub fn new(arg: impl Into<String>, library: PathBuf, config: Option<ModelConfig>) -> ModelRef {
        ModelRef { arg: arg.into(), library, config, _assumed_yaml: None }
    }

    /// Resolves `--model`: reads a model YAML and finds the plugin it names, or finds the plugin
    /// library named directly. Every failure is one sentence.
    pub fn resolve(arg: &str) -> Result<ModelRef> {
        let p = Path::new(arg);
        if is_model_yaml(arg) {
            if !p.is_file() {
                bail!("model YAML {arg} does not exist");
            }
            let cfg = ModelConfig::load(p).map_err(|e| anyhow!(e))?;
            let base = p.parent().unwrap_or(Path::new("."));
            let library = find_plugin(&cfg.plugin, base)?;
            return Ok(ModelRef { arg: arg.to_string(), library, config: Some(cfg), _assumed_yaml: None });
        }
        if let Some(plugin) = plugin_for_model_file(arg) {
            if !p.is_file() {
                bail!("model file {arg} does not exist");
            }
            let library = find_plugin(plugin, Path::new("."))?;
            let (folder, yaml) = write_assumed_yaml(p, plugin)?;
            let cfg = ModelConfig::load(&yaml).map_err(|e| anyhow!(e))?;
            return Ok(ModelRef {
                arg: arg.to_string(),
                library,
                config: Some(cfg),
                _assumed_yaml: Some(Arc::new(folder)),
            });
        }
        if p.extension().is_some() && !is_library_name(arg) {
            bail!(
                "{arg} is neither a model YAML (.yaml), an ONNX model (.onnx), a TorchScript model (.pt), a Python model (.py) nor a plugin library ({}): give one of those",
                std::env::consts::DLL_SUFFIX
            );
        }
        Ok(ModelRef {
            arg: arg.to_string(),
            library: find_plugin(arg, Path::new("."))?,
            config: None,
            _assumed_yaml: None,
        })
    }

    /// Whether the card is assumed: the model was given as a model file, without a model YAML.
    pub fn assumed(&self) -> bool {
        self.config.as_ref().is_some_and(|c| c.assumed)
    }

    /// The model YAML's path, if the model was given as one.
    pub fn config_path(&self) -> Option<&Path> {
        self.config.as_ref().map(|c| c.path.as_path())
    }

    /// The `name:` the model YAML sets explicitly, if any: it names the model in logs and tables
    /// whatever the plugin calls it, so one plugin can run under several names (and settings)
    /// in one run.
    pub fn given_name(&self) -> Option<&str> {
        self.config.as_ref().filter(|c| c.name_given).map(|c| c.name.as_str())
    }

    /// A name for the model before its card is known (the error row of a model that did not
    /// load): the model YAML's name, or the plugin's.
    pub fn display_name(&self) -> String {
        if let Some(c) = &self.config {
            return c.name.clone();
        }
        let p = Path::new(&self.arg);
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| self.arg.clone());
        let stem = stem.strip_prefix(std::env::consts::DLL_PREFIX).unwrap_or(&stem);
        stem.strip_prefix("shiftbench_").unwrap_or(stem).to_string()
    }

    /// The model file the YAML names (`model:`), if any.
    pub fn model_file(&self) -> Option<&Path> {
        self.config.as_ref().and_then(|c| c.model_file.as_deref())
    }
}

fn lib_file_name(name: &str) -> String {
    format!("{}shiftbench_{}{}", std::env::consts::DLL_PREFIX, name.replace('-', "_"), std::env::consts::DLL_SUFFIX)
}

/// Writes the model YAML of an assumed card for `model` (run by `plugin`) into a new private
/// temporary folder; returns the folder and the YAML's path.
fn write_assumed_yaml(model: &Path, plugin: &str) -> Result<(TempFolder, PathBuf)> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let abs = std::fs::canonicalize(model).with_context(|| format!("cannot read model file {}", model.display()))?;
    let dir =
        std::env::temp_dir().join(format!("shiftbench-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let folder = TempFolder(dir);
    let stem = abs.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    let quoted = |s: &str| serde_yaml::to_string(s).map(|q| q.trim_end().to_string());
    // A Python file is code (`python:`, its `load()` builds the model); others are `model:`.
    let key = if plugin == "python" { "python" } else { "model" };
    let text = format!(
        "# Written by shiftbench for --model {}: the plugin reads or assumes the rest.\nplugin: {plugin}\n{key}: {}\nname: {}\ndefaults: torchvision\n",
        model.display(),
        quoted(&abs.to_string_lossy())?,
        quoted(&stem)?
    );
    let yaml = folder.0.join("model.yaml");
    std::fs::write(&yaml, text).with_context(|| format!("cannot write {}", yaml.display()))?;
    Ok((folder, yaml))
}

/// Directories searched for plugins named by a bare name.
pub fn plugin_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(p) = std::env::var_os("SHIFTBENCH_PLUGIN_PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(d) = exe.parent() {
            dirs.push(d.to_path_buf());
            // Test binaries live in target/<profile>/deps.
            if d.ends_with("deps") {
                if let Some(pd) = d.parent() {
                    dirs.push(pd.to_path_buf());
                }
            }
        }
    }
    dirs
}

/// Resolves a plugin reference (a path, or a bare name such as `onnx`) to a library path.
pub fn find_plugin(reference: &str, base: &Path) -> Result<PathBuf> {
    let looks_like_path = reference.contains('/') || reference.ends_with(std::env::consts::DLL_SUFFIX);
    if looks_like_path {
        let p = base.join(reference);
        if !p.exists() {
            bail!("plugin library {} does not exist", p.display());
        }
        return Ok(p);
    }
    let file = lib_file_name(reference);
    let dirs = plugin_dirs();
    for d in &dirs {
        let p = d.join(&file);
        if p.is_file() {
            return Ok(p);
        }
    }
    let build = match reference {
        "onnx" => "build it with `cargo build --release -p shiftbench-onnx-plugin`".to_string(),
        "torchscript" => {
            "build it with `./scripts/setup-libtorch.sh && cargo build --release -p shiftbench-torchscript-plugin`"
                .to_string()
        }
        "example" => "build it with `cargo build --release -p shiftbench-example-plugin`".to_string(),
        "python" => "build it with `cargo build --release -p shiftbench-python-plugin` (against python3 on PATH, or PYO3_PYTHON)"
            .to_string(),
        _ => "build it with `cargo build --release -p <its crate>`".to_string(),
    };
    bail!(
        "no plugin named {reference:?}: looked for {file} in {} ({build}, or set SHIFTBENCH_PLUGIN_PATH)",
        dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
    )
}
