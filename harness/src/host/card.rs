//! A model's preprocessing spec in plain types: how it crosses the worker pipe and how a result
//! file records it. The interface's enums become their lowercase names
//! (`Interpolation::as_str`) and are read back with their `parse`, the one spelling everywhere.
//! Also a card for people: in one line ([`card_summary`]) and as the commented model YAML that
//! `shiftbench model init` writes ([`model_yaml`], naming the model file by [`yaml_model_path`]).

use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use shiftbench_plugin::{ChannelOrder, Interpolation, Layout, PreprocessSpec};

/// How a model's input is prepared, as its card says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessInfo {
    pub resize: u32,
    pub crop: u32,
    pub interpolation: String,
    pub channel_order: String,
    pub layout: String,
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl PreprocessInfo {
    pub fn of(p: &PreprocessSpec) -> PreprocessInfo {
        PreprocessInfo {
            resize: p.resize,
            crop: p.crop,
            interpolation: p.interpolation.as_str().into(),
            channel_order: p.channel_order.as_str().into(),
            layout: p.layout.as_str().into(),
            scale: p.scale,
            mean: p.mean,
            std: p.std,
        }
    }

    /// The spec again, or which name is unknown.
    pub fn spec(&self) -> Result<PreprocessSpec> {
        let bad = |what: &str, v: &str| anyhow!("unknown {what} {v:?}");
        Ok(PreprocessSpec {
            resize: self.resize,
            crop: self.crop,
            interpolation: Interpolation::parse(&self.interpolation)
                .ok_or_else(|| bad("interpolation", &self.interpolation))?,
            channel_order: ChannelOrder::parse(&self.channel_order)
                .ok_or_else(|| bad("channel order", &self.channel_order))?,
            layout: Layout::parse(&self.layout).ok_or_else(|| bad("layout", &self.layout))?,
            scale: self.scale,
            mean: self.mean,
            std: self.std,
        })
    }
}

/// A card in one line, for people: preprocessing, labels, scores, batch limit.
pub fn card_summary(card: &shiftbench_plugin::ModelCard, labels: &[String]) -> String {
    let p = &card.preprocess;
    let range = if (p.scale - 1.0 / 255.0).abs() < 1e-9 {
        "0-1".to_string()
    } else if p.scale == 1.0 {
        "0-255".into()
    } else {
        format!("x{}", p.scale)
    };
    let list = shiftbench_model_config::builtin_labels_name(labels).map(|n| format!(" ({n})")).unwrap_or_default();
    let batch = match card.max_batch {
        0 => "any batch".to_string(),
        n => format!("at most {n} per call"),
    };
    format!(
        "resize {} {}, crop {}, {} {range}, mean {:?}, std {:?}, {}; {} labels{list}; {}; {batch}",
        p.resize,
        p.interpolation,
        p.crop,
        p.channel_order,
        p.mean,
        p.std,
        p.layout,
        labels.len(),
        card.scores
    )
}

/// A commented model YAML holding `card` for the model file `model` (as the YAML will name it,
/// relative to itself) run by `plugin`: what `shiftbench model init` writes.
pub fn model_yaml(
    plugin: &str,
    model: &str,
    card: &shiftbench_plugin::ModelCard,
    labels: &[String],
    source: &str,
) -> String {
    let p = &card.preprocess;
    let q = |s: &str| serde_yaml::to_string(s).map(|t| t.trim_end().to_string()).unwrap_or_else(|_| format!("{s:?}"));
    let range = if p.scale == 1.0 { "0-255" } else { "0-1" };
    let labels_line = match shiftbench_model_config::builtin_labels_name(labels) {
        Some(n) => format!("labels: {n:<27} # the classes in output order: imagenet1k, imagenet22k, imagenet21k_goog, or a file of wnids"),
        None => format!("labels: labels.txt                  # the classes in output order ({} wnids): write them to this file", labels.len()),
    };
    let batch = match card.max_batch {
        0 => "# batch: 0                          # most images per call; 0 = as many as the harness likes (the model takes any)".to_string(),
        n => format!("# batch: {n:<26} # most images per call; the model takes at most {n}"),
    };
    let f = |v: [f32; 3]| format!("[{}, {}, {}]", v[0], v[1], v[2]);
    // A Python model's file is its code, called through a factory; other models' files are
    // weights, tuned with `options:`.
    let (model_line, tail) = if plugin == "python" {
        (
            format!(
                "python: {:<27} # the Python file (relative to this YAML); or module: <package.module>\n\
                 factory: load                       # the function that builds the model, called once with args",
                q(model)
            ),
            "# args: {weights: model.pth}        # the factory's keyword arguments; a file named here is passed as its path\n\
             # python_env: .venv                 # a virtual environment of the plugin's Python (default: $VIRTUAL_ENV)\n\
             # device: cpu                       # cpu | cuda | cuda:N: where a torch.nn.Module runs\n\
             # embedding: avgpool                # a submodule whose output is the embedding (or an embed(batch) method)"
                .to_string(),
        )
    } else {
        (
            format!("model: {:<28} # the model file (a relative path is relative to this YAML)", q(model)),
            "# options: {threads: 0}            # backend options: see the plugin's README".to_string(),
        )
    };
    // The source goes into a comment: a line break in it would end the comment.
    let source = if source.chars().any(char::is_control) { format!("{source:?}") } else { source.to_string() };
    format!(
        "# Model YAML written by `shiftbench model init` for {source}.\n\
         # What the model file says (input size, layout, output width) was read from it; the rest is\n\
         # torchvision's default. Check it against how the model was trained (above all the\n\
         # preprocessing: Caffe-style models want bgr, 0-255 and mean [104, 117, 123] with std 1),\n\
         # then run it with --model THIS_FILE.yaml.\n\
         plugin: {plugin:<27} # the plugin that runs the model: onnx, torchscript or python\n\
         {model_line}\n\
         name: {:<29} # the name results are filed under\n\
         {labels_line}\n\
         scores: {:<27} # logits | probabilities: what the model outputs (a test batch summed to 1 or not)\n\
         {batch}\n\
         preprocess:\n\
         \x20 resize: {:<25} # the shorter side before the crop (torchvision: crop / 0.875)\n\
         \x20 crop: {:<27} # the center crop: the model's input size\n\
         \x20 interpolation: {:<18} # bilinear | bicubic | nearest (antialiased, as PIL)\n\
         \x20 channel_order: {:<18} # rgb | bgr\n\
         \x20 range: {range:<26} # 0-1 (pixels / 255) | 0-255\n\
         \x20 mean: {:<27} # per channel, in the model's channel order and range\n\
         \x20 std: {:<28} # per channel\n\
         \x20 layout: {:<25} # nchw | nhwc\n\
         {tail}\n",
        q(card.name.as_str()),
        card.scores.as_str(),
        p.resize,
        p.crop,
        p.interpolation.as_str(),
        p.channel_order.as_str(),
        f(p.mean),
        f(p.std),
        p.layout.as_str(),
    )
}

