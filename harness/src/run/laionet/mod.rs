//! `shiftbench laionet build`: LAIONet made from LAION captions as the paper made it (Shirali &
//! Hardt, ICLR 2024, Section 2; alishiraliGit/eval-on-laion).
//!
//! 1. **Match** ([`crate::data::matcher`]): each caption's lemmas (the paper's dictionary by
//!    default); captions naming exactly one class are the *candidates*, those naming two or more
//!    are dropped and counted.
//! 2. **Encode**: each candidate caption and each class's query (`name_def`) by the text encoder;
//!    the similarity is the dot product of the L2-normalised embeddings (their cosine).
//! 3. **Select**: similarity strictly above the threshold, the NSFW tag kept (`UNLIKELY`), and,
//!    with `max_per_class`, each class's most similar rows (ties by sample id).
//!
//! Steps 1-2 run per caption file into a part ([`parts`]), resumable and shardable over files;
//! step 3 and the outputs come when every part is there ([`assemble`]): `candidates.parquet`,
//! `laionet.parquet`, their suite files, `urls.txt`, `summary.json` (the report layer adds the
//! class table and the figures). `--match-only` counts matches without an encoder.

pub mod assemble;
pub mod parts;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::captions::{plain_schema, CaptionFile};
use crate::data::lexicon::{Lemmas, Queries};
use crate::data::matcher::Matcher;
use crate::data::table::table_files;
use crate::host::text::TextEncoder;
use crate::results::shard::Shard;
use crate::run::events::{Event, Reporter};
use crate::util::digest::sha256_hex;
use crate::util::files::write_atomic;
use assemble::{Selected, Selection};
use parts::{done_part, make_part, match_file, part_path, Counts, Settings};

/// What `laionet build` is asked.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// Caption Parquet files, or folders of them.
    pub captions: Vec<PathBuf>,
    pub out: PathBuf,
    /// A lemma table (default: the paper's dictionary).
    pub lemmas: Option<PathBuf>,
    /// A query table (default: the paper's `name_def` queries).
    pub queries: Option<PathBuf>,
    pub ignore_case: bool,
    pub text_column: String,
    pub id_column: String,
    pub url_column: String,
    /// `None`: no NSFW filter.
    pub nsfw_column: Option<String>,
    pub nsfw_keep: Vec<String>,
    pub threshold: f64,
    pub max_per_class: Option<usize>,
    pub shard: Option<Shard>,
    /// Captions per encoder call.
    pub encode_batch: usize,
}

impl BuildSpec {
    /// A spec with the paper's defaults for `captions`, `out` and `threshold`.
    pub fn new(captions: Vec<PathBuf>, out: PathBuf, threshold: f64) -> BuildSpec {
        BuildSpec {
            captions,
            out,
            lemmas: None,
            queries: None,
            ignore_case: false,
            text_column: "TEXT".into(),
            id_column: "SAMPLE_ID".into(),
            url_column: "URL".into(),
            nsfw_column: Some("NSFW".into()),
            nsfw_keep: vec!["UNLIKELY".into()],
            threshold,
            max_per_class: None,
            shard: None,
            encode_batch: 256,
        }
    }
}

/// The name of the similarity column for an encoder.
pub fn similarity_column(encoder: &str) -> String {
    format!("text_to_name_def_wnid_similarity_{encoder}")
}

/// The paper's threshold for an encoder, by its name: 0.58 for MPNet, 0.82 for CLIP.
pub fn paper_threshold(encoder: &str) -> Option<f64> {
    let e = encoder.to_ascii_lowercase();
    if e.contains("mpnet") {
        Some(0.58)
    } else if e.contains("clip") {
        Some(0.82)
    } else {
        None
    }
}

/// One class's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassRow {
    pub wnid: String,
    /// Captions holding one of its lemmas (multi-class ones too).
    pub matched: u64,
    /// The multi-class captions among them (dropped).
    pub multi_dropped: u64,
    /// Captions naming it alone.
    pub candidates: u64,
    /// Candidates above the threshold.
    pub above_threshold: u64,
    /// ... with the NSFW tag kept and within the cap: in laionet.parquet.
    pub selected: u64,
}

