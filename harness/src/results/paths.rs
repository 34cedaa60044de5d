//! Where a run's files go under its output folder: `predictions/<model>__<suite>[.shard-<i>-of-<N>].jsonl`
//! (and `embeddings/<model>__<suite>.jsonl` for `shiftbench similarity`)
//! and `result[.shard-<i>-of-<N>].json`, and the lock a run holds while it writes them,
//! `.shiftbench[.shard-<i>-of-<N>].lock`.

use std::path::{Path, PathBuf};

use crate::results::shard::Shard;

/// A file-name-safe form of a model or suite name.
pub fn slug(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' { c } else { '_' }).collect()
}

/// The predictions log of `model` on `suite` under `out`.
pub fn log_path(out: &Path, model: &str, suite: &str) -> PathBuf {
    out.join("predictions").join(format!("{}__{}.jsonl", slug(model), slug(suite)))
}

/// The embeddings log of `model` on `suite` under `out` (`shiftbench similarity`).
pub fn embeddings_log_path(out: &Path, model: &str, suite: &str) -> PathBuf {
    out.join("embeddings").join(format!("{}__{}.jsonl", slug(model), slug(suite)))
}

/// The predictions log of `model` on `suite` under `out`, for one shard:
/// `<model>__<suite>.shard-<i>-of-<N>.jsonl`, so shards can share a folder.
pub fn shard_log_path(out: &Path, model: &str, suite: &str, shard: Option<Shard>) -> PathBuf {
    match shard {
        None => log_path(out, model, suite),
        Some(s) => out.join("predictions").join(format!("{}__{}.{}.jsonl", slug(model), slug(suite), s.tag())),
    }
}

/// The lock a run holds on `out` while it writes there (see [`crate::util::lock`]):
/// `.shiftbench.lock`, or `.shiftbench.shard-<i>-of-<N>.lock` for a shard, so that the shards of
/// one run can share the folder while two runs of the same shard cannot.
pub fn lock_path(out: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        None => out.join(".shiftbench.lock"),
        Some(s) => out.join(format!(".shiftbench.{}.lock", s.tag())),
    }
}

/// Where a run writes its result: `result.json`, or `result.shard-<i>-of-<N>.json` for a shard.
pub fn result_path(out: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        None => out.join("result.json"),
        Some(s) => out.join(format!("result.{}.json", s.tag())),
    }
}
