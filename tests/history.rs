//! `shiftbench history`: a series of nightly runs, each judged against the one before it (paired
//! through the logs), the first regression named, the newest run's verdict in the exit status,
//! runs named by the paths given, every format and the trend plots; and the README's nightly job,
//! run as written for three nights from an empty folder.

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
    let night0 = common::example_run_on_demo(d.path(), "night0");
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

/// The shell script between the README's `nightly-job` markers, as written there.
fn readme_nightly_job() -> String {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    let begin = readme.find("<!-- nightly-job: begin").expect("README.md lost its nightly-job begin marker");
    let end = begin + readme[begin..].find("<!-- nightly-job: end -->").expect("no nightly-job end marker");
    let blocks = common::fenced_blocks(&readme[begin..end], "sh");
    assert_eq!(blocks.len(), 1, "one sh block between the nightly-job markers");
    blocks[0].clone()
}

/// `script` with `from` replaced by `to`; `from` must be there (so the README cannot drift).
fn adapt(script: &str, from: &str, to: &str) -> String {
    assert!(script.contains(from), "the README's nightly job no longer has {from:?}:\n{script}");
    script.replace(from, to)
}

#[test]
fn the_readme_nightly_job_works_from_the_first_night() {
    // Both plugins are found by name next to the shiftbench binary.
    common::plugin_lib("shiftbench_example");
    common::plugin_lib("shiftbench_misbehave");
    let d = tempfile::tempdir().unwrap();
    let suites = shiftbench::demo::generate(&d.path().join("suites")).unwrap();
    let (nights, model) = (d.path().join("nights"), d.path().join("model.yaml"));
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(common::shiftbench_bin(), bin.join("shiftbench")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    // Only the paths, the suites and the model are swapped for the test's.
    let job = adapt(&readme_nightly_job(), "NIGHTS=/srv/shiftbench/nights", &format!("NIGHTS={}", nights.display()));
    let job = adapt(
        &job,
        "--suite suites/imagenet-val.yaml --suite suites/laionet.yaml",
        &format!("--suite {} --suite {}", suites.imagenet.display(), suites.laionet.display()),
    );
    let job = adapt(
        &job,
        "--model models/resnet50.yaml --model models/vit-b16.yaml",
        &format!("--model {}", model.display()),
    );
    // The model: the example plugin; on night 2 a worse model under the same name (the misbehave
    // fixture behaving well, which guesses from the mean colour).
    let good = "plugin: example\nname: nightly-model\n";
    let worse = "plugin: misbehave\nname: nightly-model\npreprocess: {resize: 64, crop: 64}\noptions: {behave: good}\n";
    let night = |n: usize| nights.join(format!("2030-01-0{n}"));
    let history = nights.join("history");
    for (n, want_code, want_last_good) in [(1, 0, 1), (2, 1, 1), (3, 0, 3)] {
        std::fs::write(&model, if n == 2 { worse } else { good }).unwrap();
        let script = d.path().join("nightly.sh");
        std::fs::write(&script, adapt(&job, "$(date -u +%F)", &format!("2030-01-0{n}"))).unwrap();
        let o = Command::new("bash").arg(&script).env("PATH", &path).current_dir(d.path()).output().unwrap();
        let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.status.code(), Some(want_code), "night {n}:\n{out}\n{err}");
        assert_eq!(std::fs::read_link(nights.join("last-good")).unwrap(), night(want_last_good), "after night {n}");
        assert!(night(n).join("report/report.html").is_file(), "night {n}: no report page");
        assert_eq!(night(n).join("report/compare.html").is_file(), n > 1, "night {n}: compare.html");
        let trend = std::fs::read_to_string(history.join("history.txt")).unwrap();
        let named = format!("{}/result.json", night(n).display());
        assert!(trend.contains(&named), "night {n} not named in the history:\n{trend}");
        match n {
            1 => assert!(trend.contains("1 run, 2 model/suite series; nothing to compare with yet"), "{trend}"),
            2 => assert!(
                trend.contains(&format!("first regressed in {named}"))
                    && trend.contains("the newest run regressed in 2 series"),
                "{trend}"
            ),
            _ => assert!(trend.contains("3 runs") && trend.contains("the newest run did not regress"), "{trend}"),
        }
    }
    let page = std::fs::read_to_string(history.join("report.html")).unwrap();
    for n in 1..=3 {
        assert!(page.contains(&night(n).display().to_string().replace('/', "&#x2f;")), "night {n} not on the page");
    }
}

