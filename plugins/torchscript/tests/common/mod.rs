//! Shared by the TorchScript plugin's tests.

use std::path::Path;

/// Copies the TorchScript archive `src` to `dst` (uncompressed), passing each code file whose
/// name ends with `code_file` through `edit`, and leaving out the `.debug_pkl` files (source
/// ranges of the original code, which edited code no longer matches). Returns whether a file
/// was edited.
pub fn rewrite_archive(src: &Path, dst: &Path, code_file: &str, mut edit: impl FnMut(String) -> String) -> bool {
    use std::io::{Read, Write};
    let mut zin = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut zout = zip::ZipWriter::new(std::fs::File::create(dst).unwrap());
    let opts = zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut edited = false;
    for i in 0..zin.len() {
        let mut entry = zin.by_index(i).unwrap();
        let name = entry.name().to_string();
        if name.ends_with(".debug_pkl") {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if name.ends_with(code_file) {
            bytes = edit(String::from_utf8(bytes).unwrap()).into_bytes();
            edited = true;
        }
        zout.start_file(name, opts).unwrap();
        zout.write_all(&bytes).unwrap();
    }
    zout.finish().unwrap();
    edited
}
