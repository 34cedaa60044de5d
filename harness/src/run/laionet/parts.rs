//! One caption file's share of a LAIONet build: its *part*, the candidates it holds (every row
//! whose caption names exactly one class, all its columns, plus the class, its query and the
//! caption's similarity to it) and its counts, written atomically under `DIR/parts/`.
//!
//! A part is named by a key: a digest of the input file (name, size, modification time and an
//! xxh3 fingerprint of its whole content) and of
//! every setting that decides its content (the lemma dictionary, the queries, the encoder's name,
//! size and its embeddings of the queries, ignore-case, the caption column). A rerun finds the
//! part of an unchanged file under unchanged settings and skips it; a changed file or setting
//! gives another key, so an old part is never reused for it. The threshold, NSFW and
//! max-per-class settings apply when the parts are put together, so they change no part.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::captions::{plain_schema, text_values, AtomicParquet, CaptionFile};
use crate::data::matcher::{Matcher, Outcome};
use crate::host::text::TextEncoder;
use crate::run::events::{Event, Reporter};
use crate::util::digest::sha256_hex;
use crate::util::files::write_atomic;

/// The format of parts (a part of another format is never reused).
const PART_FORMAT: u32 = 1;

/// What matching counted in some captions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub captions: u64,
    /// Captions that are null (they match nothing).
    pub null_captions: u64,
    /// Captions naming exactly one class (the candidates).
    pub one_class: u64,
    /// Captions whose lemmas name two or more classes (dropped).
    pub multi_class: u64,
    /// Per class (the matcher's order): captions holding one of its lemmas, multi-class ones too.
    pub matched: Vec<u64>,
    /// Per class: the multi-class captions among those.
    pub multi: Vec<u64>,
    /// Per class: the candidates.
    pub candidates: Vec<u64>,
}

impl Counts {
    pub fn new(classes: usize) -> Counts {
        Counts { matched: vec![0; classes], multi: vec![0; classes], candidates: vec![0; classes], ..Counts::default() }
    }

    pub fn add(&mut self, o: &Counts) {
        self.captions += o.captions;
        self.null_captions += o.null_captions;
        self.one_class += o.one_class;
        self.multi_class += o.multi_class;
        for (a, b) in
            [(&mut self.matched, &o.matched), (&mut self.multi, &o.multi), (&mut self.candidates, &o.candidates)]
        {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
    }
}

/// The counts of some captions and their candidate rows: (row, class), in row order.
pub type Matched = (Counts, Vec<(u64, u32)>);

/// Matches every caption of `file` (row groups in parallel): the counts, and the candidate rows
/// (row, class) in row order.
pub fn match_file(file: &CaptionFile, matcher: &Matcher, reporter: &dyn Reporter) -> Result<Matched> {
    let k = matcher.wnids.len();
    let per_group: Vec<Result<Matched>> = (0..file.row_groups())
        .into_par_iter()
        .map(|g| {
            let mut c = Counts::new(k);
            let mut found = Vec::new();
            let (mut buf, mut hits) = (Vec::new(), Vec::new());
            file.scan_texts(g, |row, text| {
                c.captions += 1;
                let Some(text) = text else {
                    c.null_captions += 1;
                    return;
                };
                match matcher.outcome(text, &mut buf, &mut hits) {
                    Outcome::None => {}
                    Outcome::One(w) => {
                        c.one_class += 1;
                        c.matched[w as usize] += 1;
                        c.candidates[w as usize] += 1;
                        found.push((row, w));
                    }
                    Outcome::Multi => {
                        c.multi_class += 1;
                        for &w in &hits {
                            c.matched[w as usize] += 1;
                            c.multi[w as usize] += 1;
                        }
                    }
                }
            })?;
            reporter.report(Event::CaptionsMatched { rows: c.captions });
            Ok((c, found))
        })
        .collect();
    let mut counts = Counts::new(k);
    let mut rows = Vec::new();
    for r in per_group {
        let (c, f) = r?;
        counts.add(&c);
        rows.extend(f);
    }
    Ok((counts, rows))
}

/// The settings that decide a part's content, and the encoder's answers for the queries.
pub struct Settings<'a> {
    pub matcher: &'a Matcher,
    /// Per class (the matcher's order): its query text and its embedding.
    pub queries: &'a [String],
    pub query_embeddings: &'a [f32],
    pub dim: usize,
    pub text_column: &'a str,
    pub similarity_column: &'a str,
    /// A digest of everything above and the lemma dictionary, queries and encoder.
    pub digest: String,
    pub encode_batch: usize,
}

/// The sidecar of a part: its key, what it was made from, and its counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartInfo {
    pub format: u32,
    pub key: String,
    pub input: String,
    pub input_size: u64,
    pub input_modified_ns: u128,
    pub settings: String,
    pub counts: Counts,
    /// The part's columns, `name: type`.
    pub columns: Vec<String>,
}

