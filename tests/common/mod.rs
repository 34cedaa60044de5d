//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The workspace root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `../shared/data` beside the checkout, or None (with a message saying the test is skipped).
pub fn shared_data(test: &str) -> Option<PathBuf> {
    let d = repo().parent().unwrap().join("shared").join("data");
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("SKIPPED {test}: {} is absent (real test data lives beside the checkout)", d.display());
        None
    }
}

/// A plugin library built by `cargo build --workspace` (the README's test command builds them first).
pub fn plugin_lib(lib: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap(); // target/<profile>/deps -> target/<profile>
    let p = dir.join(format!("{}{lib}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    assert!(p.is_file(), "{} is missing: run `cargo build --workspace` before `cargo test`", p.display());
    p
}

/// The `shiftbench` binary built for these tests.
pub fn shiftbench_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_shiftbench"))
}

/// A plugin library if it was built (the TorchScript plugin is built only by the full test
/// command), else None with a message saying the test is skipped.
pub fn plugin_lib_if_built(lib: &str, test: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join(format!("{}{lib}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("SKIPPED {test}: {} was not built (./scripts/test.sh builds it)", p.display());
        None
    }
}

/// Whether `python3` can import the given modules; in CI (CI=true) their absence is a failure.
pub fn python_has(modules: &str, test: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(std::env::var("CI").is_err(), "{test}: python3 cannot import {modules} (pip install -r bench/requirements.txt)");
        eprintln!("SKIPPED {test}: python3 cannot import {modules} (pip install -r bench/requirements.txt)");
    }
    ok
}
