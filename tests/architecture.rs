//! ARCHITECTURE.md's claims that can be checked mechanically, checked: the layers (no module
//! imports from a layer above it), no import circle among the core's files (within a folder or
//! across), nothing below the CLI prints or draws, and no file over 600 lines before its tests.
//! Imports are read from the source: every `crate::...` and `super::...` path in code (not in
//! comments), `use` lists expanded, each resolved to the file that defines it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without comments and its `#[cfg(test)]` module (everything from the first
/// `#[cfg(test)]` line on).
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") || t.starts_with("#[cfg(all(test") {
            break;
        }
        // An indented `use super::*;` is an inline module (`mod linux { .. }`) reaching its own
        // file, not the folder above.
        if line.starts_with(char::is_whitespace) && t.starts_with("use super::") {
            continue;
        }
        let l = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The module path of a file under `src` (`run/pipeline/mod.rs` -> `["run", "pipeline"]`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

/// The file defining the longest prefix of module path `path` that is a file under `src`.
fn file_of(src: &Path, path: &[String]) -> Option<PathBuf> {
    for n in (1..=path.len()).rev() {
        let base = src.join(path[..n].join("/"));
        for f in [base.with_extension("rs"), base.join("mod.rs")] {
            if f.is_file() {
                return Some(f);
            }
        }
    }
    None
}

/// Every path a file's code names through `crate::` or `super::`, as module paths from the crate
/// root, `use` lists expanded (`use crate::a::{b, c::d}` -> `a::b`, `a::c::d`).
fn imports(src: &Path, file: &Path, text: &str) -> Vec<Vec<String>> {
    let here = module_of(src, file);
    let mut out = Vec::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let (start, base): (usize, Vec<String>) = if rest.starts_with("crate::") {
            (i + 7, Vec::new())
        } else if rest.starts_with("super::") {
            // `super` of a file `a/b.rs` (module a::b) is `a`; of `a/b/mod.rs` (module a::b) too is `a`.
            let mut b = here.clone();
            b.pop();
            (i + 7, b)
        } else {
            i += 1;
            continue;
        };
        // Not part of a longer identifier (`shiftbench::crate::` does not occur; `xcrate::` neither).
        if i > 0 && (bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_') {
            i += 1;
            continue;
        }
        // Read the path, with one level of `{...}` lists (nested lists expanded recursively).
        let (paths, end) = read_path(&bytes, start);
        for p in paths {
            let mut full = base.clone();
            full.extend(p);
            out.push(full);
        }
        i = end.max(i + 1);
    }
    // `use` of a path relative to this module (`use plan::PassPlan;` in `pipeline/mod.rs`, `use
    // self::x::Y`): a name of this module's own or of a child's. External crates resolve to no
    // file below this module, so they drop out.
    for line in text.lines() {
        let l = line.trim_start();
        let l = l.strip_prefix("pub(crate) ").or_else(|| l.strip_prefix("pub ")).unwrap_or(l);
        let Some(rest) = l.strip_prefix("use ") else { continue };
        let rest = rest.strip_prefix("self::").unwrap_or(rest);
        if rest.starts_with("crate::") || rest.starts_with("super::") || rest.starts_with("std::") {
            continue;
        }
        let chars: Vec<char> = rest.chars().collect();
        for p in read_path(&chars, 0).0 {
            let mut full = here.clone();
            full.extend(p);
            out.push(full);
        }
    }
    out
}

/// Reads a path at `at` (`a::b::{c, d::e}` or `a::b::C`), returning each expanded path and where
/// it ended.
fn read_path(s: &[char], mut at: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix: Vec<String> = Vec::new();
    let mut seg = String::new();
    loop {
        let c = s.get(at).copied().unwrap_or(';');
        if c.is_alphanumeric() || c == '_' {
            seg.push(c);
            at += 1;
        } else if c == ':' && s.get(at + 1) == Some(&':') {
            prefix.push(std::mem::take(&mut seg));
            at += 2;
        } else if c == '{' {
            let mut all = Vec::new();
            at += 1;
            loop {
                while s.get(at).is_some_and(|c| c.is_whitespace() || *c == ',') {
                    at += 1;
                }
                if s.get(at).is_none_or(|c| *c == '}') {
                    at += 1;
                    break;
                }
                let (inner, end) = read_path(s, at);
                for p in inner {
                    let mut full = prefix.clone();
                    full.extend(p);
                    all.push(full);
                }
                at = end;
                // Skip `as name` and anything up to the next separator.
                while s.get(at).is_some_and(|c| *c != ',' && *c != '}') {
                    at += 1;
                }
            }
            return (all, at);
        } else {
            if !seg.is_empty() {
                prefix.push(seg);
            }
            return (vec![prefix], at);
        }
    }
}

/// The import graph of the crate under `src`: file -> files it imports (itself left out).
fn graph(src: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut g = BTreeMap::new();
    for f in rust_files(src) {
        let text = code(&std::fs::read_to_string(&f).unwrap());
        let mut to = BTreeSet::new();
        for p in imports(src, &f, &text) {
            if let Some(t) = file_of(src, &p).filter(|t| *t != f) {
                to.insert(t);
            }
        }
        g.insert(f, to);
    }
    g
}

