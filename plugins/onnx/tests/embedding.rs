//! `embedding: <tensor>` on the real models in ../shared/data (skipped when that folder is
//! absent). Needs ONNX Runtime installed by scripts/setup-onnxruntime.sh (or ORT_DYLIB_PATH).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use common::*;
use shiftbench_onnx::graph::{fields, write_bytes_field, write_varint_field, Value};
use shiftbench_onnx::OnnxClassifier;
use shiftbench_plugin::Classifier;

/// Six views of real photo content from golden/fish.csv (CHW, BGR, 0-255): the photo, its
/// mirror image, and each quadrant enlarged 2x. Different images, with different top classes.
fn fish_views(data: &Path) -> Vec<Vec<f32>> {
    let fish = fish(data);
    let (hw, side) = (224 * 224, 224);
    let mirror: Vec<f32> = (0..3 * hw).map(|i| fish[i - i % side + (side - 1 - i % side)]).collect();
    let mut views = vec![fish.clone(), mirror];
    for (qy, qx) in [(0, 0), (0, 112), (112, 0), (112, 112)] {
        let mut v = vec![0f32; 3 * hw];
        for c in 0..3 {
            for y in 0..side {
                for x in 0..side {
                    v[c * hw + y * side + x] = fish[c * hw + (qy + y / 2) * side + qx + x / 2];
                }
            }
        }
        views.push(v);
    }
    views
}

