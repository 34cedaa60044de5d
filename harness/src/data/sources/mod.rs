//! Where a suite's images and labels come from, in the layouts people actually have:
//!
//! - [`devkit`]: a flat `ILSVRC2012_img_val` folder labelled by the devkit's
//!   `ILSVRC2012_validation_ground_truth.txt` and `meta.mat` (read by [`matfile`]) or an
//!   `id -> wnid` table;
//! - [`laionet`]: LAIONet as the paper distributes it (a Parquet of LAION rows), filtered as the
//!   paper filters it and joined with the images img2dataset fetched ([`webdataset`]: `.tar`
//!   shards read in place, or plain folders);
//! - the simpler layouts (ImageFolder, a flat folder named by wnid, a label table such as
//!   Kaggle's `LOC_val_solution.csv`) live in [`crate::suite`].
//!
//! A sample's image is an [`ImageRef`]: a file, a member of a tar archive (offset and length,
//! read on demand, never unpacked), or absent (a row whose image was never downloaded), which
//! the pipeline counts as missing.

pub mod devkit;
pub mod laionet;
pub mod matfile;
pub mod webdataset;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use parquet::schema::types::Type;

/// The largest image file read (anything bigger is refused, not allocated).
pub const MAX_IMAGE_BYTES: u64 = 1 << 30;

/// Where a sample's image bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A file on disk.
    File(PathBuf),
    /// A member of an uncompressed tar archive: its data starts at `offset` and is `len` bytes.
    Member { archive: Arc<PathBuf>, name: String, offset: u64, len: u64 },
    /// No image exists for this sample (the reason says why).
    Absent(String),
}

/// Why an image could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The image does not exist: counted as missing.
    Missing(String),
    /// It exists but cannot be read: counted as failed.
    Failed(String),
}

impl ImageRef {
    /// Reads the image's bytes.
    pub fn read(&self) -> Result<Vec<u8>, ReadError> {
        match self {
            ImageRef::File(p) => {
                match std::fs::metadata(p) {
                    Ok(m) if m.len() > MAX_IMAGE_BYTES => {
                        return Err(ReadError::Failed(format!("{} is {} bytes, over the {MAX_IMAGE_BYTES}-byte limit", p.display(), m.len())))
                    }
                    _ => {}
                }
                crate::safeio::read_bounded(p, MAX_IMAGE_BYTES).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => ReadError::Missing(format!("{} does not exist", p.display())),
                    _ => ReadError::Failed(format!("cannot read {}: {e}", p.display())),
                })
            }
            ImageRef::Member { archive, name, offset, len } => {
                if *len > MAX_IMAGE_BYTES {
                    return Err(ReadError::Failed(format!("{}:{name} is {len} bytes, over the limit", archive.display())));
                }
                let mut f = File::open(archive.as_path()).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => ReadError::Missing(format!("archive {} does not exist", archive.display())),
                    _ => ReadError::Failed(format!("cannot open {}: {e}", archive.display())),
                })?;
                let mut buf = vec![0u8; *len as usize];
                f.seek(SeekFrom::Start(*offset))
                    .and_then(|_| f.read_exact(&mut buf))
                    .map_err(|e| ReadError::Failed(format!("cannot read {name} from {}: {e}", archive.display())))?;
                Ok(buf)
            }
            ImageRef::Absent(why) => Err(ReadError::Missing(why.clone())),
        }
    }

    /// The file, for messages and for sources that are plain files.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ImageRef::File(p) => Some(p),
            ImageRef::Member { archive, .. } => Some(archive.as_path()),
            ImageRef::Absent(_) => None,
        }
    }

    /// `path`, `archive.tar:member` or `(absent)`.
    pub fn describe(&self) -> String {
        match self {
            ImageRef::File(p) => p.display().to_string(),
            ImageRef::Member { archive, name, .. } => format!("{}:{name}", archive.display()),
            ImageRef::Absent(why) => format!("(absent: {why})"),
        }
    }
}

/// One cell of a table read by [`for_each_row`]. CSV/TSV cells are always `Str`; Parquet keeps
/// its types, so thresholds compare in the column's own precision (a float32 similarity of
/// 0.82 passes a 0.82 threshold, as it does in pandas).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    F32(f32),
    F64(f64),
    Str(String),
}

