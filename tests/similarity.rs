//! `shiftbench similarity` end to end on synthetic suites with the example plugin: the demo makes
//! the paper's two points, the output files hold what they should, a run resumes, the numbers do
//! not depend on threads or batch size, and bad input gets one clear sentence.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn shiftbench(args: &[&str], paths: &[&Path]) -> Output {
    let mut c = Command::new(common::shiftbench_bin());
    c.args(args);
    for p in paths {
        c.arg(p);
    }
    c.output().unwrap()
}

fn ok(o: &Output) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    stdout
}

fn failed(o: &Output) -> String {
    assert!(!o.status.success(), "expected a failure: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// (suite, wnid) -> mean_cosine, from similarity.csv.
fn means(csv: &str) -> Vec<(String, String, f64)> {
    csv.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[1].to_string(), f[4].parse().unwrap())
        })
        .collect()
}

/// The demo with a model that has no embedding: its table, then one line saying why there is no
/// intra-class similarity (the typed error `NoEmbedding`), and success.
#[test]
fn the_demo_with_a_model_without_an_embedding_says_so_and_succeeds() {
    let d = tempfile::tempdir().unwrap();
    let lib = common::plugin_lib("shiftbench_v0_1_1");
    let out = d.path().join("demo");
    let stdout = ok(&shiftbench(&["demo", "--batch", "4", "--model"], &[&lib, Path::new("--out"), &out]));
    assert!(stdout.contains("interface-0.1.1"), "the run's table: {stdout}");
    assert!(
        stdout.contains(
            "\nno intra-class similarity: model interface-0.1.1 (shiftbench-test-v0-1-1 0.1.0) has no embedding: name one"
        ),
        "{stdout}"
    );
    assert!(!out.join("similarity/similarity.csv").exists(), "{stdout}");
}

#[test]
fn the_demo_shows_the_laionet_like_suite_less_alike_and_the_falling_classes_losing() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("demo");
    let stdout = ok(&shiftbench(&["demo", "--out"], &[&out]));
    assert!(stdout.contains("intra-class similarity of example-shape-colour"), "{stdout}");
    // It ends with a LAIONet built from the shipped captions (tests/laionet_build.rs checks the
    // counts against the paper's Python).
    assert!(stdout.contains("Where LAIONet comes from: `shiftbench laionet build` on 256"), "{stdout}");
    assert!(stdout.contains("matched one class:         130 (50.78% of captions)"), "{stdout}");
    assert!(stdout.contains("dropped, multiple classes: 42 (16.41% of captions)"), "{stdout}");
    assert!(out.join("laionet-build/laionet.parquet").is_file());
    let sim = out.join("similarity");
    let csv = read(&sim.join("similarity.csv"));
    assert_eq!(csv.lines().next().unwrap(), "suite,wnid,n,pairs,mean_cosine,std_cosine,se");
    let m = means(&csv);
    assert_eq!(m.len(), 20, "10 classes in each suite: {csv}");
    let avg = |s: &str| {
        let v: Vec<f64> = m.iter().filter(|r| r.0 == s).map(|r| r.2).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(avg("laionet-like") < avg("imagenet-like") - 0.1, "{csv}");

    let j: Value = serde_json::from_str(&read(&sim.join("similarity.json"))).unwrap();
    let c = &j["comparisons"][0];
    assert_eq!((c["a"].as_str(), c["b"].as_str()), (Some("imagenet-like"), Some("laionet-like")));
    assert!(c["share_lower"].as_f64().unwrap() > 0.5, "{c}");
    assert_eq!(j["run"]["kind"], "similarity");
    assert_eq!(j["embedding_len"], 7);
    // The paper's figure: classes whose similarity falls most lose most recall.
    let pts = j["recall"].as_array().unwrap();
    assert_eq!(pts.len(), 10);
    let xs: Vec<f64> = pts.iter().map(|p| p["similarity_diff"].as_f64().unwrap()).collect();
    let ys: Vec<f64> = pts.iter().map(|p| p["recall_diff"].as_f64().unwrap()).collect();
    assert!(shiftbench::results::similarity::pearson(&xs, &ys).unwrap() > 0.3, "{xs:?} {ys:?}");
    let line = stdout.lines().find(|l| l.contains("recall change against similarity change")).unwrap();
    assert!(line.contains("Pearson r = +"), "{line}");
    let diffs = read(&sim.join("differences.csv"));
    assert!(diffs.starts_with("suite_a,suite_b,wnid,n_a,n_b,mean_a,mean_b,diff,se,lo,hi,verdict\n"), "{diffs}");
    assert_eq!(diffs.lines().count(), 11);
    for svg in [
        "similarity-differences.laionet-like-vs-imagenet-like.svg",
        "recall-vs-similarity.laionet-like-vs-imagenet-like.svg",
    ] {
        assert!(read(&sim.join(svg)).contains("<svg"), "{svg}");
    }
}

