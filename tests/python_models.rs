//! Python models through the Python plugin (`plugins/python`), each through the CLI with worker
//! processes: the same models as the TorchScript and ONNX plugins give the same predictions on
//! the 1,000 sample photos; a numpy-only model runs in an environment without torch; `similarity`
//! with a model's `embed` equals the same computed in Python; a bare `.py` file; a log is resumed
//! only under the same code, arguments and files; and every kind of bad input is one sentence or
//! error row while the run goes on.
//!
//! The models written here run in the plugin's own Python (`python3` on PATH when it was built),
//! which needs numpy; the comparisons with torch need the test environment of
//! `scripts/setup-python-env.sh` (`.pyenv-test`), and skip with a SKIPPED line without it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use shiftbench::results::predlog::{read_log, read_log_lenient, Record, Status};

/// The Python plugin was built and `python3` has numpy (the plugin's own Python, as built here).
fn ready(test: &str) -> bool {
    common::plugin_lib_if_built("shiftbench_python", test).is_some() && common::python_has("numpy", test)
}

/// The test virtual environment with torch (`scripts/setup-python-env.sh`), or None (skipped).
fn torch_env(test: &str) -> Option<PathBuf> {
    let venv = common::repo().join(".pyenv-test/venv");
    if venv.join("pyvenv.cfg").is_file() {
        Some(venv)
    } else {
        common::skipped(test, &format!("{} is absent (./scripts/setup-python-env.sh makes it)", venv.display()));
        None
    }
}

/// `shiftbench <args>` with no virtual environment inherited from the caller's shell.
fn shiftbench(args: &[&std::ffi::OsStr], venv: Option<&Path>) -> Output {
    let mut c = Command::new(common::shiftbench_bin());
    c.args(args).env_remove("VIRTUAL_ENV").env_remove("SHIFTBENCH_PYTHON_TIMING");
    if let Some(v) = venv {
        c.env("VIRTUAL_ENV", v);
    }
    c.output().unwrap()
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// `run --suite <suite> --model <each> --out <out> <extra>`.
fn run(suite: &Path, models: &[&Path], out: &Path, extra: &[&str], venv: Option<&Path>) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![os("run"), os("--suite"), suite.as_os_str()];
    for m in models {
        args.extend([os("--model"), m.as_os_str()]);
    }
    args.extend([os("--out"), out.as_os_str()]);
    args.extend(extra.iter().map(|e| os(e)));
    shiftbench(&args, venv)
}

/// The records of `<out>/predictions/<model>__<suite>.jsonl`, by sample id.
fn records(out: &Path, model: &str, suite: &str) -> std::collections::BTreeMap<String, Record> {
    let (_, recs) = read_log(&out.join(format!("predictions/{model}__{suite}.jsonl"))).unwrap();
    recs.into_iter().map(|r| (r.id.clone(), r)).collect()
}

/// Writes `<dir>/<name>.py` and a model YAML for it (`extra` YAML lines added); returns the YAML.
fn python_model(dir: &Path, name: &str, code: &str, extra: &str) -> PathBuf {
    std::fs::write(dir.join(format!("{name}.py")), code).unwrap();
    let yaml = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &yaml,
        format!("plugin: python\npython: {name}.py\nname: {name}\npreprocess: {{resize: 32, crop: 32}}\n{extra}"),
    )
    .unwrap();
    yaml
}

/// A numpy model: logits from a fixed projection of the image's mean colour; `body` is Python run
/// first in `__call__` with the batch as `x` (to raise, crash or return something else).
fn numpy_code(body: &str) -> String {
    format!(
        "import numpy as np\n\nclass Model:\n    def __init__(self):\n        self.w = np.random.default_rng(0).standard_normal((3, 1000)).astype(np.float32)\n\n    def __call__(self, x):\n{}\n        return x.mean(axis=(2, 3)) @ self.w\n\n\ndef load():\n    return Model()\n",
        body.lines().map(|l| format!("        {l}\n")).collect::<String>()
    )
}

// ---- the same models as the ONNX and TorchScript plugins ----------------------------------

/// Top-1 of both logs equal on every sample; the largest |difference| of the top-5 scores where
/// the top-5 labels agree, and how many samples' top-5 labels differ.
fn compare_logs(
    a: &std::collections::BTreeMap<String, Record>,
    b: &std::collections::BTreeMap<String, Record>,
) -> (usize, f32, usize) {
    assert_eq!(a.len(), b.len());
    let (mut same_top1, mut max_diff, mut top5_differ) = (0, 0f32, 0);
    for (id, ra) in a {
        let rb = &b[id];
        assert_eq!((ra.status, rb.status), (Status::Ok, Status::Ok), "{id}");
        same_top1 += (ra.top[0] == rb.top[0]) as usize;
        if ra.top == rb.top {
            for (p, q) in ra.scores.iter().zip(&rb.scores) {
                max_diff = max_diff.max((p - q).abs());
            }
        } else {
            top5_differ += 1;
        }
    }
    (same_top1, max_diff, top5_differ)
}

