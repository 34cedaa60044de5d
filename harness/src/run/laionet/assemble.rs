//! The parts of a LAIONet build put together: `candidates.parquet` (every part's rows, in input
//! order), the selection (similarity strictly above the threshold, the NSFW tag kept, each
//! class's most similar rows when capped) into `laionet.parquet`, and what the figures and the
//! class table are drawn from. Memory holds a few numbers per class and, with a cap, each class's
//! best rows: never the rows themselves.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use arrow_array::{Array, Float32Array, RecordBatch};
use arrow_schema::SchemaRef;
use arrow_select::filter::filter_record_batch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::data::captions::{text_values, AtomicParquet};
use crate::data::sources::laionet::id_order;

/// The thresholds the figures are drawn at: 0.00, 0.01, ..., 1.00.
pub const CURVE_STEPS: usize = 101;
/// Bins of the similarity density, over [-1, 1].
pub const DENSITY_BINS: usize = 200;

/// How rows are selected.
#[derive(Debug, Clone)]
pub struct Selection {
    pub threshold: f64,
    pub id_column: String,
    pub url_column: String,
    pub nsfw_column: Option<String>,
    pub nsfw_keep: Vec<String>,
    pub max_per_class: Option<usize>,
}

/// What the selection found, per class (the matcher's order) and in all.
#[derive(Debug, Clone, Default)]
pub struct Selected {
    /// Candidates whose similarity is above the threshold.
    pub above: Vec<u64>,
    /// ... and whose NSFW tag is kept.
    pub above_safe: Vec<u64>,
    /// ... and within the cap: the rows of laionet.parquet.
    pub selected: Vec<u64>,
    /// Candidates dropped by the NSFW filter alone (whatever their similarity).
    pub nsfw_dropped: u64,
    /// ... of them above the threshold (those the filter took out of the selection).
    pub nsfw_dropped_above: u64,
    /// For the figures: per threshold `k / 100`, the NSFW-kept candidates strictly above it, per
    /// class (`curve[k][class]`); and the density of all candidates' similarities.
    pub curve: Vec<Vec<u64>>,
    pub density: Vec<u64>,
}

/// A heap entry: worse rows compare greater, so the heap's top is the row to drop first.
#[derive(PartialEq)]
struct Ranked {
    sim: f32,
    id: String,
    row: u64,
}
impl Eq for Ranked {}
impl Ord for Ranked {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // Better = higher similarity, then lower id (id_order), then earlier row.
        o.sim.total_cmp(&self.sim).then_with(|| id_order(&self.id, &o.id)).then_with(|| self.row.cmp(&o.row))
    }
}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// Per row of a batch: (class, similarity, NSFW tag kept, id as the suite names it, url).
struct RowFacts {
    class: Vec<usize>,
    sim: Vec<f32>,
    safe: Vec<bool>,
    id: Vec<String>,
}

fn facts(
    batch: &RecordBatch,
    sim_col: &str,
    sel: &Selection,
    class_index: &HashMap<String, usize>,
    seen: &mut HashMap<String, usize>,
    rows_before: u64,
) -> Result<RowFacts> {
    let wnids = text_values(batch, "wnid")?;
    let class = wnids
        .iter()
        .map(|w| {
            w.as_deref()
                .and_then(|w| class_index.get(w).copied())
                .ok_or_else(|| anyhow!("a part names a class {w:?} the dictionary lacks"))
        })
        .collect::<Result<Vec<_>>>()?;
    let sims = batch
        .column_by_name(sim_col)
        .and_then(|c| c.as_any().downcast_ref::<Float32Array>())
        .ok_or_else(|| anyhow!("the parts lack the float32 column {sim_col}"))?;
    let sim = (0..sims.len()).map(|i| if sims.is_null(i) { f32::NAN } else { sims.value(i) }).collect();
    let safe = match &sel.nsfw_column {
        None => vec![true; batch.num_rows()],
        Some(c) => text_values(batch, c)?
            .iter()
            .map(|v| v.as_deref().is_some_and(|v| sel.nsfw_keep.iter().any(|k| k == v.trim())))
            .collect(),
    };
    // Ids as a LAIONet suite reads them: the cell's text, `row<n>` when null, `<id>#n` for the
    // n-th row of an id already seen.
    let raw = id_texts(batch, &sel.id_column)?;
    let id = raw
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let base = v.unwrap_or_else(|| format!("row{}", rows_before + i as u64 + 1));
            let n = seen.entry(base.clone()).or_default();
            *n += 1;
            if *n == 1 {
                base
            } else {
                format!("{base}#{n}")
            }
        })
        .collect();
    Ok(RowFacts { class, sim, safe, id })
}

