//! The HTML report page, `report.html` in a `--report-dir`: one self-contained file (inline CSS,
//! inline SVG plots, a few lines of inline script; nothing fetched) that a CI job can publish.
//! The plots come as drawn (`report::plot::Plot`, the SVG text and what it shows), the same
//! strings the report folder writes as files; a page never reads a file back.
//!
//! - a run ([`run_page`]): what it is (run id, shiftbench version, git revision, time), the models x
//!   suites summary (ranks, drops and, with three models or more, effective robustness, with the
//!   fits and the largest per-class drops under it, as the terminal shows them), the full table,
//!   the problems, the plots, and per model and suite a
//!   drill-down of its classes (recall ± se, counts, the worst classes first) with its per-class
//!   plot and every failed or missing sample;
//! - a comparison ([`comparison_page`]): both sides, the verdict summary with what moved beyond
//!   the tolerance (regressions first), every metric's change with its verdict and test, and per
//!   model and suite the test's counts, the classes that moved most and every flipped sample;
//! - a history ([`history_page`]): the newest run's regressions first, each model and suite's
//!   trend across the runs, the trend plots, every point with its verdict, and the runs.
//!
//! **Templates**, not string concatenation: `templates/*.html` (minijinja, compiled into the
//! binary), with autoescaping on for every `.html` template, so each string from a suite, a
//! model or a log (names, sample ids, error messages, paths) is escaped wherever it goes. Only
//! three values are marked safe: the style sheet and the script (files of this crate) and each
//! plot's SVG, which is first checked by [`checked_svg`]: elements from a short list of drawing
//! elements only, no event-handler, link or style attribute, no comment, balanced tags (plotters'
//! SVG backend escapes `<`, `>`, `&` and quotes in its text and attributes; the check holds
//! whatever wrote the SVG). A plot that fails the check is left out with the reason, escaped.
//!
//! **Content Security Policy**: the page says `default-src 'none'` and allows its one script by
//! its SHA-256 only, so even markup that slipped through could neither run a script nor fetch
//! anything.
//!
//! Numbers read as in the terminal: recall in percent with two decimals, ± one standard error.

pub mod compare;
pub mod history;
pub mod page;
pub mod parts;
pub mod run;
pub mod svg;

pub use compare::comparison_page;
pub use history::history_page;
pub use run::run_page;
pub use svg::checked_svg;