#[test]
fn torch_jit_load_in_python_matches_the_torchscript_plugin() {
    let test = "python_models";
    let Some(_) = common::shared_data(test) else { return };
    if !ready(test) || common::plugin_lib_if_built("shiftbench_torchscript", test).is_none() {
        return;
    }
    let Some(venv) = torch_env(test) else { return };
    let repo = common::repo();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let ts = repo.join("plugins/torchscript/examples/squeezenet1.1-fp32.yaml");
    let py = repo.join("plugins/python/examples/squeezenet1.1-fp32-jit.yaml");
    let o = run(&repo.join("suites/imagenet-samples.yaml"), &[&ts, &py], &out, &[], Some(&venv));
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    let a = records(&out, "squeezenet1.1-fp32-torchscript", "imagenet-samples");
    let b = records(&out, "squeezenet1.1-fp32-python-jit", "imagenet-samples");
    let (same, max_diff, top5_differ) = compare_logs(&a, &b);
    eprintln!("squeezenet1.1-fp32 TorchScript plugin vs torch.jit.load in Python: same top-1 on {same}/1000, top-5 labels differ on {top5_differ}, max |top-5 score difference| {max_diff:e}");
    assert_eq!(same, 1000);
    assert_eq!(top5_differ, 0);
    assert!(max_diff < 1e-4, "{max_diff}");
}

#[test]
fn onnxruntime_in_python_matches_the_onnx_plugin() {
    let test = "python_models";
    let Some(_) = common::shared_data(test) else { return };
    if !ready(test) {
        return;
    }
    // ONNX Runtime's Python package: the test environment's, else the plugin's own Python's.
    let venv = common::repo().join(".pyenv-test/venv");
    let venv = venv.join("pyvenv.cfg").is_file().then_some(venv);
    if venv.is_none() && !common::python_has("onnxruntime", test) {
        return;
    }
    let repo = common::repo();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let onnx = repo.join("plugins/onnx/examples/mobilenetv2-12-int8.yaml");
    let py = repo.join("plugins/python/examples/mobilenetv2-12-int8-ort.yaml");
    let o = run(&repo.join("suites/imagenet-samples.yaml"), &[&onnx, &py], &out, &[], venv.as_deref());
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    let a = records(&out, "mobilenetv2-12-int8", "imagenet-samples");
    let b = records(&out, "mobilenetv2-12-int8-python-ort", "imagenet-samples");
    let (same, max_diff, top5_differ) = compare_logs(&a, &b);
    eprintln!("mobilenetv2-12-int8 ONNX plugin vs onnxruntime in Python: same top-1 on {same}/1000, top-5 labels differ on {top5_differ}, max |top-5 score difference| {max_diff:e}");
    assert_eq!(same, 1000);
    assert!(stdout.matches("82.70").count() >= 2, "both at the ONNX plugin's 82.70% top-1:\n{stdout}");
}

// ---- environments ---------------------------------------------------------------------------

/// The Python the plugin was built against: PYO3_PYTHON, else python3.
fn plugin_python() -> String {
    std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[test]
fn a_numpy_model_runs_in_an_environment_without_torch() {
    let test = "python_models";
    if !ready(test) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // A virtual environment of the plugin's Python that sees its numpy (system site packages) and
    // has no torch.
    let env = d.path().join("numpy-env");
    let o = Command::new(plugin_python()).args(["-m", "venv", "--system-site-packages"]).arg(&env).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let check = Command::new(env.join("bin/python"))
        .args(["-c", "import importlib.util as u; import numpy; print(u.find_spec('torch') is None)"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&check.stdout).trim() != "True" {
        common::skipped(test, "the plugin's Python has torch installed, so no environment of it lacks torch");
        return;
    }
    let examples = common::repo().join("plugins/python/examples");
    let code = format!(
        "import importlib.util, sys\nsys.path.insert(0, {:?})\nimport numpy_model\n\n\ndef load():\n    if importlib.util.find_spec('torch') is not None:\n        raise RuntimeError('torch is importable in ' + sys.prefix)\n    assert 'torch' not in sys.modules\n    return numpy_model.load(seed=0, grid=4)\n",
        examples.display()
    );
    let yaml = python_model(d.path(), "no_torch", &code, &format!("python_env: {}\n", env.display()));
    let suite = common::synthetic_suite(d.path(), "shapes", 2);
    let out = d.path().join("out");
    let o = run(&suite, &[&yaml], &out, &[], None);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    let recs = records(&out, "no_torch", "shapes");
    assert_eq!(recs.len(), 20);
    assert!(recs.values().all(|r| r.status == Status::Ok && r.top.len() == 5), "{recs:?}");
    let (header, _) = read_log(&out.join("predictions/no_torch__shapes.jsonl")).unwrap();
    assert_eq!(header.identity.unwrap().0["python env"], env.display().to_string());

    // An environment of another Python: one sentence naming both versions; the run goes on.
    let other = d.path().join("py27-env");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("pyvenv.cfg"), "home = /usr/bin\nversion = 2.7.18\n").unwrap();
    let bad = d.path().join("other.yaml");
    std::fs::write(
        &bad,
        "plugin: python\npython: no_torch.py\nname: other\npython_env: py27-env\npreprocess: {resize: 32, crop: 32}\n",
    )
    .unwrap();
    let o = run(&suite, &[&bad, &yaml], &d.path().join("out2"), &[], None);
    let (stdout, stderr) = text(&o);
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("is a virtual environment of Python 2.7.18, but the Python plugin embeds Python 3."), "{all}");
    assert!(stdout.contains("no_torch") && records(&d.path().join("out2"), "no_torch", "shapes").len() == 20, "{all}");
}

