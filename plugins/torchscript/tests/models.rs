//! The TorchScript plugin on the real models in `../shared/data` (relative to the repository
//! root). Tests that need them print SKIPPED and pass when that folder is absent.

mod common;

use std::path::{Path, PathBuf};

use shiftbench_plugin::{ChannelOrder, Classifier, LoadRequest, ScoreKind};
use shiftbench_torchscript::TorchScriptModel;

const CROP: usize = 224;
const IMAGE_LEN: usize = 3 * CROP * CROP;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Says that the calling test is skipped, and why, on stderr, written directly so that it shows in
/// `cargo test`'s output (the test harness keeps what `eprintln!` prints unless the test fails).
fn skipped(test: &str, why: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("SKIPPED {test}: {why}\n").as_bytes());
}

/// `../shared/data`, or `None` after printing why the calling test skips.
fn shared_data(test: &str) -> Option<PathBuf> {
    let dir = repo_root().join("../shared/data");
    if dir.join("models").is_dir() && dir.join("golden").is_dir() {
        Some(dir)
    } else {
        skipped(test, &format!("{} is absent (real models and golden tensors live there)", dir.display()));
        None
    }
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name)
}

fn load(yaml: &Path) -> Result<TorchScriptModel, String> {
    TorchScriptModel::load(&LoadRequest { config_path: yaml.to_str().unwrap().into(), threads: 2 })
}

/// `fish.csv`: CHW, BGR, 0-255, no mean subtracted.
fn fish_bgr(data: &Path) -> Vec<f32> {
    let text = std::fs::read_to_string(data.join("golden/fish.csv")).unwrap();
    let v: Vec<f32> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(v.len(), IMAGE_LEN);
    v
}

/// Applies a card's scale/mean/std to a CHW 0-255 tensor already in the model's channel order.
fn normalize(chw: &[f32], model: &TorchScriptModel) -> Vec<f32> {
    let p = model.card().preprocess;
    chw.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = i / (CROP * CROP);
            (v * p.scale - p.mean[c]) / p.std[c]
        })
        .collect()
}

fn argmax(v: &[f32]) -> usize {
    // Lowest index wins ties.
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

fn top_k(v: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].partial_cmp(&v[a]).unwrap().then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

#[test]
fn squeezenet_fp32_reproduces_the_golden_fish_output() {
    let Some(data) = shared_data("squeezenet_fp32_reproduces_the_golden_fish_output") else { return };
    let mut model = load(&example("squeezenet1.1-fp32.yaml")).unwrap();
    let card = model.card();
    assert_eq!(card.labels.len(), 1000);
    assert_eq!(card.labels[0].as_str(), "n01440764");
    assert_eq!(card.preprocess.channel_order, ChannelOrder::Bgr);
    assert_eq!(card.scores, ScoreKind::Probabilities);

    // The golden output is what the model gives for fish.csv fed as is (the ONNX model zoo's test
    // pair): the tensor is the model input, with no mean subtracted.
    let scores = model.infer(&fish_bgr(&data), 1).unwrap();
    assert_eq!(scores.len(), 1000);

    let golden = std::fs::read_to_string(data.join("golden/squeezenet1.1-fp16_fish_output.csv")).unwrap();
    let mut expected = vec![f32::NAN; 1000];
    for line in golden.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let (i, v) = line.split_once(',').unwrap();
        expected[i.trim().parse::<usize>().unwrap()] = v.trim().parse().unwrap();
    }
    assert!(expected.iter().all(|v| v.is_finite()), "golden file has 1000 rows");
    let (worst, diff) = scores
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .fold((0, 0f32), |m, (i, d)| if d > m.1 { (i, d) } else { m });
    eprintln!(
        "squeezenet1.1-fp32.pt vs fp16 golden: max |diff| = {diff:.3e} at class {worst}; class 0 = {} (golden {})",
        scores[0], expected[0]
    );
    assert!(diff < 1e-3, "max |diff| {diff} at class {worst}: {} vs {}", scores[worst], expected[worst]);
    assert_eq!(argmax(&scores), 0, "top-1 must be class 0 (tench)");
    let sum: f32 = scores.iter().sum();
    assert!((sum - 1.0).abs() < 1e-3, "probabilities sum to {sum}");
}

