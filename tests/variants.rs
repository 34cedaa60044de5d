//! Suite variants without running a model again, and class-index layouts.
//!
//! - LAIONet's filters as settings: similarity strictly above the threshold by default (`>`, the
//!   paper's dataset script) or `>=` (`similarity_inclusive`), in float32 and float64 columns;
//!   a second similarity filter (`similarity_filters`) and `max_per_class` select the right rows.
//! - A predictions log made under a loose threshold, re-scored with `score --log --suite` under
//!   a strict suite, gives exactly the result of a run of the strict suite; `sweep` gives the same
//!   numbers at that threshold.
//! - ImageNet-V2's class-index folders (`folder_labels: imagenet1k_index`, the shipped
//!   `suites/imagenetv2-*.yaml`) give the plain folder's predictions, record for record.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use parquet::basic::{ConvertedType, Repetition, Type as PhysicalType};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, FloatType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use shiftbench::data::suite::Suite;
use shiftbench::results::predlog::{read_log, Record};
use shiftbench::run::score::{score_noted, ScoreSpec};
use shiftbench::run::sweep::{parse_thresholds, sweep, Sweep, SweepSpec};
use shiftbench::{log_path, run, EvalOptions, EvalResult, RunResult, RunSpec};

const CLIP: &str = "text_to_name_def_wnid_similarity_clip-vit-base-patch32";
const MPNET: &str = "text_to_name_def_wnid_similarity_all-mpnet-base-v2";

// ---------------------------------------------------------------------------------------------
// Fixture builders

