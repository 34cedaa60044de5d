//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use shiftbench_onnx::OnnxClassifier;
use shiftbench_plugin::{Classifier, LoadRequest};

/// `../shared/data` relative to the repository root, or `None` (after saying so) when absent.
pub fn data_dir(test: &str) -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if d.is_dir() {
        Some(d)
    } else {
        // Written directly: the test harness shows what println! prints only for failing tests.
        let why = format!("real test data not found at {} (../shared/data from the repository root)", d.display());
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("SKIPPED {test}: {why}\n").as_bytes());
        None
    }
}

/// Writes `body` as `name` in `dir` and returns its path.
pub fn write_yaml(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// Loads a model YAML through the plugin's `Classifier::load`, as the harness does.
pub fn load(yaml: &Path) -> Result<OnnxClassifier, String> {
    OnnxClassifier::load(&LoadRequest { config_path: yaml.to_str().unwrap().into(), threads: 0 })
}

pub fn load_err(yaml: &Path) -> String {
    match load(yaml) {
        Ok(_) => panic!("{} loaded but should have been refused", yaml.display()),
        Err(e) => e,
    }
}

/// The SqueezeNet YAML (BGR, 0-255, mean subtracted) for `model` with `extra` lines appended.
pub fn squeezenet_yaml(model: &Path, extra: &str) -> String {
    format!(
        "plugin: onnx\nmodel: {}\nscores: probabilities\npreprocess:\n  channel_order: bgr\n  range: 0-255\n  mean: [104, 117, 123]\n  std: [1, 1, 1]\n{extra}",
        model.display()
    )
}

/// golden/fish.csv: CHW, BGR, 0-255, 150,528 values.
pub fn fish(data: &Path) -> Vec<f32> {
    let text = std::fs::read_to_string(data.join("golden/fish.csv")).unwrap();
    let v: Vec<f32> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(v.len(), 3 * 224 * 224);
    v
}

/// golden/squeezenet1.1-fp16_fish_output.csv: `Index,Value`.
pub fn fish_expected(data: &Path) -> Vec<f32> {
    let text = std::fs::read_to_string(data.join("golden/squeezenet1.1-fp16_fish_output.csv")).unwrap();
    let mut out = vec![f32::NAN; 1000];
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let (i, v) = line.split_once(',').unwrap();
        out[i.trim().parse::<usize>().unwrap()] = v.trim().parse().unwrap();
    }
    assert!(out.iter().all(|v| v.is_finite()));
    out
}

pub fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, x)| if *x > v[best] { i } else { best })
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
