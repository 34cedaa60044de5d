//! The host layer: everything between the pipeline and a model plugin.
//!
//! - [`scorer`]: the seam, [`Scorer`] (a model that scores batches, wherever it runs),
//!   [`ModelStopped`] (the one error that takes a model out of a pass) and [`NoEmbedding`];
//! - [`card`]: a preprocessing spec in plain types (the worker pipe, result files);
//! - [`model`]: a `--model` argument resolved once into a [`ModelRef`] (plugin library, model YAML
//!   read and checked);
//! - [`plugin`]: loading a plugin library through `abi_stable` (each way it can fail a
//!   [`plugin::PluginLoadError`]), checking its card, calling it in this process ([`LoadedModel`]);
//! - [`worker`]: the same model in a worker process (the protocol, shared memory, the watchdog),
//!   so that a plugin that crashes or hangs costs its model, not the run;
//! - [`text`]: text encoders (`--encoder`), the seam the LAIONet builder encodes captions through;
//!   [`text_plugin`], a plugin's text encoder in this process.
//!
//! It knows nothing of suites, images or results: it takes tensors and gives scores (or texts, and
//! gives embeddings).

pub mod card;
pub mod model;
pub mod plugin;
pub mod scorer;
pub mod text;
pub mod text_plugin;
pub mod worker;

pub use model::ModelRef;
pub use plugin::LoadedModel;
pub use scorer::{ModelStopped, NoEmbedding, Scorer};
pub use text::{open_text_encoder, TextEncoder, TextEncoderOptions};
pub use worker::{open_scorers, Isolation, IsolationArgs, WorkerOptions};
