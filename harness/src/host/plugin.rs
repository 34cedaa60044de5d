//! The plugin host: load and check a model plugin (found by [`crate::host::model`]), and call it
//! safely in this process ([`LoadedModel`]).
//!
//! Each way a load can fail is one sentence, a variant of [`PluginLoadError`]: a missing file, a
//! file that is not a shared library, a library that is not a shiftbench plugin, a plugin built
//! against an incompatible interface version (both versions named), or a plugin whose `load`
//! fails.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::sabi_types::VersionNumber;
use abi_stable::std_types::RSlice;
use anyhow::{bail, Result};
use shiftbench_model_config::{is_wnid, known_wnid};
use shiftbench_plugin::{
    init_plugin_module, legacy_error_kind, ErrorKind, FfiModelBox, FfiModelEmbedBox, FfiModelTypedBox, LoadRequest,
    ModelCard, PluginError, PluginModRef, INTERFACE_VERSION, ROOT_SYMBOL,
};

use crate::host::model::ModelRef;
use crate::host::scorer::{ModelBackend, ModelState, ModelStopped, Output, Scorer};

/// A model ready to score batches, with its validated card (in its [`ModelState`], which the
/// [`Scorer`] getters read).
pub struct LoadedModel {
    pub state: ModelState,
    /// The library the model came from, and the model YAML if there was one.
    pub library: PathBuf,
    pub config: Option<PathBuf>,
    model: Model,
}

/// A loaded model as its plugin's interface version hands it over.
enum Model {
    /// Interface 0.1.2 and later: typed errors, and maybe an embedding.
    Embed(FfiModelEmbedBox),
    /// Interface 0.1.1: errors carry their kind ([`ErrorKind`]).
    Typed(FfiModelTypedBox),
    /// Interface 0.1.0: errors are strings, classified by [`legacy_error_kind`].
    Legacy(FfiModelBox),
}

impl Model {
    fn card(&self) -> ModelCard {
        match self {
            Model::Embed(m) => m.card(),
            Model::Typed(m) => m.card(),
            Model::Legacy(m) => m.card(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Model::Embed(m) => m.describe().into(),
            Model::Typed(m) => m.describe().into(),
            Model::Legacy(_) => String::new(),
        }
    }

    fn embedding_len(&self) -> usize {
        match self {
            Model::Embed(m) => m.embedding_len() as usize,
            Model::Typed(_) | Model::Legacy(_) => 0,
        }
    }

    fn embed(&mut self, input: &[f32], batch: u32) -> Result<Vec<f32>, PluginError> {
        match self {
            Model::Embed(m) => m.embed(RSlice::from_slice(input), batch).into_result().map(|v| v.into_vec()),
            Model::Typed(_) | Model::Legacy(_) => {
                Err(PluginError { kind: ErrorKind::Sample, message: "this model has no embedding".into() })
            }
        }
    }

    fn infer(&mut self, input: &[f32], batch: u32) -> Result<Vec<f32>, PluginError> {
        let input = RSlice::from_slice(input);
        match self {
            Model::Embed(m) => m.infer(input, batch).into_result().map(|v| v.into_vec()),
            Model::Typed(m) => m.infer(input, batch).into_result().map(|v| v.into_vec()),
            Model::Legacy(m) => m
                .infer(input, batch)
                .into_result()
                .map(|v| v.into_vec())
                .map_err(|e| PluginError { kind: legacy_error_kind(&e), message: e }),
        }
    }
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel").field("name", &self.state.card.name).field("library", &self.library).finish()
    }
}

