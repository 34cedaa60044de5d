//! Reading files named by users without trusting them: a size cap on every read, so a suite
//! that names `/dev/zero` or a 50 GB file as an image, a table or a class list gets a clear error
//! instead of exhausting memory.

use std::io::Read;
use std::path::Path;

/// Largest suite YAML, model YAML or class list read (a devkit's ground truth, one class id per
/// image, included: ImageNet val's is 195 kB).
pub const MAX_YAML_BYTES: u64 = 16 << 20;
/// Largest CSV/TSV table read whole (LAIONet's label table is ~100 MB).
pub const MAX_TABLE_BYTES: u64 = 4 << 30;

/// Largest MAT-file read (the devkit's `meta.mat` is a few MB).
pub const MAX_MAT_BYTES: u64 = 64 << 20;

/// Largest header row of a table read on its own.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

/// Reads at most `max` bytes of `path`; a longer file (or an endless one) is an error saying so.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let hint = f.metadata().map(|m| m.len()).unwrap_or(0);
    if hint > max {
        return Err(too_big(max));
    }
    let mut buf = Vec::with_capacity(hint as usize);
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(too_big(max));
    }
    Ok(buf)
}

/// [`read_bounded`] for UTF-8 text.
pub fn read_text_bounded(path: &Path, max: u64) -> std::io::Result<String> {
    String::from_utf8(read_bounded(path, max)?).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

fn too_big(max: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "the file is larger than {}, the most shiftbench reads for it",
            if max >= 1 << 20 { format!("{} MiB", max >> 20) } else { format!("{max} bytes") }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_and_large_files_are_refused() {
        let e = read_bounded(Path::new("/dev/zero"), 1000).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, vec![b'a'; 3 << 20]).unwrap();
        assert!(read_bounded(&p, 2 << 20).is_err());
        assert_eq!(read_bounded(&p, 3 << 20).unwrap().len(), 3 << 20);
        std::fs::write(&p, b"\xff\xfe").unwrap();
        assert!(read_text_bounded(&p, 10).unwrap_err().to_string().contains("not UTF-8"));
    }
}
