//! Scale-out: one run split into N shards by a stable hash of each sample id, and the merge of
//! their predictions logs into the exact result of the unsharded run.
//!
//! A sample belongs to shard `i` of `N` when the first eight bytes of `sha256(id)`, read as a
//! big-endian integer, are `i` modulo `N`. The hash depends on the id alone, so adding samples to a
//! suite never moves the others, and every machine agrees on the split (Rust's own hasher is
//! randomised per process and would not). Shards are numbered `0..N`, like a Slurm array
//! `--array=0-(N-1)` or a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`.
//!
//! Each shard writes its own predictions log (`<model>__<suite>.shard-<i>-of-<N>.jsonl`) and result
//! (`result.shard-<i>-of-<N>.json`), so shards can share one output folder (see
//! [`crate::results::paths`]); `shiftbench merge` combines them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether the sample `id` belongs to this shard.
    pub fn contains(&self, id: &str) -> bool {
        self.count <= 1 || shard_of(id, self.count) == self.index
    }

    /// `shard-<i>-of-<N>`: the suffix of this shard's log and result file names.
    pub fn tag(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// Parses `i/N` with `0 <= i < N`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("expected i/N (such as 0/4), got {s:?}"))?;
        let index: u32 = i.trim().parse().map_err(|_| format!("shard index {i:?} is not a number"))?;
        let count: u32 = n.trim().parse().map_err(|_| format!("shard count {n:?} is not a number"))?;
        if count == 0 {
            return Err("the shard count must be at least 1".into());
        }
        if index >= count {
            return Err(format!("shard {index}/{count} does not exist: shards are numbered 0 to {}", count - 1));
        }
        Ok(Shard { index, count })
    }
}

/// The stable hash of a sample id: the first eight bytes of its sha256, big-endian.
pub fn id_hash(id: &str) -> u64 {
    let d = Sha256::digest(id.as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The shard (of `count`) that the sample `id` belongs to.
pub fn shard_of(id: &str, count: u32) -> u32 {
    (id_hash(id) % count.max(1) as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        assert_eq!("2/7".parse::<Shard>().unwrap(), Shard { index: 2, count: 7 });
        assert_eq!(Shard { index: 2, count: 7 }.to_string(), "2/7");
        assert_eq!(Shard { index: 2, count: 7 }.tag(), "shard-2-of-7");
        assert!("7/7".parse::<Shard>().unwrap_err().contains("numbered 0 to 6"));
        assert!("1/0".parse::<Shard>().is_err());
        assert!("1".parse::<Shard>().is_err());
    }

    #[test]
    fn the_split_is_stable_and_a_partition() {
        // Fixed values: the split must never change between versions or machines.
        assert_eq!(id_hash("n01440764/a.JPEG"), id_hash("n01440764/a.JPEG"));
        assert_eq!(shard_of("", 1), 0);
        let h = format!("{:016x}", id_hash("abc"));
        assert_eq!(h, "ba7816bf8f01cfea"); // sha256("abc") starts ba7816bf 8f01cfea
        let ids: Vec<String> = (0..1000).map(|i| format!("img{i}")).collect();
        for n in [1u32, 3, 7] {
            let mut seen = 0;
            for i in 0..n {
                let s = Shard { index: i, count: n };
                let mine = ids.iter().filter(|id| s.contains(id)).count();
                assert!(n == 1 || mine > 1000 / n as usize / 2, "shard {s} got {mine}");
                seen += mine;
            }
            assert_eq!(seen, ids.len());
        }
    }
}
