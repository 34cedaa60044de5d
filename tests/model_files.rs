//! A model file on the command line just works: `--model FILE.onnx` (or `.pt`) runs with an
//! assumed card (input size and labels read from the model, scores by a test batch,
//! torchvision's preprocessing), printed once with a hint; `model init` writes that card as a
//! YAML to adjust, and `model show` says what the plugin read. On the shared real models and the
//! 1,000 sample photos.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shiftbench::results::predlog::{read_log, Record};
use shiftbench::RunResult;

fn shiftbench(args: &[&str]) -> Output {
    Command::new(common::shiftbench_bin()).args(args).current_dir(common::repo()).output().unwrap()
}

fn run_ok(model: &str, out: &Path) -> (RunResult, String) {
    let o = shiftbench(&[
        "run",
        "--suite",
        "suites/imagenet-samples.yaml",
        "--model",
        model,
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{model}: {err}\n{}", String::from_utf8_lossy(&o.stdout));
    (RunResult::read(out).unwrap(), err)
}

/// The predictions (top-5) of every sample of the one log under `out`, in sample order.
fn predictions(out: &Path) -> Vec<(String, Vec<String>)> {
    let logs: Vec<PathBuf> = std::fs::read_dir(out.join("predictions")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let (_, records) = read_log(&logs[0]).unwrap();
    records.into_iter().map(|r: Record| (r.id, r.top)).collect()
}

fn top1(r: &RunResult) -> f64 {
    r.results[0].metrics.top1_equal.unwrap().value
}

#[test]
fn an_onnx_file_runs_with_an_assumed_card_like_its_yaml() {
    let Some(data) = common::shared_data("model_files") else { return };
    if common::plugin_lib_if_built("shiftbench_onnx", "model_files").is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let file = data.join("models/mobilenetv2-12-int8.onnx");
    let (assumed, err) = run_ok(file.to_str().unwrap(), &d.path().join("file"));
    // The card it assumed, once, with the hint to pin it.
    assert_eq!(err.matches("the card was read from the model or assumed").count(), 1, "{err}");
    assert!(
        err.contains("resize 256 bilinear, crop 224, rgb 0-1") && err.contains("1000 labels (imagenet1k); logits"),
        "{err}"
    );
    assert!(err.contains("shiftbench model init"), "{err}");
    let info = &assumed.run.as_ref().unwrap().models[0];
    assert!(info.card_assumed && info.name == "mobilenetv2-12-int8", "{info:?}");
    // The example YAML is torchvision's default card: the same predictions, photo for photo.
    let (pinned, _) = run_ok("plugins/onnx/examples/mobilenetv2-12-int8.yaml", &d.path().join("yaml"));
    assert!(!pinned.run.as_ref().unwrap().models[0].card_assumed);
    let (a, b) = (predictions(&d.path().join("file")), predictions(&d.path().join("yaml")));
    assert_eq!(a.len(), 1000);
    assert_eq!(a, b, "--model FILE.onnx must predict as the example YAML does");
    assert_eq!(assumed.results[0].metrics, pinned.results[0].metrics);
}

#[test]
fn a_caffe_model_loses_accuracy_under_the_assumed_card_and_model_init_fixes_it() {
    let Some(data) = common::shared_data("model_files") else { return };
    if common::plugin_lib_if_built("shiftbench_onnx", "model_files").is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let file = data.join("models/squeezenet1.1-fp16.onnx");
    // SqueezeNet 1.1 from Caffe2 wants BGR, 0-255, mean [104, 117, 123]: RGB 0-1 costs accuracy.
    let (assumed, err) = run_ok(file.to_str().unwrap(), &d.path().join("file"));
    assert!(err.contains("probabilities; at most 1 per call"), "the softmax output is found: {err}");
    let (pinned, _) = run_ok("plugins/onnx/examples/squeezenet1.1-fp16.yaml", &d.path().join("yaml"));
    let (a, p) = (top1(&assumed), top1(&pinned));
    assert!((p - 0.61).abs() < 1e-9, "the example YAML's top-1 on the samples is 61.0%: {p}");
    assert!(a < p - 0.05, "the assumed card must cost accuracy on a Caffe model: {a} vs {p}");

    // `model init` writes the assumed card; edited to Caffe's preprocessing it reproduces the
    // example YAML's predictions exactly.
    let yaml = d.path().join("sq/squeezenet.yaml");
    let o = shiftbench(&["model", "init", file.to_str().unwrap(), "--out", yaml.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&yaml).unwrap();
    for want in
        ["plugin: onnx", "labels: imagenet1k", "scores: probabilities", "crop: 224", "channel_order: rgb", "range: 0-1"]
    {
        assert!(text.contains(want), "{want}: {text}");
    }
    let edited = text
        .replace("channel_order: rgb", "channel_order: bgr")
        .replace("range: 0-1 ", "range: 0-255 ")
        .replace("mean: [0.485, 0.456, 0.406]", "mean: [104, 117, 123]")
        .replace("std: [0.229, 0.224, 0.225]", "std: [1, 1, 1]");
    assert_ne!(edited, text);
    std::fs::write(&yaml, edited).unwrap();
    let (edited_run, err) = run_ok(yaml.to_str().unwrap(), &d.path().join("edited"));
    assert!(!err.contains("assumed"), "a model YAML is not an assumed card: {err}");
    assert_eq!(predictions(&d.path().join("edited")), predictions(&d.path().join("yaml")));
    assert_eq!(edited_run.results[0].metrics, pinned.results[0].metrics);

    // `model show` says what the plugin read from the file, and the card.
    let o = shiftbench(&["model", "show", file.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("`data_0` f16 [1, 3, 224, 224]") && out.contains("`softmaxout_1` f16 [1, 1000, 1, 1]"),
        "{out}"
    );
    assert!(out.contains("batch fixed at 1") && out.contains("card, assumed"), "{out}");
}

#[test]
fn a_torchscript_file_runs_with_an_assumed_card_like_its_yaml() {
    let Some(data) = common::shared_data("model_files (torchscript)") else { return };
    if common::plugin_lib_if_built("shiftbench_torchscript", "model_files (torchscript)").is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let file = data.join("models/mobilenetv2-quantized.pt");
    let (assumed, err) = run_ok(file.to_str().unwrap(), &d.path().join("file"));
    assert!(err.contains("1000 labels (imagenet1k); logits"), "{err}");
    assert!(assumed.run.as_ref().unwrap().models[0].card_assumed);
    let (pinned, _) = run_ok("plugins/torchscript/examples/mobilenetv2-quantized.yaml", &d.path().join("yaml"));
    assert_eq!(predictions(&d.path().join("file")), predictions(&d.path().join("yaml")));
    assert_eq!(assumed.results[0].metrics, pinned.results[0].metrics);
    let o = shiftbench(&["model", "show", file.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("TorchScript module") && out.contains("card, assumed"), "{out}");
}

#[test]
fn what_is_not_a_model_is_one_sentence() {
    let d = tempfile::tempdir().unwrap();
    let text = d.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    for (arg, want) in [
        (d.path().join("missing.onnx"), "model file"),
        (d.path().join("missing.pt"), "model file"),
        (d.path().join("missing.yaml"), "model YAML"),
        (
            text.clone(),
            "is neither a model YAML (.yaml), an ONNX model (.onnx), a TorchScript model (.pt) nor a plugin library",
        ),
    ] {
        let a = arg.to_str().unwrap();
        for cmd in [vec!["model", "show", a], vec!["run", "--suite", "suites/imagenet-samples.yaml", "--model", a]] {
            let o = shiftbench(&cmd);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{cmd:?}: {err}");
            assert!(err.contains(want) && err.trim_end().lines().count() == 1, "{cmd:?}: {err}");
            if want == "model file" || want == "model YAML" {
                assert!(err.contains("does not exist"), "{err}");
            }
        }
    }
    // model init takes a model file only.
    let o = shiftbench(&["model", "init", "plugins/onnx/examples/mobilenetv2-12-int8.yaml"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("model init writes a YAML for a model file"));
}
