//! The worker protocol: frames in both directions (a tag byte, the payload length as a
//! little-endian u64, the payload; see the table in [`crate::host::worker`]), and the model card
//! as it crosses the pipe.

use std::io::{Read, Write};

use abi_stable::std_types::{RString, RVec};
use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use shiftbench_plugin::{ModelCard, ScoreKind};

use crate::host::card::PreprocessInfo;

/// Largest text frame (card, error message) accepted from a worker.
pub(crate) const MAX_TEXT_FRAME: u64 = 64 << 20;

/// Largest batch frame a worker accepts (4 GiB of f32).
pub(crate) const MAX_BATCH_FRAME: u64 = 4 << 30;

/// The fd number the worker finds the shared memory at.
pub(crate) const SHM_FD: i32 = 3;

pub(crate) fn write_frame(w: &mut impl Write, tag: u8, parts: &[&[u8]]) -> std::io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    // The header and the small parts in one write; the last (large) part straight from its buffer.
    let (last, small) = parts.split_last().map(|(l, s)| (*l, s)).unwrap_or((&[][..], &[][..]));
    let mut head = Vec::with_capacity(9 + small.iter().map(|p| p.len()).sum::<usize>());
    head.push(tag);
    head.extend_from_slice(&(len as u64).to_le_bytes());
    for p in small {
        head.extend_from_slice(p);
    }
    w.write_all(&head)?;
    w.write_all(last)?;
    w.flush()
}

/// Reads a frame header; `None` at a clean end of stream.
pub(crate) fn read_head(r: &mut impl Read) -> std::io::Result<Option<(u8, u64)>> {
    let mut head = [0u8; 9];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some((head[0], u64::from_le_bytes(head[1..].try_into().expect("8 bytes")))))
}

pub(crate) fn read_text(r: &mut impl Read, len: u64) -> std::io::Result<String> {
    if len > MAX_TEXT_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("a {len}-byte message is too long")));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

pub(crate) fn read_f32s(r: &mut impl Read, n: usize) -> std::io::Result<Vec<f32>> {
    let mut v = vec![0f32; n];
    r.read_exact(bytemuck::cast_slice_mut(&mut v))?;
    Ok(v)
}

/// The model card as it crosses the pipe.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CardWire {
    pub(crate) plugin_name: String,
    pub(crate) name: String,
    pub(crate) labels: Vec<String>,
    pub(crate) preprocess: PreprocessInfo,
    pub(crate) max_batch: u32,
    pub(crate) scores: String,
    /// Values in one image's embedding (0: none).
    #[serde(default)]
    pub(crate) embedding_len: usize,
}

impl CardWire {
    pub(crate) fn new(card: &ModelCard, plugin_name: &str, embedding_len: usize) -> CardWire {
        CardWire {
            plugin_name: plugin_name.to_string(),
            name: card.name.to_string(),
            labels: card.labels.iter().map(|l| l.to_string()).collect(),
            preprocess: PreprocessInfo::of(&card.preprocess),
            max_batch: card.max_batch,
            scores: card.scores.as_str().into(),
            embedding_len,
        }
    }

    pub(crate) fn card(&self) -> Result<ModelCard> {
        Ok(ModelCard {
            name: RString::from(self.name.as_str()),
            labels: self.labels.iter().map(|l| RString::from(l.as_str())).collect::<RVec<_>>(),
            preprocess: self.preprocess.spec().map_err(|e| anyhow!("the worker sent {e}"))?,
            max_batch: self.max_batch,
            scores: ScoreKind::parse(&self.scores)
                .ok_or_else(|| anyhow!("the worker sent an unknown score kind {:?}", self.scores))?,
        })
    }
}
