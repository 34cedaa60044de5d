//! Stored results, baselines and reports: the result file describes its run, `compare` flags
//! regressions beyond the tolerance (snapshot-tested tables in every format, one with a
//! regression in it), its exit codes, the report folder, and the SVG plots.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use shiftbench::report::compare::{compare, Tolerance, Verdict};
use shiftbench::report::plot::{plot_run, write_plots, PlotOptions};
use shiftbench::report::sinks::{render_comparison, render_run, Format};
use shiftbench::results::metrics::ClassCounts;
use shiftbench::results::result::{EvalResult, RunResult, RESULT_VERSION};
use shiftbench::results::tally::{ClassStatus, Tally};
use shiftbench::run::EvalOptions;
use shiftbench::{demo, run, RunSpec};

const WNIDS: [&str; 10] = [
    "n01440764",
    "n01443537",
    "n01484850",
    "n01491361",
    "n01494475",
    "n01496331",
    "n01498041",
    "n01514668",
    "n01514859",
    "n01518878",
];

/// A result from per-class (n, top-1, top-5) counts; LAION weights are Zipf-like over the classes.
fn result(model: &str, suite: &str, per_class: &[(u64, u64, u64)]) -> EvalResult {
    let mut t = Tally::default();
    for (w, &(n, top1, top5)) in WNIDS.iter().zip(per_class) {
        t.counts.insert(w.to_string(), ClassCounts { n, top1, top5 });
        let st = ClassStatus { expected: n, evaluated: n, failed: 0, missing: 0 };
        t.status.insert(w.to_string(), st);
        t.total.expected += n;
        t.total.evaluated += n;
    }
    let weights: BTreeMap<String, f64> =
        WNIDS.iter().enumerate().map(|(i, w)| (w.to_string(), 1.0 / (i as f64 + 1.0))).collect();
    EvalResult::from_tally(model, suite, "frequency", &t, &weights)
}

/// The same accuracy in every class.
fn flat(n: u64, top1: u64, top5: u64) -> Vec<(u64, u64, u64)> {
    vec![(n, top1, top5); 10]
}

/// A result as a fixed shiftbench version wrote it (so snapshots survive version bumps).
fn stored(results: Vec<EvalResult>) -> RunResult {
    RunResult { shiftbench_version: "9.9.9".into(), ..RunResult::new(results) }
}

fn baseline() -> RunResult {
    stored(vec![
        result("resnet-50", "imagenet-val", &flat(50, 38, 46)),
        result("resnet-50", "laionet", &flat(400, 280, 360)),
        result("vit-b16", "imagenet-val", &flat(50, 40, 48)),
        result("vit-b16", "laionet", &flat(400, 300, 370)),
        result("retired-model", "imagenet-val", &flat(50, 30, 44)),
    ])
}

/// resnet-50: unchanged. vit-b16: loses 8 points top-1 on laionet but the most frequent class
/// (a regression), gains 2 points on ImageNet (noise at n = 50 per class). retired-model is gone;
/// new-model is new.
fn new_result() -> RunResult {
    let mut laion = flat(400, 268, 368);
    laion[0] = (400, 300, 370); // the most frequent class keeps its accuracy
    stored(vec![
        result("resnet-50", "imagenet-val", &flat(50, 38, 46)),
        result("resnet-50", "laionet", &flat(400, 281, 360)),
        result("vit-b16", "imagenet-val", &flat(50, 41, 48)),
        result("vit-b16", "laionet", &laion),
        result("new-model", "laionet", &flat(400, 320, 380)),
    ])
}

fn comparison() -> shiftbench::report::compare::Comparison {
    compare(
        &baseline(),
        &new_result(),
        "nightly/2024-05-01/result.json",
        "nightly/2024-05-02/result.json",
        Tolerance::default(),
    )
}

