//! The HTML report page (`report.html` of a `--report-dir`): every string from a suite, a model or
//! a log is escaped (a model named `<script>alert(1)</script>`, a sample id and an error message
//! `<img src=x onerror=alert(2)>`), plots are inlined and a hostile SVG is left out, the CLI writes
//! the page for a run and a comparison, and the page works in a real browser (headless Chromium:
//! every model, suite and plot is in the rendered DOM, the script ran, sorting works).
//!
//! The browser test installs Debian's chromium when it runs as root with apt-get and skips with
//! `SKIPPED report_page: ...` where it cannot. With `REPORT_PAGE_SCREENSHOTS=DIR` it also leaves
//! the pages and screenshots of them in DIR, to look at.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shiftbench::report::compare::{compare, Comparison, Tolerance};
use shiftbench::report::history::{build, trend_plots, History};
use shiftbench::report::html::{comparison_page, history_page, run_page};
use shiftbench::report::plot::{plot_run, Plot, PlotKey, PlotOptions};
use shiftbench::results::metrics::ClassCounts;
use shiftbench::results::predlog::{LogHeader, LogWriter, Record, Status, LOG_VERSION};
use shiftbench::results::provenance::{RunInfo, SuiteInfo};
use shiftbench::results::result::{EvalResult, Problem, RunResult};
use shiftbench::results::tally::{ClassStatus, Tally};

const XSS_MODEL: &str = "<script>alert(1)</script>";
const XSS_IMG: &str = "<img src=x onerror=alert(2)>";
const XSS_SUITE: &str = "laionet & <b>co</b>";
const MODELS: [&str; 3] = ["resnet-50", XSS_MODEL, "vit-b16 \"large\""];
const SUITES: [&str; 2] = ["imagenet-val", XSS_SUITE];

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
        t.status.insert(w.to_string(), ClassStatus { expected: n, evaluated: n, failed: 0, missing: 0 });
        t.total.expected += n;
        t.total.evaluated += n;
    }
    let weights: BTreeMap<String, f64> =
        WNIDS.iter().enumerate().map(|(i, w)| (w.to_string(), 1.0 / (i as f64 + 1.0))).collect();
    EvalResult::from_tally(model, suite, "frequency", &t, &weights)
}

/// Three models (one named like a script) on two suites (one with markup in its name); a failed
/// sample whose id is an `<img onerror>`, and a model that stopped with that as its error.
fn hostile_run() -> RunResult {
    let mut results = Vec::new();
    for (mi, m) in MODELS.iter().enumerate() {
        for (si, s) in SUITES.iter().enumerate() {
            let per: Vec<(u64, u64, u64)> =
                (0..10u64).map(|c| (40, 36 - 4 * si as u64 - 2 * mi as u64 - c, 39 - c)).collect();
            results.push(result(m, s, &per));
        }
    }
    let e = &mut results[0];
    e.totals.failed = 1;
    e.totals.expected += 1;
    e.per_class.get_mut(WNIDS[0]).unwrap().status.failed = 1;
    e.problems = vec![Problem { id: XSS_IMG.into(), reason: format!("cannot decode {XSS_IMG}: truncated & bad") }];
    let stopped = results[5].clone().with_error(format!("the model crashed: {XSS_IMG}"), 400);
    results[5] = stopped;
    let mut info = RunInfo::start("run");
    info.command = vec!["shiftbench".into(), "run".into(), "--model".into(), XSS_MODEL.into()];
    info.suites = vec![serde_json::from_value::<SuiteInfo>(serde_json::json!({
        "name": XSS_SUITE,
        "path": format!("suites/{XSS_IMG}.yaml"),
        "sha256": "0".repeat(64),
        "definition": "name: x",
        "content_digest": "ab".repeat(32),
        "samples": 400,
        "classes": 10,
        "weights": "frequency",
    }))
    .unwrap()];
    RunResult { shiftbench_version: "9.9.9".into(), ..RunResult::new(results) }.with_run(info)
}

