//! The plugin on small TorchScript modules these tests trace themselves with libtorch (no shared
//! data needed): the batch probe, layouts, outputs and the label check, against scores computed
//! here by hand.

mod common;

use std::path::{Path, PathBuf};

use shiftbench_plugin::{Classifier, LoadRequest};
use shiftbench_torchscript::{synthetic_images, TorchScriptModel};
use tch::{CModule, Device, Kind, Tensor};

const CROP: usize = 16;
const CLASSES: usize = 10;

/// A fixed 3 x CLASSES weight matrix.
fn weights() -> Vec<f32> {
    (0..3 * CLASSES).map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0).collect()
}

/// Traces `f` on one image of shape `shape` and saves the module as `dir/name`. Tensors `f`
/// uses as constants must exist before tracing starts (tch creates tensors from data with
/// `zeros` then a copy, and the tracer would record only the `zeros`).
fn trace(dir: &Path, name: &str, shape: [i64; 4], f: impl Fn(&Tensor) -> Vec<Tensor>) -> PathBuf {
    let x = Tensor::f_from_slice(&vec![0.5f32; shape.iter().product::<i64>() as usize]).unwrap().f_view(shape).unwrap();
    let module = CModule::create_by_tracing("Traced", "forward", &[x], &mut |inputs: &[Tensor]| f(&inputs[0])).unwrap();
    let path = dir.join(name);
    module.save(&path).unwrap();
    path
}

fn weight_tensor() -> Tensor {
    Tensor::f_from_slice(&weights()).unwrap().f_view([3, CLASSES as i64]).unwrap()
}

/// Per-image channel means times the weights: `[N, CLASSES]`.
fn linear_on_means(x: &Tensor, w: &Tensor, spatial: &[i64]) -> Tensor {
    x.f_mean_dim(spatial, false, Kind::Float).unwrap().f_matmul(w).unwrap()
}

/// A model YAML for `model` with a list of CLASSES labels and a CROP x CROP input.
fn yaml(dir: &Path, model: &Path, extra: &str) -> PathBuf {
    let labels: Vec<&str> = shiftbench_model_config::IMAGENET1K.lines().take(CLASSES).collect();
    std::fs::write(dir.join("labels.txt"), labels.join("\n") + "\n").unwrap();
    let text = format!(
        "plugin: torchscript\nmodel: {}\nlabels: labels.txt\npreprocess:\n  resize: {CROP}\n  crop: {CROP}\n{extra}",
        model.file_name().unwrap().to_str().unwrap()
    );
    let p = dir.join(format!("{}.yaml", model.file_stem().unwrap().to_str().unwrap()));
    std::fs::write(&p, text).unwrap();
    p
}

fn load(yaml: &Path) -> Result<TorchScriptModel, String> {
    TorchScriptModel::load(&LoadRequest { config_path: yaml.to_str().unwrap().into(), threads: 1 })
}

/// What `linear_on_means` gives, computed without libtorch. `nchw`: the layout of `images`.
fn expected(images: &[f32], n: usize, nchw: bool) -> Vec<f32> {
    let hw = CROP * CROP;
    let w = weights();
    let mut out = Vec::new();
    for img in images.chunks(3 * hw).take(n) {
        let mut means = [0f64; 3];
        for (i, v) in img.iter().enumerate() {
            let c = if nchw { i / hw } else { i % 3 };
            means[c] += *v as f64 / hw as f64;
        }
        for k in 0..CLASSES {
            out.push((0..3).map(|c| means[c] * w[c * CLASSES + k] as f64).sum::<f64>() as f32);
        }
    }
    out
}

fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-4 + 1e-4 * y.abs(), "score {i}: {x} vs {y}");
    }
}

#[test]
fn a_batch_agnostic_module_gets_no_batch_limit_and_correct_scores() {
    let dir = tempfile::tempdir().unwrap();
    let w = weight_tensor();
    let pt =
        trace(dir.path(), "linear.pt", [1, 3, CROP as i64, CROP as i64], |x| vec![linear_on_means(x, &w, &[2, 3])]);
    let mut model = load(&yaml(dir.path(), &pt, "")).unwrap();
    let card = model.card();
    assert_eq!(card.max_batch, 0, "batch of 2 verified: {:?}", model.batch_note());
    assert_eq!(card.labels.len(), CLASSES);
    assert_eq!(card.name.as_str(), "linear");
    let images = synthetic_images(&card.preprocess, 5, 42);
    let scores = model.infer(&images, 5).unwrap();
    assert_close(&scores, &expected(&images, 5, true));
}