/// What a build did: the summary the CLI prints and `summary.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub files: usize,
    pub parts_reused: usize,
    pub captions: u64,
    pub null_captions: u64,
    pub one_class: u64,
    pub multi_class: u64,
    pub candidates: u64,
    pub above_threshold: u64,
    pub nsfw_dropped: u64,
    /// ... of them above the threshold: above_threshold - nsfw_dropped_above - over_max_per_class = selected.
    #[serde(default)]
    pub nsfw_dropped_above: u64,
    pub over_max_per_class: u64,
    pub selected: u64,
    pub classes_with_lemmas: usize,
    pub classes_with_candidates: usize,
    pub classes_selected: usize,
    pub threshold: Option<f64>,
    pub max_per_class: Option<usize>,
    pub encoder: Option<String>,
    pub similarity_column: Option<String>,
    pub lemmas: String,
    /// Lemmas that hold punctuation and so never match (as in the paper).
    pub never_matching_lemmas: usize,
    pub seconds: f64,
    pub notes: Vec<String>,
}

/// A finished build (or match count): the summary and, per class, the numbers.
#[derive(Debug, Clone)]
pub struct Built {
    pub summary: Summary,
    pub classes: Vec<ClassRow>,
    /// The selection's figures (absent for `--match-only` and a shard).
    pub selected: Option<Selected>,
    /// Set for a shard that wrote its parts only.
    pub shard_only: Option<Shard>,
}

/// Every caption Parquet file the spec names, sorted within each folder, in the order given.
pub fn caption_files(spec: &BuildSpec) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in &spec.captions {
        for f in table_files(p).context("--captions")? {
            if !crate::data::table::is_parquet(&f) {
                bail!("{}: captions are read from Parquet files (LAION's metadata parts)", f.display());
            }
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    if files.is_empty() {
        bail!("no caption files given");
    }
    Ok(files)
}

fn load_dictionaries(spec: &BuildSpec) -> Result<(Lemmas, Matcher, Vec<String>)> {
    let lemmas = match &spec.lemmas {
        Some(p) => Lemmas::load(p)?,
        None => Lemmas::default_paper(),
    };
    if lemmas.entries.is_empty() {
        bail!("the lemma dictionary {} holds no lemma", lemmas.source);
    }
    let matcher = Matcher::new(&lemmas, spec.ignore_case)?;
    let mut notes = lemmas.notes.clone();
    let never = Matcher::never_matching(&lemmas);
    if !never.is_empty() {
        notes.push(format!(
            "{} lemmas hold punctuation and, as in the paper, can never match (captions' punctuation becomes spaces): {}",
            never.len(),
            never.iter().take(6).map(|l| format!("{l:?}")).collect::<Vec<_>>().join(", ") + if never.len() > 6 { ", ..." } else { "" }
        ));
    }
    Ok((lemmas, matcher, notes))
}

fn class_rows(wnids: &[String], c: &Counts, s: Option<&Selected>) -> Vec<ClassRow> {
    wnids
        .iter()
        .enumerate()
        .map(|(i, w)| ClassRow {
            wnid: w.clone(),
            matched: c.matched[i],
            multi_dropped: c.multi[i],
            candidates: c.candidates[i],
            above_threshold: s.map_or(0, |s| s.above[i]),
            selected: s.map_or(0, |s| s.selected[i]),
        })
        .collect()
}

fn base_summary(files: usize, c: &Counts, lemmas: &Lemmas, matcher: &Matcher, notes: Vec<String>) -> Summary {
    Summary {
        files,
        captions: c.captions,
        null_captions: c.null_captions,
        one_class: c.one_class,
        multi_class: c.multi_class,
        candidates: c.one_class,
        classes_with_lemmas: matcher.wnids.len(),
        classes_with_candidates: c.candidates.iter().filter(|n| **n > 0).count(),
        lemmas: lemmas.source.clone(),
        never_matching_lemmas: Matcher::never_matching(lemmas).len(),
        notes,
        ..Summary::default()
    }
}

/// `--match-only`: the match counts of every caption file (no encoder, no parts), written as
/// `summary.json`; the CLI adds the class table.
pub fn count_matches(spec: &BuildSpec, reporter: &dyn Reporter) -> Result<Built> {
    let start = Instant::now();
    let files = caption_files(spec)?;
    let (lemmas, matcher, notes) = load_dictionaries(spec)?;
    let opened: Vec<CaptionFile> =
        files.iter().map(|f| CaptionFile::open(f, &spec.text_column)).collect::<Result<_>>()?;
    reporter.report(Event::BuildStarted { files: files.len(), rows: opened.iter().map(|f| f.rows).sum(), reused: 0 });
    let mut total = Counts::new(matcher.wnids.len());
    for f in &opened {
        total.add(&match_file(f, &matcher, reporter)?.0);
    }
    let mut summary = base_summary(files.len(), &total, &lemmas, &matcher, notes);
    summary.seconds = start.elapsed().as_secs_f64();
    std::fs::create_dir_all(&spec.out).with_context(|| format!("cannot create {}", spec.out.display()))?;
    write_atomic(&spec.out.join("summary.json"), &serde_json::to_vec_pretty(&summary)?)?;
    Ok(Built { classes: class_rows(&matcher.wnids, &total, None), summary, selected: None, shard_only: None })
}

/// A build stopped by Ctrl-C or SIGTERM between parts or within one: the finished parts are
/// kept, the unfinished one is discarded, and the same command goes on from there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "interrupted: {done} of {total} caption files are done, their parts kept in {}; run the same command again to go on from there",
    .parts.display()
)]
pub struct BuildInterrupted {
    pub parts: PathBuf,
    pub done: usize,
    pub total: usize,
}