#[test]
fn comparison_verdicts() {
    let c = comparison();
    assert_eq!(c.pairs.len(), 4);
    let vit_laion = c.pairs.iter().find(|p| p.model == "vit-b16" && p.suite == "laionet").unwrap();
    let verdicts: Vec<Verdict> = vit_laion.metrics.iter().map(|m| m.verdict).collect();
    assert_eq!(verdicts[0], Verdict::Regression, "{vit_laion:?}");
    assert_eq!(verdicts[2], Verdict::Regression);
    assert_eq!(verdicts[1], Verdict::Unchanged, "a 0.5-point top-5 drop is noise");
    assert!(c.pairs.iter().filter(|p| p.model == "resnet-50").all(|p| p.regressions().count() == 0));
    assert_eq!(c.regressions(), 2);
    assert_eq!(c.only_in_baseline.len(), 1);
    assert_eq!(c.only_in_new[0].model, "new-model");
    // A stricter tolerance in se still needs the absolute floor: with a 10-point floor, no regression.
    let lax = compare(&baseline(), &new_result(), "a", "b", Tolerance { se: 3.0, min_drop: 0.10 });
    assert_eq!(lax.regressions(), 0);
    // The same result is never a regression of itself.
    assert_eq!(compare(&baseline(), &baseline(), "a", "a", Tolerance::default()).regressions(), 0);
}

#[test]
fn regression_table_snapshots() {
    let c = comparison();
    insta::assert_snapshot!("compare_table", render_comparison(&c, Format::Table).unwrap());
    insta::assert_snapshot!("compare_markdown", render_comparison(&c, Format::Markdown).unwrap());
    insta::assert_snapshot!("compare_csv", render_comparison(&c, Format::Csv).unwrap());
    insta::assert_snapshot!("compare_junit", render_comparison(&c, Format::Junit).unwrap());
    let json: serde_json::Value = serde_json::from_str(&render_comparison(&c, Format::Json).unwrap()).unwrap();
    assert_eq!(json["pairs"][3]["metrics"][0]["verdict"], "regression");
    assert_eq!(json["only_in_baseline"][0]["model"], "retired-model");
}

/// Two runs of a model on the same 12 samples of 3 classes, as predictions logs in run folders,
/// compared sample by sample: every format shows the paired test.
#[test]
fn paired_comparison_snapshots() {
    use shiftbench::results::predlog::{LogHeader, LogWriter, Record, Status, LOG_VERSION};
    let d = tempfile::tempdir().unwrap();
    let classes = ["n01440764", "n01443537", "n01484850"];
    // Baseline right on samples 0..9; the new run loses 0, 1, 2 and 4, and gains 10.
    let right = |new: bool, i: usize| if new { !matches!(i, 0 | 1 | 2 | 4) && i != 11 } else { i < 10 };
    let mut results = Vec::new();
    for (side, new) in [("base", false), ("new", true)] {
        let dir = d.path().join(side);
        let header = LogHeader {
            shiftbench_log: LOG_VERSION,
            model: "resnet-50".into(),
            suite: "imagenet-val".into(),
            suite_digest: "abc123".into(),
            labels_digest: "def456".into(),
            shard: None,
            identity: None,
        };
        let log = shiftbench::log_path(&dir, "resnet-50", "imagenet-val");
        let (mut w, _) = LogWriter::open(&log, &header, true).unwrap();
        let mut records = Vec::new();
        for i in 0..12 {
            let wnid = classes[i % 3].to_string();
            let other = classes[(i + 1) % 3].to_string();
            let top = if right(new, i) { vec![wnid.clone(), other] } else { vec![other, wnid.clone()] };
            let r = Record {
                id: format!("img{i:02}.JPEG"),
                wnid,
                status: Status::Ok,
                top,
                scores: vec![0.9, 0.1],
                error: None,
                embedding: vec![],
                image: None,
            };
            w.write(&r).unwrap();
            records.push(r);
        }
        w.flush().unwrap();
        let tally = Tally::from_records(&records);
        let weights: BTreeMap<String, f64> = classes.iter().map(|c| (c.to_string(), 1.0)).collect();
        let run = stored(vec![EvalResult::from_tally("resnet-50", "imagenet-val", "frequency", &tally, &weights)]);
        run.write(&dir.join("result.json")).unwrap();
        results.push((dir.join("result.json"), run));
    }
    let mut c = compare(
        &results[0].1,
        &results[1].1,
        results[0].0.to_str().unwrap(),
        results[1].0.to_str().unwrap(),
        Tolerance::default(),
    );
    let p = c.pairs[0].paired.as_ref().expect("both logs are beside their results");
    assert_eq!((p.samples, p.top1.right_to_wrong, p.top1.wrong_to_right), (12, 4, 1));
    // Paths of the temporary folders out of the snapshots.
    (c.baseline.path, c.new.path) = ("nightly/2024-05-01/result.json".into(), "nightly/2024-05-02/result.json".into());
    insta::assert_snapshot!("paired_table", render_comparison(&c, Format::Table).unwrap());
    insta::assert_snapshot!("paired_markdown", render_comparison(&c, Format::Markdown).unwrap());
    insta::assert_snapshot!("paired_csv", render_comparison(&c, Format::Csv).unwrap());
    insta::assert_snapshot!("paired_junit", render_comparison(&c, Format::Junit).unwrap());
    insta::assert_snapshot!("paired_json", render_comparison(&c, Format::Json).unwrap());
}