impl Cell {
    /// The cell as text (None for null). Integral floats print without a fraction, so ids
    /// stored as float64 by pandas read as integers.
    pub fn text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Bool(b) => Some(if *b { "true" } else { "false" }.into()),
            Cell::Int(i) => Some(i.to_string()),
            Cell::F32(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{}", *f as i64)),
            Cell::F64(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{}", *f as i64)),
            Cell::F32(f) => Some(f.to_string()),
            Cell::F64(f) => Some(f.to_string()),
            Cell::Str(s) => {
                let t = s.trim();
                (!t.is_empty() && !matches!(t, "NA" | "NaN" | "nan" | "null" | "None")).then(|| t.to_string())
            }
        }
    }

    /// True / false / unknown (null or unreadable).
    pub fn truth(&self) -> Option<bool> {
        match self {
            Cell::Bool(b) => Some(*b),
            Cell::Int(i) => Some(*i != 0),
            Cell::F32(f) if !f.is_nan() => Some(*f != 0.0),
            Cell::F64(f) if !f.is_nan() => Some(*f != 0.0),
            Cell::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "t" => Some(true),
                "false" | "0" | "no" | "f" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether the cell is a number `>= threshold`, compared in the cell's precision; nulls,
    /// NaNs and text that is no number never pass.
    pub fn at_least(&self, threshold: f64) -> bool {
        match self {
            Cell::F32(f) => *f >= threshold as f32,
            Cell::F64(f) => *f >= threshold,
            Cell::Int(i) => (*i as f64) >= threshold,
            Cell::Str(s) => s.trim().parse::<f64>().is_ok_and(|v| v >= threshold),
            _ => false,
        }
    }
}

fn cell_of(f: &Field) -> Cell {
    match f {
        Field::Null => Cell::Null,
        Field::Bool(b) => Cell::Bool(*b),
        Field::Byte(v) => Cell::Int(*v as i64),
        Field::Short(v) => Cell::Int(*v as i64),
        Field::Int(v) => Cell::Int(*v as i64),
        Field::Long(v) => Cell::Int(*v),
        Field::UByte(v) => Cell::Int(*v as i64),
        Field::UShort(v) => Cell::Int(*v as i64),
        Field::UInt(v) => Cell::Int(*v as i64),
        Field::ULong(v) => Cell::Int(*v as i64),
        Field::Float(v) => Cell::F32(*v),
        Field::Double(v) => Cell::F64(*v),
        Field::Str(s) => Cell::Str(s.clone()),
        Field::Bytes(b) => Cell::Str(String::from_utf8_lossy(b.data()).into_owned()),
        other => Cell::Str(other.to_string()),
    }
}

/// Whether a path names a Parquet file (by extension).
pub fn is_parquet(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// The tables a path names: the file itself, or every `.parquet` / `.csv` / `.tsv` file in a
/// folder (sorted), so a dataset split into parts reads as one table.
pub fn table_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        let e = e.to_ascii_lowercase();
                        e == "parquet" || e == "csv" || e == "tsv"
                    })
            })
            .collect();
        v.sort();
        if v.is_empty() {
            bail!("{} holds no .parquet, .csv or .tsv table", path.display());
        }
        Ok(v)
    } else if path.is_file() {
        Ok(vec![path.to_path_buf()])
    } else {
        bail!("table {} does not exist", path.display())
    }
}

/// The column names of a table (CSV, TSV or Parquet).
pub fn column_names(path: &Path) -> Result<Vec<String>> {
    if is_parquet(path) {
        let r = SerializedFileReader::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
            .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
        Ok(r.metadata().file_metadata().schema().get_fields().iter().map(|f| f.name().to_string()).collect())
    } else {
        Ok(crate::suite::read_table_header(path)?)
    }
}

