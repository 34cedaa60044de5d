//! Compiles this fixture as if it were package `shiftbench-plugin` 0.1.2, the package that
//! `#[derive(StableAbi)]` records for its root module (see the crate docs).

fn main() {
    println!("cargo:rustc-env=CARGO_PKG_NAME=shiftbench-plugin");
    println!("cargo:rustc-env=CARGO_PKG_VERSION=0.1.2");
    println!("cargo:rerun-if-changed=build.rs");
}
