//! Finding and loading the ONNX Runtime C library.
//!
//! The plugin is built with ort's `load-dynamic` feature: nothing links against ONNX Runtime at
//! build time, and the library is opened (`dlopen`) the first time a model is loaded. Where it is
//! looked for, first match wins:
//!
//! 1. `options.ort_library` in the model YAML (relative to the YAML file);
//! 2. the `ORT_DYLIB_PATH` environment variable;
//! 3. the cache that `scripts/setup-onnxruntime.sh` fills:
//!    `${SHIFTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shiftbench}/onnxruntime-<version>/`.
//!
//! A source that is named but points nowhere is an error; the search does not fall through to the
//! next one, so a typo is not silently replaced by another library.
//!
//! ONNX Runtime (and ort) allow one environment per process: the first successful load creates it
//! and every later model shares it. Asking for a different library file afterwards is an error.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

/// The ONNX Runtime release this plugin is built and tested against (ort 2.0.0-rc.15, API 31).
pub const ORT_VERSION: &str = "1.31.1";

/// The file name of the C library in the cache directory.
#[cfg(target_os = "macos")]
pub const LIBRARY_FILE: &str = "libonnxruntime.1.31.1.dylib";
#[cfg(windows)]
pub const LIBRARY_FILE: &str = "onnxruntime.dll";
#[cfg(not(any(target_os = "macos", windows)))]
pub const LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";

/// The setup command named in error messages.
pub const SETUP_HINT: &str = "run scripts/setup-onnxruntime.sh (from the shiftbench repository)";

/// Where a library path came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibrarySource {
    /// `options.ort_library` in this YAML file.
    YamlOption(PathBuf),
    /// The `ORT_DYLIB_PATH` environment variable.
    EnvVar,
    /// The default cache location.
    DefaultCache,
}

impl fmt::Display for LibrarySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LibrarySource::YamlOption(yaml) => write!(f, "options.ort_library in {}", yaml.display()),
            LibrarySource::EnvVar => f.write_str("the ORT_DYLIB_PATH environment variable"),
            LibrarySource::DefaultCache => f.write_str("the default location"),
        }
    }
}

/// A library file to load and where its path came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryChoice {
    pub path: PathBuf,
    pub source: LibrarySource,
}

fn non_empty(v: Option<OsString>) -> Option<OsString> {
    v.filter(|s| !s.is_empty())
}

/// The cache directory as `scripts/setup-onnxruntime.sh` computes it, from the values of
/// `SHIFTBENCH_CACHE`, `XDG_CACHE_HOME` and `HOME` (empty counts as unset, as in the script).
pub fn cache_dir_from(
    shiftbench_cache: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let root = match (non_empty(shiftbench_cache), non_empty(xdg_cache_home), non_empty(home)) {
        (Some(c), _, _) => PathBuf::from(c),
        (None, Some(x), _) => PathBuf::from(x).join("shiftbench"),
        (None, None, Some(h)) => PathBuf::from(h).join(".cache").join("shiftbench"),
        (None, None, None) => return None,
    };
    Some(root.join(format!("onnxruntime-{ORT_VERSION}")))
}

/// The default library path for this process's environment, if `HOME` or a cache variable is set.
pub fn default_library_path() -> Option<PathBuf> {
    cache_dir_from(std::env::var_os("SHIFTBENCH_CACHE"), std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
        .map(|d| d.join(LIBRARY_FILE))
}

/// Picks the library file (see the module docs for the order) and checks that it exists.
///
/// `option` is `options.ort_library` (relative to `yaml`'s directory), `env` the value of
/// `ORT_DYLIB_PATH`, `default` the default cache path. Every error is one sentence that says
/// how to fix it.
pub fn choose_library(
    option: Option<&str>,
    yaml: &Path,
    env: Option<OsString>,
    default: Option<PathBuf>,
) -> Result<LibraryChoice, String> {
    let choice = if let Some(o) = option.filter(|o| !o.is_empty()) {
        let base = yaml.parent().unwrap_or(Path::new("."));
        LibraryChoice { path: base.join(o), source: LibrarySource::YamlOption(yaml.to_path_buf()) }
    } else if let Some(e) = non_empty(env) {
        let p = PathBuf::from(e);
        let p = if p.is_relative() { std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p) } else { p };
        LibraryChoice { path: p, source: LibrarySource::EnvVar }
    } else if let Some(d) = default {
        LibraryChoice { path: d, source: LibrarySource::DefaultCache }
    } else {
        return Err(format!(
            "ONNX Runtime {ORT_VERSION} was not found: neither HOME nor SHIFTBENCH_CACHE is set, so its default location is unknown; {SETUP_HINT} with SHIFTBENCH_CACHE set, or set ORT_DYLIB_PATH to a {LIBRARY_FILE}"
        ));
    };
    if choice.path.is_file() {
        return Ok(choice);
    }
    let p = choice.path.display();
    Err(match &choice.source {
        LibrarySource::DefaultCache => format!(
            "ONNX Runtime {ORT_VERSION} is not installed (no {p}); {SETUP_HINT} to install it there, or set ORT_DYLIB_PATH to an existing {LIBRARY_FILE}"
        ),
        LibrarySource::EnvVar => format!(
            "ONNX Runtime library {p} (from ORT_DYLIB_PATH) does not exist; {SETUP_HINT} and unset ORT_DYLIB_PATH, or set it to an existing {LIBRARY_FILE}"
        ),
        LibrarySource::YamlOption(yaml) => format!(
            "ONNX Runtime library {p} (options.ort_library in {}) does not exist; {SETUP_HINT} and remove options.ort_library, or point it at an existing {LIBRARY_FILE}",
            yaml.display()
        ),
    })
}

