//! Text encoders (interface 0.1.3): a plugin may offer, beside its model, an encoder that turns
//! texts into embeddings (what `shiftbench laionet build` compares captions with class queries
//! by). An additive capability: the root module's `load_text_encoder` field, which answers
//! `RNone` for a plugin that offers none and is missing altogether in a plugin built before 0.1.3.
//!
//! A plugin author implements [`TextEncoder`] and exports it with
//! `export_plugin!(Model, text_encoder = Encoder)`. The host calls [`FfiTextEncoder::encode`]
//! with at most `max_batch` texts at a time, expects `texts.len() * dim` values back, row-major,
//! and L2-normalises every row itself (an encoder need not).

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RSlice, RString, RVec},
    StableAbi,
};

use crate::adapter::{guard, panicked, POISONED};
use crate::{ErrorKind, PluginError};

/// What the harness passes to [`TextEncoder::load`].
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct TextLoadRequest {
    /// The encoder description the user named (for example the `encoder.yaml` of a folder made by
    /// `scripts/export-text-encoder.py`); empty when the user named the plugin itself, for its
    /// built-in encoder.
    pub config_path: RString,
    /// How many threads the encoder may use; 0 lets the plugin decide.
    pub threads: u32,
}

/// What a loaded text encoder is.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct TextEncoderInfo {
    /// A short name (results name their similarity column after it), e.g. `all-mpnet-base-v2`.
    pub name: RString,
    /// Values in one embedding.
    pub dim: u32,
    /// The most texts one `encode` call may receive; 0 means no limit.
    pub max_batch: u32,
}

/// The FFI-safe face of a loaded text encoder. Its vtable is a prefix type whose last prefix
/// field is `encode`: later interface versions may add methods after it.
#[sabi_trait]
pub trait FfiTextEncoder: Send {
    fn info(&self) -> TextEncoderInfo;

    /// The embeddings of `texts`: `texts.len() * dim` values, row-major. An error of kind
    /// [`ErrorKind::Fatal`] when the encoder panicked (now or earlier).
    #[sabi(last_prefix_field)]
    fn encode(&mut self, texts: RSlice<'_, RString>) -> RResult<RVec<f32>, PluginError>;
}

/// A loaded text encoder as the harness holds it.
pub type FfiTextEncoderBox = FfiTextEncoder_TO<'static, RBox<()>>;

/// What `export_plugin!(Model)` puts in `PluginMod::load_text_encoder`: no text encoder.
#[doc(hidden)]
pub extern "C" fn no_text_encoder(_: &TextLoadRequest) -> ROption<RResult<FfiTextEncoderBox, RString>> {
    ROption::RNone
}

/// The trait a plugin author implements for a text encoder.
pub trait TextEncoder: Send + Sized + 'static {
    /// Build the encoder. Return an error sentence (it is shown to the user) rather than panic.
    fn load(request: &TextLoadRequest) -> Result<Self, String>;

    /// Name, dimension, largest batch. Called once after loading.
    fn info(&self) -> TextEncoderInfo;

    /// The embeddings of `texts` (`texts.len() <= max_batch` when that is not 0):
    /// `texts.len() * dim` values, row-major.
    fn encode(&mut self, texts: &[&str]) -> Result<Vec<f32>, String>;
}

/// Adapts a [`TextEncoder`] to [`FfiTextEncoder`], catching panics (the encoder is unusable
/// after one).
#[doc(hidden)]
pub struct TextAdapter<E: TextEncoder> {
    inner: Option<E>,
    info: TextEncoderInfo,
}

impl<E: TextEncoder> FfiTextEncoder for TextAdapter<E> {
    fn info(&self) -> TextEncoderInfo {
        self.info.clone()
    }

    fn encode(&mut self, texts: RSlice<'_, RString>) -> RResult<RVec<f32>, PluginError> {
        let Some(encoder) = self.inner.as_mut() else {
            return RResult::RErr(PluginError { kind: ErrorKind::Fatal, message: POISONED.into() });
        };
        let texts: Vec<&str> = texts.iter().map(RString::as_str).collect();
        match catch_unwind(AssertUnwindSafe(|| encoder.encode(&texts))) {
            Ok(Ok(values)) => RResult::ROk(RVec::from(values)),
            Ok(Err(e)) => RResult::RErr(PluginError { kind: ErrorKind::Sample, message: e.into() }),
            Err(payload) => {
                // As for a model: leak the half-updated state rather than trust or drop it.
                std::mem::forget(self.inner.take());
                RResult::RErr(PluginError { kind: ErrorKind::Fatal, message: panicked("encode", payload).into() })
            }
        }
    }
}

