//! The model YAML: one schema for every generic backend plugin (ONNX, TorchScript, Python) and the
//! harness. The keys only `plugin: python` reads (`python`/`module`, `factory`, `args`,
//! `python_env`, `device`) are in [`python`].
//!
//! ```yaml
//! plugin: onnx                      # which plugin runs it: a name (onnx, torchscript, example)
//!                                   # or a path to a plugin library, relative to this file
//! model: squeezenet1.1-fp16.onnx    # the model file, relative to this file
//! name: squeezenet1.1-fp16          # optional; default: the model file's stem
//! labels: imagenet1k                # imagenet1k (default), imagenet22k, imagenet21k_goog,
//!                                   # or a text file of wnids in output order
//! scores: probabilities             # or logits (default)
//! batch: 0                          # optional: most images per call (0 = what the model allows)
//! replicas: 2                       # optional: copies of the model the harness runs side by
//!                                   # side (default: auto, see the README); 1 for a GPU model
//! input: data_0                     # optional: input name (the plugin reads it from the model)
//! output: softmaxout_1              # optional: output name
//! tags:                             # optional: free-form labels of the model, recorded in
//!   pretraining: in1k               # result.json and used to group models (`shiftbench plot
//!   family: convnet                 # --group-by pretraining`); values are strings
//! preprocess:
//!   resize: 256                     # shorter side
//!   crop: 224                       # center crop (the model's input size)
//!   interpolation: bilinear         # bilinear | bicubic | nearest
//!   channel_order: bgr              # rgb | bgr
//!   range: 0-255                    # 0-1 | 0-255: the pixel range before mean/std
//!   mean: [104, 117, 123]           # in the model's channel order and range
//!   std: [1, 1, 1]
//!   layout: nchw                    # nchw | nhwc
//! ```
//!
//! `defaults: torchvision` instead of `labels`, `scores` and `preprocess` asks the plugin for an
//! *assumed card*: the labels from the width of the model's output (1000: ImageNet-1k, 21843:
//! ImageNet-22k, 21841: Google's ImageNet-21k), probabilities or logits by whether a test batch's
//! scores sum to 1, and torchvision's default preprocessing for the model's input size (see
//! [`assumed_preprocess`]). The harness writes such a YAML for a bare `--model FILE.onnx`.
//!
//! Every error names the file, and for YAML errors the line and column.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;
use shiftbench_plugin::{ChannelOrder, Interpolation, Layout, PreprocessSpec, ScoreKind};

pub mod python;
pub use python::{PythonConfig, PythonSource};

/// The ImageNet-1k wnids in the standard model output order (timm's `imagenet_synsets.txt`).
pub const IMAGENET1K: &str = include_str!("../../../suites/classes/imagenet1k.txt");
/// ImageNet-22k (Microsoft/BEiT order, timm's `imagenet22k_synsets.txt`).
pub const IMAGENET22K: &str = include_str!("../../../suites/classes/imagenet22k.txt");
/// ImageNet-21k (Google order, timm's `imagenet21k_goog_synsets.txt`).
pub const IMAGENET21K_GOOG: &str = include_str!("../../../suites/classes/imagenet21k_goog.txt");

fn wnid_set(lists: &[&'static str]) -> HashSet<&'static str> {
    lists.iter().flat_map(|l| l.lines()).map(str::trim).filter(|l| is_wnid(l)).collect()
}

/// The ImageNet-1k wnids as a set (built once): models whose labels are all in it are
/// ImageNet-1k models.
pub fn imagenet1k_set() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| wnid_set(&[IMAGENET1K]))
}

/// Whether `wnid` is an ImageNet synset: in the ImageNet-1k, ImageNet-22k or Google ImageNet-21k
/// list (1k is not quite a subset of the others: n04399382, teddy bear, is only in 1k). Every
/// layer asks this one set (built once).
pub fn known_wnid(wnid: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| wnid_set(&[IMAGENET1K, IMAGENET22K, IMAGENET21K_GOOG])).contains(wnid)
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ConfigError {}

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// One of the interface's enums, written in a model YAML as the name its `as_str` gives and read
/// with its `parse`: the one spelling of each value (the interface crate stays free of serde).
trait Named: Sized {
    /// The enum's name, for serde's messages.
    const ENUM: &'static str;
    /// Every value's name, in declaration order.
    const NAMES: &'static [&'static str];
    fn parse(s: &str) -> Option<Self>;
}

