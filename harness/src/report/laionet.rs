//! The files and lines of `shiftbench laionet build` beside its Parquet outputs: `class_counts.csv`
//! (per class: matched, dropped as multi-class, candidates, above the threshold, selected), the
//! figures' data and SVGs (`figure3_*`, `figure4_*`), and the summary the CLI prints.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::report::plot::laionet::{frequency_figure, similarity_figure};
use crate::run::laionet::assemble::{CURVE_STEPS, DENSITY_BINS};
use crate::run::laionet::Built;
use crate::util::files::write_atomic;

/// The files written (names under the output folder).
pub fn write_build_files(b: &Built, out: &Path) -> Result<Vec<String>> {
    let mut written = Vec::new();
    let mut put = |name: &str, text: &str| -> Result<()> {
        write_atomic(&out.join(name), text.as_bytes())?;
        written.push(name.to_string());
        Ok(())
    };
    // Without a selection (--match-only, a shard), only the match counts.
    let selected = b.selected.is_some();
    let mut csv = String::from("wnid,matched,multi_dropped,candidates");
    csv.push_str(if selected { ",above_threshold,selected\n" } else { "\n" });
    for c in &b.classes {
        let _ = write!(csv, "{},{},{},{}", c.wnid, c.matched, c.multi_dropped, c.candidates);
        if selected {
            let _ = write!(csv, ",{},{}", c.above_threshold, c.selected);
        }
        csv.push('\n');
    }
    put("class_counts.csv", &csv)?;
    let Some(s) = &b.selected else { return Ok(written) };
    let width = 2.0 / DENSITY_BINS as f64;
    let mut dens = String::from("bin_start,bin_end,candidates\n");
    for (i, n) in s.density.iter().enumerate() {
        let _ = writeln!(dens, "{:.2},{:.2},{n}", -1.0 + width * i as f64, -1.0 + width * (i + 1) as f64);
    }
    put("figure3_similarity_density.csv", &dens)?;
    let curve: Vec<(f64, usize, u64)> = (0..CURVE_STEPS)
        .map(|k| (k as f64 / 100.0, s.curve[k].iter().filter(|n| **n > 0).count(), s.curve[k].iter().sum()))
        .collect();
    let mut th = String::from("threshold,classes_covered,rows\n");
    for (t, c, n) in &curve {
        let _ = writeln!(th, "{t:.2},{c},{n}");
    }
    put("figure3_threshold.csv", &th)?;
    let threshold = b.summary.threshold.unwrap_or_default();
    let encoder = b.summary.encoder.clone().unwrap_or_default();
    put("figure3.svg", &similarity_figure(&s.density, &curve, threshold, &encoder)?)?;
    let total: u64 = s.selected.iter().sum();
    let mut ranked: Vec<(&str, u64)> =
        b.classes.iter().zip(&s.selected).filter(|(_, n)| **n > 0).map(|(c, n)| (c.wnid.as_str(), *n)).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let k = b.summary.classes_with_lemmas;
    let mut f4 = String::from("rank,wnid,selected,relative_frequency,uniform\n");
    for (i, (w, n)) in ranked.iter().enumerate() {
        let _ = writeln!(f4, "{},{w},{n},{:.8},{:.8}", i + 1, *n as f64 / total as f64, 1.0 / k.max(1) as f64);
    }
    put("figure4_class_frequencies.csv", &f4)?;
    let freqs: Vec<f64> = ranked.iter().map(|(_, n)| *n as f64 / total as f64).collect();
    put("figure4.svg", &frequency_figure(&freqs, k)?)?;
    Ok(written)
}

fn pct(a: u64, b: u64) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.2}%", 100.0 * a as f64 / b as f64)
    }
}

/// The summary, one line each.
pub fn summary_lines(b: &Built) -> Vec<String> {
    let s = &b.summary;
    let rate =
        if s.seconds > 0.0 { format!(" ({:.0} captions/s)", s.captions as f64 / s.seconds) } else { String::new() };
    let mut l = vec![
        format!(
            "captions read:             {} in {} file{}, {:.1} s{rate}",
            s.captions,
            s.files,
            if s.files == 1 { "" } else { "s" },
            s.seconds
        ),
        format!("null captions:             {} (they match nothing)", s.null_captions),
        format!(
            "matched one class:         {} ({} of captions): the candidates",
            s.one_class,
            pct(s.one_class, s.captions)
        ),
        format!("dropped, multiple classes: {} ({} of captions)", s.multi_class, pct(s.multi_class, s.captions)),
        format!("classes with candidates:   {} of {} with lemmas", s.classes_with_candidates, s.classes_with_lemmas),
    ];
    if b.shard_only.is_none() {
        if let (Some(t), Some(col)) = (s.threshold, &s.similarity_column) {
            l.push(format!(
                "above the threshold:       {} ({} of candidates; {col} > {t})",
                s.above_threshold,
                pct(s.above_threshold, s.candidates)
            ));
            l.push(format!(
                "dropped by the NSFW tag:   {} of those above ({} of all candidates)",
                s.nsfw_dropped_above, s.nsfw_dropped
            ));
            if let Some(m) = s.max_per_class {
                l.push(format!("beyond {m} per class:        {}", s.over_max_per_class));
            }
            l.push(format!(
                "selected:                  {} ({} of candidates) in {} classes",
                s.selected,
                pct(s.selected, s.candidates),
                s.classes_selected
            ));
        }
    }
    if s.parts_reused > 0 {
        l.push(format!("reused:                    {} of {} files done by an earlier run", s.parts_reused, s.files));
    }
    l.extend(s.notes.iter().map(|n| format!("note: {n}")));
    l
}