#[test]
fn a_run_resumes_and_threads_or_batches_change_nothing() {
    let d = tempfile::tempdir().unwrap();
    let a = common::synthetic_suite(d.path(), "a", 12);
    let b = common::synthetic_suite(d.path(), "b", 5);
    let base = |out: &Path, extra: &[&str]| {
        let mut c = Command::new(common::shiftbench_bin());
        c.args([
            "similarity",
            "--model",
            "example",
            "--per-class",
            "9",
            "--seed",
            "3",
            "--min-per-class",
            "5",
            "--suite",
        ])
        .arg(&a)
        .arg("--suite")
        .arg(&b)
        .arg("--out")
        .arg(out)
        .args(extra);
        c.output().unwrap()
    };
    let one = d.path().join("one");
    let o = base(&one, &["--threads", "1", "--batch", "1", "--replicas", "1"]);
    ok(&o);
    let csv1 = read(&one.join("similarity.csv"));
    // K = 9 of 12 in suite a; all 5 of suite b (--min-per-class 5 keeps them): 10 classes each.
    let count = |suite: &str| csv1.lines().filter(|l| l.starts_with(&format!("{suite},"))).count();
    assert_eq!((count("a"), count("b")), (10, 10), "{csv1}");
    assert!(csv1.lines().skip(1).all(|l| l.contains(",a,") || l.starts_with("a,") || l.starts_with("b,")), "{csv1}");
    assert!(csv1.lines().filter(|l| l.starts_with("a,")).all(|l| l.split(',').nth(2) == Some("9")), "{csv1}");
    assert!(csv1.lines().filter(|l| l.starts_with("b,")).all(|l| l.split(',').nth(2) == Some("5")), "{csv1}");

    // Other threads, batch and copies: the same numbers, to the last digit.
    let two = d.path().join("two");
    ok(&base(&two, &["--threads", "2", "--batch", "4", "--replicas", "2"]));
    assert_eq!(read(&two.join("similarity.csv")), csv1);

    // Cut the first suite's log after 40 records (a run killed mid-way), one of them with its
    // embedding doubled (the same direction, so the same cosines): the next run keeps those
    // records and adds the rest.
    let log = one.join("embeddings").join("example-shape-colour__a.jsonl");
    let text = read(&log);
    let mut kept: Vec<String> = text.lines().take(1 + 40).map(str::to_string).collect();
    let mut r: Value = serde_json::from_str(&kept[1]).unwrap();
    let doubled: Vec<Value> =
        r["embedding"].as_array().unwrap().iter().map(|v| Value::from(2.0 * v.as_f64().unwrap())).collect();
    r["embedding"] = Value::from(doubled);
    kept[1] = serde_json::to_string(&r).unwrap();
    std::fs::write(&log, kept.join("\n") + "\n").unwrap();
    ok(&base(&one, &[]));
    let resumed = read(&log);
    assert_eq!(resumed.lines().count(), 1 + 90);
    assert_eq!(resumed.lines().nth(1), Some(kept[1].as_str()), "the records already there are kept");
    assert_eq!(read(&one.join("similarity.csv")), csv1);

    // Another seed is another choice: a new log, the earlier one kept beside it, never mixed in.
    let o = Command::new(common::shiftbench_bin())
        .args(["similarity", "--model", "example", "--per-class", "9", "--seed", "4", "--suite"])
        .arg(&a)
        .arg("--out")
        .arg(&one)
        .output()
        .unwrap();
    ok(&o);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("was written by another model, card or suite (suite content "), "{e}");
    let kept_as = log.with_file_name(format!("{}.replaced-1", log.file_name().unwrap().to_string_lossy()));
    assert_eq!(read(&kept_as), resumed, "the seed-0 log is kept as it was");
    assert_ne!(read(&log).lines().nth(1), resumed.lines().nth(1));
}

