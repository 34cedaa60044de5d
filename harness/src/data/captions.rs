//! Caption tables (LAION's metadata Parquet: `SAMPLE_ID`, `URL`, `TEXT`, `NSFW`, ...) read the
//! way `shiftbench laionet build` needs them, with memory bounded whatever the file's size: the
//! caption column alone, one row group at a time ([`CaptionFile::scan_texts`]); then only the
//! rows wanted, every column in its own type ([`CaptionFile::read_rows`]); and Parquet written
//! atomically ([`AtomicParquet`]: a temporary file renamed into place when complete).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use arrow_array::{Array, BinaryArray, LargeBinaryArray, LargeStringArray, RecordBatch, StringArray};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Rows per batch read.
const BATCH: usize = 16 * 1024;
/// Rows per row group written.
pub const WRITE_ROW_GROUP: usize = 64 * 1024;

/// An open caption table (Parquet).
pub struct CaptionFile {
    pub path: PathBuf,
    meta: ArrowReaderMetadata,
    /// The caption column's leaf index and name.
    text_leaf: usize,
    text_column: String,
    /// The first row of each row group.
    starts: Vec<u64>,
    pub rows: u64,
}

impl CaptionFile {
    /// Opens `path` and checks it has a text column `text_column`.
    pub fn open(path: &Path, text_column: &str) -> Result<CaptionFile> {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let meta = ArrowReaderMetadata::load(&f, ArrowReaderOptions::new())
            .map_err(|e| anyhow!("{} is not a readable Parquet file: {e}", path.display()))?;
        let names: Vec<&str> = meta.schema().fields().iter().map(|f| f.name().as_str()).collect();
        let Some(field) = meta.schema().fields().iter().find(|f| f.name() == text_column) else {
            bail!("{}: no caption column {text_column:?} (columns: {})", path.display(), names.join(", "));
        };
        if !matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary)
        {
            bail!("{}: the caption column {text_column:?} holds {}, not text", path.display(), field.data_type());
        }
        let descr = meta.metadata().file_metadata().schema_descr();
        let text_leaf = (0..descr.num_columns())
            .find(|&i| descr.column(i).path().parts().first().map(String::as_str) == Some(text_column))
            .ok_or_else(|| anyhow!("{}: the caption column {text_column:?} has no Parquet leaf", path.display()))?;
        let mut starts = Vec::new();
        let mut rows = 0u64;
        for rg in meta.metadata().row_groups() {
            starts.push(rows);
            rows += rg.num_rows().max(0) as u64;
        }
        Ok(CaptionFile { path: path.to_path_buf(), meta, text_leaf, text_column: text_column.into(), starts, rows })
    }

    /// The table's columns and their types.
    pub fn schema(&self) -> SchemaRef {
        self.meta.schema().clone()
    }

    pub fn row_groups(&self) -> usize {
        self.starts.len()
    }

    fn builder(&self) -> Result<ParquetRecordBatchReaderBuilder<File>> {
        let f = File::open(&self.path).with_context(|| format!("cannot open {}", self.path.display()))?;
        Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(f, self.meta.clone()).with_batch_size(BATCH))
    }

    /// Calls `f(row, caption)` for every row of row group `g` (`row` counted from the file's
    /// first row, from 0; `None` for a null caption). A caption that is not UTF-8 is an error
    /// naming the file, column and row.
    pub fn scan_texts(&self, g: usize, mut f: impl FnMut(u64, Option<&[u8]>)) -> Result<()> {
        let mask = ProjectionMask::leaves(self.meta.metadata().file_metadata().schema_descr(), [self.text_leaf]);
        let reader = self.builder()?.with_projection(mask).with_row_groups(vec![g]).build()?;
        let mut row = self.starts[g];
        let what = || format!("{}: column {:?}, row group {g}", self.path.display(), self.text_column);
        for batch in reader {
            let batch = batch.with_context(what)?;
            let col = batch.column(0);
            macro_rules! each {
                ($arr:ty, $bytes:expr) => {{
                    let a =
                        col.as_any().downcast_ref::<$arr>().ok_or_else(|| anyhow!("{}: unexpected type", what()))?;
                    for i in 0..a.len() {
                        let v = if a.is_null(i) { None } else { Some($bytes(a.value(i))) };
                        f(row + i as u64, v);
                    }
                }};
            }
            match col.data_type() {
                DataType::Utf8 => each!(StringArray, str::as_bytes),
                DataType::LargeUtf8 => each!(LargeStringArray, str::as_bytes),
                DataType::Binary | DataType::LargeBinary => {
                    // Bytes not marked as text: checked here, so the bad row can be named.
                    let check = |i: usize, b: &[u8]| -> Result<()> {
                        std::str::from_utf8(b).map(|_| ()).map_err(|e| {
                            anyhow!(
                                "{}: column {:?}, row {}: the caption is not UTF-8 ({e})",
                                self.path.display(),
                                self.text_column,
                                row + i as u64 + 1
                            )
                        })
                    };
                    if let Some(a) = col.as_any().downcast_ref::<BinaryArray>() {
                        for i in 0..a.len() {
                            if a.is_valid(i) {
                                check(i, a.value(i))?;
                            }
                        }
                        each!(BinaryArray, |b| b)
                    } else {
                        let a = col.as_any().downcast_ref::<LargeBinaryArray>().expect("large binary");
                        for i in 0..a.len() {
                            if a.is_valid(i) {
                                check(i, a.value(i))?;
                            }
                        }
                        each!(LargeBinaryArray, |b| b)
                    }
                }
                other => bail!("{}: holds {other}", what()),
            }
            row += col.len() as u64;
        }
        Ok(())
    }

    /// The rows `rows` (sorted, distinct, counted from 0), every column, in batches.
    pub fn read_rows(&self, rows: &[u64]) -> Result<impl Iterator<Item = Result<RecordBatch>>> {
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
        for &r in rows {
            let r = r as usize;
            match ranges.last_mut() {
                Some(last) if last.end == r => last.end = r + 1,
                _ => ranges.push(r..r + 1),
            }
        }
        let selection = RowSelection::from_consecutive_ranges(ranges.into_iter(), self.rows as usize);
        let reader = self.builder()?.with_row_selection(selection).build()?;
        let path = self.path.clone();
        Ok(reader.map(move |b| b.with_context(|| format!("{}: cannot read the matched rows", path.display()))))
    }
}

