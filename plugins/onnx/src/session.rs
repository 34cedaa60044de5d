//! An ONNX Runtime session for a model: the settings applied (threads, optimization, spinning),
//! the model read from its file or from the changed copy in memory (with external data found
//! beside the file), on CUDA when asked and available, else on the CPU.

use std::path::Path;

use ort::session::builder::SessionBuilder;
use ort::session::Session;

use crate::settings::{Device, Settings};

/// Where ONNX Runtime reads the model from.
pub(crate) enum Source<'a> {
    /// The file, as it is.
    File(&'a Path),
    /// A changed copy in memory (an output added); `folder` is the model file's folder, where
    /// external data files are looked for.
    Memory { bytes: &'a [u8], folder: &'a Path },
}

/// ONNX Runtime's session option for the folder of external data files when a model is loaded
/// from memory (`kOrtSessionOptionsModelExternalInitializersFileFolderPath`).
const EXTERNAL_DATA_FOLDER: &str = "session.model_external_initializers_file_folder_path";

pub(crate) fn build_session(
    env: &ort::environment::Environment,
    settings: &Settings,
    source: &Source<'_>,
    model: &Path,
    yaml: &Path,
) -> Result<(Session, Device), String> {
    let opt = |e: ort::Error<SessionBuilder>| format!("cannot configure ONNX Runtime for {}: {e}", yaml.display());
    let mut builder = Session::builder(env)
        .map_err(|e| format!("cannot create an ONNX Runtime session for {}: {e}", yaml.display()))?
        .with_optimization_level(settings.optimization)
        .map_err(opt)?;
    if settings.threads > 0 {
        builder = builder.with_intra_threads(settings.threads).map_err(opt)?;
    }
    if let Some(spin) = settings.spinning {
        builder = builder.with_intra_op_spinning(spin).map_err(opt)?;
    }
    if let Source::Memory { folder, .. } = source {
        // External data files are found beside the model file, as when it is loaded from there.
        let folder = folder.to_str().ok_or_else(|| {
            format!(
                "the folder of the model {} is not valid UTF-8, which ONNX Runtime needs to find external data in it",
                model.display()
            )
        })?;
        builder = builder.with_config_entry(EXTERNAL_DATA_FOLDER, folder).map_err(opt)?;
    }
    let load_err = |e: ort::Error| format!("ONNX Runtime cannot load the model {}: {e}", model.display());

    #[cfg(feature = "cuda")]
    if let Device::Cuda(id) = settings.device {
        match cuda::session(&builder, id, source) {
            Ok(s) => return Ok((s, Device::Cuda(id))),
            Err(why) => eprintln!(
                "warning: shiftbench ONNX plugin: CUDA is unavailable for {} ({why}); running on the CPU",
                model.display()
            ),
        }
    }
    let session = commit(&mut builder, source).map_err(load_err)?;
    Ok((session, Device::Cpu))
}

fn commit(builder: &mut SessionBuilder, source: &Source<'_>) -> ort::Result<Session> {
    match source {
        Source::File(path) => builder.commit_from_file(path),
        Source::Memory { bytes, .. } => builder.commit_from_memory(bytes),
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use ort::ep::{ExecutionProvider, CUDA};
    use ort::session::builder::SessionBuilder;
    use ort::session::Session;

    use super::Source;

    /// A session on CUDA device `id`, or why not.
    pub fn session(builder: &SessionBuilder, id: i32, source: &Source<'_>) -> Result<Session, String> {
        match <CUDA as ExecutionProvider>::is_available() {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "the loaded ONNX Runtime ({}) was built without the CUDA execution provider; the PyPI onnxruntime wheel is CPU-only, use the library from onnxruntime-gpu",
                    crate::runtime::loaded_library().map(|p| p.display().to_string()).unwrap_or_default()
                ))
            }
            Err(e) => return Err(e.to_string()),
        }
        let mut b = builder.clone();
        let ep = CUDA::default().with_device_id(id);
        ep.register(&mut b).map_err(|e| e.to_string())?;
        // Nodes CUDA cannot run stay on the CPU, as ONNX Runtime does by default.
        super::commit(&mut b, source).map_err(|e| e.to_string())
    }
}
