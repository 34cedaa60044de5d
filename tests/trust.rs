//! A resumed, merged or re-scored result is always the result of the model, card and images it is
//! reported under (issue: a card edited between two runs into the same `--out` once resumed the
//! old card's predictions and reported them as the new card's). Through the CLI, on the shared
//! MobileNetV2 and the 1,000 sample photos:
//!
//! - a card edited between runs into the same folder starts the model over, says what changed,
//!   and keeps the old log beside the new one; an unchanged rerun resumes and says so;
//! - a nightly retry after fixing a broken card reports the fixed card's numbers and passes;
//! - photos replaced under the same names are scored again, saying how many, and the result
//!   equals a fresh run's;
//! - `merge` refuses shards scored with different cards, and `score --log` logs of one model made
//!   with different cards, naming the logs and what differs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shiftbench::results::predlog::read_log;
use shiftbench::RunResult;

fn shiftbench(args: &[&str]) -> Output {
    Command::new(common::shiftbench_bin()).args(args).current_dir(common::repo()).output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The shared data and the ONNX plugin, or None (skipped, saying so).
fn ready(test: &str) -> Option<PathBuf> {
    let data = common::shared_data(test)?;
    common::plugin_lib_if_built("shiftbench_onnx", test)?;
    Some(data)
}

/// Writes the example MobileNetV2 model YAML into `dir` (its model file the shared one) with
/// `channel_order`; returns its path.
fn card(dir: &Path, data: &Path, channel_order: &str) -> PathBuf {
    let example =
        std::fs::read_to_string(common::repo().join("plugins/onnx/examples/mobilenetv2-12-int8.yaml")).unwrap();
    let model = data.join("models/mobilenetv2-12-int8.onnx");
    let yaml: String = example
        .lines()
        .map(|l| {
            if l.starts_with("model:") {
                format!("model: {}", model.display())
            } else if l.trim_start().starts_with("channel_order:") {
                format!("  channel_order: {channel_order}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let p = dir.join("m.yaml");
    std::fs::write(&p, yaml + "\n").unwrap();
    p
}

/// A flat folder suite of the first `n` sample photos (copied into `dir/photos`).
fn photo_suite(dir: &Path, data: &Path, n: usize) -> PathBuf {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(data.join("imagenet-samples")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for f in files.iter().take(n) {
        std::fs::copy(f, photos.join(f.file_name().unwrap())).unwrap();
    }
    let y = dir.join("photos.yaml");
    std::fs::write(&y, format!("name: photos\nsource:\n  files: {}\n", photos.display())).unwrap();
    y
}

fn run(suite: &Path, model: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "--suite",
        suite.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    shiftbench(&args)
}

fn top1(out: &Path) -> f64 {
    RunResult::read(out).unwrap().results[0].metrics.top1_equal.unwrap().value
}

fn log_of(out: &Path) -> PathBuf {
    out.join("predictions/mobilenetv2-12-int8__imagenet-samples.jsonl")
}

#[test]
fn a_card_edited_between_runs_into_the_same_folder_is_not_resumed() {
    let Some(data) = ready("a_card_edited_between_runs_into_the_same_folder_is_not_resumed") else { return };
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let suite = common::repo().join("suites/imagenet-samples.yaml");
    let rgb = card(d.path(), &data, "rgb");
    let o = run(&suite, &rgb, &out, &[]);
    let (stdout, _) = text(&o);
    assert!(o.status.success() && stdout.contains("82.70"), "{stdout}");
    let rgb_log = std::fs::read(log_of(&out)).unwrap();

    // The README's "fix the card, run again" flow: the same command, the card edited.
    let bgr = card(d.path(), &data, "bgr");
    let o = run(&suite, &bgr, &out, &[]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("64.70") && !stdout.contains("82.70"), "the BGR card's numbers:\n{stdout}");
    assert!((top1(&out) - 0.647).abs() < 1e-12);
    assert!(stderr.contains("channel_order rgb -> bgr"), "says what changed: {stderr}");
    let kept = out.join("predictions/mobilenetv2-12-int8__imagenet-samples.jsonl.replaced-1");
    assert!(stderr.contains(&kept.display().to_string()), "{stderr}");
    assert_eq!(std::fs::read(&kept).unwrap(), rgb_log, "the RGB card's log is kept, byte for byte");
    let (_, records) = read_log(&log_of(&out)).unwrap();
    assert_eq!(records.len(), 1000);

    // Unchanged: resumed, and it says so.
    let o = run(&suite, &bgr, &out, &[]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success() && stdout.contains("64.70"), "{stdout}{stderr}");
    assert!(
        stderr.contains("resumed 1000 of 1000 from")
            && stderr.contains("(same model, card and suite; images checked in "),
        "{stderr}"
    );

    // Another model file under the same name and card: not resumed either.
    let other = std::fs::read_to_string(&bgr).unwrap().replace("mobilenetv2-12-int8.onnx", "squeezenet1.1-fp32.onnx");
    std::fs::write(&bgr, other).unwrap();
    let o = run(&suite, &bgr, &out, &[]);
    let (_, stderr) = text(&o);
    assert!(stderr.contains("model file 83530ad811bc -> "), "{stderr}");
}

#[test]
fn a_nightly_retry_after_fixing_the_card_reports_the_fixed_numbers() {
    let Some(data) = ready("a_nightly_retry_after_fixing_the_card_reports_the_fixed_numbers") else { return };
    let d = tempfile::tempdir().unwrap();
    let suite = photo_suite(d.path(), &data, 300);
    let (n1, n2) = (d.path().join("night1"), d.path().join("night2"));
    let m = card(d.path(), &data, "rgb");
    assert!(run(&suite, &m, &n1, &[]).status.success());
    // Night 2: a broken card regresses.
    let m = card(d.path(), &data, "bgr");
    let o = run(&suite, &m, &n2, &["--baseline", n1.to_str().unwrap()]);
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("REGRESSION"), "{stdout}");
    // The card is fixed and the job retried into the same folder: the fixed card's numbers, no
    // regression, exit 0.
    let m = card(d.path(), &data, "rgb");
    let o = run(&suite, &m, &n2, &["--baseline", n1.to_str().unwrap()]);
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stdout.contains("REGRESSION"), "{stdout}");
    assert!(stderr.contains("channel_order bgr -> rgb"), "{stderr}");
    assert_eq!(top1(&n2), top1(&n1));
}

#[test]
fn photos_replaced_under_the_same_names_are_scored_again() {
    let Some(data) = ready("photos_replaced_under_the_same_names_are_scored_again") else { return };
    let d = tempfile::tempdir().unwrap();
    let suite = photo_suite(d.path(), &data, 100);
    let m = card(d.path(), &data, "rgb");
    let out = d.path().join("out");
    assert!(run(&suite, &m, &out, &[]).status.success());
    // Every third photo replaced by a shrunk copy under the same name.
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(d.path().join("photos")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let replaced: Vec<&PathBuf> = files.iter().step_by(3).collect();
    for f in &replaced {
        let img = image::open(f).unwrap();
        img.thumbnail(24, 24).to_rgb8().save_with_format(f, image::ImageFormat::Jpeg).unwrap();
    }
    let o = run(&suite, &m, &out, &[]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("resumed {} of 100", 100 - replaced.len()))
            && stderr.contains(&format!("{} images changed since they were scored", replaced.len())),
        "{stderr}"
    );
    // Exactly what a fresh run on the new photos gives, one record per sample.
    let fresh = d.path().join("fresh");
    assert!(run(&suite, &m, &fresh, &[]).status.success());
    let (a, b) = (RunResult::read(&out).unwrap(), RunResult::read(&fresh).unwrap());
    assert_eq!(a.results[0].metrics, b.results[0].metrics, "{stdout}");
    assert_eq!(a.results[0].per_class, b.results[0].per_class);
    let log = out.join("predictions/mobilenetv2-12-int8__photos.jsonl");
    assert_eq!(read_log(&log).unwrap().1.len(), 100);
    // An image that became unreadable is checked too: scored again, as failed.
    std::fs::write(&files[1], b"not a JPEG any more").unwrap();
    let o = run(&suite, &m, &out, &[]);
    let (_, stderr) = text(&o);
    assert!(stderr.contains("1 image changed since it was scored"), "{stderr}");
    assert_eq!(RunResult::read(&out).unwrap().results[0].totals.failed, 1);
}

#[test]
fn shards_and_logs_of_different_cards_are_not_merged_or_scored_as_one() {
    let Some(data) = ready("shards_and_logs_of_different_cards_are_not_merged_or_scored_as_one") else { return };
    let d = tempfile::tempdir().unwrap();
    let suite = photo_suite(d.path(), &data, 60);
    let out = d.path().join("out");
    let rgb = card(d.path(), &data, "rgb");
    assert!(run(&suite, &rgb, &out, &["--shard", "0/2"]).status.success());
    let bgr = card(d.path(), &data, "bgr");
    let o = run(&suite, &bgr, &out, &["--shard", "1/2"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = shiftbench(&["merge", out.to_str().unwrap()]);
    let (stdout, stderr) = text(&o);
    assert!(!o.status.success(), "a merge of shards of two cards must fail: {stdout}");
    assert!(
        stderr.contains("shard-0-of-2.jsonl") && stderr.contains("shard-1-of-2.jsonl"),
        "names the shards: {stderr}"
    );
    assert!(stderr.contains("channel_order rgb -> bgr"), "{stderr}");
    assert!(!out.join("result.json").exists(), "nothing written");
    // The same shards scored as logs: refused too.
    let logs: Vec<String> = ["shard-0-of-2", "shard-1-of-2"]
        .iter()
        .map(|s| out.join(format!("predictions/mobilenetv2-12-int8__photos.{s}.jsonl")).display().to_string())
        .collect();
    let o = shiftbench(&["score", "--log", &logs[0], "--log", &logs[1]]);
    let (_, stderr) = text(&o);
    assert!(!o.status.success() && stderr.contains("channel_order rgb -> bgr"), "{stderr}");
    // Shard 2 again with the first card: now they merge.
    let rgb = card(d.path(), &data, "rgb");
    assert!(run(&suite, &rgb, &out, &["--shard", "1/2"]).status.success());
    let o = shiftbench(&["merge", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o).1);
    let whole = d.path().join("whole");
    assert!(run(&suite, &rgb, &whole, &[]).status.success());
    assert_eq!(RunResult::read(&out).unwrap().results[0].metrics, RunResult::read(&whole).unwrap().results[0].metrics);
}