/// The run's plots, drawn, for the page.
fn plots(run: &RunResult) -> Vec<Plot> {
    let p = plot_run(run, &PlotOptions::default()).unwrap();
    assert!(!p.plots.is_empty(), "{:?}", p.skipped);
    p.plots
}

/// Writes a predictions log of `model` on `suite` under `dir`: sample `i` of 12 (three classes)
/// is right when `right(i)`; ids are `<img ...>` markup.
fn write_log(dir: &Path, model: &str, suite: &str, right: impl Fn(usize) -> bool) -> Vec<Record> {
    let classes = ["n01440764", "n01443537", "n01484850"];
    let header = LogHeader {
        shiftbench_log: LOG_VERSION,
        model: model.into(),
        suite: suite.into(),
        suite_digest: "abc123".into(),
        labels_digest: "def456".into(),
        shard: None,
        identity: None,
    };
    let (mut w, _) = LogWriter::open(&shiftbench::log_path(dir, model, suite), &header, true).unwrap();
    let mut records = Vec::new();
    for i in 0..12 {
        let wnid = classes[i % 3].to_string();
        let other = classes[(i + 1) % 3].to_string();
        let top = if right(i) { vec![wnid.clone(), other] } else { vec![other, wnid.clone()] };
        let r = Record {
            id: format!("{i:02}-<img src=x onerror=alert({i})>.JPEG"),
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
    records
}

/// Two runs of the script-named model with predictions logs beside them (so the comparison is
/// paired and lists flipped samples): the new one loses four samples and gains one.
fn hostile_comparison(d: &Path) -> Comparison {
    let mut runs = Vec::new();
    for (side, new) in [("base", false), ("new", true)] {
        let dir = d.join(side);
        let records =
            write_log(&dir, XSS_MODEL, XSS_SUITE, |i| if new { !matches!(i, 0 | 1 | 2 | 4 | 11) } else { i < 10 });
        let tally = Tally::from_records(&records);
        let weights: BTreeMap<String, f64> = tally.counts.keys().map(|c| (c.clone(), 1.0)).collect();
        let run = RunResult::new(vec![EvalResult::from_tally(XSS_MODEL, XSS_SUITE, "frequency", &tally, &weights)]);
        run.write(&dir.join("result.json")).unwrap();
        runs.push((dir.join("result.json"), run));
    }
    let c = compare(
        &runs[0].1,
        &runs[1].1,
        runs[0].0.to_str().unwrap(),
        runs[1].0.to_str().unwrap(),
        Tolerance { se: 1.0, min_drop: 0.005 },
    );
    assert!(c.pairs[0].paired.is_some(), "{:?}", c.pairs[0].unpaired_because);
    c
}

/// Three nightly runs of the three models: the script-named one drops 8 points on the shifted
/// suite in the newest run. Returns the history and its trend plots (title, SVG).
fn hostile_history() -> (History, Vec<Plot>) {
    let runs: Vec<(String, RunResult)> = (0..3u64)
        .map(|night| {
            let mut results = Vec::new();
            for (mi, m) in MODELS.iter().enumerate() {
                for (si, s) in SUITES.iter().enumerate() {
                    let drop = if night == 2 && mi == 1 && si == 1 { 16 } else { 0 };
                    let per: Vec<(u64, u64, u64)> =
                        (0..10u64).map(|c| (200, 180 - 20 * si as u64 - 10 * mi as u64 - c - drop, 195 - c)).collect();
                    results.push(result(m, s, &per));
                }
            }
            (format!("nightly/{night}-<img src=x onerror=alert(2)>"), RunResult::new(results))
        })
        .collect();
    let h = build(&runs, Tolerance::default());
    assert_eq!(h.newest_regressions().len(), 1, "{}", h.summary());
    let plots = trend_plots(&h).unwrap();
    (h, plots)
}

/// The page's own script is its only one, no `<img>` got in, and `alert(` appears only escaped.
fn assert_escaped(page: &str) {
    let lower = page.to_ascii_lowercase();
    assert_eq!(lower.matches("<script").count(), 1, "a script besides the page's own");
    assert!(!lower.contains("<img"), "an unescaped <img>");
    assert!(!lower.contains("<b>"), "an unescaped <b>");
    for (i, _) in page.match_indices("alert(") {
        let before = &page[i.saturating_sub(40)..i];
        assert!(
            before.contains("&lt;") || before.contains("&#x3c;") || before.contains("&#60;"),
            "alert( not inside escaped markup: ...{}",
            &page[i.saturating_sub(40)..(i + 20).min(page.len())]
        );
    }
}

/// `s` as HTML text (what the browser's DOM serialisation writes in a text node).
fn dom_text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\u{a0}', "&nbsp;")
}

#[test]
fn run_page_escapes_every_name_and_inlines_the_plots() {
    let run = hostile_run();
    let plots = plots(&run);
    let page = run_page(&run, &plots).unwrap();
    assert_escaped(&page);
    // The markup is there, escaped: by the template (which also escapes '/') and by plotters.
    assert!(page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "the model name, escaped");
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"), "the sample id, escaped");
    assert!(page.contains("laionet &amp; &lt;b&gt;co&lt;&#x2f;b&gt;"), "the suite name, escaped");
    assert!(page.contains("vit-b16 &quot;large&quot;"), "the quoted model name, escaped");
    assert!(page.contains("the model crashed: &lt;img"), "the error, escaped");
    // Every plot inlined, the per-class ones in their drill-downs; none left out.
    assert_eq!(page.matches("<svg").count(), plots.len(), "one <svg> per plot");
    assert!(!page.contains("left out"), "a plot failed the SVG check");
    assert!(page.contains("shift-top1-equal.svg") && page.contains("per-class&#x2f;"), "the plots' titles");
    // The sections, the numbers as the terminal shows them, the worst class first.
    for id in ["summary-table", "results-table", "classes-0", "suites-table"] {
        assert!(page.contains(&format!("id=\"{id}\"")), "no table {id}");
    }
    assert!(page.contains(" ± "), "estimates with their se");
    let classes = &page[page.find("id=\"classes-1\"").unwrap()..];
    let first_row = &classes[classes.find("<tbody>").unwrap()..];
    assert!(first_row[..400].contains(WNIDS[9]), "the worst class first: {}", &first_row[..400]);
    // The policy allows the page's script by its hash, and nothing else.
    assert!(page.contains("default-src &#x27;none&#x27;") || page.contains("default-src 'none'"));
    assert!(page.contains("script-src &#x27;sha256-") || page.contains("script-src 'sha256-"));

    // A hostile SVG handed to the page is left out, with the reason escaped.
    let evil = [Plot { key: PlotKey::EqualVsLaion, svg: "<svg><script>alert(3)</script></svg>".to_string() }];
    let page = run_page(&run, &evil).unwrap();
    assert_escaped(&page);
    assert!(page.contains("(this plot was left out: an element that is not a drawing element: &lt;script&gt;)"));
}

#[test]
fn comparison_page_escapes_flipped_samples() {
    let d = tempfile::tempdir().unwrap();
    let c = hostile_comparison(d.path());
    let page = comparison_page(&c).unwrap();
    assert_escaped(&page);
    let p = c.pairs[0].paired.as_ref().unwrap();
    assert_eq!(p.flips.len(), 5);
    for f in &p.flips {
        let id = f.id.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('/', "&#x2f;");
        assert!(page.contains(&id), "flip {} not listed (escaped)", f.id);
    }
    assert!(page.contains("Paired on 12 samples"), "the test used");
    assert!(page.contains("REGRESSION") && page.contains("id=\"moved-table\""), "the regression up front");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; on laionet &amp; &lt;b&gt;co"));
}

#[test]
fn history_page_escapes_names_and_inlines_trend_plots() {
    let (h, plots) = hostile_history();
    let page = history_page(&h, &plots).unwrap();
    assert_escaped(&page);
    assert_eq!(page.matches("<svg").count(), plots.len(), "one <svg> per trend plot");
    assert!(!page.contains("left out"), "a trend plot failed the SVG check");
    assert!(page.contains("id=\"newest-table\"") && page.contains("id=\"trend-table\""));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "the model name, escaped");
    assert!(page.contains("nightly&#x2f;2-&lt;img src=x onerror=alert(2)&gt;"), "the run's path, escaped");
}

