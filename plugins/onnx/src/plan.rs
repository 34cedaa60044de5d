//! Matching a model YAML against what the ONNX model itself declares.
//!
//! Pure functions over [`TensorInfo`] (names, element types and shapes as ONNX Runtime reports
//! them), so every disagreement message can be tested without loading a model.

use std::fmt;

use shiftbench_plugin::{Layout, PreprocessSpec};

/// Element types the plugin can feed or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Elem {
    F32,
    F16,
    /// Anything else, by ONNX Runtime's name for it.
    Other(String),
}

impl fmt::Display for Elem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Elem::F32 => f.write_str("f32"),
            Elem::F16 => f.write_str("f16"),
            Elem::Other(s) => f.write_str(s),
        }
    }
}

/// One model input or output: name, element type, shape (`-1` for a dynamic dimension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub elem: Elem,
    pub dims: Vec<i64>,
}

/// `[1, 3, 224, 224]`, with `?` for dynamic dimensions.
pub fn fmt_dims(dims: &[i64]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| if *d > 0 { d.to_string() } else { "?".to_string() }).collect();
    format!("[{}]", parts.join(", "))
}

impl fmt::Display for TensorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {} {}", self.name, self.elem, fmt_dims(&self.dims))
    }
}

fn list(infos: &[TensorInfo]) -> String {
    infos.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

fn fixed(d: i64) -> Option<usize> {
    (d > 0).then_some(d as usize)
}

/// What the YAML says, as far as the model can contradict it.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    /// The YAML file, for messages.
    pub yaml: &'a str,
    /// The model file, for messages.
    pub model: &'a str,
    pub input: Option<&'a str>,
    pub output: Option<&'a str>,
    pub preprocess: &'a PreprocessSpec,
    pub labels: usize,
    /// `batch:`; `None` or `Some(0)` = what the model allows.
    pub batch: Option<u32>,
}

/// How to feed the model and read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub input: String,
    pub input_elem: Elem,
    /// The input shape of one image (without the batch axis), as the model wants it.
    pub image_dims: [usize; 3],
    /// `Some(b)` when the model's batch axis is fixed at `b`.
    pub fixed_batch: Option<usize>,
    pub output: String,
    pub output_elem: Elem,
    /// Scores per image (the product of the output's non-batch axes).
    pub classes: usize,
    /// The card's `max_batch` (0 = unlimited).
    pub max_batch: u32,
}

fn pick<'t>(
    what: &str,
    infos: &'t [TensorInfo],
    wanted: Option<&str>,
    w: &Wanted<'_>,
) -> Result<&'t TensorInfo, String> {
    match wanted {
        Some(name) => infos.iter().find(|i| i.name == name).ok_or_else(|| {
            format!(
                "{}: {what} `{name}` is not an {what} of the model {}; the model's {what}s are: {}",
                w.yaml,
                w.model,
                list(infos)
            )
        }),
        None if what == "input" && infos.len() > 1 => Err(format!(
            "{}: the model {} has {} inputs ({}); name the image input with `input:`",
            w.yaml,
            w.model,
            infos.len(),
            list(infos)
        )),
        // Several outputs and none named: the first one, as most tools do.
        None => infos.first().ok_or_else(|| format!("the model {} declares no {what}s", w.model)),
    }
}