#[test]
fn bad_input_gets_one_clear_sentence() {
    let d = tempfile::tempdir().unwrap();
    let a = common::synthetic_suite(d.path(), "a", 8);
    // `model show` says whether a model has an embedding.
    let lib = common::plugin_lib("shiftbench_v0_1_1");
    let shown = ok(&shiftbench(&["model", "show", "example"], &[]));
    assert!(shown.contains("embedding: 7 values per image"), "{shown}");
    let shown = ok(&shiftbench(&["model", "show"], &[&lib]));
    assert!(shown.contains("embedding: none (shiftbench similarity needs one"), "{shown}");
    // A model without an embedding (a plugin built against interface 0.1.1).
    let o = Command::new(common::shiftbench_bin())
        .args(["similarity", "--suite"])
        .arg(&a)
        .arg("--model")
        .arg(&lib)
        .arg("--out")
        .arg(d.path().join("x"))
        .output()
        .unwrap();
    let e = failed(&o);
    assert!(e.contains("has no embedding: name one in its model YAML (`embedding: <tensor>`"), "{e}");

    // A class with one image, another with two: listed and skipped; the rest are measured.
    let s = d.path().join("s");
    for (wnid, n) in [("n07747607", 1), ("n07753592", 2), ("n07745940", 8)] {
        let src = d.path().join("a").join(common::EXAMPLE_WNIDS[2]);
        std::fs::create_dir_all(s.join(wnid)).unwrap();
        for i in 0..n {
            std::fs::copy(src.join(format!("{i:03}.png")), s.join(wnid).join(format!("{i}.png"))).unwrap();
        }
    }
    let y = d.path().join("s.yaml");
    std::fs::write(&y, "name: small\nsource:\n  image_folder: s\n").unwrap();
    let out = d.path().join("small");
    let o = shiftbench(&["similarity", "--model", "example", "--suite"], &[&y, Path::new("--out"), &out]);
    let stdout = ok(&o);
    assert!(
        stdout.contains("small: skipped 2 classes with fewer than 7 images: n07747607 (1), n07753592 (2)"),
        "{stdout}"
    );
    assert_eq!(read(&out.join("similarity.csv")).lines().count(), 2);

    // No samples at all.
    std::fs::create_dir_all(d.path().join("empty/n07747607")).unwrap();
    let y = d.path().join("empty.yaml");
    std::fs::write(&y, "name: empty\nsource:\n  image_folder: empty\n").unwrap();
    let o =
        shiftbench(&["similarity", "--model", "example", "--suite"], &[&y, Path::new("--out"), &d.path().join("e")]);
    let e = failed(&o);
    assert!(e.contains("no samples") || e.contains("no images"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");

    // Too few images per class to have a standard error.
    let o = shiftbench(
        &["similarity", "--model", "example", "--min-per-class", "2", "--suite"],
        &[&a, Path::new("--out"), &d.path().join("m")],
    );
    let e = failed(&o);
    assert!(e.contains("--min-per-class must be at least 3"), "{e}");
}

/// A model YAML for the misbehave fixture.
fn misbehave(dir: &Path, behave: &str) -> std::path::PathBuf {
    let y = dir.join(format!("{behave}.yaml"));
    let lib = common::plugin_lib("shiftbench_misbehave");
    std::fs::write(
        &y,
        format!(
            "plugin: {}\nname: bad-{behave}\npreprocess: {{resize: 32, crop: 32}}\noptions: {{behave: {behave}}}\n",
            lib.display()
        ),
    )
    .unwrap();
    y
}

#[test]
fn bad_embeddings_are_caught_at_the_boundary() {
    let d = tempfile::tempdir().unwrap();
    let a = common::synthetic_suite(d.path(), "a", 8);
    let similarity = |model: &Path, out: &str| {
        Command::new(common::shiftbench_bin())
            .args(["similarity", "--batch", "2", "--suite"])
            .arg(&a)
            .arg("--model")
            .arg(model)
            .arg("--out")
            .arg(d.path().join(out))
            .output()
            .unwrap()
    };
    // NaN in every other image's embedding: those images fail (with the reason in the log), the
    // others are measured.
    let o = similarity(&misbehave(d.path(), "nan"), "nan");
    ok(&o);
    let j: Value = serde_json::from_str(&read(&d.path().join("nan/similarity.json"))).unwrap();
    assert_eq!((j["suites"][0]["embedded"].as_u64(), j["suites"][0]["failed"].as_u64()), (Some(40), Some(40)), "{j}");
    let log = read(&d.path().join("nan/embeddings/bad-nan__a.jsonl"));
    assert!(log.contains("returned a non-finite embedding"), "{log}");

    // Too many values: the model broke the interface and is stopped, with one sentence that says
    // how to resume.
    let o = similarity(&misbehave(d.path(), "wrong-length"), "long");
    let e = failed(&o);
    assert!(e.contains("returned 9 embedding values for 2 images x 4 values per embedding, expected 8"), "{e}");
    assert!(e.contains("run the same command again to resume"), "{e}");
}

#[test]
fn ctrl_c_stops_after_the_batch_and_the_same_command_resumes() {
    use shiftbench::results::predlog::{read_log, read_log_lenient};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let d = tempfile::tempdir().unwrap();
    let suite = common::synthetic_suite(d.path(), "shapes", 4);
    // Two images per batch, 150 ms each: about three seconds for the suite.
    let slow = d.path().join("slow.yaml");
    let lib = common::plugin_lib("shiftbench_misbehave");
    std::fs::write(
        &slow,
        format!(
            "plugin: {}\nname: slow\npreprocess: {{resize: 32, crop: 32}}\noptions: {{behave: slow, sleep_ms: 150}}\n",
            lib.display()
        ),
    )
    .unwrap();
    let cmd = |model: &Path, out: &Path| {
        let mut c = Command::new(common::shiftbench_bin());
        c.args(["similarity", "--batch", "2", "--threads", "1", "--min-per-class", "3", "--suite"])
            .arg(&suite)
            .arg("--model")
            .arg(model)
            .arg("--out")
            .arg(out);
        c
    };
    let out = d.path().join("out");
    let log = out.join("embeddings/slow__shapes.jsonl");
    let mut child = cmd(&slow, &out).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while read_log_lenient(&log).map(|(_, r, _)| r.len()).unwrap_or(0) < 2 {
        assert!(start.elapsed() < Duration::from_secs(120), "nothing was embedded");
        assert!(child.try_wait().unwrap().is_none(), "it ended before it could be interrupted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted: ") && err.contains("run the same command again (without --fresh) to resume"),
        "{err}"
    );
    assert!(!out.join("similarity.csv").exists(), "an interrupted run writes no statistics");
    let (_, kept) = read_log(&log).unwrap();
    assert!(kept.len() >= 2 && kept.len() < 40, "{} records", kept.len());

    // The same command embeds only the rest, and the numbers are an uninterrupted run's.
    ok(&cmd(&slow, &out).output().unwrap());
    let (_, all) = read_log(&log).unwrap();
    assert_eq!(all.len(), 40);
    assert_eq!(&all[..kept.len()], &kept[..], "nothing was embedded twice");
    let good = misbehave(d.path(), "good");
    let whole = d.path().join("whole");
    ok(&cmd(&good, &whole).output().unwrap());
    assert_eq!(read(&out.join("similarity.csv")), read(&whole.join("similarity.csv")));
}

/// No NaN (as Rust writes it) in any of `texts`.
fn no_nan(texts: &[(&str, String)]) {
    for (what, t) in texts {
        assert!(!t.contains("NaN"), "{what} says NaN:\n{t}");
    }
}

/// A suite in which no class has `--min-per-class` images is refused before anything is
/// embedded (`--out` is not even made), with one sentence that names the suite, its
/// largest class and the value, and points at grouping classes with `remap:`.
#[test]
fn a_suite_without_a_big_enough_class_is_refused_before_the_pass() {
    let d = tempfile::tempdir().unwrap();
    let a = common::synthetic_suite(d.path(), "a", 8);
    let refused = |suite: &Path, extra: &[&str], out: &str| {
        let out = d.path().join(out);
        let o = Command::new(common::shiftbench_bin())
            .args(["similarity", "--model", "example", "--suite"])
            .arg(suite)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stdout));
        assert!(!out.exists(), "--out was made (so the pass was on its way) before the refusal");
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        e
    };
    // 8 images in every class, 9 asked for: 8 would do.
    let e = refused(&a, &["--min-per-class", "9"], "nine");
    assert!(e.contains("suite a has no class with --min-per-class 9 images (its largest class has 8)"), "{e}");
    assert!(e.contains("`remap:` to a parent wnid") && e.contains("suites/imagenet-samples-coarse.yaml"), "{e}");
    assert!(e.contains("or lower --min-per-class to 8"), "{e}");
    // One or two images per class: nothing to lower to; the second suite is checked as well
    // (and still before the first is embedded).
    let s = d.path().join("s");
    for (wnid, n) in [("n07747607", 1), ("n07753592", 2)] {
        let src = d.path().join("a").join(common::EXAMPLE_WNIDS[2]);
        std::fs::create_dir_all(s.join(wnid)).unwrap();
        for i in 0..n {
            std::fs::copy(src.join(format!("{i:03}.png")), s.join(wnid).join(format!("{i}.png"))).unwrap();
        }
    }
    let y = d.path().join("s.yaml");
    std::fs::write(&y, "name: tiny\nsource:\n  image_folder: s\n").unwrap();
    let e = refused(&a, &["--suite", y.to_str().unwrap()], "tiny");
    assert!(e.contains("suite tiny has no class with --min-per-class 7 images (its largest class has 2)"), "{e}");
    assert!(!e.contains("lower --min-per-class"), "{e}");
    // K below the minimum can never give a class enough images.
    let e = refused(&a, &["--per-class", "5"], "k");
    assert!(e.contains("--per-class 5 is below --min-per-class 7"), "{e}");
}

