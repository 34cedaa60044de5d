//! A small, careful reader for MATLAB level-5 MAT-files (what MATLAB writes by default up to
//! format v7, compressed or not): enough to read the ImageNet devkit's `meta.mat`, whose
//! `synsets` variable is a struct array with fields `ILSVRC2012_ID` (double), `WNID` (char),
//! `words`, `gloss`, `num_children`, `children`, `wordnet_height`, `num_train_images`.
//!
//! The `matfile` crate reads numeric arrays only, so this reads the parts of the format a struct
//! array needs: numeric, char, logical, cell and struct arrays, small data elements, both byte
//! orders and zlib-compressed (`miCOMPRESSED`) elements. Every length is checked against what is
//! left of the buffer before anything is allocated; sparse and object arrays are skipped.
//! MAT v7.3 files are HDF5 and are refused with a sentence saying so.

use std::io::Read;

/// A decoded array.
#[derive(Debug, Clone, PartialEq)]
pub enum MatValue {
    /// A numeric or logical array (column-major), converted to f64.
    Num {
        dims: Vec<usize>,
        data: Vec<f64>,
    },
    /// A char array, as a string (a 2-D char array's columns are read in column-major order,
    /// so only 1xN / Nx1 strings read naturally; those are all a devkit file holds).
    Char(String),
    /// A struct array: field names and, per element (column-major), one value per field.
    Struct {
        dims: Vec<usize>,
        fields: Vec<String>,
        elems: Vec<Vec<MatValue>>,
    },
    Cell {
        dims: Vec<usize>,
        elems: Vec<MatValue>,
    },
    /// Something this reader does not decode (sparse, object, function handle...).
    Unsupported(u8),
    /// An empty element (`[]`).
    Empty,
}

impl MatValue {
    /// A scalar number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            MatValue::Num { data, .. } if data.len() == 1 => Some(data[0]),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MatValue::Char(s) => Some(s),
            _ => None,
        }
    }

    /// The value of field `name` in struct element `i`.
    pub fn field(&self, i: usize, name: &str) -> Option<&MatValue> {
        match self {
            MatValue::Struct { fields, elems, .. } => {
                let f = fields.iter().position(|n| n == name)?;
                elems.get(i)?.get(f)
            }
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            MatValue::Struct { elems, .. } => elems.len(),
            MatValue::Cell { elems, .. } => elems.len(),
            MatValue::Num { data, .. } => data.len(),
            MatValue::Char(s) => s.chars().count(),
            _ => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// Data types (the `mi*` constants of the format).
const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;
const MI_UTF16: u32 = 17;
const MI_UTF32: u32 = 18;

// Array classes (the `mx*_CLASS` constants).
const MX_CELL: u8 = 1;
const MX_STRUCT: u8 = 2;
const MX_CHAR: u8 = 4;

/// The most a compressed element may inflate to (a devkit meta.mat holds a few MB).
const MAX_INFLATED: u64 = 1 << 30;
/// Nesting depth limit (struct in cell in struct...).
const MAX_DEPTH: usize = 32;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.left() {
            return Err(format!(
                "element of {n} bytes runs past the end of its container ({} bytes left)",
                self.left()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b: [u8; 4] = self.take(4)?.try_into().expect("4 bytes");
        Ok(if self.big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    }
}

/// One data element: its type and its bytes.
struct Element<'a> {
    ty: u32,
    data: &'a [u8],
}

fn read_element<'a>(c: &mut Cursor<'a>) -> Result<Element<'a>, String> {
    let first = c.u32()?;
    // Small data element: the byte count sits in the upper 16 bits (in either byte order, once
    // read as a u32 in the file's order), the data in the next 4 bytes.
    let small_n = first >> 16;
    if small_n != 0 {
        let ty = first & 0xFFFF;
        if small_n > 4 {
            return Err(format!("small data element claims {small_n} bytes (at most 4 fit)"));
        }
        let data = c.take(4)?;
        return Ok(Element { ty, data: &data[..small_n as usize] });
    }
    let ty = first;
    let n = c.u32()? as usize;
    let data = c.take(n)?;
    if ty != MI_COMPRESSED {
        // Elements are padded to 8 bytes (compressed ones are not).
        let pad = (8 - n % 8) % 8;
        let pad = pad.min(c.left());
        c.take(pad)?;
    }
    Ok(Element { ty, data })
}

fn numbers(e: &Element, big: bool) -> Result<Vec<f64>, String> {
    let d = e.data;
    macro_rules! conv {
        ($t:ty, $n:expr) => {{
            if d.len() % $n != 0 {
                return Err(format!("numeric data of {} bytes is not a whole number of {}-byte values", d.len(), $n));
            }
            d.chunks_exact($n)
                .map(|ch| {
                    let b = ch.try_into().expect("chunk");
                    (if big { <$t>::from_be_bytes(b) } else { <$t>::from_le_bytes(b) }) as f64
                })
                .collect()
        }};
    }
    Ok(match e.ty {
        MI_INT8 => d.iter().map(|&b| b as i8 as f64).collect(),
        MI_UINT8 | MI_UTF8 => d.iter().map(|&b| b as f64).collect(),
        MI_INT16 => conv!(i16, 2),
        MI_UINT16 | MI_UTF16 => conv!(u16, 2),
        MI_INT32 => conv!(i32, 4),
        MI_UINT32 | MI_UTF32 => conv!(u32, 4),
        MI_SINGLE => conv!(f32, 4),
        MI_DOUBLE => conv!(f64, 8),
        MI_INT64 => conv!(i64, 8),
        MI_UINT64 => conv!(u64, 8),
        t => return Err(format!("data type {t} is not numeric")),
    })
}

fn text(e: &Element, big: bool) -> Result<String, String> {
    match e.ty {
        MI_UTF8 | MI_UINT8 | MI_INT8 => Ok(String::from_utf8_lossy(e.data).into_owned()),
        MI_UINT16 | MI_UTF16 => {
            let units: Vec<u16> = numbers(e, big)?.into_iter().map(|v| v as u16).collect();
            Ok(String::from_utf16_lossy(&units))
        }
        MI_UTF32 | MI_UINT32 | MI_INT32 => {
            Ok(numbers(e, big)?.into_iter().filter_map(|v| char::from_u32(v as u32)).collect())
        }
        t => Err(format!("char data of type {t}")),
    }
}

fn inflate(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("corrupt compressed element: {e}"))?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(format!("a compressed element inflates to over {MAX_INFLATED} bytes"));
    }
    Ok(out)
}

