//! `shiftbench history`: a series of nightly runs, each judged against the one before it (paired
//! through the logs), the first regression named, the newest run's verdict in the exit status,
//! runs named by the paths given, every format and the trend plots.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shiftbench::report::compare::Verdict;
use shiftbench::report::history::History;

fn shiftbench(args: &[&str]) -> Output {
    Command::new(common::shiftbench_bin()).args(args).current_dir(common::repo()).output().unwrap()
}

fn history(runs: &[&Path], extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args: Vec<&str> = vec!["history"];
    args.extend(runs.iter().map(|p| p.to_str().unwrap()));
    args.extend(extra);
    let o = shiftbench(&args);
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn a_series_of_nightly_runs() {
    let d = tempfile::tempdir().unwrap();
    let suites = shiftbench::demo::generate(&d.path().join("suites")).unwrap();
    let lib = common::plugin_lib("shiftbench_example");
    let night0 = d.path().join("night0");
    let o = shiftbench(&[
        "run",
        "--suite",
        suites.laionet.to_str().unwrap(),
        "--model",
        lib.to_str().unwrap(),
        "--out",
        night0.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log: PathBuf = std::fs::read_dir(night0.join("predictions")).unwrap().next().unwrap().unwrap().path();
    // Night 1: a few flips each way (noise); night 2: 80 right answers lost; night 3: the same
    // predictions as night 2.
    let night1 = common::flipped_run(&log, &d.path().join("night1"), 4, 4);
    let night2 = common::flipped_run(&log, &d.path().join("night2"), 80, 0);
    let night3 = d.path().join("night3");
    std::fs::create_dir_all(&night3).unwrap();
    std::fs::copy(night2.join("edited.jsonl"), night3.join("edited.jsonl")).unwrap();
    let o = shiftbench(&[
        "score",
        "--log",
        night3.join("edited.jsonl").to_str().unwrap(),
        "--json",
        night3.join("result.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Up to night 2: the newest run regressed, exit 1, and night 2 is named.
    let (code, out, err) = history(&[&night0, &night1, &night2], &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("REGRESSION (paired) <- first regression"), "{out}");
    assert!(out.contains("first regressed in") && out.contains("the newest run regressed in 1 series"), "{out}");
    // Each run is named by the path it was given as (its start time beside it), and the first
    // regression by night 2's.
    for n in [&night0, &night1, &night2] {
        assert!(out.contains(&format!("┆ {} ┆", n.display())), "{} not named in:\n{out}", n.display());
    }
    assert!(out.contains(&format!("first regressed in {}", night2.display())), "{out}");
    // Up to night 3: the regression is history, the newest run is ok against night 2.
    let (code, json, err) = history(&[&night0, &night1, &night2, &night3], &["--format", "json"]);
    assert_eq!(code, Some(0), "{json}{err}");
    let h: History = serde_json::from_str(&json).unwrap();
    assert_eq!(h.runs.len(), 4);
    let s = &h.series[0];
    assert_eq!(s.first_regression, Some(2));
    let verdicts: Vec<Option<Verdict>> = s.points.iter().map(|p| p.verdict).collect();
    assert_eq!(verdicts, [None, Some(Verdict::Unchanged), Some(Verdict::Regression), Some(Verdict::Unchanged)]);
    assert!(s.points[1..].iter().all(|p| p.test.as_deref() == Some("paired")));
    assert!(s.points[2].change.unwrap().value < -0.05);
    // The speed of a run is in its point (night 0 ran the model; the others were scored from logs).
    assert!(s.points[0].images_per_second.is_some_and(|v| v > 0.0) && s.points[0].model_ms_per_image.is_some());
    assert!(s.points[1].images_per_second.is_none());
    // Every format, the report folder and the trend plot.
    let reports = d.path().join("reports");
    let (_, md, _) = history(
        &[&night0, &night1, &night2, &night3],
        &["--format", "markdown", "--report-dir", reports.to_str().unwrap()],
    );
    assert!(md.starts_with("### shiftbench history") && md.contains("first regression"), "{md}");
    let (_, csv, _) = history(&[&night0, &night1, &night2, &night3], &["--format", "csv"]);
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.lines().nth(3).unwrap().contains(",regression,paired,true"), "{csv}");
    for f in ["history.txt", "history.md", "history.csv", "history.json", "plots/history-laionet-like.svg"] {
        assert!(reports.join(f).is_file(), "{f} missing");
    }
    // The page names the runs by their paths too (escaped as the page escapes every string).
    let page = std::fs::read_to_string(reports.join("report.html")).unwrap();
    for n in [&night0, &night1, &night2, &night3] {
        assert!(page.contains(&n.display().to_string().replace('/', "&#x2f;")), "{} not on the page", n.display());
    }
    let svg = std::fs::read_to_string(reports.join("plots/history-laionet-like.svg")).unwrap();
    assert!(svg.contains("example-shape-colour") && svg.contains("<circle"), "a line per model, the regression ringed");
    // A missing folder is an error naming it.
    let (code, _, err) = history(&[&night0, &d.path().join("night9")], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("night9") && err.contains("does not exist"), "{err}");
}
