//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The workspace root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Says that the calling test is skipped, and why: `SKIPPED <test> (<test function>): <why>` on
/// stderr, written directly so that it shows in `cargo test`'s output (the test harness keeps what
/// `eprintln!` prints to itself unless the test fails).
pub fn skipped(test: &str, why: &str) {
    let thread = std::thread::current();
    let name = match thread.name() {
        Some(f) if f != test && f != "main" => format!("{test} ({f})"),
        _ => test.to_string(),
    };
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("SKIPPED {name}: {why}\n").as_bytes());
}

/// `../shared/data` beside the checkout, or None (with a message saying the test is skipped).
pub fn shared_data(test: &str) -> Option<PathBuf> {
    let d = repo().parent().unwrap().join("shared").join("data");
    if d.is_dir() {
        Some(d)
    } else {
        skipped(test, &format!("{} is absent (real test data lives beside the checkout)", d.display()));
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

/// The example plugin's ten classes.
pub const EXAMPLE_WNIDS: [&str; 10] = [
    "n07747607",
    "n07753592",
    "n07745940",
    "n07720875",
    "n09472597",
    "n04254680",
    "n03938244",
    "n07718472",
    "n07749582",
    "n02782093",
];

/// Writes a small synthetic suite under `dir`: `per_class` PNGs (48x40, a coloured square on a
/// plain background) for each of the example plugin's classes, in ImageFolder layout, and
/// returns the suite YAML.
pub fn synthetic_suite(dir: &std::path::Path, name: &str, per_class: usize) -> PathBuf {
    for (c, wnid) in EXAMPLE_WNIDS.iter().enumerate() {
        let d = dir.join(name).join(wnid);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..per_class {
            let img = image::RgbImage::from_fn(48, 40, |x, y| {
                let inside = (12..36).contains(&x) && (8..32).contains(&y);
                if inside {
                    image::Rgb([(c * 25) as u8, (i * 40 % 256) as u8, 255 - (c * 20) as u8])
                } else {
                    image::Rgb([200, 200, 200])
                }
            });
            img.save(d.join(format!("{i:03}.png"))).unwrap();
        }
    }
    let y = dir.join(format!("{name}.yaml"));
    std::fs::write(&y, format!("name: {name}\nsource:\n  image_folder: {name}\n")).unwrap();
    y
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
        skipped(test, &format!("{} was not built (./scripts/test.sh builds it)", p.display()));
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
        assert!(
            std::env::var("CI").is_err(),
            "{test}: python3 cannot import {modules} (python3 -m pip install -r tests/requirements.txt)"
        );
        skipped(test, &format!("python3 cannot import {modules} (python3 -m pip install -r tests/requirements.txt)"));
    }
    ok
}

/// The contents of every fenced code block of `markdown` opened with "```" + `lang`, in order,
/// each with its lines joined by "\n" and a final newline (as the file it shows would be).
pub fn fenced_blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    // Inside a block: Some((whether it is a `lang` block, its text so far)).
    let mut open: Option<(bool, String)> = None;
    for line in markdown.lines() {
        match open.as_mut() {
            Some((wanted, text)) if line.trim_end() == "```" => {
                if *wanted {
                    blocks.push(std::mem::take(text));
                }
                open = None;
            }
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {
                if let Some(info) = line.trim_end().strip_prefix("```") {
                    open = Some((info.trim() == lang, String::new()));
                }
            }
        }
    }
    blocks
}

