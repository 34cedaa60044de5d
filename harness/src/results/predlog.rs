//! The predictions log: the source of truth of a run.
//!
//! JSON lines: a header naming the model and the suite (with the suite's content digest), then one
//! record per sample in evaluation order:
//!
//! ```text
//! {"shiftbench_log":1,"model":"squeezenet1.1","suite":"imagenet-samples","suite_digest":"…","labels_digest":"…"}
//! {"id":"n01440764/a.JPEG","wnid":"n01440764","status":"ok","top":["n01440764","n02526121",…],"scores":[…]}
//! {"id":"n01443537/b.JPEG","wnid":"n01443537","status":"failed","error":"cannot decode Jpeg: …"}
//! ```
//!
//! Records are flushed after every batch, so a run that dies keeps what it evaluated; reopening
//! the log with the same header resumes after the last complete line (a torn last line is cut).
//! Only the end of a log can be torn: a corrupt line with records after it, or a first line that
//! is not a header, is refused with its line number rather than cut away with what follows.
//! Metrics are computed from logs, so they can be recomputed, re-weighted and merged.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::results::shard::Shard;

pub const LOG_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogHeader {
    pub shiftbench_log: u32,
    pub model: String,
    pub suite: String,
    pub suite_digest: String,
    pub labels_digest: String,
    /// The shard this log holds (absent: the whole suite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The model made a prediction.
    Ok,
    /// The sample could not be evaluated (undecodable image, bad label, plugin error).
    Failed,
    /// The image file does not exist.
    Missing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub wnid: String,
    pub status: Status,
    /// Top-k predicted wnids, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<String>,
    /// Their scores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The image's embedding, in an embeddings log (`shiftbench similarity`) instead of `top`
    /// and `scores`: the model's values as they came, not normalised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub embedding: Vec<f32>,
}

/// Appends records to a log, flushing on request.
pub struct LogWriter {
    out: BufWriter<File>,
    pub path: PathBuf,
}

impl LogWriter {
    /// Opens `path` for this header. If a log with the same header exists, it is resumed: the
    /// ids it already holds are returned and new records are appended after its last complete
    /// line. A log with a different header is refused unless `fresh` is set (then replaced).
    pub fn open(path: &Path, header: &LogHeader, fresh: bool) -> Result<(LogWriter, HashSet<String>)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut done = HashSet::new();
        if path.exists() && !fresh {
            let (old_header, records, good_len) =
                read_log_lenient(path).map_err(|e| anyhow!("{e:#}, or pass --fresh to start the log over"))?;
            match old_header {
                Some(h) if &h == header => {
                    done.extend(records.into_iter().map(|r| r.id));
                    let f = OpenOptions::new().write(true).open(path)?;
                    f.set_len(good_len)?;
                    let mut f = f;
                    f.seek(SeekFrom::End(0))?;
                    return Ok((LogWriter { out: BufWriter::new(f), path: path.to_path_buf() }, done));
                }
                Some(h) => bail!(
                    "{} holds predictions of model {:?} on suite {:?} (digest {}), not this run's; \
                     pass --fresh to replace it or choose another --out",
                    path.display(),
                    h.model,
                    h.suite,
                    &h.suite_digest[..12.min(h.suite_digest.len())]
                ),
                None => {} // empty or headerless: start over
            }
        }
        let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = LogWriter { out: BufWriter::new(f), path: path.to_path_buf() };
        serde_json::to_writer(&mut w.out, header)?;
        w.out.write_all(b"\n")?;
        w.flush()?;
        Ok((w, done))
    }

    pub fn write(&mut self, r: &Record) -> Result<()> {
        serde_json::to_writer(&mut self.out, r)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Flushes to the OS (and so survives the process being killed).
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().with_context(|| format!("cannot write {}", self.path.display()))
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// Reads a log for resuming: the header, the records and the byte length of the valid prefix.
/// A torn last line (a write cut short: no newline, or garbage with nothing but blanks or NULs
/// after it) is left out of that prefix. An empty file or a torn header gives no header.
/// Anything else that is not a record (a corrupt line with records after it, a first line that
/// is not a header) is an error naming the line, so resuming never cuts good records away.
/// Bytes are parsed as they are, so a line torn inside a multi-byte character is just torn.
pub fn read_log_lenient(path: &Path) -> Result<(Option<LogHeader>, Vec<Record>, u64)> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut rd = BufReader::new(f);
    let mut line = Vec::new();
    let n = rd.read_until(b'\n', &mut line)?;
    if n == 0 || line.last() != Some(&b'\n') {
        return Ok((None, vec![], 0));
    }
    let header: LogHeader = serde_json::from_slice(&line).map_err(|e| {
        anyhow!("{}:1: not a shiftbench predictions log header ({e}): move the file away", path.display())
    })?;
    let mut good = n as u64;
    let mut records = Vec::new();
    let mut lineno = 1usize;
    loop {
        line.clear();
        let n = rd.read_until(b'\n', &mut line)?;
        lineno += 1;
        if n == 0 || line.last() != Some(&b'\n') {
            break; // end of file, or a torn last line
        }
        if is_blank(&line) {
            good += n as u64;
            continue;
        }
        match serde_json::from_slice::<Record>(&line) {
            Ok(r) => records.push(r),
            Err(e) => {
                let mut rest = Vec::new();
                rd.read_to_end(&mut rest)?;
                if rest.iter().all(|&b| b == 0 || b.is_ascii_whitespace()) {
                    break; // a garbled end: torn
                }
                bail!(
                    "{}:{lineno}: corrupt record ({e}) with more records after it: this is not a torn last line, \
                     so resuming would lose them: repair or delete that line",
                    path.display()
                );
            }
        }
        good += n as u64;
    }
    Ok((Some(header), records, good))
}

