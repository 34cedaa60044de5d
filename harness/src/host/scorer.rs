//! The seam between the pipeline and a model: [`Scorer`], whatever runs the model (a plugin in
//! this process, a worker process), [`ModelStopped`], the one error that takes a model out of a
//! pass, and [`NoEmbedding`], asking a model without an embedding for one.
//!
//! What every scorer of a loaded model knows (card, labels, plugin, embedding, output) is one
//! [`ModelState`]; a type that holds one and implements [`ModelBackend`] (how to run a batch,
//! and how to switch what it answers with) is a [`Scorer`] whose getters read that state, so
//! [`LoadedModel`](crate::host::LoadedModel) and the worker client keep only what differs.

use anyhow::Result;
use shiftbench_plugin::ModelCard;

/// A model that cannot go on: its worker crashed or hung, it panicked, or it broke the
/// interface's contract (scores of the wrong shape). The pipeline stops that model on that suite
/// and reports this sentence; samples it has not scored stay out of the log, so a later run
/// retries them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModelStopped(pub String);

/// A model without an embedding was asked for one ([`Scorer::set_output`] with
/// [`Output::Embedding`]): `shiftbench similarity` needs one, and says how to name it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "model {model} ({plugin}) has no embedding: name one in its model YAML (`embedding: <tensor>` for an ONNX \
     model, for example `embedding: pool10_1` for SqueezeNet 1.1; `embedding: <method>` for a TorchScript \
     module), or implement Classifier::embedding_len and embed in a Rust plugin"
)]
pub struct NoEmbedding {
    /// The model's name (its card's).
    pub model: String,
    /// The plugin's name and version.
    pub plugin: String,
}

/// What a model's answers are: its scores (a run), or its embeddings (`shiftbench similarity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    #[default]
    Scores,
    Embedding,
}

/// The most input values one batch may hold (1 GiB of f32): bounds memory whatever the card says.
pub const MAX_BATCH_VALUES: usize = 1 << 28;

/// What a scorer knows about the model it runs, wherever it runs: the validated card and its
/// labels, the plugin, the embedding's length, and what [`Scorer::infer`] answers with.
/// Built checked by [`crate::host::plugin::checked_state`].
#[derive(Debug, Clone, PartialEq)]
pub struct ModelState {
    pub card: ModelCard,
    /// The card's labels (wnids in output order).
    pub labels: Vec<String>,
    /// The plugin's name and version, for messages.
    pub plugin_name: String,
    /// Values in one image's embedding (0: none).
    pub embedding_len: usize,
    pub output: Output,
}

/// What differs between scorers that hold a [`ModelState`]: how a batch is run, and what the
/// model is told when its output switches. Every `ModelBackend` is a [`Scorer`] (the getters
/// read [`ModelBackend::state`]; `set_output` checks the switch, makes it, then records it).
pub trait ModelBackend {
    fn state(&self) -> &ModelState;
    fn state_mut(&mut self) -> &mut ModelState;
    /// [`Scorer::infer`]: `batch` images in, `batch * row_len()` values out, checked.
    fn run(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>>;
    /// [`Scorer::infer_filled`]; by default `fill` writes into `scratch`, then [`Self::run`].
    fn run_filled(
        &mut self,
        batch: usize,
        len: usize,
        scratch: &mut Vec<f32>,
        fill: &mut dyn FnMut(&mut [f32]),
    ) -> Result<Vec<f32>> {
        self.run(filled(scratch, len, fill), batch)
    }
    /// Tells the model to answer with `output` from now on (already checked to be possible);
    /// by default there is nothing to tell.
    fn switch_output(&mut self, _output: Output) -> Result<()> {
        Ok(())
    }
}

impl<B: ModelBackend> Scorer for B {
    fn card(&self) -> &ModelCard {
        &self.state().card
    }

    fn labels(&self) -> &[String] {
        &self.state().labels
    }

    fn plugin_name(&self) -> &str {
        &self.state().plugin_name
    }

    fn embedding_len(&self) -> usize {
        self.state().embedding_len
    }

    fn output(&self) -> Output {
        self.state().output
    }

    fn set_output(&mut self, output: Output) -> Result<()> {
        self.check_output(output)?;
        self.switch_output(output)?;
        self.state_mut().output = output;
        Ok(())
    }

    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>> {
        self.run(input, batch)
    }

    fn infer_filled(
        &mut self,
        batch: usize,
        len: usize,
        scratch: &mut Vec<f32>,
        fill: &mut dyn FnMut(&mut [f32]),
    ) -> Result<Vec<f32>> {
        self.run_filled(batch, len, scratch, fill)
    }
}

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
    /// Scores `batch` images laid out as the card says: `batch * row_len()` values (scores, or
    /// embeddings after `set_output(Output::Embedding)`).
    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>>;

    /// Values in one image's embedding; 0 when the model has none.
    fn embedding_len(&self) -> usize {
        0
    }

    /// What [`Scorer::infer`] answers with.
    fn output(&self) -> Output {
        Output::Scores
    }

    /// Makes [`Scorer::infer`] answer with `output`. Embeddings need a model with one.
    fn set_output(&mut self, output: Output) -> Result<()> {
        self.check_output(output)
    }

    /// Whether this model can answer with `output`: embeddings need an embedding.
    fn check_output(&self, output: Output) -> Result<()> {
        if output == Output::Embedding && self.embedding_len() == 0 {
            return Err(NoEmbedding { model: self.card().name.to_string(), plugin: self.plugin_name().into() }.into());
        }
        Ok(())
    }

    /// Values per image in [`Scorer::infer`]'s answers.
    fn row_len(&self) -> usize {
        match self.output() {
            Output::Scores => self.labels().len(),
            Output::Embedding => self.embedding_len(),
        }
    }

    /// [`Scorer::infer`] of the `len` input values that `fill` writes (every one of them):
    /// written into `scratch` (kept between calls, so no memory is cleared or allocated once it
    /// is large enough) unless the model has an input buffer of its own, as a worker's shared
    /// memory, which `fill` then writes directly.
    fn infer_filled(
        &mut self,
        batch: usize,
        len: usize,
        scratch: &mut Vec<f32>,
        fill: &mut dyn FnMut(&mut [f32]),
    ) -> Result<Vec<f32>> {
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
pub fn filled<'a>(scratch: &'a mut Vec<f32>, len: usize, fill: &mut dyn FnMut(&mut [f32])) -> &'a [f32] {
    if scratch.len() != len {
        scratch.resize(len, 0.0);
    }
    fill(scratch);
    scratch
}