#[test]
fn nhwc_layout_is_passed_as_n_h_w_c() {
    let dir = tempfile::tempdir().unwrap();
    let w = weight_tensor();
    let pt = trace(dir.path(), "nhwc.pt", [1, CROP as i64, CROP as i64, 3], |x| vec![linear_on_means(x, &w, &[1, 2])]);
    let mut model = load(&yaml(dir.path(), &pt, "  layout: nhwc\n")).unwrap();
    let images = synthetic_images(&model.card().preprocess, 3, 7);
    let scores = model.infer(&images, 3).unwrap();
    assert_close(&scores, &expected(&images, 3, false));
}

#[test]
fn a_module_with_a_batch_frozen_at_one_is_limited_to_one_image_per_call() {
    let dir = tempfile::tempdir().unwrap();
    // [N, CLASSES] reshaped to the traced [1, CLASSES, 1, 1]: a batch of 2 cannot be reshaped.
    let w = weight_tensor();
    let pt = trace(dir.path(), "frozen.pt", [1, 3, CROP as i64, CROP as i64], |x| {
        vec![linear_on_means(x, &w, &[2, 3]).f_reshape([1, CLASSES as i64, 1, 1]).unwrap()]
    });
    let mut model = load(&yaml(dir.path(), &pt, "")).unwrap();
    assert_eq!(model.card().max_batch, 1);
    let note = model.batch_note().unwrap();
    assert!(note.contains("a batch of 2 failed"), "{note}");
    assert!(!note.contains("frame #"), "{note}");
    let images = synthetic_images(&model.card().preprocess, 1, 3);
    assert_close(&model.infer(&images, 1).unwrap(), &expected(&images, 1, true));
    let e = model.infer(&synthetic_images(&model.card().preprocess, 2, 3), 2).unwrap_err();
    assert!(e.contains("at most 1 per call"), "{e}");

    // `batch:` in the YAML is trusted (here wrongly): the failure comes at inference, as an error.
    let mut model = load(&yaml(dir.path(), &pt, "batch: 4\n")).unwrap();
    assert_eq!(model.card().max_batch, 4);
    let e = model.infer(&synthetic_images(&model.card().preprocess, 2, 3), 2).unwrap_err();
    assert!(e.contains("forward pass failed") && e.contains("RuntimeError"), "{e}");
}

#[test]
fn a_module_that_mixes_images_of_a_batch_is_limited_to_one_image_per_call() {
    let dir = tempfile::tempdir().unwrap();
    // Adds the mean over the whole batch: runs with any batch, but an image's scores depend on
    // the other images in its batch.
    let w = weight_tensor();
    let pt = trace(dir.path(), "mixing.pt", [1, 3, CROP as i64, CROP as i64], |x| {
        vec![linear_on_means(x, &w, &[2, 3]).f_add(&x.f_mean(Kind::Float).unwrap()).unwrap()]
    });
    let model = load(&yaml(dir.path(), &pt, "")).unwrap();
    assert_eq!(model.card().max_batch, 1);
    let note = model.batch_note().unwrap();
    assert!(note.contains("scored differently than alone"), "{note}");
}

#[test]
fn output_count_must_match_the_label_count() {
    let dir = tempfile::tempdir().unwrap();
    // 2 x CLASSES scores per image.
    let w = weight_tensor();
    let pt = trace(dir.path(), "double.pt", [1, 3, CROP as i64, CROP as i64], |x| {
        let y = linear_on_means(x, &w, &[2, 3]);
        vec![Tensor::f_cat(&[&y, &y], 1).unwrap()]
    });
    let e = load(&yaml(dir.path(), &pt, "")).err().unwrap();
    assert!(e.contains("returns 20 scores per image (output shape [1, 20])"), "{e}");
    assert!(e.contains("has 10 labels"), "{e}");
}

/// Copies the TorchScript archive `src` to `dst` with `forward`'s body replaced by `body`
/// (TorchScript code; `_1` is the `[N, CLASSES]` scores) returning `ret` (its type).
fn with_forward(src: &Path, dst: &Path, ret: &str, body: &str) {
    with_code(src, dst, ret, body, "");
}

/// [`with_forward`], then `methods` (TorchScript code: more methods of the module, indented by 2).
fn with_code(src: &Path, dst: &Path, ret: &str, body: &str, methods: &str) {
    common::rewrite_archive(src, dst, "code/__torch__.py", |code| {
        let head = &code[..code.find("    argument_1: Tensor) -> Tensor:").expect("traced forward")];
        format!(
            "{head}    argument_1: Tensor) -> {ret}:\n    _0 = torch.mean(argument_1, [2, 3], False, dtype=6)\n    \
             _1 = torch.matmul(_0, CONSTANTS.c0)\n{body}{methods}"
        )
    });
}

