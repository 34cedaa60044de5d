//! Tables (CSV, TSV, Parquet), read one way everywhere: the same cells, the same null rule
//! (empty, `NA`, `NaN`, `nan`, `null`, `None`), the same truth values, bounded reads.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use parquet::schema::types::Type;

use crate::util::safeio;

/// One cell of a table read by [`for_each_row`]. CSV/TSV cells are always `Str`; Parquet keeps
/// its types, so thresholds compare in the column's own precision (a float32 similarity of
/// 0.82 is exactly *at* a 0.82 threshold: it passes `>=`, as it does in pandas, and fails `>`).
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
                "true" | "1" | "1.0" | "yes" | "t" => Some(true),
                "false" | "0" | "0.0" | "no" | "f" => Some(false),
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

    /// Whether the cell is a number `> threshold` (strictly above), compared in the cell's
    /// precision: a float32 cell holding 0.82 is *at* a 0.82 threshold, so it does not pass.
    /// Nulls, NaNs and text that is no number never pass.
    pub fn above(&self, threshold: f64) -> bool {
        match self {
            Cell::F32(f) => *f > threshold as f32,
            Cell::F64(f) => *f > threshold,
            Cell::Int(i) => (*i as f64) > threshold,
            Cell::Str(s) => s.trim().parse::<f64>().is_ok_and(|v| v > threshold),
            _ => false,
        }
    }

    /// [`Cell::at_least`] when `inclusive`, else [`Cell::above`]: one threshold rule.
    pub fn passes(&self, threshold: f64, inclusive: bool) -> bool {
        if inclusive {
            self.at_least(threshold)
        } else {
            self.above(threshold)
        }
    }

    /// The cell as a number (a float32 exactly as stored), or None (null, NaN, not a number).
    pub fn number(&self) -> Option<f64> {
        let v = match self {
            Cell::F32(f) => *f as f64,
            Cell::F64(f) => *f,
            Cell::Int(i) => *i as f64,
            Cell::Str(s) => s.trim().parse::<f64>().ok()?,
            _ => return None,
        };
        (!v.is_nan()).then_some(v)
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
        Ok(read_table_header(path)?)
    }
}

/// Calls `f(line, cells)` for every row of a table with the cells of `wanted` columns in that
/// order (`None` entries in `wanted` yield `Cell::Null`: optional columns the caller does not
/// have). `line` is the 1-based line (CSV/TSV) or row number (Parquet, counting the header as
/// line 1 too, so messages read the same). Parquet is streamed row by row, reading only the
/// wanted columns; a missing column is an error naming the columns there are.
pub fn for_each_row(
    path: &Path,
    wanted: &[Option<&str>],
    mut f: impl FnMut(usize, &[Cell]) -> Result<()>,
) -> Result<()> {
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
        let fields: Vec<_> =
            schema.get_fields().iter().filter(|fd| wanted.iter().flatten().any(|w| *w == fd.name())).cloned().collect();
        // For each projected column (in schema order, as rows hold them), the wanted cells it fills.
        let targets: Vec<(String, Vec<usize>)> = fields
            .iter()
            .map(|fd| (fd.name().to_string(), (0..wanted.len()).filter(|&i| wanted[i] == Some(fd.name())).collect()))
            .collect();
        let proj = Type::group_type_builder(schema.name()).with_fields(fields).build()?;
        let mut line = 1usize;
        for row in r.get_row_iter(Some(proj))? {
            line += 1;
            let row = row.with_context(|| format!("{}: corrupt row {}", path.display(), line - 1))?;
            cells.iter_mut().for_each(|c| *c = Cell::Null);
            for (j, (name, v)) in row.get_column_iter().enumerate() {
                match targets.get(j).filter(|t| &t.0 == name) {
                    Some((_, to)) => to.iter().for_each(|&i| cells[i] = cell_of(v)),
                    None => (0..wanted.len())
                        .filter(|&i| wanted[i] == Some(name.as_str()))
                        .for_each(|i| cells[i] = cell_of(v)),
                }
            }
            f(line, &cells)?;
        }
    } else {
        let (header, rows) = read_table(path)?;
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

fn delimiter_for(path: &Path, header: &str) -> u8 {
    match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()) {
        Some(e) if e == "tsv" || e == "tab" => b'\t',
        Some(e) if e == "csv" => b',',
        _ if header.contains('\t') => b'\t',
        _ => b',',
    }
}

/// The rows of a table read whole: each with its 1-based line number.
pub type Rows = Vec<(usize, Vec<String>)>;

/// Reads a CSV/TSV table into its header and rows (with 1-based line numbers).
pub fn read_table(path: &Path) -> Result<(Vec<String>, Rows)> {
    let text = safeio::read_text_bounded(path, safeio::MAX_TABLE_BYTES)
        .with_context(|| format!("cannot read table {}", path.display()))?;
    let delim = delimiter_for(path, text.lines().next().unwrap_or(""));
    let mut rdr = csv::ReaderBuilder::new().delimiter(delim).flexible(false).from_reader(text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .iter()
        .map(|s| s.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            anyhow!("{}:{line}: {e}", path.display())
        })?;
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
        rows.push((line, rec.iter().map(|s| s.trim().to_string()).collect()));
    }
    Ok((header, rows))
}

/// The index of column `name` in a header row, or an error naming the columns there are.
pub fn column(header: &[String], name: &str, path: &Path) -> Result<usize> {
    header
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| anyhow!("{}: no column {name:?} (columns: {})", path.display(), header.join(", ")))
}

/// Reads just the header row of a CSV/TSV table.
pub fn read_table_header(path: &Path) -> Result<Vec<String>> {
    use std::io::BufRead;
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| format!("cannot read table {}", path.display()))?;
    let mut first = String::new();
    // A header row is short: a file with no newline (or /dev/zero) is not read to its end.
    std::io::BufReader::new(f.take(safeio::MAX_HEADER_BYTES)).read_line(&mut first)?;
    if first.len() as u64 >= safeio::MAX_HEADER_BYTES {
        anyhow::bail!("{}: the header row is larger than {} bytes", path.display(), safeio::MAX_HEADER_BYTES);
    }
    let delim = delimiter_for(path, &first);
    let mut rdr = csv::ReaderBuilder::new().delimiter(delim).from_reader(first.as_bytes());
    Ok(rdr
        .headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .iter()
        .map(|s| s.trim().to_string())
        .collect())
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
        // Strictly above: a cell exactly at the threshold (in its own precision) does not pass.
        assert!(!Cell::F32(0.82).above(0.82) && Cell::F32(0.820_000_05).above(0.82));
        assert!(!Cell::F64(0.82).above(0.82) && Cell::F64(0.820_000_000_1).above(0.82));
        assert!(!Cell::Str("0.82".into()).above(0.82) && !Cell::Null.above(0.0));
        assert!(Cell::F32(0.82).passes(0.82, true) && !Cell::F32(0.82).passes(0.82, false));
        assert_eq!(Cell::F32(0.5).number(), Some(0.5));
        assert_eq!((Cell::F64(f64::NAN).number(), Cell::Str("x".into()).number()), (None, None));
        assert_eq!(Cell::F64(12345.0).text().as_deref(), Some("12345"));
        assert_eq!(Cell::Str(" NA ".into()).text(), None);
        assert_eq!(Cell::Str("True".into()).truth(), Some(true));
        assert_eq!(Cell::Null.truth(), None);
    }
}
