//! Links the plugin against the shared libpython of the Python pyo3 found (`python3` on PATH, or
//! `PYO3_PYTHON`) and records that library's folder as the run-time search path of everything
//! this package links (the plugin library, its unit tests), so that the harness can load the
//! plugin without `LD_LIBRARY_PATH`. Also passes the Python's version and executable on to the
//! code: `interp` starts the interpreter as that executable and names the version in messages.

fn main() {
    let config = pyo3_build_config::get();
    let version = config.version();
    if config.shared() {
        if let Some(dir) = config.lib_dir() {
            #[cfg(not(target_os = "windows"))]
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    } else {
        println!(
            "cargo:warning=the Python pyo3 found has no shared libpython (built without --enable-shared); \
             the plugin will not load. Set PYO3_PYTHON to a Python built with it."
        );
    }
    println!("cargo:rustc-env=SHIFTBENCH_PYTHON_VERSION={}.{}", version.major, version.minor);
    let executable = config.executable().map(str::to_string).unwrap_or_else(|| {
        let dir = config.lib_dir().unwrap_or("/usr/lib");
        format!("{dir}/../bin/python{}.{}", version.major, version.minor)
    });
    println!("cargo:rustc-env=SHIFTBENCH_PYTHON_EXECUTABLE={executable}");
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