#[test]
fn squeezenet_batches_score_like_single_images() {
    let Some(data) = shared_data("squeezenet_batches_score_like_single_images") else { return };
    let mut model = load(&example("squeezenet1.1-fp32.yaml")).unwrap();
    let max = model.card().max_batch as usize;
    eprintln!("squeezenet1.1-fp32.pt: max_batch = {max} ({})", model.batch_note().unwrap_or("batch of 2 verified"));
    let batch = if max == 0 { 3 } else { max };
    // The fish and two variants of it (flipped; darkened): distinct images.
    let fish = fish_bgr(&data);
    let flipped: Vec<f32> = (0..IMAGE_LEN)
        .map(|i| {
            let (row, col) = (i / CROP, i % CROP);
            fish[row * CROP + (CROP - 1 - col)]
        })
        .collect();
    let dark: Vec<f32> = fish.iter().map(|v| v * 0.5).collect();
    let images = [fish, flipped, dark];
    let images: Vec<Vec<f32>> = images.iter().cycle().take(batch).map(|im| normalize(im, &model)).collect();
    let all: Vec<f32> = images.concat();
    let batched = model.infer(&all, batch).unwrap();
    assert_eq!(batched.len(), batch * 1000);
    for (i, im) in images.iter().enumerate() {
        let single = model.infer(im, 1).unwrap();
        let d = single.iter().zip(&batched[i * 1000..(i + 1) * 1000]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(d < 1e-5, "image {i}: batched and single scores differ by {d}");
    }
    if max > 0 {
        let e = model.infer(&vec![0.0; (max + 1) * IMAGE_LEN], max + 1).unwrap_err();
        assert!(e.contains(&format!("at most {max} per call")), "{e}");
    }
}

#[test]
fn quantized_mobilenetv2_scores_the_fish() {
    let Some(data) = shared_data("quantized_mobilenetv2_scores_the_fish") else { return };
    let mut model = load(&example("mobilenetv2-quantized.yaml")).unwrap();
    let card = model.card();
    assert_eq!(card.preprocess.channel_order, ChannelOrder::Rgb);
    assert_eq!(card.scores, ScoreKind::Logits);
    eprintln!(
        "mobilenetv2-quantized.pt: max_batch = {} ({})",
        card.max_batch,
        model.batch_note().unwrap_or("batch of 2 verified")
    );
    // fish.csv is BGR: reverse the channel planes for this RGB model.
    let bgr = fish_bgr(&data);
    let rgb: Vec<f32> = (0..3).rev().flat_map(|c| bgr[c * CROP * CROP..(c + 1) * CROP * CROP].to_vec()).collect();
    let scores = model.infer(&normalize(&rgb, &model), 1).unwrap();
    assert_eq!(scores.len(), 1000);
    assert!(scores.iter().all(|s| s.is_finite()), "all logits finite");
    let top5 = top_k(&scores, 5);
    eprintln!(
        "mobilenetv2-quantized.pt on the fish: top-5 {top5:?}, logits {:?}",
        top5.iter().map(|&i| scores[i]).collect::<Vec<_>>()
    );
    assert!(scores.iter().any(|&s| s != scores[0]), "logits are not all equal");
    assert!(top5.contains(&0), "tench (class 0) in the top 5, got {top5:?}");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_label_list_that_does_not_match_the_output_is_refused_at_load() {
    let Some(data) = shared_data("a_label_list_that_does_not_match_the_output_is_refused_at_load") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ten: Vec<&str> = shiftbench_model_config::IMAGENET1K.lines().take(10).collect();
    write(dir.path(), "ten.txt", &(ten.join("\n") + "\n"));
    let model = data.join("models/squeezenet1.1-fp32.pt").canonicalize().unwrap();
    let yaml =
        write(dir.path(), "m.yaml", &format!("plugin: torchscript\nmodel: {}\nlabels: ten.txt\n", model.display()));
    let e = load(&yaml).err().expect("10 labels for 1000 outputs must fail");
    assert!(e.contains("1000 scores per image") && e.contains("10 labels"), "{e}");
    assert!(e.contains("m.yaml"), "names the YAML: {e}");
}

#[test]
fn a_missing_model_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = write(dir.path(), "m.yaml", "plugin: torchscript\nmodel: nowhere.pt\n");
    let e = load(&yaml).err().unwrap();
    assert!(e.contains("nowhere.pt") && e.contains("does not exist"), "{e}");
    let e = TorchScriptModel::load(&LoadRequest { config_path: "".into(), threads: 0 }).err().unwrap();
    assert!(e.contains("needs a model YAML"), "{e}");
}

#[test]
fn a_file_that_is_not_torchscript_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "junk.pt", "this is not a TorchScript archive\n");
    let yaml = write(dir.path(), "m.yaml", "plugin: torchscript\nmodel: junk.pt\n");
    let e = load(&yaml).err().unwrap();
    eprintln!("junk.pt: {e}");
    assert!(e.contains("cannot load") && e.contains("junk.pt") && e.contains("as a TorchScript module"), "{e}");
    assert!(!e.contains("frame #"), "no C++ backtrace: {e}");

    let Some(data) = shared_data("a_file_that_is_not_torchscript_is_refused (ONNX part)") else { return };
    let onnx = data.join("models/squeezenet1.1-fp32.onnx").canonicalize().unwrap();
    let yaml = write(dir.path(), "o.yaml", &format!("plugin: torchscript\nmodel: {}\n", onnx.display()));
    let e = load(&yaml).err().unwrap();
    eprintln!("an ONNX file: {e}");
    assert!(e.contains("cannot load") && e.contains("squeezenet1.1-fp32.onnx"), "{e}");
}

