//! What `shiftbench similarity` writes and prints: `similarity.csv` (one row per suite and class:
//! `suite, wnid, n, pairs, mean_cosine, std_cosine, se`), `similarity.json` (everything, with the
//! run's provenance), and with two suites or more `differences.csv` (per class, the difference of
//! mean similarity with its 95% interval and verdict), a histogram of the differences per
//! comparison, and with `--result` `recall-vs-similarity.csv` and the paper's figure. The
//! terminal gets a table per suite and the headline per comparison.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};

use crate::report::plot::{recall_vs_similarity, similarity_histogram};
use crate::results::paths::slug;
use crate::results::similarity::pearson;
use crate::run::similarity::SimilarityReport;
use crate::util::files::write_atomic;

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
            s.mean_cosine.to_string(),
            s.std_cosine.to_string(),
            s.se.to_string(),
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
                d.mean_a.to_string(),
                d.mean_b.to_string(),
                d.diff.to_string(),
                d.se.to_string(),
                d.lo.to_string(),
                d.hi.to_string(),
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
        w.write_record([&p.a, &p.b, &p.wnid, &p.similarity_diff.to_string(), &p.recall_diff.to_string()])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// The headline of each comparison, one line each.
pub fn headline_lines(r: &SimilarityReport) -> Vec<String> {
    let mut out = Vec::new();
    for c in &r.comparisons {
        let k = c.classes.len();
        out.push(format!(
            "{} vs {}: {} of {k} classes significantly less alike in {} ({:.1}%), {} more alike ({:.1}%); mean difference {:+.4}, median {:+.4}",
            c.b,
            c.a,
            c.lower,
            c.b,
            100.0 * c.share_lower,
            c.higher,
            100.0 * c.share_higher,
            c.mean_diff,
            c.median_diff
        ));
        let pts: Vec<&crate::run::similarity::RecallChange> =
            r.recall.iter().filter(|p| p.a == c.a && p.b == c.b).collect();
        if pts.len() >= 3 {
            let x: Vec<f64> = pts.iter().map(|p| p.similarity_diff).collect();
            let y: Vec<f64> = pts.iter().map(|p| p.recall_diff).collect();
            out.push(format!(
                "  recall change against similarity change over {} classes: Pearson r = {:+.3}",
                pts.len(),
                pearson(&x, &y)
            ));
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
            right(if s.mean_of_class_means.is_nan() { "-".into() } else { format!("{:.4}", s.mean_of_class_means) }),
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

/// Writes every file into `dir`; returns the paths written and the plots skipped (with why).
pub fn write_all(r: &SimilarityReport, dir: &Path) -> Result<(Vec<PathBuf>, Vec<String>)> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    let mut skipped = Vec::new();
    let mut put = |name: &str, text: String| -> Result<()> {
        let p = dir.join(name);
        write_atomic(&p, text.as_bytes())?;
        written.push(p);
        Ok(())
    };
    put("similarity.csv", similarity_csv(r)?)?;
    put("similarity.json", serde_json::to_string_pretty(r)? + "\n")?;
    if !r.comparisons.is_empty() {
        put("differences.csv", differences_csv(r)?)?;
    }
    if !r.recall.is_empty() {
        put("recall-vs-similarity.csv", recall_csv(r)?)?;
    }
    for c in &r.comparisons {
        let tag = format!("{}-vs-{}", slug(&c.b), slug(&c.a));
        let hist = dir.join(format!("similarity-differences.{tag}.svg"));
        match similarity_histogram(c, &r.model, &hist)? {
            None => written.push(hist),
            Some(why) => skipped.push(format!("{}: {why}", hist.display())),
        }
        let pts: Vec<(String, f64, f64)> = r
            .recall
            .iter()
            .filter(|p| p.a == c.a && p.b == c.b)
            .map(|p| (p.wnid.clone(), p.similarity_diff, p.recall_diff))
            .collect();
        if !r.recall.is_empty() {
            let fig = dir.join(format!("recall-vs-similarity.{tag}.svg"));
            match recall_vs_similarity(&pts, &c.a, &c.b, &r.model, &fig)? {
                None => written.push(fig),
                Some(why) => skipped.push(format!("{}: {why}", fig.display())),
            }
        }
    }
    Ok((written, skipped))
}
