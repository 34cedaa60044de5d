//! `shiftbench verify`: checks a suite's images against the sha256 checksums it pins (a
//! `checksums:` file in `sha256sum` format keyed by sample id, or a `checksum_column` of its
//! table or LAIONet rows), and writes such a file for a suite that has none yet.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use rayon::prelude::*;

use crate::data::sample::ReadError;
use crate::data::suite::Suite;
use crate::util::digest::sha256_hex;

/// What verifying found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub samples: usize,
    /// Samples whose image matched its pinned checksum.
    pub ok: usize,
    /// (id, pinned, actual)
    pub mismatched: Vec<(String, String, String)>,
    /// (id, reason): pinned samples whose image is missing.
    pub missing: Vec<(String, String)>,
    /// (id, reason): pinned samples whose image cannot be read.
    pub unreadable: Vec<(String, String)>,
    /// Samples without a pinned checksum (not read).
    pub unpinned: usize,
    /// Pinned ids that are not samples of the suite.
    pub stale: Vec<String>,
}

impl VerifyReport {
    /// Whether every pinned image is present and intact.
    pub fn passed(&self) -> bool {
        self.mismatched.is_empty() && self.missing.is_empty() && self.unreadable.is_empty()
    }

    pub fn lines(&self, suite: &str, limit: usize) -> Vec<String> {
        let mut out = vec![format!(
            "{suite}: {} samples, {} verified, {} mismatched, {} missing, {} unreadable, {} without a checksum{}",
            self.samples,
            self.ok,
            self.mismatched.len(),
            self.missing.len(),
            self.unreadable.len(),
            self.unpinned,
            if self.stale.is_empty() {
                String::new()
            } else {
                format!(", {} checksums for ids not in the suite", self.stale.len())
            }
        )];
        for (id, want, got) in self.mismatched.iter().take(limit) {
            out.push(format!("  MISMATCH {id}: pinned {want}, image has {got}"));
        }
        for (id, why) in self.missing.iter().take(limit) {
            out.push(format!("  MISSING {id}: {why}"));
        }
        for (id, why) in self.unreadable.iter().take(limit) {
            out.push(format!("  UNREADABLE {id}: {why}"));
        }
        out
    }
}

fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build().context("cannot start threads")
}

/// Checks every pinned sample of `suite`.
pub fn verify(suite: &Suite, threads: usize) -> Result<VerifyReport> {
    enum Outcome {
        Ok,
        Mismatch(String, String),
        Missing(String),
        Unreadable(String),
        Unpinned,
    }
    let outcomes: Vec<(String, Outcome)> = pool(threads)?.install(|| {
        suite
            .samples
            .par_iter()
            .map(|s| {
                let Some(want) = suite.checksums.get(&s.id) else { return (s.id.clone(), Outcome::Unpinned) };
                let o = match s.image.read() {
                    Ok(b) => {
                        let got = sha256_hex(&b);
                        if &got == want {
                            Outcome::Ok
                        } else {
                            Outcome::Mismatch(want.clone(), got)
                        }
                    }
                    Err(ReadError::Missing(e)) => Outcome::Missing(e),
                    Err(ReadError::Failed(e)) => Outcome::Unreadable(e),
                };
                (s.id.clone(), o)
            })
            .collect()
    });
    let mut r = VerifyReport { samples: suite.samples.len(), ..Default::default() };
    for (id, o) in outcomes {
        match o {
            Outcome::Ok => r.ok += 1,
            Outcome::Mismatch(w, g) => r.mismatched.push((id, w, g)),
            Outcome::Missing(e) => r.missing.push((id, e)),
            Outcome::Unreadable(e) => r.unreadable.push((id, e)),
            Outcome::Unpinned => r.unpinned += 1,
        }
    }
    let ids: BTreeSet<&str> = suite.samples.iter().map(|s| s.id.as_str()).collect();
    r.stale = suite.checksums.keys().filter(|k| !ids.contains(k.as_str())).cloned().collect();
    Ok(r)
}

/// `sha256sum`-format lines (`<hex>  <sample id>`) for every readable sample, in id order, and
/// the samples that could not be read.
pub fn checksum_file(suite: &Suite, threads: usize) -> Result<(String, Vec<(String, String)>)> {
    let sums: Vec<(String, Result<String, String>)> = pool(threads)?.install(|| {
        suite
            .samples
            .par_iter()
            .map(|s| {
                let r = match s.image.read() {
                    Ok(b) => Ok(sha256_hex(&b)),
                    Err(ReadError::Missing(e)) | Err(ReadError::Failed(e)) => Err(e),
                };
                (s.id.clone(), r)
            })
            .collect()
    });
    let mut text = String::new();
    let mut problems = Vec::new();
    for (id, r) in sums {
        match r {
            Ok(h) => {
                text.push_str(&h);
                text.push_str("  ");
                text.push_str(&id);
                text.push('\n');
            }
            Err(e) => problems.push((id, e)),
        }
    }
    Ok((text, problems))
}
