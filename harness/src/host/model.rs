//! What `--model` names, resolved once: a plugin library (a path, or a bare name such as `onnx`
//! found next to the `shiftbench` executable or in `$SHIFTBENCH_PLUGIN_PATH`), or a model YAML
//! whose `plugin:` names one. The YAML is read and checked here, once; everything else (the
//! name results are filed under, the copies to run, the provenance of the result) asks the
//! [`ModelRef`].

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
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
}

/// Whether a `--model` argument names a model YAML (by its extension).
pub fn is_model_yaml(arg: &str) -> bool {
    matches!(Path::new(arg).extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

impl ModelRef {
    /// Resolves `--model`: reads a model YAML and finds the plugin it names, or finds the plugin
    /// library named directly. Every failure is one sentence.
    pub fn resolve(arg: &str) -> Result<ModelRef> {
        if is_model_yaml(arg) {
            let p = Path::new(arg);
            let cfg = ModelConfig::load(p).map_err(|e| anyhow!(e))?;
            let base = p.parent().unwrap_or(Path::new("."));
            return Ok(ModelRef { arg: arg.to_string(), library: find_plugin(&cfg.plugin, base)?, config: Some(cfg) });
        }
        Ok(ModelRef { arg: arg.to_string(), library: find_plugin(arg, Path::new("."))?, config: None })
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
    bail!(
        "no plugin named {reference:?}: looked for {file} in {} (build it with `cargo build --release -p <its crate>`, \
         or set SHIFTBENCH_PLUGIN_PATH)",
        dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
    )
}
