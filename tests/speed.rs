//! Speed in the record (issue 13): `result.json` gives every model that scored images in a run its
//! speed (`run.models[].speed`: images, seconds, model seconds, images per second, model
//! milliseconds per image), counting only the images scored in this run; a merge sums its shards'.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use shiftbench::results::predlog::{read_log, read_log_lenient};
use shiftbench::results::provenance::Speed;
use shiftbench::RunResult;

fn slow_model(dir: &Path, sleep_ms: u64) -> PathBuf {
    let y = dir.join("slow.yaml");
    let lib = common::plugin_lib("shiftbench_misbehave");
    std::fs::write(
        &y,
        format!(
            "plugin: {}\nname: slow\npreprocess: {{resize: 32, crop: 32}}\noptions: {{behave: slow, sleep_ms: {sleep_ms}}}\n",
            lib.display()
        ),
    )
    .unwrap();
    y
}

fn example() -> String {
    common::plugin_lib("shiftbench_example").to_string_lossy().into_owned()
}

fn cmd(suite: &Path, models: &[&str], out: &Path, batch: &str) -> Command {
    let mut c = Command::new(common::shiftbench_bin());
    c.args(["run", "--batch", batch, "--threads", "1", "--suite"]).arg(suite).arg("--out").arg(out);
    for m in models {
        c.args(["--model", m]);
    }
    c
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn result(path: &Path) -> RunResult {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn speed_of(r: &RunResult, model: &str) -> Option<Speed> {
    r.run.as_ref().unwrap().models.iter().find(|m| m.name == model).unwrap().speed.clone()
}

/// Positive, finite, and the rates what the counts say (to the 5 significant digits kept).
fn check(s: &Speed) {
    for x in [s.seconds, s.model_seconds, s.images_per_second, s.model_ms_per_image] {
        assert!(x.is_finite() && x > 0.0, "{s:?}");
    }
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-3 * b;
    assert!(close(s.images_per_second, s.images as f64 / s.seconds), "{s:?}");
    assert!(close(s.model_ms_per_image, s.model_seconds * 1000.0 / s.images as f64), "{s:?}");
}

#[test]
fn every_model_of_a_run_records_its_speed() {
    let d = tempfile::tempdir().unwrap();
    let suite = common::synthetic_suite(d.path(), "shapes", 4);
    // One unreadable image: it fails before any model, so no model is timed on it.
    std::fs::write(d.path().join("shapes").join(common::EXAMPLE_WNIDS[0]).join("broken.png"), b"not a png").unwrap();
    let slow = slow_model(d.path(), 40);
    let out = d.path().join("out");
    let o = cmd(&suite, &[&example(), slow.to_str().unwrap()], &out, "4").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let r = result(&out.join("result.json"));
    let mut passes = Vec::new();
    for name in ["example-shape-colour", "slow"] {
        let s = speed_of(&r, name).unwrap_or_else(|| panic!("no speed for {name}"));
        check(&s);
        let e = r.results.iter().find(|e| e.model == name).unwrap();
        assert_eq!((e.totals.expected, e.totals.evaluated, e.totals.failed), (41, 40, 1));
        assert_eq!(s.images, e.totals.evaluated, "{name}: images scored, not the broken one");
        // Its copies (side by side) spent at most the pass's time each inside the model.
        let info = r.run.as_ref().unwrap().models.iter().find(|m| m.name == name).unwrap();
        let copies = info.replicas.unwrap() as f64;
        assert!(s.model_seconds <= s.seconds * copies, "{name}: {copies} copies, {s:?}");
        passes.push(s.seconds);
    }
    assert_eq!(passes[0], passes[1], "the two models shared one pass");
    // The slow model sleeps 40 ms per batch of 4 inside its calls: at least 10 ms an image.
    let slow_speed = speed_of(&r, "slow").unwrap();
    assert!(slow_speed.model_ms_per_image >= 10.0, "{slow_speed:?}");
    assert!(slow_speed.model_seconds >= 0.4, "ten batches of 40 ms: {slow_speed:?}");
    // And under the table, a line per model.
    let stdout = String::from_utf8_lossy(&o.stdout);
    for name in ["example-shape-colour", "slow"] {
        let line =
            stdout.lines().find(|l| l.starts_with(&format!("speed: {name} "))).unwrap_or_else(|| panic!("{stdout}"));
        assert!(line.contains(" img/s, ") && line.ends_with("ms/img in the model (40 images)"), "{line}");
    }
}

#[test]
fn a_resumed_run_counts_only_what_it_scored_now() {
    let d = tempfile::tempdir().unwrap();
    let suite = common::synthetic_suite(d.path(), "shapes", 4);
    let slow = slow_model(d.path(), 150);
    let out = d.path().join("out");
    let slow = slow.to_str().unwrap();
    let log = out.join("predictions/slow__shapes.jsonl");
    let mut child = cmd(&suite, &[slow], &out, "2").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while read_log_lenient(&log).map(|(_, r, _)| r.len()).unwrap_or(0) < 4 {
        assert!(start.elapsed() < Duration::from_secs(120), "the run wrote nothing");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be interrupted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let kept = read_log(&log).unwrap().1.len();
    assert!((4..40).contains(&kept), "{kept}");

    let o = cmd(&suite, &[slow], &out, "2").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let r = result(&out.join("result.json"));
    assert_eq!(r.results[0].totals.evaluated, 40);
    let s = speed_of(&r, "slow").unwrap();
    check(&s);
    assert_eq!(s.images, 40 - kept as u64, "only the images scored now");
    // 150 ms per batch of 2: 75 ms an image inside the model.
    assert!(s.model_ms_per_image >= 75.0, "{s:?}");

    // Nothing left to score: no speed, and no speed line.
    let o = cmd(&suite, &[slow], &out, "2").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(speed_of(&result(&out.join("result.json")), "slow"), None);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("speed: "), "{}", text(&o));
    let json = std::fs::read_to_string(out.join("result.json")).unwrap();
    assert!(!json.contains("\"speed\""), "absent, not null");
}

#[test]
fn a_merge_sums_its_shards_speeds() {
    let d = tempfile::tempdir().unwrap();
    let suite = common::synthetic_suite(d.path(), "shapes", 4);
    let out = d.path().join("out");
    let mut shards = Vec::new();
    for sh in ["0/2", "1/2"] {
        let o = cmd(&suite, &[&example()], &out, "4").args(["--shard", sh]).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let tag = sh.replace('/', "-of-");
        let s = speed_of(&result(&out.join(format!("result.shard-{tag}.json"))), "example-shape-colour").unwrap();
        check(&s);
        shards.push(s);
    }
    let o = Command::new(common::shiftbench_bin()).arg("merge").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let merged = result(&out.join("result.json"));
    let m = speed_of(&merged, "example-shape-colour").unwrap();
    check(&m);
    assert_eq!(m.images, 40);
    assert_eq!(m.images, shards[0].images + shards[1].images);
    assert!((m.seconds - (shards[0].seconds + shards[1].seconds)).abs() < 1e-3, "{m:?} {shards:?}");
    // Merged again (the earlier merge's result.json is among the inputs now): not counted twice.
    let o = Command::new(common::shiftbench_bin()).arg("merge").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(speed_of(&result(&out.join("result.json")), "example-shape-colour").unwrap().images, 40);
}
