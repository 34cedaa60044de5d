//! Plugins that crash, hang, panic or lie, run through `shiftbench run` next to the good example
//! plugin: the bad model becomes an error row (or failed samples) with its reason, the example's
//! result is exactly what it is alone, and the run's exit status says so.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use shiftbench::{EvalResult, RunResult};

/// One synthetic suite (40 images) shared by the tests of this file.
fn suite() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let y = common::synthetic_suite(d.path(), "shapes", 4);
        (d, y)
    })
    .1
}

/// A model YAML for the misbehaving fixture.
fn bad_model(dir: &Path, behave: &str, options: &str) -> PathBuf {
    let y = dir.join(format!("{behave}.yaml"));
    let lib = common::plugin_lib("shiftbench_misbehave");
    std::fs::write(
        &y,
        format!(
            "plugin: {}\nname: bad-{behave}\npreprocess: {{resize: 32, crop: 32}}\noptions:\n  behave: {behave}\n{options}",
            lib.display()
        ),
    )
    .unwrap();
    y
}

fn example() -> String {
    common::plugin_lib("shiftbench_example").to_string_lossy().into_owned()
}

/// `shiftbench run` on the shared suite with batches of 4.
fn run(out: &Path, models: &[&str], extra: &[&str]) -> (Output, Option<RunResult>) {
    let mut c = Command::new(common::shiftbench_bin());
    c.args(["run", "--batch", "4", "--threads", "1", "--suite"]).arg(suite()).arg("--out").arg(out);
    for m in models {
        c.args(["--model", m]);
    }
    c.args(extra);
    let o = c.output().unwrap();
    let r = std::fs::read(out.join("result.json")).ok().map(|b| serde_json::from_slice(&b).unwrap());
    (o, r)
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn find<'a>(r: &'a RunResult, model: &str) -> &'a EvalResult {
    r.results.iter().find(|x| x.model == model).unwrap_or_else(|| panic!("no result for {model}: {r:?}"))
}

/// The example plugin alone on the suite, in a worker.
fn baseline() -> &'static EvalResult {
    static B: OnceLock<EvalResult> = OnceLock::new();
    B.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let (o, r) = run(d.path(), &[&example()], &[]);
        assert!(o.status.success(), "{}", text(&o));
        let r = r.unwrap();
        assert_eq!(r.results.len(), 1);
        assert_eq!(r.results[0].totals.evaluated, 40);
        assert!(r.results[0].error.is_none());
        r.results[0].clone()
    })
}

/// Runs `bad` before and the example after it; checks the run exits with status 3, the example
/// is unaffected and the bad model has an error row. Returns the bad model's result and the output.
fn error_row(bad: &Path, extra: &[&str]) -> (EvalResult, String) {
    let d = tempfile::tempdir().unwrap();
    let (o, r) = run(d.path(), &[bad.to_str().unwrap(), &example()], extra);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(t.contains("stopped with an error; the other results are complete"), "{t}");
    let r = r.unwrap_or_else(|| panic!("no result.json: {t}"));
    assert_eq!(find(&r, &baseline().model), baseline(), "the good model's result changed: {t}");
    let name = format!("bad-{}", bad.file_stem().unwrap().to_string_lossy());
    let b = find(&r, &name).clone();
    let e = b.error.clone().unwrap_or_else(|| panic!("no error for {name}: {t}"));
    assert!(b.metrics.top1_equal.is_none() && b.metrics.top5_weighted.is_none());
    assert!(t.contains(&format!("{name} on shapes: ERROR: ")), "{t}");
    assert!(t.contains("ERROR (see below)"), "{t}");
    assert!(e.contains("shiftbench-test-misbehave") || e.contains("misbehave"), "the reason names the plugin: {e}");
    (b, t)
}

#[test]
fn a_segfault_is_an_error_row_and_the_rest_of_the_run_finishes() {
    let d = tempfile::tempdir().unwrap();
    // One copy, so the counts below are exact (copies are tested at the end of this file).
    let (b, t) = error_row(&bad_model(d.path(), "segfault", "  after: 2\n"), &["--replicas", "1"]);
    let e = b.error.clone().unwrap();
    assert!(e.contains("crashed while scoring a batch of 4 images") && e.contains("SIGSEGV"), "{e}");
    // Two good batches are kept, the batch in flight is failed with the reason, and the
    // rest is left for a later run to retry.
    assert_eq!((b.totals.evaluated, b.totals.failed, b.totals.expected), (8, 4, 40), "{t}");
    assert_eq!(b.not_evaluated(), 28);
    assert!(b.problems.iter().all(|p| p.reason == e));
    assert!(t.contains("4 samples in the batch in flight failed with that ERROR"), "{t}");
    assert!(t.contains("28 of 40 samples were not evaluated; run the same command again to retry them"), "{t}");
}

#[test]
fn an_abort_is_an_error_row() {
    let d = tempfile::tempdir().unwrap();
    let (b, _) = error_row(&bad_model(d.path(), "abort", ""), &[]);
    assert!(b.error.unwrap().contains("SIGABRT"));
}

#[test]
fn a_hang_is_killed_after_the_batch_timeout() {
    let d = tempfile::tempdir().unwrap();
    let (b, _) = error_row(&bad_model(d.path(), "hang", "  after: 1\n"), &["--batch-timeout", "3", "--replicas", "1"]);
    let e = b.error.unwrap();
    assert!(
        e.contains(
            "did not answer within 3 s (--batch-timeout) while scoring a batch of 4 images: its worker was killed"
        ),
        "{e}"
    );
    assert_eq!(b.totals.evaluated, 4);
}

