//! The reports that have a page, as [`Document`]s: a run ([`RunReport`]), a comparison
//! ([`ComparisonReport`]) and a [`History`]. Each is its formats, its extra files, its plots and
//! its page (`report::html`), so it stands above all of them; the trait and `write_folder` are
//! in `report::document`, below.

use anyhow::Result;

use crate::report::analysis::{class_gaps, gaps_csv, gaps_json};
use crate::report::document::{Document, PlotPlace};
use crate::report::history::forms::{render_width, HistoryFormat};
use crate::report::history::series::History;
use crate::report::history::trend::trend_plots;
use crate::report::html::compare::comparison_page;
use crate::report::html::history::history_page;
use crate::report::html::run::run_page;
use crate::report::plot::plots::{Plot, Plots};
use crate::report::plot::run::{plot_run, PlotOptions};
use crate::report::sinks::csv;
use crate::report::sinks::format::Format;
use crate::report::sinks::render::{render_comparison_width, render_run_width, ComparisonReport, RunReport};

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

/// A history is a report ([`Document`]): `history.<ext>` in each of its formats, a trend plot per
/// suite in `plots/`, and `report.html`.
impl Document for History {
    type Format = HistoryFormat;
    const PLOTS: PlotPlace = PlotPlace::Folder;
    fn stem(&self) -> &str {
        "history"
    }
    fn render_width(&self, format: HistoryFormat, width: Option<u16>) -> Result<String> {
        render_width(self, format, width)
    }
    fn plots(&self) -> Result<Plots> {
        Ok(Plots { plots: trend_plots(self)?, ..Plots::default() })
    }
    fn page(&self, plots: &[Plot]) -> Result<Option<(String, String)>> {
        Ok(Some(("report.html".into(), history_page(self, plots)?)))
    }
}