/// How a model YAML in the folder `yaml_dir` names the model file given as `file`, both as the
/// user typed them (relative to the working folder, or absolute). Relative to `yaml_dir`, so the
/// YAML still works when the folder holding both moves, where that path reaches the same file;
/// else `file` as typed (a relative one joined to the working folder, since a relative path in a
/// YAML is read relative to the YAML). Symlinks are kept as given, never resolved.
pub fn yaml_model_path(file: &Path, yaml_dir: &Path) -> String {
    let Ok(cwd) = std::env::current_dir() else { return file.display().to_string() };
    let (f, d) = (lexical(&cwd.join(file)), lexical(&cwd.join(yaml_dir)));
    // More in common than the root: a relative path, checked against the file system (a `..`
    // out of a symlinked folder leads elsewhere than it reads).
    let common = f.components().zip(d.components()).take_while(|(a, b)| a == b).count();
    if common > 1 {
        let mut rel = PathBuf::new();
        for _ in d.components().skip(common) {
            rel.push("..");
        }
        for c in f.components().skip(common) {
            rel.push(c);
        }
        if same_file(&yaml_dir.join(&rel), file) {
            return rel.display().to_string();
        }
    }
    if file.is_absolute() {
        return file.display().to_string();
    }
    let joined = if same_file(&f, file) { f } else { cwd.join(file) };
    joined.display().to_string()
}

/// `p` without `.` components and with each `..` taking away the name before it, as read (not as
/// the file system, through symlinks, may resolve it).
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            c => out.push(c),
        }
    }
    out
}

/// Whether `a` and `b` both exist and are the same file.
fn same_file(a: &Path, b: &Path) -> bool {
    matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_unknown_names_are_refused() {
        let s = PreprocessSpec { layout: Layout::Nhwc, channel_order: ChannelOrder::Bgr, ..PreprocessSpec::IMAGENET };
        let info = PreprocessInfo::of(&s);
        assert_eq!(
            (info.interpolation.as_str(), info.channel_order.as_str(), info.layout.as_str()),
            ("bilinear", "bgr", "nhwc")
        );
        assert_eq!(info.spec().unwrap(), s);
        let bad = PreprocessInfo { layout: "Nchw".into(), ..info };
        assert!(bad.spec().unwrap_err().to_string().contains("unknown layout \"Nchw\""));
    }

    #[test]
    fn paths_are_read_as_written() {
        assert_eq!(lexical(Path::new("/a/./b/../c/./d")), Path::new("/a/c/d"));
        assert_eq!(lexical(Path::new("/../a")), Path::new("/a"));
    }

    #[test]
    fn a_line_break_in_the_source_stays_in_its_comment() {
        let card = shiftbench_plugin::ModelCard {
            name: "m".into(),
            labels: Default::default(),
            preprocess: PreprocessSpec::IMAGENET,
            max_batch: 0,
            scores: shiftbench_plugin::ScoreKind::Logits,
        };
        let text = model_yaml("onnx", "m.onnx", &card, &[], "evil\nplugin: other.onnx");
        assert!(!text.lines().any(|l| l.starts_with("plugin: other")), "{text}");
        assert!(text.contains("for \"evil\\nplugin: other.onnx\""), "{text}");
    }
}