/// A column's cells as text, as a suite reads them ([`crate::data::table::Cell::text`]): integers
/// as written, text trimmed, empty and `NA`-like text as null.
fn id_texts(batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    use arrow_schema::DataType as D;
    let col = batch.column_by_name(name).ok_or_else(|| anyhow!("no column {name:?}"))?;
    let n = col.len();
    let get = |f: &dyn Fn(usize) -> String| (0..n).map(|i| col.is_valid(i).then(|| f(i))).collect::<Vec<_>>();
    let v = match col.data_type() {
        D::Int64 => get(&|i| col.as_primitive::<Int64Type>().value(i).to_string()),
        D::Int32 => get(&|i| col.as_primitive::<Int32Type>().value(i).to_string()),
        D::UInt64 => get(&|i| col.as_primitive::<UInt64Type>().value(i).to_string()),
        D::UInt32 => get(&|i| col.as_primitive::<UInt32Type>().value(i).to_string()),
        D::Float64 => get(&|i| {
            let f = col.as_primitive::<Float64Type>().value(i);
            crate::data::table::Cell::F64(f).text().unwrap_or_default()
        }),
        _ => text_values(batch, name)?,
    };
    Ok(v.into_iter().map(|s| s.and_then(|s| crate::data::table::Cell::Str(s).text())).collect())
}

fn read_batches(path: &Path) -> Result<impl Iterator<Item = Result<RecordBatch>>> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let r = ParquetRecordBatchReaderBuilder::try_new(f)
        .with_context(|| format!("{} is not a readable Parquet file", path.display()))?
        .with_batch_size(16 * 1024)
        .build()?;
    let p = path.to_path_buf();
    Ok(r.map(move |b| b.with_context(|| format!("cannot read {}", p.display()))))
}

/// The index of the first of `edges` a similarity is not above: the number of edges it is
/// strictly above (compared in float32, as a suite compares a float32 column).
fn above_count(edges: &[f32], sim: f32) -> usize {
    edges.partition_point(|e| sim > *e)
}