/// The process-wide runtime: which library was loaded, and the one environment.
struct Runtime {
    library: PathBuf,
    env: Environment,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// The library ort has loaded, set as soon as `ort::init_from` succeeds (ort keeps it loaded
/// even if creating the environment fails afterwards).
static LOADED: OnceLock<PathBuf> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

fn already_loaded(loaded: &Path, choice: &LibraryChoice, wanted: &Path) -> Result<(), String> {
    if loaded == wanted {
        Ok(())
    } else {
        Err(format!(
            "ONNX Runtime is already loaded in this process from {}, so {} (from {}) cannot be loaded too; use the same library for every ONNX model in a run",
            loaded.display(),
            choice.path.display(),
            choice.source
        ))
    }
}

/// Loads the library (once per process) and returns the shared environment.
pub fn environment(choice: &LibraryChoice) -> Result<Environment, String> {
    let wanted = std::fs::canonicalize(&choice.path).map_err(|e| {
        format!(
            "cannot read ONNX Runtime library {} (from {}): {e}; {SETUP_HINT}",
            choice.path.display(),
            choice.source
        )
    })?;
    if let Some(rt) = RUNTIME.get() {
        already_loaded(&rt.library, choice, &wanted)?;
        return Ok(rt.env.clone());
    }
    let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = RUNTIME.get() {
        already_loaded(&rt.library, choice, &wanted)?;
        return Ok(rt.env.clone());
    }
    if let Some(loaded) = LOADED.get() {
        already_loaded(loaded, choice, &wanted)?;
    }
    // ONNX Runtime 1.31's Linux build records telemetry events in a SQLite database under
    // ~/.cache/Microsoft/DeveloperTools (and would upload them), whatever `with_telemetry(false)`
    // below says; its own switch for that is this variable. A value the user set is kept.
    // Set once, before the library is loaded, while the plugin is being opened.
    if std::env::var_os("ORT_DISABLE_TELEMETRY").is_none() {
        std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
    }
    let builder = ort::init_from(&wanted).map_err(|e| {
        format!(
            "{} (from {}) is not a usable ONNX Runtime {ORT_VERSION} library ({e}); {SETUP_HINT} to install the right one",
            choice.path.display(),
            choice.source
        )
    })?;
    let _ = LOADED.set(wanted.clone());
    let env =
        builder.with_name("shiftbench").with_telemetry(false).build().map_err(|e| {
            format!("ONNX Runtime loaded from {} could not create its environment: {e}", wanted.display())
        })?;
    let _ = RUNTIME.set(Runtime { library: wanted, env: env.clone() });
    Ok(env)
}

/// The library this process loaded, if any.
pub fn loaded_library() -> Option<&'static Path> {
    RUNTIME.get().map(|r| r.library.as_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn cache_dir_follows_the_setup_script() {
        let v = format!("onnxruntime-{ORT_VERSION}");
        assert_eq!(cache_dir_from(os("/c"), os("/x"), os("/h")), Some(PathBuf::from("/c").join(&v)));
        assert_eq!(cache_dir_from(os(""), os("/x"), os("/h")), Some(PathBuf::from("/x/shiftbench").join(&v)));
        assert_eq!(cache_dir_from(None, None, os("/h")), Some(PathBuf::from("/h/.cache/shiftbench").join(&v)));
        assert_eq!(cache_dir_from(None, os(""), os("")), None);
    }

    #[test]
    fn search_order_and_messages() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib.so");
        std::fs::write(&lib, b"x").unwrap();
        let yaml = dir.path().join("m.yaml");
        let missing = dir.path().join("nope.so");

        // The YAML option wins, relative to the YAML file.
        let c = choose_library(Some("lib.so"), &yaml, Some(missing.clone().into()), None).unwrap();
        assert_eq!(c.path, lib);
        assert!(matches!(c.source, LibrarySource::YamlOption(_)));
        // Then the environment variable, then the default.
        let c = choose_library(None, &yaml, Some(lib.clone().into()), Some(missing.clone())).unwrap();
        assert_eq!((c.path, c.source), (lib.clone(), LibrarySource::EnvVar));
        let c = choose_library(None, &yaml, os(""), Some(lib.clone())).unwrap();
        assert_eq!((c.path, c.source), (lib.clone(), LibrarySource::DefaultCache));

        // A named source that does not exist is an error, not a fall-through.
        let e = choose_library(Some("nope.so"), &yaml, Some(lib.clone().into()), Some(lib.clone())).unwrap_err();
        assert!(
            e.contains("nope.so") && e.contains("options.ort_library") && e.contains("setup-onnxruntime.sh"),
            "{e}"
        );
        let e = choose_library(None, &yaml, Some(missing.clone().into()), Some(lib.clone())).unwrap_err();
        assert!(e.contains("ORT_DYLIB_PATH") && e.contains("setup-onnxruntime.sh"), "{e}");
        let e = choose_library(None, &yaml, None, Some(missing.clone())).unwrap_err();
        assert!(e.starts_with(&format!("ONNX Runtime {ORT_VERSION} is not installed")), "{e}");
        assert!(e.contains("setup-onnxruntime.sh"), "{e}");
        let e = choose_library(None, &yaml, None, None).unwrap_err();
        assert!(e.contains("setup-onnxruntime.sh"), "{e}");
    }
}
