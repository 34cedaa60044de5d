//! Load errors that need neither real data nor a working runtime. This binary never loads ONNX
//! Runtime successfully, so a wrong library is always reported as such.

mod common;

use common::*;

#[test]
fn missing_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let y = write_yaml(dir.path(), "m.yaml", "plugin: onnx\nmodel: nowhere.onnx\n");
    let e = load_err(&y);
    assert!(e.contains("nowhere.onnx") && e.contains("does not exist") && e.contains("m.yaml"), "{e}");
}

#[test]
fn missing_runtime_library_is_one_clear_sentence() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.onnx"), b"not used").unwrap();
    let y = write_yaml(
        dir.path(),
        "m.yaml",
        "plugin: onnx\nmodel: m.onnx\noptions:\n  ort_library: no/such/libonnxruntime.so.1.31.1\n",
    );
    let e = load_err(&y);
    println!("{e}");
    assert!(e.starts_with("ONNX Runtime library "), "{e}");
    assert!(e.contains("no/such/libonnxruntime.so.1.31.1") && e.contains("does not exist"), "{e}");
    assert!(e.contains("run scripts/setup-onnxruntime.sh"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn a_file_that_is_not_onnx_runtime_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.onnx"), b"not used").unwrap();
    std::fs::write(dir.path().join("fake.so"), b"this is not a shared library").unwrap();
    let y = write_yaml(dir.path(), "m.yaml", "plugin: onnx\nmodel: m.onnx\noptions:\n  ort_library: fake.so\n");
    let e = load_err(&y);
    println!("{e}");
    assert!(e.contains("fake.so") && e.contains("is not a usable ONNX Runtime 1.31.1 library"), "{e}");
    assert!(e.contains("run scripts/setup-onnxruntime.sh"), "{e}");
}

#[test]
fn device_cuda_without_the_feature_is_refused() {
    if cfg!(feature = "cuda") {
        println!("SKIP device_cuda_without_the_feature_is_refused: built with the cuda feature");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.onnx"), b"not used").unwrap();
    let y = write_yaml(dir.path(), "m.yaml", "plugin: onnx\nmodel: m.onnx\noptions:\n  device: cuda\n");
    let e = load_err(&y);
    assert!(e.contains("--features cuda"), "{e}");
}

/// A little ONNX graph (x -> Conv -> Relu -> GlobalAveragePool -> Flatten), written by hand.
fn tiny_onnx() -> Vec<u8> {
    use shiftbench_onnx::graph::{node_field, output_field, write_bytes_field, Node};
    let node = |op: &str, inputs: &[&str], output: &str| Node {
        op_type: op.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: vec![output.to_string()],
        ..Node::default()
    };
    let mut g = Vec::new();
    for n in [
        node("Conv", &["x", "w"], "conv"),
        node("Relu", &["conv"], "relu"),
        node("GlobalAveragePool", &["relu"], "pooled"),
        node("Flatten", &["pooled"], "logits"),
    ] {
        g.extend(node_field(&n));
    }
    let mut w = Vec::new();
    write_bytes_field(&mut w, 8, b"w");
    write_bytes_field(&mut g, 5, &w);
    let mut x = Vec::new();
    write_bytes_field(&mut x, 1, b"x");
    write_bytes_field(&mut g, 11, &x);
    g.extend(output_field("logits"));
    let mut m = Vec::new();
    write_bytes_field(&mut m, 7, &g);
    m
}

#[test]
fn a_wrong_embedding_name_is_refused_before_the_runtime_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.onnx"), tiny_onnx()).unwrap();
    // The runtime library named does not exist: the embedding is checked first.
    let opts = "options:\n  ort_library: no/such/libonnxruntime.so.1.31.1\n";
    let y = write_yaml(dir.path(), "m.yaml", &format!("plugin: onnx\nmodel: m.onnx\nembedding: pool\n{opts}"));
    let e = load_err(&y);
    println!("{e}");
    assert!(e.contains("m.yaml: embedding `pool` is not a tensor of the model") && e.contains("m.onnx"), "{e}");
    assert!(e.ends_with("`pooled` (GlobalAveragePool), `logits` (Flatten), `relu` (Relu), `conv` (Conv)"), "{e}");
    let y = write_yaml(dir.path(), "w.yaml", &format!("plugin: onnx\nmodel: m.onnx\nembedding: w\n{opts}"));
    let e = load_err(&y);
    assert!(e.contains("`w` is a weight"), "{e}");
    let y = write_yaml(dir.path(), "x.yaml", &format!("plugin: onnx\nmodel: m.onnx\nembedding: x\n{opts}"));
    let e = load_err(&y);
    assert!(e.contains("`x` is an input"), "{e}");
    // A good name gets as far as the runtime.
    let y = write_yaml(dir.path(), "ok.yaml", &format!("plugin: onnx\nmodel: m.onnx\nembedding: pooled\n{opts}"));
    let e = load_err(&y);
    assert!(e.starts_with("ONNX Runtime library "), "{e}");

    // A file that is not ONNX.
    std::fs::write(dir.path().join("bad.onnx"), b"\x0b not protobuf").unwrap();
    let y = write_yaml(dir.path(), "bad.yaml", "plugin: onnx\nmodel: bad.onnx\nembedding: pooled\n");
    let e = load_err(&y);
    println!("{e}");
    assert!(e.contains("bad.yaml: embedding: cannot read the model") && e.contains("as ONNX"), "{e}");
}

#[test]
fn no_yaml_is_explained() {
    use shiftbench_onnx::OnnxClassifier;
    use shiftbench_plugin::{Classifier, LoadRequest};
    let e = OnnxClassifier::load(&LoadRequest { config_path: "".into(), threads: 0 }).err().unwrap();
    assert!(e.contains("model YAML"), "{e}");
}