/// Decodes the contents of a miMATRIX element. Returns its name and value.
fn matrix(data: &[u8], big: bool, depth: usize) -> Result<(String, MatValue), String> {
    if depth > MAX_DEPTH {
        return Err("arrays nested too deeply".into());
    }
    if data.is_empty() {
        return Ok((String::new(), MatValue::Empty));
    }
    let mut c = Cursor { buf: data, pos: 0, big };
    let flags = read_element(&mut c)?;
    if flags.ty != MI_UINT32 || flags.data.len() < 8 {
        return Err("array flags missing".into());
    }
    let f0 = numbers(&Element { ty: MI_UINT32, data: &flags.data[..4] }, big)?[0] as u32;
    let class = (f0 & 0xFF) as u8;
    let dims_el = read_element(&mut c)?;
    let dims: Vec<usize> = numbers(&dims_el, big)?.into_iter().map(|v| v.max(0.0) as usize).collect();
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("array dimensions overflow")?;
    let name_el = read_element(&mut c)?;
    let name = String::from_utf8_lossy(name_el.data).trim_end_matches('\0').to_string();
    let value = match class {
        MX_CHAR => {
            if c.left() == 0 {
                MatValue::Char(String::new())
            } else {
                MatValue::Char(text(&read_element(&mut c)?, big)?)
            }
        }
        MX_STRUCT => {
            let len_el = read_element(&mut c)?;
            let flen = *numbers(&len_el, big)?.first().ok_or("struct field-name length missing")? as usize;
            let names_el = read_element(&mut c)?;
            if flen == 0 {
                return Err("struct field-name length is 0".into());
            }
            let fields: Vec<String> = names_el
                .data
                .chunks(flen)
                .map(|ch| String::from_utf8_lossy(ch).trim_end_matches('\0').to_string())
                .collect();
            // Each element needs at least one 8-byte tag per field: check before allocating.
            if count.saturating_mul(fields.len()).saturating_mul(8) > c.left() {
                return Err(format!(
                    "struct array of {count} elements x {} fields does not fit its data",
                    fields.len()
                ));
            }
            let mut elems = Vec::with_capacity(count);
            for _ in 0..count {
                let mut vals = Vec::with_capacity(fields.len());
                for _ in &fields {
                    let e = read_element(&mut c)?;
                    vals.push(value_of(&e, big, depth + 1)?.1);
                }
                elems.push(vals);
            }
            MatValue::Struct { dims, fields, elems }
        }
        MX_CELL => {
            if count.saturating_mul(8) > c.left() {
                return Err(format!("cell array of {count} elements does not fit its data"));
            }
            let mut elems = Vec::with_capacity(count);
            for _ in 0..count {
                let e = read_element(&mut c)?;
                elems.push(value_of(&e, big, depth + 1)?.1);
            }
            MatValue::Cell { dims, elems }
        }
        6..=15 => {
            // Numeric (double .. uint64): real part (stored in any numeric type); the
            // imaginary part, if any, is ignored.
            if c.left() == 0 {
                MatValue::Num { dims, data: vec![] }
            } else {
                let re = read_element(&mut c)?;
                MatValue::Num { dims, data: numbers(&re, big)? }
            }
        }
        other => MatValue::Unsupported(other),
    };
    Ok((name, value))
}

