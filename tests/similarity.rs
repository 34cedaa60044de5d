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
    assert!(shiftbench::results::similarity::pearson(&xs, &ys) > 0.3, "{xs:?} {ys:?}");
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
        c.args(["similarity", "--model", "example", "--per-class", "9", "--seed", "3", "--suite"])
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
    // K = 9 of 12 in suite a; all 5 of suite b.
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

    // Another seed is another choice: its log is refused without --fresh.
    let o = Command::new(common::shiftbench_bin())
        .args(["similarity", "--model", "example", "--per-class", "9", "--seed", "4", "--suite"])
        .arg(&a)
        .arg("--out")
        .arg(&one)
        .output()
        .unwrap();
    let e = failed(&o);
    assert!(e.contains("pass --fresh"), "{e}");
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
