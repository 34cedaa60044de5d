//! Text encoders (`--encoder`, `shiftbench::host::text`): the example plugin's toy encoder in a
//! worker process and in this one; a plugin without the capability, an encoder that crashes,
//! hangs, panics or lies, each refused in one sentence naming it. The ONNX export and the
//! reference comparison against sentence-transformers are further down (they need `../shared`
//! and the Python test environment, `.pyenv-test`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{plugin_lib, shiftbench_bin};
use shiftbench::host::text::{open_text_encoder, TextEncoder, TextEncoderOptions};
use shiftbench::host::worker::{Isolation, WorkerOptions};
use shiftbench::host::ModelStopped;

fn worker(batch_timeout: Duration) -> Isolation {
    Isolation::Worker(WorkerOptions { exe: shiftbench_bin(), batch_timeout, load_timeout: Duration::from_secs(60) })
}

fn both() -> [(&'static str, TextEncoderOptions); 2] {
    [
        ("worker", TextEncoderOptions { threads: 1, isolation: worker(Duration::from_secs(60)) }),
        ("in-process", TextEncoderOptions { threads: 1, isolation: Isolation::InProcess }),
    ]
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn the_example_toy_encoder_gives_the_same_normalised_rows_in_a_worker_and_in_process() {
    let queries = [
        "banana which is elongated crescent-shaped yellow fruit with soft sweet flesh",
        "volcano which is a mountain formed by volcanic material",
    ];
    let captions = ["Ripe bananas for sale at the market", "Lava erupting from a volcano at night", "None", ""];
    let mut seen: Vec<Vec<f32>> = vec![];
    for (mode, options) in both() {
        let mut e = open_text_encoder("example", &options).unwrap_or_else(|e| panic!("{mode}: {e:#}"));
        assert_eq!(e.name(), "toy-hash", "{mode}");
        assert_eq!(e.dim(), 256, "{mode}");
        let mut texts: Vec<&str> = queries.to_vec();
        texts.extend(captions);
        let v = e.encode(&texts).unwrap();
        assert_eq!(v.len(), texts.len() * 256);
        let rows: Vec<&[f32]> = v.chunks(256).collect();
        for (t, r) in texts.iter().zip(&rows) {
            let norm = dot(r, r).sqrt();
            if t.is_empty() {
                assert_eq!(norm, 0.0, "an empty text has nothing to normalise");
            } else {
                assert!((norm - 1.0).abs() < 1e-5, "{mode}: {t:?} has norm {norm}");
            }
        }
        // Each caption is closer to its own class's query.
        assert!(
            dot(rows[2], rows[0]) > dot(rows[2], rows[1]) + 0.05,
            "{mode}: {} {}",
            dot(rows[2], rows[0]),
            dot(rows[2], rows[1])
        );
        assert!(
            dot(rows[3], rows[1]) > dot(rows[3], rows[0]) + 0.05,
            "{mode}: {} {}",
            dot(rows[3], rows[1]),
            dot(rows[3], rows[0])
        );
        // Order is kept, and a text's row does not depend on its batch.
        let alone = e.encode(&[texts[3]]).unwrap();
        assert_eq!(&alone[..], rows[3], "{mode}");
        seen.push(v);
    }
    assert_eq!(seen[0], seen[1], "the worker and the in-process encoder agree bit for bit");
}

#[test]
fn a_plugin_without_a_text_encoder_is_refused_in_one_sentence() {
    for (fixture, version) in [("shiftbench_v0_1_1", "0.1.1"), ("shiftbench_legacy", "0.1.0")] {
        let lib = plugin_lib(fixture);
        for (mode, options) in both() {
            let e = format!("{:#}", open_text_encoder(lib.to_str().unwrap(), &options).err().unwrap());
            assert!(e.contains("offers no text encoder"), "{mode}: {e}");
            assert!(e.contains(&format!("interface {version}")), "{mode}: {e}");
            assert!(!e.contains('\n'), "one sentence: {e}");
        }
    }
}

/// A folder with an `encoder.yaml` for the misbehave fixture.
fn misbehaving(dir: &Path, behave: &str, after: u64) -> PathBuf {
    let d = dir.join(behave);
    std::fs::create_dir_all(&d).unwrap();
    let lib = plugin_lib("shiftbench_misbehave");
    std::fs::write(d.join("encoder.yaml"), format!("plugin: {}\nbehave: {behave}\nafter: {after}\n", lib.display()))
        .unwrap();
    d
}

fn encode_err(e: &mut Box<dyn TextEncoder>, texts: &[&str]) -> (String, bool) {
    let err = e.encode(texts).expect_err("must fail");
    (format!("{err:#}"), err.downcast_ref::<ModelStopped>().is_some())
}

#[test]
fn an_encoder_that_crashes_hangs_or_panics_stops_with_one_sentence_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let texts = ["a cat", "a dog"];

    // A segfault after one good call: the worker dies, the run gets a sentence; the encoder stays stopped.
    let dir = misbehaving(d.path(), "segfault", 1);
    let mut e = open_text_encoder(dir.to_str().unwrap(), &both()[0].1).unwrap();
    assert_eq!(e.encode(&texts).unwrap().len(), 8);
    let (msg, stopped) = encode_err(&mut e, &texts);
    assert!(stopped, "{msg}");
    assert!(msg.starts_with("text encoder misbehave-segfault (plugin shiftbench-test-misbehave"), "{msg}");
    assert!(msg.contains("crashed while encoding a batch of 2 texts"), "{msg}");
    assert!(msg.contains("SIGSEGV"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert_eq!(encode_err(&mut e, &texts).0, msg, "a stopped encoder says the same again");

    // A hang: the watchdog kills it after the batch timeout.
    let dir = misbehaving(d.path(), "hang", 0);
    let options = TextEncoderOptions { threads: 1, isolation: worker(Duration::from_millis(500)) };
    let mut e = open_text_encoder(dir.to_str().unwrap(), &options).unwrap();
    let (msg, stopped) = encode_err(&mut e, &texts);
    assert!(stopped && msg.contains("did not answer within 0.5 s (--batch-timeout)"), "{msg}");

    // A panic, in each mode: caught at the boundary; the encoder is unusable after it.
    let dir = misbehaving(d.path(), "panic", 0);
    for (mode, options) in both() {
        let mut e = open_text_encoder(dir.to_str().unwrap(), &options).unwrap();
        let (msg, stopped) = encode_err(&mut e, &texts);
        assert!(stopped, "{mode}: {msg}");
        assert!(
            msg.contains("text encoder misbehave-panic (plugin shiftbench-test-misbehave")
                && msg.contains("stopped: plugin panicked in encode: misbehave: panicking in encode as asked"),
            "{mode}: {msg}"
        );
    }
}

#[test]
fn errors_lies_and_load_failures_are_sentences() {
    let d = tempfile::tempdir().unwrap();
    let texts = ["a cat", "a dog"];
    for (mode, options) in both() {
        // An ordinary error fails the call, not the encoder.
        let dir = misbehaving(d.path(), "error", 0);
        let mut e = open_text_encoder(dir.to_str().unwrap(), &options).unwrap();
        let (msg, stopped) = encode_err(&mut e, &texts);
        assert!(!stopped, "{mode}: {msg}");
        assert!(
            msg.starts_with("text encoder misbehave-error (plugin shiftbench-test-misbehave")
                && msg.ends_with("failed on a batch of 2 texts: misbehave: refusing 2 texts as asked"),
            "{mode}: {msg}"
        );

        let dir = misbehaving(d.path(), "wrong-length", 0);
        let mut e = open_text_encoder(dir.to_str().unwrap(), &options).unwrap();
        let (msg, _) = encode_err(&mut e, &texts);
        assert!(
            msg.contains("broke the interface: it returned 9 values for 2 texts of 4 values each"),
            "{mode}: {msg}"
        );

        let dir = misbehaving(d.path(), "nan", 0);
        let mut e = open_text_encoder(dir.to_str().unwrap(), &options).unwrap();
        let (msg, _) = encode_err(&mut e, &texts);
        assert!(msg.contains("returned a value that is not finite (NaN) for the text \"a cat\""), "{mode}: {msg}");

        let dir = misbehaving(d.path(), "panic-load", 0);
        let msg = format!("{:#}", open_text_encoder(dir.to_str().unwrap(), &options).err().unwrap());
        assert!(
            msg.contains("could not load its text encoder: plugin panicked in load: misbehave: panicking in load"),
            "{mode}: {msg}"
        );
    }
    // A crash while loading, in a worker.
    let dir = misbehaving(d.path(), "segfault-load", 0);
    let msg = format!("{:#}", open_text_encoder(dir.to_str().unwrap(), &both()[0].1).err().unwrap());
    assert!(msg.contains("crashed while loading the text encoder") && msg.contains("SIGSEGV"), "{msg}");
    // An encoder.yaml naming a plugin that does not exist.
    let bad = d.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("encoder.yaml"), "plugin: no-such-plugin\n").unwrap();
    let msg = format!("{:#}", open_text_encoder(bad.to_str().unwrap(), &both()[1].1).err().unwrap());
    assert!(msg.contains("names plugin \"no-such-plugin\"") && msg.contains("no plugin named"), "{msg}");
}