#[test]
fn the_cli_writes_report_html() {
    let d = tempfile::tempdir().unwrap();
    for (side, new) in [("base", false), ("new", true)] {
        for suite in ["imagenet-val", "laionet"] {
            write_log(&d.path().join(side), XSS_MODEL, suite, |i| if new { i % 4 != 0 } else { i < 10 });
        }
    }
    // score --log: a run's report folder.
    let logs: Vec<PathBuf> =
        ["imagenet-val", "laionet"].iter().map(|s| shiftbench::log_path(&d.path().join("new"), XSS_MODEL, s)).collect();
    let o = Command::new(common::shiftbench_bin())
        .arg("score")
        .args(logs.iter().flat_map(|l| ["--log".as_ref(), l.as_os_str()]))
        .arg("--json")
        .arg(d.path().join("new/result.json"))
        .arg("--report-dir")
        .arg(d.path().join("run-report"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(d.path().join("run-report/report.html")).unwrap();
    assert_escaped(&page);
    assert!(page.contains("<svg") && page.contains("id=\"results-table\""));
    // compare --report-dir: the comparison's page.
    let o = Command::new(common::shiftbench_bin())
        .arg("score")
        .args(["imagenet-val", "laionet"].iter().flat_map(|s| {
            ["--log".into(), shiftbench::log_path(&d.path().join("base"), XSS_MODEL, s).into_os_string()]
        }))
        .arg("--json")
        .arg(d.path().join("base/result.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(common::shiftbench_bin())
        .arg("compare")
        .arg(d.path().join("base/result.json"))
        .arg(d.path().join("new/result.json"))
        .arg("--report-dir")
        .arg(d.path().join("compare-report"))
        .output()
        .unwrap();
    assert!(o.status.code().is_some(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(d.path().join("compare-report/report.html")).unwrap();
    assert_escaped(&page);
    assert!(page.contains("id=\"metrics-table\"") && page.contains("Baseline"));
}

/// Debian's chromium, installed with apt-get where this runs as root; None (with a `SKIPPED`
/// line) where it cannot be had. In CI (CI=true) a failed install as root is a failure.
fn chromium() -> Option<PathBuf> {
    let found = || ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.is_file());
    if let Some(p) = found() {
        return Some(p);
    }
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false);
    let apt = Path::new("/usr/bin/apt-get").is_file();
    if !(root && apt) {
        common::skipped("report_page", "no /usr/bin/chromium, and not root with apt-get to install it");
        return None;
    }
    let apt_get = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    eprintln!("report_page: installing chromium (apt-get install -y chromium)");
    if !apt_get(&["install", "-y", "chromium"]) {
        apt_get(&["update"]);
        apt_get(&["install", "-y", "chromium"]);
    }
    match found() {
        Some(p) => Some(p),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("report_page: apt-get install -y chromium failed (as root, in CI)")
        }
        None => {
            common::skipped("report_page", "apt-get install -y chromium failed");
            None
        }
    }
}

/// Runs headless Chromium on `url` with `args` (`--dump-dom`, `--screenshot=...`): its stdout
/// and stderr, or a panic after two minutes.
fn headless(chrome: &Path, url: &str, args: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let mut child = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .current_dir(profile.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).unwrap();
        s
    });
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("chromium ran over two minutes on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    eprintln!("report_page: chromium {} {url}: {:.1} s", args.join(" "), start.elapsed().as_secs_f64());
    (out, err)
}

/// The text of the first cell of the first body row of the table `id` in a DOM dump.
fn first_cell(dom: &str, id: &str) -> String {
    let t = &dom[dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no table {id}"))..];
    let body = &t[t.find("<tbody>").unwrap()..];
    let td = &body[body.find("<td").unwrap()..];
    let start = td.find('>').unwrap() + 1;
    td[start..start + td[start..].find("</td>").unwrap()].to_string()
}

/// Checks a DOM dump: the script ran over every sortable table, nothing it must not run did, and
/// the browser reported no script error or policy violation.
fn assert_rendered(page: &str, dom: &str, log: &str) {
    let tables = page.matches("class=\"sortable\"").count();
    assert!(dom.contains(&format!("data-ready=\"{tables}\"")), "the script did not finish: {log}");
    let lower = dom.to_ascii_lowercase();
    assert_eq!(lower.matches("<script").count(), 1, "a script element besides the page's own");
    assert!(!lower.contains("<img"), "an <img> element in the DOM");
    assert!(!lower.contains("<b>co"), "a <b> element in the DOM");
    for bad in ["Uncaught", "Refused to", "Content Security Policy"] {
        assert!(!log.contains(bad), "the browser said {bad}: {log}");
    }
}

#[test]
fn report_page_in_chromium() {
    let Some(chrome) = chromium() else { return };
    let keep = std::env::var_os("REPORT_PAGE_SCREENSHOTS").map(PathBuf::from);
    let d = tempfile::tempdir().unwrap();
    let out = keep.clone().unwrap_or_else(|| d.path().to_path_buf());
    std::fs::create_dir_all(&out).unwrap();

    // The run's page: every model, suite and plot is in the rendered page.
    let run = hostile_run();
    let plots = plots(&run);
    let page = run_page(&run, &plots).unwrap();
    let file = out.join("run-report.html");
    std::fs::write(&file, &page).unwrap();
    let url = format!("file://{}", file.display());
    let (dom, log) = headless(&chrome, &url, &["--dump-dom"]);
    assert_rendered(&page, &dom, &log);
    assert_eq!(dom.matches("<svg").count(), plots.len(), "every plot rendered inline");
    for name in MODELS.iter().chain(&SUITES) {
        assert!(dom.contains(&dom_text(name)), "{name} is not in the rendered page");
    }
    assert!(dom.contains(&dom_text(XSS_IMG)), "the failed sample's id is not in the rendered page");
    // The results table as the page opens (models in order), then sorted by a link: top-1
    // equal-weighted recall, best first, which is resnet-50 on imagenet-val.
    assert_eq!(first_cell(&dom, "results-table"), "resnet-50");
    let (sorted, log) = headless(&chrome, &format!("{url}#sort=results-table:1:desc"), &["--dump-dom"]);
    assert_rendered(&page, &sorted, &log);
    assert_eq!(first_cell(&sorted, "results-table"), "resnet-50");
    let rows: Vec<&str> =
        sorted.split("id=\"results-table\"").nth(1).unwrap().split("</table>").next().unwrap().split("<tr").collect();
    assert!(rows[2].contains(&dom_text(XSS_SUITE)), "sorted by suite, descending: {}", rows[2]);
    assert!(sorted.contains("aria-sort=\"descending\""), "the sorted column is marked");
    let (sorted, log) = headless(&chrome, &format!("{url}#sort=results-table:7"), &["--dump-dom"]);
    assert_rendered(&page, &sorted, &log);
    assert_eq!(
        first_cell(&sorted, "results-table"),
        dom_text(XSS_MODEL),
        "ascending top-1: the worst first (the row with an error, and no number, last)"
    );

    // Defence in depth: markup that got into the page anyway could not run (the page's Content
    // Security Policy allows its own script only, by hash).
    let injected = page.replacen("<main>", "<main><script>document.body.setAttribute('data-pwned', '1')</script>", 1);
    let ifile = out.join("injected.html");
    std::fs::write(&ifile, &injected).unwrap();
    let (dom, log) = headless(&chrome, &format!("file://{}", ifile.display()), &["--dump-dom"]);
    assert!(!dom.contains("data-pwned=\"1\""), "an injected script ran");
    assert!(log.contains("Content Security Policy"), "the browser did not say it blocked the script: {log}");
    assert!(dom.contains("data-ready="), "the page's own script did not run: {log}");

    // The comparison's page.
    let c = hostile_comparison(&d.path().join("compare"));
    let page = comparison_page(&c).unwrap();
    let cfile = out.join("compare-report.html");
    std::fs::write(&cfile, &page).unwrap();
    let (dom, log) = headless(&chrome, &format!("file://{}", cfile.display()), &["--dump-dom"]);
    assert_rendered(&page, &dom, &log);
    for f in &c.pairs[0].paired.as_ref().unwrap().flips {
        assert!(dom.contains(&dom_text(&f.id)), "flip {} is not in the rendered page", f.id);
    }
    assert!(dom.contains("REGRESSION"));

    // The history's page.
    let (h, plots) = hostile_history();
    let page = history_page(&h, &plots).unwrap();
    let hfile = out.join("history-report.html");
    std::fs::write(&hfile, &page).unwrap();
    let (dom, log) = headless(&chrome, &format!("file://{}", hfile.display()), &["--dump-dom"]);
    assert_rendered(&page, &dom, &log);
    assert_eq!(dom.matches("<svg").count(), plots.len(), "every trend plot rendered inline");
    for name in MODELS.iter().chain(&SUITES) {
        assert!(dom.contains(&dom_text(name)), "{name} is not in the rendered history page");
    }

    if keep.is_some() {
        for (f, png) in [(&file, "run-report.png"), (&cfile, "compare-report.png"), (&hfile, "history-report.png")] {
            let shot = format!("--screenshot={}", out.join(png).display());
            headless(&chrome, &format!("file://{}", f.display()), &[&shot, "--window-size=1400,2000"]);
            assert!(out.join(png).is_file(), "no screenshot {png}");
        }
    }
}

/// A run on one suite (equal weights: no shift, no LAION frequency) used to get a page with no
/// plot at all. It now gets each model's top-1 recall with its 95% interval (one dot-and-whisker
/// plot) and a histogram of each model's per-class recall, written as files and inlined in the
/// page, every model name escaped.
#[test]
fn a_single_suite_run_gets_recall_plots() {
    let d = tempfile::tempdir().unwrap();
    let models = [("resnet-50", 9usize), (XSS_MODEL, 4)];
    let mut logs = Vec::new();
    for (m, right) in models {
        write_log(d.path(), m, "imagenet-val", |i| i < right);
        logs.push(shiftbench::log_path(d.path(), m, "imagenet-val"));
    }
    let reports = d.path().join("reports");
    let o = Command::new(common::shiftbench_bin())
        .arg("score")
        .args(logs.iter().flat_map(|l| ["--log".as_ref(), l.as_os_str()]))
        .arg("--report-dir")
        .arg(&reports)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("(3 plots)"), "{}", String::from_utf8_lossy(&o.stderr));
    let plots = reports.join("plots");
    let dots = std::fs::read_to_string(plots.join("recall-imagenet-val.svg")).unwrap();
    assert!(dots.contains("Top-1 recall on imagenet-val, by model") && dots.contains("resnet-50"), "{dots}");
    assert!(dots.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !dots.contains(XSS_MODEL), "escaped in the SVG");
    assert!(dots.contains("95% interval"), "{dots}");
    // resnet-50 is right on samples 0..9 of 12, sample i in class i % 3: each class 3 of 4, 75%.
    let hist = std::fs::read_to_string(plots.join("class-recall/resnet-50__imagenet-val.svg")).unwrap();
    assert!(hist.contains("mean over classes 75.00%") && hist.contains("classes (3: 0 at 0%, 0 at 100%)"), "{hist}");
    let slug = shiftbench::results::paths::slug(XSS_MODEL);
    let hist = std::fs::read_to_string(plots.join(format!("class-recall/{slug}__imagenet-val.svg"))).unwrap();
    // Samples 0..4 right: classes 0 (0, 3), 1 (1), 2 (2): 2 of 4, 1 of 4, 1 of 4.
    assert!(hist.contains("mean over classes 33.33%"), "{hist}");
    let page = std::fs::read_to_string(reports.join("report.html")).unwrap();
    assert_escaped(&page);
    assert_eq!(page.matches("<svg").count(), 3, "the three plots inlined");
    assert!(page.contains("recall-imagenet-val.svg") && page.contains("class-recall&#x2f;resnet-50__imagenet-val.svg"));
}