/// Where the part of `input` goes under `parts`, and its key.
pub fn part_path(parts: &Path, input: &Path, settings_digest: &str) -> Result<(PathBuf, String, u64, u128)> {
    let meta = std::fs::metadata(input).with_context(|| format!("cannot read {}", input.display()))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // The whole content: an edit that keeps the size, the time and even the Parquet footer (a file
    // written without statistics, its time restored by `cp -p` or `rsync -t`) still changes it.
    let content =
        crate::util::digest::file_fingerprint(input).with_context(|| format!("cannot read {}", input.display()))?;
    let key = sha256_hex(
        format!("{PART_FORMAT}\n{settings_digest}\n{name}\n{}\n{modified}\n{content}", meta.len()).as_bytes(),
    );
    let stem: String = input
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(80)
        .collect();
    Ok((parts.join(format!("{stem}.{}.parquet", &key[..16])), key, meta.len(), modified))
}

/// The sidecar of the part at `path` if it is complete and has `key`.
pub fn done_part(path: &Path, key: &str) -> Option<PartInfo> {
    let info: PartInfo = serde_json::from_slice(&std::fs::read(path.with_extension("json")).ok()?).ok()?;
    (info.format == PART_FORMAT && info.key == key && path.is_file()).then_some(info)
}

/// The columns the builder adds (their names must not be taken by the input).
pub fn added_fields(similarity_column: &str) -> [Field; 3] {
    [
        Field::new("wnid", DataType::Utf8, false),
        Field::new("name_def_wnid", DataType::Utf8, false),
        Field::new(similarity_column, DataType::Float32, false),
    ]
}

/// A part was left unmade because a stop was asked for (Ctrl-C, SIGTERM).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("stopped")]
pub struct PartStopped;

/// Makes the part of `input` at `path`: matches, encodes the candidates, writes the Parquet
/// part and then its sidecar (so a part with a sidecar is complete). Stops between batches when
/// a stop was asked for ([`PartStopped`]), leaving no part behind.
pub fn make_part(
    input: &Path,
    path: &Path,
    key: &str,
    (size, modified): (u64, u128),
    s: &Settings,
    encoder: &mut dyn TextEncoder,
    reporter: &dyn Reporter,
) -> Result<PartInfo> {
    let start = Instant::now();
    let file = CaptionFile::open(input, s.text_column)?;
    let in_schema = plain_schema(&file.schema());
    let added = added_fields(s.similarity_column);
    for f in &added {
        if in_schema.field_with_name(f.name()).is_ok() {
            bail!(
                "{}: already has a column {:?}, which the builder writes (rename it, or build from the raw LAION \
                 metadata)",
                input.display(),
                f.name()
            );
        }
    }
    let mut fields: Vec<Field> = in_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(added);
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let (counts, rows) = match_file(&file, s.matcher, reporter)?;
    let only_rows: Vec<u64> = rows.iter().map(|r| r.0).collect();
    let mut out = AtomicParquet::create(path, schema.clone())?;
    let mut at = 0usize;
    for batch in file.read_rows(&only_rows)? {
        // Ctrl-C: stop between batches; dropping `out` unfinished removes its temporary file.
        if crate::util::interrupt::requested() {
            return Err(PartStopped.into());
        }
        let batch = batch?;
        let n = batch.num_rows();
        let classes = &rows[at..at + n];
        at += n;
        let texts = text_values(&batch, s.text_column)?;
        let mut sims = Vec::with_capacity(n);
        for (chunk_i, chunk) in texts.chunks(s.encode_batch.max(1)).enumerate() {
            let strs: Vec<&str> = chunk.iter().map(|t| t.as_deref().unwrap_or("None")).collect();
            let e = encoder.encode(&strs).with_context(|| format!("{}: the text encoder failed", input.display()))?;
            if e.len() != strs.len() * s.dim {
                bail!("the text encoder returned {} values for {} texts of {} values", e.len(), strs.len(), s.dim);
            }
            for (j, row) in e.chunks(s.dim).enumerate() {
                let w = classes[chunk_i * s.encode_batch.max(1) + j].1 as usize;
                let q = &s.query_embeddings[w * s.dim..(w + 1) * s.dim];
                sims.push(row.iter().zip(q).map(|(a, b)| a * b).sum::<f32>());
            }
        }
        let wnid: StringArray = classes.iter().map(|c| Some(s.matcher.wnids[c.1 as usize].as_str())).collect();
        let query: StringArray = classes.iter().map(|c| Some(s.queries[c.1 as usize].as_str())).collect();
        let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
        cols.push(Arc::new(wnid));
        cols.push(Arc::new(query));
        cols.push(Arc::new(Float32Array::from(sims)));
        out.write(&RecordBatch::try_new(schema.clone(), cols)?)?;
    }
    if at != rows.len() {
        bail!("{}: read {at} of the {} matched rows back", input.display(), rows.len());
    }
    out.finish()?;
    let info = PartInfo {
        format: PART_FORMAT,
        key: key.to_string(),
        input: input.display().to_string(),
        input_size: size,
        input_modified_ns: modified,
        settings: s.digest.clone(),
        counts,
        columns: schema.fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect(),
    };
    write_atomic(&path.with_extension("json"), &serde_json::to_vec_pretty(&info)?)?;
    reporter.report(Event::PartWritten {
        file: input,
        rows: info.counts.captions,
        candidates: info.counts.one_class,
        seconds: start.elapsed().as_secs_f64(),
    });
    Ok(info)
}