macro_rules! named {
    ($($ty:ident),+) => {
        $(impl Named for $ty {
            const ENUM: &'static str = stringify!($ty);
            const NAMES: &'static [&'static str] = &$ty::NAMES;
            fn parse(s: &str) -> Option<$ty> {
                $ty::parse(s)
            }
        })+
    };
}

named!(Interpolation, ChannelOrder, Layout, ScoreKind);

/// Reads a [`Named`] enum as serde reads a derived one (a YAML scalar naming a unit variant), so
/// a bad value gets serde's own `unknown variant `x`, expected one of ...` with its location.
struct ByName<T>(std::marker::PhantomData<T>);

impl<'de, T: Named> serde::de::Visitor<'de> for ByName<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "enum {}", T::ENUM)
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<T, A::Error> {
        use serde::de::{Error, VariantAccess};
        let (name, variant) = data.variant::<String>()?;
        let value = T::parse(&name).ok_or_else(|| A::Error::unknown_variant(&name, T::NAMES))?;
        variant.unit_variant()?;
        Ok(value)
    }
}

/// `deserialize_with` for a field of one of the interface's enums.
fn by_name<'de, D: serde::Deserializer<'de>, T: Named>(d: D) -> Result<T, D::Error> {
    d.deserialize_enum(T::ENUM, T::NAMES, ByName(std::marker::PhantomData))
}

/// [`by_name`] for an optional field (absent or `null`: None).
fn by_name_opt<'de, D: serde::Deserializer<'de>, T: Named>(d: D) -> Result<Option<T>, D::Error> {
    struct Value<T>(T);
    impl<'de, T: Named> Deserialize<'de> for Value<T> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            by_name(d).map(Value)
        }
    }
    Ok(Option::<Value<T>>::deserialize(d)?.map(|v| v.0))
}

/// The pixel range before mean/std (no counterpart in the interface, which has `scale`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum Range {
    #[serde(rename = "0-1")]
    Unit,
    #[serde(rename = "0-255")]
    Byte,
}

fn default_resize() -> u32 {
    256
}
fn default_crop() -> u32 {
    224
}
fn default_interp() -> Interpolation {
    Interpolation::Bilinear
}
fn default_order() -> ChannelOrder {
    ChannelOrder::Rgb
}
fn default_layout() -> Layout {
    Layout::Nchw
}
fn default_range() -> Range {
    Range::Unit
}
fn default_mean() -> [f32; 3] {
    [0.485, 0.456, 0.406]
}
fn default_std() -> [f32; 3] {
    [0.229, 0.224, 0.225]
}

/// The `preprocess:` block; every field has the torchvision ImageNet default.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PreprocessYaml {
    #[serde(default = "default_resize")]
    pub resize: u32,
    #[serde(default = "default_crop")]
    pub crop: u32,
    #[serde(default = "default_interp", deserialize_with = "by_name")]
    pub interpolation: Interpolation,
    #[serde(default = "default_order", deserialize_with = "by_name")]
    pub channel_order: ChannelOrder,
    #[serde(default = "default_range")]
    pub range: Range,
    #[serde(default = "default_mean")]
    pub mean: [f32; 3],
    #[serde(default = "default_std")]
    pub std: [f32; 3],
    #[serde(default = "default_layout", deserialize_with = "by_name")]
    pub layout: Layout,
}

impl Default for PreprocessYaml {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("defaults")
    }
}

impl PreprocessYaml {
    pub fn to_spec(&self) -> Result<PreprocessSpec, ConfigError> {
        if self.crop == 0 || self.resize == 0 {
            return Err(err("preprocess: resize and crop must be positive"));
        }
        if self.crop > self.resize {
            return Err(err(format!(
                "preprocess: crop ({}) is larger than resize ({}): the center crop would not fit",
                self.crop, self.resize
            )));
        }
        if self.std.iter().any(|s| !s.is_finite() || *s == 0.0) || self.mean.iter().any(|m| !m.is_finite()) {
            return Err(err("preprocess: mean must be finite and std finite and non-zero"));
        }
        Ok(PreprocessSpec {
            resize: self.resize,
            crop: self.crop,
            interpolation: self.interpolation,
            channel_order: self.channel_order,
            layout: self.layout,
            scale: match self.range {
                Range::Unit => 1.0 / 255.0,
                Range::Byte => 1.0,
            },
            mean: self.mean,
            std: self.std,
        })
    }
}

