//! The plugin side of the boundary: [`Adapter`] wraps a plain [`Classifier`] as the FFI-safe
//! model the host holds ([`FfiModel`], [`FfiModelTyped`], [`FfiModelEmbed`]), every call run
//! under `catch_unwind` so a panic becomes an error value (and the model unusable after it); the
//! `load_*_adapter` functions are what `export_plugin!` puts in the root module.

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};

use crate::{
    Classifier, ErrorKind, FfiModel, FfiModelBox, FfiModelEmbed, FfiModelEmbedBox, FfiModelEmbed_TO, FfiModelTyped,
    FfiModelTypedBox, FfiModelTyped_TO, FfiModel_TO, LoadRequest, ModelCard, PluginError, INTERFACE_VERSION,
};

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

pub(crate) fn panicked(what: &str, payload: Box<dyn std::any::Any + Send>) -> String {
    format!("plugin panicked in {what}: {}", panic_message(payload))
}

/// What the adapter answers once its model has panicked.
pub(crate) const POISONED: &str = "model is unusable after an earlier panic";

/// Runs `f`, turning a panic into an error sentence.
pub fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(panicked(what, payload)),
    }
}

/// Adapts a [`Classifier`] to [`FfiModel`] and [`FfiModelTyped`], catching panics.
#[doc(hidden)]
pub struct Adapter<C: Classifier> {
    inner: Option<C>,
    card: ModelCard,
    embedding_len: u32,
}

impl<C: Classifier> Adapter<C> {
    fn new(request: &LoadRequest) -> Result<Self, String> {
        guard("load", || {
            let model = C::load(request)?;
            let card = guard("card", || Ok(model.card()))?;
            let embedding_len = guard("embedding_len", || {
                u32::try_from(model.embedding_len()).map_err(|_| "the embedding is too long".to_string())
            })?;
            Ok(Adapter { inner: Some(model), card, embedding_len })
        })
    }

    /// One `infer` call, classified: only a real panic (now or earlier) is fatal.
    fn infer_typed(&mut self, input: &[f32], batch: u32) -> Result<Vec<f32>, PluginError> {
        self.call("infer", |model| model.infer(input, batch as usize))
    }

    /// One `embed` call, classified as `infer_typed`'s.
    fn embed_typed(&mut self, input: &[f32], batch: u32) -> Result<Vec<f32>, PluginError> {
        if self.embedding_len == 0 {
            return Err(PluginError { kind: ErrorKind::Sample, message: "this model has no embedding".into() });
        }
        self.call("embed", |model| model.embed(input, batch as usize))
    }

    fn call(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut C) -> Result<Vec<f32>, String>,
    ) -> Result<Vec<f32>, PluginError> {
        let Some(model) = self.inner.as_mut() else {
            return Err(PluginError { kind: ErrorKind::Fatal, message: POISONED.into() });
        };
        match catch_unwind(AssertUnwindSafe(|| f(model))) {
            Ok(Ok(values)) => Ok(values),
            Ok(Err(e)) => Err(PluginError { kind: ErrorKind::Sample, message: e.into() }),
            Err(payload) => {
                // State after a panic is unknown; refuse further calls rather than trust it.
                // Leaking is deliberate: dropping half-updated state could panic again.
                std::mem::forget(self.inner.take());
                Err(PluginError { kind: ErrorKind::Fatal, message: panicked(what, payload).into() })
            }
        }
    }

    fn describe_text(&self) -> RString {
        match &self.inner {
            Some(model) => guard("describe", || Ok(model.describe())).unwrap_or_else(|e| e).into(),
            None => RString::new(),
        }
    }
}

impl<C: Classifier> FfiModel for Adapter<C> {
    fn card(&self) -> ModelCard {
        self.card.clone()
    }

    fn infer(&mut self, input: RSlice<'_, f32>, batch: u32) -> RResult<RVec<f32>, RString> {
        match self.infer_typed(input.as_slice(), batch) {
            Ok(v) => RResult::ROk(RVec::from(v)),
            Err(e) => RResult::RErr(e.message),
        }
    }
}

impl<C: Classifier> FfiModelTyped for Adapter<C> {
    fn card(&self) -> ModelCard {
        self.card.clone()
    }

    fn infer(&mut self, input: RSlice<'_, f32>, batch: u32) -> RResult<RVec<f32>, PluginError> {
        match self.infer_typed(input.as_slice(), batch) {
            Ok(v) => RResult::ROk(RVec::from(v)),
            Err(e) => RResult::RErr(e),
        }
    }

    fn describe(&self) -> RString {
        self.describe_text()
    }
}

impl<C: Classifier> FfiModelEmbed for Adapter<C> {
    fn card(&self) -> ModelCard {
        self.card.clone()
    }

    fn infer(&mut self, input: RSlice<'_, f32>, batch: u32) -> RResult<RVec<f32>, PluginError> {
        self.infer_typed(input.as_slice(), batch).map(RVec::from).into()
    }

    fn describe(&self) -> RString {
        self.describe_text()
    }

    fn embedding_len(&self) -> u32 {
        self.embedding_len
    }

    fn embed(&mut self, input: RSlice<'_, f32>, batch: u32) -> RResult<RVec<f32>, PluginError> {
        self.embed_typed(input.as_slice(), batch).map(RVec::from).into()
    }
}

/// Loads `C` behind the string-error interface ([`FfiModel`]): what `export_plugin!` puts in
/// [`PluginMod::load`].
#[doc(hidden)]
pub fn load_adapter<C: Classifier>(request: &LoadRequest) -> RResult<FfiModelBox, RString> {
    match Adapter::<C>::new(request) {
        Ok(adapter) => RResult::ROk(FfiModel_TO::from_value(adapter, abi_stable::sabi_trait::TD_Opaque)),
        Err(e) => RResult::RErr(e.into()),
    }
}

/// Loads `C` behind the typed-error interface ([`FfiModelTyped`]): what `export_plugin!` puts in
/// [`PluginMod::load_typed`].
#[doc(hidden)]
pub fn load_typed_adapter<C: Classifier>(request: &LoadRequest) -> RResult<FfiModelTypedBox, RString> {
    match Adapter::<C>::new(request) {
        Ok(adapter) => RResult::ROk(FfiModelTyped_TO::from_value(adapter, abi_stable::sabi_trait::TD_Opaque)),
        Err(e) => RResult::RErr(e.into()),
    }
}

/// Loads `C` behind the embedding interface ([`FfiModelEmbed`]): what `export_plugin!` puts in
/// [`PluginMod::load_embed`].
#[doc(hidden)]
pub fn load_embed_adapter<C: Classifier>(request: &LoadRequest) -> RResult<FfiModelEmbedBox, RString> {
    match Adapter::<C>::new(request) {
        Ok(adapter) => RResult::ROk(FfiModelEmbed_TO::from_value(adapter, abi_stable::sabi_trait::TD_Opaque)),
        Err(e) => RResult::RErr(e.into()),
    }
}

#[doc(hidden)]
pub extern "C" fn interface_version() -> RStr<'static> {
    RStr::from_str(INTERFACE_VERSION)
}
