//! The forms of a history ([`HistoryFormat`]s: a table, Markdown, CSV or JSON; no JUnit), each
//! rendered by [`render_width`].

use std::fmt::Write as _;
use std::str::FromStr;

use anyhow::Result;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};

use super::series::{note_lines, History, Point};
use crate::report::document::FormatSet;
use crate::report::sinks::format::Format;
use crate::report::table::{fit, fmt_est};
use crate::results::metrics::Estimate;

fn verdict_cell(p: &Point) -> String {
    match (p.verdict, &p.test) {
        (None, _) => String::new(),
        (Some(v), Some(t)) => format!("{} ({t})", v.word()),
        (Some(v), None) => v.word().to_string(),
    }
}

fn change_cell(p: &Point) -> String {
    p.change.map(|d| format!("{:+.2} ± {:.2}", 100.0 * d.value, 100.0 * d.se)).unwrap_or_default()
}

const HEADER: [&str; 9] = [
    "model",
    "suite",
    "run",
    "started",
    "top-1 equal-wt",
    "top-1 LAION-wt",
    "change vs previous",
    "verdict",
    "img/s (ms/img in model)",
];

fn speed_cell(p: &Point) -> String {
    match (p.images_per_second, p.model_ms_per_image) {
        (Some(ips), Some(ms)) => format!("{ips:.1} ({ms:.2})"),
        _ => String::new(),
    }
}

fn rows(h: &History) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for s in &h.series {
        for p in &s.points {
            let mut verdict = verdict_cell(p);
            if s.first_regression == Some(p.run) {
                verdict.push_str(" <- first regression");
            }
            if let Some(e) = &p.error {
                verdict = format!("ERROR: {e}");
            }
            out.push(vec![
                s.model.clone(),
                s.suite.clone(),
                h.runs[p.run].path.clone(),
                h.runs[p.run].started_at.clone().unwrap_or_default(),
                fmt_est(p.top1_equal),
                fmt_est(p.top1_weighted),
                change_cell(p),
                verdict,
                speed_cell(p),
            ]);
        }
    }
    out
}

/// The formats of a history: no JUnit (compare the newest run with the one before it for that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryFormat {
    Table,
    Markdown,
    Csv,
    Json,
}

impl FormatSet for HistoryFormat {
    const ALL: &'static [HistoryFormat] =
        &[HistoryFormat::Table, HistoryFormat::Markdown, HistoryFormat::Csv, HistoryFormat::Json];
    fn format(self) -> Format {
        match self {
            HistoryFormat::Table => Format::Table,
            HistoryFormat::Markdown => Format::Markdown,
            HistoryFormat::Csv => Format::Csv,
            HistoryFormat::Json => Format::Json,
        }
    }
}

impl FromStr for HistoryFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<HistoryFormat, String> {
        Ok(match s.parse::<Format>()? {
            Format::Table => HistoryFormat::Table,
            Format::Markdown => HistoryFormat::Markdown,
            Format::Csv => HistoryFormat::Csv,
            Format::Json => HistoryFormat::Json,
            Format::Junit => {
                return Err("history has no JUnit form: compare the newest run with the one before it for that".into())
            }
        })
    }
}

/// The history in `format`.
pub fn render(h: &History, format: HistoryFormat) -> Result<String> {
    render_width(h, format, None)
}

/// The history in `format`, its table fitted to a terminal `width` columns wide (`None`: full
/// width).
pub fn render_width(h: &History, format: HistoryFormat, width: Option<u16>) -> Result<String> {
    Ok(match format {
        HistoryFormat::Table => {
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
            t.set_header(HEADER.to_vec());
            for r in rows(h) {
                t.add_row(r.into_iter().enumerate().map(|(i, v)| {
                    if (4..7).contains(&i) || i == 8 {
                        Cell::new(v).set_alignment(CellAlignment::Right)
                    } else {
                        Cell::new(v)
                    }
                }));
            }
            fit(&mut t, width);
            let mut s = format!("{t}\n");
            for l in note_lines(h) {
                let _ = writeln!(s, "{l}");
            }
            let _ = writeln!(s, "{}", h.summary());
            s
        }
        HistoryFormat::Markdown => {
            let mut s = String::from("### shiftbench history\n\n");
            let _ = writeln!(s, "| {} |", HEADER.join(" | "));
            let _ = writeln!(s, "|---|---|---|---|---:|---:|---:|---|---:|");
            for r in rows(h) {
                let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
                let _ = writeln!(s, "| {} |", cells.join(" | "));
            }
            let _ = writeln!(s, "\nRecall in percent, ± one standard error. {}.", h.summary());
            s
        }
        HistoryFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([
                "model",
                "suite",
                "run",
                "run_id",
                "top1_equal",
                "top1_equal_se",
                "top1_weighted",
                "top1_weighted_se",
                "change",
                "change_se",
                "verdict",
                "test",
                "first_regression",
                "images_per_second",
                "model_ms_per_image",
                "path",
                "started_at",
            ])?;
            let v = |e: Option<Estimate>| {
                (
                    e.map(|e| format!("{:.6}", e.value)).unwrap_or_default(),
                    e.map(|e| format!("{:.6}", e.se)).unwrap_or_default(),
                )
            };
            for s in &h.series {
                for p in &s.points {
                    let ((a, ase), (b, bse), (d, dse)) = (v(p.top1_equal), v(p.top1_weighted), v(p.change));
                    let verdict = p
                        .verdict
                        .map(|x| serde_json::to_value(x).map(|j| j.as_str().unwrap_or_default().to_string()))
                        .transpose()?;
                    w.write_record([
                        s.model.clone(),
                        s.suite.clone(),
                        h.runs[p.run].label.clone(),
                        h.runs[p.run].run_id.clone().unwrap_or_default(),
                        a,
                        ase,
                        b,
                        bse,
                        d,
                        dse,
                        verdict.unwrap_or_default(),
                        p.test.clone().unwrap_or_default(),
                        (s.first_regression == Some(p.run)).to_string(),
                        p.images_per_second.map(|v| v.to_string()).unwrap_or_default(),
                        p.model_ms_per_image.map(|v| v.to_string()).unwrap_or_default(),
                        h.runs[p.run].path.clone(),
                        h.runs[p.run].started_at.clone().unwrap_or_default(),
                    ])?;
                }
            }
            String::from_utf8(w.into_inner()?)?
        }
        HistoryFormat::Json => String::from_utf8(serde_json::to_vec_pretty(h)?)? + "\n",
    })
}
