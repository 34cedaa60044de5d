//! The plugin host: find, load and check a model plugin, and call it safely.
//!
//! `--model` takes a plugin library (`libshiftbench_example.so`), a plugin name (`example`, found
//! next to the `shiftbench` executable or in `$SHIFTBENCH_PLUGIN_PATH`), or a model YAML whose
//! `plugin:` names one of those. Each way a load can fail is one sentence: a missing file, a file
//! that is not a shared library, a library that is not a shiftbench plugin, a plugin built against
//! an incompatible interface version (both versions named), or a plugin whose `load` fails.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::std_types::{RResult, RSlice};
use anyhow::{anyhow, bail, Result};
use shiftbench_model_config::{is_wnid, ModelConfig};
use shiftbench_plugin::{FfiModelBox, LoadRequest, ModelCard, PluginModRef, INTERFACE_VERSION, ROOT_SYMBOL};

/// A model that cannot go on: its worker crashed or hung, it panicked, or it broke the
/// interface's contract (scores of the wrong shape). The pipeline stops that model on that suite
/// and reports this sentence; samples it has not scored stay out of the log, so a later run
/// retries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStopped(pub String);

impl std::fmt::Display for ModelStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModelStopped {}

/// The most input values one batch may hold (1 GiB of f32): bounds memory whatever the card says.
pub const MAX_BATCH_VALUES: usize = 1 << 28;

/// Anything the pipeline can score batches with: a plugin loaded in this process
/// ([`LoadedModel`]), or one running elsewhere (a worker process). Implementations check the
/// answer's shape at the boundary; the pipeline checks the values.
pub trait Scorer {
    /// The validated model card.
    fn card(&self) -> &ModelCard;
    /// The card's labels (wnids in output order).
    fn labels(&self) -> &[String];
    /// The plugin's name and version, for messages.
    fn plugin_name(&self) -> &str;
    /// Scores `batch` images laid out as the card says: `batch * labels().len()` values.
    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>>;

    /// [`Scorer::infer`] of the `len` input values that `fill` writes (every one of them):
    /// written into `scratch` (kept between calls, so no memory is cleared or allocated once it
    /// is large enough) unless the model has an input buffer of its own, as a worker's shared
    /// memory, which `fill` then writes directly.
    fn infer_filled(&mut self, batch: usize, len: usize, scratch: &mut Vec<f32>, fill: &mut dyn FnMut(&mut [f32])) -> Result<Vec<f32>> {
        self.infer(filled(scratch, len, fill), batch)
    }

    /// Largest batch the model accepts (`requested` capped by the card and by memory).
    fn batch_size(&self, requested: usize) -> usize {
        let by_memory = (MAX_BATCH_VALUES / self.card().preprocess.image_len().max(1)).max(1);
        match self.card().max_batch {
            0 => requested.clamp(1, by_memory),
            m => requested.clamp(1, (m as usize).min(by_memory)),
        }
    }
}

/// `scratch` as `len` values written by `fill` (sized, not cleared: `fill` writes every one).
pub(crate) fn filled<'a>(scratch: &'a mut Vec<f32>, len: usize, fill: &mut dyn FnMut(&mut [f32])) -> &'a [f32] {
    if scratch.len() != len {
        scratch.resize(len, 0.0);
    }
    fill(scratch);
    scratch
}