/// Builds LAIONet: the parts of this shard's caption files (reusing those done before), then,
/// unless this is one shard of several, every output.
pub fn build(spec: &BuildSpec, encoder: &mut dyn TextEncoder, reporter: &dyn Reporter) -> Result<Built> {
    let start = Instant::now();
    if spec.max_per_class == Some(0) {
        bail!("--max-per-class must be at least 1");
    }
    let files = caption_files(spec)?;
    let (lemmas, matcher, notes) = load_dictionaries(spec)?;
    let queries = match &spec.queries {
        Some(p) => Queries::load(p)?,
        None => Queries::default_paper(),
    };
    let query_texts = queries.for_classes(&matcher.wnids)?;
    let dim = encoder.dim();
    let name = encoder.name().to_string();
    if dim == 0 || name.is_empty() || name.contains(['/', '\\', '\n']) {
        bail!("the text encoder has no usable name or size ({name:?}, {dim} values)");
    }
    let refs: Vec<&str> = query_texts.iter().map(String::as_str).collect();
    let mut query_embeddings = Vec::with_capacity(refs.len() * dim);
    for chunk in refs.chunks(spec.encode_batch.max(1)) {
        // Ctrl-C while the class queries are encoded: nothing is written yet.
        if crate::util::interrupt::requested() {
            return Err(BuildInterrupted { parts: spec.out.join("parts"), done: 0, total: files.len() }.into());
        }
        query_embeddings.extend(encoder.encode(chunk).context("the text encoder failed on the class queries")?);
    }
    if query_embeddings.len() != refs.len() * dim {
        bail!("the text encoder returned {} values for {} queries of {dim}", query_embeddings.len(), refs.len());
    }
    for (w, row) in matcher.wnids.iter().zip(query_embeddings.chunks(dim)) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !(norm - 1.0).abs().lt(&1e-3) {
            bail!("the text encoder's embedding of the query of {w} has length {norm}, not 1 (it must L2-normalise)");
        }
    }
    let sim_col = similarity_column(&name);
    let bytes: Vec<u8> = query_embeddings.iter().flat_map(|v| v.to_le_bytes()).collect();
    let settings_digest = sha256_hex(
        format!(
            "lemmas {}\nqueries {}\nencoder {name} {dim} {}\nignore_case {}\ntext_column {}\n",
            lemmas.digest(),
            crate::util::digest::lines_digest(query_texts.iter().map(String::as_str)),
            sha256_hex(&bytes),
            spec.ignore_case,
            spec.text_column
        )
        .as_bytes(),
    );
    let settings = Settings {
        matcher: &matcher,
        queries: &query_texts,
        query_embeddings: &query_embeddings,
        dim,
        text_column: &spec.text_column,
        similarity_column: &sim_col,
        digest: settings_digest.clone(),
        encode_batch: spec.encode_batch.max(1),
    };
    let parts_dir = spec.out.join("parts");
    std::fs::create_dir_all(&parts_dir).with_context(|| format!("cannot create {}", parts_dir.display()))?;

    // Which files are this shard's: the i-th of the sorted list when i = index mod count.
    let mine: Vec<bool> = (0..files.len()).map(|i| spec.shard.is_none_or(|s| i as u32 % s.count == s.index)).collect();
    let planned: Vec<(PathBuf, String, u64, u128)> =
        files.iter().map(|f| part_path(&parts_dir, f, &settings_digest)).collect::<Result<_>>()?;
    let reused: Vec<Option<parts::PartInfo>> = planned.iter().map(|(p, k, _, _)| done_part(p, k)).collect();
    let mut rows = 0u64;
    for (i, f) in files.iter().enumerate() {
        if mine[i] && reused[i].is_none() {
            rows += CaptionFile::open(f, &spec.text_column)?.rows;
        }
    }
    let n_reused = (0..files.len()).filter(|&i| mine[i] && reused[i].is_some()).count();
    reporter.report(Event::BuildStarted { files: mine.iter().filter(|m| **m).count(), rows, reused: n_reused });
    let mut infos: Vec<Option<parts::PartInfo>> = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        let (p, key, size, modified) = &planned[i];
        let info = match (&reused[i], mine[i]) {
            (Some(info), true) => {
                reporter.report(Event::PartReused { file: f, candidates: info.counts.one_class });
                Some(info.clone())
            }
            (Some(info), false) => Some(info.clone()),
            (None, true) => {
                let stopped = || BuildInterrupted {
                    parts: parts_dir.clone(),
                    done: infos.iter().zip(&mine).filter(|(i, m)| i.is_some() && **m).count(),
                    total: mine.iter().filter(|m| **m).count(),
                };
                if crate::util::interrupt::requested() {
                    return Err(stopped().into());
                }
                match make_part(f, p, key, (*size, *modified), &settings, encoder, reporter) {
                    Ok(info) => Some(info),
                    Err(e) if e.is::<parts::PartStopped>() => return Err(stopped().into()),
                    Err(e) => return Err(e),
                }
            }
            (None, false) => None,
        };
        infos.push(info);
    }
    // The counts of this shard's files (all files without --shard).
    let mut total = Counts::new(matcher.wnids.len());
    for (i, info) in infos.iter().enumerate() {
        if let (Some(info), true) = (info, mine[i]) {
            total.add(&info.counts);
        }
    }
    let n_mine = mine.iter().filter(|m| **m).count();
    let mut summary = base_summary(n_mine, &total, &lemmas, &matcher, notes);
    summary.parts_reused = n_reused;
    summary.threshold = Some(spec.threshold);
    summary.max_per_class = spec.max_per_class;
    summary.encoder = Some(name.clone());
    summary.similarity_column = Some(sim_col.clone());
    if let Some(s) = spec.shard.filter(|s| s.count > 1) {
        summary.seconds = start.elapsed().as_secs_f64();
        return Ok(Built {
            classes: class_rows(&matcher.wnids, &total, None),
            summary,
            selected: None,
            shard_only: Some(s),
        });
    }
    let missing: Vec<String> =
        files.iter().zip(&infos).filter(|(_, i)| i.is_none()).map(|(f, _)| f.display().to_string()).collect();
    if !missing.is_empty() {
        bail!("no part for {} caption file(s) under the current settings: {}", missing.len(), missing.join(", "));
    }
    reporter.report(Event::Assembling { parts: files.len() });
    let first = CaptionFile::open(&files[0], &spec.text_column)?;
    for c in [Some(&spec.id_column), Some(&spec.url_column), spec.nsfw_column.as_ref()].into_iter().flatten() {
        if first.schema().field_with_name(c).is_err() {
            bail!(
                "{}: no column {c:?} (columns: {}); name it with --id-column, --url-column or --nsfw-column (--no-nsfw-filter to skip that filter)",
                files[0].display(),
                first.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let mut fields: Vec<arrow_schema::Field> =
        plain_schema(&first.schema()).fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(parts::added_fields(&sim_col));
    let schema = std::sync::Arc::new(arrow_schema::Schema::new(fields));
    let pairs: Vec<(PathBuf, PathBuf)> = files.iter().cloned().zip(planned.iter().map(|p| p.0.clone())).collect();
    let sel = Selection {
        threshold: spec.threshold,
        id_column: spec.id_column.clone(),
        url_column: spec.url_column.clone(),
        nsfw_column: spec.nsfw_column.clone(),
        nsfw_keep: spec.nsfw_keep.clone(),
        max_per_class: spec.max_per_class,
    };
    let s = assemble::assemble(&pairs, schema, &spec.out, &sim_col, &matcher.wnids, &sel)?;
    write_suites(spec, &sim_col)?;
    summary.above_threshold = s.above.iter().sum();
    summary.nsfw_dropped = s.nsfw_dropped;
    summary.nsfw_dropped_above = s.nsfw_dropped_above;
    summary.selected = s.selected.iter().sum();
    summary.over_max_per_class = s.above_safe.iter().sum::<u64>() - summary.selected;
    summary.classes_selected = s.selected.iter().filter(|n| **n > 0).count();
    summary.seconds = start.elapsed().as_secs_f64();
    write_atomic(&spec.out.join("summary.json"), &serde_json::to_vec_pretty(&summary)?)?;
    Ok(Built { classes: class_rows(&matcher.wnids, &total, Some(&s)), summary, selected: Some(s), shard_only: None })
}

/// `laionet.yaml` (over laionet.parquet) and `candidates.yaml` (over candidates.parquet, the same
/// selection: `shiftbench sweep` moves its threshold), both read by the `laionet:` source.
fn write_suites(spec: &BuildSpec, sim_col: &str) -> Result<()> {
    for (file, rows, name) in [
        ("laionet.yaml", "laionet.parquet", "laionet"),
        ("candidates.yaml", "candidates.parquet", "laionet-candidates"),
    ] {
        let q = |s: &str| serde_json::to_string(s).expect("a string");
        let nsfw = match &spec.nsfw_column {
            Some(c) => format!(
                "    nsfw_column: {}\n    nsfw_keep: [{}]\n",
                q(c),
                spec.nsfw_keep.iter().map(|k| q(k)).collect::<Vec<_>>().join(", ")
            ),
            None => "    nsfw_column: null\n".into(),
        };
        let cap = spec.max_per_class.map(|m| format!("    max_per_class: {m}\n")).unwrap_or_default();
        let yaml = format!(
            "# Written by `shiftbench laionet build`: {rows} with the images img2dataset fetched for its URLs\n\
             # ({fetch}).\n\
             # The selection is the build's: similarity strictly above {t}, the NSFW tag kept{capnote}.\n\
             name: {name}\nsource:\n  laionet:\n    rows: {rows}\n    images: ${{LAIONET_IMAGES}}\n    join: url\n\
             \x20   id_column: {id}\n    url_column: {url}\n    wnid_column: wnid\n    similarity_column: {sim}\n\
             \x20   min_similarity: {t}\n    similarity_inclusive: false\n{nsfw}{cap}    drop_if_true: []\nweights: own\n",
            t = spec.threshold,
            // urls.txt holds the selected rows' URLs: a sweep below the build's threshold needs
            // every candidate's image.
            fetch = if rows == "candidates.parquet" {
                "every candidate's: img2dataset --url_list candidates.parquet --input_format parquet --url_col URL \
                 --output_format webdataset --output_folder laionet-images; urls.txt has the selected rows' only"
            } else {
                "img2dataset --url_list urls.txt --output_format webdataset --output_folder laionet-images"
            },
            capnote = spec.max_per_class.map(|m| format!(", the {m} most similar per class")).unwrap_or_default(),
            id = q(&spec.id_column),
            url = q(&spec.url_column),
            sim = q(sim_col),
        );
        write_atomic(&spec.out.join(file), yaml.as_bytes())?;
    }
    Ok(())
}
