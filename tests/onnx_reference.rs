//! The ONNX backend through the whole harness agrees, image by image, with an independent
//! Python pipeline (PIL resize 256 bilinear, center crop 224, numpy, onnxruntime:
//! bench/reference_onnx.py) on the 1,000 real ImageNet sample photos.

mod common;

use std::collections::HashMap;
use std::process::Command;

use shiftbench::results::predlog::read_log;

fn agreement(model: &str) {
    let test = "onnx_reference";
    let Some(data) = common::shared_data(test) else { return };
    if !common::python_has("PIL, numpy, onnxruntime", test) {
        return;
    }
    let repo = common::repo();
    let d = tempfile::tempdir().unwrap();
    let yaml = repo.join(format!("plugins/onnx/examples/{model}.yaml"));
    let o = Command::new(common::shiftbench_bin())
        .args(["run", "--model"])
        .arg(&yaml)
        .arg("--suite")
        .arg(repo.join("suites/imagenet-samples.yaml"))
        .arg("--out")
        .arg(d.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = d.path().join("reference.csv");
    let o = Command::new("python3")
        .arg(repo.join("bench/reference_onnx.py"))
        .args(["--model", model, "--workers", "2", "--batch", "8", "--data"])
        .arg(&data)
        .arg(&csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&csv).unwrap();
    let reference: HashMap<&str, &str> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0], f[3])
        })
        .collect();
    assert_eq!(reference.len(), 1000);
    let (_, recs) = read_log(&d.path().join(format!("predictions/{model}__imagenet-samples.jsonl"))).unwrap();
    assert_eq!(recs.len(), 1000);
    let agree =
        recs.iter().filter(|r| r.top.first().map(String::as_str) == reference.get(r.id.as_str()).copied()).count();
    eprintln!("{model}: top-1 agrees with the Python reference on {agree} of 1000 images");
    assert!(agree >= 990, "{model}: only {agree} of 1000 agree");
}

#[test]
fn squeezenet_fp16_matches_pil_and_onnxruntime() {
    agreement("squeezenet1.1-fp16");
}

#[test]
fn int8_mobilenet_matches_pil_and_onnxruntime() {
    agreement("mobilenetv2-12-int8");
}