/// A model ready to score batches, with its validated card.
pub struct LoadedModel {
    pub card: ModelCard,
    pub labels: Vec<String>,
    /// The library the model came from, and the model YAML if there was one.
    pub library: PathBuf,
    pub config: Option<PathBuf>,
    pub plugin_name: String,
    model: FfiModelBox,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel").field("name", &self.card.name).field("library", &self.library).finish()
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

/// Loads the root module of a plugin library, turning every failure into one sentence.
pub fn load_library(path: &Path) -> Result<PluginModRef> {
    if !path.exists() {
        bail!("plugin library {} does not exist", path.display());
    }
    // Look before abi_stable does, to say precisely what is wrong.
    let lib = unsafe { libloading::Library::new(path) }
        .map_err(|e| anyhow!("{} is not a loadable shared library: {e}", path.display()))?;
    let has_root = unsafe { lib.get::<*const u8>(ROOT_SYMBOL.as_bytes()) }.is_ok();
    drop(lib);
    if !has_root {
        bail!(
            "{} is a shared library but not a shiftbench plugin (it exports no shiftbench root module; \
             a plugin calls shiftbench_plugin::export_plugin!)",
            path.display()
        );
    }
    let header = lib_header_from_path(path).map_err(|e| library_error(path, e))?;
    header.init_root_module::<PluginModRef>().map_err(|e| library_error(path, e))
}

fn library_error(path: &Path, e: LibraryError) -> anyhow::Error {
    match e {
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => anyhow!(
            "{} was built against shiftbench-plugin interface {actual_version}, but this shiftbench speaks interface \
             {expected_version}; rebuild the plugin against shiftbench-plugin {}.{}",
            path.display(),
            expected_version.major,
            expected_version.minor
        ),
        LibraryError::AbiInstability(_) => anyhow!(
            "{} claims a compatible shiftbench-plugin version, but its interface types differ from this shiftbench's \
             ({}); rebuild the plugin against shiftbench-plugin {INTERFACE_VERSION}",
            path.display(),
            INTERFACE_VERSION
        ),
        LibraryError::OpenError { err, .. } => anyhow!("{} could not be opened: {err}", path.display()),
        LibraryError::GetSymbolError { .. } => anyhow!("{} is not a shiftbench plugin", path.display()),
        LibraryError::InvalidAbiHeader(_) | LibraryError::InvalidCAbi { .. } => anyhow!(
            "{} was built with an incompatible abi_stable or Rust ABI; rebuild it against shiftbench-plugin {}",
            path.display(),
            INTERFACE_VERSION
        ),
        other => anyhow!("{} could not be loaded: {}", path.display(), other.to_string().trim()),
    }
}

/// Checks what a plugin says about itself before anything trusts it.
pub fn validate_card(card: &ModelCard, plugin: &str) -> Result<Vec<String>> {
    let labels: Vec<String> = card.labels.iter().map(|s| s.to_string()).collect();
    if card.name.trim().is_empty() || card.name.len() > 200 || card.name.chars().any(char::is_control) {
        bail!("plugin {plugin}: the model card's name {:?} is empty, too long or has control characters", card.name.as_str());
    }
    if labels.is_empty() {
        bail!("plugin {plugin}: the model card lists no labels");
    }
    let mut seen = HashSet::new();
    for (i, l) in labels.iter().enumerate() {
        if !is_wnid(l) {
            bail!("plugin {plugin}: label {i} ({l:?}) is not a WordNet id");
        }
        if !known_wnid(l) {
            bail!("plugin {plugin}: label {i} ({l}) is not an ImageNet synset (it is in neither the ImageNet-21k nor the 22k list)");
        }
        if !seen.insert(l) {
            bail!("plugin {plugin}: label {l} appears twice in the label list (at {} and {i})", labels.iter().position(|x| x == l).unwrap_or(0));
        }
    }
    let p = &card.preprocess;
    if p.crop == 0 || p.resize < p.crop || p.crop > 4096 {
        bail!("plugin {plugin}: preprocess resize {} / crop {} is not usable", p.resize, p.crop);
    }
    if !p.scale.is_finite() || p.mean.iter().chain(p.std.iter()).any(|v| !v.is_finite()) || p.std.contains(&0.0) {
        bail!("plugin {plugin}: preprocess scale/mean/std must be finite with non-zero std");
    }
    Ok(labels)
}

/// Whether `wnid` is an ImageNet synset: in the ImageNet-1k, ImageNet-22k or Google ImageNet-21k
/// list (1k is not quite a subset of the others: n04399382, teddy bear, is only in 1k).
pub fn known_wnid(wnid: &str) -> bool {
    static KNOWN: std::sync::OnceLock<HashSet<&'static str>> = std::sync::OnceLock::new();
    KNOWN
        .get_or_init(|| {
            use shiftbench_model_config::{IMAGENET1K, IMAGENET21K_GOOG, IMAGENET22K};
            [IMAGENET1K, IMAGENET22K, IMAGENET21K_GOOG].iter().flat_map(|l| l.lines()).map(str::trim).filter(|l| is_wnid(l)).collect()
        })
        .contains(wnid)
}

/// What the user named with `--model`.
pub struct ModelRef {
    pub library: PathBuf,
    pub config: Option<PathBuf>,
}

/// Resolves `--model` to a library and optional model YAML.
pub fn resolve_model(arg: &str) -> Result<ModelRef> {
    let p = Path::new(arg);
    let is_yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    if is_yaml {
        let cfg = ModelConfig::load(p).map_err(|e| anyhow!(e))?;
        let base = p.parent().unwrap_or(Path::new("."));
        return Ok(ModelRef { library: find_plugin(&cfg.plugin, base)?, config: Some(p.to_path_buf()) });
    }
    Ok(ModelRef { library: find_plugin(arg, Path::new("."))?, config: None })
}

impl LoadedModel {
    /// Loads `--model` (library, name or model YAML) with `threads` for inference.
    pub fn open(arg: &str, threads: u32) -> Result<LoadedModel> {
        let r = resolve_model(arg)?;
        Self::load(&r.library, r.config.as_deref(), threads)
    }

