//! A run's and a comparison's result in each [`Format`], each sink called from one place, and the
//! two as reports ([`RunReport`], [`ComparisonReport`]: what `report::documents` makes
//! `Document`s of, which `report::write_folder` writes with their plots and page).

use anyhow::Result;

use super::format::Format;
use super::{csv, junit, markdown, text};
use crate::report::analysis::summary_section;
use crate::report::compare::Comparison;
use crate::report::table::{fit, problem_lines, table};
use crate::results::result::RunResult;

/// A run's result in `format`.
pub fn render_run(run: &RunResult, format: Format) -> Result<String> {
    render_run_width(run, format, None)
}

/// A run's result in `format`, its tables fitted to a terminal `width` columns wide (`None`: full
/// width). The one place the run's terminal text is assembled.
pub fn render_run_width(run: &RunResult, format: Format, width: Option<u16>) -> Result<String> {
    Ok(match format {
        Format::Table => {
            let mut t = table(&run.results);
            fit(&mut t, width);
            let mut s = t.to_string();
            s.push('\n');
            if let Some(section) = summary_section(&run.results, &run.effective_robustness, width) {
                s.push_str(&section);
            }
            for l in problem_lines(&run.results, 10) {
                s.push_str(&l);
                s.push('\n');
            }
            s
        }
        Format::Markdown => markdown::run_markdown(run),
        Format::Csv => csv::run_csv(run)?,
        Format::Json => String::from_utf8(serde_json::to_vec_pretty(run)?)? + "\n",
        Format::Junit => junit::run_junit(run)?,
    })
}

/// A comparison in `format`.
pub fn render_comparison(c: &Comparison, format: Format) -> Result<String> {
    render_comparison_width(c, format, None)
}

/// A comparison in `format`, its table fitted to a terminal `width` columns wide (`None`: full
/// width).
pub fn render_comparison_width(c: &Comparison, format: Format, width: Option<u16>) -> Result<String> {
    Ok(match format {
        Format::Table => {
            let mut t = text::comparison_table(c);
            fit(&mut t, width);
            let mut s = t.to_string();
            s.push('\n');
            for l in text::comparison_notes(c) {
                s.push_str(&l);
                s.push('\n');
            }
            s.push_str(&c.summary());
            s.push('\n');
            s
        }
        Format::Markdown => markdown::comparison_markdown(c),
        Format::Csv => csv::comparison_csv(c)?,
        Format::Json => String::from_utf8(serde_json::to_vec_pretty(c)?)? + "\n",
        Format::Junit => junit::comparison_junit(c)?,
    })
}

/// A run's report (a [`Document`](crate::report::Document) in `report::documents`): every
/// format as `<stem>.<ext>` (`run`, or `score` for a re-scored log), plus `<stem>.per-class.csv`
/// and, with two suites or more, `<stem>.class-gaps.csv` and `<stem>.class-gaps.json` (each
/// model's per-class change from the first suite to each other one,
/// [`class_gaps`](crate::report::analysis::class_gaps)); the plots of
/// [`plot_run`](crate::report::plot::plot_run) and `report.html`.
pub struct RunReport<'a> {
    pub run: &'a RunResult,
    pub stem: &'a str,
}

/// A comparison's report (a [`Document`](crate::report::Document) in `report::documents`):
/// every format as `compare.<ext>` and its page, named `page` (`report.html` for `compare`;
/// `compare.html` beside a run's own page for `run --baseline`).
pub struct ComparisonReport<'a> {
    pub comparison: &'a Comparison,
    pub page: &'a str,
}
