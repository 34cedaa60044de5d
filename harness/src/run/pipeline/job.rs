//! One model's part in a pass ([`Job`]): the model and its copies, its log, what the log already
//! holds; and what the pass did for it ([`JobOutcome`]), which the caller owns.

use std::collections::HashSet;
use std::time::Duration;

use crate::host::scorer::Scorer;
use crate::results::predlog::LogWriter;

/// One model's part in a pass: the model, its log, the sample ids its log already holds, and
/// where the pass puts what it did for this model.
pub struct Job<'a> {
    pub model: &'a mut dyn Scorer,
    /// More copies of the same model (same card and labels), each scoring other batches at the
    /// same time on its own thread; empty for one copy.
    pub extra: Vec<&'a mut (dyn Scorer + Send)>,
    pub log: &'a mut LogWriter,
    pub done: &'a HashSet<String>,
    pub outcome: &'a mut JobOutcome,
}

/// What a pass did for one job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOutcome {
    /// Samples evaluated now (records written).
    pub evaluated: usize,
    /// Why its model stopped ([`ModelStopped`](crate::host::scorer::ModelStopped)) when it did; its remaining samples were not
    /// evaluated.
    pub stopped: Option<String>,
    /// Images given to its model now (`evaluated` less the samples that failed before the
    /// model: unreadable or undecodable images).
    pub scored: usize,
    /// Wall time inside its model's calls, summed over its copies (see
    /// [`ChunkDone::model_time`](crate::run::pipeline::dispatch::ChunkDone::model_time)).
    pub model_time: Duration,
}
