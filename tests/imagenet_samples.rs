//! The whole pipeline over the 1,000 real ImageNet photos in ../shared/data/imagenet-samples
//! (label = the wnid prefix of each file name), with the example plugin, through the CLI.

mod common;

use std::process::Command;

use shiftbench::results::predlog::{read_log, Status};
use shiftbench::RunResult;

#[test]
fn example_plugin_over_real_photos_via_the_cli() {
    let Some(data) = common::shared_data("imagenet_samples") else { return };
    let d = tempfile::tempdir().unwrap();
    // The suite, plus a table suite with the broken inputs a real folder has.
    let suite = d.path().join("samples.yaml");
    std::fs::write(
        &suite,
        format!("name: imagenet-samples\nsource:\n  files: {}\n", data.join("imagenet-samples").display()),
    )
    .unwrap();
    let bad = d.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let good = std::fs::read(data.join("imagenet-samples/n01440764_tench.JPEG")).unwrap();
    std::fs::write(bad.join("truncated.JPEG"), &good[..good.len() / 3]).unwrap();
    std::fs::write(bad.join("empty.JPEG"), b"").unwrap();
    std::fs::write(bad.join("ok.JPEG"), &good).unwrap();
    std::fs::write(
        bad.join("labels.csv"),
        "path,wnid\ntruncated.JPEG,n01440764\nempty.JPEG,n01440764\nmissing.JPEG,n01440764\nok.JPEG,n01440764\nok.JPEG2,notawnid\n",
    )
    .unwrap();
    std::fs::copy(bad.join("ok.JPEG"), bad.join("ok.JPEG2")).unwrap();
    let bad_suite = d.path().join("bad.yaml");
    std::fs::write(&bad_suite, "name: broken\nsource:\n  table: bad/labels.csv\n").unwrap();

    let out = d.path().join("out");
    let lib = common::plugin_lib("shiftbench_example");
    let run = |extra: &[&str]| {
        let mut c = Command::new(common::shiftbench_bin());
        c.args(["run", "--suite"]).arg(&suite).args(["--suite"]).arg(&bad_suite);
        c.args(["--model"]).arg(&lib).args(["--out"]).arg(&out).args(extra);
        c.output().unwrap()
    };
    let o = run(&["--threads", "2", "--fresh"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    // The table shows expected / evaluated / failed / missing per suite.
    let row = |suite: &str| -> Vec<String> {
        let line = stdout.lines().find(|l| l.contains(&format!(" {suite} "))).unwrap_or("");
        line.split(['│', '┆']).map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()
    };
    assert_eq!(row("imagenet-samples")[2..6], ["1000", "1000", "0", "0"], "{stdout}");
    assert_eq!(row("broken")[2..6], ["5", "1", "3", "1"], "{stdout}");
    let r: RunResult = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    let real = &r.results[0];
    assert_eq!((real.totals.expected, real.totals.evaluated, real.totals.failed), (1000, 1000, 0));
    assert_eq!(real.classes_present, 1000);
    assert!(real.per_class.values().all(|c| c.counts.n == 1));
    let broken = &r.results[1];
    assert_eq!((broken.totals.failed, broken.totals.missing), (3, 1));
    let reasons: Vec<&str> = broken.problems.iter().map(|p| p.reason.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("empty file")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("not a WordNet id")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("truncated JPEG")), "{reasons:?}");
    // Every photo has a record with five predictions from the model's labels.
    let (_, recs) = read_log(&out.join("predictions/example-shape-colour__imagenet-samples.jsonl")).unwrap();
    assert_eq!(recs.len(), 1000);
    assert!(recs.iter().all(|r| r.status == Status::Ok && r.top.len() == 5));

    // Running again resumes: nothing is re-evaluated and the result is the same, with one
    // decode thread this time. --strict fails naming the broken samples.
    let o = run(&["--threads", "1", "--strict"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--strict: 4 samples failed or are missing") && err.contains("missing.JPEG"), "{err}");
    let r2: RunResult = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r2.results, r.results);
    let (_, recs2) = read_log(&out.join("predictions/example-shape-colour__imagenet-samples.jsonl")).unwrap();
    assert_eq!(recs2.len(), 1000);
}