/// A column of a Parquet file the tests write.
enum Col {
    Str(&'static str, Vec<String>),
    Int(&'static str, Vec<i64>),
    F32(&'static str, Vec<f32>),
    F64(&'static str, Vec<f64>),
    /// A nullable boolean.
    Bool(&'static str, Vec<Option<bool>>),
}

/// Writes a one-row-group Parquet file with the parquet crate's own writer.
fn write_parquet(path: &Path, cols: Vec<Col>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let fields: Vec<Arc<Type>> =
        cols.iter()
            .map(|c| {
                let b = match c {
                    Col::Str(n, _) => Type::primitive_type_builder(n, PhysicalType::BYTE_ARRAY)
                        .with_converted_type(ConvertedType::UTF8),
                    Col::Int(n, _) => Type::primitive_type_builder(n, PhysicalType::INT64),
                    Col::F32(n, _) => Type::primitive_type_builder(n, PhysicalType::FLOAT),
                    Col::F64(n, _) => Type::primitive_type_builder(n, PhysicalType::DOUBLE),
                    Col::Bool(n, _) => Type::primitive_type_builder(n, PhysicalType::BOOLEAN),
                };
                let rep = if matches!(c, Col::Bool(..)) { Repetition::OPTIONAL } else { Repetition::REQUIRED };
                Arc::new(b.with_repetition(rep).build().unwrap())
            })
            .collect();
    let schema = Arc::new(Type::group_type_builder("schema").with_fields(fields).build().unwrap());
    let props = Arc::new(WriterProperties::builder().build());
    let mut w = SerializedFileWriter::new(File::create(path).unwrap(), schema, props).unwrap();
    let mut rg = w.next_row_group().unwrap();
    let mut i = 0;
    while let Some(mut cw) = rg.next_column().unwrap() {
        match &cols[i] {
            Col::Str(_, v) => {
                let v: Vec<ByteArray> = v.iter().map(|s| ByteArray::from(s.as_str())).collect();
                cw.typed::<ByteArrayType>().write_batch(&v, None, None).unwrap();
            }
            Col::Int(_, v) => {
                cw.typed::<Int64Type>().write_batch(v, None, None).unwrap();
            }
            Col::F32(_, v) => {
                cw.typed::<FloatType>().write_batch(v, None, None).unwrap();
            }
            Col::F64(_, v) => {
                cw.typed::<DoubleType>().write_batch(v, None, None).unwrap();
            }
            Col::Bool(_, v) => {
                let vals: Vec<bool> = v.iter().flatten().copied().collect();
                let defs: Vec<i16> = v.iter().map(|b| b.is_some() as i16).collect();
                cw.typed::<BoolType>().write_batch(&vals, Some(&defs), None).unwrap();
            }
        }
        cw.close().unwrap();
        i += 1;
    }
    rg.close().unwrap();
    w.close().unwrap();
}

fn write(p: &Path, body: impl AsRef<[u8]>) -> PathBuf {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
    p.to_path_buf()
}

/// One LAIONet row of a fixture.
struct Row {
    id: i64,
    wnid: &'static str,
    clip: f32,
    mpnet: f64,
    nsfw: &'static str,
    text_in_image: Option<bool>,
    key: String,
}

/// Writes LAIONet rows as the paper's Parquet has them (the CLIP similarity as float32, the
/// MPNet one as float64), with a `key` column for `join: key`.
fn write_rows(path: &Path, rows: &[Row]) {
    write_parquet(
        path,
        vec![
            Col::Int("SAMPLE_ID", rows.iter().map(|r| r.id).collect()),
            Col::Str("URL", rows.iter().map(|r| format!("https://img.example.org/{}.png", r.key)).collect()),
            Col::Str("NSFW", rows.iter().map(|r| r.nsfw.to_string()).collect()),
            Col::Str("name_def_wnid", rows.iter().map(|r| r.wnid.to_string()).collect()),
            Col::F32(CLIP, rows.iter().map(|r| r.clip).collect()),
            Col::F64(MPNET, rows.iter().map(|r| r.mpnet).collect()),
            Col::Bool("wnid_is_in_recognized_text", rows.iter().map(|r| r.text_in_image).collect()),
            Col::Str("key", rows.iter().map(|r| r.key.clone()).collect()),
        ],
    );
}

fn row(id: i64, wnid: &'static str, clip: f32, mpnet: f64) -> Row {
    Row { id, wnid, clip, mpnet, nsfw: "UNLIKELY", text_in_image: Some(false), key: format!("{id:09}") }
}

/// A LAIONet suite file over `rows.parquet` (labels only: no images) with `extra` settings
/// under `laionet:` (each line indented by four spaces).
fn labels_suite(d: &Path, file: &str, extra: &str) -> PathBuf {
    let mut y = String::from("name: laionet\nsource:\n  laionet:\n    rows: rows.parquet\n");
    for l in extra.lines() {
        y.push_str(&format!("    {l}\n"));
    }
    write(&d.join(file), y)
}

fn ids(suite: &Suite) -> Vec<&str> {
    suite.samples.iter().map(|s| s.id.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// The filters

#[test]
fn similarity_is_strictly_above_the_threshold_unless_inclusive() {
    let d = tempfile::tempdir().unwrap();
    let w = "n01440764";
    // In both columns: 1 exactly at 0.82 (float32 0.82 and float64 0.82), 2 above, 3 below,
    // 4 one step above (the next float32, and 0.82 + 1e-10), 5 float64 holding float32 0.82
    // (0.8199999928: below 0.82 in float64).
    let rows = [
        row(1, w, 0.82, 0.82),
        row(2, w, 0.83, 0.83),
        row(3, w, 0.81, 0.81),
        row(4, w, f32::from_bits(0.82f32.to_bits() + 1), 0.820_000_000_1),
        row(5, w, 0.5, 0.82f32 as f64),
    ];
    write_rows(&d.path().join("rows.parquet"), &rows);
    let load = |column: &str, inclusive: Option<bool>| -> Suite {
        let mut extra = format!("similarity_column: {column}\nmin_similarity: 0.82\n");
        if let Some(i) = inclusive {
            extra.push_str(&format!("similarity_inclusive: {i}\n"));
        }
        Suite::load_labels(&labels_suite(d.path(), "s.yaml", &extra)).unwrap()
    };
    // The default is the dataset script's `>`: the rows exactly at 0.82 are dropped.
    assert_eq!(ids(&load(CLIP, None)), ["2", "4"]);
    assert_eq!(ids(&load(MPNET, None)), ["2", "4"]);
    assert_eq!(ids(&load(CLIP, Some(false))), ["2", "4"]);
    // `>=` keeps them; float32 0.82 is exactly at 0.82 in its own precision, float64 0.82f32 is not.
    assert_eq!(ids(&load(CLIP, Some(true))), ["1", "2", "4"]);
    assert_eq!(ids(&load(MPNET, Some(true))), ["1", "2", "4"]);
    // The note says which comparison dropped how many rows.
    let y = labels_suite(d.path(), "n.yaml", &format!("similarity_column: {CLIP}\nimages: img\n"));
    std::fs::create_dir_all(d.path().join("img")).unwrap();
    let notes = Suite::load(&y).unwrap().notes;
    assert!(notes[0].contains(&format!("5 rows, 2 kept (dropped 3 with {CLIP} <= 0.82")), "{notes:?}");
}

#[test]
fn a_second_filter_and_max_per_class_select_the_right_rows() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = ("n01440764", "n01443537");
    let mut nsfw = row(70, b, 0.99, 0.9);
    nsfw.nsfw = "NSFW";
    let rows = [
        row(10, a, 0.90, 0.60),
        row(100, a, 0.85, 0.70), // ties with 20 at 0.85: 20 is kept, ids compare as numbers
        row(20, a, 0.85, 0.70),
        row(40, a, 0.95, 0.50), // the most similar by CLIP, but not above 0.5 by MPNet
        row(50, a, 0.81, 0.90), // below the CLIP threshold
        row(60, b, 0.83, 0.51),
        nsfw,
        row(80, b, 0.84, 0.40), // fails MPNet
    ];
    write_rows(&d.path().join("rows.parquet"), &rows);
    let second = format!("similarity_filters: [{{column: {MPNET}, min: 0.5}}]\n");
    let s = Suite::load_labels(&labels_suite(d.path(), "two.yaml", &second)).unwrap();
    assert_eq!(ids(&s), ["10", "100", "20", "60"]);
    let s = Suite::load_labels(&labels_suite(d.path(), "cap.yaml", &format!("{second}max_per_class: 2\n"))).unwrap();
    assert_eq!(ids(&s), ["10", "20", "60"]);
    // Without the second filter, 40 is class a's most similar row: the cap keeps 40 and 10.
    let s = Suite::load_labels(&labels_suite(d.path(), "cap1.yaml", "max_per_class: 2\n")).unwrap();
    assert_eq!(ids(&s), ["10", "40", "60", "80"]);
    // The note counts each filter's drops.
    std::fs::create_dir_all(d.path().join("img")).unwrap();
    let y = labels_suite(d.path(), "noted.yaml", &format!("{second}max_per_class: 2\nimages: img\n"));
    let notes = Suite::load(&y).unwrap().notes;
    assert!(
        notes[0].contains(&format!(
            "8 rows, 3 kept (dropped 1 with {CLIP} <= 0.82, 2 with {MPNET} <= 0.5, 1 with NSFW not in [UNLIKELY], \
             1 beyond the 2 most similar of their class)"
        )),
        "{notes:?}"
    );
    // Settings that cannot work are refused.
    let y = labels_suite(d.path(), "bad.yaml", "max_per_class: 0\n");
    assert!(format!("{:#}", Suite::load_labels(&y).unwrap_err()).contains("max_per_class must be at least 1"));
    let y = labels_suite(d.path(), "bad2.yaml", "similarity_column: null\nmax_per_class: 3\n");
    assert!(format!("{:#}", Suite::load_labels(&y).unwrap_err()).contains("similarity_column, which is null"));
}

// ---------------------------------------------------------------------------------------------
// Re-scoring a log under stricter filters, and the sweep

/// A LAIONet fixture with images: `n` rows over the example plugin's ten classes, CLIP
/// similarities from 0.60 to 0.98 (some exactly at 0.82 and 0.76), a row id repeated (a low and
/// a high similarity row), rows the NSFW and text filters drop, and rows whose image was never
/// fetched; the images (small PNGs) in an img2dataset folder shard, joined by key.
fn laion_with_images(d: &Path) {
    let mut rows = Vec::new();
    for k in 0..80i64 {
        let c = (k % 10) as usize;
        let wnid = common::EXAMPLE_WNIDS[c];
        // The float32 nearest each decimal, as a float32 column holds 0.82.
        let clip = ((60 + (k * 7) % 39) as f64 / 100.0) as f32;
        let mpnet = 0.40 + ((k * 11) % 37) as f64 / 100.0;
        let mut r = row(7_000_000 + k, wnid, clip, mpnet);
        if k % 13 == 8 {
            r.nsfw = "NSFW";
        }
        if k % 17 == 3 {
            r.text_in_image = Some(true);
        }
        if k % 9 == 4 {
            r.text_in_image = None;
        }
        if k % 19 != 7 {
            // A coloured square whose colour depends on the class and a little on the row, so the
            // example model gets some right and some wrong.
            let img = image::RgbImage::from_fn(48, 40, |x, y| {
                let inside = (12..36).contains(&x) && (8..32).contains(&y);
                if inside {
                    image::Rgb([(c * 25 + (k as usize % 4) * 30) as u8, (k * 40 % 256) as u8, 255 - (c * 20) as u8])
                } else {
                    image::Rgb([200, 200, 200])
                }
            });
            let p = d.join(format!("images/00000/{}.png", r.key));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            img.save(p).unwrap();
        }
        rows.push(r);
    }
    // The same SAMPLE_ID twice: a row the strict threshold drops, then one it keeps; ids count
    // every row, so the kept one is 7000003#2 under every threshold.
    (rows[3].clip, rows[3].text_in_image) = (0.71, Some(false));
    let mut again = row(7_000_003, common::EXAMPLE_WNIDS[3], 0.93, 0.9);
    again.key = rows[13].key.clone(); // an image that exists
    rows.push(again);
    write_rows(&d.join("laion/rows.parquet"), &rows);
}

/// A LAIONet suite file over the fixture, with `extra` settings under `laionet:`.
fn laion_suite(d: &Path, file: &str, name: &str, extra: &str) -> PathBuf {
    let mut y =
        format!("name: {name}\nsource:\n  laionet:\n    rows: laion/rows.parquet\n    images: images\n    join: key\n");
    for l in extra.lines() {
        y.push_str(&format!("    {l}\n"));
    }
    y.push_str("weights: own\n");
    write(&d.join(file), y)
}

fn run_example(suites: Vec<PathBuf>, out: &Path) -> RunResult {
    run(&RunSpec {
        suites,
        models: vec![common::plugin_lib("shiftbench_example").to_string_lossy().into_owned()],
        out: out.to_path_buf(),
        eval: EvalOptions { batch: 8, threads: 2, ..EvalOptions::default() },
        fresh: true,
        ..RunSpec::default()
    })
    .unwrap()
}

/// The counts, per-class numbers, metrics and problems of two results are identical.
fn assert_same(a: &EvalResult, b: &EvalResult, what: &str) {
    assert_eq!(a.totals, b.totals, "{what}: totals");
    assert_eq!(a.per_class, b.per_class, "{what}: per_class");
    assert_eq!(a.metrics, b.metrics, "{what}: metrics");
    assert_eq!(a.classes_present, b.classes_present, "{what}: classes");
    assert_eq!(a.weights, b.weights, "{what}: weights");
    assert_eq!(a.problems, b.problems, "{what}: problems");
}

#[test]
fn a_loose_log_rescored_under_a_strict_suite_equals_a_run_of_it() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    laion_with_images(dp);
    let loose = laion_suite(dp, "loose.yaml", "laionet-loose", "min_similarity: 0.7\n");
    let strict = laion_suite(dp, "strict.yaml", "laionet", "min_similarity: 0.82\n");
    let variant = laion_suite(
        dp,
        "variant.yaml",
        "laionet-top2",
        &format!("min_similarity: 0.76\nsimilarity_filters: [{{column: {MPNET}, min: 0.5}}]\nmax_per_class: 2\n"),
    );
    // The models run once, on the loose suite; the strict suites are run too, to compare.
    let loose_run = run_example(vec![loose.clone()], &dp.join("loose"));
    let truth = run_example(vec![strict.clone(), variant.clone()], &dp.join("truth"));
    let model = loose_run.results[0].model.clone();
    let log = log_path(&dp.join("loose"), &model, "laionet-loose");
    let (n_loose, n_strict) = (Suite::load(&loose).unwrap().samples.len(), Suite::load(&strict).unwrap().samples.len());
    assert!(n_strict < n_loose && n_strict > 10, "{n_strict} of {n_loose}");
    // The repeated id names the same row under both thresholds.
    let has = |y: &Path, id: &str| Suite::load_labels(y).unwrap().samples.iter().any(|s| s.id == id);
    assert!(has(&loose, "7000003") && has(&loose, "7000003#2"));
    assert!(!has(&strict, "7000003") && has(&strict, "7000003#2"));
    assert_eq!(truth.results[0].totals.missing, 1, "a kept row whose image was never fetched");

    for (suite, t) in [(&strict, &truth.results[0]), (&variant, &truth.results[1])] {
        let spec = ScoreSpec { logs: vec![log.clone()], suite: Some(suite.clone()), ..ScoreSpec::default() };
        let (scored, notes) = score_noted(&spec).unwrap();
        let r = &scored.results[0];
        eprintln!("{}: {} (totals {:?})", t.suite, notes[0], r.totals);
        assert_eq!(r.suite, t.suite);
        assert_same(r, t, &t.suite);
        assert_eq!(r.weights, "frequency");
        assert!(notes[0].contains("0 not in the log") && !notes[0].contains(" 0 of the log's samples left out"));
    }
    // The suite's samples the log lacks count as missing, with the reason: here the strict
    // suite re-scores a log of another run's shard-like subset (only the first 20 records).
    let (h, recs) = read_log(&log).unwrap();
    let part = dp.join("part.jsonl");
    let mut text = serde_json::to_string(&h).unwrap() + "\n";
    for r in recs.iter().take(20) {
        text.push_str(&(serde_json::to_string(r).unwrap() + "\n"));
    }
    write(&part, text);
    let spec = ScoreSpec { logs: vec![part.clone()], suite: Some(strict.clone()), ..ScoreSpec::default() };
    let (scored, _) = score_noted(&spec).unwrap();
    let r = &scored.results[0];
    assert_eq!(r.totals.expected, truth.results[0].totals.expected);
    let absent = r.problems.iter().filter(|p| p.reason.contains("not in the predictions log re-scored")).count();
    assert!(absent > 0 && r.totals.missing as usize >= absent, "{:?}", r.totals);

    // The command line: `score --log --suite` writes the same result and says what it did.
    let json = dp.join("scored.json");
    let o = Command::new(common::shiftbench_bin())
        .args(["score", "--log"])
        .arg(&log)
        .arg("--suite")
        .arg(&strict)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("re-scored under laionet"), "{err}");
    let cli = RunResult::read(&json).unwrap();
    assert_same(&cli.results[0], &truth.results[0], "score CLI");
    // Logs of two suites cannot be re-scored under one.
    let other = log_path(&dp.join("truth"), &model, "laionet-top2");
    let spec = ScoreSpec { logs: vec![log.clone(), other], suite: Some(strict.clone()), ..ScoreSpec::default() };
    assert!(format!("{:#}", score_noted(&spec).unwrap_err()).contains("re-scores the logs of one suite"));
    // A suite that shares no sample with the log is a mistake, said so (borrowing only weights
    // is what `weights: {suite: ...}` or --weights-table do).
    let unrelated = write(&dp.join("folder.yaml"), "name: f\nsource:\n  image_folder: images\n");
    let spec = ScoreSpec { logs: vec![log.clone()], suite: Some(unrelated), ..ScoreSpec::default() };
    let e = format!("{:#}", score_noted(&spec).unwrap_err());
    assert!(e.contains("none of the") && e.contains("--weights-table"), "{e}");
}

#[test]
fn a_sweep_at_a_threshold_equals_score_with_the_suite_at_it() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    laion_with_images(dp);
    let loose = laion_suite(dp, "loose.yaml", "laionet", "min_similarity: 0.7\n");
    let loose_run = run_example(vec![loose.clone()], &dp.join("out"));
    let model = loose_run.results[0].model.clone();
    let log = log_path(&dp.join("out"), &model, "laionet");

    let thresholds = parse_thresholds("0.70:0.90:0.02").unwrap();
    let s: Sweep = sweep(&SweepSpec { logs: vec![log.clone()], suite: loose.clone(), thresholds }).unwrap();
    assert_eq!(s.points.len(), 11);
    assert!(!s.inclusive && s.similarity_column == CLIP);
    // Fewer samples as the threshold rises.
    assert!(s.points.windows(2).all(|w| w[0].totals.expected >= w[1].totals.expected));
    // At the log's own threshold, the sweep is the run.
    let first = &s.points[0];
    assert_eq!((first.totals, first.metrics), (loose_run.results[0].totals, loose_run.results[0].metrics));
    // At 0.76 (where a row sits exactly) and 0.82, it is `score --log --suite` with the suite there.
    for (t, inclusive) in [(0.76, false), (0.82, false), (0.82, true)] {
        let extra = format!("min_similarity: {t}\nsimilarity_inclusive: {inclusive}\n");
        let at = laion_suite(dp, "at.yaml", "laionet", &extra);
        let spec = ScoreSpec { logs: vec![log.clone()], suite: Some(at.clone()), ..ScoreSpec::default() };
        let r = score_noted(&spec).unwrap().0.results.remove(0);
        let s = if inclusive {
            let loose_incl =
                laion_suite(dp, "loose-incl.yaml", "laionet", "min_similarity: 0.7\nsimilarity_inclusive: true\n");
            sweep(&SweepSpec { logs: vec![log.clone()], suite: loose_incl, thresholds: vec![t] }).unwrap()
        } else {
            s.clone()
        };
        let p = s.points.iter().find(|p| p.min_similarity == t).unwrap();
        assert_eq!((p.totals, p.classes_present, p.metrics), (r.totals, r.classes_present, r.metrics), "{t}");
        assert_eq!(p.weights, "frequency");
        eprintln!("at {t} (inclusive {inclusive}): {:?}", p.totals);
    }
    // Rows exactly at 0.76 and 0.82 make `>=` and `>` differ there.
    let incl = laion_suite(dp, "incl.yaml", "laionet", "min_similarity: 0.7\nsimilarity_inclusive: true\n");
    let si = sweep(&SweepSpec { logs: vec![log.clone()], suite: incl, thresholds: vec![0.76, 0.82] }).unwrap();
    for p in &si.points {
        let q = s.points.iter().find(|q| q.min_similarity == p.min_similarity).unwrap();
        assert!(p.totals.expected > q.totals.expected, "{} {:?} {:?}", p.min_similarity, p.totals, q.totals);
    }

    // The command line: a table, CSV (a row per threshold, model and metric) and JSON.
    let cli = |format: &str| {
        let o = Command::new(common::shiftbench_bin())
            .args(["sweep", "--log"])
            .arg(&log)
            .arg("--suite")
            .arg(&loose)
            .args(["--min-similarity", "0.70:0.90:0.02", "--format", format])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let table = cli("table");
    eprintln!("{table}");
    assert!(table.contains("similarity >") && table.contains("top-1 LAION-wt"), "{table}");
    let p82 = s.points.iter().find(|p| p.min_similarity == 0.82).unwrap();
    let line = table.lines().find(|l| l.contains(" 0.82 ")).unwrap();
    assert!(line.contains(&format!(" {} ", p82.totals.expected)), "{line}");
    let csv = cli("csv");
    assert_eq!(csv.lines().count(), 1 + 11 * 4);
    assert!(csv.starts_with("min_similarity,inclusive,model,suite,weights,expected,"), "{csv}");
    assert!(csv
        .lines()
        .any(|l| l.starts_with(&format!("0.82,false,{model},laionet,frequency,{},", p82.totals.expected))));
    let json: Sweep = serde_json::from_str(&cli("json")).unwrap();
    assert_eq!(json, s);
    // A suite without a LAIONet threshold has nothing to sweep.
    let o = Command::new(common::shiftbench_bin())
        .args(["sweep", "--log"])
        .arg(&log)
        .arg("--suite")
        .arg(write(&dp.join("folder.yaml"), "name: f\nsource:\n  image_folder: images\n"))
        .args(["--min-similarity", "0.8"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("has no source.laionet"));
}

// ---------------------------------------------------------------------------------------------
// ImageNet-V2: class-index folders

/// Hard-links (or copies) `src` to `dst`.
fn link_or_copy(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst).unwrap();
    }
}

/// A small LAIONet rows file for the ImageNet suites' `weights: {suite: laionet.yaml}`.
fn weights_rows(path: &Path) {
    let rows: Vec<Row> = ["n01440764", "n01440764", "n01443537", "n15075141"]
        .iter()
        .enumerate()
        .map(|(i, w)| row(i as i64, w, 0.9, 0.9))
        .collect();
    write_rows(path, &rows);
}

#[test]
fn class_index_folders_give_the_plain_folders_predictions() {
    let Some(data) = common::shared_data("class_index_folders_give_the_plain_folders_predictions") else { return };
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    let src = data.join("imagenet-samples");
    let mut names: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".JPEG"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 1000);
    // Class k of the sorted ImageNet-1k list is folder k: the ImageNet-V2 layout.
    let index: HashMap<&str, usize> = shiftbench_model_config::IMAGENET1K
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, w)| (w, i))
        .collect();
    let v2 = dp.join("imagenetv2-matched-frequency-format-val");
    let mut by_id = HashMap::new();
    for n in &names {
        let k = index[&n[..9]];
        link_or_copy(&src.join(n), &v2.join(k.to_string()).join(n));
        by_id.insert(format!("{k}/{n}"), n.clone());
    }
    weights_rows(&dp.join("laionet.parquet"));
    let reference =
        write(&dp.join("reference.yaml"), format!("name: reference\nsource:\n  files: {}\n", src.display()));