/// Writes a copy of `log` in which the first `to_wrong` samples with a right top-1 become wrong
/// and the first `to_right` with a wrong top-1 (but the true class in the top 5) become right,
/// leaving every top-5 as it was, as `<dir>/edited.jsonl`, and scores
/// it into `<dir>/result.json` with `shiftbench score --log ... --json ...`.
pub fn flipped_run(log: &std::path::Path, dir: &std::path::Path, to_wrong: usize, to_right: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let text = std::fs::read_to_string(log).unwrap();
    let mut lines = text.lines();
    let mut out = vec![lines.next().unwrap().to_string()];
    let (mut w, mut r) = (0, 0);
    for l in lines {
        let mut rec: shiftbench::results::predlog::Record = serde_json::from_str(l).unwrap();
        let right = rec.top.first() == Some(&rec.wnid);
        let in_top5 = rec.top.iter().take(5).any(|t| t == &rec.wnid);
        if right && w < to_wrong && rec.top.len() >= 2 {
            // The true class drops to second place: top-1 wrong, top-5 unchanged.
            rec.top.swap(0, 1);
            w += 1;
        } else if !right && in_top5 && r < to_right {
            // The true class rises to first place: top-1 right, top-5 unchanged.
            let at = rec.top.iter().position(|t| t == &rec.wnid).unwrap();
            let t = rec.top.remove(at);
            rec.top.insert(0, t);
            r += 1;
        }
        out.push(serde_json::to_string(&rec).unwrap());
    }
    assert_eq!((w, r), (to_wrong, to_right), "not enough samples to flip");
    let edited = dir.join("edited.jsonl");
    std::fs::write(&edited, out.join("\n") + "\n").unwrap();
    let o = std::process::Command::new(shiftbench_bin())
        .args(["score", "--log", edited.to_str().unwrap(), "--json", dir.join("result.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir.to_path_buf()
}

/// Generates the demo suites under `dir/suites` and runs the example plugin on the LAIONet-like
/// one into `dir/<name>` (panicking with its stderr if the run fails); returns that folder.
pub fn example_run_on_demo(dir: &std::path::Path, name: &str) -> PathBuf {
    let suites = shiftbench::demo::generate(&dir.join("suites")).unwrap();
    let out = dir.join(name);
    let o = std::process::Command::new(shiftbench_bin())
        .arg("run")
        .arg("--suite")
        .arg(&suites.laionet)
        .arg("--model")
        .arg(plugin_lib("shiftbench_example"))
        .arg("--out")
        .arg(&out)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// The Python test environment (`scripts/setup-python-env.sh`: torch, sentence-transformers and
/// its models), or None with a SKIPPED line.
pub fn pyenv(test: &str) -> Option<PathBuf> {
    let env = repo().join(".pyenv-test");
    if env.join("venv/bin/python").is_file() {
        Some(env)
    } else {
        skipped(test, &format!("{} is absent (scripts/setup-python-env.sh makes it)", env.display()));
        None
    }
}

/// `${SHIFTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shiftbench}`, as the setup scripts compute it.
pub fn cache_root() -> PathBuf {
    match std::env::var_os("SHIFTBENCH_CACHE").filter(|v| !v.is_empty()) {
        Some(c) => PathBuf::from(c),
        None => match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            Some(x) => PathBuf::from(x).join("shiftbench"),
            None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/shiftbench"),
        },
    }
}

/// The export (scripts/export-text-encoder.py) of the sentence-transformers model `name` of the
/// test environment `env`, made once per content of the source folder and of the export script
/// and cached under the shiftbench cache (`text-encoders/<name>-<key>`), so that every test (and
/// a CI run) exports it once. The script moves a finished export into place in one step; when two
/// tests export at once, the one that loses the race uses the other's.
pub fn exported_text_encoder(env: &std::path::Path, name: &str) -> PathBuf {
    use shiftbench::util::digest::{sha256_file, sha256_hex};
    let src = env.join("models").join(name);
    let script = repo().join("scripts/export-text-encoder.py");
    let mut files: Vec<PathBuf> = walk(&src);
    files.sort();
    let mut key = String::new();
    for f in files.iter().chain([&script]) {
        let rel = f.strip_prefix(&src).unwrap_or(f);
        key.push_str(&format!("{}\t{}\n", rel.display(), sha256_file(f).unwrap().1));
    }
    let dest = cache_root().join("text-encoders").join(format!("{name}-{}", &sha256_hex(key.as_bytes())[..16]));
    if dest.join("encoder.yaml").is_file() {
        return dest;
    }
    let o = std::process::Command::new(env.join("venv/bin/python")).arg(&script).arg(&src).arg(&dest).output().unwrap();
    if !o.status.success() && dest.join("encoder.yaml").is_file() {
        return dest;
    }
    assert!(o.status.success(), "export failed: {}", String::from_utf8_lossy(&o.stderr));
    eprintln!("{}", String::from_utf8_lossy(&o.stdout).trim());
    dest
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
