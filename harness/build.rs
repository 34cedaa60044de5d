//! Records the git revision shiftbench is built from (`SHIFTBENCH_GIT_REV`), so every result
//! names it. Set `SHIFTBENCH_GIT_REV` in the build environment to override (builds from a
//! tarball); without git, or outside a repository, it is simply absent.
//!
//! The script reruns only when HEAD moves (a commit, a checkout), not on every source change.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SHIFTBENCH_GIT_REV");
    if let Ok(v) = std::env::var("SHIFTBENCH_GIT_REV") {
        println!("cargo:rustc-env=SHIFTBENCH_GIT_REV={v}");
        return;
    }
    let Some(rev) = git(&["rev-parse", "HEAD"]) else {
        println!("cargo:rustc-env=SHIFTBENCH_GIT_REV=");
        return;
    };
    println!("cargo:rustc-env=SHIFTBENCH_GIT_REV={rev}");
    // Rerun when HEAD or the branch it points to moves. Only existing files are watched: cargo
    // treats a missing one as always changed.
    let mut watch: Vec<String> = vec!["HEAD".into(), "packed-refs".into()];
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(r);
    }
    for w in watch {
        if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", &w]) {
            if PathBuf::from(&p).is_file() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
}