    // The shared ONNX model where its plugin was built, else the example plugin.
    let model = match common::plugin_lib_if_built("shiftbench_onnx", "class_index_folders (ONNX)") {
        Some(_) => "plugins/onnx/examples/mobilenetv2-12-int8.yaml".to_string(),
        None => common::plugin_lib("shiftbench_example").to_string_lossy().into_owned(),
    };
    let out = dp.join("out");
    let shiftbench = |args: &[&str]| {
        Command::new(common::shiftbench_bin())
            .args(args)
            .current_dir(common::repo())
            .env("IMAGENETV2", dp)
            .env("LAIONET_PARQUET", dp.join("laionet.parquet"))
            .env_remove("LAIONET_CLASSES")
            .output()
            .unwrap()
    };
    let o = shiftbench(&[
        "run",
        "--suite",
        reference.to_str().unwrap(),
        "--suite",
        "suites/imagenetv2-matched-frequency.yaml",
        "--model",
        &model,
        "--out",
        out.to_str().unwrap(),
        "--threads",
        "2",
    ]);
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let r = RunResult::read(&out).unwrap();
    let v2r = r.results.iter().find(|x| x.suite == "imagenetv2-matched-frequency").unwrap();
    assert_eq!((v2r.totals.expected, v2r.totals.evaluated, v2r.weights.as_str()), (1000, 1000, "frequency"));
    let name = &r.results[0].model;
    let (_, want) = read_log(&log_path(&out, name, "reference")).unwrap();
    let want: HashMap<&str, &Record> = want.iter().map(|r| (r.id.as_str(), r)).collect();
    let (_, got) = read_log(&log_path(&out, name, "imagenetv2-matched-frequency")).unwrap();
    assert_eq!(got.len(), 1000);
    for rec in &got {
        let w = want[by_id[&rec.id].as_str()];
        assert_eq!(
            (&rec.wnid, rec.status, &rec.top, &rec.scores),
            (&w.wnid, w.status, &w.top, &w.scores),
            "{}",
            rec.id
        );
    }
    let reference_result = &r.results[0];
    assert_eq!(
        (reference_result.totals, reference_result.metrics.top1_equal, reference_result.metrics.top5_equal),
        (v2r.totals, v2r.metrics.top1_equal, v2r.metrics.top5_equal)
    );

    // The other two shipped variants load the same layout; a folder that is no class index is
    // an error naming it.
    let mut per_variant = BTreeMap::new();
    for v in ["threshold0.7", "top-images"] {
        let root = dp.join(format!("imagenetv2-{v}-format-val"));
        for n in names.iter().take(30) {
            link_or_copy(&src.join(n), &root.join(index[&n[..9]].to_string()).join(n));
        }
        let sums = dp.join(format!("{v}.sha256"));
        let o = shiftbench(&[
            "verify",
            "--suite",
            &format!("suites/imagenetv2-{v}.yaml"),
            "--write",
            sums.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{v}: {}", String::from_utf8_lossy(&o.stderr));
        per_variant.insert(v, stdout);
    }
    assert!(per_variant.values().all(|s| s.contains("wrote 30 checksums")), "{per_variant:?}");
    std::fs::create_dir_all(dp.join("imagenetv2-top-images-format-val/n01440764")).unwrap();
    let o = shiftbench(&["verify", "--suite", "suites/imagenetv2-top-images.yaml", "--write", "/dev/null"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("folder \"n01440764\" is not an ImageNet-1k class index 0..999"), "{err}");
}
