//! The CLI's side of the event seam ([`shiftbench::run::events`]): what a session says, drawn as
//! progress bars (only when stderr is a terminal, so logs, pipes and CI output stay clean) and
//! written as lines on stderr.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shiftbench::run::events::{Event, Reporter};
use shiftbench::util::interrupt::Stop;

/// Whether progress should be drawn by default: stderr is a terminal.
pub fn wanted() -> bool {
    std::io::stderr().is_terminal()
}

/// Tells the person what a Ctrl-C or SIGTERM does (see [`shiftbench::util::interrupt`]).
pub fn say_stop(stop: Stop) {
    if stop.again {
        eprintln!("\n{} again: stopping now (the predictions logs keep every finished batch)", stop.name);
    } else {
        eprintln!(
            "\n{}: stopping after the batch in flight and saving what was evaluated (press Ctrl-C again to stop at once)",
            stop.name
        );
    }
}

/// Draws a session's events on stderr.
pub struct Terminal {
    /// Draw progress bars (lines are written either way).
    progress: bool,
    /// The bar or spinner being drawn.
    bar: Mutex<Option<ProgressBar>>,
}

impl Terminal {
    /// A reporter that draws progress when `progress` is asked for and stderr is a terminal.
    pub fn new(progress: bool) -> Terminal {
        Terminal { progress: progress && wanted(), bar: Mutex::new(None) }
    }

    /// Replaces the bar being drawn (clearing the old one).
    fn set_bar(&self, bar: Option<ProgressBar>) {
        if let Ok(mut b) = self.bar.lock() {
            if let Some(old) = b.take() {
                old.finish_and_clear();
            }
            *b = bar;
        }
    }

    /// Does `f` with the bar being drawn, if any.
    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Ok(b) = self.bar.lock() {
            if let Some(bar) = b.as_ref() {
                f(bar);
            }
        }
    }

    /// Writes a line without tearing a bar being drawn.
    fn line(&self, text: &str) {
        match self.bar.lock().ok().and_then(|b| b.clone()) {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    fn bar(&self, len: u64, prefix: String, template: &str) -> Option<ProgressBar> {
        if !self.progress {
            return None;
        }
        let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        b.set_style(ProgressStyle::with_template(template).expect("template").progress_chars("=> "));
        b.set_prefix(prefix);
        Some(b)
    }
}

impl Reporter for Terminal {
    fn report(&self, event: Event<'_>) {
        match event {
            Event::LockTakenOver { lock, why } => {
                self.line(&format!("note: taking over the lock {}: {why}", lock.display()))
            }
            Event::ListingSuites => {
                if self.progress {
                    let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                    b.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("template"));
                    b.set_message("listing suites");
                    b.enable_steady_tick(std::time::Duration::from_millis(120));
                    self.set_bar(Some(b));
                }
            }
            Event::SuitesListed { notes } => {
                self.set_bar(None);
                for n in notes {
                    self.line(n);
                }
            }
            Event::CardAssumed { arg, name, card } => {
                self.line(&format!(
                    "{arg}: no model YAML, so the card was read from the model or assumed (torchvision's defaults): {card}"
                ));
                self.line(&format!(
                    "  if the model was trained otherwise (BGR, 0-255, another size), pin its card: shiftbench model init {arg} --out {name}.yaml, edit, and pass the YAML"
                ));
            }
            Event::LogOpened { log, total, resumed } => {
                if let Some(l) = resumed.describe(log, total) {
                    self.line(&l);
                }
            }
            Event::PassStarted { suite, models, samples } => {
                let who = match models {
                    [one] => one.clone(),
                    many => format!("{} models", many.len()),
                };
                let template = "{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta}";
                self.set_bar(self.bar(samples as u64, format!("{who} on {suite}"), template));
            }
            Event::ChunkScored { samples } => self.with_bar(|b| b.inc(samples as u64)),
            Event::PassFinished { complete, .. } => {
                if let Ok(mut b) = self.bar.lock() {
                    if let Some(bar) = b.take() {
                        if complete {
                            bar.finish_and_clear();
                        } else {
                            bar.abandon();
                        }
                    }
                }
            }
            Event::ReadingLogs { total } => {
                self.set_bar(self.bar(total as u64, "reading logs".into(), "{prefix} [{bar:30}] {pos}/{len} {msg}"))
            }
            Event::LogRead { log } => self.with_bar(|b| {
                b.set_message(log.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
                b.inc(1);
            }),
            Event::LogsRead => self.set_bar(None),
            Event::BuildStarted { files, rows, reused } => {
                let done = if reused > 0 {
                    format!(" ({reused} done by an earlier run with the same settings, reused)")
                } else {
                    String::new()
                };
                self.line(&format!("{files} caption files{done}, {rows} captions to match"));
                let template = "{prefix} [{bar:30}] {pos}/{len} captions {per_sec} eta {eta}";
                self.set_bar(self.bar(rows, "matching".into(), template));
            }
            Event::PartReused { file, candidates } => {
                self.line(&format!("{}: done before ({candidates} candidates), reused", file.display()))
            }
            Event::CaptionsMatched { rows } => self.with_bar(|b| b.inc(rows)),
            Event::PartWritten { file, rows, candidates, seconds } => self.line(&format!(
                "{}: {rows} captions, {candidates} candidates, {:.1} s ({:.0} captions/s)",
                file.display(),
                seconds,
                rows as f64 / seconds.max(1e-9)
            )),
            Event::Assembling { parts } => {
                self.set_bar(None);
                self.line(&format!("putting {parts} parts together"));
            }
            Event::Note(n) => self.line(&format!("note: {n}")),
        }
    }
}
