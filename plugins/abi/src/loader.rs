//! How a host loads a plugin of any compatible interface version: the root module as interfaces
//! 0.1.0, 0.1.1 and 0.1.2 declared it, and [`init_plugin_module`], which checks a plugin against the
//! fields it has (abi_stable alone would refuse every plugin with fewer fields than today's).

use abi_stable::library::{LibHeader, LibraryError};

use crate::PluginModRef;

/// The root module as interface 0.1.0 declared it, to check plugins of every version against.
#[allow(dead_code)] // its accessors: only its layout is used
pub(crate) mod v0_1_0 {
    use super::super::*;

    /// Interface 0.1.0's root module, field for field (same name: `abi_stable` compares names).
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
        // The host's version, so that a refusal names the interface this host speaks. For 0.x,
        // abi_stable compares the minor version only: 0.1.0 plugins pass.
        const VERSION_STRINGS: VersionStrings = package_version_strings!();
    }
}

/// The root module as interface 0.1.1 declared it (`load_typed` its last field).
#[allow(dead_code)] // its accessors: only its layout is used
pub(crate) mod v0_1_1 {
    use super::super::*;

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
        const VERSION_STRINGS: VersionStrings = package_version_strings!();
    }
}

/// The root module as interface 0.1.2 declared it (`load_embed` its last field).
#[allow(dead_code)] // its accessors: only its layout is used
pub(crate) mod v0_1_2 {
    use super::super::*;

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
        const VERSION_STRINGS: VersionStrings = package_version_strings!();
    }
}

/// Checks a plugin library's root module and returns it: what a host calls instead of
/// `header.init_root_module::<PluginModRef>()`, which refuses every plugin built against
/// interface 0.1.0 (abi_stable accepts a root module with *more* fields than the host's type,
/// never fewer).
///
/// Every plugin is checked (version, and the layout of everything reachable from the root module)
/// against the fields of interface 0.1.0; a plugin that has `load_typed` is then checked against
/// the fields up to `load_typed` (interface 0.1.1), one that has `load_embed` against the fields
/// up to it (0.1.2), and one that has `load_text_encoder` against the whole of today's
/// [`PluginMod`]. For a plugin of interface 0.1.0, `load_typed()` on the returned module is
/// `None`: call `load` and classify its errors with [`legacy_error_kind`]; for one of 0.1.1,
/// `load_embed()` is `None`: call `load_typed`; for one of 0.1.2, `load_text_encoder()` is `None`:
/// it offers no text encoder.
///
/// Errors are abi_stable's, as `init_root_module` returns them (`IncompatibleVersionNumber` names
/// this crate's version as the expected one).
pub fn init_plugin_module(header: &LibHeader) -> Result<PluginModRef, LibraryError> {
    header.init_root_module::<v0_1_0::PluginModRef>()?;
    // SAFETY: the fields the two types share (everything up to `load`, the last prefix field) were
    // just checked to match. The accessors of the later fields read the plugin's own record of
    // how many fields it has (`field_accessibility`, in its `WithMetadata`) and return `None` for
    // a field it lacks; a field it has is checked below before anything reads it.
    let module =
        unsafe { header.unchecked_layout::<PluginModRef>() }.map_err(|e| e.into_library_error::<PluginModRef>())?;
    if module.load_text_encoder().is_some() {
        return header.check_layout::<PluginModRef>();
    }
    if module.load_embed().is_some() {
        header.check_layout::<v0_1_2::PluginModRef>()?;
        return Ok(module);
    }
    if module.load_typed().is_some() {
        header.check_layout::<v0_1_1::PluginModRef>()?;
    }
    Ok(module)
}
