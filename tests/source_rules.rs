//! Rules the source keeps, checked over every `.rs` file of `harness/` and `plugins/`
//! (ARCHITECTURE.md, "Rules the code keeps"):
//!
//! - every `unsafe` block and `unsafe impl` has a `// SAFETY:` comment on its line or within the
//!   [`SAFETY_REACH`] lines above it, saying why it is sound; every `unsafe fn` has a `# Safety`
//!   section in its doc comment, saying what its callers must guarantee;
//! - no file is longer than [`MAX_LINES`] lines before its `#[cfg(test)]` module.

use std::path::{Path, PathBuf};

/// How far above an `unsafe` block its `// SAFETY:` comment may start (a comment of a few lines,
/// then the start of the statement the block is in).
const SAFETY_REACH: usize = 6;

/// The longest a file may be before its test module.
const MAX_LINES: usize = 600;

/// Every `.rs` file under `dir`, build outputs left out.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let mut files = Vec::new();
    for dir in ["harness", "plugins"] {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    assert!(files.len() > 50, "found only {} source files under {}", files.len(), root.display());
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f.strip_prefix(&root).unwrap().display().to_string(), text)
        })
        .collect()
}

/// What an `unsafe` on a line of code starts, if anything.
#[derive(Debug, PartialEq)]
enum Unsafe {
    /// An `unsafe { ... }` block or an `unsafe impl`: needs a `// SAFETY:` comment.
    Block,
    /// An `unsafe fn` (also `unsafe extern "C" fn`) defined here: needs a `# Safety` doc section.
    Fn,
}

/// The `unsafe`s of one line (comments and function-pointer types left out).
fn unsafes(line: &str) -> Vec<Unsafe> {
    let code = line.split("//").next().unwrap_or_default();
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("unsafe") {
        let before = rest[..at].chars().next_back();
        let after = rest[at + "unsafe".len()..].trim_start();
        rest = &rest[at + "unsafe".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '\'' || c == '-') {
            continue;
        }
        if after.starts_with('{') || after.starts_with("impl") {
            found.push(Unsafe::Block);
            continue;
        }
        // `unsafe fn name`, `unsafe extern "ABI" fn name`; not the type `unsafe extern "ABI" fn(`.
        let after = match after.strip_prefix("extern") {
            Some(a) => a.trim_start().split_once('"').and_then(|(_, a)| a.split_once('"')).map_or(a, |(_, a)| a),
            None => after,
        };
        if let Some(name) = after.trim_start().strip_prefix("fn") {
            if name.starts_with(char::is_whitespace)
                && name.trim_start().starts_with(|c: char| c.is_alphabetic() || c == '_')
            {
                found.push(Unsafe::Fn);
            }
        }
    }
    found
}

/// The `unsafe`s of `text` that do not say why they are sound: (line number, what is missing).
fn unexplained(text: &str) -> Vec<(usize, &'static str)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut missing = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for u in unsafes(line) {
            let ok = match u {
                Unsafe::Block => lines[i.saturating_sub(SAFETY_REACH)..=i].iter().any(|l| l.contains("SAFETY:")),
                // The doc comment and attributes directly above the function.
                Unsafe::Fn => lines[..i]
                    .iter()
                    .rev()
                    .map(|l| l.trim_start())
                    .take_while(|l| l.starts_with("///") || l.starts_with("#["))
                    .any(|l| l.trim_start_matches('/').trim() == "# Safety"),
            };
            if !ok {
                missing
                    .push((i + 1, if u == Unsafe::Fn { "a `# Safety` doc section" } else { "a `// SAFETY:` comment" }));
            }
        }
    }
    missing
}

/// The check itself finds what it looks for, and only that.
#[test]
fn the_unsafe_check_tells_explained_from_unexplained() {
    let bad = "fn f() {\n    let x = unsafe { g() };\n}\n\nunsafe fn h() {}\n/// Docs.\n#[inline]\nunsafe extern \"C\" fn k() {}\nunsafe impl Send for T {}\n";
    assert_eq!(
        unexplained(bad),
        vec![
            (2, "a `// SAFETY:` comment"),
            (5, "a `# Safety` doc section"),
            (8, "a `# Safety` doc section"),
            (9, "a `// SAFETY:` comment")
        ]
    );
    let good = "fn f() {\n    // SAFETY: g has no requirements.\n    let x = unsafe { g() };\n}\n\n/// Does h.\n///\n/// # Safety\n/// None.\n#[cold]\nunsafe fn h() {}\n";
    assert_eq!(unexplained(good), vec![]);
    // Not an `unsafe` of the code: comments, a function-pointer type, a word containing it.
    let other = "// unsafe { in a comment }\nlet f: unsafe extern \"C\" fn(i32) = g; // unsafe {\nlet s = \"style-src 'unsafe-inline'\";\nlet not_unsafe {\n";
    assert_eq!(unexplained(other), vec![]);
    // A SAFETY comment too far above does not count.
    let far = format!("// SAFETY: far.\n{}unsafe {{ g() }}\n", "x;\n".repeat(SAFETY_REACH));
    assert_eq!(unexplained(&far), vec![(SAFETY_REACH + 2, "a `// SAFETY:` comment")]);
}

#[test]
fn every_unsafe_says_why_it_is_sound() {
    let mut problems = Vec::new();
    let mut seen = 0;
    for (file, text) in sources() {
        seen += text.lines().map(unsafes).map(|u| u.len()).sum::<usize>();
        for (line, what) in unexplained(&text) {
            problems.push(format!("{file}:{line}: unsafe without {what}"));
        }
    }
    assert!(seen >= 10, "found only {seen} unsafes: is the check looking at the code?");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Lines of `text` before its test module (`#[cfg(test)]` or `#[cfg(all(test, ...))]` at the
/// start of a line), or all of them.
fn lines_before_tests(text: &str) -> usize {
    text.lines().take_while(|l| !l.starts_with("#[cfg(test") && !l.starts_with("#[cfg(all(test")).count()
}

#[test]
fn no_file_is_over_600_lines_before_its_tests() {
    assert_eq!(lines_before_tests("a\nb\n#[cfg(test)]\nmod tests {}\n"), 2);
    assert_eq!(lines_before_tests("a\nb\n#[cfg(all(test, unix))]\nmod tests {}\n"), 2);
    assert_eq!(lines_before_tests("a\n    #[cfg(test)]\nb\n"), 3);
    let long: Vec<String> = sources()
        .into_iter()
        .map(|(file, text)| (file, lines_before_tests(&text)))
        .filter(|(_, n)| *n > MAX_LINES)
        .map(|(file, n)| {
            format!("{file}: {n} lines before its tests (at most {MAX_LINES}: split it by responsibility)")
        })
        .collect();
    assert!(long.is_empty(), "{}", long.join("\n"));
}
