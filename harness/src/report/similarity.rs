//! What `shiftbench similarity` writes and prints: `similarity.csv` (one row per suite and class:
//! `suite, wnid, n, pairs, mean_cosine, std_cosine, se`), `similarity.json` (everything, with the
//! run's provenance), and with two suites or more `differences.csv` (per class, the difference of
//! mean similarity with its 95% interval and verdict), a histogram of the differences per
//! comparison, and with `--result` `recall-vs-similarity.csv` and the paper's figure. The
//! terminal gets a table per suite and the headline per comparison. No line or file holds NaN:
//! where there is nothing to average (a suite without a measured class, two suites without a class
//! in common, a correlation without spread) the terminal gets a sentence or `-`, the JSON `null`
//! and a CSV an empty cell. The report is a [`Document`] (formats CSV and JSON, the other files
//! and the plots beside them), written by `report::write_folder`.

use anyhow::Result;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};

use crate::report::document::{Document, FormatSet, PlotPlace};
use crate::report::plot::plots::{Plot, PlotKey, Plots};
use crate::report::plot::similarity::{recall_vs_similarity, similarity_histogram};
use crate::report::sinks::format::Format;
use crate::results::similarity::pearson;
use crate::run::similarity::SimilarityReport;

/// A CSV cell of a number: empty when it is not finite (never `NaN`).
fn cell(v: f64) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        String::new()
    }
}