#[test]
fn run_report_snapshots() {
    let mut r = new_result();
    // One model with a failed and a missing sample, as a real folder has.
    let e = &mut r.results[0];
    e.totals.failed = 1;
    e.totals.missing = 1;
    e.totals.expected += 2;
    e.problems = vec![
        shiftbench::results::result::Problem { id: "n01440764/broken.JPEG".into(), reason: "truncated JPEG".into() },
        shiftbench::results::result::Problem { id: "n01440764/gone.JPEG".into(), reason: "does not exist".into() },
    ];
    insta::assert_snapshot!("run_markdown", render_run(&r, Format::Markdown).unwrap());
    insta::assert_snapshot!("run_csv", render_run(&r, Format::Csv).unwrap());
    insta::assert_snapshot!("run_junit", render_run(&r, Format::Junit).unwrap());
    let back: RunResult = serde_json::from_str(&render_run(&r, Format::Json).unwrap()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn older_results_still_read() {
    let d = tempfile::tempdir().unwrap();
    let mut v = serde_json::to_value(baseline()).unwrap();
    v["shiftbench_result"] = 1.into();
    v.as_object_mut().unwrap().remove("run");
    // Fields a later version might add are ignored.
    v["something_new"] = "ignored".into();
    let p = d.path().join("result.json");
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    let r = RunResult::read(d.path()).unwrap(); // a folder reads its result.json
    assert_eq!(r.results, baseline().results);
    std::fs::write(&p, b"{\"results\": []}").unwrap();
    assert!(RunResult::read(&p).unwrap_err().to_string().contains("not a shiftbench result"));
}

fn demo_run(dir: &Path) -> RunResult {
    let suites = demo::generate(&dir.join("suites")).unwrap();
    let lib = common::plugin_lib("shiftbench_example");
    run(&RunSpec {
        suites: vec![suites.imagenet, suites.laionet],
        models: vec![lib.to_string_lossy().into_owned()],
        out: dir.join("out"),
        eval: EvalOptions { batch: 16, threads: 2, ..Default::default() },
        fresh: true,
        ..RunSpec::default()
    })
    .unwrap()
}

#[test]
fn a_stored_result_describes_its_run_and_compare_exits_by_verdict() {
    let d = tempfile::tempdir().unwrap();
    let r = demo_run(d.path());
    let stored = RunResult::read(&d.path().join("out/result.json")).unwrap();
    assert_eq!(stored, r);
    assert_eq!(stored.shiftbench_result, RESULT_VERSION);
    let info = stored.run.as_ref().unwrap();
    assert!(!info.id.is_empty() && info.started_at.ends_with('Z') && info.finished_at.is_some());
    assert_eq!((info.threads, info.batch), (Some(2), Some(16)));
    let m = &info.models[0];
    let lib = common::plugin_lib("shiftbench_example");
    let (bytes, sha) = shiftbench::util::digest::sha256_file(&lib).unwrap();
    assert_eq!((m.library.bytes, m.library.sha256.as_deref()), (Some(bytes), Some(sha.as_str())));
    assert_eq!((m.card.labels, m.batch), (10, 16));
    assert!(m.plugin.starts_with("shiftbench-example-plugin"));
    let s = &info.suites[1];
    assert_eq!((s.name.as_str(), s.samples, s.classes), ("laionet-like", 429, 10));
    assert_eq!(s.definition, std::fs::read_to_string(d.path().join("suites/laionet-like.yaml")).unwrap());
    assert_eq!(s.content_digest.len(), 64);
    // Built from git, the revision is recorded (a 40-digit hash).
    if let Some(rev) = &info.git_revision {
        assert_eq!(rev.len(), 40, "{rev}");
    }

    // compare via the CLI: 0 against itself, 1 on a regression, 2 on an error.
    let out = d.path().join("out/result.json");
    let cli = |args: &[&str]| Command::new(common::shiftbench_bin()).args(args).output().unwrap();
    let o = cli(&["compare", out.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no regression in 2 model/suite pairs"));
    let mut worse = stored.clone();
    let laion = &mut worse.results[1];
    let counts: BTreeMap<String, ClassCounts> = laion
        .per_class
        .iter()
        .map(|(w, c)| (w.clone(), ClassCounts { top1: c.counts.top1 * 3 / 4, ..c.counts }))
        .collect();
    let weights: BTreeMap<String, f64> = laion.per_class.iter().map(|(w, c)| (w.clone(), c.weight)).collect();
    let tally = Tally {
        counts,
        status: laion.per_class.iter().map(|(w, c)| (w.clone(), c.status)).collect(),
        total: laion.totals,
        problems: vec![],
    };
    *laion = EvalResult::from_tally(&laion.model, &laion.suite, &laion.weights, &tally, &weights);
    let worse_path = d.path().join("worse.json");
    worse.write(&worse_path).unwrap();
    let reports = d.path().join("reports");
    let o = cli(&[
        "compare",
        out.to_str().unwrap(),
        worse_path.to_str().unwrap(),
        "--format",
        "markdown",
        "--report-dir",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.starts_with("### shiftbench: 2 regressions"), "{md}");
    for f in ["compare.txt", "compare.md", "compare.csv", "compare.json", "compare.junit.xml"] {
        assert!(reports.join(f).is_file(), "{f} missing");
    }
    let junit = std::fs::read_to_string(reports.join("compare.junit.xml")).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&junit).unwrap();
    assert_eq!(parsed.failures, 1, "{junit}");
    let failed = parsed.test_suites[0]
        .test_cases
        .iter()
        .find(|c| matches!(c.status, quick_junit::TestCaseStatus::NonSuccess { .. }));
    assert!(
        matches!(&failed.unwrap().status, quick_junit::TestCaseStatus::NonSuccess { ty: Some(t), .. } if t.as_str() == "regression"),
        "{junit}"
    );
    // A loose tolerance lets it pass.
    let o = cli(&["compare", out.to_str().unwrap(), worse_path.to_str().unwrap(), "--min-drop", "0.5"]);
    assert_eq!(o.status.code(), Some(0));
    let o = cli(&["compare", out.to_str().unwrap(), d.path().join("nope.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope.json"));

    // run --baseline: the same run again is no regression, and --report-dir writes the run's
    // reports and plots as well as the comparison's.
    let lib = lib.to_str().unwrap().to_string();
    let suites = d.path().join("suites");
    let again = d.path().join("again");
    let o = cli(&[
        "run",
        "--suite",
        suites.join("imagenet-like.yaml").to_str().unwrap(),
        "--suite",
        suites.join("laionet-like.yaml").to_str().unwrap(),
        "--model",
        &lib,
        "--out",
        again.to_str().unwrap(),
        "--baseline",
        out.to_str().unwrap(),
        "--report-dir",
        again.join("reports").to_str().unwrap(),
        "--threads",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(!stdout.contains("REGRESSION") && stdout.contains("no regression"), "{stdout}");
    for f in [
        "run.txt",
        "run.md",
        "run.csv",
        "run.json",
        "run.junit.xml",
        "run.per-class.csv",
        "compare.md",
        "plots/shift-top1-equal.svg",
    ] {
        assert!(again.join("reports").join(f).is_file(), "{f} missing");
    }
    let o = cli(&[
        "run",
        "--suite",
        suites.join("laionet-like.yaml").to_str().unwrap(),
        "--model",
        &lib,
        "--out",
        again.to_str().unwrap(),
        "--baseline",
        worse_path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    // Against the doctored (worse) baseline, the real run is an improvement; imagenet-like is
    // reported as only in the baseline. stdout holds one JSON document: the comparison.
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let c: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(c["only_in_baseline"][0]["suite"], "imagenet-like");
    assert_eq!(c["pairs"][0]["metrics"][0]["verdict"], "improved");
}

fn svg_text(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(s.contains("<svg") && s.trim_end().ends_with("</svg>"), "{} is not an SVG", p.display());
    s
}

#[test]
fn plots_of_a_run_and_of_many_models() {
    let d = tempfile::tempdir().unwrap();
    // Six models on two suites, as a nightly over a model zoo would have.
    let mut results = Vec::new();
    for (i, m) in ["resnet-18", "resnet-50", "vit-b16", "vit-l16", "convnext-t", "beit-b16"].iter().enumerate() {
        let i = i as u64;
        results.push(result(m, "imagenet-val", &flat(50, 34 + i, 45 + i / 2)));
        let per: Vec<(u64, u64, u64)> =
            (0..10).map(|c| (400 - 30 * c, (240 + 12 * i) - 20 * c, 395 - 30 * c)).collect();
        results.push(result(m, "laionet", &per));
    }
    let r = stored(results);
    let plots = plot_run(&r, &PlotOptions::default()).unwrap();
    assert!(plots.skipped.is_empty(), "{:?}", plots.skipped);
    // Two shift plots and equal-vs-LAION, a per-class plot per model and suite, a class-gap
    // histogram per model.
    assert_eq!(plots.plots.len(), 3 + 12 + 6);
    write_plots(&plots.plots, &d.path().join("plots")).unwrap();
    svg_text(&d.path().join("plots/class-gaps/vit-b16__imagenet-val__laionet.svg"));
    let fig1 = svg_text(&d.path().join("plots/shift-top1-equal.svg"));
    assert!(fig1.contains("vit-l16") && fig1.contains("y = x") && fig1.contains("imagenet-val recall (%)"), "{fig1}");
    svg_text(&d.path().join("plots/shift-top1-laion.svg"));
    svg_text(&d.path().join("plots/equal-vs-laion.svg"));
    let pc = svg_text(&d.path().join("plots/per-class/vit-b16__laionet.svg"));
    assert!(pc.contains("LAION frequency"), "{pc}");

    // One suite: no shift plot, and it says why.
    let one = RunResult::new(r.results.iter().filter(|e| e.suite == "laionet").cloned().collect());
    let plots = plot_run(&one, &PlotOptions::default()).unwrap();
    assert!(plots.skipped.iter().any(|(_, s)| s.contains("need two suites")), "{:?}", plots.skipped);

    // The CLI on the demo's result.
    let demo = demo_run(&d.path().join("demo"));
    demo.write(&d.path().join("demo.json")).unwrap();
    let o = Command::new(common::shiftbench_bin())
        .args([
            "plot",
            d.path().join("demo.json").to_str().unwrap(),
            "--out",
            d.path().join("demo-plots").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let fig1 = svg_text(&d.path().join("demo-plots/shift-top1-laion.svg"));
    assert!(fig1.contains("example-shape-colour") && fig1.contains("laionet-like recall (%)"));
}

#[test]
fn per_class_plots_of_the_papers_thirty_models() {
    let Some(data) = common::shared_data("per_class_plots_of_the_papers_thirty_models") else { return };
    let p = data.join("paper");
    let d = tempfile::tempdir().unwrap();
    let json = d.path().join("paper.json");
    let o = Command::new(common::shiftbench_bin())
        .args(["score", "--results"])
        .arg(p.join("ILSVRC2012_val.parquet"))
        .arg("--labels")
        .arg(p.join("ilsvrc2012_val_labels.tsv"))
        .arg("--weights-table")
        .arg(p.join("laion400m_substring_match_counts_2023-03_c766577.tsv"))
        .args(["--weight-column", "substring_match_count_all_32_parts", "--format", "csv", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1 + 30 * 4);
    let r = RunResult::read(&json).unwrap();
    assert_eq!(r.results.len(), 30);
    assert_eq!(r.run.as_ref().unwrap().inputs.len(), 3);
    let plots = plot_run(&r, &PlotOptions::default()).unwrap();
    // Equal- vs LAION-weighted and a per-class plot per model; one suite, so also the models'
    // recall with its interval and a per-class recall histogram per model.
    assert_eq!(plots.plots.len(), 1 + 30 + 1 + 30, "{:?}", plots.skipped);
    write_plots(&plots.plots, &d.path().join("plots")).unwrap();
    let dots = svg_text(&d.path().join("plots/recall-ILSVRC2012_val.svg"));
    assert!(dots.contains("vit-base-patch16-224") && dots.contains("LAION-weighted"), "{dots}");
    let pc = svg_text(&d.path().join("plots/per-class/vit-base-patch16-224__ILSVRC2012_val.svg"));
    assert!(pc.contains("classes with LAION weight 0 not shown") && pc.contains("mean recall of ten frequency bins"));
}

/// The table lines of `text` (those drawn with the table's box characters), in characters.
fn table_widths(text: &str) -> Vec<usize> {
    text.lines().filter(|l| l.starts_with(['│', '┌', '╞', '├', '└'])).map(|l| l.trim_end().chars().count()).collect()
}

/// Terminal tables fit the terminal: under a terminal 80 columns wide (`script` gives the command
/// one) every line of the tables of `compare` and `history` is at most 80 characters, cells
/// wrapped; piped, the same commands print the tables at full width, exactly as the report
/// folder's files hold them.
#[test]
fn terminal_tables_fit_the_terminal_and_pipes_get_full_width() {
    if Command::new("script").arg("--version").output().is_err() {
        println!("SKIPPED terminal_tables_fit_the_terminal_and_pipes_get_full_width: no `script` command");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let r = demo_run(&d.path().join("demo"));
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    r.write(&a.join("result.json")).unwrap();
    r.write(&b.join("result.json")).unwrap();
    let bin = common::shiftbench_bin();
    for (cmd, file) in [("compare", "compare.txt"), ("history", "history.txt")] {
        let reports = d.path().join(format!("{cmd}-reports"));
        let o = Command::new(&bin).arg(cmd).arg(&a).arg(&b).arg("--report-dir").arg(&reports).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let piped = String::from_utf8(o.stdout).unwrap();
        assert_eq!(piped, std::fs::read_to_string(reports.join(file)).unwrap(), "{cmd}: piped = {file}");
        let full = table_widths(&piped);
        assert!(full.iter().max().copied().unwrap_or(0) > 100, "{cmd}: the full table is wide: {full:?}");
        let line = format!("stty cols 80; '{}' {cmd} '{}' '{}'", bin.display(), a.display(), b.display());
        let o = Command::new("script").args(["-qec", &line, "/dev/null"]).output().unwrap();
        let tty = String::from_utf8_lossy(&o.stdout).replace('\r', "");
        let fitted = table_widths(&tty);
        assert!(!fitted.is_empty(), "{cmd}: no table under a terminal: {tty}");
        assert!(fitted.iter().all(|w| *w <= 80), "{cmd}: wider than the terminal: {fitted:?}\n{tty}");
        assert!(fitted.len() > full.len(), "{cmd}: cells wrap onto more lines\n{tty}");
    }
}