// ---- similarity -----------------------------------------------------------------------------

#[test]
fn similarity_with_a_python_embed_equals_the_same_embeddings_in_python() {
    let test = "python_models";
    let Some(data) = common::shared_data(test) else { return };
    if !ready(test) || !common::python_has("PIL, numpy", test) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // Three folders of 12 photos each (ImageNet classes 0-11, 100-111, 200-211), each labelled
    // by the wnid of its first photo.
    let mut photos: Vec<PathBuf> =
        std::fs::read_dir(data.join("imagenet-samples")).unwrap().map(|e| e.unwrap().path()).collect();
    photos.sort();
    for start in [0, 100, 200] {
        let wnid = photos[start].file_name().unwrap().to_str().unwrap()[..9].to_string();
        let folder = d.path().join("photos").join(&wnid);
        std::fs::create_dir_all(&folder).unwrap();
        for p in &photos[start..start + 12] {
            std::os::unix::fs::symlink(p, folder.join(p.file_name().unwrap())).unwrap();
        }
    }
    let suite = d.path().join("groups.yaml");
    std::fs::write(&suite, "name: groups\nsource:\n  image_folder: photos\n").unwrap();
    let examples = common::repo().join("plugins/python/examples");
    let yaml = d.path().join("numpy.yaml");
    std::fs::write(
        &yaml,
        format!(
            "plugin: python\npython: {}\nargs: {{seed: 0, grid: 4}}\nname: numpy-pooled-linear\n",
            examples.join("numpy_model.py").display()
        ),
    )
    .unwrap();
    let out = d.path().join("out");
    let o = shiftbench(
        &[
            os("similarity"),
            os("--per-class"),
            os("100"),
            os("--suite"),
            suite.as_os_str(),
            os("--model"),
            yaml.as_os_str(),
            os("--out"),
            out.as_os_str(),
        ],
        None,
    );
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");

    // The same in Python: PIL's resize and crop as bench/reference_onnx.py does them (shiftbench's
    // are byte for byte PIL's), the example's embed, shiftbench's pair statistics.
    let script = format!(
        r#"
import sys, numpy as np
sys.path[:0] = [{bench:?}, {examples:?}]
import reference_onnx as ref, numpy_model
from pathlib import Path
ref.init_worker(dict(order="rgb", scale=1 / 255, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)))
model = numpy_model.load(seed=0, grid=4)
for folder in sorted(Path({photos:?}).iterdir()):
    emb = np.stack([model.embed(ref.preprocess(p)[1][None])[0] for p in sorted(folder.iterdir())])
    e = emb.astype(np.float64)
    unit = e / np.sqrt((e * e).sum(axis=1, keepdims=True))
    i, j = np.triu_indices(len(e), 1)
    cos = (unit @ unit.T)[i, j]
    print(folder.name, len(e), len(cos), repr(float(np.mean(cos))), repr(float(np.std(cos))))
"#,
        bench = common::repo().join("bench").display().to_string(),
        examples = examples.display().to_string(),
        photos = d.path().join("photos").display().to_string(),
    );
    let o = Command::new("python3").args(["-c", &script]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reference = String::from_utf8_lossy(&o.stdout).into_owned();
    let ours = std::fs::read_to_string(out.join("similarity.csv")).unwrap();
    let mut compared = 0;
    for line in reference.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let row =
            ours.lines().find(|l| l.split(',').nth(1) == Some(f[0])).unwrap_or_else(|| panic!("{f:?} in\n{ours}"));
        let g: Vec<&str> = row.split(',').collect();
        assert_eq!((g[2], g[3]), (f[1], f[2]), "n and pairs of {}", f[0]);
        for (ours, theirs) in [(g[4], f[3]), (g[5], f[4])] {
            let (a, b): (f64, f64) = (ours.parse().unwrap(), theirs.parse().unwrap());
            assert!((a - b).abs() < 1e-6, "{}: shiftbench {a}, Python {b}", f[0]);
        }
        compared += 1;
    }
    assert_eq!(compared, 3, "{reference}");
}

