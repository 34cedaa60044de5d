//! The seam between running and presenting, as nextest's runner events: the session
//! ([`crate::run::session`]) and the pipeline say what happens as typed [`Event`]s to a
//! [`Reporter`], and decide nothing about how it is shown. The CLI's reporter draws progress bars
//! and writes lines on stderr; a library caller may ignore events ([`Silent`]) or implement its
//! own. Nothing below the CLI prints.

use std::path::Path;

use crate::results::predlog::Resumed;

/// Something that happened while running models.
#[derive(Debug)]
pub enum Event<'a> {
    /// A lock left behind by a killed process was taken over.
    LockTakenOver { lock: &'a Path, why: &'a str },
    /// The suites are being listed (big folders and tables take a while).
    ListingSuites,
    /// The suites are listed; `notes` is what loading them noticed (one line each).
    SuitesListed { notes: &'a [String] },
    /// A model given as a bare file runs with a card read from the model or assumed.
    CardAssumed {
        /// What `--model` said.
        arg: &'a str,
        /// The model's name.
        name: &'a str,
        /// The card, in one line.
        card: &'a str,
    },
    /// A log of a model on a suite was opened: new, resumed, or an earlier one kept aside.
    LogOpened {
        log: &'a Path,
        /// Samples the log is for.
        total: usize,
        resumed: &'a Resumed,
    },
    /// A pass over a suite starts, for `models` (their names), with `samples` to read.
    PassStarted { suite: &'a str, models: &'a [String], samples: usize },
    /// A chunk of `samples` was scored by every model that needed it.
    ChunkScored { samples: usize },
    /// A pass ended: `complete` unless a model stopped or a stop was asked for.
    PassFinished { suite: &'a str, complete: bool },
    /// Predictions logs are being read (`merge`): `total` of them.
    ReadingLogs { total: usize },
    /// One of them was read.
    LogRead { log: &'a Path },
    /// All of them were read.
    LogsRead,
    /// `laionet build` starts on `files` caption files holding `rows` captions, of which
    /// `reused` files have a part from an earlier run with the same settings.
    BuildStarted { files: usize, rows: u64, reused: usize },
    /// An earlier run's part for `file` was reused (same file, same settings).
    PartReused { file: &'a Path, candidates: u64 },
    /// `rows` more captions were matched.
    CaptionsMatched { rows: u64 },
    /// The part of `file` was written: `rows` captions, `candidates` naming exactly one class.
    PartWritten { file: &'a Path, rows: u64, candidates: u64, seconds: f64 },
    /// The parts are being put together into the outputs.
    Assembling { parts: usize },
    /// Something worth a line that changes no number (`note: ...`).
    Note(&'a str),
}

/// Takes the events of a run. Called from the thread that drives the run (and, for a pass, the
/// thread that collects the models' answers), so it must be `Sync`.
pub trait Reporter: Sync {
    fn report(&self, event: Event<'_>);
}

/// A reporter that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _event: Event<'_>) {}
}
