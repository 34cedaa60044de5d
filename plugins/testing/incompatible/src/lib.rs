//! Test fixture: a plugin built against a (pretend) future, incompatible interface version.
//! Its root module has the shape of today's but declares interface 1.0.0; the harness must
//! refuse it naming both versions, before calling anything in it.
#![allow(non_local_definitions)]

use abi_stable::{
    declare_root_module_statics, export_root_module,
    library::RootModule,
    prefix_type::PrefixTypeTrait,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr, RString},
    StableAbi,
};
use shiftbench_plugin::{FfiModelBox, LoadRequest};

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = FutureModRef)))]
#[sabi(missing_field(panic))]
pub struct FutureMod {
    pub interface_version: extern "C" fn() -> RStr<'static>,
    pub plugin_name: extern "C" fn() -> RStr<'static>,
    #[sabi(last_prefix_field)]
    pub load: extern "C" fn(request: &LoadRequest) -> RResult<FfiModelBox, RString>,
}

impl RootModule for FutureModRef {
    declare_root_module_statics! {FutureModRef}
    const BASE_NAME: &'static str = "shiftbench_plugin";
    const NAME: &'static str = "shiftbench-plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}

extern "C" fn version() -> RStr<'static> {
    RStr::from_str("1.0.0")
}
extern "C" fn name() -> RStr<'static> {
    RStr::from_str("shiftbench-test-incompatible")
}
extern "C" fn load(_: &LoadRequest) -> RResult<FfiModelBox, RString> {
    RResult::RErr("an incompatible plugin must never be called".into())
}

#[export_root_module]
pub fn get_library() -> FutureModRef {
    FutureMod { interface_version: version, plugin_name: name, load }.leak_into_prefix()
}
