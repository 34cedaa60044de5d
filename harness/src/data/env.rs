//! Paths in YAML files: relative to the file, with `${VAR}` and `${VAR:-default}` expanded from
//! the environment.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

/// Expands `${VAR}` and `${VAR:-default}`.
pub fn expand_env(s: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}').ok_or_else(|| anyhow!("unclosed ${{ in {s:?}"))?;
        let inner = &after[..end];
        let (var, default) = match inner.split_once(":-") {
            Some((v, d)) => (v, Some(d)),
            None => (inner, None),
        };
        match (std::env::var(var), default) {
            (Ok(v), _) if !v.is_empty() => out.push_str(&v),
            (_, Some(d)) => out.push_str(d),
            _ => bail!("environment variable {var} is not set (used in {s:?})"),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `p` (environment expanded) relative to the folder `base` of the file that names it.
pub fn resolve(base: &Path, p: &str) -> Result<PathBuf> {
    Ok(base.join(expand_env(p)?))
}