/// Calls `f(line, cells)` for every row of a table with the cells of `wanted` columns in that
/// order (`None` entries in `wanted` yield `Cell::Null`: optional columns the caller does not
/// have). `line` is the 1-based line (CSV/TSV) or row number (Parquet, counting the header as
/// line 1 too, so messages read the same). Parquet is streamed row by row, reading only the
/// wanted columns; a missing column is an error naming the columns there are.
pub fn for_each_row(path: &Path, wanted: &[Option<&str>], mut f: impl FnMut(usize, &[Cell]) -> Result<()>) -> Result<()> {
    let names = column_names(path)?;
    for w in wanted.iter().flatten() {
        if !names.iter().any(|n| n == w) {
            bail!("{}: no column {w:?} (columns: {})", path.display(), names.join(", "));
        }
    }
    let mut cells = vec![Cell::Null; wanted.len()];
    if is_parquet(path) {
        let r = SerializedFileReader::new(File::open(path)?)?;
        let schema = r.metadata().file_metadata().schema();
        let fields: Vec<_> = schema.get_fields().iter().filter(|fd| wanted.iter().flatten().any(|w| *w == fd.name())).cloned().collect();
        let proj = Type::group_type_builder(schema.name()).with_fields(fields).build()?;
        let mut line = 1usize;
        for row in r.get_row_iter(Some(proj))? {
            line += 1;
            let row = row.with_context(|| format!("{}: corrupt row {}", path.display(), line - 1))?;
            cells.iter_mut().for_each(|c| *c = Cell::Null);
            for (name, v) in row.get_column_iter() {
                for (i, w) in wanted.iter().enumerate() {
                    if *w == Some(name.as_str()) {
                        cells[i] = cell_of(v);
                    }
                }
            }
            f(line, &cells)?;
        }
    } else {
        let (header, rows) = crate::suite::read_table(path)?;
        let idx: Vec<Option<usize>> =
            wanted.iter().map(|w| w.map(|w| header.iter().position(|h| h == w).expect("checked"))).collect();
        for (line, row) in rows {
            for (c, i) in cells.iter_mut().zip(&idx) {
                *c = match i {
                    Some(i) => Cell::Str(row.get(*i).cloned().unwrap_or_default()),
                    None => Cell::Null,
                };
            }
            f(line, &cells)?;
        }
    }
    Ok(())
}

/// Reads a two-column mapping (key column -> value column) from a table.
pub fn read_map(path: &Path, key: &str, value: &str) -> Result<Vec<(usize, String, String)>> {
    let mut out = Vec::new();
    for_each_row(path, &[Some(key), Some(value)], |line, c| {
        let k = c[0].text().ok_or_else(|| anyhow!("{}:{line}: empty {key}", path.display()))?;
        let v = c[1].text().unwrap_or_default();
        out.push((line, k, v));
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_compare_in_their_own_precision() {
        assert!(Cell::F32(0.82).at_least(0.82));
        assert!(!Cell::F64(0.82f32 as f64).at_least(0.82)); // 0.8199999928 < 0.82
        assert!(Cell::F64(0.82).at_least(0.82));
        assert!(!Cell::F64(f64::NAN).at_least(0.0));
        assert!(!Cell::Null.at_least(0.0));
        assert!(Cell::Str("0.9".into()).at_least(0.82));
        assert_eq!(Cell::F64(12345.0).text().as_deref(), Some("12345"));
        assert_eq!(Cell::Str(" NA ".into()).text(), None);
        assert_eq!(Cell::Str("True".into()).truth(), Some(true));
        assert_eq!(Cell::Null.truth(), None);
    }

    #[test]
    fn member_reads_exactly_its_bytes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.bin");
        std::fs::write(&p, b"0123456789").unwrap();
        let m = ImageRef::Member { archive: Arc::new(p.clone()), name: "x".into(), offset: 3, len: 4 };
        assert_eq!(m.read().unwrap(), b"3456");
        let m = ImageRef::Member { archive: Arc::new(p), name: "x".into(), offset: 8, len: 4 };
        assert!(matches!(m.read(), Err(ReadError::Failed(_))));
        assert!(matches!(ImageRef::File(d.path().join("nope")).read(), Err(ReadError::Missing(_))));
        assert!(matches!(ImageRef::Absent("never downloaded".into()).read(), Err(ReadError::Missing(_))));
    }
}
