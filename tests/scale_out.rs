//! Scale-out and crash safety: a run split into N shards and merged gives the unsharded run's
//! result to the last bit (N = 1, 3, 7), missing shards are named, and a run killed with SIGKILL
//! halfway resumes from its predictions log to the same result as an uninterrupted run.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use shiftbench::results::predlog::read_log;
use shiftbench::results::shard::Shard;
use shiftbench::run::events::Silent;
use shiftbench::run::merge::merge;
use shiftbench::run::EvalOptions;
use shiftbench::RunResult;
use shiftbench::{demo, run, shard_log_path, RunSpec};

fn spec(suites: &[PathBuf], out: &Path, shard: Option<Shard>) -> RunSpec {
    RunSpec {
        suites: suites.to_vec(),
        models: vec![common::plugin_lib("shiftbench_example").to_string_lossy().into_owned()],
        out: out.to_path_buf(),
        eval: EvalOptions { batch: 16, threads: 2, ..Default::default() },
        shard,
        ..RunSpec::default()
    }
}

#[test]
fn shards_merge_to_the_unsharded_result_bit_for_bit() {
    let d = tempfile::tempdir().unwrap();
    let s = demo::generate(&d.path().join("suites")).unwrap();
    let suites = vec![s.imagenet, s.laionet];
    let whole = run(&spec(&suites, &d.path().join("whole"), None)).unwrap();
    assert_eq!(whole.results[1].totals.expected, 429);

    for n in [1u32, 3, 7] {
        let out = d.path().join(format!("n{n}"));
        let mut expected = 0;
        for i in 0..n {
            let sh = Shard { index: i, count: n };
            let part = run(&spec(&suites, &out, Some(sh))).unwrap();
            expected += part.results[1].totals.expected;
            assert_eq!(part.run.as_ref().unwrap().shard, Some(sh));
            assert!(shard_log_path(&out, "example-shape-colour", "laionet-like", Some(sh)).is_file());
            assert!(out.join(format!("result.shard-{i}-of-{n}.json")).is_file());
        }
        assert_eq!(expected, 429, "the shards of N = {n} partition the suite");
        let merged = merge(std::slice::from_ref(&out), &BTreeMap::new(), false, &Silent).unwrap();
        assert_eq!(merged.logs.len(), 2 * n as usize);
        // Every metric, standard error, per-class count and weight: identical.
        assert_eq!(merged.run.results, whole.results, "N = {n}");
        let info = merged.run.run.as_ref().unwrap();
        assert_eq!((info.kind.as_str(), info.merged_runs.len()), ("merge", n as usize));
        assert_eq!(info.suites[1].samples, 429);
    }

    // The CLI: merge writes result.json into the folder; a missing shard is named.
    let out = d.path().join("n3");
    let o = Command::new(common::shiftbench_bin())
        .args(["merge", out.to_str().unwrap(), "--format", "csv"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("model,suite,weights,"));
    assert_eq!(RunResult::read(&out.join("result.json")).unwrap().results, whole.results);
    std::fs::remove_file(shard_log_path(
        &out,
        "example-shape-colour",
        "laionet-like",
        Some(Shard { index: 1, count: 3 }),
    ))
    .unwrap();
    let o = Command::new(common::shiftbench_bin()).args(["merge", out.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("example-shape-colour on laionet-like: shard 1/3 is missing"), "{err}");
    let partial = merge(std::slice::from_ref(&out), &BTreeMap::new(), true, &Silent).unwrap();
    assert!(partial.run.results[1].totals.expected < 429);

    // Logs alone (no result files) with the suite named for its weights give the same result too.
    let logs: Vec<PathBuf> = (0..7)
        .flat_map(|i| {
            let sh = Some(Shard { index: i, count: 7 });
            let o = d.path().join("n7");
            [
                shard_log_path(&o, "example-shape-colour", "imagenet-like", sh),
                shard_log_path(&o, "example-shape-colour", "laionet-like", sh),
            ]
        })
        .collect();
    let merged_out = d.path().join("from-logs");
    let mut c = Command::new(common::shiftbench_bin());
    c.arg("merge").args(&logs).arg("--out").arg(&merged_out);
    for s in &suites {
        c.arg("--suite").arg(s);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut from_logs = RunResult::read(&merged_out.join("result.json")).unwrap().results;
    from_logs.sort_by(|a, b| a.suite.cmp(&b.suite));
    assert_eq!(from_logs, whole.results);
}

/// A suite of `copies` x the demo's LAIONet-like images (hard links, so it costs no disk).
fn big_suite(dir: &Path, copies: usize) -> (PathBuf, usize) {
    let s = demo::generate(&dir.join("demo")).unwrap();
    let src = s.laionet.parent().unwrap().join("laionet-like");
    let mut n = 0;
    for class in std::fs::read_dir(&src).unwrap() {
        let class = class.unwrap().path();
        let dst = dir.join("big").join(class.file_name().unwrap());
        std::fs::create_dir_all(&dst).unwrap();
        for img in std::fs::read_dir(&class).unwrap() {
            let img = img.unwrap().path();
            for c in 0..copies {
                let to = dst.join(format!("{c}_{}", img.file_name().unwrap().to_string_lossy()));
                std::fs::hard_link(&img, &to).or_else(|_| std::fs::copy(&img, &to).map(|_| ())).unwrap();
                n += 1;
            }
        }
    }
    let yaml = dir.join("big.yaml");
    std::fs::write(&yaml, "name: big\nsource:\n  image_folder: big\nweights: own\n").unwrap();
    (yaml, n)
}

fn lines(p: &Path) -> usize {
    std::fs::read(p).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0)
}

#[test]
fn a_run_killed_halfway_resumes_to_the_same_result() {
    let d = tempfile::tempdir().unwrap();
    let (suite, n) = big_suite(d.path(), 3);
    assert_eq!(n, 3 * 429);
    let lib = common::plugin_lib("shiftbench_example");
    let cmd = |out: &Path, threads: &str, batch: &str| {
        let mut c = Command::new(common::shiftbench_bin());
        c.args(["run", "--suite"]).arg(&suite).arg("--model").arg(&lib).arg("--out").arg(out);
        c.args(["--threads", threads, "--batch", batch]).stdout(Stdio::null()).stderr(Stdio::piped());
        c
    };
    let out = d.path().join("killed");
    let log = out.join("predictions/example-shape-colour__big.jsonl");
    let mut child = cmd(&out, "1", "8").spawn().unwrap();
    // Records are flushed every 64 samples; kill once a few chunks are in, well before the end.
    let mut polls = 0;
    while lines(&log) < 1 + 3 * 64 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
        polls += 1;
        assert!(polls < 60_000, "no records appeared in {}", log.display());
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush runs
    let status = child.wait().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }
    let kept = read_log(&log).map(|(_, r)| r.len()).unwrap_or(0);
    assert!(kept < n, "the run finished before the kill ({kept} of {n} records)");
    assert!(!out.join("result.json").exists());

    // Run the same command again: it resumes from the log (cutting a torn last line) and finishes.
    let o = cmd(&out, "1", "8").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, recs) = read_log(&log).unwrap();
    assert_eq!(recs.len(), n, "every sample exactly once");
    assert_eq!(recs.iter().map(|r| r.id.as_str()).collect::<HashSet<_>>().len(), n);

    // An uninterrupted run (other threads and batch, to boot) gives the same result.
    let clean = d.path().join("clean");
    assert!(cmd(&clean, "2", "32").output().unwrap().status.success());
    let a = RunResult::read(&out).unwrap();
    let b = RunResult::read(&clean).unwrap();
    assert_eq!(a.results, b.results);
    assert_eq!(a.results[0].totals.evaluated as usize, n);
}