/// Most copies of one model a run may keep side by side.
pub const MAX_REPLICAS: u32 = 256;

/// A model YAML as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelYaml {
    pub plugin: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub labels: Option<String>,
    #[serde(default, deserialize_with = "by_name_opt")]
    pub scores: Option<ScoreKind>,
    #[serde(default)]
    pub batch: Option<u32>,
    /// How many copies of the model the harness runs side by side (the harness reads this; the
    /// plugins ignore it).
    #[serde(default)]
    pub replicas: Option<u32>,
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub output: Option<String>,
    /// The model's embedding, for `shiftbench similarity`: for the ONNX plugin the name of any
    /// tensor of the graph (an inner one included), for the TorchScript plugin the name of a
    /// method of the module. None: the model has no embedding.
    #[serde(default)]
    pub embedding: Option<String>,
    #[serde(default)]
    pub preprocess: Option<PreprocessYaml>,
    /// `torchvision`: the plugin reads or assumes labels, scores and preprocessing (an assumed
    /// card); the YAML then gives none of them.
    #[serde(default)]
    pub defaults: Option<String>,
    /// Backend-specific settings (for example `threads`, `device`), passed through untouched.
    #[serde(default)]
    pub options: BTreeMap<String, serde_yaml::Value>,
    /// Free-form labels of the model (`pretraining: in22k-ft`, `family: vit`): the harness records
    /// them in the result and groups models by them in plots; the plugins ignore them.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// `plugin: python` only (see [`python`]): the Python file, or module, and how it is called.
    #[serde(default)]
    pub python: Option<String>,
    #[serde(default)]
    pub module: Option<String>,
    #[serde(default)]
    pub factory: Option<String>,
    #[serde(default)]
    pub args: Option<serde_yaml::Value>,
    #[serde(default)]
    pub python_env: Option<String>,
    #[serde(default)]
    pub device: Option<String>,
}

/// A model YAML resolved against its location: paths made absolute, labels loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub path: PathBuf,
    pub plugin: String,
    pub model_file: Option<PathBuf>,
    /// The name results are filed under: the YAML's `name:`, else the model file's stem, else
    /// the YAML's own stem.
    pub name: String,
    /// Whether the YAML sets `name:` itself (then it names the model whatever the plugin calls
    /// it, so one plugin can run under several names and settings in one run).
    pub name_given: bool,
    pub labels: Vec<String>,
    pub scores: ScoreKind,
    /// `defaults: torchvision`: `labels`, `scores` and `preprocess` above are placeholders that
    /// the plugin replaces with what it reads from the model or assumes (see the crate docs).
    pub assumed: bool,
    pub batch: Option<u32>,
    pub replicas: Option<u32>,
    pub input: Option<String>,
    pub output: Option<String>,
    /// The YAML's `embedding:` (see [`ModelYaml::embedding`]).
    pub embedding: Option<String>,
    pub preprocess: PreprocessSpec,
    pub options: BTreeMap<String, serde_yaml::Value>,
    /// The YAML's `tags:` (empty when none).
    pub tags: BTreeMap<String, String>,
    /// The Python section, for `plugin: python` (None for every other plugin).
    pub python: Option<PythonConfig>,
}

/// Formats a serde_yaml error as `file:line:column: message`.
pub fn yaml_error(path: &Path, e: &serde_yaml::Error) -> ConfigError {
    match e.location() {
        Some(loc) => err(format!("{}:{}:{}: {}", path.display(), loc.line(), loc.column(), strip_location(e))),
        None => err(format!("{}: {}", path.display(), e)),
    }
}

fn strip_location(e: &serde_yaml::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Parses a wnid list: one wnid per line; blank lines and `#` comments ignored; every entry must
/// look like a WordNet id (`n` + 8 digits) and appear once.
pub fn parse_wnid_list(text: &str, origin: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.split('#').next().unwrap_or("").trim();
        if t.is_empty() {
            continue;
        }
        let wnid = t.split_whitespace().next().unwrap_or(t);
        if !is_wnid(wnid) {
            return Err(err(format!("{origin}:{}: {wnid:?} is not a WordNet id (n + 8 digits)", i + 1)));
        }
        if !seen.insert(wnid.to_string()) {
            return Err(err(format!("{origin}:{}: wnid {wnid} is listed twice", i + 1)));
        }
        out.push(wnid.to_string());
    }
    if out.is_empty() {
        return Err(err(format!("{origin}: the label list is empty")));
    }
    Ok(out)
}

