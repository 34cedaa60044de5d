//! The embedded interpreter: started once per process (each model copy is a worker process of
//! its own, so each has its own interpreter and GIL), with the virtual environment the model
//! YAML names, and with Python's signal handlers left alone (Ctrl-C stays the harness's).
//!
//! A virtual environment is used the way `venv/bin/python` uses it: the interpreter is told that
//! its executable is the environment's `bin/python`, and Python's own start-up (`getpath`, `site`)
//! then finds `pyvenv.cfg` and puts the environment's `site-packages` on `sys.path` (and the base
//! Python's only when the environment includes system site packages). Without an environment the
//! executable is the Python the plugin was built against, so the interpreter's standard library
//! is the one that matches the linked libpython whatever `python3` is first on `PATH`.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use pyo3::ffi;

/// The Python the plugin was built against (`major.minor`), its executable and library folder.
pub const PYTHON_VERSION: &str = env!("SHIFTBENCH_PYTHON_VERSION");
pub const PYTHON_EXECUTABLE: &str = env!("SHIFTBENCH_PYTHON_EXECUTABLE");

/// The variables numpy's BLAS, torch's OpenMP and MKL read for their thread pools, set from the
/// harness's threads per model copy before the interpreter starts. `SHIFTBENCH_MODEL_THREADS`
/// is for the user's code (an ONNX Runtime session's `intra_op_num_threads`, say).
pub const THREAD_VARS: [&str; 4] =
    ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "SHIFTBENCH_MODEL_THREADS"];

/// How this process's interpreter was started: with which environment (None: none), or why it
/// could not start. None until the first model loads.
static STARTED: Mutex<Option<Result<Option<PathBuf>, String>>> = Mutex::new(None);

/// Starts the interpreter with the environment `env` (once per process), or checks that it was
/// started with that one. `threads` (0: leave them) sets [`THREAD_VARS`] first.
pub fn start(env: Option<&Path>, threads: u32) -> Result<(), String> {
    let env = env.map(|e| std::path::absolute(e).unwrap_or_else(|_| e.to_path_buf()));
    let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
    let state = started.get_or_insert_with(|| init(env.as_deref(), threads));
    match state {
        Err(e) => Err(e.clone()),
        Ok(used) if *used != env => Err(format!(
            "this process's Python already runs with {}, and one process has one interpreter: a model with {} \
             needs a worker process of its own (the default; not --in-process)",
            env_words(used.as_deref()),
            env_words(env.as_deref())
        )),
        Ok(_) => Ok(()),
    }
}

/// `the environment <path>` or `no virtual environment`.
fn env_words(env: Option<&Path>) -> String {
    match env {
        Some(e) => format!("the environment {}", e.display()),
        None => "no virtual environment".into(),
    }
}

fn init(env: Option<&Path>, threads: u32) -> Result<Option<PathBuf>, String> {
    let executable = match env {
        Some(env) => {
            check_env(env)?;
            ["python3", "python"]
                .iter()
                .map(|n| env.join("bin").join(n))
                .find(|p| p.exists())
                .unwrap_or_else(|| env.join("bin/python"))
        }
        None => PathBuf::from(PYTHON_EXECUTABLE),
    };
    if threads > 0 {
        for var in THREAD_VARS {
            // The worker has not started the interpreter or any thread pool that reads these.
            std::env::set_var(var, threads.to_string());
        }
    }
    if let Some(env) = env {
        std::env::set_var("VIRTUAL_ENV", env);
    }
    #[cfg(unix)]
    libpython_global()?;
    let exe = CString::new(executable.to_string_lossy().as_bytes())
        .map_err(|_| format!("the path {} holds a NUL byte", executable.display()))?;
    // SAFETY: the PyConfig is initialised by PyConfig_InitPythonConfig before any field is read or
    // set, its strings are set through PyConfig_SetBytesString (which copies `exe`), and it is
    // cleared once after use. Py_IsInitialized is callable before initialisation; the interpreter
    // is started at most once per process (under the STARTED lock), and the thread state it leaves
    // attached is released with PyEval_SaveThread so that pyo3 can attach from any thread.
    unsafe {
        if ffi::Py_IsInitialized() != 0 {
            return Ok(env.map(Path::to_path_buf));
        }
        let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::zeroed();
        ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let config = config.assume_init_mut();
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        // As `python -u`: what the model prints is written out at once, not held in a buffer
        // (the interpreter is never finalised, and a worker may die with its model).
        config.buffered_stdio = 0;
        let mut status = ffi::PyConfig_SetBytesString(config, &mut config.program_name, exe.as_ptr());
        if ffi::PyStatus_Exception(status) == 0 {
            status = ffi::PyConfig_SetBytesString(config, &mut config.executable, exe.as_ptr());
        }
        if ffi::PyStatus_Exception(status) == 0 {
            status = ffi::Py_InitializeFromConfig(config);
        }
        ffi::PyConfig_Clear(config);
        if ffi::PyStatus_Exception(status) != 0 {
            let msg = if status.err_msg.is_null() {
                "unknown error".to_string()
            } else {
                std::ffi::CStr::from_ptr(status.err_msg).to_string_lossy().into_owned()
            };
            return Err(format!("cannot start Python {PYTHON_VERSION} ({}): {msg}", executable.display()));
        }
        ffi::PyEval_SaveThread();
    }
    Ok(env.map(Path::to_path_buf))
}

