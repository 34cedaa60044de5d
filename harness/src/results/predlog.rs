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

use crate::results::identity::{identity_changes, Identity};
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
    /// Everything else that decides the records: the model file, plugin, card, settings
    /// ([`Identity`]). Absent in logs of shiftbench versions that did not record it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
}

impl LogHeader {
    /// The header of a log of `model` on `suite` (content digest `suite_digest`), predicting among
    /// the labels of digest `labels_digest`: the whole suite, no identity yet.
    pub fn new(model: &str, suite: &str, suite_digest: &str, labels_digest: &str) -> LogHeader {
        LogHeader {
            shiftbench_log: LOG_VERSION,
            model: model.to_string(),
            suite: suite.to_string(),
            suite_digest: suite_digest.to_string(),
            labels_digest: labels_digest.to_string(),
            shard: None,
            identity: None,
        }
    }

    /// What differs from `old` to this header, one item each (empty: the same log identity).
    pub fn changes_from(&self, old: &LogHeader) -> Vec<String> {
        let mut out = Vec::new();
        let short = |s: &str| s[..12.min(s.len())].to_string();
        if old.model != self.model {
            out.push(format!("model {} -> {}", old.model, self.model));
        }
        if old.suite != self.suite {
            out.push(format!("suite {} -> {}", old.suite, self.suite));
        }
        if old.suite_digest != self.suite_digest {
            out.push(format!("suite content {} -> {}", short(&old.suite_digest), short(&self.suite_digest)));
        }
        if old.labels_digest != self.labels_digest {
            out.push(format!("labels predicted among {} -> {}", short(&old.labels_digest), short(&self.labels_digest)));
        }
        if old.shard != self.shard {
            let s = |x: Option<Shard>| x.map(|s| s.to_string()).unwrap_or_else(|| "(whole suite)".into());
            out.push(format!("shard {} -> {}", s(old.shard), s(self.shard)));
        }
        if old.shiftbench_log != self.shiftbench_log {
            out.push(format!("log version {} -> {}", old.shiftbench_log, self.shiftbench_log));
        }
        out.extend(identity_changes(old.identity.as_ref(), self.identity.as_ref()));
        out
    }
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
    /// A fingerprint of the image bytes the record was made from (see
    /// [`crate::util::digest::fingerprint`]); absent when no bytes were read (a missing image, a
    /// label the suite cannot score). A resumed run scores a sample again when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl Record {
    /// A record of sample `id` (labelled `wnid`) with `status` and nothing else yet.
    pub fn of(id: &str, wnid: &str, status: Status) -> Record {
        Record {
            id: id.to_string(),
            wnid: wnid.to_string(),
            status,
            top: vec![],
            scores: vec![],
            error: None,
            embedding: vec![],
            image: None,
        }
    }

    /// The record of a sample that has no prediction: `status` with the reason.
    pub fn failed(id: &str, wnid: &str, status: Status, error: String) -> Record {
        Record { error: Some(error), ..Record::of(id, wnid, status) }
    }
}

/// Appends records to a log, flushing on request.
pub struct LogWriter {
    out: BufWriter<File>,
    pub path: PathBuf,
}

/// What opening a log found: the samples it already holds, and what it did with an earlier log.
#[derive(Debug, Default)]
pub struct Resumed {
    /// Ids of the samples the log holds (to be skipped).
    pub done: HashSet<String>,
    /// Of those, records kept from an earlier run (0: a new log).
    pub kept: usize,
    /// Records dropped because their sample's image changed since (scored again).
    pub changed_images: usize,
    /// An earlier log of another model, card or suite: where it was kept, and what changed.
    pub replaced: Option<Replaced>,
    /// How long checking the earlier records' images took (None: nothing was checked).
    pub check_time: Option<std::time::Duration>,
}

/// An earlier log set aside because it was not this run's.
#[derive(Debug, Clone)]
pub struct Replaced {
    /// Where the earlier log now is (beside the new one).
    pub kept_as: PathBuf,
    /// What differs, one item each (`channel_order rgb -> bgr`).
    pub changes: Vec<String>,
}

impl Resumed {
    /// One line for people about what was resumed or replaced (None for a new log).
    pub fn describe(&self, log: &Path, total: usize) -> Option<String> {
        if let Some(r) = &self.replaced {
            return Some(format!(
                "{} was written by another model, card or suite ({}): kept as {}; starting over",
                log.display(),
                r.changes.join(", "),
                r.kept_as.display()
            ));
        }
        if self.kept == 0 && self.changed_images == 0 {
            return None;
        }
        let checked = match self.check_time {
            Some(t) => format!("; images checked in {:.2} s", t.as_secs_f64()),
            None => String::new(),
        };
        let mut line =
            format!("resumed {} of {total} from {} (same model, card and suite{checked})", self.kept, log.display());
        if self.changed_images > 0 {
            line.push_str(&format!(
                "; {} image{} changed since {} scored: scoring {} again",
                self.changed_images,
                if self.changed_images == 1 { "" } else { "s" },
                if self.changed_images == 1 { "it was" } else { "they were" },
                if self.changed_images == 1 { "it" } else { "them" }
            ));
        }
        Some(line)
    }
}

