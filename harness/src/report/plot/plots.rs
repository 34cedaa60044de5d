//! What a drawn plot is: its [`PlotKey`] (what it shows, which names its file), a [`Plot`] (the
//! key and its SVG text), the [`Plots`] of a report (with what could not be drawn), and
//! [`write_plots`], which writes them as files.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

use crate::results::paths::slug;

/// What a plot shows. It names the plot's file ([`PlotKey::file`]) and lets a page find the plot
/// it wants (a model and suite's per-class plot) without rebuilding file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlotKey {
    /// Recall on suite x against suite y per model (top-5 or top-1; LAION- or equal-weighted).
    Shift { top5: bool, laion: bool },
    /// Equal- against LAION-weighted recall per model and suite.
    EqualVsLaion,
    /// One model's per-class recall on one suite against LAION frequency.
    PerClass { model: String, suite: String },
    /// One model's per-class change from suite x to suite y.
    ClassGaps { model: String, x: String, y: String },
    /// Each model's top-1 recall on the one suite of a run, with its interval.
    Recall { suite: String },
    /// The distribution of one model's per-class recall on the one suite of a run.
    ClassRecall { model: String, suite: String },
    /// A history's trend on one suite.
    Trend { suite: String },
    /// The per-class differences of intra-class similarity, suite `b` against `a`.
    SimilarityDifferences { a: String, b: String },
    /// Recall change against similarity change, suite `b` against `a`.
    RecallVsSimilarity { a: String, b: String },
}

impl PlotKey {
    /// The plot's file, relative to the folder the plots go into.
    pub fn file(&self) -> String {
        match self {
            PlotKey::Shift { top5, laion } => {
                format!("shift-{}-{}.svg", if *top5 { "top5" } else { "top1" }, if *laion { "laion" } else { "equal" })
            }
            PlotKey::EqualVsLaion => "equal-vs-laion.svg".into(),
            PlotKey::PerClass { model, suite } => format!("per-class/{}__{}.svg", slug(model), slug(suite)),
            PlotKey::ClassGaps { model, x, y } => format!("class-gaps/{}__{}__{}.svg", slug(model), slug(x), slug(y)),
            PlotKey::Recall { suite } => format!("recall-{}.svg", slug(suite)),
            PlotKey::ClassRecall { model, suite } => format!("class-recall/{}__{}.svg", slug(model), slug(suite)),
            PlotKey::Trend { suite } => format!("history-{}.svg", slug(suite)),
            PlotKey::SimilarityDifferences { a, b } => format!("similarity-differences.{}-vs-{}.svg", slug(b), slug(a)),
            PlotKey::RecallVsSimilarity { a, b } => format!("recall-vs-similarity.{}-vs-{}.svg", slug(b), slug(a)),
        }
    }
}

/// One drawn plot: what it shows and its SVG text.
#[derive(Debug, Clone)]
pub struct Plot {
    pub key: PlotKey,
    pub svg: String,
}

/// The plots drawn, and what could not be drawn (the plot, when it names one, and the reason).
#[derive(Debug, Default)]
pub struct Plots {
    pub plots: Vec<Plot>,
    pub skipped: Vec<(Option<PlotKey>, String)>,
    /// What the plots could not do as asked (a `group_by` tag no model has).
    pub notes: Vec<String>,
}

impl Plots {
    /// Keeps `svg` as the plot `key`, or notes why it was not drawn.
    pub(super) fn add(&mut self, key: PlotKey, drawn: Result<String, String>) {
        match drawn {
            Ok(svg) => self.plots.push(Plot { key, svg }),
            Err(why) => self.skipped.push((Some(key), why)),
        }
    }

    /// The skipped plots as lines, each plot named by its file under `dir`.
    pub fn skipped_lines(&self, dir: &Path) -> Vec<String> {
        self.skipped
            .iter()
            .map(|(k, why)| match k {
                Some(k) => format!("{}: {why}", dir.join(k.file()).display()),
                None => why.clone(),
            })
            .collect()
    }
}

/// Writes each plot's SVG as `dir/<its file>` (creating `dir` even when there is none); returns
/// the paths, in the plots' order.
pub fn write_plots(plots: &[Plot], dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow!("cannot create {}: {e}", dir.display()))?;
    let mut out = Vec::with_capacity(plots.len());
    for p in plots {
        let file = dir.join(p.key.file());
        if let Some(d) = file.parent() {
            std::fs::create_dir_all(d).map_err(|e| anyhow!("cannot create {}: {e}", d.display()))?;
        }
        crate::util::files::write_atomic(&file, p.svg.as_bytes())?;
        out.push(file);
    }
    Ok(out)
}
