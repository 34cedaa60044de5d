//! A model file on the command line just works: `--model FILE.onnx` (or `.pt`) runs with an
//! assumed card (input size and labels read from the model, scores by a test batch,
//! torchvision's preprocessing), printed once with a hint; `model init` writes that card as a
//! YAML to adjust, and `model show` says what the plugin read. On the shared real models and the
//! 1,000 sample photos; what `model init` writes where (paths as given, an existing YAML kept) on
//! a small ONNX model written here, which needs no shared data.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shiftbench::results::predlog::{read_log, Record};
use shiftbench::RunResult;

fn shiftbench(args: &[&str]) -> Output {
    shiftbench_in(&common::repo(), args)
}

/// `shiftbench` run in the folder `dir`.
fn shiftbench_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(common::shiftbench_bin()).args(args).current_dir(dir).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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
    assert!(info.config.is_none(), "no YAML of the user's to record (the one written for the run is gone): {info:?}");
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
    // A suite of its own, so that only the model can be wrong (and no shared data is needed).
    let suite = common::synthetic_suite(d.path(), "tiny", 1);
    let suite = suite.to_str().unwrap();
    let text = d.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    for (arg, want) in [
        (d.path().join("missing.onnx"), "model file"),
        (d.path().join("missing.pt"), "model file"),
        (d.path().join("missing.py"), "model file"),
        (d.path().join("missing.yaml"), "model YAML"),
        (
            text.clone(),
            "is neither a model YAML (.yaml), an ONNX model (.onnx), a TorchScript model (.pt), a Python model (.py) nor a plugin library",
        ),
    ] {
        let a = arg.to_str().unwrap();
        for cmd in [vec!["model", "show", a], vec!["run", "--suite", suite, "--model", a]] {
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

/// The `model:` line of a model YAML, without its comment.
fn model_line(yaml: &Path) -> String {
    let text = std::fs::read_to_string(yaml).unwrap();
    let line = text.lines().find(|l| l.starts_with("model:")).unwrap_or_else(|| panic!("no model: in {text}"));
    line.split(" #").next().unwrap().trim_end().to_string()
}

#[test]
fn model_init_names_the_model_as_given_and_keeps_an_existing_yaml() {
    if common::plugin_lib_if_built("shiftbench_onnx", "model_files (model init)").is_none() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let d = root.path().join("project");
    std::fs::create_dir_all(d.join("models/v1")).unwrap();
    std::fs::write(d.join("models/v1/tiny.onnx"), tiny_onnx_classifier()).unwrap();
    std::os::unix::fs::symlink("v1/tiny.onnx", d.join("models/latest.onnx")).unwrap();

    // Relative to the YAML's folder, through the symlink as typed (not the file it points to).
    let init = ["model", "init", "models/latest.onnx", "--out", "configs/latest.yaml"];
    let o = shiftbench_in(&d, &init);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(model_line(&d.join("configs/latest.yaml")), "model: ../models/latest.onnx");
    // An absolute path typed, in the same tree: relative too.
    let abs = d.join("models/latest.onnx");
    let o = shiftbench_in(&d, &["model", "init", abs.to_str().unwrap(), "--out", "configs/abs.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(model_line(&d.join("configs/abs.yaml")), "model: ../models/latest.onnx");

    // The folder moves as a whole: the YAML still finds its model.
    let moved = root.path().join("moved");
    std::fs::rename(&d, &moved).unwrap();
    let o = shiftbench_in(&moved, &["model", "show", "configs/latest.yaml"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains("card, as its plugin states it") && out.contains("1000 labels (imagenet1k)"), "{out}");

    // A YAML already there (the user's edits) is kept: one sentence naming it and the flag.
    let yaml = moved.join("configs/latest.yaml");
    std::fs::write(&yaml, "# my edits\n").unwrap();
    let o = shiftbench_in(&moved, &init);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end(), "error: configs/latest.yaml already exists; pass --force to overwrite it");
    assert_eq!(std::fs::read_to_string(&yaml).unwrap(), "# my edits\n");
    // A symlink there counts as a file, even a dangling one.
    std::os::unix::fs::symlink("nowhere.yaml", moved.join("configs/dangling.yaml")).unwrap();
    let o = shiftbench_in(&moved, &["model", "init", "models/latest.onnx", "--out", "configs/dangling.yaml"]);
    assert!(o.status.code() == Some(2) && stderr(&o).contains("already exists"), "{}", stderr(&o));
    // --force replaces it.
    let o = shiftbench_in(&moved, &[&init[..], &["--force"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(model_line(&yaml), "model: ../models/latest.onnx");

    // --out must be a YAML's name: with --force it could otherwise replace the model itself.
    let model = moved.join("models/v1/tiny.onnx");
    let o = shiftbench_in(&moved, &["model", "init", "models/latest.onnx", "--out", "models/v1/tiny.onnx", "--force"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--out models/v1/tiny.onnx must end in .yaml") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    assert_eq!(std::fs::read(&model).unwrap(), tiny_onnx_classifier());
    std::fs::create_dir_all(moved.join("configs/folder.yaml")).unwrap();
    let o = shiftbench_in(&moved, &["model", "init", "models/latest.onnx", "--out", "configs/folder.yaml", "--force"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("configs/folder.yaml is a folder"), "{}", stderr(&o));
}

#[test]
fn model_init_writes_the_path_as_typed_where_a_relative_one_would_not_reach_the_model() {
    if common::plugin_lib_if_built("shiftbench_onnx", "model_files (model init)").is_none() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let d = std::fs::canonicalize(root.path()).unwrap();
    std::fs::create_dir_all(d.join("m")).unwrap();
    std::fs::create_dir_all(d.join("a/b/real")).unwrap();
    std::fs::write(d.join("m/tiny.onnx"), tiny_onnx_classifier()).unwrap();
    // `link/../m` reads as `m` but leads to `a/b/m`: the YAML names the model absolutely.
    std::os::unix::fs::symlink("a/b/real", d.join("link")).unwrap();
    let o = shiftbench_in(&d, &["model", "init", "m/tiny.onnx", "--out", "link/tiny.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(model_line(&d.join("link/tiny.yaml")), format!("model: {}", d.join("m/tiny.onnx").display()));
    let o = shiftbench_in(&d, &["model", "show", "link/tiny.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Protobuf: a varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Protobuf: field `number` holding `bytes` (a string, bytes or a message).
fn field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    varint(out, number << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Protobuf: field `number` holding the integer `v`.
fn int_field(out: &mut Vec<u8>, number: u64, v: u64) {
    varint(out, number << 3);
    varint(out, v);
}

/// An ONNX ValueInfoProto: the f32 tensor `name` of shape `dims` (None: the batch, `N`).
fn value_info(name: &str, dims: &[Option<u64>]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        match d {
            Some(v) => int_field(&mut dim, 1, *v),
            None => field(&mut dim, 2, b"N"),
        }
        field(&mut shape, 1, &dim);
    }
    let mut tensor = Vec::new();
    int_field(&mut tensor, 1, 1); // FLOAT
    field(&mut tensor, 2, &shape);
    let mut ty = Vec::new();
    field(&mut ty, 1, &tensor);
    let mut v = Vec::new();
    field(&mut v, 1, name.as_bytes());
    field(&mut v, 2, &ty);
    v
}

/// A small ONNX classifier, written here: images [N, 3, 224, 224] averaged per channel
/// (GlobalAveragePool), 1000 fixed mixes of the three means (a 1x1 Conv), flattened to [N, 1000]
/// logits.
fn tiny_onnx_classifier() -> Vec<u8> {
    let node = |op: &str, inputs: &[&str], output: &str| {
        let mut n = Vec::new();
        for i in inputs {
            field(&mut n, 1, i.as_bytes());
        }
        field(&mut n, 2, output.as_bytes());
        field(&mut n, 4, op.as_bytes());
        n
    };
    let mut g = Vec::new();
    field(&mut g, 1, &node("GlobalAveragePool", &["image"], "means"));
    field(&mut g, 1, &node("Conv", &["means", "w"], "mixed"));
    field(&mut g, 1, &node("Flatten", &["mixed"], "logits"));
    field(&mut g, 2, b"tiny");
    let mut w = Vec::new();
    for d in [1000, 3, 1, 1] {
        int_field(&mut w, 1, d);
    }
    int_field(&mut w, 2, 1); // FLOAT
    field(&mut w, 8, b"w");
    let weights: Vec<u8> = (0..3000).flat_map(|i| ((i * 37 % 101) as f32 / 101.0 - 0.5).to_le_bytes()).collect();
    field(&mut w, 9, &weights);
    field(&mut g, 5, &w);
    field(&mut g, 11, &value_info("image", &[None, Some(3), Some(224), Some(224)]));
    field(&mut g, 12, &value_info("logits", &[None, Some(1000)]));
    let mut opset = Vec::new();
    int_field(&mut opset, 2, 13);
    let mut m = Vec::new();
    int_field(&mut m, 1, 8); // IR version
    field(&mut m, 8, &opset);
    field(&mut m, 7, &g);
    m
}
