//! sha256 in the three shapes shiftbench records: of bytes, of a file (streamed), and of a list
//! of lines (a label list, a suite's samples), so that a result and a predictions log name what
//! they were made from the same way; and the cheap [`fingerprint`] of an image's bytes that a
//! record keeps.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// A cheap fingerprint of an image's bytes, `<length>:<xxh3-64 hex>`: taken on the bytes a
/// sample was scored on, and again when a run resumes, so that a resumed log never keeps the
/// predictions of an image that was replaced under the same name. xxh3 hashes at memory speed
/// (it is not a cryptographic digest: it guards against accidents, not against an adversary).
pub fn fingerprint(bytes: &[u8]) -> String {
    format!("{}:{:016x}", bytes.len(), twox_hash::XxHash3_64::oneshot(bytes))
}

/// A file's [`fingerprint`] over its whole content, read in 1 MiB pieces: `<length>:<xxh3-64
/// hex>`. Cheap enough to take on every input of a build each time (xxh3 runs at memory speed).
pub fn file_fingerprint(path: &Path) -> std::io::Result<String> {
    use std::hash::Hasher;
    let mut f = std::fs::File::open(path)?;
    let mut h = twox_hash::XxHash3_64::with_seed(0);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.write(&buf[..n]);
    }
    Ok(format!("{total}:{:016x}", h.finish()))
}

/// `(size, hex sha256)` of a file, read in 1 MiB pieces (fine for model files of gigabytes).
pub fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((total, format!("{:x}", h.finalize())))
}

/// sha256 over `lines`, each followed by `\n`: the `labels_digest` of a predictions log and of
/// a result's model card.
pub fn lines_digest<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for l in lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    format!("{:x}", h.finalize())
}

/// sha256 over `(a, b)` pairs, each part followed by a NUL byte: a suite's content digest over
/// its sorted `(sample id, wnid)` list.
pub fn pairs_digest<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut h = Sha256::new();
    for (a, b) in pairs {
        h.update(a.as_bytes());
        h.update([0]);
        h.update(b.as_bytes());
        h.update([0]);
    }
    format!("{:x}", h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_of_known_inputs() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        // "a\nb\n"
        assert_eq!(lines_digest(["a", "b"]), sha256_hex(b"a\nb\n"));
        assert_eq!(pairs_digest([("x", "n1"), ("y", "n2")]), sha256_hex(b"x\0n1\0y\0n2\0"));
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(sha256_file(&p).unwrap(), (3, sha256_hex(b"abc")));
    }
}
