//! Ctrl-C stops `shiftbench run` cleanly: it exits with status 130 saying how to resume, the
//! predictions log keeps every batch evaluated so far, and running the same command again
//! evaluates only the rest.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shiftbench::results::predlog::{read_log, read_log_lenient};
use shiftbench::RunResult;

#[test]
fn sigint_stops_after_the_batch_and_the_run_resumes() {
    let d = tempfile::tempdir().unwrap();
    let suite = common::synthetic_suite(d.path(), "shapes", 4);
    let lib = common::plugin_lib("shiftbench_misbehave");
    let model = |name: &str, behave: &str| {
        let y = d.path().join(format!("{name}.yaml"));
        std::fs::write(
            &y,
            format!("plugin: {}\nname: {name}\npreprocess: {{resize: 32, crop: 32}}\noptions: {{behave: {behave}, sleep_ms: 150}}\n", lib.display()),
        )
        .unwrap();
        y
    };
    // Two images per batch, 150 ms each: about three seconds for the suite.
    let slow = model("slow", "slow");
    let out = d.path().join("out");
    let cmd = || {
        let mut c = Command::new(common::shiftbench_bin());
        c.args(["run", "--batch", "2", "--threads", "1", "--suite"])
            .arg(&suite)
            .arg("--model")
            .arg(&slow)
            .arg("--out")
            .arg(&out);
        c
    };
    let log = out.join("predictions/slow__shapes.jsonl");
    let mut child = cmd().stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Wait until the run has written at least one batch, then press Ctrl-C.
    let start = Instant::now();
    loop {
        let n = read_log_lenient(&log).map(|(_, r, _)| r.len()).unwrap_or(0);
        if n >= 2 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "the run wrote nothing");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be interrupted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("Ctrl-C: stopping after the batch in flight"), "{err}");
    assert!(
        err.contains("interrupted: ") && err.contains("run the same command again (without --fresh) to resume"),
        "{err}"
    );
    assert!(!out.join("result.json").exists(), "an interrupted run writes no result");
    // The log reads strictly: every record is whole, and it holds part of the suite.
    let (_, kept) = read_log(&log).unwrap();
    assert!(kept.len() >= 2 && kept.len() < 40, "{} records", kept.len());
    assert!(err.contains(&format!("{} of 40 samples are saved in", kept.len())), "{err}");

    // The same command resumes and evaluates only the rest.
    let o = cmd().output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, all) = read_log(&log).unwrap();
    assert_eq!(all.len(), 40, "nothing was evaluated twice");
    assert_eq!(&all[..kept.len()], &kept[..]);
    let r: RunResult = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r.results[0].totals.evaluated, 40);

    // And the numbers are those of an uninterrupted run of the same model.
    let fast = model("fast", "good");
    let o = Command::new(common::shiftbench_bin())
        .args(["run", "--suite"])
        .arg(&suite)
        .arg("--model")
        .arg(&fast)
        .arg("--out")
        .arg(d.path().join("out2"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let r2: RunResult = serde_json::from_slice(&std::fs::read(d.path().join("out2/result.json")).unwrap()).unwrap();
    assert_eq!((&r.results[0].metrics, &r.results[0].per_class), (&r2.results[0].metrics, &r2.results[0].per_class));
}