/// A caption column's cells as text: the batch's column `name` (Utf8, LargeUtf8 or UTF-8 bytes).
pub fn text_values(batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    let col = batch.column_by_name(name).ok_or_else(|| anyhow!("no column {name:?}"))?;
    let any = col.as_any();
    let out = if let Some(a) = any.downcast_ref::<StringArray>() {
        a.iter().map(|v| v.map(String::from)).collect()
    } else if let Some(a) = any.downcast_ref::<LargeStringArray>() {
        a.iter().map(|v| v.map(String::from)).collect()
    } else if let Some(a) = any.downcast_ref::<BinaryArray>() {
        a.iter().map(|v| v.map(|b| String::from_utf8_lossy(b).into_owned())).collect()
    } else if let Some(a) = any.downcast_ref::<LargeBinaryArray>() {
        a.iter().map(|v| v.map(|b| String::from_utf8_lossy(b).into_owned())).collect()
    } else {
        bail!("column {name:?} holds {}, not text", col.data_type())
    };
    Ok(out)
}

/// A Parquet file written to a temporary name beside `dst` and renamed to `dst` by
/// [`AtomicParquet::finish`]; dropped unfinished, the temporary file is removed and `dst` is
/// untouched.
pub struct AtomicParquet {
    dst: PathBuf,
    tmp: PathBuf,
    w: Option<ArrowWriter<File>>,
}

impl AtomicParquet {
    pub fn create(dst: &Path, schema: SchemaRef) -> Result<AtomicParquet> {
        let name = dst.file_name().and_then(|n| n.to_str()).unwrap_or("out.parquet");
        let tmp = dst.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_size(WRITE_ROW_GROUP)
            .build();
        let w = ArrowWriter::try_new(f, schema, Some(props))?;
        Ok(AtomicParquet { dst: dst.to_path_buf(), tmp, w: Some(w) })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let w = self.w.as_mut().expect("open until finished");
        w.write(batch).with_context(|| format!("cannot write {}", self.tmp.display()))
    }

    pub fn finish(mut self) -> Result<()> {
        let w = self.w.take().expect("open until finished");
        let f = w.into_inner().with_context(|| format!("cannot write {}", self.tmp.display()))?;
        f.sync_all().ok();
        std::fs::rename(&self.tmp, &self.dst)
            .with_context(|| format!("cannot move {} to {}", self.tmp.display(), self.dst.display()))
    }
}

impl Drop for AtomicParquet {
    fn drop(&mut self) {
        if self.w.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A schema with the schema-level metadata (pandas' index description, which no longer fits
/// once columns are added) left out; fields and their types unchanged.
pub fn plain_schema(schema: &SchemaRef) -> SchemaRef {
    Arc::new(arrow_schema::Schema::new(schema.fields().clone()))
}
