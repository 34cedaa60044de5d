//! # shiftbench-plugin: the stable model-plugin interface of shiftbench
//!
//! A shiftbench model plugin is a `cdylib` that depends on this crate alone. It implements
//! [`Classifier`] for its model type and exports it with [`export_plugin!`]:
//!
//! ```ignore
//! use shiftbench_plugin::{export_plugin, Classifier, LoadRequest, ModelCard};
//!
//! struct MyModel { /* weights */ }
//!
//! impl Classifier for MyModel {
//!     fn load(req: &LoadRequest) -> Result<Self, String> { /* read req.config_path ... */ }
//!     fn card(&self) -> ModelCard { /* name, labels (wnids), preprocessing, batch size */ }
//!     fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> { /* scores */ }
//!     // Optional (interface 0.1.2): an embedding per image, for `shiftbench similarity`.
//!     // fn embedding_len(&self) -> usize { 512 }
//!     // fn embed(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> { ... }
//! }
//!
//! export_plugin!(MyModel);
//! ```
//!
//! The harness decodes and preprocesses images as the card asks and calls [`Classifier::infer`]
//! with `batch` images laid out as the card's [`Layout`] says (f32, `[N, 3, H, W]` for NCHW),
//! expecting `batch * labels.len()` scores back, row-major.
//!
//! ## Stability
//! The types crossing the boundary are `#[repr(C)]` and checked by `abi_stable` when the harness
//! loads a plugin: a plugin built against an incompatible version of this crate (different major,
//! or for 0.x a different minor: 0.1.z and 0.2.z do not mix) is refused instead of crashing, and
//! so is a plugin whose types differ in layout. Within one 0.x minor any patch version loads with
//! any other: interface 0.1.0, 0.1.1 and 0.1.2 plugins load in a 0.1.3 host, and the other way round.
//!
//! The interface grows compatibly through the root module, [`PluginMod`], an `abi_stable` prefix
//! type: fields are only ever added after the last one (`load_typed`, in 0.1.1, was added this
//! way, `load_embed` in 0.1.2, and `load_text_encoder` in 0.1.3). An older host ignores the fields it does not know. A newer
//! host loads the root module with [`init_plugin_module`] (abi_stable's own `init_root_module`
//! refuses a root module with fewer fields than the host's) and gets `None` from the accessor of a
//! field the plugin predates: an interface 0.1.0 plugin has only `load`, a 0.1.1 plugin `load`
//! and `load_typed`.
//!
//! ## Embeddings (0.1.2)
//! A model may have an embedding: [`Classifier::embedding_len`] values per image (0, the default,
//! for none), returned by [`Classifier::embed`] for a batch laid out as for `infer`. The host reaches
//! them through `load_embed` ([`FfiModelEmbed`]); a plugin built before 0.1.2 has no embedding.
//!
//! ## Text encoders (0.1.3)
//! A plugin may also offer a text encoder ([`TextEncoder`]: texts in, one embedding per text
//! out), exported with `export_plugin!(Model, text_encoder = Encoder)`; the host reaches it
//! through `load_text_encoder` ([`FfiTextEncoder`]). A plugin built before 0.1.3, or exported
//! with `export_plugin!(Model)`, offers none.
//!
//! ## Panics
//! Every call from the harness into the plugin runs under `catch_unwind`: a panic in plugin code
//! becomes an error value returned to the harness; it never unwinds across the FFI boundary.
//!
//! ## Errors
//! A model loaded through `load_typed` ([`FfiModelTyped`]) returns a [`PluginError`] whose
//! [`ErrorKind`] says what failed: [`ErrorKind::Sample`] when [`Classifier::infer`] returned
//! `Err` (this batch failed; the model can go on, whatever the message says) and
//! [`ErrorKind::Fatal`] when it panicked, or was called again after a panic (the model is
//! unusable). Plugins built against interface 0.1.0 have only `load` ([`FfiModel`]), whose errors
//! are bare strings; for those alone the host classifies by the text, with [`legacy_error_kind`].
//!
//! ## Where things are
//! This file holds the interface's types (the card, the FFI traits, the root module) and
//! [`export_plugin!`]; `adapter` wraps a [`Classifier`] as the FFI-safe model, catching panics;
//! `loader` has [`init_plugin_module`] and the root modules of the older interface versions it
//! checks plugins against.

