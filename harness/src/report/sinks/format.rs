//! The general formats of a report ([`Format`]: table, Markdown, CSV, JSON, JUnit), and how
//! numbers are written in more than one sink: a change with its standard error (`fmt_change`)
//! and a fraction to six decimals (`f6`).

use std::str::FromStr;

use crate::results::metrics::Estimate;

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

pub(crate) fn fmt_change(d: Estimate) -> String {
    format!("{:+.2} ± {:.2}", 100.0 * d.value, 100.0 * d.se)
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
