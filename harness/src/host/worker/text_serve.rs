//! The worker's side for a text encoder (`shiftbench __worker --text-encoder`): load the encoder
//! in this process, send its info, answer `T` requests (texts) with raw embeddings until stdin
//! closes. The harness checks and normalises what comes back.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use super::protocol::{read_head, write_frame, MAX_BATCH_FRAME};
use super::serve::{worker_stdio, WorkerExit};
use crate::host::scorer::ModelStopped;
use crate::host::text_plugin::{LoadedTextEncoder, TextBackend};

/// Runs a text-encoder worker: loads the encoder (a load failure is sent to the harness, which
/// reports it), then answers requests until stdin closes (`Ok`).
pub fn serve_text(library: &Path, config: Option<&Path>, threads: u32) -> Result<(), WorkerExit> {
    let proto = worker_stdio()?;
    let mut out = BufWriter::with_capacity(1 << 16, proto);
    let mut input = BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let mut encoder = match LoadedTextEncoder::load(library, config, threads) {
        Ok(e) => e,
        Err(e) => {
            let _ = write_frame(&mut out, b'L', &[format!("{e:#}").as_bytes()]);
            return Ok(());
        }
    };
    let info = serde_json::to_vec(encoder.info()).expect("info serialises");
    if write_frame(&mut out, b'C', &[&info]).is_err() {
        return Err(WorkerExit::Quiet);
    }
    loop {
        let (tag, len) = match read_head(&mut input) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(()), // the harness is done
            Err(e) => return Err(WorkerExit::Said(format!("broken request stream: {e}"))),
        };
        if tag != b'T' || !(4..=MAX_BATCH_FRAME).contains(&len) {
            return Err(WorkerExit::Said(format!("unexpected request (tag {tag}, {len} bytes)")));
        }
        let mut payload = vec![0u8; len as usize];
        if input.read_exact(&mut payload).is_err() {
            return Err(WorkerExit::Quiet);
        }
        let texts = decode_texts(&payload).map_err(WorkerExit::Said)?;
        let reply = match encoder.encode_raw(&texts) {
            Ok(v) => write_frame(&mut out, b'S', &[bytemuck::cast_slice(&v)]),
            Err(e) if e.downcast_ref::<ModelStopped>().is_some() => {
                write_frame(&mut out, b'F', &[format!("{e:#}").as_bytes()])
            }
            Err(e) => write_frame(&mut out, b'E', &[format!("{e:#}").as_bytes()]),
        };
        if reply.and_then(|()| out.flush()).is_err() {
            return Err(WorkerExit::Quiet);
        }
    }
}

/// A `T` payload: the number of texts (u32 LE), then each text's byte length (u32 LE) and its
/// UTF-8 bytes.
pub(crate) fn encode_texts(texts: &[&str]) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + texts.iter().map(|t| 4 + t.len()).sum::<usize>());
    b.extend_from_slice(&(texts.len() as u32).to_le_bytes());
    for t in texts {
        b.extend_from_slice(&(t.len() as u32).to_le_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b
}

/// The texts of a `T` payload, or what is wrong with it.
pub(crate) fn decode_texts(b: &[u8]) -> Result<Vec<&str>, String> {
    fn u32_at(b: &[u8], at: usize) -> Option<usize> {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
    }
    let n = u32_at(b, 0).ok_or("a text request without its count")?;
    let mut texts = Vec::with_capacity(n.min(b.len() / 4));
    let mut at = 4;
    for i in 0..n {
        let len = u32_at(b, at).ok_or(format!("text {i} of {n} is cut short"))?;
        let bytes = b.get(at + 4..at + 4 + len).ok_or(format!("text {i} of {n} is cut short"))?;
        texts.push(std::str::from_utf8(bytes).map_err(|_| format!("text {i} of {n} is not UTF-8"))?);
        at += 4 + len;
    }
    if at != b.len() {
        return Err(format!("{} bytes after the last of {n} texts", b.len() - at));
    }
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_and_bad_payloads_are_sentences() {
        let texts = ["a", "", "héllo wörld", "None"];
        let b = encode_texts(&texts);
        assert_eq!(decode_texts(&b).unwrap(), texts);
        assert_eq!(decode_texts(&encode_texts(&[])).unwrap(), Vec::<&str>::new());
        assert_eq!(decode_texts(&b[..b.len() - 1]).unwrap_err(), "text 3 of 4 is cut short");
        assert_eq!(decode_texts(&[1, 0]).unwrap_err(), "a text request without its count");
        let mut extra = b.clone();
        extra.push(0);
        assert_eq!(decode_texts(&extra).unwrap_err(), "1 bytes after the last of 4 texts");
        let bad = encode_texts(&["\u{e9}"]);
        let mut bad = bad.clone();
        *bad.last_mut().unwrap() = 0xff;
        assert_eq!(decode_texts(&bad).unwrap_err(), "text 0 of 1 is not UTF-8");
    }
}
