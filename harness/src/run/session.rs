//! A session of running models: what every command that runs models stands on (`run`,
//! `similarity`, and any later one). It records what its result is made from ([`RunInfo`]), loads
//! the suites, then takes the output folder's lock ([`Session::lock`]: nothing is written before,
//! so input found unusable leaves no trace) and holds it for as long as it lives, opens the models
//! (each as its copies, with the [`Identity`] its logs are written under) and their logs (resuming
//! only the same model's, images checked) and drives passes, telling its [`Reporter`] what
//! happens. The commands say only what is theirs: which logs, which output, what to compute.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::data::suite::Suite;
use crate::host::card::card_summary;
use crate::host::model::ModelRef;
use crate::results::identity::Identity;
use crate::results::paths::lock_path;
use crate::results::predlog::{LogHeader, LogWriter, Record};
use crate::results::provenance::{RunInfo, SuiteInfo};
use crate::results::shard::Shard;
use crate::run::events::{Event, Reporter};
pub use crate::run::models::ModelOptions;
use crate::run::models::{model_info, open_copies, Replicas};
use crate::run::options::EvalOptions;
use crate::run::pipeline::prepare::changed_images;
use crate::run::pipeline::{self, Job, PassStats};
use crate::util::interrupt::Interrupted;
use crate::util::lock::{DirLock, Locked};

/// A model opened in a session.
pub struct OpenModel {
    /// The name its results and logs are filed under.
    pub name: String,
    /// What decides its logs' records (see [`Identity`]).
    pub identity: Identity,
    /// Its copies, all ready (the first is the one reported on).
    pub copies: Replicas,
}

/// A session: the lock of its output folder, the provenance being recorded, and the reporter.
pub struct Session<'r> {
    lock: Option<DirLock>,
    /// What the result is made from, filled in as suites are loaded and models opened.
    pub info: RunInfo,
    reporter: &'r dyn Reporter,
}

impl<'r> Session<'r> {
    /// A session of `kind` (`run`, `similarity`) that has written nothing yet.
    pub fn new(kind: &str, reporter: &'r dyn Reporter) -> Session<'r> {
        Session { lock: None, info: RunInfo::start(kind), reporter }
    }

    /// Takes the lock of `out` (its shard's part) before anything is written there, refused
    /// with an error naming the other holder while another run holds it ([`Locked`]); a lock left
    /// by a killed run is taken over, with an event.
    pub fn lock(&mut self, out: &Path, shard: Option<Shard>) -> Result<()> {
        let lock = DirLock::acquire(&lock_path(out, shard)).map_err(|e| {
            if !e.is::<Locked>() {
                return e;
            }
            let shard = shard.map(|s| format!(" (shard {s})")).unwrap_or_default();
            e.context(format!(
                "{}{shard} is being written by another shiftbench run (one at a time: wait for it to finish, or give this run another --out)",
                out.display()
            ))
        })?;
        if let Some(why) = &lock.took_over {
            self.reporter.report(Event::LockTakenOver { lock: lock.path(), why });
        }
        self.info.shard = shard;
        self.lock = Some(lock);
        Ok(())
    }

    /// The reporter events go to.
    pub fn reporter(&self) -> &'r dyn Reporter {
        self.reporter
    }

    /// Resolves every `--model` (a misspelt one fails now, before anything runs).
    pub fn resolve(models: &[String]) -> Result<Vec<ModelRef>> {
        models.iter().map(|m| ModelRef::resolve(m).with_context(|| format!("model {m}"))).collect()
    }

    /// Loads the suites (only `shard`'s samples of each) and records them.
    pub fn load_suites(&mut self, paths: &[PathBuf], shard: Option<Shard>) -> Result<Vec<Suite>> {
        self.reporter.report(Event::ListingSuites);
        let loaded: Result<Vec<Suite>> = paths.iter().map(|p| Suite::load(p)).collect();
        let notes: Vec<String> = loaded.iter().flatten().flat_map(|s| s.notes.clone()).collect();
        self.reporter.report(Event::SuitesListed { notes: &notes });
        let mut suites = loaded?;
        for suite in &mut suites {
            let mut si = SuiteInfo::of(suite);
            if let Some(sh) = shard {
                suite.samples.retain(|s| sh.contains(&s.id));
                si.samples_in_shard = Some(suite.samples.len());
            }
            self.info.suites.push(si);
        }
        Ok(suites)
    }

    /// Opens `model` as its copies (see [`open_copies`]) and records it; says so when its card
    /// was assumed (a bare model file).
    pub fn open_model(&mut self, model: &ModelRef, opts: &ModelOptions, eval: &EvalOptions) -> Result<OpenModel> {
        let (copies, threads) = open_copies(model, opts)?;
        let mi = model_info(model, &copies, threads, eval);
        let identity = Identity::of_model(&mi, model);
        self.info.models.push(mi);
        let name = copies[0].card().name.to_string();
        if model.assumed() {
            let card = card_summary(copies[0].card(), copies[0].labels());
            self.reporter.report(Event::CardAssumed { arg: &model.arg, name: &name, card: &card });
        }
        Ok(OpenModel { name, identity, copies })
    }

    /// Reopens a model that stopped (for the next suite): fresh copies, nothing recorded again.
    pub fn reopen(&self, model: &ModelRef, opts: &ModelOptions) -> Result<Replicas> {
        Ok(open_copies(model, opts)?.0)
    }

    /// Opens the log at `path` for `header` on `suite` (see [`LogWriter::resume`]): resumed
    /// when it is the same model's, the images of its records checked on `threads` threads;
    /// else a new log. Returns the writer and the ids it already holds.
    pub fn open_log(
        &self,
        path: &Path,
        header: &LogHeader,
        suite: &Suite,
        fresh: bool,
        threads: usize,
    ) -> Result<(LogWriter, HashSet<String>)> {
        debug_assert!(self.lock.is_some(), "a log is opened only under the folder's lock");
        let changed = |records: &[Record]| changed_images(suite, records, threads);
        let (writer, resumed) = LogWriter::resume(path, header, fresh, &changed)?;
        self.reporter.report(Event::LogOpened { log: path, total: suite.samples.len(), resumed: &resumed });
        Ok((writer, resumed.done))
    }

    /// One pass over `suite` for `jobs` ([`pipeline::evaluate_many`]), with its events; an error
    /// other than an interrupt says which suite.
    pub fn pass(&self, suite: &Suite, jobs: &mut [Job<'_>], eval: &EvalOptions) -> Result<PassStats> {
        pipeline::evaluate_many(jobs, suite, eval, self.reporter).map_err(|e| {
            if e.is::<Interrupted>() {
                e // it says itself how to resume
            } else {
                e.context(format!("suite {}", suite.name))
            }
        })
    }

    /// Ends the session: the provenance, finished (the lock is released when the session drops).
    pub fn finish(&mut self) -> RunInfo {
        self.info.finish();
        self.info.clone()
    }
}