/// Empty sets after the pass: every class skipped (the model fails every other image, leaving 4
/// of 8), and two suites without a class in common. The terminal says so in sentences, the
/// JSON has `null`, and nothing anywhere says NaN.
#[test]
fn empty_sets_are_sentences_and_nulls_never_nan() {
    let d = tempfile::tempdir().unwrap();
    let a = common::synthetic_suite(d.path(), "a", 8);
    // A suite of one class that `a` does not have.
    let src = d.path().join("a").join(common::EXAMPLE_WNIDS[0]);
    let other = d.path().join("o/n01440764");
    std::fs::create_dir_all(&other).unwrap();
    for i in 0..8 {
        std::fs::copy(src.join(format!("{i:03}.png")), other.join(format!("{i}.png"))).unwrap();
    }
    let o_yaml = d.path().join("o.yaml");
    std::fs::write(&o_yaml, "name: other\nsource:\n  image_folder: o\n").unwrap();
    let files = |out: &Path| -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("similarity.csv", read(&out.join("similarity.csv"))),
            ("similarity.json", read(&out.join("similarity.json"))),
        ];
        v.push(("differences.csv", read(&out.join("differences.csv"))));
        for e in std::fs::read_dir(out).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "svg") {
                v.push(("an SVG", read(&p)));
            }
        }
        v
    };

    let out = d.path().join("apart");
    let o = shiftbench(
        &["similarity", "--model", "example", "--suite"],
        &[&a, Path::new("--suite"), &o_yaml, Path::new("--out"), &out],
    );
    let stdout = ok(&o);
    assert!(
        stdout.contains("other vs a: no class has 7 images or more in both suites, so none can be compared"),
        "{stdout}"
    );
    assert!(stdout.contains("similarity-differences.other-vs-a.svg: fewer than two classes"), "{stdout}");
    let j: Value = serde_json::from_str(&read(&out.join("similarity.json"))).unwrap();
    for key in ["share_lower", "share_higher", "mean_diff", "median_diff"] {
        assert_eq!(j["comparisons"][0][key], Value::Null, "{key}: {j}");
    }
    assert_eq!(read(&out.join("differences.csv")).lines().count(), 1, "a header alone");
    let mut all = files(&out);
    all.push(("stdout", stdout));
    all.push(("stderr", String::from_utf8_lossy(&o.stderr).into_owned()));
    no_nan(&all);

    // Every image passes the check before the pass (8 chosen of 7 needed), half fail in it.
    let out = d.path().join("failing");
    let b = common::synthetic_suite(d.path(), "b", 8);
    let o = shiftbench(
        &["similarity", "--batch", "2", "--suite"],
        &[&a, Path::new("--suite"), &b, Path::new("--model"), &misbehave(d.path(), "nan"), Path::new("--out"), &out],
    );
    let stdout = ok(&o);
    assert!(stdout.contains("a: skipped 10 classes with fewer than 7 images"), "{stdout}");
    assert!(
        stdout.contains("b vs a: no class has 7 images or more in both suites, so none can be compared"),
        "{stdout}"
    );
    let row = stdout.lines().find(|l| l.starts_with("│ a ")).unwrap();
    assert!(row.trim_end_matches('│').trim_end().ends_with(" -"), "{row}");
    let j: Value = serde_json::from_str(&read(&out.join("similarity.json"))).unwrap();
    assert_eq!(j["suites"][0]["mean_of_class_means"], Value::Null, "{j}");
    assert_eq!(j["suites"][0]["classes"], 0, "{j}");
    let mut all = files(&out);
    all.push(("stdout", stdout));
    no_nan(&all);
}

