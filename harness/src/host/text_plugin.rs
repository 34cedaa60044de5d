//! A text encoder from a plugin (interface 0.1.3's `load_text_encoder`), called in this process:
//! [`LoadedTextEncoder`]. What the worker process runs for a text encoder, and what
//! [`crate::host::text`] runs directly under `Isolation::InProcess`.
//!
//! [`TextBackend`] is what both (this one, and the worker client) give the checked encoder of
//! [`crate::host::text`]: the encoder's [`EncoderInfo`] and raw, unnormalised embeddings. Every
//! failure is one sentence naming the encoder and its plugin.

use std::path::{Path, PathBuf};

use abi_stable::std_types::{ROption, RString};
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use shiftbench_plugin::{ErrorKind, FfiTextEncoderBox, PluginError, TextLoadRequest};

use crate::host::plugin::{load_library, MAX_EMBEDDING_LEN};
use crate::host::scorer::ModelStopped;

/// What a loaded text encoder is, checked ([`EncoderInfo::checked`]); it crosses the worker pipe
/// as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderInfo {
    /// The encoder's name (`all-mpnet-base-v2`, `toy-hash`).
    pub name: String,
    /// Values in one embedding.
    pub dim: usize,
    /// The most texts one call may carry (0: no limit).
    pub max_batch: usize,
    /// The plugin's own name and version.
    pub plugin_name: String,
}

impl EncoderInfo {
    /// Checks what a plugin says about its encoder before anything trusts it.
    pub fn checked(self) -> Result<EncoderInfo> {
        let plugin = &self.plugin_name;
        if self.name.trim().is_empty() || self.name.len() > 200 || self.name.chars().any(char::is_control) {
            bail!(
                "plugin {plugin}: its text encoder's name {:?} is empty, too long or has control characters",
                self.name
            );
        }
        if self.dim == 0 || self.dim > MAX_EMBEDDING_LEN {
            bail!(
                "plugin {plugin}: text encoder {} says its embeddings have {} values (1 to {MAX_EMBEDDING_LEN} allowed)",
                self.name,
                self.dim
            );
        }
        Ok(self)
    }

    /// The encoder and its plugin, as messages name them: `text encoder toy-hash (plugin
    /// shiftbench-example-plugin 0.1.0)`.
    pub fn who(&self) -> String {
        format!("text encoder {} (plugin {})", self.name, self.plugin_name)
    }
}

/// A text encoder wherever it runs: its info, and raw embeddings.
pub trait TextBackend: Send {
    fn info(&self) -> &EncoderInfo;

    /// The unnormalised embeddings of `texts` (at most `max_batch` of them when that is not 0),
    /// as the plugin returned them; an error is a sentence naming the encoder, [`ModelStopped`]
    /// when the encoder cannot go on (it panicked, crashed, hung).
    fn encode_raw(&mut self, texts: &[&str]) -> Result<Vec<f32>>;
}

/// A text encoder loaded into this process.
pub struct LoadedTextEncoder {
    info: EncoderInfo,
    pub library: PathBuf,
    encoder: FfiTextEncoderBox,
    /// Why it stopped, once it has.
    stopped: Option<String>,
}

impl LoadedTextEncoder {
    /// Loads the text encoder of the plugin `library`, with its description file `config` (an
    /// export's `encoder.yaml`; None for a plugin's built-in encoder).
    pub fn load(library: &Path, config: Option<&Path>, threads: u32) -> Result<LoadedTextEncoder> {
        let module = load_library(library)?;
        let plugin_name = module.plugin_name()().to_string();
        let Some(load) = module.load_text_encoder() else {
            let version = module.interface_version()();
            bail!(
                "plugin {plugin_name} ({}) offers no text encoder: it was built against shiftbench-plugin interface \
                 {version}, before text encoders (0.1.3)",
                library.display()
            );
        };
        let request = TextLoadRequest {
            config_path: config.map(|c| c.to_string_lossy().into_owned()).unwrap_or_default().into(),
            threads,
        };
        let encoder = match load(&request) {
            ROption::RNone => bail!("plugin {plugin_name} ({}) offers no text encoder", library.display()),
            ROption::RSome(r) => r
                .into_result()
                .map_err(|reason: RString| anyhow!("plugin {plugin_name} could not load its text encoder: {reason}"))?,
        };
        let i = encoder.info();
        let info = EncoderInfo {
            name: i.name.into_string(),
            dim: i.dim as usize,
            max_batch: i.max_batch as usize,
            plugin_name,
        }
        .checked()?;
        Ok(LoadedTextEncoder { info, library: library.to_path_buf(), encoder, stopped: None })
    }
}

impl TextBackend for LoadedTextEncoder {
    fn info(&self) -> &EncoderInfo {
        &self.info
    }

    fn encode_raw(&mut self, texts: &[&str]) -> Result<Vec<f32>> {
        if let Some(why) = &self.stopped {
            return Err(ModelStopped(why.clone()).into());
        }
        let owned: Vec<RString> = texts.iter().map(|&t| RString::from(t)).collect();
        match self.encoder.encode(owned.as_slice().into()).into_result() {
            Ok(v) if v.len() == texts.len() * self.info.dim => Ok(v.into_vec()),
            Ok(v) => {
                // Values of the wrong shape cannot be attributed to texts: stop trusting it.
                let why = format!(
                    "{} broke the interface: it returned {} values for {} texts of {} values each, expected {}",
                    self.info.who(),
                    v.len(),
                    texts.len(),
                    self.info.dim,
                    texts.len() * self.info.dim
                );
                self.stopped = Some(why.clone());
                Err(ModelStopped(why).into())
            }
            Err(PluginError { kind: ErrorKind::Fatal, message }) => {
                let why = format!("{} stopped: {message}", self.info.who());
                self.stopped = Some(why.clone());
                Err(ModelStopped(why).into())
            }
            Err(PluginError { kind: ErrorKind::Sample, message }) => {
                Err(anyhow!("{} failed on a batch of {} texts: {message}", self.info.who(), texts.len()))
            }
        }
    }
}
