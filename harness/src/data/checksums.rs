//! Pinned image checksums: a `sha256sum`-style file, `<64 hex>  <sample id>` per line.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::util::safeio;

/// Reads a `sha256sum`-style file: `<64 hex>  <id>` (or `<hex> *<id>`) per line.
pub fn read_checksums(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = safeio::read_text_bounded(path, safeio::MAX_TABLE_BYTES)
        .with_context(|| format!("cannot read checksums {}", path.display()))?;
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_end();
        if t.trim().is_empty() || t.starts_with('#') {
            continue;
        }
        let (hex, rest) = t
            .split_once(char::is_whitespace)
            .ok_or_else(|| anyhow!("{}:{}: expected \"<sha256>  <id>\"", path.display(), i + 1))?;
        let id = rest.trim_start().trim_start_matches('*');
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || id.is_empty() {
            bail!("{}:{}: expected \"<sha256>  <id>\"", path.display(), i + 1);
        }
        out.insert(id.to_string(), hex.to_ascii_lowercase());
    }
    Ok(out)
}
