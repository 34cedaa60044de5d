//! Test fixture: a working plugin built the way plugins of interface 0.1.2 were, before text
//! encoders existed. Its root module is a copy of interface 0.1.2's `PluginMod` (`load` the last
//! prefix field, then `load_typed` and `load_embed`; no `load_text_encoder`) and declares
//! interface 0.1.2. A host loads it with `shiftbench_plugin::init_plugin_module`, which checks it
//! against 0.1.2's fields; `module.load_text_encoder()` is `None`: its model scores and embeds as
//! before, and it offers no text encoder.
//!
//! Its model needs no model YAML. It scores the 10 classes of the example plugin from the mean of
//! the input (deterministic), with `PreprocessSpec::IMAGENET` at resize 32 / crop 32, and embeds
//! each image as two values (its mean, and 1).
//!
//! As for the older fixtures, the build script compiles this crate as package `shiftbench-plugin`
//! 0.1.2, what `#[derive(StableAbi)]` records for the root module of a plugin built against
//! interface 0.1.2. The types inside it are today's, unchanged since 0.1.2.
#![allow(non_local_definitions)]

use abi_stable::{
    declare_root_module_statics, export_root_module,
    library::RootModule,
    prefix_type::PrefixTypeTrait,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr, RString},
    StableAbi,
};
use shiftbench_plugin::{
    load_adapter, load_embed_adapter, load_typed_adapter, Classifier, FfiModelBox, FfiModelEmbedBox, FfiModelTypedBox,
    LoadRequest, ModelCard, PreprocessSpec, ScoreKind,
};

/// Interface 0.1.2's root module, field for field.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    pub interface_version: extern "C" fn() -> RStr<'static>,
    pub plugin_name: extern "C" fn() -> RStr<'static>,
    #[sabi(last_prefix_field)]
    pub load: extern "C" fn(request: &LoadRequest) -> RResult<FfiModelBox, RString>,
    #[sabi(missing_field(option))]
    pub load_typed: extern "C" fn(request: &LoadRequest) -> RResult<FfiModelTypedBox, RString>,
    #[sabi(missing_field(option))]
    pub load_embed: extern "C" fn(request: &LoadRequest) -> RResult<FfiModelEmbedBox, RString>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "shiftbench_plugin";
    const NAME: &'static str = "shiftbench-plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("0.1.2");
}

/// The example plugin's classes, in output order.
const LABELS: [&str; 10] = [
    "n07747607",
    "n07753592",
    "n07745940",
    "n07720875",
    "n09472597",
    "n04254680",
    "n03938244",
    "n07718472",
    "n07749582",
    "n02782093",
];

const PREPROCESS: PreprocessSpec = PreprocessSpec { resize: 32, crop: 32, ..PreprocessSpec::IMAGENET };

pub struct Embedder;

fn means(input: &[f32]) -> impl Iterator<Item = f32> + '_ {
    let per = PREPROCESS.image_len();
    input.chunks_exact(per).map(move |img| img.iter().sum::<f32>() / per as f32)
}

impl Classifier for Embedder {
    fn load(_: &LoadRequest) -> Result<Self, String> {
        Ok(Embedder)
    }

    fn card(&self) -> ModelCard {
        ModelCard {
            name: "interface-0.1.2".into(),
            labels: LABELS.iter().map(|&l| l.into()).collect(),
            preprocess: PREPROCESS,
            max_batch: 0,
            scores: ScoreKind::Logits,
        }
    }

    fn infer(&mut self, input: &[f32], _batch: usize) -> Result<Vec<f32>, String> {
        Ok(means(input).flat_map(|mean| (0..LABELS.len()).map(move |i| -(mean - i as f32 / 10.0).powi(2))).collect())
    }

    fn embedding_len(&self) -> usize {
        2
    }

    fn embed(&mut self, input: &[f32], _batch: usize) -> Result<Vec<f32>, String> {
        Ok(means(input).flat_map(|mean| [mean, 1.0]).collect())
    }
}

extern "C" fn interface_version() -> RStr<'static> {
    RStr::from_str("0.1.2")
}

extern "C" fn plugin_name() -> RStr<'static> {
    RStr::from_str("shiftbench-test-v0-1-2 0.1.0")
}

extern "C" fn load(request: &LoadRequest) -> RResult<FfiModelBox, RString> {
    load_adapter::<Embedder>(request)
}

extern "C" fn load_typed(request: &LoadRequest) -> RResult<FfiModelTypedBox, RString> {
    load_typed_adapter::<Embedder>(request)
}

extern "C" fn load_embed(request: &LoadRequest) -> RResult<FfiModelEmbedBox, RString> {
    load_embed_adapter::<Embedder>(request)
}

#[export_root_module]
pub fn get_library() -> PluginModRef {
    PluginMod { interface_version, plugin_name, load, load_typed, load_embed }.leak_into_prefix()
}