/// `n` followed by 8 digits.
pub fn is_wnid(s: &str) -> bool {
    s.len() == 9 && s.starts_with('n') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Largest model YAML or label list read: a hostile `labels: /dev/zero` is an error, not an
/// endless read.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?.take(MAX_FILE_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} MiB", MAX_FILE_BYTES >> 20),
        ));
    }
    Ok(text)
}

/// Resolves a label-list name or file.
pub fn load_labels(spec: &str, base: &Path) -> Result<Vec<String>, ConfigError> {
    match spec {
        "imagenet1k" => parse_wnid_list(IMAGENET1K, "imagenet1k"),
        "imagenet22k" => parse_wnid_list(IMAGENET22K, "imagenet22k"),
        "imagenet21k_goog" => parse_wnid_list(IMAGENET21K_GOOG, "imagenet21k_goog"),
        file => {
            let p = base.join(file);
            let text = read_small(&p).map_err(|e| err(format!("cannot read label list {}: {e}", p.display())))?;
            parse_wnid_list(&text, &p.display().to_string())
        }
    }
}

impl ModelConfig {
    /// Reads and validates a model YAML.
    pub fn load(path: &Path) -> Result<ModelConfig, ConfigError> {
        let text = read_small(path).map_err(|e| err(format!("cannot read model file {}: {e}", path.display())))?;
        Self::parse(&text, path)
    }

    /// Parses model YAML text as if it were read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<ModelConfig, ConfigError> {
        let y: ModelYaml = serde_yaml::from_str(text).map_err(|e| yaml_error(path, &e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let at = |key: &str| match python::key_line(text, key) {
            Some(line) => format!("{}:{line}", path.display()),
            None => path.display().to_string(),
        };
        let python = python::PythonYaml {
            python: y.python.as_deref(),
            module: y.module.as_deref(),
            factory: y.factory.as_deref(),
            args: y.args.as_ref(),
            python_env: y.python_env.as_deref(),
            device: y.device.as_deref(),
        }
        .resolve(&y.plugin, y.model.as_deref(), base, &at)?;
        // A Python model's file is its code (its weights are in `args:`).
        let model_file = match &python {
            Some(p) => p.code_file(),
            None => y.model.as_ref().map(|m| base.join(m)),
        };
        // A module's file (`__init__.py`, say) does not name it: the YAML does.
        let named_by =
            model_file.as_ref().filter(|_| !matches!(&python, Some(p) if matches!(p.source, PythonSource::Module(_))));
        let name = match (&y.name, named_by) {
            (Some(n), _) => n.clone(),
            (None, Some(f)) => f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            (None, None) => path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        };
        let assumed = match y.defaults.as_deref() {
            None => false,
            Some("torchvision") => {
                let given: Vec<&str> = [
                    ("labels", y.labels.is_some()),
                    ("scores", y.scores.is_some()),
                    ("preprocess", y.preprocess.is_some()),
                ]
                .iter()
                .filter(|(_, g)| *g)
                .map(|(k, _)| *k)
                .collect();
                if !given.is_empty() {
                    return Err(err(format!(
                        "{}: `defaults: torchvision` reads or assumes labels, scores and preprocess; remove it to give {} yourself",
                        path.display(),
                        given.join(", ")
                    )));
                }
                true
            }
            Some(other) => {
                return Err(err(format!("{}: defaults is {other:?}; the one choice is `torchvision`", path.display())))
            }
        };
        let labels = load_labels(y.labels.as_deref().unwrap_or("imagenet1k"), base)
            .map_err(|e| err(format!("{}: labels: {e}", path.display())))?;
        let preprocess =
            y.preprocess.unwrap_or_default().to_spec().map_err(|e| err(format!("{}: {e}", path.display())))?;
        if let Some(r) = y.replicas.filter(|r| !(1..=MAX_REPLICAS).contains(r)) {
            return Err(err(format!("{}: replicas is {r}; expected 1 to {MAX_REPLICAS}", path.display())));
        }
        if let Some((k, v)) = y.tags.iter().find(|(k, v)| k.trim().is_empty() || v.trim().is_empty()) {
            return Err(err(format!("{}: tags: {k:?}: {v:?}: a tag needs a name and a value", path.display())));
        }
        Ok(ModelConfig {
            path: path.to_path_buf(),
            plugin: y.plugin,
            model_file,
            name,
            name_given: y.name.is_some(),
            labels,
            scores: y.scores.unwrap_or(ScoreKind::Logits),
            assumed,
            batch: y.batch,
            replicas: y.replicas,
            input: y.input,
            output: y.output,
            embedding: y.embedding,
            preprocess,
            options: y.options,
            tags: y.tags,
            python,
        })
    }

    /// The model file, or an error saying the YAML must name one.
    pub fn require_model_file(&self) -> Result<&Path, ConfigError> {
        let p = self.model_file.as_deref().ok_or_else(|| {
            err(format!("{}: `model:` (the model file) is required for plugin {}", self.path.display(), self.plugin))
        })?;
        if !p.is_file() {
            return Err(err(format!("{}: model file {} does not exist", self.path.display(), p.display())));
        }
        Ok(p)
    }

    /// A backend option as an integer, if set.
    pub fn option_u64(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.options.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| err(format!("{}: options.{key} must be a non-negative integer", self.path.display()))),
        }
    }

    /// A backend option as a string, if set.
    pub fn option_str(&self, key: &str) -> Result<Option<&str>, ConfigError> {
        match self.options.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| err(format!("{}: options.{key} must be a string", self.path.display()))),
        }
    }
}