/// Loads `E` behind [`FfiTextEncoder`]: what `export_plugin!(.., text_encoder = E)` puts in
/// `PluginMod::load_text_encoder`.
#[doc(hidden)]
pub fn load_text_adapter<E: TextEncoder>(request: &TextLoadRequest) -> RResult<FfiTextEncoderBox, RString> {
    let loaded = guard("load", || {
        let encoder = E::load(request)?;
        let info = guard("info", || Ok(encoder.info()))?;
        Ok(TextAdapter { inner: Some(encoder), info })
    });
    match loaded {
        Ok(adapter) => RResult::ROk(FfiTextEncoder_TO::from_value(adapter, abi_stable::sabi_trait::TD_Opaque)),
        Err(e) => RResult::RErr(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Embeds a text as [its length, 1]; fails on "bad"; panics on "boom".
    struct Lengths;
    impl TextEncoder for Lengths {
        fn load(r: &TextLoadRequest) -> Result<Self, String> {
            match r.config_path.as_str() {
                "panic" => panic!("load boom"),
                "fail" => Err("no vocabulary".into()),
                _ => Ok(Lengths),
            }
        }
        fn info(&self) -> TextEncoderInfo {
            TextEncoderInfo { name: "lengths".into(), dim: 2, max_batch: 4 }
        }
        fn encode(&mut self, texts: &[&str]) -> Result<Vec<f32>, String> {
            if texts.contains(&"bad") {
                return Err("cannot encode \"bad\"".into());
            }
            if texts.contains(&"boom") {
                panic!("encode boom")
            }
            Ok(texts.iter().flat_map(|t| [t.len() as f32, 1.0]).collect())
        }
    }

    fn req(path: &str) -> TextLoadRequest {
        TextLoadRequest { config_path: path.into(), threads: 0 }
    }

    fn texts(t: &[&str]) -> Vec<RString> {
        t.iter().map(|&s| s.into()).collect()
    }

    #[test]
    fn texts_cross_the_boundary_errors_are_typed_and_panics_poison() {
        let mut e = load_text_adapter::<Lengths>(&req("")).unwrap();
        assert_eq!(e.info(), TextEncoderInfo { name: "lengths".into(), dim: 2, max_batch: 4 });
        let t = texts(&["abc", "", "héllo"]);
        assert_eq!(e.encode(RSlice::from_slice(&t)).unwrap().as_slice(), &[3.0, 1.0, 0.0, 1.0, 6.0, 1.0]);
        let t = texts(&["ok", "bad"]);
        let err = e.encode(RSlice::from_slice(&t)).unwrap_err();
        assert_eq!(err, PluginError { kind: ErrorKind::Sample, message: "cannot encode \"bad\"".into() });
        // An ordinary error leaves the encoder usable; a panic does not.
        assert_eq!(e.encode(RSlice::from_slice(&texts(&["a"]))).unwrap().as_slice(), &[1.0, 1.0]);
        let err = e.encode(RSlice::from_slice(&texts(&["boom"]))).unwrap_err();
        assert_eq!(
            err,
            PluginError { kind: ErrorKind::Fatal, message: "plugin panicked in encode: encode boom".into() }
        );
        let err = e.encode(RSlice::from_slice(&texts(&["a"]))).unwrap_err();
        assert_eq!(err, PluginError { kind: ErrorKind::Fatal, message: POISONED.into() });
    }

    #[test]
    fn load_errors_and_panics_are_sentences() {
        let err = |r: RResult<FfiTextEncoderBox, RString>| -> String { r.into_result().err().unwrap().into() };
        assert_eq!(err(load_text_adapter::<Lengths>(&req("fail"))), "no vocabulary");
        assert_eq!(err(load_text_adapter::<Lengths>(&req("panic"))), "plugin panicked in load: load boom");
    }
}