/// A circle in `g`, if there is one (as the files on it).
fn find_circle(g: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    // 0 unvisited, 1 on the stack, 2 done.
    fn visit(
        n: &PathBuf,
        g: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        state: &mut BTreeMap<PathBuf, u8>,
        stack: &mut Vec<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|x| x == m).unwrap();
                    return Some(stack[at..].to_vec());
                }
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.get(n).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, g, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

fn src() -> PathBuf {
    common::repo().join("harness/src")
}

#[test]
fn the_reader_of_imports_finds_them() {
    let text = "use crate::run::{pipeline::{Job, JobOutcome}, options::EvalOptions as E};\nlet x = crate::util::files::write_atomic(p);\nuse super::shm::SharedIn;\npub use protocol::CardWire;";
    let s = src();
    let got = imports(&s, &s.join("host/worker/serve.rs"), text);
    let names: Vec<String> = got.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        names,
        [
            "run::pipeline::Job",
            "run::pipeline::JobOutcome",
            "run::options::EvalOptions",
            "util::files::write_atomic",
            "host::worker::shm::SharedIn",
            "host::worker::serve::protocol::CardWire"
        ]
    );
    assert_eq!(file_of(&s, &got[0]), Some(s.join("run/pipeline/mod.rs")));
    assert_eq!(file_of(&s, &got[2]), Some(s.join("run/options.rs")));
    // A circle is found, and none where there is none.
    let p = |x: &str| PathBuf::from(x);
    let mut g: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    g.insert(p("a"), [p("b")].into());
    g.insert(p("b"), [p("c")].into());
    g.insert(p("c"), BTreeSet::new());
    assert_eq!(find_circle(&g), None);
    g.insert(p("c"), [p("a")].into());
    assert_eq!(find_circle(&g), Some(vec![p("a"), p("b"), p("c")]));
}

#[test]
fn no_import_circle_among_the_cores_files() {
    let g = graph(&src());
    assert!(g.len() > 50, "read {} files", g.len());
    if let Some(c) = find_circle(&g) {
        panic!("an import circle: {}", c.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" -> "));
    }
}

#[test]
fn no_file_imports_from_the_folder_above_it() {
    // A folder's `mod.rs` declares its files and may use them; a file never reaches back up into
    // its folder's (or an enclosing folder's) `mod.rs`: what two files share lives in a file of
    // its own, below both.
    let s = src();
    let mut bad = Vec::new();
    for (f, to) in graph(&s) {
        for t in to {
            let up = t.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs")
                && t.parent().is_some_and(|d| f.starts_with(d) && f != t);
            if up {
                bad.push(format!(
                    "{} -> {}",
                    f.strip_prefix(&s).unwrap().display(),
                    t.strip_prefix(&s).unwrap().display()
                ));
            }
        }
    }
    assert!(bad.is_empty(), "files importing from the folder above them: {bad:#?}");
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let s = src();
    // Layer of each top-level module, bottom up; data, imaging (a crate of its own) and host share
    // a floor and do not know each other.
    let layer = |m: &str| match m {
        "util" => Some(0),
        "data" | "host" => Some(1),
        "results" => Some(2),
        "run" => Some(3),
        "report" => Some(4),
        _ => None,
    };
    let g = graph(&s);
    let top = |f: &Path| {
        f.strip_prefix(&s).unwrap().iter().next().unwrap().to_string_lossy().trim_end_matches(".rs").to_string()
    };
    let mut bad = Vec::new();
    for (f, to) in &g {
        let Some(lf) = layer(&top(f)) else { continue };
        for t in to {
            let tt = top(t);
            let Some(lt) = layer(&tt) else { continue };
            if lt > lf || (lt == lf && tt != top(f)) {
                bad.push(format!(
                    "{} -> {}",
                    f.strip_prefix(&s).unwrap().display(),
                    t.strip_prefix(&s).unwrap().display()
                ));
            }
        }
    }
    assert!(bad.is_empty(), "imports from a layer above (or across data/host): {bad:#?}");
}

#[test]
fn nothing_below_the_cli_prints_or_draws() {
    let s = src();
    let mut bad = Vec::new();
    for dir in ["run", "results", "data", "host", "util"] {
        for f in rust_files(&s.join(dir)) {
            let text = code(&std::fs::read_to_string(&f).unwrap());
            for (n, l) in text.lines().enumerate() {
                if ["eprintln!", "println!", "print!(", "eprint!(", "ProgressBar", "indicatif"]
                    .iter()
                    .any(|w| l.contains(w))
                {
                    bad.push(format!("{}:{}: {}", f.display(), n + 1, l.trim()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "printing below the CLI (tell a Reporter instead): {bad:#?}");
}

#[test]
fn no_file_over_600_lines_before_its_tests() {
    let repo = common::repo();
    let mut bad = Vec::new();
    for dir in ["harness/src", "harness/imaging/src", "plugins"] {
        for f in rust_files(&repo.join(dir)) {
            if f.components().any(|c| c.as_os_str() == "target") {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            let n =
                text.lines().take_while(|l| !l.starts_with("#[cfg(test)]") && !l.starts_with("#[cfg(all(test")).count();
            if n > 600 {
                bad.push(format!("{} ({n} lines)", f.strip_prefix(&repo).unwrap().display()));
            }
        }
    }
    assert!(bad.is_empty(), "files over 600 lines before their tests: {bad:?}");
}