/// Matches the YAML against the model's inputs and outputs.
pub fn plan(w: &Wanted<'_>, inputs: &[TensorInfo], outputs: &[TensorInfo]) -> Result<Plan, String> {
    let input = pick("input", inputs, w.input, w)?;
    let output = pick("output", outputs, w.output, w)?;

    if !matches!(input.elem, Elem::F32 | Elem::F16) {
        return Err(format!(
            "the model {} input {input} has element type {}; this plugin feeds images as f32 or f16 only",
            w.model, input.elem
        ));
    }
    if !matches!(output.elem, Elem::F32 | Elem::F16) {
        return Err(format!(
            "the model {} output {output} has element type {}; this plugin reads f32 or f16 scores only",
            w.model, output.elem
        ));
    }

    // Input: [N, C, H, W] or [N, H, W, C], as the YAML's layout says.
    if input.dims.len() != 4 {
        return Err(format!(
            "the model {} input {input} has {} axes; an image classifier input must have 4 (batch, channels, height, width)",
            w.model,
            input.dims.len()
        ));
    }
    let (c_axis, h_axis, w_axis, layout_name) = match w.preprocess.layout {
        Layout::Nchw => (1, 2, 3, "nchw"),
        Layout::Nhwc => (3, 1, 2, "nhwc"),
    };
    let d = &input.dims;
    if let Some(c) = fixed(d[c_axis]) {
        if c != 3 {
            let other = match w.preprocess.layout {
                Layout::Nchw if d[3] == 3 => " (the model looks NHWC: set preprocess.layout: nhwc)",
                Layout::Nhwc if d[1] == 3 => " (the model looks NCHW: set preprocess.layout: nchw)",
                _ => "",
            };
            return Err(format!(
                "{}: preprocess.layout is {layout_name}, so axis {c_axis} holds the 3 colour channels, but the model {} input {input} has {c} there{other}",
                w.yaml, w.model
            ));
        }
    }
    let crop = w.preprocess.crop as usize;
    for (axis, side) in [(h_axis, "height"), (w_axis, "width")] {
        if let Some(s) = fixed(d[axis]) {
            if s != crop {
                return Err(format!(
                    "{}: preprocess.crop is {crop} but the model {} input {input} has {side} {s}; set preprocess.crop: {s}",
                    w.yaml, w.model
                ));
            }
        }
    }
    let image_dims = match w.preprocess.layout {
        Layout::Nchw => [3, crop, crop],
        Layout::Nhwc => [crop, crop, 3],
    };
    let fixed_batch = fixed(d[0]);

    // Output: [N, classes] or [N, classes, 1, 1] (any trailing axes of size 1).
    if output.dims.is_empty() {
        return Err(format!("the model {} output {output} is a scalar; expected [batch, classes]", w.model));
    }
    let rest = &output.dims[1..];
    if rest.is_empty() {
        return Err(format!("the model {} output {output} has only a batch axis; expected [batch, classes]", w.model));
    }
    let classes = if rest.iter().all(|&x| x > 0) {
        let n: i64 = rest.iter().product();
        n as usize
    } else {
        // A dynamic class axis: trust the label list, checked again on every call.
        w.labels
    };
    if classes != w.labels {
        return Err(format!(
            "{}: the label list has {} classes but the model {} output {output} gives {classes} scores per image; use a label list of {classes} wnids (labels:)",
            w.yaml, w.labels, w.model
        ));
    }
    if let (Some(bi), Some(bo)) = (fixed_batch, output.dims.first().copied().and_then(fixed)) {
        if bi != bo {
            return Err(format!(
                "the model {} input {input} has batch {bi} but its output {output} has batch {bo}; the plugin expects one row of scores per image",
                w.model
            ));
        }
    }

    let yaml_batch = w.batch.unwrap_or(0);
    let max_batch = match fixed_batch {
        Some(b) => {
            if yaml_batch as usize > b {
                return Err(format!(
                    "{}: batch is {yaml_batch} but the model {} input {input} has a fixed batch of {b}; set batch: {b} or leave it out",
                    w.yaml, w.model
                ));
            }
            if yaml_batch == 0 {
                b as u32
            } else {
                yaml_batch
            }
        }
        None => yaml_batch,
    };

    Ok(Plan {
        input: input.name.clone(),
        input_elem: input.elem.clone(),
        image_dims,
        fixed_batch,
        output: output.name.clone(),
        output_elem: output.elem.clone(),
        classes,
        max_batch,
    })
}

/// What an assumed card (`defaults: torchvision`) takes from the model: the input size and
/// layout (the axis of length 3 among `[N, 3, H, W]` / `[N, H, W, 3]`; a dynamic size is taken to
/// be 224, torchvision's) and the number of scores per image (which must be fixed). The YAML's
/// `input:`/`output:` pick among several, as for any model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assumed {
    pub crop: u32,
    pub layout: Layout,
    pub classes: usize,
}