#![allow(non_local_definitions)] // emitted by abi_stable's sabi_trait macro

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec},
    StableAbi,
};

#[doc(hidden)]
pub mod __private {
    pub use abi_stable;
}

mod adapter;
mod loader;
mod text;

pub use adapter::{guard, interface_version, load_adapter, load_embed_adapter, load_typed_adapter, Adapter};
pub use loader::init_plugin_module;
pub use text::{
    load_text_adapter, no_text_encoder, FfiTextEncoder, FfiTextEncoderBox, FfiTextEncoder_TO, TextAdapter, TextEncoder,
    TextEncoderInfo, TextLoadRequest,
};

/// The version of this interface; a plugin records the one it was built against.
pub const INTERFACE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Resampling filter for the shorter-side resize, computed as PIL does (antialiased: the filter
/// support grows with the downscaling factor).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    Nearest = 0,
    Bilinear = 1,
    Bicubic = 2,
}

/// Order of the three colour channels in the tensor.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    Rgb = 0,
    Bgr = 1,
}

/// Memory layout of a batch.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[N, C, H, W]`
    Nchw = 0,
    /// `[N, H, W, C]`
    Nhwc = 1,
}

/// What the scores a plugin returns are.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreKind {
    Logits = 0,
    Probabilities = 1,
}

