//! Isolation: each model runs in a worker process, so a plugin that segfaults, aborts, hangs or
//! leaks takes down only its worker, never the run.
//!
//! The harness spawns its own executable with the hidden subcommand `__worker` (see [`serve`]),
//! which loads the plugin with [`LoadedModel::load`] (so every check of the in-process path
//! applies there too) and answers requests on its stdin/stdout. [`WorkerModel`] is the harness's
//! side: a [`Scorer`] like [`LoadedModel`], so the pipeline does not know the difference.
//!
//! ## Protocol
//! Frames in both directions: a tag byte, the payload length as a little-endian u64, the payload.
//! Batches and scores travel as raw native-endian f32 bytes (both ends are the same binary on the
//! same machine), no per-value encoding.
//!
//! On Linux a batch does not cross the pipe at all: the harness creates an anonymous shared
//! memory file (`memfd_create`), hands it to the worker as fd 3 (`--shm-fd 3`), copies each
//! batch into it and sends only an `M` frame; the worker maps it read-only and gives the plugin
//! a slice of it. That saves two kernel copies and the worker's fresh pages per batch (19 MB for
//! 32 images at 224 px). The harness writes the memory only while no batch is in flight, and
//! the worker only reads it, so a plugin cannot change what the harness sees. Elsewhere, or if
//! the memory cannot be set up, batches travel over the pipe in `I` frames.
//!
//! | tag | direction | payload |
//! |-----|-----------|---------|
//! | `I` | harness -> worker | batch size (u32 LE), then `batch * image_len` f32 |
//! | `M` | harness -> worker | batch size (u32 LE), byte length (u64 LE): the batch is at the start of the shared memory |
//! | `O` | harness -> worker | one byte: what later `S` replies hold, 0 scores (the start), 1 embeddings; no reply |
//! | `C` | worker -> harness | the model card as JSON, with its embedding length (once, after loading) |
//! | `L` | worker -> harness | the load error, UTF-8 (then the worker exits) |
//! | `S` | worker -> harness | `batch * labels` f32 scores, or `batch * embedding_len` f32 after `O` 1 |
//! | `E` | worker -> harness | the plugin's error for this batch, UTF-8 |
//! | `F` | worker -> harness | the model stopped for good (it panicked, or broke the contract), UTF-8 |
//!
//! A text-encoder worker (`__worker --text-encoder`, [`text_serve`], [`text_client`]) speaks the
//! same frames with one request of its own: `T` (harness -> worker), the number of texts (u32
//! LE), then each text's byte length (u32 LE) and UTF-8 bytes; its `C` frame is the encoder's
//! info as JSON, and `S` holds `texts * dim` f32, the raw embeddings (the harness checks and
//! normalises them).
//!
//! Closing the worker's stdin asks it to exit. The worker keeps its stdout for the protocol only:
//! at start it moves the protocol to a private copy of fd 1 and points fd 1 at stderr, so a
//! plugin that prints cannot corrupt a frame. Its stderr is the harness's (forwarded line by
//! line; the last lines are kept to explain a crash).
//!
//! ## Timeouts and crashes
//! A watchdog thread kills the worker when a load or a batch takes longer than its timeout. Any
//! broken exchange (EOF, a malformed frame, a timeout) turns into [`ModelStopped`] with one
//! sentence saying what happened: the signal that killed the worker (SIGSEGV, SIGABRT, ...), its
//! exit status, or the timeout, plus the worker's last words on stderr. The worker runs in its
//! own process group, so a Ctrl-C at the terminal reaches only the harness (which then stops
//! cleanly after the batch in flight), and on Linux it is killed if the harness dies.

//!
//! The parts: [`protocol`] (frames, the card on the wire), [`shm`] (shared memory), [`serve`]
//! (the worker's side), [`watchdog`] (timeouts, the worker's stderr), [`process`] (a started
//! worker, and why an exchange with it failed), [`client`] (the harness's side, [`WorkerModel`]);
//! [`text_serve`] and [`text_client`], the same for a text encoder.

pub mod client;
pub mod process;
pub mod protocol;
pub mod serve;
pub mod shm;
pub mod text_client;
pub mod text_serve;
pub mod watchdog;

use std::time::Duration;

use anyhow::Result;

pub use client::{WorkerModel, WorkerOptions, DEFAULT_BATCH_TIMEOUT, DEFAULT_LOAD_TIMEOUT};
pub use process::WORKER_COMMAND;
pub use serve::{serve, WorkerExit};
pub use text_client::WorkerTextEncoder;
pub use text_serve::serve_text;

use crate::host::model::ModelRef;
use crate::host::plugin::LoadedModel;
use crate::host::scorer::{ModelBackend, Scorer};

/// How the run loads models. The library default is in-process (a program embedding the
/// library has no `__worker` subcommand); the CLI defaults to worker processes.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Isolation {
    /// Load plugins into this process (`--in-process`): fastest to debug, but a crashing plugin
    /// takes the run down with it.
    #[default]
    InProcess,
    /// Run every model in a worker process.
    Worker(WorkerOptions),
}

/// The command-line options that choose [`Isolation`] (`run` and `demo` flatten them in).
#[derive(clap::Args, Debug, Clone)]
pub struct IsolationArgs {
    /// Load plugins into the shiftbench process instead of one worker process per model: for
    /// debugging a plugin; a plugin that crashes then takes the whole run down.
    #[arg(long)]
    pub in_process: bool,
    /// Seconds one batch may take before its model's worker is killed and the model stopped.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_BATCH_TIMEOUT, value_parser = parse_secs)]
    pub batch_timeout: f64,
    /// Seconds loading a model may take before its worker is killed.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_LOAD_TIMEOUT, value_parser = parse_secs)]
    pub load_timeout: f64,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1e9 => Ok(v),
        _ => Err(format!("expected a positive number of seconds, got {s:?}")),
    }
}

impl IsolationArgs {
    pub fn isolation(&self) -> Result<Isolation> {
        if self.in_process {
            return Ok(Isolation::InProcess);
        }
        let mut o = WorkerOptions::current_exe()?;
        o.batch_timeout = Duration::from_secs_f64(self.batch_timeout);
        o.load_timeout = Duration::from_secs_f64(self.load_timeout);
        Ok(Isolation::Worker(o))
    }
}

/// Opens `n` copies of `--model` as the isolation mode says: worker processes start at once and
/// load in parallel. Call it from the run's own thread (see [`WorkerModel::spawn_many`]).
pub fn open_scorers(
    r: &ModelRef,
    threads: u32,
    isolation: &Isolation,
    n: usize,
) -> Result<Vec<Box<dyn Scorer + Send>>> {
    // The `name:` a model YAML sets names the model whatever its plugin calls it.
    fn named<B: ModelBackend + Send + 'static>(mut b: B, r: &ModelRef) -> Box<dyn Scorer + Send> {
        if let Some(n) = r.given_name() {
            b.state_mut().card.name = n.into();
        }
        Box::new(b)
    }
    Ok(match isolation {
        Isolation::InProcess => (0..n)
            .map(|_| Ok(named(LoadedModel::load(&r.library, r.config_path(), threads)?, r)))
            .collect::<Result<_>>()?,
        Isolation::Worker(o) => WorkerModel::spawn_many(o, &r.library, r.config_path(), threads, n)?
            .into_iter()
            .map(|w| named(w, r))
            .collect(),
    })
}