fn value_of(e: &Element, big: bool, depth: usize) -> Result<(String, MatValue), String> {
    match e.ty {
        MI_MATRIX => matrix(e.data, big, depth),
        MI_COMPRESSED => {
            let inner = inflate(e.data)?;
            let mut c = Cursor { buf: &inner, pos: 0, big };
            let el = read_element(&mut c)?;
            value_of(&el, big, depth + 1)
        }
        t => Err(format!("unexpected element of type {t} where an array should be")),
    }
}

/// Reads every top-level variable of a MAT-file: (name, value) in file order.
pub fn read_mat(bytes: &[u8]) -> Result<Vec<(String, MatValue)>, String> {
    if bytes.len() < 128 {
        return Err("too short for a MAT-file (no 128-byte header)".into());
    }
    let head = String::from_utf8_lossy(&bytes[..116]);
    if bytes.starts_with(b"\x89HDF") || head.contains("MATLAB 7.3") {
        return Err(
            "a MATLAB v7.3 (HDF5) MAT-file: save it with `save -v7` (or give an id -> wnid table instead)".into()
        );
    }
    if !head.starts_with("MATLAB") {
        return Err("not a MAT-file (its header does not start with \"MATLAB\")".into());
    }
    let big = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        other => return Err(format!("unknown byte-order mark {other:?} in the MAT-file header")),
    };
    let mut c = Cursor { buf: bytes, pos: 128, big };
    let mut out = Vec::new();
    while c.left() >= 8 {
        let e = read_element(&mut c)?;
        match e.ty {
            MI_MATRIX | MI_COMPRESSED => out.push(value_of(&e, big, 0)?),
            _ => {} // anything else at top level (subsystem data...) is skipped
        }
    }
    Ok(out)
}

/// The `ILSVRC2012_ID -> WNID` map of a devkit `meta.mat` (variable `synsets`).
pub fn devkit_synsets(bytes: &[u8]) -> Result<Vec<(u32, String)>, String> {
    let vars = read_mat(bytes)?;
    let (_, synsets) = vars.iter().find(|(n, _)| n == "synsets").ok_or_else(|| {
        format!(
            "no variable `synsets` (variables: {})",
            vars.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
        )
    })?;
    let MatValue::Struct { fields, elems, .. } = synsets else {
        return Err("`synsets` is not a struct array".into());
    };
    for f in ["ILSVRC2012_ID", "WNID"] {
        if !fields.iter().any(|n| n == f) {
            return Err(format!("`synsets` has no field {f} (fields: {})", fields.join(", ")));
        }
    }
    let mut out = Vec::with_capacity(elems.len());
    for i in 0..elems.len() {
        let id = synsets.field(i, "ILSVRC2012_ID").and_then(MatValue::as_f64);
        let wnid = synsets.field(i, "WNID").and_then(MatValue::as_str);
        match (id, wnid) {
            (Some(id), Some(w)) if id >= 0.0 && id.fract() == 0.0 => out.push((id as u32, w.trim().to_string())),
            _ => return Err(format!("synsets({}) has no numeric ILSVRC2012_ID and char WNID", i + 1)),
        }
    }
    Ok(out)
}

