//! Test fixture: a working plugin built the way plugins of interface 0.1.0 were, before the
//! typed error kind existed. Its root module is a copy of interface 0.1.0's `PluginMod` (three
//! fields, `load` the last prefix field, no `load_typed`) and declares interface 0.1.0. A host
//! must load it with `shiftbench_plugin::init_plugin_module` (plain
//! `init_root_module::<PluginModRef>()` refuses it: "too many fields"), finds
//! `module.load_typed()` to be `None`, calls `load` and classifies the model's string errors by
//! their text (`shiftbench_plugin::legacy_error_kind`).
//!
//! Its model needs no model YAML. It scores the 10 classes of the example plugin from the mean of
//! the input (deterministic), with `PreprocessSpec::IMAGENET` at resize 32 / crop 32, and:
//!
//! - for a batch of 2 returns the ordinary error `bad batch of 2` (a per-batch failure: the model
//!   goes on);
//! - for a batch of 3 panics (`legacy: panicking on a batch of 3 as asked`): the host sees
//!   `plugin panicked in infer: ...` and, on the next call, `model is unusable after an earlier
//!   panic`, and must stop the model by the legacy text rule.
//!
//! ## How it passes for a 0.1.0 plugin
//! `abi_stable` checks, for every type in the root module's layout, its name, its package and
//! that the package versions are compatible. The root module type is defined here, so the build
//! script compiles this crate with `CARGO_PKG_NAME=shiftbench-plugin` and `CARGO_PKG_VERSION=0.1.0`
//! (what `#[derive(StableAbi)]` records), exactly what a plugin built against interface 0.1.0
//! carries for its `PluginMod`. The types inside it (`LoadRequest`, `FfiModelBox`) are today's,
//! unchanged since 0.1.0.
#![allow(non_local_definitions)]

use abi_stable::{
    declare_root_module_statics, export_root_module,
    library::RootModule,
    prefix_type::PrefixTypeTrait,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr, RString},
    StableAbi,
};
use shiftbench_plugin::{load_adapter, Classifier, FfiModelBox, LoadRequest, ModelCard, PreprocessSpec, ScoreKind};

/// Interface 0.1.0's root module, field for field.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    pub interface_version: extern "C" fn() -> RStr<'static>,
    pub plugin_name: extern "C" fn() -> RStr<'static>,
    #[sabi(last_prefix_field)]
    pub load: extern "C" fn(request: &LoadRequest) -> RResult<FfiModelBox, RString>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "shiftbench_plugin";
    const NAME: &'static str = "shiftbench-plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("0.1.0");
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

pub struct Legacy;

impl Classifier for Legacy {
    fn load(_: &LoadRequest) -> Result<Self, String> {
        Ok(Legacy)
    }

    fn card(&self) -> ModelCard {
        ModelCard {
            name: "legacy".into(),
            labels: LABELS.iter().map(|&l| l.into()).collect(),
            preprocess: PREPROCESS,
            max_batch: 0,
            scores: ScoreKind::Logits,
        }
    }

    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        match batch {
            2 => return Err("bad batch of 2".into()),
            3 => panic!("legacy: panicking on a batch of 3 as asked"),
            _ => {}
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
    RStr::from_str("0.1.0")
}

extern "C" fn plugin_name() -> RStr<'static> {
    RStr::from_str("shiftbench-test-legacy 0.1.0")
}

extern "C" fn load(request: &LoadRequest) -> RResult<FfiModelBox, RString> {
    load_adapter::<Legacy>(request)
}

#[export_root_module]
pub fn get_library() -> PluginModRef {
    PluginMod { interface_version, plugin_name, load }.leak_into_prefix()
}
