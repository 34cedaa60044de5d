//! How a pass runs: images per model call, decode threads, and which labels a model's
//! predictions are taken over ([`Argmax`]).

use serde::{Deserialize, Serialize};

/// Which labels a model's top-k is taken over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Argmax {
    /// All labels for models whose labels are all ImageNet-1k classes; the suite's classes for
    /// models with other labels (ImageNet-21k/22k), whose extra classes no suite sample has.
    #[default]
    Auto,
    /// Always only the suite's classes.
    Suite,
    /// Always every label the model has.
    All,
}

impl Argmax {
    /// Its name, as `--argmax` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Argmax::Auto => "auto",
            Argmax::Suite => "suite",
            Argmax::All => "all",
        }
    }
}

impl std::str::FromStr for Argmax {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Argmax::Auto),
            "suite" => Ok(Argmax::Suite),
            "all" => Ok(Argmax::All),
            o => Err(format!("argmax must be auto, suite or all, not {o:?}")),
        }
    }
}

/// Images per model call when nothing says otherwise, for a model running as one copy.
pub const DEFAULT_BATCH: usize = 32;

/// Images per model call when nothing says otherwise, for a model running as several copies:
/// each copy computes on one core, where small batches stay in its caches (mobilenetv2-12-int8
/// on the 1,000 samples: 5% faster end to end than batches of 32, at half the memory).
pub const DEFAULT_COPY_BATCH: usize = 8;

/// The images per call asked of a model with `copies` copies when the options say `batch`
/// (0: [`DEFAULT_BATCH`] or [`DEFAULT_COPY_BATCH`]); the model's own limit applies after this.
pub fn requested_batch(batch: usize, copies: usize) -> usize {
    match batch {
        0 if copies > 1 => DEFAULT_COPY_BATCH,
        0 => DEFAULT_BATCH,
        b => b,
    }
}

#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Images per model call (capped by the model's `max_batch`); 0: see [`requested_batch`].
    pub batch: usize,
    /// Decode/preprocess threads.
    pub threads: usize,
    /// Which labels predictions are taken over.
    pub argmax: Argmax,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            batch: DEFAULT_BATCH,
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            argmax: Argmax::Auto,
        }
    }
}