/// Writes a level-5 MAT-file holding one struct array named `synsets` with numeric field
/// `ILSVRC2012_ID` and char field `WNID` (and a char `words`), as the devkit's meta.mat has;
/// used by tests and by anyone who needs a stand-in meta.mat. `compress` wraps the variable in
/// a zlib-compressed element, as MATLAB does by default.
pub fn write_synsets_mat(entries: &[(u32, &str, &str)], compress: bool) -> Vec<u8> {
    fn el(ty: u32, data: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out.resize(out.len() + (8 - data.len() % 8) % 8, 0);
    }
    fn header(class: u8, dims: &[u32], name: &str, out: &mut Vec<u8>) {
        let mut flags = Vec::new();
        flags.extend_from_slice(&(class as u32).to_le_bytes());
        flags.extend_from_slice(&0u32.to_le_bytes());
        el(MI_UINT32, &flags, out);
        let d: Vec<u8> = dims.iter().flat_map(|v| (*v as i32).to_le_bytes()).collect();
        el(MI_INT32, &d, out);
        el(MI_INT8, name.as_bytes(), out);
    }
    fn matrix_el(body: Vec<u8>, out: &mut Vec<u8>) {
        el(MI_MATRIX, &body, out);
    }
    fn double(v: f64) -> Vec<u8> {
        let mut b = Vec::new();
        header(6, &[1, 1], "", &mut b);
        el(MI_DOUBLE, &v.to_le_bytes(), &mut b);
        b
    }
    fn chars(s: &str) -> Vec<u8> {
        let mut b = Vec::new();
        let units: Vec<u16> = s.encode_utf16().collect();
        header(MX_CHAR, &[1, units.len() as u32], "", &mut b);
        let d: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
        el(MI_UINT16, &d, &mut b);
        b
    }
    let fields = ["ILSVRC2012_ID", "WNID", "words"];
    let flen = 32usize;
    let mut body = Vec::new();
    header(MX_STRUCT, &[entries.len() as u32, 1], "synsets", &mut body);
    el(MI_INT32, &(flen as i32).to_le_bytes(), &mut body);
    let mut names = vec![0u8; flen * fields.len()];
    for (i, f) in fields.iter().enumerate() {
        names[i * flen..i * flen + f.len()].copy_from_slice(f.as_bytes());
    }
    el(MI_INT8, &names, &mut body);
    for (id, wnid, words) in entries {
        matrix_el(double(*id as f64), &mut body);
        matrix_el(chars(wnid), &mut body);
        matrix_el(chars(words), &mut body);
    }
    let mut var = Vec::new();
    matrix_el(body, &mut var);
    let mut out = Vec::new();
    let mut text = b"MATLAB 5.0 MAT-file, written by shiftbench".to_vec();
    text.resize(116, b' ');
    out.extend_from_slice(&text);
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&0x0100u16.to_le_bytes());
    out.extend_from_slice(b"IM");
    if compress {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&var).expect("in memory");
        let z = z.finish().expect("in memory");
        out.extend_from_slice(&MI_COMPRESSED.to_le_bytes());
        out.extend_from_slice(&(z.len() as u32).to_le_bytes());
        out.extend_from_slice(&z);
    } else {
        out.extend_from_slice(&var);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_plain_and_compressed() {
        let entries = [
            (1, "n02119789", "kit fox, Vulpes macrotis"),
            (2, "n02100735", "English setter"),
            (1001, "n00001740", "entity"),
        ];
        for compress in [false, true] {
            let bytes = write_synsets_mat(&entries, compress);
            let s = devkit_synsets(&bytes).unwrap();
            assert_eq!(s, vec![(1, "n02119789".into()), (2, "n02100735".into()), (1001, "n00001740".into())]);
            let vars = read_mat(&bytes).unwrap();
            assert_eq!(vars[0].1.field(0, "words").and_then(MatValue::as_str), Some("kit fox, Vulpes macrotis"));
        }
    }

    #[test]
    fn scipy_written_file() {
        // Written by scipy.io.savemat (see tests/fixtures/README.md): a 3-element `synsets`
        // struct array shaped like the devkit's, compressed, with an empty `children` field.
        let files: [&[u8]; 2] = [
            include_bytes!("../../../../tests/fixtures/meta_synsets_scipy.mat"),
            include_bytes!("../../../../tests/fixtures/meta_synsets_scipy_uncompressed.mat"),
        ];
        for bytes in files {
            let s = devkit_synsets(bytes).unwrap();
            assert_eq!(s, vec![(1, "n02119789".into()), (2, "n02100735".into()), (1001, "n00001740".into())]);
            let vars = read_mat(bytes).unwrap();
            let syn = &vars.iter().find(|(n, _)| n == "synsets").unwrap().1;
            assert_eq!(syn.field(0, "num_children").and_then(MatValue::as_f64), Some(0.0));
            assert_eq!(syn.field(0, "children").map(MatValue::len), Some(0));
            assert_eq!(syn.field(2, "children").map(MatValue::len), Some(2));
            assert_eq!(syn.field(1, "gloss").and_then(MatValue::as_str), Some("an English breed having a plumed tail"));
        }
    }

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        assert!(read_mat(b"short").is_err());
        let mut bytes = write_synsets_mat(&[(1, "n02119789", "x")], false);
        assert!(read_mat(&bytes[..bytes.len() - 20]).is_err());
        // A lying element length.
        bytes[132..136].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_mat(&bytes).is_err());
        let mut h = vec![b' '; 128];
        h[..19].copy_from_slice(b"MATLAB 7.3 MAT-file");
        assert!(read_mat(&h).unwrap_err().contains("v7.3"));
        // Every truncation of a valid file is an error or a shorter read, never a panic.
        let good = write_synsets_mat(&[(1, "n02119789", "x"), (2, "n02100735", "y")], true);
        for n in 0..good.len() {
            let _ = read_mat(&good[..n]);
        }
    }
}