/// A free name beside `path` for an earlier log kept aside: `<name>.replaced-<n>` (not `.jsonl`,
/// so that folders of logs do not pick it up).
fn kept_aside_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (1..).map(|n| path.with_file_name(format!("{name}.replaced-{n}"))).find(|p| !p.exists()).expect("a free name")
}

/// Renames the log at `path` to a free name beside it; returns that name.
fn set_aside(path: &Path) -> Result<PathBuf> {
    let to = kept_aside_path(path);
    std::fs::rename(path, &to).with_context(|| format!("cannot move {} to {}", path.display(), to.display()))?;
    Ok(to)
}

impl LogWriter {
    /// Opens `path` for this header, without checking images (see [`LogWriter::resume`]).
    pub fn open(path: &Path, header: &LogHeader, fresh: bool) -> Result<(LogWriter, HashSet<String>)> {
        let (w, r) = LogWriter::resume(path, header, fresh, &|_| HashSet::new())?;
        Ok((w, r.done))
    }

    /// Opens `path` for this header. If a log with the same header exists (the same model file,
    /// card, settings and suite content: [`LogHeader::changes_from`] finds nothing), it is
    /// resumed: the ids it holds are returned and new records are appended after its last
    /// complete line. `changed` is given the records and returns the ids whose image changed
    /// since they were scored: those records are dropped (the earlier log is kept aside) and their
    /// samples are to be scored again. A log with a different header is kept aside (renamed beside
    /// `path`, nothing lost) and a new one started, saying what changed. `fresh` replaces any log.
    pub fn resume(
        path: &Path,
        header: &LogHeader,
        fresh: bool,
        changed: &dyn Fn(&[Record]) -> HashSet<String>,
    ) -> Result<(LogWriter, Resumed)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut resumed = Resumed::default();
        if path.exists() && !fresh {
            let (old_header, records, good_len) =
                read_log_lenient(path).map_err(|e| anyhow!("{e:#}, or pass --fresh to start the log over"))?;
            // No header (an empty file, a torn first line): start over.
            if let Some(h) = old_header {
                let changes = header.changes_from(&h);
                if !changes.is_empty() {
                    let kept_as = set_aside(path)?;
                    resumed.replaced = Some(Replaced { kept_as, changes });
                    return Ok((LogWriter::create(path, header)?, resumed));
                }
                let started = std::time::Instant::now();
                let stale = changed(&records);
                resumed.check_time = (!records.is_empty()).then(|| started.elapsed());
                if stale.is_empty() {
                    resumed.kept = records.len();
                    resumed.done.extend(records.into_iter().map(|r| r.id));
                    let mut f = OpenOptions::new().write(true).open(path)?;
                    f.set_len(good_len)?;
                    f.seek(SeekFrom::End(0))?;
                    return Ok((LogWriter { out: BufWriter::new(f), path: path.to_path_buf() }, resumed));
                }
                // Keep the earlier log aside and write the records still good into a new one.
                let kept: Vec<Record> = records.into_iter().filter(|r| !stale.contains(&r.id)).collect();
                set_aside(path)?;
                let mut w = LogWriter::create(path, header)?;
                for r in &kept {
                    w.write(r)?;
                }
                w.flush()?;
                resumed.kept = kept.len();
                resumed.changed_images = stale.len();
                resumed.done.extend(kept.into_iter().map(|r| r.id));
                return Ok((w, resumed));
            }
        }
        Ok((LogWriter::create(path, header)?, resumed))
    }

    /// A new log at `path` holding only `header`.
    fn create(path: &Path, header: &LogHeader) -> Result<LogWriter> {
        let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = LogWriter { out: BufWriter::new(f), path: path.to_path_buf() };
        serde_json::to_writer(&mut w.out, header)?;
        w.out.write_all(b"\n")?;
        w.flush()?;
        Ok(w)
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
            identity: None,
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
            image: None,
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

    /// A header with an identity as a run writes it.
    fn header_with(name: &str, value: &str) -> LogHeader {
        let mut id = Identity::default();
        for (k, v) in [
            ("plugin", "onnx 0.1.0"),
            ("model file", "aaaa"),
            ("channel_order", "rgb"),
            ("mean", "[0.485, 0.456, 0.406]"),
            ("argmax", "auto"),
        ] {
            id.set(k, v);
        }
        id.set(name, value);
        LogHeader { identity: Some(id), ..header() }
    }

    #[test]
    fn a_different_model_card_or_suite_is_kept_aside_not_appended_to() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log.jsonl");
        let base = header_with("channel_order", "rgb");
        let write_one = |h: &LogHeader| {
            let (mut w, r) = LogWriter::resume(&p, h, false, &|_| HashSet::new()).unwrap();
            w.write(&rec("a", "n1", &["n1"])).unwrap();
            w.flush().unwrap();
            r
        };
        write_one(&base);
        // The same header resumes.
        let (_, r) = LogWriter::resume(&p, &base, false, &|_| HashSet::new()).unwrap();
        assert_eq!((r.kept, r.done.len(), r.replaced.is_none()), (1, 1, true));
        assert!(r.describe(&p, 3).unwrap().starts_with("resumed 1 of 3 from"), "{:?}", r.describe(&p, 3));
        // Each field changed alone starts a new log, keeps the old one beside it and says what changed.
        let variants: Vec<(LogHeader, &str)> = vec![
            (header_with("channel_order", "bgr"), "channel_order rgb -> bgr"),
            (header_with("model file", "bbbb"), "model file aaaa -> bbbb"),
            (header_with("plugin", "onnx 0.2.0"), "plugin onnx 0.1.0 -> onnx 0.2.0"),
            (header_with("mean", "[0, 0, 0]"), "mean [0.485, 0.456, 0.406] -> [0, 0, 0]"),
            (header_with("argmax", "all"), "argmax auto -> all"),
            (header_with("option device", "cuda"), "option device (none) -> cuda"),
            (LogHeader { suite_digest: "xyz".into(), ..base.clone() }, "suite content abc -> xyz"),
            (LogHeader { labels_digest: "ghi".into(), ..base.clone() }, "labels predicted among def -> ghi"),
            (LogHeader { identity: None, ..base.clone() }, "newer log does not record"),
        ];
        for (n, (h, change)) in variants.iter().enumerate() {
            let before = std::fs::read(&p).unwrap();
            let (w, r) = LogWriter::resume(&p, h, false, &|_| HashSet::new()).unwrap();
            drop(w);
            let rep = r.replaced.as_ref().unwrap_or_else(|| panic!("{change}: resumed"));
            assert!(rep.changes.iter().any(|c| c.contains(change)), "{change}: {:?}", rep.changes);
            assert_eq!(rep.changes.len(), 1, "{:?}", rep.changes);
            assert_eq!(rep.kept_as, d.path().join("log.jsonl.replaced-1"), "{n}");
            assert_eq!(std::fs::read(&rep.kept_as).unwrap(), before, "the earlier log is kept as it was");
            assert!(r.done.is_empty());
            assert!(r.describe(&p, 1).unwrap().contains(change));
            let (h2, recs) = read_log(&p).unwrap();
            assert_eq!((&h2, recs.len()), (h, 0));
            // Back to the base header for the next variant (that too is a change).
            std::fs::rename(&rep.kept_as, &p).unwrap();
        }
        // A second replacement does not overwrite the first one kept aside.
        LogWriter::resume(&p, &header_with("crop", "1"), false, &|_| HashSet::new()).unwrap();
        let (_, r) = LogWriter::resume(&p, &header_with("crop", "2"), false, &|_| HashSet::new()).unwrap();
        assert_eq!(r.replaced.unwrap().kept_as, d.path().join("log.jsonl.replaced-2"));
        // --fresh replaces without asking.
        let (_, r) = LogWriter::resume(&p, &header_with("channel_order", "bgr"), true, &|_| HashSet::new()).unwrap();
        assert!(r.replaced.is_none() && r.done.is_empty());
    }

    #[test]
    fn records_of_changed_images_are_dropped_and_scored_again() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log.jsonl");
        let h = header_with("channel_order", "rgb");
        let (mut w, _) = LogWriter::open(&p, &h, false).unwrap();
        for id in ["a", "b", "c"] {
            w.write(&Record { image: Some(format!("1:{id}")), ..rec(id, "n1", &["n1"]) }).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let stale = |recs: &[Record]| -> HashSet<String> {
            assert_eq!(recs.len(), 3);
            ["b".to_string()].into_iter().collect()
        };
        let (w, r) = LogWriter::resume(&p, &h, false, &stale).unwrap();
        drop(w);
        assert_eq!((r.kept, r.changed_images), (2, 1));
        assert_eq!(r.done, ["a".to_string(), "c".to_string()].into_iter().collect());
        let line = r.describe(&p, 3).unwrap();
        assert!(line.contains("resumed 2 of 3") && line.contains("1 image changed"), "{line}");
        let (_, recs) = read_log(&p).unwrap();
        assert_eq!(recs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        // The earlier log, with the stale record, is kept beside it.
        let (_, old) = read_log(&d.path().join("log.jsonl.replaced-1")).unwrap();
        assert_eq!(old.len(), 3);
    }
}