// ---- a bare .py file ----------------------------------------------------------------------

#[test]
fn a_bare_python_file_runs_with_an_assumed_card_and_model_init_writes_its_yaml() {
    let test = "python_models";
    if !ready(test) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // What the model prints reaches stderr as it prints it (the interpreter is never finalised).
    std::fs::write(d.path().join("my_model.py"), numpy_code("print('my_model: a batch of', len(x))")).unwrap();
    let suite = common::synthetic_suite(d.path(), "shapes", 1);
    let file = d.path().join("my_model.py");
    let o = run(&suite, &[&file], &d.path().join("out"), &[], None);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("assumed") && stderr.contains("resize 256 bilinear, crop 224"),
        "the card is printed:\n{stderr}"
    );
    assert_eq!(records(&d.path().join("out"), "my_model", "shapes").len(), 10);
    assert!(stderr.contains("my_model: a batch of 1") && !stdout.contains("my_model: a batch"), "{stderr}");

    let yaml = d.path().join("my_model.yaml");
    let o = shiftbench(&[os("model"), os("init"), file.as_os_str(), os("--out"), yaml.as_os_str()], None);
    assert!(o.status.success(), "{}", text(&o).1);
    let written = std::fs::read_to_string(&yaml).unwrap();
    assert!(written.contains("plugin: python") && written.contains("python: my_model.py"), "{written}");
    assert!(written.contains("labels: imagenet1k") && written.contains("scores: logits"), "{written}");
    let o = run(&suite, &[&yaml], &d.path().join("out2"), &[], None);
    assert!(o.status.success(), "{}", text(&o).1);
    let (a, b) =
        (records(&d.path().join("out"), "my_model", "shapes"), records(&d.path().join("out2"), "my_model", "shapes"));
    assert_eq!(a.values().map(|r| &r.top).collect::<Vec<_>>(), b.values().map(|r| &r.top).collect::<Vec<_>>());
}

// ---- trust: what a log is resumed under ----------------------------------------------------

#[test]
fn editing_the_code_or_replacing_a_weights_file_starts_the_log_over() {
    let test = "python_models";
    if !ready(test) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let code = "import numpy as np\n\ndef load(weights, scale=1.0):\n    w = np.load(weights) * scale\n    return lambda x: x.mean(axis=(2, 3)) @ w\n";
    std::fs::write(d.path().join("w.npy"), npy(&[3, 1000], 1.0)).unwrap();
    let yaml = python_model(d.path(), "weighted", code, "args: {weights: w.npy, scale: 1.0}\n");
    let suite = common::synthetic_suite(d.path(), "shapes", 1);
    let out = d.path().join("out");
    let go = || {
        let o = run(&suite, &[&yaml], &out, &[], None);
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{stdout}{stderr}");
        stderr
    };
    go();
    let stderr = go();
    assert!(stderr.contains("resumed 10 of 10 from"), "unchanged: resumed\n{stderr}");

    // The code edited (a comment is enough: the file's sha256 changed).
    std::fs::write(d.path().join("weighted.py"), format!("# edited\n{code}")).unwrap();
    let stderr = go();
    assert!(stderr.contains("model file ") && !stderr.contains("resumed 10 of 10"), "{stderr}");
    assert!(go().contains("resumed 10 of 10 from"));

    // The weights file replaced under the same name.
    std::fs::write(d.path().join("w.npy"), npy(&[3, 1000], 2.0)).unwrap();
    let stderr = go();
    assert!(stderr.contains("python arg weights ") && !stderr.contains("resumed 10 of 10"), "{stderr}");

    // An argument changed.
    std::fs::write(&yaml, std::fs::read_to_string(&yaml).unwrap().replace("scale: 1.0", "scale: 0.5")).unwrap();
    let stderr = go();
    assert!(stderr.contains("python args ") && !stderr.contains("resumed 10 of 10"), "{stderr}");
}

/// A float32 .npy file of `shape` holding a ramp times `k`.
fn npy(shape: &[usize; 2], k: f32) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", shape[0], shape[1]);
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for i in 0..shape[0] * shape[1] {
        out.extend_from_slice(&(((i % 17) as f32 - 8.0) * k).to_le_bytes());
    }
    out
}

// ---- bad input: one sentence or error row, the run goes on ---------------------------------

