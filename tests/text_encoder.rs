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
    for (fixture, version) in
        [("shiftbench_v0_1_2", "0.1.2"), ("shiftbench_v0_1_1", "0.1.1"), ("shiftbench_legacy", "0.1.0")]
    {
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
    assert!(msg.contains("crashed while loading its text encoder") && msg.contains("SIGSEGV"), "{msg}");
    // An encoder.yaml naming a plugin that does not exist.
    let bad = d.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("encoder.yaml"), "plugin: no-such-plugin\n").unwrap();
    let msg = format!("{:#}", open_text_encoder(bad.to_str().unwrap(), &both()[1].1).err().unwrap());
    assert!(msg.contains("names plugin \"no-such-plugin\"") && msg.contains("no plugin named"), "{msg}");
}

// ---- The ONNX plugin's encoder: export folders, and the reference against sentence-transformers.

#[test]
fn an_export_folder_missing_a_file_is_one_sentence_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("all-mpnet-base-v2");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("encoder.yaml"),
        format!(
            "plugin: {}\nname: x\nmodel: model.onnx\ntokenizer: tokenizer.json\nmax_seq_length: 384\n",
            plugin_lib("shiftbench_onnx").display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("model.onnx"), b"").unwrap();
    for (mode, options) in both() {
        let e = format!("{:#}", open_text_encoder(dir.to_str().unwrap(), &options).err().unwrap());
        assert!(
            e.contains(&format!(
                "text encoder folder {}: tokenizer.json (its tokenizer:) does not exist",
                dir.display()
            )),
            "{mode}: {e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }
}

/// Caption/query pairs of real texts nobody here wrote: WordNet definitions as captions. The
/// first `own` are the definitions of LAIONet classes paired with their own class's query (high
/// similarities); the next `other` are definitions of other synsets, each paired with a query
/// picked by its position (low ones); every 25th caption is the paper's null caption `None`.
fn pairs(data: &Path, own: usize, other: usize) -> (Vec<String>, Vec<String>) {
    let q = std::fs::read_to_string(data.join("paper/laionet_name_def_queries.tsv")).unwrap();
    let queries: Vec<(String, String)> = q
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[3].to_string())
        })
        .collect();
    assert_eq!(queries.len(), 1000);
    let by_wnid: std::collections::HashMap<&str, &str> =
        queries.iter().map(|(w, q)| (w.as_str(), q.as_str())).collect();
    let defs = std::fs::read_to_string(data.join("classes/imagenet_synset_to_definition.txt")).unwrap();
    let defs: Vec<(&str, &str)> = defs.lines().filter_map(|l| l.split_once('\t')).collect();
    let (mut captions, mut paired) = (vec![], vec![]);
    let step_own = (1000 / own.max(1)).max(1);
    for (w, d) in defs.iter().filter(|(w, _)| by_wnid.contains_key(w)).step_by(step_own).take(own) {
        captions.push(d.to_string());
        paired.push(by_wnid[w].to_string());
    }
    let others: Vec<&(&str, &str)> = defs.iter().filter(|(w, _)| !by_wnid.contains_key(w)).collect();
    for (i, (_, d)) in others.iter().step_by((others.len() / other.max(1)).max(1)).take(other).enumerate() {
        captions.push(d.to_string());
        paired.push(queries[(i * 7919) % 1000].1.clone());
    }
    for c in captions.iter_mut().step_by(25) {
        *c = "None".to_string();
    }
    (captions, paired)
}

/// shiftbench's similarities (the encoder through the host, in a worker) against the Python
/// reference's, for the model `name`: all within 1e-4.
fn matches_the_reference(name: &str, own: usize, other: usize) {
    let test = "text_encoder reference";
    let Some(data) = common::shared_data(test) else { return };
    let Some(env) = common::pyenv(test) else { return };
    let dir = common::exported_text_encoder(&env, name);
    let (captions, queries) = pairs(&data, own, other);
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("pairs.json");
    std::fs::write(&input, serde_json::json!({"captions": captions, "queries": queries}).to_string()).unwrap();
    let output = d.path().join("reference.json");
    let o = std::process::Command::new(env.join("venv/bin/python"))
        .arg(common::repo().join("bench/text_encoder_reference.py"))
        .arg(env.join("models").join(name))
        .arg(&input)
        .arg(&output)
        .output()
        .unwrap();
    assert!(o.status.success(), "reference failed: {}", String::from_utf8_lossy(&o.stderr));
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    let reference: Vec<f64> = reference["similarity"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();

    let options = TextEncoderOptions { threads: 0, isolation: worker(Duration::from_secs(600)) };
    let mut e = open_text_encoder(dir.to_str().unwrap(), &options).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(e.name(), name);
    let c: Vec<&str> = captions.iter().map(String::as_str).collect();
    let q: Vec<&str> = queries.iter().map(String::as_str).collect();
    let (ce, qe) = (e.encode(&c).unwrap(), e.encode(&q).unwrap());
    let dim = e.dim();
    let ours: Vec<f64> = (0..c.len()).map(|i| dot(&ce[i * dim..][..dim], &qe[i * dim..][..dim]) as f64).collect();
    let (mut worst, mut at) = (0f64, 0);
    for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
        if (a - b).abs() > worst {
            (worst, at) = ((a - b).abs(), i);
        }
    }
    let high = ours.iter().filter(|&&s| s > 0.58).count();
    eprintln!(
        "{name}: {} caption/query pairs ({high} above the paper's 0.58), largest difference from sentence-transformers {worst:.2e} (pair {at}: {:?})",
        ours.len(),
        captions[at]
    );
    assert_eq!(ours.len(), reference.len());
    assert!(high > own / 2, "the pairs of a class's own definition should mostly be similar: {high}");
    assert!(worst <= 1e-4, "{name}: pair {at} differs by {worst:.2e}: {} vs {}", ours[at], reference[at]);
}