#[test]
fn tuple_and_dict_outputs_are_selected_with_output() {
    let dir = tempfile::tempdir().unwrap();
    let w = weight_tensor();
    let linear =
        trace(dir.path(), "linear.pt", [1, 3, CROP as i64, CROP as i64], |x| vec![linear_on_means(x, &w, &[2, 3])]);
    let images = synthetic_images(&load(&yaml(dir.path(), &linear, "")).unwrap().card().preprocess, 2, 9);
    let want = expected(&images, 2, true);

    let pair = dir.path().join("pair.pt");
    with_forward(&linear, &pair, "Tuple[Tensor, Tensor]", "    return (torch.cat([_1, _1], 1), _1)\n");
    let e = load(&yaml(dir.path(), &pair, "")).err().unwrap();
    assert!(e.contains("returns a tuple of 2 rather than a tensor") && e.contains("`output:`"), "{e}");
    let mut model = load(&yaml(dir.path(), &pair, "output: 1\n")).unwrap();
    assert_eq!(model.card().max_batch, 0);
    assert_close(&model.infer(&images, 2).unwrap(), &want);
    let e = load(&yaml(dir.path(), &pair, "output: \"2\"\n")).err().unwrap();
    assert!(e.contains("`output: 2` but the module returns only 2 values"), "{e}");

    let dict = dir.path().join("dict.pt");
    with_forward(&linear, &dict, "Dict[str, Tensor]", "    return {\"features\": _0, \"logits\": _1}\n");
    let mut model = load(&yaml(dir.path(), &dict, "output: logits\n")).unwrap();
    assert_close(&model.infer(&images, 2).unwrap(), &want);
    let e = load(&yaml(dir.path(), &dict, "output: scores\n")).err().unwrap();
    assert!(e.contains("`output: scores` is not a key") && e.contains("features, logits"), "{e}");
    let e = load(&yaml(dir.path(), &linear, "output: logits\n")).err().unwrap();
    assert!(e.contains("returns a single tensor"), "{e}");
}

#[test]
fn a_wrong_input_size_fails_at_load() {
    let dir = tempfile::tempdir().unwrap();
    // Needs exactly CROP x CROP: flattens the image into a fixed-size matmul.
    let pt = trace(dir.path(), "fixed.pt", [1, 3, CROP as i64, CROP as i64], |x| {
        let w = Tensor::f_ones([(3 * CROP * CROP) as i64, CLASSES as i64], (Kind::Float, Device::Cpu)).unwrap();
        vec![x.f_flatten(1, -1).unwrap().f_matmul(&w).unwrap()]
    });
    let y = yaml(dir.path(), &pt, "");
    std::fs::write(&y, std::fs::read_to_string(&y).unwrap().replace(&format!("crop: {CROP}"), "crop: 8")).unwrap();
    let e = load(&y).err().unwrap();
    assert!(e.contains("test run on one 8x8 image failed"), "{e}");
}

/// Per-image channel means (what the `embed` methods below return before any change), computed
/// without libtorch. `images`: NCHW.
fn channel_means(images: &[f32], n: usize) -> Vec<f32> {
    let hw = CROP * CROP;
    images
        .chunks(3 * hw)
        .take(n)
        .flat_map(|img| {
            (0..3).map(move |c| (img[c * hw..(c + 1) * hw].iter().map(|&v| v as f64).sum::<f64>() / hw as f64) as f32)
        })
        .collect()
}

/// The traced linear module with more methods, each `def NAME(self, x: Tensor) -> RET:` with a
/// body where `m` is `x`'s per-image channel means (`[N, 3]`).
fn linear_with_methods(dir: &Path, name: &str, methods: &[(&str, &str, &str)]) -> PathBuf {
    let w = weight_tensor();
    let linear = trace(dir, "linear.pt", [1, 3, CROP as i64, CROP as i64], |x| vec![linear_on_means(x, &w, &[2, 3])]);
    let code: String = methods
        .iter()
        .map(|(method, ret, body)| {
            format!("  def {method}(self, x: Tensor) -> {ret}:\n    m = torch.mean(x, [2, 3], False, dtype=6)\n{body}")
        })
        .collect();
    let dst = dir.join(name);
    with_code(&linear, &dst, "Tensor", "    return _1\n", &code);
    dst
}

