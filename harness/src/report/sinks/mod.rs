//! Report sinks: one result (a run's [`RunResult`] or a [`Comparison`]), many formats: a terminal
//! table, Markdown (for a pull-request comment), CSV, JSON and JUnit XML (for CI).
//!
//! Tables show recall in percent with two decimals, ± one standard error; CSV keeps fractions to
//! six decimals; JSON keeps every digit. In JUnit each model x suite is a test case: for a run it
//! fails when samples failed or are missing, for a comparison when a metric regressed; pairs on one
//! side of a comparison only are skipped test cases.

//!
//! One file per sink: [`text`] (the terminal), [`markdown`], [`csv`], [`junit`]; JSON is the
//! result model itself. [`RunReport`] and [`ComparisonReport`] are the two as
//! [`Document`]s, which `report::write_folder` writes with their plots and page.

pub mod csv;
pub mod junit;
pub mod markdown;
pub mod text;

use std::str::FromStr;

use anyhow::Result;

use crate::report::analysis::{class_gaps, gaps_csv, gaps_json, summary_section};
use crate::report::compare::Comparison;
use crate::report::document::{Document, PlotPlace};
use crate::report::html::{comparison_page, run_page};
use crate::report::plot::{plot_run, Plot, PlotOptions, Plots};
use crate::report::table::{fit, problem_lines, table};
use crate::results::metrics::Estimate;
use crate::results::result::RunResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Markdown,
    Csv,
    Json,
    Junit,
}

impl Format {
    pub const ALL: [Format; 5] = [Format::Table, Format::Markdown, Format::Csv, Format::Json, Format::Junit];

    /// The file-name ending of a report in this format.
    pub fn extension(&self) -> &'static str {
        match self {
            Format::Table => "txt",
            Format::Markdown => "md",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Junit => "junit.xml",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "table" | "text" | "txt" => Format::Table,
            "markdown" | "md" => Format::Markdown,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "junit" | "xml" => Format::Junit,
            _ => return Err(format!("unknown format {s:?}: use table, markdown, csv, json or junit")),
        })
    }
}

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

pub(crate) fn fmt_change(d: Estimate) -> String {
    format!("{:+.2} ± {:.2}", 100.0 * d.value, 100.0 * d.se)
}

/// A run's report ([`Document`]): every format as `<stem>.<ext>` (`run`, or `score` for a
/// re-scored log), plus `<stem>.per-class.csv` and, with two suites or more,
/// `<stem>.class-gaps.csv` and `<stem>.class-gaps.json` (each model's per-class change from the
/// first suite to each other one, [`class_gaps`]); the plots of [`plot_run`] and `report.html`.
pub struct RunReport<'a> {
    pub run: &'a RunResult,
    pub stem: &'a str,
}

impl Document for RunReport<'_> {
    type Format = Format;
    const PLOTS: PlotPlace = PlotPlace::Folder;
    fn stem(&self) -> &str {
        self.stem
    }
    fn render_width(&self, format: Format, width: Option<u16>) -> Result<String> {
        render_run_width(self.run, format, width)
    }
    fn extra_files(&self) -> Result<Vec<(String, String)>> {
        let stem = self.stem;
        let mut out = vec![(format!("{stem}.per-class.csv"), csv::per_class_csv(self.run)?)];
        let gaps = class_gaps(&self.run.results);
        if !gaps.is_empty() {
            out.push((format!("{stem}.class-gaps.csv"), gaps_csv(&gaps)?));
            out.push((format!("{stem}.class-gaps.json"), gaps_json(&gaps)?));
        }
        Ok(out)
    }
    fn plots(&self) -> Result<Plots> {
        plot_run(self.run, &PlotOptions::default())
    }
    fn page(&self, plots: &[Plot]) -> Result<Option<(String, String)>> {
        Ok(Some(("report.html".into(), run_page(self.run, plots)?)))
    }
}

/// A comparison's report ([`Document`]): every format as `compare.<ext>` and its page, named
/// `page` (`report.html` for `compare`; `compare.html` beside a run's own page for
/// `run --baseline`).
pub struct ComparisonReport<'a> {
    pub comparison: &'a Comparison,
    pub page: &'a str,
}

impl Document for ComparisonReport<'_> {
    type Format = Format;
    const PLOTS: PlotPlace = PlotPlace::None;
    fn stem(&self) -> &str {
        "compare"
    }
    fn render_width(&self, format: Format, width: Option<u16>) -> Result<String> {
        render_comparison_width(self.comparison, format, width)
    }
    fn page(&self, _plots: &[Plot]) -> Result<Option<(String, String)>> {
        Ok(Some((self.page.to_string(), comparison_page(self.comparison)?)))
    }
}

pub(crate) fn f6(v: f64) -> String {
    format!("{v:.6}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse() {
        assert_eq!("markdown".parse::<Format>().unwrap(), Format::Markdown);
        assert_eq!("JUnit".parse::<Format>().unwrap(), Format::Junit);
        assert!("pdf".parse::<Format>().is_err());
    }
}
