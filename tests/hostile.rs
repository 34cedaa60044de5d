//! Hostile files: property tests feeding arbitrary and mutated bytes to every parser of user
//! input (image decode + preprocess, suite YAML, model YAML, predictions logs, result files)
//! through `shiftbench::fuzzing`, the same entry points the fuzz targets in `fuzz/` use. None may
//! panic, allocate without bound or break its invariants; each gives a result or a clear error.
//! Case counts are modest so `cargo test` stays quick; `PROPTEST_CASES=10000` runs more.

use std::io::Cursor;

use proptest::prelude::*;
use shiftbench::fuzzing;
use shiftbench::results::metrics::ClassCounts;
use shiftbench::results::predlog::{read_log_lenient, LogHeader, Record, Status};
use shiftbench::results::tally::{ClassStatus, Tally};
use shiftbench::{EvalResult, RunResult};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------------------------
// Images

const FORMATS: [image::ImageFormat; 6] = [
    image::ImageFormat::Png,
    image::ImageFormat::Jpeg,
    image::ImageFormat::Gif,
    image::ImageFormat::Bmp,
    image::ImageFormat::Tiff,
    image::ImageFormat::WebP,
];

fn encode(w: u32, h: u32, seed: u8, fmt: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([seed ^ (x * 17) as u8, (y * 29) as u8, seed.wrapping_mul(3)])
    });
    let img = match fmt {
        // GIF and WebP encoders want RGBA.
        image::ImageFormat::Gif | image::ImageFormat::WebP => {
            image::DynamicImage::ImageRgba8(image::DynamicImage::ImageRgb8(img).to_rgba8())
        }
        _ => image::DynamicImage::ImageRgb8(img),
    };
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, fmt).unwrap();
    buf.into_inner()
}

/// A valid small image in some format, then up to 8 bytes overwritten and maybe truncated.
fn mutated_image() -> impl Strategy<Value = Vec<u8>> {
    (
        1u32..24,
        1u32..24,
        any::<u8>(),
        0..FORMATS.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        any::<Option<prop::sample::Index>>(),
    )
        .prop_map(|(w, h, seed, f, edits, cut)| {
            let mut b = encode(w, h, seed, FORMATS[f]);
            for (i, v) in edits {
                let i = i.index(b.len());
                b[i] = v;
            }
            if let Some(c) = cut {
                b.truncate(c.index(b.len() + 1));
            }
            b
        })
}

proptest! {
    #![proptest_config(config(192))]

    #[test]
    fn mutated_images_decode_or_fail_cleanly(bytes in mutated_image()) {
        let _ = fuzzing::image(&bytes);
    }

    #[test]
    fn arbitrary_bytes_are_not_images(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = fuzzing::image(&bytes);
    }
}

#[test]
fn every_format_round_trips_and_preprocesses() {
    for f in FORMATS {
        for (w, h) in [(1, 1), (23, 2), (5, 17)] {
            assert_eq!(fuzzing::image(&encode(w, h, 9, f)), Ok(()), "{f:?} {w}x{h}");
        }
    }
}

#[test]
fn huge_declared_sizes_are_refused_before_decoding() {
    // BMP: width and height are i32 at offsets 18 and 22.
    let mut bmp = encode(4, 4, 1, image::ImageFormat::Bmp);
    bmp[18..22].copy_from_slice(&29_000i32.to_le_bytes());
    bmp[22..26].copy_from_slice(&29_000i32.to_le_bytes());
    let e = fuzzing::image(&bmp).unwrap_err();
    assert!(e.contains("29000x29000") && e.contains("decompression bomb"), "{e}");
    // GIF: the logical screen is u16 at offsets 6 and 8.
    let mut gif = encode(4, 4, 1, image::ImageFormat::Gif);
    gif[6..8].copy_from_slice(&60_000u16.to_le_bytes());
    assert!(fuzzing::image(&gif).is_err());
}

// ---------------------------------------------------------------------------------------------
// Suite and model YAML

