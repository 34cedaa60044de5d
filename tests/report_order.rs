//! One order for every report of a run: `run --sort KEY --report-dir DIR` lists the models in the
//! same order in the terminal, `run.txt`, `run.md`, `run.csv`, `run.json`, `run.junit.xml` and
//! `report.html`, and
//! the page shows the effective robustness the terminal shows (its columns and its fits), every
//! model name escaped. Four models on the demo suites: the example plugin and three settings of
//! the misbehave fixture behaving well (it guesses from the mean colour), one of them named with
//! markup.

mod common;

use std::process::Command;

use shiftbench::report::table::fmt_robustness;
use shiftbench::RunResult;

/// The models in the order they are given on the command line, as (file stem, YAML).
const MODELS: [(&str, &str); 4] = [
    ("ex", "plugin: example\nname: example-model\n"),
    ("mb-a", "plugin: misbehave\nname: mb-a\npreprocess: {resize: 32, crop: 32}\noptions: {behave: good}\n"),
    (
        "mb-b",
        "plugin: misbehave\nname: '<i>mb-b</i> & \"co\"'\npreprocess: {resize: 48, crop: 40}\noptions: {behave: good}\n",
    ),
    ("mb-c", "plugin: misbehave\nname: mb-c\npreprocess: {resize: 64, crop: 64}\noptions: {behave: good}\n"),
];
const HOSTILE: &str = "<i>mb-b</i> & \"co\"";

