//! Entry points for hostile input: the fuzz targets in `fuzz/` and the property tests in
//! `tests/hostile.rs` call these with arbitrary bytes. Each runs one parser the way the harness
//! does and returns its verdict (`Ok`, or the error a user would see). A panic, a hang or an
//! unbounded allocation inside is a bug, and so is a broken invariant: those are checked with
//! `assert!`, so a fuzzer reports them as crashes.
//!
//! Parsers that read from a path get the bytes through a scratch file in a private temporary
//! folder (one per thread).

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use shiftbench_model_config::ModelConfig;
use shiftbench_plugin::{ChannelOrder, Interpolation, Layout, PreprocessSpec};

use shiftbench_imaging::{decode, preprocess, resize_crop, to_tensor, Normaliser};

use crate::data::suite::Suite;
use crate::data::weights::Weights;
use crate::results::predlog::{read_log, read_log_lenient, LogWriter, Record, Status, LOG_VERSION};
use crate::results::result::RunResult;

thread_local! {
    static SCRATCH: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// A private folder for this thread's scratch files (removed when the process exits normally is
/// not guaranteed; it lives under the system temporary folder).
pub fn scratch_dir() -> PathBuf {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if let Some(d) = s.as_ref() {
            return d.clone();
        }
        let tid = format!("{:?}", std::thread::current().id()).chars().filter(char::is_ascii_digit).collect::<String>();
        let d = std::env::temp_dir().join(format!("shiftbench-fuzz-{}-{tid}", std::process::id()));
        std::fs::create_dir_all(&d).expect("cannot create a scratch folder");
        *s = Some(d.clone());
        d
    })
}

fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    let p = scratch_dir().join(name);
    std::fs::write(&p, data).expect("cannot write a scratch file");
    p
}

/// Small preprocessing specs covering each interpolation, channel order and layout.
pub const SPECS: [PreprocessSpec; 3] = [
    PreprocessSpec {
        resize: 40,
        crop: 32,
        interpolation: Interpolation::Bilinear,
        channel_order: ChannelOrder::Rgb,
        layout: Layout::Nchw,
        scale: 1.0 / 255.0,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    },
    PreprocessSpec {
        resize: 17,
        crop: 17,
        interpolation: Interpolation::Bicubic,
        channel_order: ChannelOrder::Bgr,
        layout: Layout::Nhwc,
        scale: 1.0,
        mean: [104.0, 117.0, 123.0],
        std: [1.0, 1.0, 1.0],
    },
    PreprocessSpec {
        resize: 9,
        crop: 5,
        interpolation: Interpolation::Nearest,
        channel_order: ChannelOrder::Rgb,
        layout: Layout::Nchw,
        scale: 1.0 / 255.0,
        mean: [0.0; 3],
        std: [1.0; 3],
    },
];

/// Decodes an image file's bytes and preprocesses it with every spec in [`SPECS`], as the
/// pipeline does (decoding only the part of a JPEG the crops read). Invariants: a decoded image
/// gives a full tensor of finite values, and when the whole image decodes, the partial decode
/// gives the same crops (it may succeed where the whole fails: damage below what it reads).
pub fn image(data: &[u8]) -> Result<(), String> {
    let specs: Vec<&PreprocessSpec> = SPECS.iter().collect();
    let parts = preprocess(data, &specs);
    if let Ok(img) = decode(data) {
        let parts = parts.as_ref().expect("the whole image decodes, so its part must");
        for (spec, part) in SPECS.iter().zip(parts) {
            assert_eq!(part, &resize_crop(&img, spec), "the partial decode's crop differs from the whole decode's");
        }
    }
    for (spec, crop) in SPECS.iter().zip(parts?) {
        let crop = crop?;
        assert_eq!(crop.dimensions(), (spec.crop, spec.crop));
        let mut out = vec![f32::NAN; spec.image_len()];
        to_tensor(&crop, spec, &Normaliser::new(spec), &mut out);
        assert!(out.iter().all(|v| v.is_finite()), "non-finite tensor value");
    }
    Ok(())
}

/// Loads a suite YAML (paths in it are relative to a scratch folder). Invariant: a loaded suite
/// has unique, sorted sample ids and weights that are finite and non-negative.
pub fn suite_yaml(data: &[u8]) -> Result<(), String> {
    let p = scratch_file("suite.yaml", data);
    let s = Suite::load(&p).map_err(|e| format!("{e:#}"))?;
    assert!(s.samples.windows(2).all(|w| w[0].id < w[1].id), "sample ids not unique and sorted");
    if let Weights::Freq(w) = &s.weights {
        assert!(w.values().all(|v| v.is_finite() && *v >= 0.0), "bad weights {w:?}");
    }
    Ok(())
}

/// Parses a model YAML (as if it were `/nonexistent/model.yaml`, so relative label files do not
/// exist). Invariant: an accepted preprocessing spec is usable.
pub fn model_yaml(data: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(data).map_err(|e| format!("not UTF-8: {e}"))?;
    let c = ModelConfig::parse(text, Path::new("/nonexistent/model.yaml")).map_err(|e| e.to_string())?;
    let p = &c.preprocess;
    assert!(p.crop > 0 && p.crop <= p.resize, "unusable crop {} / resize {}", p.crop, p.resize);
    assert!(p.std.iter().all(|s| s.is_finite() && *s != 0.0), "bad std {:?}", p.std);
    assert!(!c.labels.is_empty());
    Ok(())
}