#[test]
fn an_embedding_method_gives_each_image_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let pt = linear_with_methods(dir.path(), "embed.pt", &[("embed", "Tensor", "    return m\n")]);

    let mut plain = load(&yaml(dir.path(), &pt, "")).unwrap();
    assert_eq!(plain.embedding_len(), 0, "no `embedding:`, no embedding");
    assert!(plain.describe().contains("no embedding"), "{}", plain.describe());
    let images = synthetic_images(&plain.card().preprocess, 1, 1);
    let e = plain.embed(&images, 1).unwrap_err();
    assert!(e.contains("has no embedding"), "{e}");

    let mut model = load(&yaml(dir.path(), &pt, "embedding: embed\n")).unwrap();
    assert_eq!(model.embedding_len(), 3);
    assert_eq!(model.card().max_batch, 0, "scores and embeddings verified on a batch of 2: {:?}", model.batch_note());
    assert!(
        model.describe().contains("embedding: method `embed` of the module, 3 values per image"),
        "{}",
        model.describe()
    );
    let images = synthetic_images(&model.card().preprocess, 5, 11);
    assert_close(&model.embed(&images, 5).unwrap(), &channel_means(&images, 5));
    // Scoring is unchanged.
    assert_close(&model.infer(&images, 5).unwrap(), &expected(&images, 5, true));
    assert!(model.embed(&[], 0).unwrap().is_empty());
    let e = model.embed(&images[..10], 1).unwrap_err();
    assert!(e.contains("embed got 10 values for 1 images"), "{e}");
}

#[test]
fn an_embedding_method_that_fails_or_mixes_a_batch_limits_the_model_to_one_image_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let pt = linear_with_methods(
        dir.path(),
        "batchy.pt",
        &[
            // Adds the mean over the whole batch: runs, but mixes the images.
            ("mixing", "Tensor", "    return torch.add(m, torch.mean(x))\n"),
            // Reshaped to one image: a batch of 2 fails.
            ("frozen", "Tensor", "    return torch.reshape(m, [1, 3])\n"),
            // Returns [3] for 2 images: no batch dimension.
            ("squashed", "Tensor", "    return torch.mean(m, [0], False, dtype=6)\n"),
        ],
    );
    for (method, why) in [
        ("mixing", "the embedding method `mixing`: in a batch of 2, image 0 gave a different embedding than alone"),
        ("frozen", "a batch of 2 failed: the method `frozen` failed: in the TorchScript interpreter: RuntimeError"),
        ("squashed", "a batch of 2 failed: for a batch of 2 images the method `squashed` returned shape [3], without"),
    ] {
        let mut model = load(&yaml(dir.path(), &pt, &format!("embedding: {method}\n"))).unwrap();
        assert_eq!(model.card().max_batch, 1, "{method}");
        assert_eq!(model.embedding_len(), 3, "{method}");
        let note = model.batch_note().unwrap();
        assert!(note.contains(why), "{method}: {note}");
        let images = synthetic_images(&model.card().preprocess, 2, 5);
        let e = model.embed(&images, 2).unwrap_err();
        assert!(e.contains("at most 1 per call"), "{e}");
        // One image at a time is right for all three.
        let one = &images[..3 * CROP * CROP];
        let mut want = channel_means(one, 1);
        if method == "mixing" {
            let mean = (one.iter().map(|&v| v as f64).sum::<f64>() / one.len() as f64) as f32;
            want.iter_mut().for_each(|v| *v += mean);
        }
        assert_close(&model.embed(one, 1).unwrap(), &want);
    }
}

#[test]
fn a_wrong_embedding_method_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let pt = linear_with_methods(
        dir.path(),
        "wrong.pt",
        &[
            ("pair", "Tuple[Tensor, Tensor]", "    return (m, m)\n"),
            ("nan", "Tensor", "    z = torch.sub(m, m)\n    return torch.div(z, z)\n"),
            ("empty", "Tensor", "    return torch.narrow(m, 1, 0, 0)\n"),
        ],
    );
    for (embedding, want) in [
        ("nope", "the module has no method `nope`"),
        ("pair", "the method `pair` returns a tuple of 2 rather than a tensor"),
        ("nan", "the embedding of image 0 (method `nan`) has a non-finite value (NaN at position 0)"),
        ("empty", "the method returned an empty tensor (shape [1, 0])"),
        ("\"\"", "`embedding:` is empty"),
    ] {
        let y = yaml(dir.path(), &pt, &format!("embedding: {embedding}\n"));
        let e = load(&y).err().unwrap();
        eprintln!("embedding: {embedding}: {e}");
        assert!(e.contains(want), "{embedding}: {e}");
        assert!(e.contains("wrong.yaml"), "names the YAML: {e}");
        assert!(!e.contains("frame #") && !e.contains('\n'), "one line, no backtrace: {e}");
    }
}
