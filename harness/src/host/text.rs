//! Text encoders: what `shiftbench laionet build` embeds captions and class queries with.
//!
//! The seam is [`TextEncoder`]: the builder hands it texts and gets L2-normalised embeddings
//! back, wherever the encoder runs. [`open_text_encoder`] resolves the `--encoder` argument (a
//! folder prepared by `scripts/export-text-encoder.py`, or a plugin's built-in encoder such as
//! the example plugin's toy one) and opens it behind the plugin interface.

use anyhow::{bail, Result};

use super::worker::Isolation;

/// An open text encoder.
pub trait TextEncoder: Send {
    /// The encoder's name, as the similarity column names it
    /// (`text_to_name_def_wnid_similarity_<name>`), e.g. `all-mpnet-base-v2`.
    fn name(&self) -> &str;

    /// Values in one embedding.
    fn dim(&self) -> usize;

    /// The embeddings of `texts`: `texts.len() * dim()` values, row-major, each row
    /// L2-normalised (so that a dot product is the cosine similarity).
    fn encode(&mut self, texts: &[&str]) -> Result<Vec<f32>>;
}

/// How to open a text encoder.
#[derive(Debug, Clone, Default)]
pub struct TextEncoderOptions {
    /// Threads the encoder may use (0: the plugin decides).
    pub threads: usize,
    /// In this process, or in a worker process.
    pub isolation: Isolation,
}

/// Opens the text encoder `arg` names.
pub fn open_text_encoder(arg: &str, _options: &TextEncoderOptions) -> Result<Box<dyn TextEncoder>> {
    bail!("text encoder {arg}: no plugin offers text encoders yet")
}