#[test]
fn bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "junk.pt", "x");
    for (opts, expect) in [
        ("options: { thread: 2 }", "unknown option `options.thread`"),
        ("options: { device: gpu }", "options.device: \"gpu\""),
        ("options: { qengine: onednn2 }", "options.qengine"),
        ("input: data_0", "`input: data_0` does not apply"),
    ] {
        let yaml = write(dir.path(), "m.yaml", &format!("plugin: torchscript\nmodel: junk.pt\n{opts}\n"));
        let e = load(&yaml).err().unwrap();
        assert!(e.contains(expect), "{opts}: {e}");
    }
    let yaml = write(dir.path(), "m.yaml", "plugin: torchscript\nmodel: junk.pt\noptions: { device: \"cuda:7\" }\n");
    let e = load(&yaml).err().unwrap();
    if cfg!(feature = "cuda") {
        if tch::Cuda::device_count() < 8 {
            assert!(e.contains("options.device: cuda:7, but libtorch sees"), "{e}");
        }
    } else {
        assert!(e.contains("--features cuda"), "{e}");
    }
}

#[test]
fn wrong_input_lengths_are_errors_not_crashes() {
    let Some(_) = shared_data("wrong_input_lengths_are_errors_not_crashes") else { return };
    let mut model = load(&example("squeezenet1.1-fp32.yaml")).unwrap();
    let e = model.infer(&[0.0; 10], 1).unwrap_err();
    assert!(e.contains("got 10 values for 1 images"), "{e}");
    assert_eq!(model.infer(&[], 0).unwrap(), Vec::<f32>::new());
}