#[test]
fn all_minilm_l6_v2_matches_sentence_transformers_within_1e_4() {
    matches_the_reference("all-MiniLM-L6-v2", 1000, 1000);
}

#[test]
fn all_mpnet_base_v2_matches_sentence_transformers_within_1e_4() {
    matches_the_reference("all-mpnet-base-v2", 300, 300);
}

/// The CLIP path of the export (the text tower, the end-of-text token's state, `text_projection`)
/// on a small CLIP with random weights made here (no CLIP checkpoint is available offline),
/// with all-MiniLM-L6-v2's tokenizer (its `[SEP]` as the end-of-text token): the exported encoder
/// through the host against `CLIPModel.get_text_features` in the reference script.
#[test]
fn a_small_random_clip_exports_and_matches_transformers_within_1e_4() {
    let test = "text_encoder clip";
    let Some(data) = common::shared_data(test) else { return };
    let Some(env) = common::pyenv(test) else { return };
    let d = tempfile::tempdir().unwrap();
    let clip = d.path().join("tiny-clip");
    let make = r#"
import sys, torch
from transformers import AutoTokenizer, CLIPConfig, CLIPModel
tok = AutoTokenizer.from_pretrained(sys.argv[1])
torch.manual_seed(0)
text = dict(vocab_size=tok.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=77, eos_token_id=tok.sep_token_id,
            pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id)
vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=16)
CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=48)).save_pretrained(sys.argv[2])
tok.save_pretrained(sys.argv[2])
"#;
    let python = env.join("venv/bin/python");
    let o = std::process::Command::new(&python)
        .args(["-c", make])
        .arg(env.join("models/all-MiniLM-L6-v2"))
        .arg(&clip)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dir = d.path().join("tiny-clip-onnx");
    let o = std::process::Command::new(&python)
        .arg(common::repo().join("scripts/export-text-encoder.py"))
        .arg(&clip)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "export failed: {}", String::from_utf8_lossy(&o.stderr));
    let yaml = std::fs::read_to_string(dir.join("encoder.yaml")).unwrap();
    assert!(yaml.contains("kind: clip") && yaml.contains("max_seq_length: 77"), "{yaml}");

    let (captions, queries) = pairs(&data, 100, 100);
    let input = d.path().join("pairs.json");
    std::fs::write(&input, serde_json::json!({"captions": captions, "queries": queries}).to_string()).unwrap();
    let output = d.path().join("reference.json");
    let o = std::process::Command::new(&python)
        .arg(common::repo().join("bench/text_encoder_reference.py"))
        .arg(&clip)
        .arg(&input)
        .arg(&output)
        .output()
        .unwrap();
    assert!(o.status.success(), "reference failed: {}", String::from_utf8_lossy(&o.stderr));
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    let reference: Vec<f64> = reference["similarity"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let mut e = open_text_encoder(dir.to_str().unwrap(), &both()[1].1).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!((e.name(), e.dim()), ("tiny-clip", 48));
    let c: Vec<&str> = captions.iter().map(String::as_str).collect();
    let q: Vec<&str> = queries.iter().map(String::as_str).collect();
    let (ce, qe) = (e.encode(&c).unwrap(), e.encode(&q).unwrap());
    let worst = (0..c.len())
        .map(|i| (dot(&ce[i * 48..][..48], &qe[i * 48..][..48]) as f64 - reference[i]).abs())
        .fold(0f64, f64::max);
    eprintln!("tiny random CLIP: {} pairs, largest difference from transformers {worst:.2e}", c.len());
    assert!(worst <= 1e-4, "{worst}");
}