/// `similarity.csv`.
pub fn similarity_csv(r: &SimilarityReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["suite", "wnid", "n", "pairs", "mean_cosine", "std_cosine", "se"])?;
    for c in &r.classes {
        let s = &c.stats;
        w.write_record([
            c.suite.clone(),
            c.wnid.clone(),
            s.n.to_string(),
            s.pairs.to_string(),
            cell(s.mean_cosine),
            cell(s.std_cosine),
            cell(s.se),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// `differences.csv`: every comparison's classes.
pub fn differences_csv(r: &SimilarityReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "suite_a", "suite_b", "wnid", "n_a", "n_b", "mean_a", "mean_b", "diff", "se", "lo", "hi", "verdict",
    ])?;
    for c in &r.comparisons {
        for d in &c.classes {
            w.write_record([
                c.a.clone(),
                c.b.clone(),
                d.wnid.clone(),
                d.n_a.to_string(),
                d.n_b.to_string(),
                cell(d.mean_a),
                cell(d.mean_b),
                cell(d.diff),
                cell(d.se),
                cell(d.lo),
                cell(d.hi),
                d.verdict.as_str().to_string(),
            ])?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// `recall-vs-similarity.csv`.
pub fn recall_csv(r: &SimilarityReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["suite_a", "suite_b", "wnid", "similarity_diff", "recall_diff_pp"])?;
    for p in &r.recall {
        w.write_record([&p.a, &p.b, &p.wnid, &cell(p.similarity_diff), &cell(p.recall_diff)])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// The headline of each comparison, one line each (a sentence instead of numbers when the two
/// suites have no class in common; never NaN).
pub fn headline_lines(r: &SimilarityReport) -> Vec<String> {
    let mut out = Vec::new();
    for c in &r.comparisons {
        let k = c.classes.len();
        let (Some(lower), Some(higher), Some(mean), Some(median)) =
            (c.share_lower, c.share_higher, c.mean_diff, c.median_diff)
        else {
            out.push(format!(
                "{} vs {}: no class has {} images or more in both suites, so none can be compared",
                c.b, c.a, r.min_per_class
            ));
            continue;
        };
        out.push(format!(
            "{} vs {}: {} of {k} classes significantly less alike in {} ({:.1}%), {} more alike ({:.1}%); mean difference {mean:+.4}, median {median:+.4}",
            c.b,
            c.a,
            c.lower,
            c.b,
            100.0 * lower,
            c.higher,
            100.0 * higher,
        ));
        let pts: Vec<&crate::run::similarity::RecallChange> =
            r.recall.iter().filter(|p| p.a == c.a && p.b == c.b).collect();
        if pts.len() >= 3 {
            let x: Vec<f64> = pts.iter().map(|p| p.similarity_diff).collect();
            let y: Vec<f64> = pts.iter().map(|p| p.recall_diff).collect();
            let r = match pearson(&x, &y) {
                Some(v) => format!("{v:+.3}"),
                None => "undefined (one of the changes is the same in every class)".to_string(),
            };
            out.push(format!("  recall change against similarity change over {} classes: Pearson r = {r}", pts.len()));
        }
    }
    out
}

/// The terminal's view: a table of suites, the skipped classes, the headlines.
pub fn render_text(r: &SimilarityReport) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["suite", "classes", "chosen", "embedded", "failed", "skipped classes", "mean intra-class cosine"]);
    for s in &r.suites {
        let right = |v: String| Cell::new(v).set_alignment(CellAlignment::Right);
        t.add_row(vec![
            Cell::new(&s.suite),
            right(s.classes.to_string()),
            right(s.chosen.to_string()),
            right(s.embedded.to_string()),
            right(s.failed.to_string()),
            right(s.skipped.len().to_string()),
            right(s.mean_of_class_means.map_or_else(|| "-".into(), |m| format!("{m:.4}"))),
        ]);
    }
    let mut out = format!(
        "intra-class similarity of {} ({} values per embedding; up to {} images per class, seed {}; classes need {} images)\n{t}\n",
        r.model, r.embedding_len, r.per_class, r.seed, r.min_per_class
    );
    for s in r.suites.iter().filter(|s| !s.skipped.is_empty()) {
        let list: Vec<String> = s.skipped.iter().take(10).map(|c| format!("{} ({})", c.wnid, c.n)).collect();
        let more = if s.skipped.len() > 10 { format!(" and {} more", s.skipped.len() - 10) } else { String::new() };
        out.push_str(&format!(
            "{}: skipped {} classes with fewer than {} images: {}{more}\n",
            s.suite,
            s.skipped.len(),
            r.min_per_class,
            list.join(", ")
        ));
    }
    for l in headline_lines(r) {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// The files of `shiftbench similarity` that are the report itself: `similarity.csv` and
/// `similarity.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimilarityFormat {
    Csv,
    Json,
}

impl FormatSet for SimilarityFormat {
    const ALL: &'static [SimilarityFormat] = &[SimilarityFormat::Csv, SimilarityFormat::Json];
    fn format(self) -> Format {
        match self {
            SimilarityFormat::Csv => Format::Csv,
            SimilarityFormat::Json => Format::Json,
        }
    }
}

/// A similarity report is a [`Document`]: its two formats, `differences.csv` and
/// `recall-vs-similarity.csv` where they have rows, and its plots beside them (no page).
impl Document for SimilarityReport {
    type Format = SimilarityFormat;
    const PLOTS: PlotPlace = PlotPlace::Beside;
    fn stem(&self) -> &str {
        "similarity"
    }
    fn render_width(&self, format: SimilarityFormat, _width: Option<u16>) -> Result<String> {
        Ok(match format {
            SimilarityFormat::Csv => similarity_csv(self)?,
            SimilarityFormat::Json => serde_json::to_string_pretty(self)? + "\n",
        })
    }
    fn extra_files(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        if !self.comparisons.is_empty() {
            out.push(("differences.csv".to_string(), differences_csv(self)?));
        }
        if !self.recall.is_empty() {
            out.push(("recall-vs-similarity.csv".to_string(), recall_csv(self)?));
        }
        Ok(out)
    }
    fn plots(&self) -> Result<Plots> {
        let mut plots = Plots::default();
        let mut add = |key: PlotKey, drawn: Result<String, String>| match drawn {
            Ok(svg) => plots.plots.push(Plot { key, svg }),
            Err(why) => plots.skipped.push((Some(key), why)),
        };
        for c in &self.comparisons {
            let key = PlotKey::SimilarityDifferences { a: c.a.clone(), b: c.b.clone() };
            add(key, similarity_histogram(c, &self.model)?);
            let pts: Vec<(String, f64, f64)> = self
                .recall
                .iter()
                .filter(|p| p.a == c.a && p.b == c.b)
                .map(|p| (p.wnid.clone(), p.similarity_diff, p.recall_diff))
                .collect();
            if !self.recall.is_empty() {
                let key = PlotKey::RecallVsSimilarity { a: c.a.clone(), b: c.b.clone() };
                add(key, recall_vs_similarity(&pts, &c.a, &c.b, &self.model)?);
            }
        }
        Ok(plots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::provenance::RunInfo;
    use crate::results::similarity::{compare, ClassSimilarity, PairStats};
    use crate::run::similarity::{RecallChange, SkippedClass, SuiteSimilarity};

    fn row(suite: &str, wnid: &str, mean: f64, se: f64) -> ClassSimilarity {
        ClassSimilarity {
            suite: suite.into(),
            wnid: wnid.into(),
            stats: PairStats { n: 8, pairs: 28, mean_cosine: mean, std_cosine: 0.1, se },
        }
    }

    fn part(suite: &str, classes: usize, mean: Option<f64>) -> SuiteSimilarity {
        SuiteSimilarity {
            suite: suite.into(),
            samples: 10,
            chosen: 10,
            embedded: 10,
            failed: 0,
            classes,
            mean_of_class_means: mean,
            skipped: vec![SkippedClass { wnid: "n00000009".into(), n: 2 }],
            log: format!("{suite}.jsonl"),
        }
    }

    /// Every empty set at once: a suite with no measured class, a comparison with no class in
    /// common, one whose recall changes are all equal (no correlation), and a class whose
    /// standard error came out non-finite. Nothing printed or written says NaN.
    #[test]
    fn empty_sets_give_sentences_nulls_and_empty_cells_never_nan() {
        let a = [row("alpha", "n00000001", 0.6, 0.02), row("alpha", "n00000002", 0.5, 0.02), {
            let mut r = row("alpha", "n00000003", 0.4, 0.02);
            r.stats.se = f64::NAN;
            r
        }];
        let b = [
            row("beta", "n00000001", 0.3, 0.02),
            row("beta", "n00000002", 0.2, 0.02),
            row("beta", "n00000003", 0.1, 0.02),
        ];
        let recall = ["n00000001", "n00000002", "n00000003"]
            .iter()
            .map(|w| RecallChange {
                a: "alpha".into(),
                b: "beta".into(),
                wnid: w.to_string(),
                similarity_diff: -0.3,
                recall_diff: -10.0,
            })
            .collect();
        let r = SimilarityReport {
            shiftbench_similarity: 1,
            model: "m".into(),
            embedding_len: 4,
            per_class: 10,
            seed: 0,
            min_per_class: 7,
            suites: vec![part("alpha", 3, Some(0.5)), part("beta", 3, Some(0.2)), part("gamma", 0, None)],
            classes: a.iter().chain(&b).cloned().collect(),
            comparisons: vec![compare("alpha", &a, "beta", &b), compare("alpha", &a, "gamma", &[])],
            recall,
            run: RunInfo::start("similarity"),
        };
        let text = render_text(&r);
        assert!(
            text.contains("gamma vs alpha: no class has 7 images or more in both suites, so none can be compared"),
            "{text}"
        );
        assert!(text.contains("Pearson r = undefined (one of the changes is the same in every class)"), "{text}");
        assert!(text.contains("beta vs alpha: 2 of 3 classes significantly less alike"), "{text}");
        // gamma's mean intra-class cosine is a dash.
        let gamma = text.lines().find(|l| l.contains("gamma") && l.contains('┆')).unwrap();
        assert!(gamma.trim_end_matches('│').trim_end().ends_with('-'), "{gamma}");
        let json = serde_json::to_string_pretty(&r).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["suites"][2]["mean_of_class_means"], serde_json::Value::Null);
        for key in ["share_lower", "share_higher", "mean_diff", "median_diff"] {
            assert_eq!(v["comparisons"][1][key], serde_json::Value::Null, "{key}");
            assert!(v["comparisons"][0][key].is_number(), "{key}");
        }
        let sim = similarity_csv(&r).unwrap();
        assert!(sim.contains("alpha,n00000003,8,28,0.4,0.1,\n"), "{sim}");
        let diffs = differences_csv(&r).unwrap();
        // The class with no se has a difference but no interval.
        assert!(diffs.contains("alpha,beta,n00000003,8,8,0.4,0.1,"), "{diffs}");
        assert!(diffs.lines().any(|l| l.starts_with("alpha,beta,n00000003") && l.contains(",,,")), "{diffs}");
        let all = [text, json, sim, diffs, recall_csv(&r).unwrap(), headline_lines(&r).join("\n")];
        for t in &all {
            assert!(!t.contains("NaN"), "{t}");
        }
    }
}