/// torchvision's (and timm's) default preprocessing for a model whose input is `crop` pixels
/// square: the shorter side resized to `floor(crop / 0.875)` (256 for 224) with bilinear
/// interpolation, the center `crop`, RGB in 0-1, ImageNet mean and std.
pub fn assumed_preprocess(crop: u32, layout: Layout) -> PreprocessSpec {
    PreprocessSpec { resize: (crop as f64 / 0.875).floor() as u32, crop, layout, ..PreprocessSpec::IMAGENET }
}

/// The label list an assumed card takes from the width of a model's output: its name and wnids.
pub fn labels_for_width(width: usize) -> Result<(&'static str, Vec<String>), String> {
    let name = match width {
        1000 => "imagenet1k",
        21843 => "imagenet22k",
        21841 => "imagenet21k_goog",
        w => {
            return Err(format!(
                "the model has {w} outputs per image, which is not a known ImageNet label list (1000: ImageNet-1k, 21843: ImageNet-22k, 21841: ImageNet-21k); describe it in a model YAML with `labels:` (`shiftbench model init` writes one to start from)"
            ))
        }
    };
    Ok((name, load_labels(name, Path::new(".")).map_err(|e| e.0)?))
}

/// The name of a built-in label list equal to `labels`, if there is one (for writing a YAML).
pub fn builtin_labels_name(labels: &[String]) -> Option<&'static str> {
    ["imagenet1k", "imagenet22k", "imagenet21k_goog"]
        .into_iter()
        .find(|n| load_labels(n, Path::new(".")).is_ok_and(|l| l == labels))
}

