//! The plugin on the real models in ../shared/data (skipped when that folder is absent).
//! Needs ONNX Runtime installed by scripts/setup-onnxruntime.sh (or ORT_DYLIB_PATH).

mod common;

use common::*;
use shiftbench_onnx::Elem;
use shiftbench_plugin::{ChannelOrder, Classifier, Layout, ScoreKind};

#[test]
fn golden_fish_through_fp16_squeezenet() {
    let Some(data) = data_dir("golden_fish_through_fp16_squeezenet") else { return };
    let dir = tempfile::tempdir().unwrap();
    let yaml = write_yaml(dir.path(), "sq16.yaml", &squeezenet_yaml(&data.join("models/squeezenet1.1-fp16.onnx"), ""));
    let mut m = load(&yaml).unwrap();

    // Read from the model, not the YAML.
    assert_eq!(m.plan().input, "data_0");
    assert_eq!(m.plan().input_elem, Elem::F16);
    assert_eq!(m.plan().output, "softmaxout_1");
    assert_eq!(m.plan().fixed_batch, Some(1));
    let card = m.card();
    assert_eq!(card.max_batch, 1);
    assert_eq!(card.labels.len(), 1000);
    assert_eq!(card.scores, ScoreKind::Probabilities);

    // fish.csv is the exact tensor the model's authors feed (no mean subtracted).
    let scores = m.infer(&fish(&data), 1).unwrap();
    let expected = fish_expected(&data);
    let diff = max_abs_diff(&scores, &expected);
    println!("golden fish: max abs diff {diff:e}, class 0 = {} (expected {})", scores[0], expected[0]);
    assert!(diff <= 1e-3, "max abs diff {diff} > 1e-3");
    assert_eq!(argmax(&scores), 0);

    // A fixed batch of 1: more images per call is refused, not silently mis-shaped.
    let two = [fish(&data), fish(&data)].concat();
    let e = m.infer(&two, 2).unwrap_err();
    assert!(e.contains("at most 1"), "{e}");
    let e = m.infer(&two[..1000], 1).unwrap_err();
    assert!(e.contains("150528"), "{e}");
}

#[test]
fn fp32_squeezenet_agrees_on_the_fish() {
    let Some(data) = data_dir("fp32_squeezenet_agrees_on_the_fish") else { return };
    let dir = tempfile::tempdir().unwrap();
    let yaml = write_yaml(dir.path(), "sq32.yaml", &squeezenet_yaml(&data.join("models/squeezenet1.1-fp32.onnx"), ""));
    let mut m = load(&yaml).unwrap();
    assert_eq!(m.plan().input_elem, Elem::F32);
    let scores = m.infer(&fish(&data), 1).unwrap();
    let expected = fish_expected(&data);
    println!(
        "fp32 fish: top-1 {} ({}), max abs diff to the fp16 golden {:e}",
        argmax(&scores),
        scores[0],
        max_abs_diff(&scores, &expected)
    );
    assert_eq!(argmax(&scores), argmax(&expected));
    assert!(max_abs_diff(&scores, &expected) < 1e-2);
}

/// The fish as a torchvision-normalised RGB tensor, plus two variants: three different images.
fn mobilenet_inputs(data: &std::path::Path) -> Vec<Vec<f32>> {
    let bgr = fish(data);
    let hw = 224 * 224;
    let mean = [0.485f32, 0.456, 0.406];
    let std = [0.229f32, 0.224, 0.225];
    let mut rgb = vec![0f32; 3 * hw];
    for c in 0..3 {
        for i in 0..hw {
            rgb[c * hw + i] = (bgr[(2 - c) * hw + i] / 255.0 - mean[c]) / std[c];
        }
    }
    let mut flipped = rgb.clone();
    for c in 0..3 {
        for y in 0..224 {
            for x in 0..224 {
                flipped[c * hw + y * 224 + x] = rgb[c * hw + y * 224 + (223 - x)];
            }
        }
    }
    let shuffled: Vec<f32> = [&rgb[2 * hw..], &rgb[..hw], &rgb[hw..2 * hw]].concat();
    vec![rgb, flipped, shuffled]
}

#[test]
fn int8_mobilenet_batch_of_three_equals_three_singles() {
    let Some(data) = data_dir("int8_mobilenet_batch_of_three_equals_three_singles") else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = data.join("models/mobilenetv2-12-int8.onnx");
    let yaml = write_yaml(dir.path(), "mb.yaml", &format!("plugin: onnx\nmodel: {}\n", model.display()));
    let mut m = load(&yaml).unwrap();
    assert_eq!(m.plan().fixed_batch, None);
    assert_eq!(m.card().max_batch, 0);
    assert_eq!(m.plan().input_elem, Elem::F32);

    let imgs = mobilenet_inputs(&data);
    let singles: Vec<f32> = imgs.iter().flat_map(|x| m.infer(x, 1).unwrap()).collect();
    let batch = m.infer(&imgs.concat(), 3).unwrap();
    assert_eq!(batch.len(), 3 * 1000);
    let diff = max_abs_diff(&batch, &singles);
    let tops: Vec<usize> = batch.chunks(1000).map(argmax).collect();
    println!("int8 mobilenet: batch-vs-singles max abs diff {diff:e}; top-1 per image {tops:?}");
    assert!(diff <= 1e-5, "batch of 3 differs from 3 singles by {diff}");
    // The three images really are different (a batch of copies would prove nothing).
    assert!(max_abs_diff(&batch[..1000], &batch[2000..]) > 1e-2);
}