/// Makes libpython's symbols global. The harness loads the plugin (and with it libpython) with
/// `RTLD_LOCAL`, but Python's extension modules (numpy's, torch's) are built expecting the
/// interpreter's symbols in the global scope, as they are in `python3`: without this, importing
/// numpy fails with `undefined symbol: PyObject_SelfIter`.
#[cfg(unix)]
fn libpython_global() -> Result<(), String> {
    let symbol = ffi::Py_IsInitialized as *const std::ffi::c_void;
    // SAFETY: dladdr only reads the address (of a function of the loaded libpython) and fills the
    // zeroed Dl_info; dli_fname, checked for null, points at the loader's own copy of the path.
    // dlopen with RTLD_NOLOAD loads nothing new: it raises the already loaded libpython to
    // RTLD_GLOBAL. The handle is kept (never closed): libpython stays loaded for the process.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(symbol, &mut info) == 0 || info.dli_fname.is_null() {
            return Err("cannot find the loaded libpython (dladdr failed)".into());
        }
        let handle = libc::dlopen(info.dli_fname, libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NOLOAD);
        if handle.is_null() {
            let path = std::ffi::CStr::from_ptr(info.dli_fname).to_string_lossy().into_owned();
            return Err(format!("cannot make {path}'s symbols visible to Python's extension modules (dlopen failed)"));
        }
    }
    Ok(())
}

/// Checks that `env` is a virtual environment of the plugin's Python (`major.minor` as
/// `pyvenv.cfg` says).
pub fn check_env(env: &Path) -> Result<(), String> {
    let cfg = env.join("pyvenv.cfg");
    let text = std::fs::read_to_string(&cfg).map_err(|e| {
        if env.is_dir() {
            format!(
                "python environment {} is not a virtual environment: cannot read {} ({e})",
                env.display(),
                cfg.display()
            )
        } else {
            format!("python environment {} does not exist", env.display())
        }
    })?;
    let version = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| matches!(k.trim(), "version" | "version_info"))
        .map(|(_, v)| v.trim().to_string())
        .ok_or_else(|| format!("{} names no Python version (`version = 3.X.Y`)", cfg.display()))?;
    let major_minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    if major_minor != PYTHON_VERSION {
        return Err(format!(
            "python environment {} is a virtual environment of Python {version}, but the Python plugin embeds Python \
             {PYTHON_VERSION} ({PYTHON_EXECUTABLE}); make the environment with that Python, or build the plugin \
             against the other with PYO3_PYTHON",
            env.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_of_another_python_are_refused_in_one_sentence() {
        let d = tempfile::tempdir().unwrap();
        let e = check_env(&d.path().join("nope")).unwrap_err();
        assert!(e.ends_with("does not exist"), "{e}");
        let e = check_env(d.path()).unwrap_err();
        assert!(e.contains("is not a virtual environment"), "{e}");
        std::fs::write(d.path().join("pyvenv.cfg"), "home = /usr/bin\nversion = 2.7.18\n").unwrap();
        let e = check_env(d.path()).unwrap_err();
        assert!(e.contains("of Python 2.7.18, but the Python plugin embeds Python"), "{e}");
        assert!(e.contains(PYTHON_VERSION), "{e}");
        std::fs::write(d.path().join("pyvenv.cfg"), format!("version_info = {PYTHON_VERSION}.1.final.0\n")).unwrap();
        check_env(d.path()).unwrap();
    }
}
