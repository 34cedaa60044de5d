//! Progress bars for long work. They draw on stderr only when it is a terminal (and `enabled`),
//! so logs, pipes and CI output stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether progress should be drawn by default: stderr is a terminal.
pub fn wanted() -> bool {
    std::io::stderr().is_terminal()
}

/// A bar of `len` steps titled `prefix`; hidden unless `enabled` and stderr is a terminal.
pub fn bar(len: u64, prefix: &str, enabled: bool) -> ProgressBar {
    if !enabled || !wanted() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    b.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}").expect("template").progress_chars("=> "),
    );
    b.set_prefix(prefix.to_string());
    b
}

/// A spinner for work of unknown length; hidden unless `enabled` and stderr is a terminal.
pub fn spinner(msg: &str, enabled: bool) -> ProgressBar {
    if !enabled || !wanted() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    b.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("template"));
    b.set_message(msg.to_string());
    b.enable_steady_tick(std::time::Duration::from_millis(120));
    b
}
