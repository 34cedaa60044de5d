//! Stopping cleanly on Ctrl-C (SIGINT) or SIGTERM (what Slurm and Kubernetes send before they
//! kill a job).
//!
//! The first signal asks the run to stop: the pipeline finishes the batch in flight, writes and
//! flushes what was evaluated to the predictions log and returns [`Interrupted`]; the CLI says how
//! to resume and exits with [`EXIT_INTERRUPTED`]. A second signal exits at once (the log keeps
//! every flushed batch; a torn last line is cut when the run resumes).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// The exit status of an interrupted run (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Asks the run to stop after the batch in flight (what the signal handler does; tests call it).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// A stop signal as it arrives: its name (`Ctrl-C`, `SIGTERM`) and whether it is the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    pub name: &'static str,
    /// A stop was already asked for: this one exits at once.
    pub again: bool,
}

/// Installs the SIGINT/SIGTERM handler. Call once, from the CLI, with what to tell the person
/// (`say` runs on the signal thread, before a second signal exits the process).
#[cfg(unix)]
pub fn install(say: impl Fn(Stop) + Send + 'static) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("shiftbench-signals".into()).spawn(move || {
        for sig in signals.forever() {
            let name = if sig == SIGINT { "Ctrl-C" } else { "SIGTERM" };
            if requested() {
                say(Stop { name, again: true });
                std::process::exit(EXIT_INTERRUPTED as i32);
            }
            request();
            say(Stop { name, again: false });
        }
    })?;
    Ok(())
}

#[cfg(not(unix))]
pub fn install(_say: impl Fn(Stop) + Send + 'static) -> anyhow::Result<()> {
    Ok(())
}

/// The run stopped because a stop was asked for. Everything evaluated is in the logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "interrupted: {done} of {total} samples are saved in {}; run the same command again (without --fresh) to resume",
    .log.display()
)]
pub struct Interrupted {
    /// The log being written when the run stopped, and how many of its suite's samples it holds.
    pub log: PathBuf,
    pub done: usize,
    pub total: usize,
}