/// Reads a complete log strictly: any bad line is an error naming its line number.
pub fn read_log(path: &Path) -> Result<(LogHeader, Vec<Record>)> {
    let f = File::open(path).with_context(|| format!("cannot open predictions log {}", path.display()))?;
    let mut rd = BufReader::new(f);
    let mut line = Vec::new();
    if rd.read_until(b'\n', &mut line)? == 0 {
        bail!("{}: empty predictions log", path.display());
    }
    let header: LogHeader = serde_json::from_slice(&line)
        .map_err(|e| anyhow!("{}:1: not a shiftbench predictions log header: {e}", path.display()))?;
    if header.shiftbench_log != LOG_VERSION {
        bail!(
            "{}: log version {} is not supported (this shiftbench reads {LOG_VERSION})",
            path.display(),
            header.shiftbench_log
        );
    }
    let mut records = Vec::new();
    for lineno in 2.. {
        line.clear();
        if rd.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if is_blank(&line) {
            continue;
        }
        let r: Record = serde_json::from_slice(&line).map_err(|e| anyhow!("{}:{lineno}: {e}", path.display()))?;
        records.push(r);
    }
    Ok((header, records))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::results::metrics::ClassCounts;
    use crate::results::tally::Tally;

    fn header() -> LogHeader {
        LogHeader {
            shiftbench_log: 1,
            model: "m".into(),
            suite: "s".into(),
            suite_digest: "abc".into(),
            labels_digest: "def".into(),
            shard: None,
        }
    }

    /// A record of a sample the model predicted `top` for.
    pub(crate) fn rec(id: &str, wnid: &str, top: &[&str]) -> Record {
        Record {
            id: id.into(),
            wnid: wnid.into(),
            status: Status::Ok,
            top: top.iter().map(|s| s.to_string()).collect(),
            scores: vec![1.0; top.len()],
            error: None,
            embedding: vec![],
        }
    }

    #[test]
    fn resume_cuts_a_torn_line_and_keeps_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log.jsonl");
        let (mut w, done) = LogWriter::open(&p, &header(), false).unwrap();
        assert!(done.is_empty());
        w.write(&rec("a", "n1", &["n1"])).unwrap();
        w.write(&rec("b", "n1", &["n2", "n1"])).unwrap();
        w.flush().unwrap();
        drop(w);
        // Simulate a crash mid-write.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"id\":\"c\",\"wn").unwrap();
        drop(f);
        let (mut w, done) = LogWriter::open(&p, &header(), false).unwrap();
        assert_eq!(done, ["a".to_string(), "b".to_string()].into_iter().collect());
        w.write(&rec("c", "n2", &["n2"])).unwrap();
        w.flush().unwrap();
        let (_, recs) = read_log(&p).unwrap();
        assert_eq!(recs.len(), 3);
        let t = Tally::from_records(&recs);
        assert_eq!(t.counts["n1"], ClassCounts { n: 2, top1: 1, top5: 2 });
        assert_eq!(t.counts["n2"], ClassCounts { n: 1, top1: 1, top5: 1 });
    }

    #[test]
    fn a_different_run_is_not_silently_appended_to() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log.jsonl");
        LogWriter::open(&p, &header(), false).unwrap();
        let other = LogHeader { model: "other".into(), ..header() };
        let e = LogWriter::open(&p, &other, false).err().unwrap().to_string();
        assert!(e.contains("--fresh"), "{e}");
        assert!(LogWriter::open(&p, &other, true).is_ok());
    }
}