/// Why a plugin library could not be loaded, or could not load its model: one sentence each.
#[derive(Debug, thiserror::Error)]
pub enum PluginLoadError {
    #[error("plugin library {} does not exist", .path.display())]
    Missing { path: PathBuf },
    #[error("{} is not a loadable shared library: {reason}", .path.display())]
    NotALibrary { path: PathBuf, reason: String },
    #[error(
        "{} is a shared library but not a shiftbench plugin (it exports no shiftbench root module; \
         a plugin calls shiftbench_plugin::export_plugin!)",
        .path.display()
    )]
    NoRootModule { path: PathBuf },
    #[error(
        "{} was built against shiftbench-plugin interface {actual}, but this shiftbench speaks interface \
         {expected}; rebuild the plugin against shiftbench-plugin {}.{}",
        .path.display(),
        .expected.major,
        .expected.minor
    )]
    IncompatibleVersion { path: PathBuf, expected: VersionNumber, actual: VersionNumber },
    #[error(
        "{} claims a compatible shiftbench-plugin version, but its interface types differ from this shiftbench's \
         ({INTERFACE_VERSION}); rebuild the plugin against shiftbench-plugin {INTERFACE_VERSION}",
        .path.display()
    )]
    AbiInstability { path: PathBuf },
    #[error("{} could not be opened: {reason}", .path.display())]
    OpenError { path: PathBuf, reason: String },
    #[error("{} is not a shiftbench plugin", .path.display())]
    NotAPlugin { path: PathBuf },
    #[error(
        "{} was built with an incompatible abi_stable or Rust ABI; rebuild it against shiftbench-plugin {INTERFACE_VERSION}",
        .path.display()
    )]
    IncompatibleAbi { path: PathBuf },
    #[error("{} could not be loaded: {reason}", .path.display())]
    Other { path: PathBuf, reason: String },
    /// The library loaded, but its `load` refused the model.
    #[error("plugin {plugin} could not load the model: {reason}")]
    ModelLoad { plugin: String, reason: String },
}

/// Loads the root module of a plugin library, turning every failure into one sentence (a
/// [`PluginLoadError`]).
pub fn load_library(path: &Path) -> Result<PluginModRef> {
    if !path.exists() {
        return Err(PluginLoadError::Missing { path: path.to_path_buf() }.into());
    }
    // Look before abi_stable does, to say precisely what is wrong.
    // SAFETY: loading runs the library's initialisers; a plugin is code the user chose to run
    // (as `--model` or on the plugin path), which is the trust every plugin host extends. Rust
    // plugins (all a shiftbench plugin can be) have no initialisers of their own.
    let lib = unsafe { libloading::Library::new(path) }
        .map_err(|e| PluginLoadError::NotALibrary { path: path.to_path_buf(), reason: e.to_string() })?;
    // SAFETY: only whether the symbol exists is used: the pointer is never read or called, and
    // `lib` (which it would borrow from) is dropped just below.
    let has_root = unsafe { lib.get::<*const u8>(ROOT_SYMBOL.as_bytes()) }.is_ok();
    drop(lib);
    if !has_root {
        return Err(PluginLoadError::NoRootModule { path: path.to_path_buf() }.into());
    }
    let header = lib_header_from_path(path).map_err(|e| library_error(path, e))?;
    // Plugins of every compatible interface version, 0.1.0 (without `load_typed`) included.
    Ok(init_plugin_module(header).map_err(|e| library_error(path, e))?)
}

fn library_error(path: &Path, e: LibraryError) -> PluginLoadError {
    let path = path.to_path_buf();
    match e {
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => {
            PluginLoadError::IncompatibleVersion { path, expected: expected_version, actual: actual_version }
        }
        LibraryError::AbiInstability(_) => PluginLoadError::AbiInstability { path },
        LibraryError::OpenError { err, .. } => PluginLoadError::OpenError { path, reason: err.to_string() },
        LibraryError::GetSymbolError { .. } => PluginLoadError::NotAPlugin { path },
        LibraryError::InvalidAbiHeader(_) | LibraryError::InvalidCAbi { .. } => {
            PluginLoadError::IncompatibleAbi { path }
        }
        other => PluginLoadError::Other { path, reason: other.to_string().trim().to_string() },
    }
}

/// The longest embedding a model may declare (values per image).
pub const MAX_EMBEDDING_LEN: usize = 1 << 20;

/// A plugin's card (checked with [`validate_card`]) and embedding length (at most
/// [`MAX_EMBEDDING_LEN`]) as a [`ModelState`] that answers with scores.
pub fn checked_state(card: ModelCard, plugin_name: String, embedding_len: usize) -> Result<ModelState> {
    let labels = validate_card(&card, &plugin_name)?;
    if embedding_len > MAX_EMBEDDING_LEN {
        bail!(
            "plugin {plugin_name}: an embedding of {embedding_len} values is more than the {MAX_EMBEDDING_LEN} allowed"
        );
    }
    Ok(ModelState { card, labels, plugin_name, embedding_len, output: Output::Scores })
}

