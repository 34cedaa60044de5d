//! The demo end to end: its table is snapshot-tested, it makes the paper's point, and its metrics
//! are identical whatever the thread count and batch size.

mod common;

use std::path::Path;

use shiftbench::host::worker::{Isolation, WorkerOptions};
use shiftbench::report::table::{summary_table, table};
use shiftbench::run::EvalOptions;
use shiftbench::RunResult;
use shiftbench::{demo, run, RunSpec};

fn run_demo(dir: &Path, threads: usize, batch: usize, isolation: Isolation) -> RunResult {
    let suites = demo::generate(&dir.join("suites")).unwrap();
    let lib = common::plugin_lib("shiftbench_example");
    run(&RunSpec {
        suites: vec![suites.imagenet, suites.laionet],
        models: vec![lib.to_string_lossy().into_owned()],
        out: dir.join("out"),
        eval: EvalOptions { batch, threads, ..EvalOptions::default() },
        model_threads: 0,
        replicas: None,
        fresh: true,
        isolation,
        shard: None,
    })
    .unwrap()
}

#[test]
fn demo_table_and_the_papers_point() {
    let d = tempfile::tempdir().unwrap();
    let r = run_demo(d.path(), 2, 32, Isolation::InProcess);
    insta::assert_snapshot!("demo_table", format!("{}\n{}", table(&r.results), summary_table(&r.results)));
    let (inet, laion) = (&r.results[0], &r.results[1]);
    assert_eq!(inet.totals.expected, 400);
    assert_eq!(inet.totals.evaluated, 400);
    let (a, b) = (inet.metrics.top1_equal.unwrap(), laion.metrics.top1_equal.unwrap());
    // The stereotypical suite is easy; the in-the-wild one is significantly harder.
    assert!(a.value > 0.9, "{a:?}");
    assert!(a.value - b.value > 5.0 * a.minus(&b).se, "{a:?} {b:?}");
    // LAION weights are the LAIONet-like suite's frequencies, applied to both suites.
    assert_eq!(laion.weights, "frequency");
    let w: f64 = laion.per_class.values().map(|c| c.weight).sum();
    assert!((w - 1.0).abs() < 1e-12);
    assert_eq!(inet.per_class["n07720875"].weight, laion.per_class["n07720875"].weight);
    // The result file was written and reads back the same.
    let back: RunResult = serde_json::from_slice(&std::fs::read(d.path().join("out/result.json")).unwrap()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn identical_whatever_threads_batch_and_isolation() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = run_demo(d1.path(), 1, 1, Isolation::InProcess);
    let worker = WorkerOptions { exe: common::shiftbench_bin(), ..WorkerOptions::current_exe().unwrap() };
    let b = run_demo(d2.path(), 2, 7, Isolation::Worker(worker));
    assert_eq!(a.results, b.results);
    for r in &a.results {
        assert!(r.metrics.top1_equal.is_some());
    }
}
