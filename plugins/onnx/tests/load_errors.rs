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

#[test]
fn no_yaml_is_explained() {
    use shiftbench_onnx::OnnxClassifier;
    use shiftbench_plugin::{Classifier, LoadRequest};
    let e = OnnxClassifier::load(&LoadRequest { config_path: "".into(), threads: 0 }).err().unwrap();
    assert!(e.contains("model YAML"), "{e}");
}