/// Checks what a plugin says about itself before anything trusts it.
pub fn validate_card(card: &ModelCard, plugin: &str) -> Result<Vec<String>> {
    let labels: Vec<String> = card.labels.iter().map(|s| s.to_string()).collect();
    if card.name.trim().is_empty() || card.name.len() > 200 || card.name.chars().any(char::is_control) {
        bail!(
            "plugin {plugin}: the model card's name {:?} is empty, too long or has control characters",
            card.name.as_str()
        );
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
            bail!(
                "plugin {plugin}: label {l} appears twice in the label list (at {} and {i})",
                labels.iter().position(|x| x == l).unwrap_or(0)
            );
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

impl LoadedModel {
    /// What the plugin read from the model file, in a few lines (empty when it says nothing).
    pub fn describe(&self) -> String {
        self.model.describe()
    }

    /// Loads `--model` (library, name or model YAML) with `threads` for inference.
    pub fn open(arg: &str, threads: u32) -> Result<LoadedModel> {
        let r = ModelRef::resolve(arg)?;
        Self::load(&r.library, r.config_path(), threads)
    }

    pub fn load(library: &Path, config: Option<&Path>, threads: u32) -> Result<LoadedModel> {
        let module = load_library(library)?;
        let plugin_name = module.plugin_name()().to_string();
        let request = LoadRequest {
            config_path: config.map(|c| c.to_string_lossy().into_owned()).unwrap_or_default().into(),
            threads,
        };
        let loaded = match (module.load_embed(), module.load_typed()) {
            (Some(load), _) => load(&request).into_result().map(Model::Embed),
            (None, Some(load)) => load(&request).into_result().map(Model::Typed),
            (None, None) => module.load()(&request).into_result().map(Model::Legacy),
        };
        let model = loaded.map_err(|reason: abi_stable::std_types::RString| PluginLoadError::ModelLoad {
            plugin: plugin_name.clone(),
            reason: reason.into_string(),
        })?;
        let state = checked_state(model.card(), plugin_name, model.embedding_len())?;
        Ok(LoadedModel { state, library: library.to_path_buf(), config: config.map(Path::to_path_buf), model })
    }
}

impl ModelBackend for LoadedModel {
    fn state(&self) -> &ModelState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut ModelState {
        &mut self.state
    }

    /// Scores (or embeds) `batch` images; checks the answer's shape at the boundary.
    fn run(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>> {
        let expect_in = batch * self.state.card.preprocess.image_len();
        if input.len() != expect_in {
            bail!("internal error: batch of {batch} needs {expect_in} values, got {}", input.len());
        }
        let answer = match self.state.output {
            Output::Scores => self.model.infer(input, batch as u32),
            Output::Embedding => self.model.embed(input, batch as u32),
        };
        let out = match answer {
            Ok(v) => v,
            // The model is unusable (it panicked): the pipeline stops it.
            Err(PluginError { kind: ErrorKind::Fatal, message }) => {
                return Err(ModelStopped(format!("plugin {} stopped: {message}", self.state.plugin_name)).into())
            }
            Err(PluginError { kind: ErrorKind::Sample, message }) => {
                bail!("plugin {} failed: {message}", self.state.plugin_name)
            }
        };
        let per = self.row_len();
        let expect = batch * per;
        if out.len() != expect {
            // Values of the wrong shape cannot be attributed to images: stop trusting the model.
            let (what, unit) = match self.state.output {
                Output::Scores => ("scores", "labels"),
                Output::Embedding => ("embedding values", "values per embedding"),
            };
            let rows = if out.len() % per == 0 {
                format!(" ({what} for {} images: it was asked for {batch})", out.len() / per)
            } else {
                String::new()
            };
            return Err(ModelStopped(format!(
                "plugin {} broke the interface: it returned {} {what} for {batch} images x {per} {unit}, expected {expect}{rows}",
                self.state.plugin_name,
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

    use crate::host::model::find_plugin;
    use shiftbench_model_config::known_wnid;

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