#[test]
fn the_exported_plugin_works_through_the_ffi_adapter() {
    let Some(data) = shared_data("the_exported_plugin_works_through_the_ffi_adapter") else { return };
    let yaml = example("squeezenet1.1-fp32.yaml");
    let req = LoadRequest { config_path: yaml.to_str().unwrap().into(), threads: 0 };
    let mut ffi = shiftbench_plugin::load_adapter::<TorchScriptModel>(&req).unwrap();
    assert_eq!(ffi.card().name.as_str(), "squeezenet1.1-fp32-torchscript");
    let scores = ffi.infer(fish_bgr(&data).as_slice().into(), 1).unwrap();
    assert_eq!(argmax(&scores), 0);
}

/// Copies the TorchScript archive `src` (the shared SqueezeNet 1.1) to `dst` with two more methods
/// in its top-level module (`GraphModule`, in `code/__torch__/torch/fx/graph_module.py`), both
/// forward's steps up to the global average pool `_36` (`[N, 1000, 1, 1]`, the ONNX graph's
/// `pool10_1`): `embed` returns it (before the softmax), `embed_scores` the softmax of it (what
/// forward returns, as a negative control).
fn with_embed_methods(src: &Path, dst: &Path) {
    let rewritten = common::rewrite_archive(src, dst, "code/__torch__/torch/fx/graph_module.py", |code| {
        // The steps this test relies on: the pool, then softmax(flatten(pool)) reshaped.
        assert!(code.contains("    _36 = (GlobalAveragePool).forward(_35, )\n"), "{code}");
        assert!(code.contains("    _38 = (Softmax).forward((Flatten).forward(_36, ), )\n"), "{code}");
        let forward = &code[code.find("  def forward(").unwrap()..];
        let steps = &forward[..forward.find("    _37 = ").unwrap()];
        let embed = steps.replacen("def forward(", "def embed(", 1) + "    return _36\n";
        let scores = steps.replacen("def forward(", "def embed_scores(", 1)
            + "    return (Softmax).forward((Flatten).forward(_36, ), )\n";
        format!("{code}{embed}{scores}")
    });
    assert!(rewritten, "{} has no code/__torch__/torch/fx/graph_module.py", src.display());
}

/// A real photo as the SqueezeNet card wants it: decoded by libtorch, resized (shorter side) and
/// center-cropped to 224 (not Pillow's resampling; both calls below get the same tensor),
/// BGR, 0-255, the card's mean subtracted.
fn photo(path: &Path, model: &TorchScriptModel) -> Vec<f32> {
    let rgb = tch::vision::image::load_and_resize(path, CROP as i64, CROP as i64).unwrap();
    assert_eq!(rgb.size(), [3, CROP as i64, CROP as i64]);
    let bgr = rgb.flip([0]).to_kind(tch::Kind::Float).contiguous();
    let mut chw = vec![0f32; IMAGE_LEN];
    bgr.copy_data(&mut chw, IMAGE_LEN);
    normalize(&chw, model)
}

fn softmax(v: &[f32]) -> Vec<f32> {
    let max = v.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let e: Vec<f64> = v.iter().map(|&x| ((x - max) as f64).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|x| (x / sum) as f32).collect()
}