/// Runs `bad` beside a healthy numpy model on the synthetic suite (two images per class, one per
/// call); checks the healthy model's 20 records; returns stdout + stderr and `bad`'s records.
fn beside_a_good_model(d: &Path, bad: &Path, bad_name: &str) -> (String, std::collections::BTreeMap<String, Record>) {
    let good = python_model(d, "good", &numpy_code(""), "");
    let suite = common::synthetic_suite(d, "shapes", 2);
    let out = d.join("out");
    let o = run(&suite, &[bad, &good], &out, &["--batch", "1"], None);
    let (stdout, stderr) = text(&o);
    let all = format!("{stdout}{stderr}");
    let good_records = records(&out, "good", "shapes");
    assert_eq!(good_records.len(), 20, "{all}");
    assert!(good_records.values().all(|r| r.status == Status::Ok), "{all}");
    let path = out.join(format!("predictions/{bad_name}__shapes.jsonl"));
    let bad_records = if path.exists() { records(&out, bad_name, "shapes") } else { Default::default() };
    (all, bad_records)
}

#[test]
fn a_syntax_error_is_one_sentence_with_file_and_line() {
    if !ready("python_models") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let bad = python_model(d.path(), "broken", "import numpy\n\ndef load(:\n    pass\n", "");
    let (all, _) = beside_a_good_model(d.path(), &bad, "broken");
    let file = d.path().join("broken.py");
    assert!(all.contains(&format!("{}:3: syntax error: invalid syntax", file.display())), "{all}");
}

#[test]
fn an_import_error_names_the_package_and_the_environment() {
    if !ready("python_models") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let bad =
        python_model(d.path(), "needs", "import numpy\nimport no_such_package_xyz\n\ndef load():\n    pass\n", "");
    let (all, _) = beside_a_good_model(d.path(), &bad, "needs");
    assert!(all.contains("cannot import the module no_such_package_xyz"), "{all}");
    assert!(all.contains("must be installed in the plugin's Python 3."), "{all}");

    // A module: that is nowhere.
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("nowhere.yaml");
    std::fs::write(
        &bad,
        "plugin: python\nmodule: no_such_pkg.models\nname: nowhere\npreprocess: {resize: 32, crop: 32}\n",
    )
    .unwrap();
    let (all, _) = beside_a_good_model(d.path(), &bad, "nowhere");
    assert!(
        all.contains("cannot import no_such_pkg.models: neither the YAML's folder nor the plugin's Python 3."),
        "{all}"
    );
}

#[test]
fn an_exception_fails_that_batch_with_its_last_line() {
    if !ready("python_models") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // Raises for the images whose red channel is dim (some classes of the synthetic suite).
    let code =
        numpy_code("if x.any() and x[:, 0].mean() < 0.85:\n    raise ValueError(f'too dim: {x[:, 0].mean():.2f}')");
    let bad = python_model(d.path(), "picky", &code, "");
    let (all, recs) = beside_a_good_model(d.path(), &bad, "picky");
    assert_eq!(recs.len(), 20, "{all}");
    let failed: Vec<&Record> = recs.values().filter(|r| r.status == Status::Failed).collect();
    assert!(!failed.is_empty() && failed.len() < 20, "{all}");
    for r in &failed {
        let e = r.error.as_deref().unwrap();
        assert!(e.contains("ValueError: too dim: ") && e.contains("picky.py:9 in __call__"), "{e}");
    }
}

#[test]
fn a_model_that_raises_on_every_batch_is_stopped() {
    if !ready("python_models") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // The load-time test image is all zeros; every photo raises.
    let code = numpy_code("if x.any():\n    raise RuntimeError('out of memory, say')");
    let bad = python_model(d.path(), "hopeless", &code, "");
    let (all, recs) = beside_a_good_model(d.path(), &bad, "hopeless");
    assert!(
        all.contains(
            "the model raised on each of its first 3 batches; stopped (the last: RuntimeError: out of memory, say"
        ),
        "{all}"
    );
    assert!(recs.values().all(|r| r.status != Status::Ok), "{recs:?}");
}

#[test]
fn a_wrong_output_shape_or_dtype_stops_the_model_with_the_shapes() {
    if !ready("python_models") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // Wrong from the start: refused at load, with the shapes.
    let bad = python_model(
        d.path(),
        "narrow",
        "import numpy as np\n\ndef load():\n    return lambda x: np.zeros((len(x), 10))\n",
        "",
    );
    let (all, _) = beside_a_good_model(d.path(), &bad, "narrow");
    assert!(
        all.contains(
            "the model returned scores of shape [1, 10] for a batch of 1; expected [1, 1000] (1000 labels in the card)"
        ),
        "{all}"
    );

    // Wrong only on real images: stopped when it happens.
    let d = tempfile::tempdir().unwrap();
    let bad = python_model(d.path(), "shifty", &numpy_code("if x.any():\n    return np.zeros((len(x), 7, 2))"), "");
    let (all, recs) = beside_a_good_model(d.path(), &bad, "shifty");
    assert!(all.contains("the model returned scores of shape [1, 7, 2] for a batch of 1; expected [1, 1000]"), "{all}");
    assert!(all.contains("stopped"), "{all}");
    assert!(recs.values().all(|r| r.status != Status::Ok), "{recs:?}");

    let d = tempfile::tempdir().unwrap();
    let bad = python_model(d.path(), "wordy", &numpy_code("if x.any():\n    return np.full((len(x), 1000), 'a')"), "");
    let (all, _) = beside_a_good_model(d.path(), &bad, "wordy");
    assert!(all.contains("the model returned scores of dtype <U1; expected real numbers (float32)"), "{all}");
}