#[test]
fn a_panic_stops_the_model_with_its_message() {
    let d = tempfile::tempdir().unwrap();
    let (b, _) = error_row(&bad_model(d.path(), "panic", ""), &[]);
    let e = b.error.unwrap();
    assert!(e.contains("plugin panicked in infer: misbehave: panicking in infer as asked"), "{e}");
}

#[test]
fn scores_of_the_wrong_shape_stop_the_model() {
    let d = tempfile::tempdir().unwrap();
    let (b, _) = error_row(&bad_model(d.path(), "wrong-length", ""), &[]);
    let e = b.error.unwrap();
    assert!(e.contains("broke the interface: it returned 41 scores for 4 images x 10 labels, expected 40"), "{e}");
    let (b, _) = error_row(&bad_model(d.path(), "wrong-batch", ""), &[]);
    let e = b.error.unwrap();
    assert!(e.contains("(scores for 5 images: it was asked for 4)"), "{e}");
}

#[test]
fn models_that_cannot_load_are_error_rows() {
    let d = tempfile::tempdir().unwrap();
    for (behave, why) in [
        ("segfault-load", "crashed while loading the model"),
        ("hang-load", "did not answer within 3 s (--load-timeout) while loading the model"),
        ("panic-load", "plugin panicked in load: misbehave: panicking in load as asked"),
        ("dup-labels", "label n07745940 appears twice in the label list (at 2 and 7)"),
        ("unknown-wnid", "label 4 (n99999999) is not an ImageNet synset"),
    ] {
        let (b, t) = error_row(&bad_model(d.path(), behave, ""), &["--load-timeout", "3"]);
        let e = b.error.unwrap();
        assert!(e.contains("could not be loaded") && e.contains(why), "{behave}: {e}\n{t}");
        assert_eq!((b.totals.evaluated, b.totals.expected), (0, 40));
    }
}

#[test]
fn non_finite_scores_fail_those_samples_only() {
    let d = tempfile::tempdir().unwrap();
    for behave in ["nan", "inf"] {
        let bad = bad_model(d.path(), behave, "");
        let out = d.path().join(behave);
        let (o, r) = run(&out, &[bad.to_str().unwrap(), &example()], &[]);
        assert!(o.status.success(), "{}", text(&o));
        let r = r.unwrap();
        assert_eq!(find(&r, &baseline().model), baseline());
        let b = find(&r, &format!("bad-{behave}"));
        assert!(b.error.is_none());
        // Every other image got a non-finite score.
        assert_eq!((b.totals.evaluated, b.totals.failed), (20, 20), "{}", text(&o));
        assert!(
            b.problems.iter().all(|p| p.reason == "plugin shiftbench-test-misbehave 0.1.0 returned non-finite scores"),
            "{:?}",
            b.problems
        );
        assert!(b.metrics.top1_equal.is_some());
    }
}

#[test]
fn a_plugin_printing_to_stdout_does_not_corrupt_the_protocol() {
    let d = tempfile::tempdir().unwrap();
    let chatty = bad_model(d.path(), "chatty", "");
    let good = bad_model(d.path(), "good", "");
    let (o, r) = run(d.path(), &[chatty.to_str().unwrap(), good.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("misbehave: chatting on stdout"));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("chatting"));
    let r = r.unwrap();
    let (c, g) = (find(&r, "bad-chatty"), find(&r, "bad-good"));
    assert_eq!(c.totals.evaluated, 40);
    assert_eq!((&c.metrics, &c.per_class), (&g.metrics, &g.per_class));
}

#[test]
fn in_process_gives_the_same_numbers() {
    let d = tempfile::tempdir().unwrap();
    let panicky = bad_model(d.path(), "panic", "");
    let (o, r) = run(d.path(), &[panicky.to_str().unwrap(), &example()], &["--in-process"]);
    // A panic is caught in-process too (a segfault would not be: that is what workers are for).
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let r = r.unwrap();
    assert_eq!(find(&r, &baseline().model), baseline());
    assert!(find(&r, "bad-panic").error.as_deref().unwrap().contains("panicked in infer"));
}

#[test]
fn two_models_with_one_name_do_not_share_a_log() {
    let d = tempfile::tempdir().unwrap();
    let a = bad_model(d.path(), "good", "");
    let other = d.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let b = bad_model(&other, "good", "  after: 0\n");
    // Refused before anything is evaluated (all models go through a suite in one pass), naming both.
    let (o, r) = run(&d.path().join("out"), &[a.to_str().unwrap(), b.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(r.is_none(), "{r:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("are both named \"bad-good\""), "{}", text(&o));
}

/// Several copies of each model (`--replicas`), in worker processes fed through shared memory:
/// the good model's numbers are exactly those of one copy, and a copy that segfaults still
/// makes its model an error row without touching the other model.
#[test]
fn copies_of_a_model_give_the_same_numbers_and_a_crashing_copy_is_an_error_row() {
    let d = tempfile::tempdir().unwrap();
    let (o, r) = run(d.path(), &[&example()], &["--replicas", "3"]);
    assert!(o.status.success(), "{}", text(&o));
    let r = r.unwrap();
    assert_eq!(find(&r, &baseline().model), baseline());
    let info = r.run.as_ref().expect("provenance");
    assert_eq!(info.models[0].replicas, Some(3));
    let segv = bad_model(d.path(), "segfault", "");
    let (b, _) = error_row(&segv, &["--replicas", "2"]);
    assert!(b.error.unwrap().contains("SIGSEGV"));
}