/// `--result` is read and checked before the pass: a missing or broken file, one without the
/// model on every suite, or one suite (no recall change to set against anything).
#[test]
fn the_result_is_checked_before_the_pass() {
    let d = tempfile::tempdir().unwrap();
    let a = common::synthetic_suite(d.path(), "a", 8);
    let b = common::synthetic_suite(d.path(), "b", 8);
    let run_a = d.path().join("run-a");
    ok(&shiftbench(&["run", "--model", "example", "--suite"], &[&a, Path::new("--out"), &run_a]));
    let broken = d.path().join("broken.json");
    std::fs::write(&broken, "{\"not\": \"a result\"").unwrap();
    let refused = |result: &Path, suites: &[&Path], out: &str| {
        let out = d.path().join(out);
        let mut c = Command::new(common::shiftbench_bin());
        c.args(["similarity", "--model", "example", "--result"]).arg(result).arg("--out").arg(&out);
        for s in suites {
            c.arg("--suite").arg(s);
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stdout));
        assert!(!out.join("embeddings").exists(), "something was embedded before the refusal");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = refused(&d.path().join("nowhere.json"), &[&a, &b], "missing");
    assert!(e.contains("cannot read result") && e.contains("nowhere.json"), "{e}");
    let e = refused(&broken, &[&a, &b], "broken");
    assert!(e.contains("broken.json"), "{e}");
    let e = refused(&run_a, &[&a, &b], "no-b");
    assert!(e.contains("has no result of model \"example-shape-colour\" on suite b"), "{e}");
    let e = refused(&run_a, &[&a], "one");
    assert!(e.contains("--result sets recall changes against similarity changes between suites"), "{e}");
    // With both suites in the result it goes through.
    let run_ab = d.path().join("run-ab");
    ok(&shiftbench(
        &["run", "--model", "example", "--suite"],
        &[&a, Path::new("--suite"), &b, Path::new("--out"), &run_ab],
    ));
    let out = d.path().join("ok");
    let stdout = ok(&shiftbench(
        &["similarity", "--model", "example", "--suite"],
        &[&a, Path::new("--suite"), &b, Path::new("--result"), &run_ab, Path::new("--out"), &out],
    ));
    assert!(out.join("recall-vs-similarity.csv").is_file(), "{stdout}");
}