fn softmax(v: &[f32]) -> Vec<f32> {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = v.iter().map(|x| f64::from(x - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|x| (x / sum) as f32).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// SqueezeNet's `pool10_1` is the layer its softmax reads: softmax(embedding) must be the
/// model's own probabilities, image by image (a wrong tensor, or rows mixed up, would not be).
fn squeezenet_pool10(test: &str, file: &str, tol: f32) {
    let Some(data) = data_dir(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = data.join("models").join(file);
    let y = write_yaml(dir.path(), "m.yaml", &squeezenet_yaml(&model, "embedding: pool10_1\n"));
    let mut m = load(&y).unwrap();
    assert_eq!(m.embedding_len(), 1000);
    assert_eq!(m.embedding_output(), Some("pool10_1"));
    let d = m.describe();
    println!("{d}");
    assert!(
        d.contains("embedding `pool10_1` (the output of GlobalAveragePool)") && d.contains("1000 values per image"),
        "{d}"
    );
    // The added output is not listed as one of the model's.
    let first = d.lines().next().unwrap();
    assert!(first.contains("outputs `softmaxout_1`") && !first.contains("pool10_1"), "{d}");

    let mut tops = Vec::new();
    let mut worst = 0f32;
    for img in fish_views(&data) {
        let e = m.embed(&img, 1).unwrap();
        assert_eq!(e.len(), 1000);
        assert!(e.iter().all(|v| v.is_finite()));
        let p = m.infer(&img, 1).unwrap();
        let diff = max_abs_diff(&softmax(&e), &p);
        worst = worst.max(diff);
        assert!(diff <= tol, "{file}: softmax(pool10_1) differs from softmaxout_1 by {diff}");
        assert_eq!(argmax(&e), argmax(&p));
        tops.push(argmax(&p));
    }
    println!("{file}: softmax(pool10_1) vs softmaxout_1: max abs diff {worst:e}; top-1 per view {tops:?}");
    tops.sort_unstable();
    tops.dedup();
    assert!(tops.len() >= 3, "the views should not all look alike to the model: {tops:?}");

    // The model's batch is fixed at 1, for embeddings as for scores.
    let two = fish_views(&data)[..2].concat();
    let e = m.embed(&two, 2).unwrap_err();
    assert!(e.contains("at most 1") && e.starts_with("embed got"), "{e}");
    let e = m.embed(&two[..10], 1).unwrap_err();
    assert!(e.contains("150528 per image"), "{e}");
    assert_eq!(m.embed(&[], 0).unwrap(), Vec::<f32>::new());
}

#[test]
fn squeezenet_fp32_pool10_is_what_its_softmax_reads() {
    squeezenet_pool10("squeezenet_fp32_pool10_is_what_its_softmax_reads", "squeezenet1.1-fp32.onnx", 1e-5);
}

#[test]
fn squeezenet_fp16_pool10_is_what_its_softmax_reads() {
    // An f16 softmax: a few f16 steps (4.9e-4 near 1) apart on the largest probability.
    squeezenet_pool10("squeezenet_fp16_pool10_is_what_its_softmax_reads", "squeezenet1.1-fp16.onnx", 5e-3);
}

/// The scores are the same bits with and without `embedding:`, and with the embedding being
/// the scores output itself the two calls agree.
#[test]
fn infer_is_unchanged_by_an_embedding() {
    let Some(data) = data_dir("infer_is_unchanged_by_an_embedding") else { return };
    let dir = tempfile::tempdir().unwrap();
    let views = fish_views(&data);
    for file in ["squeezenet1.1-fp32.onnx", "squeezenet1.1-fp16.onnx"] {
        let model = data.join("models").join(file);
        let plain = write_yaml(dir.path(), "plain.yaml", &squeezenet_yaml(&model, ""));
        let with = write_yaml(dir.path(), "with.yaml", &squeezenet_yaml(&model, "embedding: pool10_1\n"));
        let own = write_yaml(dir.path(), "own.yaml", &squeezenet_yaml(&model, "embedding: softmaxout_1\n"));
        let (mut a, mut b, mut c) = (load(&plain).unwrap(), load(&with).unwrap(), load(&own).unwrap());
        assert_eq!(a.embedding_len(), 0);
        assert!(a.embed(&views[0], 1).unwrap_err().contains("has no embedding"));
        assert_eq!(a.card().labels, b.card().labels);
        assert_eq!(a.describe().lines().next(), b.describe().lines().next());
        for v in &views {
            let s = a.infer(v, 1).unwrap();
            assert_eq!(bits(&s), bits(&b.infer(v, 1).unwrap()), "{file}: infer changed by embedding: pool10_1");
            assert_eq!(bits(&s), bits(&c.infer(v, 1).unwrap()), "{file}: infer changed by embedding: softmaxout_1");
            assert_eq!(bits(&s), bits(&c.embed(v, 1).unwrap()), "{file}: embedding: softmaxout_1 is not the scores");
        }
    }
    let model = data.join("models/mobilenetv2-12-int8.onnx");
    let plain = write_yaml(dir.path(), "mb.yaml", &format!("plugin: onnx\nmodel: {}\n", model.display()));
    let with = write_yaml(
        dir.path(),
        "mbe.yaml",
        &format!("plugin: onnx\nmodel: {}\nembedding: 464_quantized\n", model.display()),
    );
    let (mut a, mut b) = (load(&plain).unwrap(), load(&with).unwrap());
    let imgs = mobilenet_views(&data);
    assert_eq!(bits(&a.infer(&imgs.concat(), 3).unwrap()), bits(&b.infer(&imgs.concat(), 3).unwrap()));
    assert_eq!(bits(&a.infer(&imgs[1], 1).unwrap()), bits(&b.infer(&imgs[1], 1).unwrap()));
}

/// Three of the fish views normalised as torchvision does (RGB, mean/std) for MobileNetV2.
fn mobilenet_views(data: &Path) -> Vec<Vec<f32>> {
    let hw = 224 * 224;
    let mean = [0.485f32, 0.456, 0.406];
    let std = [0.229f32, 0.224, 0.225];
    fish_views(data)
        .into_iter()
        .take(3)
        .map(|bgr| {
            let mut rgb = vec![0f32; 3 * hw];
            for c in 0..3 {
                for i in 0..hw {
                    rgb[c * hw + i] = (bgr[(2 - c) * hw + i] / 255.0 - mean[c]) / std[c];
                }
            }
            rgb
        })
        .collect()
}

/// An initializer of the model file as f32 values (f32, u8 or i8; raw or typed data).
fn initializers(model: &[u8], names: &[&str]) -> HashMap<String, Vec<f32>> {
    fn bytes(v: Value<'_>) -> &[u8] {
        match v {
            Value::Bytes(b) => b,
            _ => panic!("not length-delimited"),
        }
    }
    let mut out = HashMap::new();
    for f in fields(model).map(Result::unwrap).filter(|f| f.number == 7) {
        for t in fields(bytes(f.value)).map(Result::unwrap).filter(|f| f.number == 5) {
            let (mut name, mut ty, mut vals) = (String::new(), 0, Vec::new());
            let mut raw: &[u8] = &[];
            for x in fields(bytes(t.value)).map(Result::unwrap) {
                match (x.number, x.value) {
                    (2, Value::Varint(v)) => ty = v,
                    (8, v) => name = String::from_utf8(bytes(v).to_vec()).unwrap(),
                    (9, v) => raw = bytes(v),
                    // float_data, packed.
                    (4, v) => vals.extend(bytes(v).chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()))),
                    // int32_data, packed varints (u8/i8 values).
                    (5, v) => {
                        let b = bytes(v);
                        let mut pos = 0;
                        while pos < b.len() {
                            vals.push(shiftbench_onnx::graph::read_varint(b, &mut pos).unwrap() as i64 as i32 as f32);
                        }
                    }
                    _ => {}
                }
            }
            if !names.contains(&name.as_str()) {
                continue;
            }
            if !raw.is_empty() {
                vals = match ty {
                    1 => raw.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
                    2 => raw.iter().map(|&b| f32::from(b)).collect(),
                    3 => raw.iter().map(|&b| f32::from(b as i8)).collect(),
                    _ => panic!("{name}: type {ty}"),
                };
            }
            out.insert(name, vals);
        }
    }
    out
}

/// MobileNetV2 int8's globally pooled features (`464_quantized`, u8, dequantized by the plugin):
/// 1280 values per image; a batch of 2 is two batches of 1; and the model's own classifier
/// (dequantized weights and bias) applied to the embedding gives the model's logits, which it
/// would not for any other tensor.
#[test]
fn mobilenet_int8_pooled_features() {
    let Some(data) = data_dir("mobilenet_int8_pooled_features") else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = data.join("models/mobilenetv2-12-int8.onnx");
    let y = write_yaml(
        dir.path(),
        "m.yaml",
        &format!("plugin: onnx\nmodel: {}\nembedding: 464_quantized\n", model.display()),
    );
    let mut m = load(&y).unwrap();
    assert_eq!(m.embedding_len(), 1280);
    let d = m.describe();
    println!("{d}");
    assert!(d.contains("embedding `464_quantized` (the output of QLinearGlobalAveragePool"), "{d}");
    assert!(
        d.contains("dequantized with `464_scale` and `464_zero_point`") && d.contains("1280 values per image"),
        "{d}"
    );

    let imgs = mobilenet_views(&data);
    let two = m.embed(&imgs[..2].concat(), 2).unwrap();
    assert_eq!(two.len(), 2 * 1280);
    let ones: Vec<f32> = imgs[..2].iter().flat_map(|x| m.embed(x, 1).unwrap()).collect();
    assert_eq!(bits(&two), bits(&ones), "a batch of 2 differs from 2 batches of 1");
    assert!(two.iter().all(|v| v.is_finite() && *v >= 0.0), "pooled ReLU6 features are finite and >= 0");
    assert!(max_abs_diff(&two[..1280], &two[1280..]) > 1e-2, "two different images, two embeddings");

    // The classifier: logits = emb . W + b, with W int8 [1280, 1000] per-column scale and zero
    // point, b u8 with a scale and zero point; ONNX Runtime rounds the result to the output's
    // quantization step, so they agree to a few steps.
    let bytes = std::fs::read(&model).unwrap();
    let names = [
        "classifier.1.weight_quantized",
        "classifier.1.weight_scale",
        "classifier.1.weight_zero_point",
        "classifier.1.bias_quantized",
        "classifier.1.bias_scale",
        "classifier.1.bias_zero_point",
        "output_scale",
    ];
    let t = initializers(&bytes, &names);
    assert_eq!(t.len(), names.len(), "{:?}", t.keys().collect::<Vec<_>>());
    let (w, ws, wz) = (&t[names[0]], &t[names[1]], &t[names[2]]);
    let (b, bs, bz) = (&t[names[3]], t[names[4]][0], t[names[5]][0]);
    let step = t[names[6]][0];
    assert_eq!((w.len(), ws.len(), wz.len(), b.len()), (1_280_000, 1000, 1000, 1000));
    let logits = m.infer(&imgs.concat(), 3).unwrap();
    let embs = m.embed(&imgs.concat(), 3).unwrap();
    let mut worst = 0f32;
    for (img, (e, l)) in embs.chunks(1280).zip(logits.chunks(1000)).enumerate() {
        let mine: Vec<f32> = (0..1000)
            .map(|j| {
                let dot: f64 = (0..1280).map(|i| f64::from(e[i]) * f64::from((w[i * 1000 + j] - wz[j]) * ws[j])).sum();
                dot as f32 + (b[j] - bz) * bs
            })
            .collect();
        let diff = max_abs_diff(&mine, l);
        worst = worst.max(diff);
        assert!(
            diff <= 4.0 * step,
            "image {img}: classifier(embedding) differs from the logits by {diff} (step {step})"
        );
        assert_eq!(argmax(&mine), argmax(l), "image {img}");
    }
    println!("mobilenet int8: classifier(464_quantized) vs logits: max abs diff {worst} (output step {step})");
}

#[test]
fn unknown_names_list_real_candidates() {
    let Some(data) = data_dir("unknown_names_list_real_candidates") else { return };
    let dir = tempfile::tempdir().unwrap();
    let sq = data.join("models/squeezenet1.1-fp32.onnx");
    let y = write_yaml(dir.path(), "sq.yaml", &squeezenet_yaml(&sq, "embedding: pool10\n"));
    let e = load_err(&y);
    println!("{e}");
    assert!(
        e.contains("sq.yaml: embedding `pool10` is not a tensor of the model") && e.contains("squeezenet1.1-fp32.onnx"),
        "{e}"
    );
    assert!(e.contains("such as (closest first, then from the output back) `pool10_1` (GlobalAveragePool), "), "{e}");
    assert!(e.contains("`conv10_2` (Relu)") && e.contains(" more)"), "{e}");
    assert_eq!(e.lines().count(), 1);

    let y = write_yaml(dir.path(), "w.yaml", &squeezenet_yaml(&sq, "embedding: conv10_w_0\n"));
    let e = load_err(&y);
    assert!(e.contains("`conv10_w_0` is a weight"), "{e}");

    // MobileNetV2 int8's tensors are numbers: the operator's name finds the pooled one.
    let mb = data.join("models/mobilenetv2-12-int8.onnx");
    let y = write_yaml(dir.path(), "mb.yaml", &format!("plugin: onnx\nmodel: {}\nembedding: pool\n", mb.display()));
    let e = load_err(&y);
    println!("{e}");
    assert!(e.contains("back) `464_quantized` (QLinearGlobalAveragePool), `output` (DequantizeLinear)"), "{e}");
    // Shape arithmetic is no candidate.
    assert!(!e.contains("`465`"), "{e}");
}

/// A copy of `model` in `dir` with every initializer's data moved to `weights.bin`.
fn with_external_data(model: &[u8], dir: &Path) -> std::path::PathBuf {
    let mut weights = Vec::new();
    let mut out = Vec::new();
    for f in fields(model).map(Result::unwrap) {
        let Value::Bytes(g) = f.value else {
            out.extend_from_slice(f.raw);
            continue;
        };
        if f.number != 7 {
            out.extend_from_slice(f.raw);
            continue;
        }
        let mut graph = Vec::new();
        for x in fields(g).map(Result::unwrap) {
            match (x.number, x.value) {
                (5, Value::Bytes(t)) => {
                    let mut tensor = Vec::new();
                    let mut raw = None;
                    for y in fields(t).map(Result::unwrap) {
                        match (y.number, y.value) {
                            (9, Value::Bytes(r)) => raw = Some(r),
                            _ => tensor.extend_from_slice(y.raw),
                        }
                    }
                    let raw = raw.expect("raw_data");
                    for (k, v) in [
                        ("location", "weights.bin".to_string()),
                        ("offset", weights.len().to_string()),
                        ("length", raw.len().to_string()),
                    ] {
                        let mut entry = Vec::new();
                        write_bytes_field(&mut entry, 1, k.as_bytes());
                        write_bytes_field(&mut entry, 2, v.as_bytes());
                        write_bytes_field(&mut tensor, 13, &entry);
                    }
                    write_varint_field(&mut tensor, 14, 1);
                    weights.extend_from_slice(raw);
                    write_bytes_field(&mut graph, 5, &tensor);
                }
                _ => graph.extend_from_slice(x.raw),
            }
        }
        write_bytes_field(&mut out, 7, &graph);
    }
    std::fs::write(dir.join("weights.bin"), &weights).unwrap();
    let p = dir.join("external.onnx");
    std::fs::write(&p, &out).unwrap();
    assert!(out.len() < model.len() / 10, "the weights moved out");
    p
}

/// A model whose weights are in an external data file beside it: the changed copy is loaded
/// from memory with the model's folder as the place to find them.
#[test]
fn external_data_models_work_with_an_embedding() {
    let Some(data) = data_dir("external_data_models_work_with_an_embedding") else { return };
    let dir = tempfile::tempdir().unwrap();
    let sq = data.join("models/squeezenet1.1-fp32.onnx");
    let ext = with_external_data(&std::fs::read(&sq).unwrap(), dir.path());
    assert!(shiftbench_onnx::graph::Graph::parse(&std::fs::read(&ext).unwrap()).unwrap().external_data);
    // The YAML lives elsewhere, and the working directory is neither.
    let yamls = tempfile::tempdir().unwrap();
    let a = write_yaml(yamls.path(), "a.yaml", &squeezenet_yaml(&sq, "embedding: pool10_1\n"));
    let b = write_yaml(yamls.path(), "b.yaml", &squeezenet_yaml(&ext, "embedding: pool10_1\n"));
    let (mut a, mut b) = (load(&a).unwrap(), load(&b).unwrap());
    let fish = fish(&data);
    assert_eq!(bits(&a.embed(&fish, 1).unwrap()), bits(&b.embed(&fish, 1).unwrap()));
    assert_eq!(bits(&a.infer(&fish, 1).unwrap()), bits(&b.infer(&fish, 1).unwrap()));
    // Without the weights file it fails, saying so.
    std::fs::remove_file(dir.path().join("weights.bin")).unwrap();
    let c = write_yaml(yamls.path(), "c.yaml", &squeezenet_yaml(&ext, "embedding: pool10_1\n"));
    let e = load_err(&c);
    println!("{e}");
    assert!(e.contains("ONNX Runtime cannot load the model") && e.contains("external.onnx"), "{e}");
}

#[test]
fn the_example_yaml_and_non_finite_embeddings() {
    let Some(data) = data_dir("the_example_yaml_and_non_finite_embeddings") else { return };
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut m = load(&ex.join("squeezenet1.1-fp32-embedding.yaml")).unwrap();
    let mut plain = load(&ex.join("squeezenet1.1-fp32.yaml")).unwrap();
    assert_eq!((m.embedding_len(), m.embedding_output()), (1000, Some("pool10_1")));
    let fish = fish(&data);
    assert_eq!(bits(&m.infer(&fish, 1).unwrap()), bits(&plain.infer(&fish, 1).unwrap()));
    assert_eq!(argmax(&m.embed(&fish, 1).unwrap()), 0);

    // An inner tensor of several axes is flattened per image; NaN in it is an error, not values.
    let dir = tempfile::tempdir().unwrap();
    let sq = data.join("models/squeezenet1.1-fp32.onnx");
    let y = write_yaml(dir.path(), "conv.yaml", &squeezenet_yaml(&sq, "embedding: conv10_1\n"));
    let mut m = load(&y).unwrap();
    assert_eq!(m.embedding_len(), 1000 * 13 * 13);
    assert!(m.describe().contains("f32 [1, 1000, 13, 13], 169000 values per image"), "{}", m.describe());
    assert_eq!(m.embed(&fish, 1).unwrap().len(), 169_000);
    let e = m.embed(&vec![f32::NAN; fish.len()], 1).unwrap_err();
    println!("{e}");
    assert!(e.starts_with("the embedding `conv10_1` of image 1 of 1 has a non-finite value (NaN"), "{e}");
}

/// Load times with and without an embedding (printed, not asserted).
#[test]
fn load_time_with_and_without_an_embedding() {
    let Some(data) = data_dir("load_time_with_and_without_an_embedding") else { return };
    let dir = tempfile::tempdir().unwrap();
    let time = |y: &Path| {
        let t = Instant::now();
        let m: OnnxClassifier = load(y).unwrap();
        drop(m);
        t.elapsed().as_secs_f64() * 1e3
    };
    for (file, emb, yaml) in [
        ("squeezenet1.1-fp32.onnx", "pool10_1", true),
        ("squeezenet1.1-fp16.onnx", "pool10_1", true),
        ("mobilenetv2-12-int8.onnx", "464_quantized", false),
    ] {
        let model = data.join("models").join(file);
        let body = |extra: &str| {
            if yaml {
                squeezenet_yaml(&model, extra)
            } else {
                format!("plugin: onnx\nmodel: {}\n{extra}", model.display())
            }
        };
        let plain = write_yaml(dir.path(), "p.yaml", &body(""));
        let with = write_yaml(dir.path(), "e.yaml", &body(&format!("embedding: {emb}\n")));
        time(&plain); // warm the runtime and the file cache
        let best = |y: &Path| (0..3).map(|_| time(y)).fold(f64::INFINITY, f64::min);
        println!("{file}: load {:.1} ms, with embedding {emb}: {:.1} ms (best of 3)", best(&plain), best(&with));
    }
}