fn yaml_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("n01440764".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("/dev/zero".to_string()),
        Just("/nonexistent".to_string()),
        Just("${HOME}".to_string()),
        Just("${SHIFTBENCH_NO_SUCH_VAR}".to_string()),
        Just("${".to_string()),
        Just("suite.yaml".to_string()),
        Just("~".to_string()),
        Just("own".to_string()),
        Just("equal".to_string()),
        Just("[1, 2".to_string()),
        Just("&a [*a]".to_string()),
        "[a-z0-9_./${}:-]{0,12}",
    ]
}

fn suite_text() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("name"),
        Just("description"),
        Just("source"),
        Just("classes"),
        Just("classes_file"),
        Just("weights"),
        Just("bogus"),
    ];
    let source_key = prop_oneof![
        Just("image_folder"),
        Just("files"),
        Just("table"),
        Just("root"),
        Just("path_column"),
        Just("wnid_column")
    ];
    let value = prop_oneof![
        yaml_scalar().prop_map(|s| format!(" {s}")),
        prop::collection::vec((source_key, yaml_scalar()), 0..4)
            .prop_map(|kv| kv.iter().map(|(k, v)| format!("\n  {k}: {v}")).collect::<String>()),
        prop::collection::vec(yaml_scalar(), 0..4).prop_map(|v| format!(" [{}]", v.join(", "))),
        (yaml_scalar(), yaml_scalar()).prop_map(|(a, b)| format!(" {{table: {a}, weight_column: {b}}}")),
        yaml_scalar().prop_map(|a| format!(" {{suite: {a}}}")),
    ];
    prop::collection::vec((key, value), 0..6).prop_map(|kv| kv.iter().map(|(k, v)| format!("{k}:{v}\n")).collect())
}

fn model_text() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("plugin"),
        Just("model"),
        Just("name"),
        Just("labels"),
        Just("scores"),
        Just("batch"),
        Just("options"),
        Just("preprocess"),
    ];
    let pre_key = prop_oneof![
        Just("resize"),
        Just("crop"),
        Just("interpolation"),
        Just("channel_order"),
        Just("range"),
        Just("mean"),
        Just("std"),
        Just("layout"),
    ];
    let pre_val = prop_oneof![
        yaml_scalar(),
        any::<i64>().prop_map(|v| v.to_string()),
        Just("[0, 0, 0]".to_string()),
        Just("[1e39, .nan, -.inf]".to_string()),
        Just("[1, 2]".to_string()),
        Just("bicubic".to_string()),
        Just("0-255".to_string()),
    ];
    let value = prop_oneof![
        yaml_scalar().prop_map(|s| format!(" {s}")),
        prop::collection::vec((pre_key, pre_val), 0..5)
            .prop_map(|kv| kv.iter().map(|(k, v)| format!("\n  {k}: {v}")).collect::<String>()),
    ];
    prop::collection::vec((key, value), 0..6).prop_map(|kv| kv.iter().map(|(k, v)| format!("{k}:{v}\n")).collect())
}

/// Flips, inserts or deletes a few bytes.
fn mangle(text: String, edits: Vec<(prop::sample::Index, u8, u8)>) -> Vec<u8> {
    let mut b = text.into_bytes();
    for (i, v, op) in edits {
        let i = i.index(b.len() + 1);
        match op % 3 {
            0 if i < b.len() => b[i] = v,
            1 => b.insert(i, v),
            _ if i < b.len() => {
                b.remove(i);
            }
            _ => {}
        }
    }
    b
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn suite_yaml_loads_or_fails_cleanly(text in suite_text(), edits in prop::collection::vec(any::<(prop::sample::Index, u8, u8)>(), 0..3)) {
        let _ = fuzzing::suite_yaml(&mangle(text, edits));
    }

    #[test]
    fn suite_yaml_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = fuzzing::suite_yaml(&bytes);
    }

    #[test]
    fn model_yaml_parses_or_fails_cleanly(text in model_text(), edits in prop::collection::vec(any::<(prop::sample::Index, u8, u8)>(), 0..3)) {
        let _ = fuzzing::model_yaml(&mangle(text, edits));
    }

    #[test]
    fn model_yaml_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = fuzzing::model_yaml(&bytes);
    }
}