/// `as_str`, `parse`, `ALL`, `NAMES` and `Display` for a fieldless enum, from its variants'
/// lowercase names.
macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: [$ty; [$($name),+].len()] = [$($ty::$variant),+];

            /// Every value's name ([`Self::as_str`]), in declaration order.
            pub const NAMES: [&'static str; [$($name),+].len()] = [$($name),+];

            /// The lowercase name, as model YAMLs and result files spell it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// The value named `s`: exactly one of the lowercase names [`Self::as_str`] gives.
            pub fn parse(s: &str) -> Option<$ty> {
                match s {
                    $($name => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(Interpolation { Nearest => "nearest", Bilinear => "bilinear", Bicubic => "bicubic" });
names!(ChannelOrder { Rgb => "rgb", Bgr => "bgr" });
names!(Layout { Nchw => "nchw", Nhwc => "nhwc" });
names!(ScoreKind { Logits => "logits", Probabilities => "probabilities" });

/// How the harness turns a decoded RGB8 image into the model's input tensor:
///
/// 1. resize so the shorter side is `resize` pixels (longer side truncated, as torchvision does),
///    with `interpolation`, antialiased as PIL does;
/// 2. center-crop `crop` x `crop` (offsets rounded half to even, as torchvision does);
/// 3. reorder channels (`channel_order`), then per channel `(pixel * scale - mean[c]) / std[c]`
///    where `mean`/`std` are given in the model's channel order;
/// 4. lay out as `layout`, f32.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct PreprocessSpec {
    pub resize: u32,
    pub crop: u32,
    pub interpolation: Interpolation,
    pub channel_order: ChannelOrder,
    pub layout: Layout,
    /// Multiplies 0-255 pixel values: `1/255` for 0-1 input, `1` for 0-255 input.
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl PreprocessSpec {
    /// The torchvision/timm ImageNet default: resize 256 bilinear, crop 224, RGB, 0-1,
    /// ImageNet mean/std, NCHW.
    pub const IMAGENET: PreprocessSpec = PreprocessSpec {
        resize: 256,
        crop: 224,
        interpolation: Interpolation::Bilinear,
        channel_order: ChannelOrder::Rgb,
        layout: Layout::Nchw,
        scale: 1.0 / 255.0,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// Number of f32 values in one image.
    pub fn image_len(&self) -> usize {
        3 * self.crop as usize * self.crop as usize
    }
}

/// What a model is: everything the harness needs to feed it and read its output.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct ModelCard {
    /// A short name, used in tables and result files.
    pub name: RString,
    /// WordNet ids in output order: score `i` is for class `labels[i]`.
    pub labels: RVec<RString>,
    pub preprocess: PreprocessSpec,
    /// The most images one `infer` call may receive; 0 means no limit. Models exported with a
    /// fixed batch of 1 say 1 here.
    pub max_batch: u32,
    pub scores: ScoreKind,
}

/// What the harness passes to [`Classifier::load`].
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct LoadRequest {
    /// The model description file the user named (for example a model YAML for the generic ONNX
    /// plugin); empty when the user named the plugin library directly.
    pub config_path: RString,
    /// How many threads the model may use for inference; 0 lets the plugin decide.
    pub threads: u32,
}

/// The object-safe, FFI-safe face of a loaded model (what crosses the boundary).
#[sabi_trait]
pub trait FfiModel: Send {
    fn card(&self) -> ModelCard;

    fn infer(&mut self, input: RSlice<'_, f32>, batch: u32) -> RResult<RVec<f32>, RString>;
}

/// A loaded model as the harness holds it.
pub type FfiModelBox = FfiModel_TO<'static, RBox<()>>;

/// What kind of failure a [`PluginError`] reports.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// This batch failed; the model can go on with the next one.
    Sample = 0,
    /// The model is unusable (for example it panicked); the harness must stop calling it.
    Fatal = 1,
}

/// An error from a model loaded through `load_typed`, with its kind typed rather than implied by
/// the message.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct PluginError {
    pub kind: ErrorKind,
    /// A sentence for the user.
    pub message: RString,
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The FFI-safe face of a loaded model whose errors carry an [`ErrorKind`] (interface 0.1.1 on):
/// what `load_typed` returns. Same calls as [`FfiModel`]; only the error type differs.
#[sabi_trait]
pub trait FfiModelTyped: Send {
    fn card(&self) -> ModelCard;

    fn infer(&mut self, input: RSlice<'_, f32>, batch: u32) -> RResult<RVec<f32>, PluginError>;

    /// What the plugin read from the model file (inputs, outputs, element types, batch), in a
    /// few lines for people (`shiftbench model show`); empty when it has nothing to say.
    fn describe(&self) -> RString;
}

/// A model with typed errors as the harness holds it.
pub type FfiModelTypedBox = FfiModelTyped_TO<'static, RBox<()>>;

/// The FFI-safe face of a loaded model with typed errors and, maybe, an embedding (interface
/// 0.1.2 on): what `load_embed` returns. [`FfiModelTyped`]'s calls, plus `embedding_len` and
/// `embed`. Its vtable is a prefix type whose last prefix field is `embed`: later interface
/// versions may add methods after it, which an older plugin's vtable then lacks.
#[sabi_trait]
pub trait FfiModelEmbed: Send {
    fn card(&self) -> ModelCard;

    fn infer(&mut self, input: RSlice<'_, f32>, batch: u32) -> RResult<RVec<f32>, PluginError>;

    /// See [`FfiModelTyped::describe`].
    fn describe(&self) -> RString;

    /// Values in one image's embedding; 0 when the model has none.
    fn embedding_len(&self) -> u32;

    /// The embeddings of `batch` images (input as for `infer`): `batch * embedding_len()` values,
    /// row-major. An error when the model has no embedding.
    #[sabi(last_prefix_field)]
    fn embed(&mut self, input: RSlice<'_, f32>, batch: u32) -> RResult<RVec<f32>, PluginError>;
}

/// A model with typed errors and an embedding call as the harness holds it.
pub type FfiModelEmbedBox = FfiModelEmbed_TO<'static, RBox<()>>;

/// How bad an error message from a model loaded through `load` is, by its text: a panic (the
/// message starts with `plugin panicked`) or a call after one (`unusable after an earlier panic`)
/// is [`ErrorKind::Fatal`], anything else [`ErrorKind::Sample`].
///
/// This exists only for plugins built against interface 0.1.0, which have no typed kind (their
/// root module has no `load_typed`). It misreads an ordinary error whose text happens to start
/// with `plugin panicked` as fatal; a host must use the typed kind whenever `load_typed` exists.
pub fn legacy_error_kind(message: &str) -> ErrorKind {
    if message.starts_with("plugin panicked") || message.contains("unusable after an earlier panic") {
        ErrorKind::Fatal
    } else {
        ErrorKind::Sample
    }
}

/// The root module every plugin exports.
///
/// A prefix type: fields after `load` (the last field of interface 0.1.0) are added only at the
/// end, and their accessors return `None` for a plugin built before they existed. A host loads it
/// with [`init_plugin_module`].
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// The version of this crate the plugin was built against.
    pub interface_version: extern "C" fn() -> RStr<'static>,
    /// The plugin crate's own name and version, for messages.
    pub plugin_name: extern "C" fn() -> RStr<'static>,
    /// Loads the model with string errors ([`FfiModel`]). What hosts of interface 0.1.0 call; a
    /// host that finds `load_typed` calls that instead.
    #[sabi(last_prefix_field)]
    pub load: extern "C" fn(request: &LoadRequest) -> RResult<FfiModelBox, RString>,
    /// Loads the model with typed errors ([`FfiModelTyped`]). Since interface 0.1.1:
    /// `module.load_typed()` is `None` for a plugin built against 0.1.0 (loaded with
    /// [`init_plugin_module`]).
    #[sabi(missing_field(option))]
    pub load_typed: extern "C" fn(request: &LoadRequest) -> RResult<FfiModelTypedBox, RString>,
    /// Loads the model with typed errors and its embedding ([`FfiModelEmbed`]). Since interface
    /// 0.1.2: `module.load_embed()` is `None` for a plugin built against 0.1.0 or 0.1.1.
    #[sabi(missing_field(option))]
    pub load_embed: extern "C" fn(request: &LoadRequest) -> RResult<FfiModelEmbedBox, RString>,
    /// Loads the plugin's text encoder ([`FfiTextEncoder`]). Since interface 0.1.3:
    /// `module.load_text_encoder()` is `None` for a plugin built before 0.1.3; for a plugin that
    /// offers no text encoder (`export_plugin!(Model)`) the call answers `RNone`.
    #[sabi(missing_field(option))]
    pub load_text_encoder: extern "C" fn(request: &TextLoadRequest) -> ROption<RResult<FfiTextEncoderBox, RString>>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "shiftbench_plugin";
    const NAME: &'static str = "shiftbench-plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The trait a plugin author implements: a plain Rust model.
pub trait Classifier: Send + Sized + 'static {
    /// Build the model. Return an error sentence (it is shown to the user) rather than panic.
    fn load(request: &LoadRequest) -> Result<Self, String>;

    /// The model card. Called once after loading.
    fn card(&self) -> ModelCard;

    /// Score `batch` preprocessed images (`input.len() == batch * card.preprocess.image_len()`).
    /// Return `batch * card.labels.len()` scores, row-major.
    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String>;

    /// What the plugin read from the model file (inputs, outputs, element types, batch), in a few
    /// lines for people; shown by `shiftbench model show`. Empty by default.
    fn describe(&self) -> String {
        String::new()
    }

    /// Values in one image's embedding (an inner representation, such as the globally pooled
    /// features before the classifier); 0, the default, when the model has none. Read once,
    /// after [`Classifier::card`].
    fn embedding_len(&self) -> usize {
        0
    }

    /// The embeddings of `batch` preprocessed images (input as for [`Classifier::infer`]):
    /// `batch * embedding_len()` values, row-major. Only called when `embedding_len() > 0`.
    fn embed(&mut self, _input: &[f32], _batch: usize) -> Result<Vec<f32>, String> {
        Err("this model has no embedding".into())
    }
}

/// The name of the symbol holding a plugin's root module (abi_stable's mangled name). Spelled
/// out because `export_plugin!` must put it in an attribute; a test checks it against
/// `abi_stable::library::ROOT_MODULE_LOADER_NAME`.
#[doc(hidden)]
pub const ROOT_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// Exports a [`Classifier`] as a shiftbench plugin. Use once, in a `cdylib` crate:
/// `export_plugin!(Model)`, or `export_plugin!(Model, text_encoder = Encoder)` for a plugin that
/// also offers a [`TextEncoder`] (interface 0.1.3).
#[macro_export]
macro_rules! export_plugin {
    (@root $model:ty, $text:expr) => {
        const _: () = {
            use $crate::__private::abi_stable as __sabi;

            extern "C" fn __shiftbench_load(
                request: &$crate::LoadRequest,
            ) -> __sabi::std_types::RResult<$crate::FfiModelBox, __sabi::std_types::RString> {
                $crate::load_adapter::<$model>(request)
            }

            extern "C" fn __shiftbench_load_typed(
                request: &$crate::LoadRequest,
            ) -> __sabi::std_types::RResult<$crate::FfiModelTypedBox, __sabi::std_types::RString> {
                $crate::load_typed_adapter::<$model>(request)
            }

            extern "C" fn __shiftbench_load_embed(
                request: &$crate::LoadRequest,
            ) -> __sabi::std_types::RResult<$crate::FfiModelEmbedBox, __sabi::std_types::RString> {
                $crate::load_embed_adapter::<$model>(request)
            }

            extern "C" fn __shiftbench_plugin_name() -> __sabi::std_types::RStr<'static> {
                __sabi::std_types::RStr::from_str(concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION")))
            }

            fn __shiftbench_root() -> $crate::PluginModRef {
                use __sabi::prefix_type::PrefixTypeTrait;
                $crate::PluginMod {
                    interface_version: $crate::interface_version,
                    plugin_name: __shiftbench_plugin_name,
                    load: __shiftbench_load,
                    load_typed: __shiftbench_load_typed,
                    load_embed: __shiftbench_load_embed,
                    load_text_encoder: $text,
                }
                .leak_into_prefix()
            }

            extern "C" fn __shiftbench_erased_root() -> __sabi::library::RootModuleResult {
                __sabi::library::__call_root_module_loader(__shiftbench_root)
            }

            // SAFETY: `from_constructor::<M>` needs the constructor's erased prefix to have been
            // a `PrefixRef<M>`: `__call_root_module_loader` erases the `PluginModRef` that
            // `__shiftbench_root` returns, and `M` is `PluginModRef` (what abi_stable's own
            // `export_root_module` expands to, for this type).
            #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
            pub static __SHIFTBENCH_LIB_HEADER: __sabi::library::LibHeader = unsafe {
                __sabi::library::LibHeader::from_constructor::<$crate::PluginModRef>(
                    __shiftbench_erased_root,
                    __sabi::library::CheckTypeLayout::Yes,
                )
            };
        };
    };
    ($model:ty $(,)?) => {
        $crate::export_plugin!(@root $model, $crate::no_text_encoder);
    };
    ($model:ty, text_encoder = $encoder:ty $(,)?) => {
        $crate::export_plugin!(@root $model, {
            extern "C" fn __shiftbench_load_text_encoder(
                request: &$crate::TextLoadRequest,
            ) -> $crate::__private::abi_stable::std_types::ROption<
                $crate::__private::abi_stable::std_types::RResult<
                    $crate::FfiTextEncoderBox,
                    $crate::__private::abi_stable::std_types::RString,
                >,
            > {
                $crate::__private::abi_stable::std_types::ROption::RSome($crate::load_text_adapter::<$encoder>(request))
            }
            __shiftbench_load_text_encoder
        });
    };
}

#[cfg(test)]
mod tests {
    use super::loader::{v0_1_0, v0_1_1, v0_1_2};
    use super::*;

    #[test]
    fn root_symbol_matches_abi_stable() {
        assert_eq!(ROOT_SYMBOL, abi_stable::library::ROOT_MODULE_LOADER_NAME);
    }

    /// Today's root module passes for interface 0.1.0's (what `init_plugin_module` checks every
    /// plugin against, and what a 0.1.0 host checks), but not the other way round: abi_stable
    /// refuses a root module with fewer fields than the host's type, hence `init_plugin_module`.
    #[test]
    fn root_module_grows_only_by_appending() {
        use abi_stable::abi_stability::abi_checking::check_layout_compatibility;
        let v0 = <v0_1_0::PluginModRef as StableAbi>::LAYOUT;
        let v1 = <v0_1_1::PluginModRef as StableAbi>::LAYOUT;
        let v2 = <v0_1_2::PluginModRef as StableAbi>::LAYOUT;
        let now = <PluginModRef as StableAbi>::LAYOUT;
        for (older, newer) in [(v0, v1), (v0, v2), (v1, v2), (v0, now), (v1, now), (v2, now)] {
            assert!(check_layout_compatibility(older, newer).is_ok());
            assert!(check_layout_compatibility(newer, older).is_err());
        }
    }

    struct Panicky;
    impl Classifier for Panicky {
        fn load(_: &LoadRequest) -> Result<Self, String> {
            Ok(Panicky)
        }
        fn card(&self) -> ModelCard {
            ModelCard {
                name: "panicky".into(),
                labels: RVec::from(vec![RString::from("n01440764")]),
                preprocess: PreprocessSpec::IMAGENET,
                max_batch: 0,
                scores: ScoreKind::Logits,
            }
        }
        fn infer(&mut self, _: &[f32], _: usize) -> Result<Vec<f32>, String> {
            panic!("boom")
        }
    }

    #[test]
    fn panics_become_errors_and_poison_the_model() {
        let req = LoadRequest { config_path: "".into(), threads: 0 };
        let mut m = load_adapter::<Panicky>(&req).unwrap();
        assert_eq!(m.card().name.as_str(), "panicky");
        let e = m.infer(RSlice::from_slice(&[0.0]), 1).unwrap_err();
        assert_eq!(e.as_str(), "plugin panicked in infer: boom");
        let e = m.infer(RSlice::from_slice(&[0.0]), 1).unwrap_err();
        assert_eq!(e.as_str(), "model is unusable after an earlier panic");
    }

    /// Scores batch 1; an ordinary error that reads like a panic for batch 2; panics for batch 3.
    struct Tricky;
    impl Classifier for Tricky {
        fn load(_: &LoadRequest) -> Result<Self, String> {
            Ok(Tricky)
        }
        fn card(&self) -> ModelCard {
            ModelCard { name: "tricky".into(), ..Panicky.card() }
        }
        fn infer(&mut self, _: &[f32], batch: usize) -> Result<Vec<f32>, String> {
            match batch {
                2 => Err("plugin panicked: no, just a message".into()),
                3 => panic!("boom"),
                _ => Ok(vec![0.5; batch]),
            }
        }
    }

    fn req() -> LoadRequest {
        LoadRequest { config_path: "".into(), threads: 0 }
    }

    #[test]
    fn typed_errors_are_sample_unless_the_model_panicked() {
        let mut m = load_typed_adapter::<Tricky>(&req()).unwrap();
        assert_eq!(m.card().name.as_str(), "tricky");
        let one = [0.0; 1];
        assert_eq!(m.infer(RSlice::from_slice(&one), 1).unwrap().as_slice(), &[0.5]);
        let e = m.infer(RSlice::from_slice(&one), 2).unwrap_err();
        assert_eq!(e, PluginError { kind: ErrorKind::Sample, message: "plugin panicked: no, just a message".into() });
        // An ordinary error does not poison the model.
        assert_eq!(m.infer(RSlice::from_slice(&one), 1).unwrap().as_slice(), &[0.5]);
        let e = m.infer(RSlice::from_slice(&one), 3).unwrap_err();
        assert_eq!(e, PluginError { kind: ErrorKind::Fatal, message: "plugin panicked in infer: boom".into() });
        let e = m.infer(RSlice::from_slice(&one), 1).unwrap_err();
        assert_eq!(
            e,
            PluginError { kind: ErrorKind::Fatal, message: "model is unusable after an earlier panic".into() }
        );
    }

    /// Embeds as two values per image (the batch size, then the image's first input value);
    /// panics for a batch of 3.
    struct Embedder;
    impl Classifier for Embedder {
        fn load(_: &LoadRequest) -> Result<Self, String> {
            Ok(Embedder)
        }
        fn card(&self) -> ModelCard {
            ModelCard { name: "embedder".into(), ..Panicky.card() }
        }
        fn infer(&mut self, _: &[f32], batch: usize) -> Result<Vec<f32>, String> {
            Ok(vec![0.5; batch])
        }
        fn embedding_len(&self) -> usize {
            2
        }
        fn embed(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
            if batch == 3 {
                panic!("embed boom")
            }
            Ok((0..batch).flat_map(|i| [batch as f32, input[i]]).collect())
        }
    }

    #[test]
    fn embeddings_cross_the_boundary_and_default_to_none() {
        let mut m = load_embed_adapter::<Embedder>(&req()).unwrap();
        assert_eq!(m.embedding_len(), 2);
        assert_eq!(m.embed(RSlice::from_slice(&[7.0, 8.0]), 2).unwrap().as_slice(), &[2.0, 7.0, 2.0, 8.0]);
        assert_eq!(m.infer(RSlice::from_slice(&[0.0]), 1).unwrap().as_slice(), &[0.5]);
        let e = m.embed(RSlice::from_slice(&[0.0; 3]), 3).unwrap_err();
        assert_eq!(e, PluginError { kind: ErrorKind::Fatal, message: "plugin panicked in embed: embed boom".into() });
        assert_eq!(m.infer(RSlice::from_slice(&[0.0]), 1).unwrap_err().kind, ErrorKind::Fatal);

        // A classifier that says nothing about an embedding has none: a clear, non-fatal error.
        let mut t = load_embed_adapter::<Tricky>(&req()).unwrap();
        assert_eq!(t.embedding_len(), 0);
        let e = t.embed(RSlice::from_slice(&[0.0]), 1).unwrap_err();
        assert_eq!(e, PluginError { kind: ErrorKind::Sample, message: "this model has no embedding".into() });
        assert_eq!(t.infer(RSlice::from_slice(&[0.0]), 1).unwrap().as_slice(), &[0.5]);
    }

    #[test]
    fn legacy_strings_are_unchanged() {
        let mut m = load_adapter::<Tricky>(&req()).unwrap();
        let one = [0.0; 1];
        assert_eq!(m.infer(RSlice::from_slice(&one), 1).unwrap().as_slice(), &[0.5]);
        assert_eq!(m.infer(RSlice::from_slice(&one), 2).unwrap_err().as_str(), "plugin panicked: no, just a message");
        assert_eq!(m.infer(RSlice::from_slice(&one), 3).unwrap_err().as_str(), "plugin panicked in infer: boom");
        assert_eq!(
            m.infer(RSlice::from_slice(&one), 1).unwrap_err().as_str(),
            "model is unusable after an earlier panic"
        );
    }

    #[test]
    fn legacy_text_rule() {
        assert_eq!(legacy_error_kind("plugin panicked in infer: boom"), ErrorKind::Fatal);
        assert_eq!(legacy_error_kind("plugin panicked: no, just a message"), ErrorKind::Fatal);
        assert_eq!(legacy_error_kind("model is unusable after an earlier panic"), ErrorKind::Fatal);
        assert_eq!(legacy_error_kind("bad batch of 2"), ErrorKind::Sample);
        assert_eq!(legacy_error_kind(""), ErrorKind::Sample);
    }

    #[test]
    fn load_errors_and_load_panics_are_strings_on_both_paths() {
        struct NoLoad;
        impl Classifier for NoLoad {
            fn load(r: &LoadRequest) -> Result<Self, String> {
                if r.threads == 7 {
                    panic!("load boom")
                }
                Err("no weights".into())
            }
            fn card(&self) -> ModelCard {
                unreachable!()
            }
            fn infer(&mut self, _: &[f32], _: usize) -> Result<Vec<f32>, String> {
                unreachable!()
            }
        }
        fn err<T>(r: RResult<T, RString>) -> String {
            r.into_result().err().expect("the load must fail").into()
        }
        assert_eq!(err(load_adapter::<NoLoad>(&req())), "no weights");
        assert_eq!(err(load_typed_adapter::<NoLoad>(&req())), "no weights");
        let panicking = LoadRequest { threads: 7, ..req() };
        assert_eq!(err(load_adapter::<NoLoad>(&panicking)), "plugin panicked in load: load boom");
        assert_eq!(err(load_typed_adapter::<NoLoad>(&panicking)), "plugin panicked in load: load boom");
    }

    #[test]
    fn enum_names_round_trip() {
        fn check<T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display>(
            all: &[T],
            as_str: fn(T) -> &'static str,
            parse: fn(&str) -> Option<T>,
            names: &[&str],
        ) {
            assert_eq!(all.iter().map(|&v| as_str(v)).collect::<Vec<_>>(), names);
            for &v in all {
                assert_eq!(parse(as_str(v)), Some(v));
                assert_eq!(v.to_string(), as_str(v));
                assert_eq!(parse(&as_str(v).to_uppercase()), None);
                assert_eq!(parse(&format!(" {}", as_str(v))), None);
            }
            assert_eq!(parse(""), None);
        }
        check(&Interpolation::ALL, Interpolation::as_str, Interpolation::parse, &["nearest", "bilinear", "bicubic"]);
        check(&ChannelOrder::ALL, ChannelOrder::as_str, ChannelOrder::parse, &["rgb", "bgr"]);
        check(&Layout::ALL, Layout::as_str, Layout::parse, &["nchw", "nhwc"]);
        check(&ScoreKind::ALL, ScoreKind::as_str, ScoreKind::parse, &["logits", "probabilities"]);
        assert_eq!(Interpolation::parse("lanczos"), None);
    }
}