    pub fn load(library: &Path, config: Option<&Path>, threads: u32) -> Result<LoadedModel> {
        let module = load_library(library)?;
        let plugin_name = module.plugin_name()().to_string();
        let request = LoadRequest {
            config_path: config.map(|c| c.to_string_lossy().into_owned()).unwrap_or_default().into(),
            threads,
        };
        let model = match module.load()(&request) {
            RResult::ROk(m) => m,
            RResult::RErr(e) => bail!("plugin {plugin_name} could not load the model: {e}"),
        };
        let card = model.card();
        let labels = validate_card(&card, &plugin_name)?;
        Ok(LoadedModel {
            card,
            labels,
            library: library.to_path_buf(),
            config: config.map(Path::to_path_buf),
            plugin_name,
            model,
        })
    }

}

impl Scorer for LoadedModel {
    fn card(&self) -> &ModelCard {
        &self.card
    }

    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn plugin_name(&self) -> &str {
        &self.plugin_name
    }

    /// Scores `batch` images; checks the answer's shape at the boundary.
    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>> {
        let expect_in = batch * self.card.preprocess.image_len();
        if input.len() != expect_in {
            bail!("internal error: batch of {batch} needs {expect_in} values, got {}", input.len());
        }
        let out = match self.model.infer(RSlice::from_slice(input), batch as u32) {
            RResult::ROk(v) => v.into_vec(),
            // A panic leaves the model unusable (the export macro refuses further calls).
            RResult::RErr(e) if e.starts_with("plugin panicked") || e.contains("unusable after an earlier panic") => {
                return Err(ModelStopped(format!("plugin {} stopped: {e}", self.plugin_name)).into())
            }
            RResult::RErr(e) => bail!("plugin {} failed: {e}", self.plugin_name),
        };
        let per = self.labels.len();
        let expect = batch * per;
        if out.len() != expect {
            // Scores of the wrong shape cannot be attributed to images: stop trusting the model.
            let rows = if out.len() % per == 0 {
                format!(" (scores for {} images: it was asked for {batch})", out.len() / per)
            } else {
                String::new()
            };
            return Err(ModelStopped(format!(
                "plugin {} broke the interface: it returned {} scores for {batch} images x {per} labels, expected {expect}{rows}",
                self.plugin_name,
                out.len()
            ))
            .into());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wnid_of_the_shipped_label_lists_is_known() {
        use shiftbench_model_config::{parse_wnid_list, IMAGENET1K, IMAGENET21K_GOOG, IMAGENET22K};
        for list in [IMAGENET1K, IMAGENET22K, IMAGENET21K_GOOG] {
            assert!(parse_wnid_list(list, "list").unwrap().iter().all(|w| known_wnid(w)));
        }
        assert!(known_wnid("n04399382"));
        assert!(!known_wnid("n99999999"));
    }

    #[test]
    fn missing_and_not_a_library() {
        let e = load_library(Path::new("/nonexistent/libx.so")).err().unwrap().to_string();
        assert_eq!(e, "plugin library /nonexistent/libx.so does not exist");
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("libfake.so");
        std::fs::write(&f, b"not an ELF file").unwrap();
        let e = load_library(&f).err().unwrap().to_string();
        assert!(e.contains("is not a loadable shared library"), "{e}");
        let e = find_plugin("no-such-plugin", Path::new(".")).unwrap_err().to_string();
        assert!(e.contains("no plugin named \"no-such-plugin\""), "{e}");
    }
}