#[test]
fn squeezenet_embedding_is_the_pooled_output_before_the_softmax() {
    let Some(data) = shared_data("squeezenet_embedding_is_the_pooled_output_before_the_softmax") else { return };
    let photos = data.join("imagenet-samples");
    let files = ["n01440764_tench.JPEG", "n01443537_goldfish.JPEG", "n01514859_hen.JPEG", "n01531178_goldfinch.JPEG"];
    if !files.iter().all(|f| photos.join(f).is_file()) {
        skipped(
            "squeezenet_embedding_is_the_pooled_output_before_the_softmax",
            &format!("photos absent in {}", photos.display()),
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pt = dir.path().join("squeezenet-embed.pt");
    with_embed_methods(&data.join("models/squeezenet1.1-fp32.pt"), &pt);
    // The example card, with this copy of the module and an embedding.
    let card = std::fs::read_to_string(example("squeezenet1.1-fp32.yaml")).unwrap();
    let model_line = card.lines().find(|l| l.starts_with("model:")).unwrap();
    let card = card.replace(model_line, &format!("model: {}", pt.display()));
    let yaml = write(dir.path(), "embed.yaml", &format!("{card}embedding: embed\n"));

    let mut model = load(&yaml).unwrap();
    assert_eq!(model.embedding_len(), 1000);
    assert!(model.describe().contains("embedding: method `embed` of the module, 1000 values per image"));
    let mut control = load(&write(dir.path(), "control.yaml", &format!("{card}embedding: embed_scores\n"))).unwrap();
    assert_eq!(control.embedding_len(), 1000);

    for file in files {
        let image = photo(&photos.join(file), &model);
        let scores = model.infer(&image, 1).unwrap();
        let embedding = model.embed(&image, 1).unwrap();
        assert_eq!(embedding.len(), 1000);
        // forward = softmax(pool): the softmax of the embedding must give forward's scores.
        let from_embedding = softmax(&embedding);
        let diff = scores.iter().zip(&from_embedding).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let top = argmax(&scores);
        eprintln!(
            "{file}: top-1 {} (p {:.3}); embedding range [{:.2}, {:.2}]; max |softmax(embedding) - scores| = {diff:.2e}",
            model.card().labels[top].as_str(),
            scores[top],
            embedding.iter().fold(f32::INFINITY, |m, &x| m.min(x)),
            embedding.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)),
        );
        assert!(diff < 1e-5, "{file}: softmax(embedding) differs from the scores by {diff}");
        assert_eq!(argmax(&embedding), top, "{file}");
        // The negative control: had the plugin returned forward's probabilities as the embedding,
        // their softmax would be almost flat, far from the scores.
        let wrong = softmax(&control.embed(&image, 1).unwrap());
        let diff = scores.iter().zip(&wrong).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff > 1e-2, "{file}: the control must not match ({diff})");
    }
    // The tench photo is a tench.
    let tench = model.embed(&photo(&photos.join(files[0]), &model), 1).unwrap();
    assert_eq!(argmax(&tench), 0);

    // The same through the plugin interface (what the harness calls).
    let req = LoadRequest { config_path: yaml.to_str().unwrap().into(), threads: 0 };
    let mut ffi = shiftbench_plugin::load_embed_adapter::<TorchScriptModel>(&req).unwrap();
    assert_eq!(ffi.embedding_len(), 1000);
    let via_ffi = ffi.embed(photo(&photos.join(files[0]), &model).as_slice().into(), 1).unwrap();
    assert_eq!(via_ffi.as_slice(), tench.as_slice());
}

#[test]
fn squeezenet_without_or_with_an_unknown_embedding_method() {
    let Some(data) = shared_data("squeezenet_without_or_with_an_unknown_embedding_method") else { return };
    let mut model = load(&example("squeezenet1.1-fp32.yaml")).unwrap();
    assert_eq!(model.embedding_len(), 0, "the example YAML names no embedding");
    assert!(model.embed(&vec![0.0; IMAGE_LEN], 1).unwrap_err().contains("has no embedding"));

    let dir = tempfile::tempdir().unwrap();
    let pt = data.join("models/squeezenet1.1-fp32.pt").canonicalize().unwrap();
    let yaml = write(
        dir.path(),
        "m.yaml",
        &format!("plugin: torchscript\nmodel: {}\nlabels: imagenet1k\nembedding: embed\n", pt.display()),
    );
    let e = load(&yaml).err().unwrap();
    eprintln!("the shipped squeezenet with `embedding: embed`: {e}");
    assert!(e.contains("m.yaml") && e.contains("the module has no method `embed`"), "{e}");
    assert!(e.contains("@torch.jit.export"), "{e}");
}