/// Captions made of the paper's lemmas, punctuation, spaces, other words and non-ASCII text.
fn caption_text() -> impl Strategy<Value = Vec<u8>> {
    let lemmas: Vec<String> =
        shiftbench::data::lexicon::Lemmas::default_paper().entries.into_iter().map(|(l, _)| l).step_by(7).collect();
    let token = prop_oneof![
        prop::sample::select(lemmas),
        prop::sample::select(vec![" ", "  ", ",", "-", "'", "(", ")", "_", ".", "\t", "!", "/"]).prop_map(String::from),
        prop::sample::select(vec!["hot", "dog", "paid", "ai", "Dog", "sloth", "é", "日本", "x"]).prop_map(String::from),
    ];
    prop::collection::vec(token, 0..12).prop_map(|t| t.concat().into_bytes())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn the_lemma_matcher_finds_what_the_papers_loop_finds(caption in caption_text()) {
        fuzzing::caption_match(&caption).unwrap();
    }

    #[test]
    fn the_lemma_matcher_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        fuzzing::caption_match(&bytes).unwrap();
    }

    #[test]
    fn lemma_tables_and_label_pickles_read_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = fuzzing::lemma_table(&bytes);
        let _ = fuzzing::labels_pickle(&bytes);
    }
}

#[test]
fn hostile_paths_in_yaml_are_errors_not_endless_reads() {
    let e = fuzzing::suite_yaml(b"name: t\nsource: {table: /dev/zero}\n").unwrap_err();
    assert!(e.contains("larger than"), "{e}");
    let e = fuzzing::suite_yaml(b"name: t\nsource: {files: .}\nclasses_file: /dev/zero\n").unwrap_err();
    assert!(e.contains("larger than"), "{e}");
    let e = fuzzing::model_yaml(b"plugin: onnx\nlabels: /dev/zero\n").unwrap_err();
    assert!(e.contains("larger than"), "{e}");
    // The devkit layout's ground truth and meta.mat.
    let e = fuzzing::suite_yaml(b"name: t\nsource: {ground_truth: /dev/zero, images: ., meta: /nonexistent}\n")
        .unwrap_err();
    assert!(e.contains("larger than"), "{e}");
    let d = tempfile::tempdir().unwrap();
    let gt = d.path().join("ground_truth.txt");
    std::fs::write(&gt, "1\n").unwrap();
    let yaml = format!("name: t\nsource: {{ground_truth: {}, images: ., meta: /dev/zero}}\n", gt.display());
    let e = fuzzing::suite_yaml(yaml.as_bytes()).unwrap_err();
    assert!(e.contains("larger than"), "{e}");
    // Deep nesting and alias bombs are refused by the YAML parser.
    let deep = format!("name: {}x{}\n", "[".repeat(10_000), "]".repeat(10_000));
    assert!(fuzzing::suite_yaml(deep.as_bytes()).is_err());
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n\
                d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
                g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\nplugin: [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    assert!(fuzzing::model_yaml(bomb.as_bytes()).is_err());
}

// ---------------------------------------------------------------------------------------------
// Predictions logs

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

fn record() -> impl Strategy<Value = Record> {
    ("[a-zé日本/._ -]{1,12}", 0usize..3, prop::collection::vec(-1e6f32..1e6, 0..5)).prop_map(|(id, st, scores)| {
        Record {
            id,
            wnid: "n01440764".into(),
            status: [Status::Ok, Status::Failed, Status::Missing][st],
            top: scores.iter().map(|_| "n01443537".to_string()).collect(),
            scores: scores.clone(),
            error: (st != 0).then(|| "cannot decode: ünïcödé".to_string()),
            embedding: vec![],
            image: None,
        }
    })
}

fn log_bytes(records: &[Record]) -> (Vec<u8>, Vec<usize>) {
    let mut b = serde_json::to_vec(&header()).unwrap();
    b.push(b'\n');
    let mut ends = Vec::new();
    for r in records {
        b.extend(serde_json::to_vec(r).unwrap());
        b.push(b'\n');
        ends.push(b.len());
    }
    (b, ends)
}

proptest! {
    #![proptest_config(config(128))]

    /// A log torn at any byte (a crash mid-write, even inside a multi-byte character) resumes
    /// with exactly the records whose lines were complete.
    #[test]
    fn a_torn_log_resumes_with_its_complete_lines(records in prop::collection::vec(record(), 0..12), cut in any::<prop::sample::Index>(), junk in prop::collection::vec(prop_oneof![Just(0u8), Just(b' ')], 0..3)) {
        let (full, ends) = log_bytes(&records);
        let at = cut.index(full.len() + 1);
        let mut torn = full[..at].to_vec();
        torn.extend(junk);
        let p = fuzzing::scratch_dir().join("torn.jsonl");
        std::fs::write(&p, &torn).unwrap();
        let (h, got, _) = read_log_lenient(&p).unwrap();
        let whole = ends.iter().filter(|&&e| e <= at).count();
        let header_len = serde_json::to_vec(&header()).unwrap().len() + 1;
        if at >= header_len {
            prop_assert!(h.is_some());
            prop_assert_eq!(&got[..], &records[..whole]);
        } else {
            prop_assert!(h.is_none() && got.is_empty());
        }
        // And resuming it keeps those records and appends cleanly.
        prop_assert!(fuzzing::predictions_log(&torn).is_ok());
    }

    #[test]
    fn mangled_logs_read_or_fail_cleanly(records in prop::collection::vec(record(), 0..6), edits in prop::collection::vec(any::<(prop::sample::Index, u8, u8)>(), 1..4)) {
        let (full, _) = log_bytes(&records);
        let _ = fuzzing::predictions_log(&mangle(String::from_utf8(full).unwrap(), edits));
    }

    #[test]
    fn arbitrary_bytes_are_not_logs(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = fuzzing::predictions_log(&bytes);
    }
}

#[test]
fn a_corrupt_line_in_the_middle_is_refused_not_cut() {
    let recs: Vec<Record> = (0..3)
        .map(|i| Record {
            id: format!("{i}"),
            wnid: "n01440764".into(),
            status: Status::Ok,
            top: vec![],
            scores: vec![],
            embedding: vec![],
            image: None,
            error: None,
        })
        .collect();
    let (mut b, ends) = log_bytes(&recs);
    b[ends[0] + 2] = b'#';
    let e = fuzzing::predictions_log(&b).unwrap_err();
    assert!(e.contains(":3: corrupt record") && e.contains("not a torn last line"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Result files

fn result() -> impl Strategy<Value = RunResult> {
    prop::collection::vec((0u64..50, 0u64..50, 0u64..50, 0.0f64..10.0), 1..6).prop_map(|classes| {
        let mut t = Tally::default();
        let mut w = std::collections::BTreeMap::new();
        for (i, (n, a, b, weight)) in classes.into_iter().enumerate() {
            let wnid = format!("n{:08}", 1440764 + i);
            let (top1, top5) = (a.min(n).min(b), b.min(n));
            t.counts.insert(wnid.clone(), ClassCounts { n, top1, top5 });
            t.status.insert(wnid.clone(), ClassStatus { expected: n + 1, evaluated: n, failed: 1, missing: 0 });
            t.problems.push((format!("{wnid}/bad.JPEG"), "cannot decode".into()));
            w.insert(wnid, weight);
        }
        RunResult::new(vec![EvalResult::from_tally("m", "s", "frequency", &t, &w)])
    })
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn results_round_trip(r in result()) {
        let bytes = serde_json::to_vec_pretty(&r).unwrap();
        prop_assert_eq!(RunResult::from_slice(&bytes).unwrap(), r);
        prop_assert!(fuzzing::result_file(&bytes).is_ok());
    }

    #[test]
    fn mangled_results_read_or_fail_cleanly(r in result(), edits in prop::collection::vec(any::<(prop::sample::Index, u8, u8)>(), 1..4)) {
        let text = serde_json::to_string(&r).unwrap();
        let _ = fuzzing::result_file(&mangle(text, edits));
    }

    #[test]
    fn arbitrary_bytes_are_not_results(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = fuzzing::result_file(&bytes);
    }
}

#[test]
fn a_result_of_another_version_is_refused() {
    // A newer schema this version cannot read is refused, saying so.
    let e = fuzzing::result_file(br#"{"shiftbench_result": 3, "shiftbench_version": "9", "results": 5}"#).unwrap_err();
    assert!(e.contains("result schema version 3 is newer than this shiftbench reads (2)"), "{e}");
    // Not a result at all.
    let e = fuzzing::result_file(br#"{"results": []}"#).unwrap_err();
    assert!(e.contains("no shiftbench_result version field"), "{e}");
}
