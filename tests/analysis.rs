//! Comparing many architectures on real data: the three shared ONNX models (MobileNetV2 int8,
//! SqueezeNet 1.1 fp16 and fp32) and three of them run with another resize interpolation
//! (nearest-neighbour or bicubic instead of bilinear), on 500 of the sample photos (every other
//! class) and on the same photos shrunk to a quarter of their size and re-encoded (a second suite
//! the test writes; every model loses accuracy there), both weighted by LAION-400M caption
//! counts. The fp16 and fp32 SqueezeNets predict alike on every photo: alone, the three shared
//! models are two points, and a line through two points says nothing. Through the CLI:
//!
//! - effective robustness (the logit-linear fit, each model's distance from it, the bootstrap
//!   intervals) in `result.json` from `run`, `merge` and `score`, identical across them and at any
//!   thread count, in the summary table and in the shift plot;
//! - ranks per suite in the summary table; tags from the model YAMLs in the provenance, and
//!   `plot --group-by`;
//! - per-class gaps: `run.class-gaps.csv` / `.json`, the largest drops under the table, and a
//!   histogram per model.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shiftbench::report::analysis::ClassGaps;
use shiftbench::report::table::sort_models_with;
use shiftbench::results::robustness::{expit, logit};
use shiftbench::RunResult;

/// Name, family, precision; the last three are shared models resized with another
/// `interpolation:` (the name's suffix) than their YAML's bilinear.
const MODELS: [(&str, &str, &str); 6] = [
    ("mobilenetv2-12-int8", "mobilenet", "int8"),
    ("squeezenet1.1-fp16", "squeezenet", "fp16"),
    ("squeezenet1.1-fp32", "squeezenet", "fp32"),
    ("squeezenet1.1-fp32-nearest", "squeezenet", "fp32"),
    ("mobilenetv2-12-int8-nearest", "mobilenet", "int8"),
    ("mobilenetv2-12-int8-bicubic", "mobilenet", "int8"),
];
const X: &str = "imagenet-samples";
const Y: &str = "imagenet-samples-small";

