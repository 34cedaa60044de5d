//! Test fixture: a working plugin built the way plugins of interface 0.1.1 were, before
//! embeddings existed. Its root module is a copy of interface 0.1.1's `PluginMod` (`load` the last
//! prefix field, then `load_typed`; no `load_embed`) and declares interface 0.1.1. A host loads it
//! with `shiftbench_plugin::init_plugin_module`, finds `module.load_embed()` to be `None` and
//! calls `load_typed`: the model scores as before, its errors keep their typed kind, and it has no
//! embedding.
//!
//! Its model needs no model YAML. It scores the 10 classes of the example plugin from the mean of
//! the input (deterministic), with `PreprocessSpec::IMAGENET` at resize 32 / crop 32, and for a
//! batch of 2 returns the ordinary error `bad batch of 2`.
//!
//! As for the 0.1.0 fixture (`plugins/testing/legacy`), the build script compiles this crate as
//! package `shiftbench-plugin` 0.1.1, what `#[derive(StableAbi)]` records for the root module of
//! a plugin built against interface 0.1.1. The types inside it (`LoadRequest`, `FfiModelBox`,
//! `FfiModelTypedBox`) are today's, unchanged since 0.1.1.
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
    load_adapter, load_typed_adapter, Classifier, FfiModelBox, FfiModelTypedBox, LoadRequest, ModelCard,
    PreprocessSpec, ScoreKind,
};

/// Interface 0.1.1's root module, field for field.
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
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "shiftbench_plugin";
    const NAME: &'static str = "shiftbench-plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("0.1.1");
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

pub struct Typed;

impl Classifier for Typed {
    fn load(_: &LoadRequest) -> Result<Self, String> {
        Ok(Typed)
    }

    fn card(&self) -> ModelCard {
        ModelCard {
            name: "interface-0.1.1".into(),
            labels: LABELS.iter().map(|&l| l.into()).collect(),
            preprocess: PREPROCESS,
            max_batch: 0,
            scores: ScoreKind::Logits,
        }
    }

    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        if batch == 2 {
            return Err("bad batch of 2".into());
        }
        let per = PREPROCESS.image_len();
        Ok(input
            .chunks_exact(per)
            .flat_map(|img| {
                let mean = img.iter().sum::<f32>() / per as f32;
                (0..LABELS.len()).map(move |i| -(mean - i as f32 / 10.0).powi(2))
            })
            .collect())
    }
}

extern "C" fn interface_version() -> RStr<'static> {
    RStr::from_str("0.1.1")
}

extern "C" fn plugin_name() -> RStr<'static> {
    RStr::from_str("shiftbench-test-v0-1-1 0.1.0")
}

extern "C" fn load(request: &LoadRequest) -> RResult<FfiModelBox, RString> {
    load_adapter::<Typed>(request)
}

extern "C" fn load_typed(request: &LoadRequest) -> RResult<FfiModelTypedBox, RString> {
    load_typed_adapter::<Typed>(request)
}

#[export_root_module]
pub fn get_library() -> PluginModRef {
    PluginMod { interface_version, plugin_name, load, load_typed }.leak_into_prefix()
}