#[test]
fn nan_scores_fail_those_samples_only() {
    if !ready("python_models") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let code =
        numpy_code("s = x.mean(axis=(2, 3)) @ self.w\nif x[:, 0].mean() < 0.85:\n    s[:, 3] = np.nan\nreturn s");
    let bad = python_model(d.path(), "nan", &code, "");
    let (all, recs) = beside_a_good_model(d.path(), &bad, "nan");
    assert_eq!(recs.len(), 20, "{all}");
    let failed = recs.values().filter(|r| r.status == Status::Failed).count();
    assert!(failed > 0 && failed < 20, "{all}");
    assert!(recs.values().filter(|r| r.status == Status::Failed).all(|r| r
        .error
        .as_deref()
        .unwrap()
        .contains("non-finite scores")));
}

#[test]
fn a_crash_inside_a_c_extension_stops_that_model_only() {
    if !ready("python_models") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // What it printed just before is not lost with it (stdout is unbuffered, as `python -u`).
    let code = numpy_code("if x.any():\n    print('crashy: about to abort')\n    import os\n    os.abort()");
    let bad = python_model(d.path(), "crashy", &code, "");
    let (all, recs) = beside_a_good_model(d.path(), &bad, "crashy");
    assert!(all.contains("crashy: about to abort"), "{all}");
    assert!(all.contains("its worker process was killed by signal 6 (SIGABRT"), "{all}");
    assert!(recs.values().all(|r| r.status != Status::Ok), "{recs:?}");
}

#[test]
fn ctrl_c_stops_a_python_model_after_the_batch_and_the_run_resumes() {
    if !ready("python_models") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let slow = python_model(d.path(), "slow", &numpy_code("import time\nif x.any():\n    time.sleep(0.15)"), "");
    let suite = common::synthetic_suite(d.path(), "shapes", 4);
    let out = d.path().join("out");
    let cmd = || {
        let mut c = Command::new(common::shiftbench_bin());
        c.args(["run", "--batch", "2", "--threads", "1", "--replicas", "1", "--suite"])
            .arg(&suite)
            .arg("--model")
            .arg(&slow)
            .arg("--out")
            .arg(&out)
            .env_remove("VIRTUAL_ENV");
        // Its own process group, so that the Ctrl-C below reaches every process of the run, the
        // workers (and their Python) included, as a terminal's does.
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        c
    };
    let log = out.join("predictions/slow__shapes.jsonl");
    let mut child = cmd().stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    loop {
        let n = read_log_lenient(&log).map(|(_, r, _)| r.len()).unwrap_or(0);
        if n >= 2 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "the run wrote nothing");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be interrupted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill").args(["-INT", "--", &format!("-{}", child.id())]).status().unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("Ctrl-C: stopping after the batch in flight"), "{err}");
    assert!(!err.contains("KeyboardInterrupt"), "Python never sees the Ctrl-C: {err}");
    let (_, kept) = read_log(&log).unwrap();
    assert!(kept.len() >= 2 && kept.len() < 40, "{} records", kept.len());
    let o = cmd().output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, all) = read_log(&log).unwrap();
    assert_eq!(all.len(), 40);
    assert_eq!(&all[..kept.len()], &kept[..]);
}

// ---- a torch.nn.Module from `module:`, its embedding from a submodule -------------------------