/// Reads [`Assumed`] from the model's inputs and outputs, or says in one sentence why a model YAML
/// is needed.
pub fn assume(w: &Wanted<'_>, inputs: &[TensorInfo], outputs: &[TensorInfo]) -> Result<Assumed, String> {
    let input = pick("input", inputs, w.input, w)?;
    let output = pick("output", outputs, w.output, w)?;
    let d = &input.dims;
    let need_yaml = "describe it in a model YAML (`shiftbench model init` writes one to start from)";
    if d.len() != 4 {
        return Err(format!(
            "the model {} input {input} is not an image batch [N, 3, H, W] or [N, H, W, 3]; {need_yaml}",
            w.model
        ));
    }
    let (layout, h, wd) = match (d[1], d[3]) {
        (3, x) if x != 3 => (Layout::Nchw, d[2], d[3]),
        (x, 3) if x != 3 => (Layout::Nhwc, d[1], d[2]),
        _ => {
            return Err(format!(
                "the model {} input {input} does not say which axis holds the colour channels; {need_yaml}",
                w.model
            ))
        }
    };
    let crop = match (fixed(h), fixed(wd)) {
        (Some(a), Some(b)) if a == b => a as u32,
        (None, None) => 224,
        _ => return Err(format!("the model {} input {input} is not square; {need_yaml}", w.model)),
    };
    let rest = output.dims.get(1..).unwrap_or(&[]);
    if rest.is_empty() || !rest.iter().all(|&x| x > 0) {
        return Err(format!(
            "the model {} output {output} does not fix how many scores it gives per image; {need_yaml}",
            w.model
        ));
    }
    Ok(Assumed { crop, layout, classes: rest.iter().product::<i64>() as usize })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, elem: Elem, dims: &[i64]) -> TensorInfo {
        TensorInfo { name: name.into(), elem, dims: dims.to_vec() }
    }

    fn wanted(pre: &PreprocessSpec) -> Wanted<'_> {
        Wanted {
            yaml: "m.yaml",
            model: "m.onnx",
            input: None,
            output: None,
            preprocess: pre,
            labels: 1000,
            batch: None,
        }
    }

    #[test]
    fn squeezenet_like_fixed_batch_one() {
        let pre = PreprocessSpec::IMAGENET;
        let p = plan(
            &wanted(&pre),
            &[t("data_0", Elem::F16, &[1, 3, 224, 224])],
            &[t("softmaxout_1", Elem::F16, &[1, 1000, 1, 1])],
        )
        .unwrap();
        assert_eq!(p.max_batch, 1);
        assert_eq!(p.fixed_batch, Some(1));
        assert_eq!(p.classes, 1000);
        assert_eq!(p.input_elem, Elem::F16);
        assert_eq!(p.image_dims, [3, 224, 224]);
    }

    #[test]
    fn dynamic_batch_and_yaml_batch() {
        let pre = PreprocessSpec::IMAGENET;
        let ins = [t("input", Elem::F32, &[-1, 3, 224, 224])];
        let outs = [t("output", Elem::F32, &[-1, 1000])];
        assert_eq!(plan(&wanted(&pre), &ins, &outs).unwrap().max_batch, 0);
        let w = Wanted { batch: Some(16), ..wanted(&pre) };
        assert_eq!(plan(&w, &ins, &outs).unwrap().max_batch, 16);
        // Dynamic height/width take the crop.
        let ins = [t("input", Elem::F32, &[-1, 3, -1, -1])];
        assert_eq!(plan(&wanted(&pre), &ins, &outs).unwrap().image_dims, [3, 224, 224]);
    }

    #[test]
    fn disagreements_name_both_sides() {
        let pre = PreprocessSpec::IMAGENET;
        let ins = [t("data_0", Elem::F32, &[1, 3, 224, 224])];
        let outs = [t("prob", Elem::F32, &[1, 1000])];

        let crop = PreprocessSpec { crop: 256, resize: 288, ..pre };
        let e = plan(&wanted(&crop), &ins, &outs).unwrap_err();
        assert!(e.contains("crop is 256") && e.contains("height 224"), "{e}");

        let w = Wanted { labels: 21841, ..wanted(&pre) };
        let e = plan(&w, &ins, &outs).unwrap_err();
        assert!(e.contains("21841 classes") && e.contains("1000 scores"), "{e}");

        let w = Wanted { input: Some("image"), ..wanted(&pre) };
        let e = plan(&w, &ins, &outs).unwrap_err();
        assert!(e.contains("`image`") && e.contains("`data_0`"), "{e}");

        let w = Wanted { output: Some("logits"), ..wanted(&pre) };
        let e = plan(&w, &ins, &outs).unwrap_err();
        assert!(e.contains("`logits`") && e.contains("`prob`"), "{e}");

        let nhwc = PreprocessSpec { layout: Layout::Nhwc, ..pre };
        let e = plan(&wanted(&nhwc), &ins, &outs).unwrap_err();
        assert!(e.contains("layout is nhwc") && e.contains("[1, 3, 224, 224]") && e.contains("has 224 there"), "{e}");
        assert!(e.contains("looks NCHW"), "{e}");

        let ins_nhwc = [t("x", Elem::F32, &[-1, 224, 224, 3])];
        let e = plan(&wanted(&pre), &ins_nhwc, &outs).unwrap_err();
        assert!(e.contains("layout is nchw") && e.contains("looks NHWC"), "{e}");
        assert_eq!(plan(&wanted(&nhwc), &ins_nhwc, &outs).unwrap().image_dims, [224, 224, 3]);

        let w = Wanted { batch: Some(8), ..wanted(&pre) };
        let e = plan(&w, &ins, &outs).unwrap_err();
        assert!(e.contains("batch is 8") && e.contains("fixed batch of 1"), "{e}");
    }

    #[test]
    fn input_choice_and_types() {
        let pre = PreprocessSpec::IMAGENET;
        let ins = [t("a", Elem::F32, &[1, 3, 224, 224]), t("b", Elem::F32, &[1])];
        let outs = [t("o", Elem::F32, &[1, 1000]), t("aux", Elem::F32, &[1, 10])];
        let e = plan(&wanted(&pre), &ins, &outs).unwrap_err();
        assert!(e.contains("2 inputs") && e.contains("input:"), "{e}");
        let w = Wanted { input: Some("a"), ..wanted(&pre) };
        let p = plan(&w, &ins, &outs).unwrap();
        assert_eq!((p.input.as_str(), p.output.as_str()), ("a", "o"));

        let ins = [t("a", Elem::Other("u8".into()), &[1, 3, 224, 224])];
        let e = plan(&wanted(&pre), &ins, &outs).unwrap_err();
        assert!(e.contains("u8") && e.contains("f32 or f16"), "{e}");
    }
}