fn probe_record() -> Record {
    Record {
        id: "fuzz/ünïcödé probe.JPEG".into(),
        wnid: "n01440764".into(),
        status: Status::Ok,
        top: vec!["n01440764".into()],
        scores: vec![0.5],
        error: None,
        embedding: vec![],
        image: None,
    }
}

/// Reads a predictions log strictly and for resuming, then resumes it. Invariants: resuming
/// keeps exactly the records the lenient reader found, appends after them, and the result reads
/// back strictly.
pub fn predictions_log(data: &[u8]) -> Result<(), String> {
    let p = scratch_file("log.jsonl", data);
    let strict = read_log(&p);
    let (header, records, good) = read_log_lenient(&p).map_err(|e| format!("{e:#}"))?;
    assert!(good <= data.len() as u64);
    if let Ok((h, recs)) = &strict {
        // A log that reads strictly and ends with a newline loses nothing when resumed.
        if data.ends_with(b"\n") {
            assert_eq!(header.as_ref(), Some(h));
            assert_eq!(&records, recs);
        }
    }
    let Some(header) = header else { return Ok(()) };
    if header.shiftbench_log != LOG_VERSION {
        return Ok(());
    }
    let (mut w, done) = LogWriter::open(&p, &header, false).map_err(|e| format!("{e:#}"))?;
    assert_eq!(done.len(), records.iter().map(|r| &r.id).collect::<std::collections::HashSet<_>>().len());
    w.write(&probe_record()).map_err(|e| e.to_string())?;
    w.flush().map_err(|e| e.to_string())?;
    drop(w);
    let (h2, recs2) =
        read_log(&p).map_err(|e| format!("resumed log does not read back: {e:#}")).expect("resumed log reads back");
    assert_eq!(h2, header);
    assert_eq!(recs2.len(), records.len() + 1);
    assert_eq!(&recs2[..records.len()], &records[..]);
    assert_eq!(recs2.last(), Some(&probe_record()));
    Ok(())
}

/// Parses a result file. Invariant: what parses writes back and parses to the same.
pub fn result_file(data: &[u8]) -> Result<(), String> {
    let r = RunResult::from_slice(data).map_err(|e| format!("{e:#}"))?;
    let again = RunResult::from_slice(&serde_json::to_vec(&r).expect("serialises")).expect("reads back");
    assert_eq!(again, r);
    Ok(())
}

/// Reads a pickled `wnid -> row indices` dict (a LAIONet suite's `labels:`).
pub fn labels_pickle(data: &[u8]) -> Result<(), String> {
    let p = scratch_file("labels.pkl", data);
    crate::data::sources::pickle::read_index_labels(&p).map(|_| ()).map_err(|e| format!("{e:#}"))
}

/// Reads a lemma table (`--lemmas`: pairs or lists per class). Invariant: every lemma of the
/// dictionary is listed once.
pub fn lemma_table(data: &[u8]) -> Result<(), String> {
    let p = scratch_file("lemmas.tsv", data);
    let l = crate::data::lexicon::Lemmas::load(&p).map_err(|e| format!("{e:#}"))?;
    let mut seen = std::collections::HashSet::new();
    assert!(l.entries.iter().all(|(lemma, _)| seen.insert(lemma.as_str())), "a lemma listed twice");
    Ok(())
}

/// Matches `data` as a caption against the paper's dictionary. Invariant: the classes found are
/// exactly those the paper's loop finds (each lemma, padded, tested as a substring of the caption
/// with its punctuation made spaces and padded).
pub fn caption_match(data: &[u8]) -> Result<(), String> {
    use crate::data::lexicon::Lemmas;
    use crate::data::matcher::{Matcher, PUNCTUATION};
    static M: std::sync::OnceLock<(Lemmas, Matcher)> = std::sync::OnceLock::new();
    let (lemmas, m) = M.get_or_init(|| {
        let l = Lemmas::default_paper();
        let m = Matcher::new(&l, false).expect("the paper's dictionary builds");
        (l, m)
    });
    let (mut buf, mut hits) = (Vec::new(), Vec::new());
    m.classes(data, &mut buf, &mut hits);
    let mut found: Vec<&str> = hits.iter().map(|&c| m.wnids[c as usize].as_str()).collect();
    found.sort();
    found.dedup();
    let text: Vec<u8> = std::iter::once(b' ')
        .chain(data.iter().map(|b| if PUNCTUATION.contains(b) { b' ' } else { *b }))
        .chain(std::iter::once(b' '))
        .collect();
    let mut naive: Vec<&str> = lemmas
        .entries
        .iter()
        .filter(|(l, _)| {
            let pat = format!(" {l} ");
            text.windows(pat.len()).any(|w| w == pat.as_bytes())
        })
        .map(|(_, w)| w.as_str())
        .collect();
    naive.sort();
    naive.dedup();
    assert_eq!(found, naive, "the matcher and the paper's loop disagree on {:?}", String::from_utf8_lossy(data));
    Ok(())
}
