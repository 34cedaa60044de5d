//! The terminal, CSV and JSON forms of a threshold sweep (`shiftbench sweep`, see
//! [`crate::run::sweep`]): per threshold and model, the samples, classes and the four recalls. A
//! sweep is a [`Document`] whose formats ([`SweepFormat`]) are just these three.

use std::str::FromStr;

use anyhow::Result;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};

use crate::report::compare::{metric, METRICS};
use crate::report::document::{Document, FormatSet, PlotPlace};
use crate::report::sinks::csv::{write_metric_rows, Counted, METRIC_ROW_HEADER};
use crate::report::sinks::format::Format;
use crate::report::table::{fit, fmt_est};
use crate::run::sweep::Sweep;

/// The formats of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepFormat {
    Table,
    Csv,
    Json,
}

impl FormatSet for SweepFormat {
    const ALL: &'static [SweepFormat] = &[SweepFormat::Table, SweepFormat::Csv, SweepFormat::Json];
    fn format(self) -> Format {
        match self {
            SweepFormat::Table => Format::Table,
            SweepFormat::Csv => Format::Csv,
            SweepFormat::Json => Format::Json,
        }
    }
}

impl FromStr for SweepFormat {
    type Err = String;
    fn from_str(v: &str) -> Result<SweepFormat, String> {
        match v.parse::<Format>()? {
            Format::Table => Ok(SweepFormat::Table),
            Format::Csv => Ok(SweepFormat::Csv),
            Format::Json => Ok(SweepFormat::Json),
            other => Err(format!("sweep prints table, csv or json, not {}", format!("{other:?}").to_lowercase())),
        }
    }
}

impl Document for Sweep {
    type Format = SweepFormat;
    const PLOTS: PlotPlace = PlotPlace::None;
    fn stem(&self) -> &str {
        "sweep"
    }
    fn render_width(&self, format: SweepFormat, width: Option<u16>) -> Result<String> {
        render_width(self, format, width)
    }
}

/// The sweep in `format` (table, CSV or JSON).
pub fn render(s: &Sweep, format: SweepFormat) -> Result<String> {
    render_width(s, format, None)
}

/// The sweep in `format`, its table fitted to a terminal `width` columns wide (`None`: full
/// width).
pub fn render_width(s: &Sweep, format: SweepFormat, width: Option<u16>) -> Result<String> {
    let op = if s.inclusive { ">=" } else { ">" };
    Ok(match format {
        SweepFormat::Table => {
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
            let mut header = vec![format!("similarity {op}"), "model".into()];
            header.extend(["samples", "evaluated", "failed", "missing", "classes"].map(String::from));
            header.extend(METRICS.iter().map(|(_, h)| h.to_string()));
            t.set_header(header);
            let right = |v: String| Cell::new(v).set_alignment(CellAlignment::Right);
            for p in &s.points {
                let c = &p.totals;
                let mut row = vec![right(p.min_similarity.to_string()), Cell::new(&p.model)];
                row.extend([c.expected, c.evaluated, c.failed, c.missing].map(|n| right(n.to_string())));
                row.push(right(p.classes_present.to_string()));
                row.extend(METRICS.iter().map(|(k, _)| right(fmt_est(metric(&p.metrics, k)))));
                t.add_row(row);
            }
            fit(&mut t, width);
            format!(
                "{}: rows kept when {} {op} each threshold; recall in percent, ± one standard error\n{t}\n",
                s.suite, s.similarity_column
            )
        }
        SweepFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let mut header = vec!["min_similarity", "inclusive"];
            header.extend(METRIC_ROW_HEADER);
            w.write_record(header)?;
            for p in &s.points {
                let row = Counted {
                    model: &p.model,
                    suite: &s.suite,
                    weights: &p.weights,
                    totals: &p.totals,
                    classes: p.classes_present,
                    metrics: &p.metrics,
                };
                write_metric_rows(&mut w, &[p.min_similarity.to_string(), s.inclusive.to_string()], &row)?;
            }
            String::from_utf8(w.into_inner()?)?
        }
        SweepFormat::Json => serde_json::to_string_pretty(s)? + "\n",
    })
}