/// The shipped example of grouping a one-photo-per-class suite: the shared ImageNet sample photos
/// are refused as they are (every class has one photo) and measured through
/// suites/imagenet-samples-coarse.yaml, whose 7 coarse classes hold the photos of the ImageNet
/// index ranges it documents, with SqueezeNet 1.1's pooled features.
#[test]
fn the_sample_photos_grouped_into_coarse_classes() {
    let test = "the_sample_photos_grouped_into_coarse_classes";
    let Some(data) = common::shared_data(test) else { return };
    if common::plugin_lib_if_built("shiftbench_onnx", test).is_none() {
        return;
    }
    let repo = common::repo();
    let model = repo.join("plugins/onnx/examples/squeezenet1.1-fp32-embedding.yaml");
    let d = tempfile::tempdir().unwrap();
    let run = |suite: &str, out: &str| {
        Command::new(common::shiftbench_bin())
            .args(["similarity", "--per-class", "200", "--suite"])
            .arg(repo.join(suite))
            .arg("--model")
            .arg(&model)
            .arg("--out")
            .arg(d.path().join(out))
            .env_remove("SHIFTBENCH_SAMPLES")
            .output()
            .unwrap()
    };
    let e = failed(&run("suites/imagenet-samples.yaml", "flat"));
    assert!(
        e.contains("suite imagenet-samples has no class with --min-per-class 7 images (its largest class has 1)"),
        "{e}"
    );
    assert!(e.contains("suites/imagenet-samples-coarse.yaml"), "{e}");
    assert!(!d.path().join("flat").exists(), "nothing is written before the refusal");

    // The groups as the YAML's comments give them: parent wnid and ImageNet-1k indices.
    let vehicles =
        [407, 436, 468, 511, 555, 569, 573, 575, 609, 627, 654, 656, 661, 675, 717, 734, 751, 779, 817, 864, 867, 874];
    let groups: [(&str, Vec<usize>); 7] = [
        ("n02512053", (0..=6).chain(389..=397).collect()),
        ("n01503061", (7..=24).chain(80..=100).chain(127..=146).collect()),
        ("n01627424", (25..=32).collect()),
        ("n01661091", (33..=68).collect()),
        ("n02084071", (151..=268).collect()),
        ("n02159955", (300..=326).collect()),
        ("n03100490", vehicles.to_vec()),
    ];
    let synsets = read(&data.join("classes/imagenet_synsets.txt"));
    let synsets: Vec<&str> = synsets.split_whitespace().collect();
    let photos: Vec<String> = std::fs::read_dir(data.join("imagenet-samples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().split('_').next().unwrap().to_string())
        .collect();
    let o = run("suites/imagenet-samples-coarse.yaml", "coarse");
    let stdout = ok(&o);
    let csv = read(&d.path().join("coarse/similarity.csv"));
    let rows = means(&csv);
    assert_eq!(rows.len(), groups.len(), "{csv}");
    for (parent, indices) in &groups {
        let expected =
            photos.iter().filter(|w| synsets.iter().position(|s| s == w).is_some_and(|i| indices.contains(&i))).count();
        let line = csv
            .lines()
            .find(|l| l.starts_with(&format!("imagenet-samples-coarse,{parent},")))
            .unwrap_or_else(|| panic!("{parent}: {csv}"));
        assert_eq!(line.split(',').nth(2), Some(expected.to_string().as_str()), "{parent}: {line}");
        assert!(expected >= 7, "{parent}: {expected}");
    }
    // Pooled ReLU features are non-negative: every class's mean cosine is a number in (0, 1).
    assert!(rows.iter().all(|r| r.2 > 0.0 && r.2 < 1.0), "{csv}");
    assert!(!stdout.contains(": skipped"), "{stdout}");
    no_nan(&[("stdout", stdout), ("similarity.csv", csv)]);
}
