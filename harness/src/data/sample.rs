//! One sample and where its image is: a file, a member of a tar archive (offset and length, read
//! on demand, never unpacked), or absent (a row whose image was never downloaded), which the
//! pipeline counts as missing.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One sample: a stable id (its path relative to the source root, or its table key), its label
/// and where its image is. `wnid` may be invalid (a table row with a bad label): such a sample is
/// counted as failed, never dropped; an absent image is counted as missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub id: String,
    pub wnid: String,
    pub image: ImageRef,
}

impl Sample {
    /// A sample whose image is a file.
    pub fn file(id: impl Into<String>, path: PathBuf, wnid: impl Into<String>) -> Sample {
        Sample { id: id.into(), wnid: wnid.into(), image: ImageRef::File(path) }
    }
}

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
                        return Err(ReadError::Failed(format!(
                            "{} is {} bytes, over the {MAX_IMAGE_BYTES}-byte limit",
                            p.display(),
                            m.len()
                        )))
                    }
                    _ => {}
                }
                crate::util::safeio::read_bounded(p, MAX_IMAGE_BYTES).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => ReadError::Missing(format!("{} does not exist", p.display())),
                    _ => ReadError::Failed(format!("cannot read {}: {e}", p.display())),
                })
            }
            ImageRef::Member { archive, name, offset, len } => {
                if *len > MAX_IMAGE_BYTES {
                    return Err(ReadError::Failed(format!(
                        "{}:{name} is {len} bytes, over the limit",
                        archive.display()
                    )));
                }
                let mut f = File::open(archive.as_path()).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => {
                        ReadError::Missing(format!("archive {} does not exist", archive.display()))
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
