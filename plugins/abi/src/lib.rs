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
//! or for 0.x a newer minor than the host knows) is refused with both versions named, and a plugin
//! whose types differ in layout is refused too, instead of crashing.
//!
//! ## Panics
//! Every call from the harness into the plugin runs under `catch_unwind`: a panic in plugin code
//! becomes an error value returned to the harness; it never unwinds across the FFI boundary.

#![allow(non_local_definitions)] // emitted by abi_stable's sabi_trait macro

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RSlice, RStr, RString, RVec},
    StableAbi,
};

#[doc(hidden)]
pub mod __private {
    pub use abi_stable;
}

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

/// The root module every plugin exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// The version of this crate the plugin was built against.
    pub interface_version: extern "C" fn() -> RStr<'static>,
    /// The plugin crate's own name and version, for messages.
    pub plugin_name: extern "C" fn() -> RStr<'static>,
    #[sabi(last_prefix_field)]
    pub load: extern "C" fn(request: &LoadRequest) -> RResult<FfiModelBox, RString>,
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
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs `f`, turning a panic into an error sentence.
pub fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(format!("plugin panicked in {what}: {}", panic_message(payload))),
    }
}

/// Adapts a [`Classifier`] to [`FfiModel`], catching panics.
#[doc(hidden)]
pub struct Adapter<C: Classifier> {
    inner: Option<C>,
    card: ModelCard,
}

impl<C: Classifier> FfiModel for Adapter<C> {
    fn card(&self) -> ModelCard {
        self.card.clone()
    }

    fn infer(&mut self, input: RSlice<'_, f32>, batch: u32) -> RResult<RVec<f32>, RString> {
        let Some(model) = self.inner.as_mut() else {
            return RResult::RErr("model is unusable after an earlier panic".into());
        };
        let r = guard("infer", || model.infer(input.as_slice(), batch as usize));
        if matches!(&r, Err(e) if e.starts_with("plugin panicked")) {
            // State after a panic is unknown; refuse further calls rather than trust it.
            // Leaking is deliberate: dropping half-updated state could panic again.
            std::mem::forget(self.inner.take());
        }
        match r {
            Ok(v) => RResult::ROk(RVec::from(v)),
            Err(e) => RResult::RErr(e.into()),
        }
    }
}

#[doc(hidden)]
pub fn load_adapter<C: Classifier>(request: &LoadRequest) -> RResult<FfiModelBox, RString> {
    let r = guard("load", || {
        let model = C::load(request)?;
        let card = guard("card", || Ok(model.card()))?;
        Ok(Adapter { inner: Some(model), card })
    });
    match r {
        Ok(adapter) => RResult::ROk(FfiModel_TO::from_value(adapter, abi_stable::sabi_trait::TD_Opaque)),
        Err(e) => RResult::RErr(e.into()),
    }
}

#[doc(hidden)]
pub extern "C" fn interface_version() -> RStr<'static> {
    RStr::from_str(INTERFACE_VERSION)
}

/// The name of the symbol holding a plugin's root module (abi_stable's mangled name). Spelled
/// out because `export_plugin!` must put it in an attribute; a test checks it against
/// `abi_stable::library::ROOT_MODULE_LOADER_NAME`.
#[doc(hidden)]
pub const ROOT_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// Exports a [`Classifier`] as a shiftbench plugin. Use once, in a `cdylib` crate.
#[macro_export]
macro_rules! export_plugin {
    ($model:ty) => {
        const _: () = {
            use $crate::__private::abi_stable as __sabi;

            extern "C" fn __shiftbench_load(
                request: &$crate::LoadRequest,
            ) -> __sabi::std_types::RResult<$crate::FfiModelBox, __sabi::std_types::RString> {
                $crate::load_adapter::<$model>(request)
            }

            extern "C" fn __shiftbench_plugin_name() -> __sabi::std_types::RStr<'static> {
                __sabi::std_types::RStr::from_str(concat!(
                    env!("CARGO_PKG_NAME"),
                    " ",
                    env!("CARGO_PKG_VERSION")
                ))
            }

            fn __shiftbench_root() -> $crate::PluginModRef {
                use __sabi::prefix_type::PrefixTypeTrait;
                $crate::PluginMod {
                    interface_version: $crate::interface_version,
                    plugin_name: __shiftbench_plugin_name,
                    load: __shiftbench_load,
                }
                .leak_into_prefix()
            }

            extern "C" fn __shiftbench_erased_root() -> __sabi::library::RootModuleResult {
                __sabi::library::__call_root_module_loader(__shiftbench_root)
            }

            #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
            pub static __SHIFTBENCH_LIB_HEADER: __sabi::library::LibHeader = unsafe {
                __sabi::library::LibHeader::from_constructor::<$crate::PluginModRef>(
                    __shiftbench_erased_root,
                    __sabi::library::CheckTypeLayout::Yes,
                )
            };
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_symbol_matches_abi_stable() {
        assert_eq!(ROOT_SYMBOL, abi_stable::library::ROOT_MODULE_LOADER_NAME);
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
        assert!(e.contains("plugin panicked in infer: boom"), "{e}");
        let e = m.infer(RSlice::from_slice(&[0.0]), 1).unwrap_err();
        assert!(e.contains("unusable"), "{e}");
    }
}