/// Each distinct value of `items`, in order of first appearance.
fn distinct(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// The models of the first terminal table in `text` (its first column), in order.
fn table_models(text: &str) -> Vec<String> {
    let first = &text[..text.find('└').expect("no table")];
    let cells = first.lines().filter_map(|l| l.strip_prefix("│ ")).map(|l| l.split('┆').next().unwrap().trim());
    distinct(cells.filter(|m| *m != "model").map(String::from))
}

/// The models of the first Markdown table in `md`, in order.
fn markdown_models(md: &str) -> Vec<String> {
    let rows = md.lines().skip_while(|l| !l.starts_with("| model")).skip(2).take_while(|l| l.starts_with('|'));
    distinct(rows.map(|l| l[2..].split(" | ").next().unwrap().to_string()))
}

/// `t` as text again, from the page's escaped HTML.
fn unescape(t: &str) -> String {
    t.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// The first cell of each row of the page's table `id`, unescaped, in order.
fn page_models(page: &str, id: &str) -> Vec<String> {
    let table = &page[page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no table {id}"))..];
    let body = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
    let cells = body.split("<tr").skip(1).map(|row| {
        let cell = &row[row.find("<td").unwrap()..];
        let text = &cell[cell.find('>').unwrap() + 1..cell.find("</td>").unwrap()];
        unescape(text)
    });
    distinct(cells)
}

#[test]
fn sort_orders_every_report_and_the_page_shows_effective_robustness() {
    let d = tempfile::tempdir().unwrap();
    let suites = shiftbench::demo::generate(&d.path().join("suites")).unwrap();
    common::plugin_lib("shiftbench_example");
    common::plugin_lib("shiftbench_misbehave");
    let (out, reports) = (d.path().join("out"), d.path().join("reports"));
    let mut cmd = Command::new(common::shiftbench_bin());
    cmd.arg("run").arg("--suite").arg(&suites.imagenet).arg("--suite").arg(&suites.laionet);
    for (stem, yaml) in MODELS {
        let p = d.path().join(format!("{stem}.yaml"));
        std::fs::write(&p, yaml).unwrap();
        cmd.arg("--model").arg(p);
    }
    let o = cmd.args(["--sort", "er", "--out"]).arg(&out).arg("--report-dir").arg(&reports).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));

    // The order `--sort er` asks for, from the stored result (which keeps the run's own order):
    // most effectively robust first.
    let run = RunResult::read(&out).unwrap();
    let given = distinct(run.results.iter().map(|r| r.model.clone()));
    assert_eq!(given.len(), 4, "{given:?}");
    let er = &run.effective_robustness[0];
    let fit = er.fit.expect("four different models give a fit");
    assert_eq!(er.models.len(), 4, "{er:?}");
    let mut want = given.clone();
    want.sort_by(|a, b| er.models[b].value.total_cmp(&er.models[a].value));
    assert_ne!(want, given, "the test needs an order that differs from the run's own");

    let read = |f: &str| std::fs::read_to_string(reports.join(f)).unwrap();
    let page = read("report.html");
    assert_eq!(table_models(&stdout), want, "the terminal:\n{stdout}");
    assert_eq!(table_models(&read("run.txt")), want, "run.txt");
    assert_eq!(markdown_models(&read("run.md")), want, "run.md");
    let csv = read("run.csv");
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(distinct(rows.records().map(|r| r.unwrap()[0].to_string())), want, "run.csv");
    let json: RunResult = serde_json::from_str(&read("run.json")).unwrap();
    assert_eq!(distinct(json.results.iter().map(|r| r.model.clone())), want, "run.json");
    let junit = read("run.junit.xml");
    let cases = junit.split("classname=\"shiftbench.").skip(1).map(|c| unescape(&c[..c.find('"').unwrap()]));
    assert_eq!(distinct(cases), want, "run.junit.xml");
    assert_eq!(page_models(&page, "summary-table"), want, "the page's summary");
    assert_eq!(page_models(&page, "results-table"), want, "the page's results");
    // The terminal and run.txt are the same text.
    assert!(stdout.starts_with(&read("run.txt")), "the terminal differs from run.txt");

    // The effective robustness columns and the fit's line, in every report and on the page.
    let line =
        format!("effective robustness, top-1 equal-wt, imagenet-like -> laionet-like: logit(y) = {:.4}", fit.intercept);
    for (name, text) in [("terminal", stdout.to_string()), ("run.md", read("run.md")), ("report.html", unescape(&page))]
    {
        assert!(text.contains("eff. robustness imagenet-like"), "{name}: no effective robustness column");
        assert!(text.contains(&line), "{name}: no fit line {line:?}");
    }
    let summary = &page[page.find("id=\"summary-table\"").unwrap()..];
    let summary = &summary[..summary.find("</table>").unwrap()];
    for m in &want {
        assert!(summary.contains(&fmt_robustness(&er.models[m])), "{m}: its effective robustness is not on the page");
    }
    // Every name from a user's file is escaped on the page.
    assert!(page.contains("&lt;i&gt;mb-b&lt;&#x2f;i&gt; &amp; &quot;co&quot;"), "the model name, escaped");
    assert!(!page.contains(HOSTILE) && !page.contains("<i>"), "the model name unescaped");
}

/// `--sort KEY` is checked before anything runs: an unknown column, or effective robustness on
/// one suite or with too few models, is an error (exit 2) that names the problem, and the run
/// never starts (its output folder is not even made). A key that exists passes the check.
#[test]
fn sort_key_is_checked_before_the_run() {
    let d = tempfile::tempdir().unwrap();
    let suites = shiftbench::demo::generate(&d.path().join("suites")).unwrap();
    common::plugin_lib("shiftbench_example");
    let run = |suites: &[&std::path::Path], models: usize, key: &str| {
        let out = d.path().join(format!("out-{}-{models}-{}", suites.len(), key.replace(':', "_")));
        let mut cmd = Command::new(common::shiftbench_bin());
        cmd.arg("run");
        for s in suites {
            cmd.arg("--suite").arg(s);
        }
        for i in 0..models {
            let p = d.path().join(format!("m{i}.yaml"));
            std::fs::write(&p, format!("plugin: example\nname: m{i}\n")).unwrap();
            cmd.arg("--model").arg(p);
        }
        let o = cmd.args(["--sort", key, "--out"]).arg(&out).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned(), out.exists())
    };
    let both = [suites.imagenet.as_path(), suites.laionet.as_path()];
    let (code, err, made) = run(&both, 1, "speed");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--sort \"speed\": no such column") && err.contains("drop:laionet-like:laion"), "{err}");
    assert!(!made && !err.contains("resumed") && !err.contains("img/s"), "the run started: {err}");
    // A rank column exists only with two models or more.
    let (code, err, _) = run(&both, 1, "rank imagenet-like");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no such column"), "{err}");
    let (code, err, made) = run(&both[1..], 3, "er");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("effective robustness needs two suites or more, and this run has 1 (laionet-like)"), "{err}");
    assert!(!made);
    let (code, err, made) = run(&both, 2, "er:laion:desc");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("effective robustness needs 3 models or more"), "{err}");
    assert!(!made);
    // Keys that exist: a suite's column, a drop, a header; the run goes ahead.
    for key in ["laionet-like:laion", "drop:asc", "rank imagenet-like"] {
        let (code, err, made) = run(&both, 2, key);
        assert_eq!(code, Some(0), "{key}: {err}");
        assert!(made);
    }
}