/// Whether test scores (`per_image` a row) look like probabilities: every score in [0, 1] and
/// every row summing to 1 within 1e-3.
pub fn looks_like_probabilities(scores: &[f32], per_image: usize) -> bool {
    per_image > 0
        && !scores.is_empty()
        && scores.iter().all(|v| (0.0..=1.0).contains(v))
        && scores.chunks(per_image).all(|row| (row.iter().map(|&v| v as f64).sum::<f64>() - 1.0).abs() < 1e-3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_torchvision_imagenet() {
        let c = ModelConfig::parse("plugin: onnx\nmodel: m.onnx\n", Path::new("/x/m.yaml")).unwrap();
        assert_eq!(c.preprocess, PreprocessSpec::IMAGENET);
        assert_eq!(c.labels.len(), 1000);
        assert_eq!(c.labels[0], "n01440764");
        assert_eq!(c.name, "m");
        assert_eq!(c.model_file.as_deref(), Some(Path::new("/x/m.onnx")));
        assert_eq!(c.scores, ScoreKind::Logits);
    }

    #[test]
    fn caffe_style_card() {
        let y = "plugin: onnx\nmodel: s.onnx\nscores: probabilities\npreprocess:\n  channel_order: bgr\n  range: 0-255\n  mean: [104, 117, 123]\n  std: [1, 1, 1]\n";
        let c = ModelConfig::parse(y, Path::new("s.yaml")).unwrap();
        assert_eq!(c.preprocess.channel_order, ChannelOrder::Bgr);
        assert_eq!(c.preprocess.scale, 1.0);
        assert_eq!(c.preprocess.mean, [104.0, 117.0, 123.0]);
        assert_eq!(c.scores, ScoreKind::Probabilities);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let y = "plugin: onnx\nmodel: s.onnx\npreprocess:\n  interpolation: lanczos\n";
        let e = ModelConfig::parse(y, Path::new("dir/s.yaml")).unwrap_err().0;
        assert!(e.starts_with("dir/s.yaml:4:"), "{e}");
        assert!(e.contains("lanczos"), "{e}");
        let e = ModelConfig::parse("plugin: onnx\nmodle: x\n", Path::new("s.yaml")).unwrap_err().0;
        assert!(e.starts_with("s.yaml:2:"), "{e}");
        assert!(e.contains("modle"), "{e}");
    }

    #[test]
    fn bad_label_lists() {
        let e = parse_wnid_list("n01440764\nfoo\n", "l.txt").unwrap_err().0;
        assert_eq!(e, "l.txt:2: \"foo\" is not a WordNet id (n + 8 digits)");
        let e = parse_wnid_list("n01440764\nn01440764\n", "l.txt").unwrap_err().0;
        assert!(e.contains("listed twice"));
        assert!(parse_wnid_list("# nothing\n", "l.txt").is_err());
        assert_eq!(parse_wnid_list(IMAGENET22K, "22k").unwrap().len(), 21841);
    }

    #[test]
    fn tags() {
        let y = "plugin: onnx\nmodel: m.onnx\ntags:\n  pretraining: in22k-ft\n  family: vit\n  params: 86\n";
        let c = ModelConfig::parse(y, Path::new("m.yaml")).unwrap();
        let want: BTreeMap<String, String> = [("family", "vit"), ("params", "86"), ("pretraining", "in22k-ft")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        assert_eq!(c.tags, want);
        assert!(ModelConfig::parse("plugin: onnx\n", Path::new("m.yaml")).unwrap().tags.is_empty());
        let e = ModelConfig::parse("plugin: onnx\ntags:\n  family: [a, b]\n", Path::new("m.yaml")).unwrap_err().0;
        assert!(e.starts_with("m.yaml:3:"), "{e}");
        let e = ModelConfig::parse("plugin: onnx\ntags:\n  family: ''\n", Path::new("m.yaml")).unwrap_err().0;
        assert!(e.contains("a tag needs a name and a value"), "{e}");
    }

    #[test]
    fn crop_larger_than_resize_is_refused() {
        let y = "plugin: onnx\npreprocess:\n  resize: 200\n  crop: 224\n";
        let e = ModelConfig::parse(y, Path::new("s.yaml")).unwrap_err().0;
        assert!(e.contains("crop (224) is larger than resize (200)"), "{e}");
    }

    #[test]
    fn assumed_cards() {
        let p = std::env::temp_dir().join("m.yaml");
        let c = ModelConfig::parse("plugin: onnx\nmodel: m.onnx\ndefaults: torchvision\n", &p).unwrap();
        assert!(c.assumed);
        let e =
            ModelConfig::parse("plugin: onnx\nmodel: m.onnx\ndefaults: torchvision\nscores: logits\n", &p).unwrap_err();
        assert!(e.0.contains("remove it to give scores yourself"), "{}", e.0);
        assert!(ModelConfig::parse("plugin: onnx\ndefaults: timm\n", &p).unwrap_err().0.contains("torchvision"));
        assert!(!ModelConfig::parse("plugin: onnx\nmodel: m.onnx\n", &p).unwrap().assumed);
        let s = assumed_preprocess(224, Layout::Nchw);
        assert_eq!((s.resize, s.crop), (256, 224));
        assert_eq!(assumed_preprocess(384, Layout::Nchw).resize, 438);
        assert_eq!(labels_for_width(1000).unwrap().1.len(), 1000);
        assert_eq!(labels_for_width(21843).unwrap().0, "imagenet22k");
        assert!(labels_for_width(10).unwrap_err().contains("model YAML"));
        assert_eq!(builtin_labels_name(&labels_for_width(1000).unwrap().1), Some("imagenet1k"));
        assert!(looks_like_probabilities(&[0.25, 0.75, 1.0, 0.0], 2));
        assert!(!looks_like_probabilities(&[0.25, 0.7, 1.0, 0.0], 2));
        assert!(!looks_like_probabilities(&[2.0, -1.0], 2));
    }
}