/// Writes `candidates.parquet` from the parts (in order), then `laionet.parquet` and the URL
/// list from it, and returns what was selected.
pub fn assemble(
    parts: &[(PathBuf, PathBuf)],
    schema: SchemaRef,
    out: &Path,
    sim_col: &str,
    wnids: &[String],
    sel: &Selection,
) -> Result<Selected> {
    let k = wnids.len();
    let class_index: HashMap<String, usize> = wnids.iter().enumerate().map(|(i, w)| (w.clone(), i)).collect();
    let edges: Vec<f32> = (0..CURVE_STEPS).map(|s| (s as f64 / 100.0) as f32).collect();
    let mut s = Selected {
        above: vec![0; k],
        above_safe: vec![0; k],
        selected: vec![0; k],
        curve: vec![vec![0; k]; CURVE_STEPS],
        density: vec![0; DENSITY_BINS],
        ..Selected::default()
    };
    // Per class, the bins of the NSFW-kept candidates: bin b holds those above exactly b edges.
    let mut bins = vec![vec![0u64; CURVE_STEPS + 1]; k];
    let mut heaps: Vec<BinaryHeap<Ranked>> = (0..k).map(|_| BinaryHeap::new()).collect();
    let t = sel.threshold as f32;

    let candidates = out.join("candidates.parquet");
    let mut w = AtomicParquet::create(&candidates, schema.clone())?;
    let mut seen = HashMap::new();
    let mut row = 0u64;
    for (input, part) in parts {
        let part_schema = ParquetRecordBatchReaderBuilder::try_new(File::open(part)?)?.schema().clone();
        if part_schema.fields() != schema.fields() {
            bail!(
                "{}: its columns differ from the first caption file's ({}); build files of one layout together",
                input.display(),
                difference(&part_schema, &schema)
            );
        }
        for batch in read_batches(part)? {
            let batch = batch?;
            let f = facts(&batch, sim_col, sel, &class_index, &mut seen, row)?;
            for i in 0..batch.num_rows() {
                let (c, sim) = (f.class[i], f.sim[i]);
                let d =
                    (((sim as f64 + 1.0) / 2.0 * DENSITY_BINS as f64).floor() as i64).clamp(0, DENSITY_BINS as i64 - 1);
                s.density[d as usize] += 1;
                if !f.safe[i] {
                    s.nsfw_dropped += 1;
                    s.nsfw_dropped_above += u64::from(sim > t);
                } else {
                    bins[c][above_count(&edges, sim)] += 1;
                }
                if sim > t {
                    s.above[c] += 1;
                    if f.safe[i] {
                        s.above_safe[c] += 1;
                        if let Some(m) = sel.max_per_class {
                            heaps[c].push(Ranked { sim, id: f.id[i].clone(), row: row + i as u64 });
                            if heaps[c].len() > m {
                                heaps[c].pop();
                            }
                        }
                    }
                }
            }
            row += batch.num_rows() as u64;
            w.write(&batch)?;
        }
    }
    w.finish()?;
    for (c, class_bins) in bins.iter().enumerate() {
        // curve[j][c]: kept candidates above edge j = those above more than j edges.
        let mut acc = 0;
        for b in (1..=CURVE_STEPS).rev() {
            acc += class_bins[b];
            s.curve[b - 1][c] = acc;
        }
    }
    let capped: Option<HashSet<u64>> =
        sel.max_per_class.map(|_| heaps.iter().flat_map(|h| h.iter().map(|r| r.row)).collect());

    // The selection, streamed from candidates.parquet.
    let mut w = AtomicParquet::create(&out.join("laionet.parquet"), schema)?;
    let mut urls = Vec::new();
    let mut seen = HashMap::new();
    let mut row = 0u64;
    for batch in read_batches(&candidates)? {
        let batch = batch?;
        let f = facts(&batch, sim_col, sel, &class_index, &mut seen, row)?;
        let keep: Vec<bool> = (0..batch.num_rows())
            .map(|i| f.sim[i] > t && f.safe[i] && capped.as_ref().is_none_or(|set| set.contains(&(row + i as u64))))
            .collect();
        for (i, kept) in keep.iter().enumerate() {
            if *kept {
                s.selected[f.class[i]] += 1;
            }
        }
        let kept = filter_record_batch(&batch, &arrow_array::BooleanArray::from(keep))?;
        if kept.num_rows() > 0 {
            let u = text_values(&kept, &sel.url_column)?;
            urls.extend(u.into_iter().flatten());
            w.write(&kept)?;
        }
        row += batch.num_rows() as u64;
    }
    w.finish()?;
    let mut text = String::new();
    for u in urls {
        text.push_str(u.trim());
        text.push('\n');
    }
    crate::util::files::write_atomic(&out.join("urls.txt"), text.as_bytes())?;
    Ok(s)
}

/// What differs between a file's columns and the first file's: each column missing on one side,
/// or typed differently (its type and whether it may be null), in a few words.
fn difference(this: &SchemaRef, first: &SchemaRef) -> String {
    let describe = |f: &arrow_schema::Field| {
        format!("{} {}", f.data_type(), if f.is_nullable() { "(nullable)" } else { "(not null)" })
    };
    let mut out = Vec::new();
    for f in first.fields() {
        match this.field_with_name(f.name()) {
            Err(_) => out.push(format!("{} missing", f.name())),
            Ok(g) if g != f.as_ref() => out.push(format!("{}: {} here, {} there", f.name(), describe(g), describe(f))),
            Ok(_) => {}
        }
    }
    for g in this.fields() {
        if first.field_with_name(g.name()).is_err() {
            out.push(format!("{} not in the first file", g.name()));
        }
    }
    if out.is_empty() {
        out.push("the same columns in another order".into());
    }
    out.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_keeps_the_most_similar_then_the_lowest_id() {
        let mut h = BinaryHeap::new();
        for (sim, id, row) in [(0.9f32, "30", 0u64), (0.8, "200", 1), (0.8, "4", 2), (0.7, "1", 3)] {
            h.push(Ranked { sim, id: id.into(), row });
            if h.len() > 2 {
                h.pop();
            }
        }
        let mut kept: Vec<u64> = h.into_iter().map(|r| r.row).collect();
        kept.sort();
        assert_eq!(kept, vec![0, 2]); // 0.9, then the 0.8 tie goes to id 4 over id 200
    }

    #[test]
    fn edges_count_strictly_above_in_float32() {
        let edges: Vec<f32> = (0..CURVE_STEPS).map(|s| (s as f64 / 100.0) as f32).collect();
        assert_eq!(above_count(&edges, 0.82f32), 82); // above 0.00..=0.81, not above 0.82
        assert_eq!(above_count(&edges, 0.820_000_05), 83);
        assert_eq!(above_count(&edges, -0.5), 0);
        assert_eq!(above_count(&edges, 1.0), 100);
    }
}