/// What changed in a model's card is named, not only that it did: two result files whose cards
/// differ in `channel_order` give `model card changed: channel_order rgb -> bgr` in compare's
/// notes, and history carries it on the point (the JSON), prints it under its table and shows it
/// beside the point on its page (escaped).
#[test]
fn history_and_compare_name_what_changed_in_a_card() {
    let d = tempfile::tempdir().unwrap();
    let night0 = common::example_run_on_demo(d.path(), "night0");
    // Night 1: the same result, its card's channel order flipped.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(night0.join("result.json")).unwrap()).unwrap();
    let pre = &mut json["run"]["models"][0]["card"]["preprocess"];
    assert_eq!(pre["channel_order"], "rgb", "{pre}");
    pre["channel_order"] = "bgr".into();
    let night1 = d.path().join("night1");
    std::fs::create_dir_all(&night1).unwrap();
    std::fs::write(night1.join("result.json"), serde_json::to_string(&json).unwrap()).unwrap();
    let night1_file = night1.join("result.json");

    let o = shiftbench(&["compare", night0.to_str().unwrap(), night1_file.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("model card changed: channel_order rgb -> bgr"), "{out}");

    let reports = d.path().join("reports");
    let (code, out, err) = history(&[&night0, &night1_file], &["--report-dir", reports.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let model = "example-shape-colour";
    let want =
        format!("{model} on laionet-like in {}: model card changed: channel_order rgb -> bgr", night1_file.display());
    let table_end = out.rfind('┘').expect("a table");
    assert!(out[table_end..].contains(&want), "under the table: {want}\n{out}");
    let (_, json, _) = history(&[&night0, &night1_file], &["--format", "json"]);
    let h: History = serde_json::from_str(&json).unwrap();
    let points = &h.series[0].points;
    assert!(points[0].notes.is_empty(), "{:?}", points[0].notes);
    assert_eq!(points[1].notes, ["model card changed: channel_order rgb -> bgr"]);
    let page = std::fs::read_to_string(reports.join("report.html")).unwrap();
    let row = page.split("<tr").filter(|r| r.contains("model card changed")).collect::<Vec<_>>();
    assert_eq!(row.len(), 1, "the note beside its point, once");
    assert!(row[0].contains("channel_order rgb -&gt; bgr") && row[0].contains(model), "{}", row[0]);
}

/// A night where one model fails to load still judges the others against the baseline: the
/// comparison is printed and written (compare.html, compare.junit.xml), and the night exits 3.
#[test]
fn a_model_that_fails_to_load_does_not_cost_the_others_their_comparison() {
    let d = tempfile::tempdir().unwrap();
    let night0 = common::example_run_on_demo(d.path(), "night0");
    let suites = shiftbench::demo::generate(&d.path().join("suites")).unwrap();
    let broken = d.path().join("broken.yaml");
    std::fs::write(&broken, "plugin: onnx\nmodel: gone.onnx\nname: broken\n").unwrap();
    let night1 = d.path().join("night1");
    let o = std::process::Command::new(common::shiftbench_bin())
        .arg("run")
        .arg("--suite")
        .arg(&suites.laionet)
        .arg("--model")
        .arg(common::plugin_lib("shiftbench_example"))
        .arg("--model")
        .arg(&broken)
        .arg("--out")
        .arg(&night1)
        .arg("--baseline")
        .arg(&night0)
        .arg("--report-dir")
        .arg(night1.join("report"))
        .current_dir(common::repo())
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(3), "{stdout}{stderr}");
    for f in ["compare.html", "compare.junit.xml", "run.json"] {
        assert!(night1.join("report").join(f).is_file(), "{f} not written\n{stdout}{stderr}");
    }
    let junit = std::fs::read_to_string(night1.join("report/compare.junit.xml")).unwrap();
    assert!(junit.contains("example-shape-colour"), "{junit}");
}