#[test]
fn example_yamls_load_with_relative_model_paths() {
    let Some(_data) = data_dir("example_yamls_load_with_relative_model_paths") else { return };
    let ex = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let sq = load(&ex.join("squeezenet1.1-fp16.yaml")).unwrap();
    let c = sq.card();
    assert_eq!(c.name.as_str(), "squeezenet1.1-fp16");
    assert_eq!(c.max_batch, 1);
    assert_eq!(c.preprocess.channel_order, ChannelOrder::Bgr);
    assert_eq!(c.preprocess.scale, 1.0);
    assert_eq!(c.preprocess.mean, [104.0, 117.0, 123.0]);
    assert_eq!(c.scores, ScoreKind::Probabilities);
    let mb = load(&ex.join("mobilenetv2-12-int8.yaml")).unwrap();
    let c = mb.card();
    assert_eq!(c.name.as_str(), "mobilenetv2-12-int8");
    assert_eq!(c.max_batch, 0);
    assert_eq!(c.preprocess.layout, Layout::Nchw);
    assert_eq!(c.scores, ScoreKind::Logits);
}

#[test]
fn yaml_that_disagrees_with_the_model_names_both_values() {
    let Some(data) = data_dir("yaml_that_disagrees_with_the_model_names_both_values") else { return };
    let dir = tempfile::tempdir().unwrap();
    let sq = data.join("models/squeezenet1.1-fp16.onnx");

    // Crop vs the model's fixed 224x224.
    let y = write_yaml(dir.path(), "crop.yaml", &squeezenet_yaml(&sq, "  crop: 227\n"));
    let e = load_err(&y);
    println!("{e}");
    assert!(e.contains("crop is 227") && e.contains("224") && e.contains("crop.yaml"), "{e}");

    // Label count vs the model's 1000 outputs.
    let labels: String = (0..10).map(|i| format!("n{:08}\n", 1440764 + i)).collect();
    std::fs::write(dir.path().join("ten.txt"), labels).unwrap();
    let y = write_yaml(dir.path(), "labels.yaml", &format!("{}labels: ten.txt\n", squeezenet_yaml(&sq, "")));
    let e = load_err(&y);
    println!("{e}");
    assert!(e.contains("10 classes") && e.contains("1000 scores"), "{e}");

    // An input name the model does not have.
    let y = write_yaml(dir.path(), "input.yaml", &format!("{}input: image\n", squeezenet_yaml(&sq, "")));
    let e = load_err(&y);
    println!("{e}");
    assert!(e.contains("`image`") && e.contains("`data_0`"), "{e}");

    // An output name the model does not have.
    let y = write_yaml(dir.path(), "output.yaml", &format!("{}output: logits\n", squeezenet_yaml(&sq, "")));
    let e = load_err(&y);
    assert!(e.contains("`logits`") && e.contains("`softmaxout_1`"), "{e}");

    // NHWC layout vs the NCHW model.
    let y = write_yaml(dir.path(), "nhwc.yaml", &squeezenet_yaml(&sq, "  layout: nhwc\n"));
    let e = load_err(&y);
    println!("{e}");
    assert!(e.contains("layout is nhwc") && e.contains("[1, 3, 224, 224]"), "{e}");

    // A batch larger than the model's fixed batch.
    let y = write_yaml(dir.path(), "batch.yaml", &format!("{}batch: 4\n", squeezenet_yaml(&sq, "")));
    let e = load_err(&y);
    assert!(e.contains("batch is 4") && e.contains("fixed batch of 1"), "{e}");

    // Options the plugin does not know.
    let y = write_yaml(dir.path(), "opt.yaml", &format!("{}options:\n  thread: 2\n", squeezenet_yaml(&sq, "")));
    let e = load_err(&y);
    assert!(e.contains("options.thread ") && e.contains("threads"), "{e}");
}

#[test]
fn threads_and_optimization_options_are_honoured() {
    let Some(data) = data_dir("threads_and_optimization_options_are_honoured") else { return };
    let dir = tempfile::tempdir().unwrap();
    let sq = data.join("models/squeezenet1.1-fp32.onnx");
    let y = write_yaml(
        dir.path(),
        "opts.yaml",
        &format!("{}options:\n  threads: 1\n  optimization: disable\n  spinning: false\n", squeezenet_yaml(&sq, "")),
    );
    let mut m = load(&y).unwrap();
    assert_eq!(argmax(&m.infer(&fish(&data), 1).unwrap()), 0);
    let y = write_yaml(dir.path(), "bad.yaml", &format!("{}options:\n  optimization: max\n", squeezenet_yaml(&sq, "")));
    let e = load_err(&y);
    assert!(e.contains("\"max\"") && e.contains("disable, basic, extended, layout, all"), "{e}");
}
