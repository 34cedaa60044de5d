//! The interface's enums in a model YAML: every name the interface spells (`as_str`) reads back
//! as that value, and a bad value is serde's `unknown variant` sentence at its line and column,
//! naming the choices.

use std::path::Path;

use shiftbench_model_config::ModelConfig;
use shiftbench_plugin::{ChannelOrder, Interpolation, Layout, ScoreKind};

fn parse(yaml: &str) -> Result<ModelConfig, String> {
    ModelConfig::parse(yaml, Path::new("dir/m.yaml")).map_err(|e| e.0)
}

#[test]
fn every_interface_name_reads_back() {
    for v in Interpolation::ALL {
        let c = parse(&format!("plugin: onnx\npreprocess:\n  interpolation: {v}\n")).unwrap();
        assert_eq!(c.preprocess.interpolation, v);
    }
    for v in ChannelOrder::ALL {
        assert_eq!(
            parse(&format!("plugin: onnx\npreprocess:\n  channel_order: {v}\n")).unwrap().preprocess.channel_order,
            v
        );
    }
    for v in Layout::ALL {
        assert_eq!(parse(&format!("plugin: onnx\npreprocess:\n  layout: {v}\n")).unwrap().preprocess.layout, v);
    }
    for v in ScoreKind::ALL {
        assert_eq!(parse(&format!("plugin: onnx\nscores: {v}\n")).unwrap().scores, v);
    }
    // Absent, or null: the defaults.
    let c = parse("plugin: onnx\nscores: ~\npreprocess: {}\n").unwrap();
    assert_eq!(c.scores, ScoreKind::Logits);
    assert_eq!(
        (c.preprocess.interpolation, c.preprocess.channel_order, c.preprocess.layout),
        (Interpolation::Bilinear, ChannelOrder::Rgb, Layout::Nchw)
    );
}

#[test]
fn a_bad_value_names_its_place_and_the_choices() {
    let cases = [
        (
            "plugin: onnx\npreprocess:\n  interpolation: lanczos\n",
            "dir/m.yaml:3:18: preprocess.interpolation: unknown variant `lanczos`, expected one of `nearest`, `bilinear`, `bicubic`",
        ),
        (
            "plugin: onnx\npreprocess:\n  channel_order: RGB\n",
            "dir/m.yaml:3:18: preprocess.channel_order: unknown variant `RGB`, expected `rgb` or `bgr`",
        ),
        (
            "plugin: onnx\npreprocess: {layout: chw}\n",
            "dir/m.yaml:2:22: preprocess.layout: unknown variant `chw`, expected `nchw` or `nhwc`",
        ),
        ("plugin: onnx\nscores: softmax\n", "dir/m.yaml:2:9: scores: unknown variant `softmax`, expected `logits` or `probabilities`"),
        ("plugin: onnx\nscores: 3\n", "dir/m.yaml:2:9: scores: unknown variant `3`, expected `logits` or `probabilities`"),
    ];
    for (yaml, want) in cases {
        assert_eq!(parse(yaml).unwrap_err(), want, "{yaml}");
    }
}
