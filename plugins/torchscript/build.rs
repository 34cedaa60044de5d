//! Lets the plugin library and its tests find libtorch at run time without LD_LIBRARY_PATH:
//! torch-sys links against the libtorch it found (LIBTORCH, see `.cargo/config.toml`) and tells
//! its direct dependents the library folder (`DEP_TCH_LIBTORCH_LIB`); this script records that
//! folder as a run-time search path of everything this crate links (the cdylib, tests).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Some(lib) = env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from) else {
        println!("cargo:warning=torch-sys did not report its libtorch folder: no run-time path set");
        return;
    };
    // The folder as torch-sys saw it (through the `.libtorch` link, so re-running
    // scripts/setup-libtorch.sh with another cache keeps working), then its resolved location
    // (so a build keeps working if the link is removed).
    let mut dirs = vec![lib.clone()];
    if let Ok(real) = lib.canonicalize() {
        if real != lib {
            dirs.push(real);
        }
    }
    for dir in &dirs {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }

    if env::var_os("CARGO_FEATURE_CUDA").is_some() {
        if lib.join("libtorch_cuda.so").exists() {
            // Nothing in the plugin calls into libtorch_cuda directly, so the linker's --as-needed
            // would drop it, and CUDA would then be unavailable at run time.
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        } else {
            println!(
                "cargo:warning=feature `cuda`: {} has no libtorch_cuda.so, so the plugin will run on the CPU",
                lib.display()
            );
        }
    }
}