fn shiftbench(args: &[&str]) -> Output {
    Command::new(common::shiftbench_bin()).current_dir(common::repo()).args(args).output().unwrap()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The two suites and the six model YAMLs (the shared examples, with `tags:`) under `dir`.
fn fixtures(data: &Path, dir: &Path) -> (PathBuf, PathBuf, Vec<PathBuf>) {
    let photos = data.join("imagenet-samples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&photos).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let kept: Vec<&PathBuf> = files.iter().step_by(2).collect();
    let wnid = |p: &Path| p.file_name().unwrap().to_string_lossy()[..9].to_string();
    std::fs::write(dir.join("classes.txt"), kept.iter().map(|p| wnid(p) + "\n").collect::<String>()).unwrap();
    let small = dir.join("small");
    std::fs::create_dir_all(&small).unwrap();
    for p in &kept {
        let img = image::open(p).unwrap().to_rgb8();
        let (w, h) = (img.width() / 4, img.height() / 4);
        let img = image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
        let mut f = std::fs::File::create(small.join(format!("{}_small.JPEG", wnid(p)))).unwrap();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut f, 60).encode_image(&img).unwrap();
    }
    let weights = format!(
        "weights: {{table: {}, wnid_column: wnid, weight_column: substring_match_count_all_32_parts}}\n",
        data.join("paper/laion400m_substring_match_counts_2023-03_c766577.tsv").display()
    );
    let x = dir.join("x.yaml");
    let y = dir.join("y.yaml");
    let xs = format!("name: {X}\nsource:\n  files: {}\nclasses_file: classes.txt\n{weights}", photos.display());
    std::fs::write(&x, xs).unwrap();
    std::fs::write(&y, format!("name: {Y}\nsource:\n  files: small\n{weights}")).unwrap();
    let mut yamls = Vec::new();
    for (name, family, precision) in MODELS {
        let variant = ["nearest", "bicubic"].into_iter().find(|v| name.ends_with(&format!("-{v}")));
        let example = variant.map_or(name, |v| &name[..name.len() - v.len() - 1]);
        let text =
            std::fs::read_to_string(common::repo().join(format!("plugins/onnx/examples/{example}.yaml"))).unwrap();
        let text = match variant {
            Some(v) => text
                .replace(&format!("name: {example}\n"), &format!("name: {name}\n"))
                .replace("interpolation: bilinear", &format!("interpolation: {v}")),
            None => text,
        };
        let text = text
            .replace("model: ../../../../shared/data/models/", &format!("model: {}/", data.join("models").display()));
        let p = dir.join(format!("{name}.yaml"));
        std::fs::write(&p, format!("{text}tags:\n  family: {family}\n  precision: {precision}\n  pretraining: in1k\n"))
            .unwrap();
        yamls.push(p);
    }
    (x, y, yamls)
}

/// The cells of the row of `model` in the table of `stdout` whose header line contains `header`.
fn row(stdout: &str, header: &str, model: &str) -> Vec<String> {
    let start = stdout.find(header).unwrap_or_else(|| panic!("no table with {header:?}:\n{stdout}"));
    let line = stdout[start..].lines().find(|l| l.starts_with(&format!("│ {model} "))).unwrap();
    line.split(['│', '┆']).map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()
}

#[test]
fn six_models_on_two_suites() {
    let Some(data) = common::shared_data("analysis") else { return };
    if common::plugin_lib_if_built("shiftbench_onnx", "analysis").is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (x, y, yamls) = fixtures(&data, d.path());
    let out = d.path().join("out");
    let reports = d.path().join("reports");
    let mut args: Vec<String> = vec!["run".into(), "--suite".into(), x.display().to_string()];
    args.extend(["--suite".into(), y.display().to_string()]);
    for m in &yamls {
        args.extend(["--model".into(), m.display().to_string()]);
    }
    args.extend(
        ["--out", out.to_str().unwrap(), "--report-dir", reports.to_str().unwrap(), "--threads", "2"].map(String::from),
    );
    let stdout = ok(shiftbench(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    println!("{stdout}");
    let run = RunResult::read(&out).unwrap();
    let recall = |m: &str, s: &str, k: &str| {
        let r = run.results.iter().find(|r| r.model == m && r.suite == s).unwrap();
        assert!(r.error.is_none() && r.totals.evaluated == 500, "{m} on {s}: {:?}", r.totals);
        match k {
            "top1_equal" => r.metrics.top1_equal.unwrap().value,
            _ => r.metrics.top1_weighted.unwrap().value,
        }
    };
    // The shift is real: every model loses on the shrunk photos.
    for (m, _, _) in MODELS {
        assert!(recall(m, Y, "top1_equal") < recall(m, X, "top1_equal") - 0.05, "{m}");
    }

    // 1. Effective robustness: one fit per metric, recomputed here from the recalls alone.
    let er = &run.effective_robustness;
    assert_eq!(er.iter().map(|e| e.metric.as_str()).collect::<Vec<_>>(), ["top1_equal", "top1_weighted"]);
    for e in er {
        assert_eq!((e.x_suite.as_str(), e.y_suite.as_str()), (X, Y));
        assert!(e.left_out.is_empty() && e.models.len() == 6, "{e:?}");
        let pts: Vec<(f64, f64)> =
            MODELS.iter().map(|(m, _, _)| (logit(recall(m, X, &e.metric)), logit(recall(m, Y, &e.metric)))).collect();
        let (um, vm) = (pts.iter().map(|p| p.0).sum::<f64>() / 6.0, pts.iter().map(|p| p.1).sum::<f64>() / 6.0);
        let slope = pts.iter().map(|p| (p.0 - um) * (p.1 - vm)).sum::<f64>()
            / pts.iter().map(|p| (p.0 - um) * (p.0 - um)).sum::<f64>();
        let fit = e.fit.unwrap();
        assert!((fit.slope - slope).abs() < 1e-12 && (fit.intercept - (vm - slope * um)).abs() < 1e-12, "{fit:?}");
        for (m, _, _) in MODELS {
            let r = &e.models[m];
            let want = recall(m, Y, &e.metric) - expit(fit.intercept + fit.slope * logit(recall(m, X, &e.metric)));
            assert!((r.value - want).abs() < 1e-12, "{m}: {} vs {want}", r.value);
            let (lo, hi) = (r.ci_low.unwrap(), r.ci_high.unwrap());
            assert!(lo < hi && lo <= r.value && r.value <= hi, "{m}: {r:?}");
        }
        assert_eq!((e.bootstrap.replicates, e.bootstrap.classes), (1000, 500));
    }
    // `--sort er`: most robust first (ties keep their order).
    let mut want: Vec<&str> = MODELS.map(|m| m.0).to_vec();
    want.sort_by(|a, b| er[0].models[*b].value.total_cmp(&er[0].models[*a].value));
    assert_eq!(sort_models_with(&run.results, er, "er").unwrap(), want);
    // Reproducible, and the same at any thread count.
    let again = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| RunResult { effective_robustness: vec![], ..run.clone() }.with_effective_robustness())
            .effective_robustness
    };
    assert_eq!(&again(1), er);
    assert_eq!(&again(3), er);
    // merge (from the logs and the result's weights) and score (from the logs) agree to the bit.
    let merged = d.path().join("merged");
    ok(shiftbench(&["merge", out.to_str().unwrap(), "--out", merged.to_str().unwrap(), "--format", "json"]));
    assert_eq!(&RunResult::read(&merged).unwrap().effective_robustness, er);
    let logs: Vec<PathBuf> = std::fs::read_dir(out.join("predictions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    assert_eq!(logs.len(), 12);
    let logs_of = |models: &[&str]| -> Vec<&str> {
        let file = |l: &&PathBuf| l.file_name().unwrap().to_string_lossy().into_owned();
        logs.iter()
            .filter(|l| models.iter().any(|m| file(l).starts_with(&format!("{m}__"))))
            .map(|l| l.to_str().unwrap())
            .collect()
    };
    let scored = d.path().join("scored.json");
    let mut args: Vec<&str> = vec!["score", "--format", "json", "--json", scored.to_str().unwrap()];
    for l in logs_of(&MODELS.map(|m| m.0)) {
        args.extend(["--log", l]);
    }
    ok(shiftbench(&args));
    let s = RunResult::read(&scored).unwrap();
    // `score --log` weighs classes equally: the equal-weighted fit is the run's, and there is no
    // weighted one.
    assert_eq!(s.effective_robustness, er[..1]);
    // The three shared models alone: the two SqueezeNets are one point, so no line, saying why.
    let shared = d.path().join("shared.json");
    let mut args: Vec<&str> = vec!["score", "--json", shared.to_str().unwrap()];
    for l in logs_of(&MODELS.map(|m| m.0)[..3]) {
        args.extend(["--log", l]);
    }
    let table = ok(shiftbench(&args));
    println!("{table}");
    let e = &RunResult::read(&shared).unwrap().effective_robustness[0];
    assert!(e.fit.is_none() && e.models.is_empty());
    let why = "no fit: the 3 models give only 2 different pairs of recalls";
    assert!(e.no_fit.as_deref().unwrap().starts_with(&why[8..]) && table.contains(why), "{table}");
    // Two models: no effective robustness, and the field is absent from the file.
    let two = d.path().join("two.json");
    let mut args: Vec<&str> = vec!["score", "--format", "json", "--json", two.to_str().unwrap()];
    for l in logs_of(&MODELS.map(|m| m.0)[..2]) {
        args.extend(["--log", l]);
    }
    ok(shiftbench(&args));
    assert!(!std::fs::read_to_string(&two).unwrap().contains("effective_robustness"));
    // The terminal: the fit's line, and the columns with the intervals.
    let fit = er[0].fit.unwrap();
    let line = format!("effective robustness, top-1 equal-wt, {X} -> {Y}: logit(y) = {:.4}", fit.intercept);
    assert!(stdout.contains(&line), "{stdout}");
    let header = "eff. robustness";
    for (m, _, _) in MODELS {
        let cells = row(&stdout, header, m);
        let r = &er[0].models[m];
        let shown =
            format!("{:+.2} [{:+.2}, {:+.2}]", 100.0 * r.value, 100.0 * r.ci_low.unwrap(), 100.0 * r.ci_high.unwrap());
        assert!(cells.contains(&shown), "{m}: {cells:?} lacks {shown}");
    }
    let fig1 = std::fs::read_to_string(reports.join("plots/shift-top1-equal.svg")).unwrap();
    assert!(fig1.contains("logit-linear fit, 6 models"), "the fit is drawn");

    // 2. Ranks: from the recalls, in the summary table.
    let ranked = |s: &str| {
        let mut v: Vec<(&str, f64)> = MODELS.iter().map(|(m, _, _)| (*m, recall(m, s, "top1_equal"))).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.iter().map(|(m, r)| (*m, 1 + v.iter().filter(|o| o.1 > *r).count())).collect::<BTreeMap<_, _>>()
    };
    let (rx, ry) = (ranked(X), ranked(Y));
    for (m, _, _) in MODELS {
        let cells = row(&stdout, header, m);
        let change = rx[m] as i64 - ry[m] as i64;
        let shown = if change == 0 { format!("{} (=)", ry[m]) } else { format!("{} ({change:+})", ry[m]) };
        assert!(cells.contains(&rx[m].to_string()) && cells.contains(&shown), "{m}: {cells:?} lacks {shown}");
    }
    assert_eq!((rx.values().min(), ry.values().min()), (Some(&1), Some(&1)));
    // Tags: in the provenance, and grouping the plot.
    let info = run.run.as_ref().unwrap();
    for (m, family, precision) in MODELS {
        let tags = &info.models.iter().find(|i| i.name == m).unwrap().tags;
        assert_eq!((tags["family"].as_str(), tags["precision"].as_str()), (family, precision));
    }
    let plots = d.path().join("grouped");
    let p = plots.to_str().unwrap();
    ok(shiftbench(&["plot", out.to_str().unwrap(), "--out", p, "--group-by", "family"]));
    let svg = std::fs::read_to_string(plots.join("shift-top1-equal.svg")).unwrap();
    assert!(svg.contains("family = mobilenet") && svg.contains("family = squeezenet"), "grouped by family");
    assert!(svg.contains("fit, family = mobilenet (3 models)"), "a fit for the MobileNets");
    assert!(!svg.contains("fit, family = squeezenet"), "the SqueezeNets are two different points");
    // One group: its fit would be the fit of all, drawn once.
    ok(shiftbench(&["plot", out.to_str().unwrap(), "--out", p, "--group-by", "pretraining"]));
    let svg = std::fs::read_to_string(plots.join("shift-top1-laion.svg")).unwrap();
    assert!(svg.contains("pretraining = in1k") && !svg.contains("fit, pretraining"));
    let o = shiftbench(&["plot", out.to_str().unwrap(), "--out", p, "--group-by", "size"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no model of the result has a tag \"size\""));

    // 3. Per-class gaps: every class of every model, as the per-class results say.
    let csv = std::fs::read_to_string(reports.join("run.class-gaps.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 6 * 500);
    let gaps: ClassGaps =
        serde_json::from_str(&std::fs::read_to_string(reports.join("run.class-gaps.json")).unwrap()).unwrap();
    assert_eq!(gaps.gaps.len(), 6 * 500);
    for g in &gaps.gaps {
        let pc = |s: &str| &run.results.iter().find(|r| r.model == g.model && r.suite == s).unwrap().per_class[&g.wnid];
        let (a, b) = (pc(X), pc(Y));
        assert_eq!(g.diff, b.recall_top1.unwrap() - a.recall_top1.unwrap());
        assert_eq!(g.se, (a.se_top1.unwrap().powi(2) + b.se_top1.unwrap().powi(2)).sqrt());
    }
    let worse = |m: &str| gaps.gaps.iter().filter(|g| g.model == m && g.diff < 0.0).count();
    for (m, _, _) in MODELS {
        assert!(stdout.contains(&format!("  {m}: {} of 500 classes worse", worse(m))), "{m}: {stdout}");
        let hist = std::fs::read_to_string(reports.join(format!("plots/class-gaps/{m}__{X}__{Y}.svg"))).unwrap();
        assert!(hist.contains("mean change") && hist.contains("500 in both suites"), "{m}");
    }
    let text = std::fs::read_to_string(reports.join("run.txt")).unwrap();
    assert!(text.contains(&line) && text.contains("largest drops"), "the text report has them too");
}