#[test]
fn a_modules_submodule_is_its_embedding_through_a_forward_hook() {
    // Also: --model-threads reaches torch and the thread variables (the module checks them).
    let test = "python_models";
    if !ready(test) || !common::python_has("PIL, numpy", test) {
        return;
    }
    let Some(venv) = torch_env(test) else { return };
    let d = tempfile::tempdir().unwrap();
    let pkg = d.path().join("nets");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("__init__.py"), "").unwrap();
    std::fs::write(
        pkg.join("small.py"),
        "import os\nimport torch\n\n\nclass Net(torch.nn.Module):\n    def __init__(self, width):\n        super().__init__()\n        torch.manual_seed(0)\n        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, width, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2))\n        self.head = torch.nn.Linear(4 * width, 1000)\n\n    def forward(self, x):\n        threads = (torch.get_num_threads(), os.environ.get('OMP_NUM_THREADS'), os.environ.get('SHIFTBENCH_MODEL_THREADS'))\n        if threads != (2, '2', '2'):\n            raise RuntimeError(f'--model-threads 2 did not reach torch: {threads}')\n        return self.head(self.features(x).flatten(1))\n\n\ndef build(width):\n    return Net(width)\n",
    )
    .unwrap();
    let yaml = d.path().join("small.yaml");
    std::fs::write(
        &yaml,
        "plugin: python\nmodule: nets.small\nfactory: build\nargs: {width: 6}\nembedding: features\npreprocess: {resize: 32, crop: 32}\n",
    )
    .unwrap();
    let suite = common::synthetic_suite(d.path(), "shapes", 3);
    let out = d.path().join("out");
    let o = shiftbench(
        &[
            os("similarity"),
            os("--per-class"),
            os("3"),
            os("--min-per-class"),
            os("3"),
            os("--model-threads"),
            os("2"),
            os("--suite"),
            suite.as_os_str(),
            os("--model"),
            yaml.as_os_str(),
            os("--out"),
            out.as_os_str(),
        ],
        Some(&venv),
    );
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    let (header, recs) = read_log(&out.join("embeddings/small__shapes.jsonl")).unwrap();
    let identity = header.identity.unwrap().0;
    assert_eq!(identity["python code"], "module nets.small");
    assert_eq!(identity["python embedding"], "features");
    assert_eq!(recs.len(), 30);

    // The same images through PIL (the harness's pixels are PIL's), then the submodule called
    // directly in the test environment.
    let batch = d.path().join("batch.npy");
    let prep = format!(
        "import sys, numpy as np\nsys.path.insert(0, {:?})\nimport reference_onnx as ref\nref.RESIZE = ref.CROP = 32\nref.init_worker(dict(order='rgb', scale=1 / 255, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)))\nnp.save({:?}, np.stack([ref.preprocess(p)[1] for p in sys.argv[1:]]))\n",
        common::repo().join("bench").display().to_string(),
        batch.display().to_string()
    );
    let paths: Vec<PathBuf> = recs.iter().map(|r| d.path().join("shapes").join(&r.id)).collect();
    assert!(paths.iter().all(|p| p.is_file()), "{:?}", &paths[..2]);
    let o = Command::new("python3").args(["-c", &prep]).args(&paths).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let embed = format!(
        "import sys, numpy as np, torch\nsys.path.insert(0, {:?})\nfrom nets.small import build\nnet = build(6).eval()\nwith torch.no_grad():\n    e = net.features(torch.from_numpy(np.load({:?}))).flatten(1).numpy()\nprint(' '.join(repr(float(v)) for v in e.ravel()))\n",
        d.path().display().to_string(),
        batch.display().to_string()
    );
    let o = Command::new(venv.join("bin/python")).args(["-c", &embed]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reference: Vec<f32> =
        String::from_utf8_lossy(&o.stdout).split_whitespace().map(|v| v.parse().unwrap()).collect();
    assert_eq!(reference.len(), 30 * 24);
    let mut max_diff = 0f32;
    for (r, want) in recs.iter().zip(reference.chunks(24)) {
        assert_eq!(r.embedding.len(), 24, "{r:?}");
        for (a, b) in r.embedding.iter().zip(want) {
            max_diff = max_diff.max((a - b).abs());
        }
    }
    eprintln!("forward-hook embedding vs the submodule called in Python: max |difference| {max_diff:e}");
    assert!(max_diff < 1e-5, "{max_diff}");
}

#[test]
fn the_batch_is_a_view_valid_during_the_call_only() {
    if !ready("python_models") {
        return;
    }
    // Scores that are themselves a view of the batch are copied before the view is released.
    let d = tempfile::tempdir().unwrap();
    let code = "import numpy as np\n\ndef load():\n    return lambda x: x.reshape(len(x), -1)[:, :1000]\n";
    let viewer = python_model(d.path(), "viewer", code, "");
    let (all, recs) = beside_a_good_model(d.path(), &viewer, "viewer");
    assert_eq!(recs.len(), 20, "{all}");
    assert!(recs.values().all(|r| r.status == Status::Ok), "{all}");

    // A model that keeps the batch past the call is stopped: the next batch overwrites it.
    let d = tempfile::tempdir().unwrap();
    let keeper = python_model(d.path(), "keeper", &numpy_code("if x.any():\n    self.kept = x"), "");
    let (all, recs) = beside_a_good_model(d.path(), &keeper, "keeper");
    assert!(all.contains("the model kept a reference to its input batch after the call"), "{all}");
    assert!(recs.values().all(|r| r.status != Status::Ok), "{recs:?}");
}

