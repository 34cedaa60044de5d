//! The one fan-out of every report: a [`Document`] (a run, a comparison, a history, a sweep, an
//! intra-class similarity) says which formats it has, at the type level (its [`FormatSet`]: a
//! history has no JUnit form, so its format type has no such value and `--format junit` is refused
//! when the command line is parsed, never after the work), renders each, and may add files, plots
//! and a page. [`write_folder`] writes all of it the same way for every document: each format as
//! `<stem>.<ext>`, the extra files, the plots (drawn to strings, written from those strings) and
//! the page, which embeds the same strings.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::report::plot::plots::{write_plots, Plot, Plots};
use crate::report::sinks::format::Format;
use crate::util::files::write_atomic;

/// The formats a document has: a closed set of values, each one of the general [`Format`]s.
pub trait FormatSet: Copy + Debug + 'static {
    /// Every format of the set, in the order a report folder writes them.
    const ALL: &'static [Self];
    /// The general format this one is.
    fn format(self) -> Format;
}

impl FormatSet for Format {
    const ALL: &'static [Format] = &Format::ALL;
    fn format(self) -> Format {
        self
    }
}

/// Where a document's plots go in its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotPlace {
    /// It draws none (and makes no plots folder).
    None,
    /// In a `plots/` folder (made even when there is nothing to draw).
    Folder,
    /// Beside its other files.
    Beside,
}

/// The folder the plots of a page live in, relative to the page.
pub const PLOTS_DIR: &str = "plots";

/// One report: its formats, and what else its folder holds.
pub trait Document {
    /// The formats it has.
    type Format: FormatSet;
    /// Where its plots go.
    const PLOTS: PlotPlace;
    /// The stem of its files (`run`, `compare`, `history`, ...).
    fn stem(&self) -> &str;
    /// The document in `format`, its tables fitted to a terminal `width` columns wide (`None`:
    /// full width, as files and pipes get it).
    fn render_width(&self, format: Self::Format, width: Option<u16>) -> Result<String>;
    /// The document in `format`, full width (as its files hold it).
    fn render(&self, format: Self::Format) -> Result<String> {
        self.render_width(format, None)
    }
    /// Files beyond its formats: (file name, text).
    fn extra_files(&self) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }
    /// Its plots.
    fn plots(&self) -> Result<Plots> {
        Ok(Plots::default())
    }
    /// Its HTML page, given its plots: (file name, HTML); `None` for a document without one.
    fn page(&self, _plots: &[Plot]) -> Result<Option<(String, String)>> {
        Ok(None)
    }
}

/// What [`write_folder`] wrote.
#[derive(Debug, Default)]
pub struct Written {
    /// Every file, in the order written (formats, extra files, plots, the page).
    pub files: Vec<PathBuf>,
    /// How many plots were drawn.
    pub plots: usize,
    /// The plots not drawn, each with why (named by the file it would have been).
    pub skipped: Vec<String>,
    /// What the plots could not do as asked.
    pub notes: Vec<String>,
    /// The page, if the document has one.
    pub page: Option<PathBuf>,
}

/// Writes `doc` into `dir`: every format of it, its extra files, its plots and its page.
pub fn write_folder<D: Document>(doc: &D, dir: &Path) -> Result<Written> {
    let mut w = Written::default();
    for &f in D::Format::ALL {
        let p = dir.join(format!("{}.{}", doc.stem(), f.format().extension()));
        write_atomic(&p, doc.render(f)?.as_bytes())?;
        w.files.push(p);
    }
    for (name, text) in doc.extra_files()? {
        let p = dir.join(name);
        write_atomic(&p, text.as_bytes())?;
        w.files.push(p);
    }
    let plots = match D::PLOTS {
        PlotPlace::None => Plots::default(),
        place => {
            let plots = doc.plots()?;
            let plot_dir = if place == PlotPlace::Folder { dir.join(PLOTS_DIR) } else { dir.to_path_buf() };
            w.files.extend(write_plots(&plots.plots, &plot_dir)?);
            w.skipped = plots.skipped_lines(&plot_dir);
            plots
        }
    };
    w.plots = plots.plots.len();
    w.notes = plots.notes.clone();
    if let Some((name, html)) = doc.page(&plots.plots)? {
        let p = dir.join(name);
        write_atomic(&p, html.as_bytes())?;
        w.files.push(p.clone());
        w.page = Some(p);
    }
    Ok(w)
}