#[test]
fn the_readmes_python_model_yaml_is_a_valid_model_yaml() {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    let yaml = common::fenced_blocks(&readme, "yaml")
        .into_iter()
        .find(|b| b.starts_with("# my_model.yaml"))
        .expect("README.md's Python models section lost its model YAML");
    let c = shiftbench_model_config::ModelConfig::parse(&yaml, Path::new("models/my_model.yaml")).unwrap();
    let p = c.python.unwrap();
    assert_eq!(p.source, shiftbench_model_config::PythonSource::File(PathBuf::from("models/my_model.py")));
    assert_eq!((p.factory.as_str(), p.device.as_str()), ("load", "cpu"));
    assert_eq!(p.python_env, Some(PathBuf::from("models/.venv")));
    assert_eq!(c.name, "my-resnet50");
}

#[test]
fn the_batch_is_a_read_only_float32_view_in_the_cards_layout() {
    if !ready("python_models") {
        return;
    }
    for (layout, shape) in [("nchw", "(3, 32, 32)"), ("nhwc", "(32, 32, 3)")] {
        let d = tempfile::tempdir().unwrap();
        // Raises unless the batch is float32 in the card's layout, read-only, and no copy: a view
        // whose base is a memoryview (of the worker's shared memory), owning no data.
        let check = format!(
            "base = x\nwhile isinstance(base, np.ndarray):\n    base = base.base\nseen = (x.dtype == np.float32, x.shape[1:] == {shape}, x.flags.writeable, x.flags.owndata, type(base).__name__)\nif seen != (True, True, False, False, 'memoryview'):\n    raise ValueError(f'batch {{x.shape}}: {{seen}}')\nx = x.transpose(0, 3, 1, 2) if x.shape[3] == 3 else x"
        );
        let model = python_model(
            d.path(),
            "layout",
            &numpy_code(&check),
            &format!("preprocess: {{resize: 32, crop: 32, layout: {layout}}}\n"),
        );
        // python_model's own preprocess line is replaced by this one.
        let yaml = std::fs::read_to_string(&model).unwrap().replace("preprocess: {resize: 32, crop: 32}\n", "");
        std::fs::write(&model, yaml).unwrap();
        let suite = common::synthetic_suite(d.path(), "shapes", 1);
        let o = run(&suite, &[&model], &d.path().join("out"), &[], None);
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{layout}: {stdout}{stderr}");
        let recs = records(&d.path().join("out"), "layout", "shapes");
        assert!(recs.values().all(|r| r.status == Status::Ok), "{layout}: {recs:?}");
    }
}

#[test]
fn editing_a_helper_module_the_code_imports_starts_the_log_over() {
    let test = "python_models";
    if !ready(test) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let models = d.path().join("models");
    std::fs::create_dir_all(models.join("lib")).unwrap();
    // The model file imports a helper beside it and one in a local package.
    std::fs::write(
        models.join("main.py"),
        "import numpy as np\nimport helper\nfrom lib import scale\n\ndef load():\n    return lambda x: helper.project(x) * scale.K\n",
    )
    .unwrap();
    let helper = "import numpy as np\nW = np.random.default_rng(0).standard_normal((3, 1000)).astype(np.float32)\n\ndef project(x):\n    return x.mean(axis=(2, 3)) @ W\n";
    std::fs::write(models.join("helper.py"), helper).unwrap();
    std::fs::write(models.join("lib/__init__.py"), "").unwrap();
    std::fs::write(models.join("lib/scale.py"), "K = 1.0\n").unwrap();
    let suite = common::synthetic_suite(d.path(), "shapes", 1);
    let out = d.path().join("out");
    let model = models.join("main.py");
    let go = || {
        let o = run(&suite, &[&model], &out, &[], None);
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{stdout}{stderr}");
        stderr
    };
    go();
    assert!(go().contains("resumed 10 of 10 from"), "unchanged: resumed");
    // The helper's sign flipped: the same command must not resume the old predictions.
    std::fs::write(models.join("helper.py"), helper.replace("@ W", "@ -W")).unwrap();
    let stderr = go();
    assert!(stderr.contains("python sources ") && !stderr.contains("resumed 10 of 10"), "{stderr}");
    assert!(go().contains("resumed 10 of 10 from"));
    // A module of the local package edited.
    std::fs::write(models.join("lib/scale.py"), "K = 2.0\n").unwrap();
    let stderr = go();
    assert!(stderr.contains("python sources ") && !stderr.contains("resumed 10 of 10"), "{stderr}");
    // Python's caches and hidden folders are not sources: new files there still resume.
    std::fs::create_dir_all(models.join("__pycache__")).unwrap();
    std::fs::write(models.join("__pycache__/helper.py"), "junk").unwrap();
    std::fs::create_dir_all(models.join(".git")).unwrap();
    std::fs::write(models.join(".git/hook.py"), "junk").unwrap();
    assert!(go().contains("resumed 10 of 10 from"));
}
