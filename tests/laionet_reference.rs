//! `shiftbench laionet build` end to end against the paper's own pipeline (bench/laionet_reference.py:
//! its matching loop, its multi-class drop, sentence-transformers' `encode` and sklearn's
//! `normalize`, its threshold and NSFW rule) with all-mpnet-base-v2, on real short texts nobody
//! here wrote: WordNet's definitions and lemma lists of ImageNet-21k's synsets, read as captions.
//! The per-class match counts must be equal, every candidate's similarity within 1e-4 of the
//! reference's, and the selected rows identical. Needs `../shared` and the Python test
//! environment (`.pyenv-test`); skips, saying so, without them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

const THRESHOLD: f64 = 0.58;
const SIMILARITY: &str = "text_to_name_def_wnid_similarity_all-mpnet-base-v2";

/// One caption row: SAMPLE_ID, TEXT, NSFW.
type Row = (i64, Option<String>, Option<&'static str>);

/// The corpus, chosen deterministically: every third WordNet definition and every third lemma
/// list (offset by one, so that a synset's two lines rarely both come in) of ImageNet-21k's
/// 21,844 synsets, 14,563 texts of which about 2,200 name exactly one LAIONet class. Every 97th
/// caption is null; the NSFW tags are mixed by position: NSFW, POSSIBLE, a null tag and UNLIKELY
/// (the rest). Sample ids are spaced, not row numbers.
fn corpus(shared: &Path) -> Vec<Row> {
    let mut texts: Vec<String> = Vec::new();
    for (f, keep) in [("classes/imagenet_synset_to_definition.txt", 0), ("classes/imagenet_synset_to_lemma.txt", 1)] {
        let all = std::fs::read_to_string(shared.join(f)).unwrap();
        let lines: Vec<&str> = all.lines().collect();
        assert!(lines.len() > 21_000, "{f}: {} lines", lines.len());
        for (i, line) in lines.iter().enumerate() {
            if i % 3 == keep {
                texts.push(line.split_once('\t').unwrap().1.to_string());
            }
        }
    }
    texts
        .into_iter()
        .enumerate()
        .map(|(k, t)| {
            let nsfw = match (k % 11, k % 23) {
                (3, _) => Some("NSFW"),
                (7, _) => Some("POSSIBLE"),
                (_, 5) => None,
                _ => Some("UNLIKELY"),
            };
            (10_000_000 + 7 * k as i64, (k % 97 != 50).then_some(t), nsfw)
        })
        .collect()
}

/// The rows as LAION-like Parquet files (SAMPLE_ID, URL, TEXT, NSFW), `files` of them, and as the
/// JSON lines the reference reads.
fn write_corpus(dir: &Path, rows: &[Row], files: usize) {
    std::fs::create_dir_all(dir.join("captions")).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("SAMPLE_ID", DataType::Int64, false),
        Field::new("URL", DataType::Utf8, false),
        Field::new("TEXT", DataType::Utf8, true),
        Field::new("NSFW", DataType::Utf8, true),
    ]));
    for (f, chunk) in rows.chunks(rows.len().div_ceil(files)).enumerate() {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(chunk.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(StringArray::from(
                chunk.iter().map(|r| format!("https://laion.example/{}.jpg", r.0)).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(chunk.iter().map(|r| r.1.clone()).collect::<Vec<_>>())),
            Arc::new(StringArray::from(chunk.iter().map(|r| r.2).collect::<Vec<_>>())),
        ];
        let path = dir.join(format!("captions/part-{f}.parquet"));
        let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema.clone(), None).unwrap();
        // Several row groups a file, as LAION's parts have.
        for b in 0..cols[0].len().div_ceil(2000) {
            let n = 2000.min(cols[0].len() - b * 2000);
            let slice: Vec<ArrayRef> = cols.iter().map(|c| c.slice(b * 2000, n)).collect();
            w.write(&RecordBatch::try_new(schema.clone(), slice).unwrap()).unwrap();
        }
        w.close().unwrap();
    }
    let jsonl: String = rows
        .iter()
        .map(|r| serde_json::json!({"SAMPLE_ID": r.0, "TEXT": r.1, "NSFW": r.2}).to_string() + "\n")
        .collect();
    std::fs::write(dir.join("rows.jsonl"), jsonl).unwrap();
}

/// SAMPLE_ID -> (wnid, similarity) of a builder output.
fn read_rows(path: &Path) -> BTreeMap<i64, (String, f32)> {
    let mut out = BTreeMap::new();
    for b in ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap().build().unwrap() {
        let b = b.unwrap();
        let ids = b.column_by_name("SAMPLE_ID").unwrap().as_primitive::<Int64Type>();
        let wnids = b.column_by_name("wnid").unwrap().as_string::<i32>();
        let sims = b.column_by_name(SIMILARITY).unwrap().as_primitive::<Float32Type>();
        for i in 0..b.num_rows() {
            let dup = out.insert(ids.value(i), (wnids.value(i).to_string(), sims.value(i)));
            assert!(dup.is_none(), "{}: sample {} twice", path.display(), ids.value(i));
        }
    }
    out
}

#[test]
fn the_build_equals_the_papers_pipeline_on_wordnet_text_with_all_mpnet_base_v2() {
    let test = "laionet_reference";
    let Some(shared) = common::shared_data(test) else { return };
    let Some(env) = common::pyenv(test) else { return };
    let encoder = common::exported_text_encoder(&env, "all-mpnet-base-v2");
    let d = tempfile::tempdir().unwrap();
    let rows = corpus(&shared);
    write_corpus(d.path(), &rows, 2);

    // shiftbench, through its command line.
    let out = d.path().join("out");
    let o = std::process::Command::new(common::shiftbench_bin())
        .args(["laionet", "build", "--captions"])
        .arg(d.path().join("captions"))
        .arg("--encoder")
        .arg(&encoder)
        .args(["--threshold", &THRESHOLD.to_string(), "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!("{}", String::from_utf8_lossy(&o.stdout).trim());

    // The paper's pipeline, on the paper's own dictionary and queries.
    let reference = d.path().join("reference.json");
    let paper = shared.join("paper");
    let o = std::process::Command::new(env.join("venv/bin/python"))
        .arg(common::repo().join("bench/laionet_reference.py"))
        .arg(env.join("models/all-mpnet-base-v2"))
        .arg(paper.join("laionet_lemma2wnid.tsv"))
        .arg(paper.join("laionet_name_def_queries.tsv"))
        .arg(d.path().join("rows.jsonl"))
        .arg(&reference)
        .args(["--threshold", &THRESHOLD.to_string(), "--alias", "n02112837=n02110185"])
        .output()
        .unwrap();
    assert!(o.status.success(), "reference failed: {}", String::from_utf8_lossy(&o.stderr));
    eprintln!("reference: {}", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or(""));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&reference).unwrap()).unwrap();

    // 1. Per-class match counts: matched, multi_dropped, candidates, exactly, for every class.
    let csv = std::fs::read_to_string(out.join("class_counts.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), "wnid,matched,multi_dropped,candidates,above_threshold,selected");
    let mut ours_counts: BTreeMap<String, [u64; 3]> = BTreeMap::new();
    for l in lines {
        let c: Vec<&str> = l.split(',').collect();
        ours_counts.insert(c[0].to_string(), [c[1].parse().unwrap(), c[2].parse().unwrap(), c[3].parse().unwrap()]);
    }
    let theirs_counts: BTreeMap<String, [u64; 3]> = r["counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(w, v)| {
            let v: Vec<u64> = v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
            (w.clone(), [v[0], v[1], v[2]])
        })
        .collect();
    for w in theirs_counts.keys() {
        assert!(ours_counts.contains_key(w), "the reference matched {w}, a class the builder's table lacks");
    }
    let differ: Vec<String> = ours_counts
        .iter()
        .filter(|(w, c)| theirs_counts.get(*w).copied().unwrap_or([0; 3]) != **c)
        .map(|(w, c)| format!("{w}: ours {c:?}, the paper's {:?}", theirs_counts.get(w)))
        .collect();
    assert!(differ.is_empty(), "per-class counts differ: {differ:?}");

    // 2. The candidates: the same rows, classes, and similarities within 1e-4.
    let ours = read_rows(&out.join("candidates.parquet"));
    let theirs: BTreeMap<i64, (String, f64)> = r["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_i64().unwrap(), (c[1].as_str().unwrap().to_string(), c[2].as_f64().unwrap())))
        .collect();
    assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "the candidates differ");
    let (mut worst, mut at) = (0f64, 0i64);
    for (id, (w, s)) in &ours {
        let (tw, ts) = &theirs[id];
        assert_eq!(w, tw, "sample {id}");
        let diff = (*s as f64 - ts).abs();
        if diff > worst {
            (worst, at) = (diff, *id);
        }
    }
    let text_of = |id: i64| rows.iter().find(|r| r.0 == id).and_then(|r| r.1.clone()).unwrap_or_default();
    eprintln!(
        "{} candidates; largest similarity difference from sentence-transformers {worst:.2e} (sample {at}: {:?})",
        ours.len(),
        text_of(at)
    );
    assert!(worst <= 1e-4, "sample {at} differs by {worst:.2e}: {} vs {}", ours[&at].1, theirs[&at].1);

    // 3. The selected rows, identical. A row whose two similarities lie within the 1e-4 above but
    // on either side of the threshold may be selected by one side only: such rows are named and
    // left out of the comparison; rows merely near the threshold are compared like the others.
    let selected_ours: BTreeSet<i64> = read_rows(&out.join("laionet.parquet")).into_keys().collect();
    let selected_theirs: BTreeSet<i64> =
        r["selected"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let near: Vec<i64> = theirs.iter().filter(|(_, (_, s))| (s - THRESHOLD).abs() <= 1e-4).map(|(id, _)| *id).collect();
    let straddling: BTreeSet<i64> =
        near.iter().copied().filter(|id| (ours[id].1 as f64 > THRESHOLD) != (theirs[id].1 > THRESHOLD)).collect();
    for id in &near {
        eprintln!(
            "sample {id} lies within 1e-4 of the threshold (ours {}, the paper's {}): selected by ours {}, by the paper's {}",
            ours[id].1,
            theirs[id].1,
            selected_ours.contains(id),
            selected_theirs.contains(id)
        );
    }
    let borderline = &straddling;
    let only_ours: Vec<&i64> = selected_ours.difference(&selected_theirs).filter(|i| !borderline.contains(i)).collect();
    let only_theirs: Vec<&i64> =
        selected_theirs.difference(&selected_ours).filter(|i| !borderline.contains(i)).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "selected by ours only: {only_ours:?}; by the paper's only: {only_theirs:?}"
    );
    let above = theirs.values().filter(|(_, s)| *s > THRESHOLD).count();
    eprintln!(
        "{} selected by both ({} candidates above {THRESHOLD}, the rest not tagged UNLIKELY); {} within 1e-4 of the \
         threshold, {} of them on either side of it",
        selected_ours.len(),
        above,
        near.len(),
        straddling.len()
    );

    // Not vacuous: real matches, multi-class drops, null captions, and rows above the threshold
    // on both sides of the NSFW rule.
    assert!(ours.len() > 1500 && ours.len() < 3000, "{} candidates", ours.len());
    assert!(r["multi"].as_u64().unwrap() > 100 && r["null"].as_u64().unwrap() > 100, "{}", r["multi"]);
    assert!(selected_ours.len() > 100 && above > selected_ours.len() + 50, "{} of {above}", selected_ours.len());
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["candidates"].as_u64(), Some(ours.len() as u64), "{summary}");
    assert_eq!(summary["selected"].as_u64(), Some(selected_ours.len() as u64), "{summary}");
    assert_eq!(summary["null_captions"].as_u64(), r["null"].as_u64(), "{summary}");
}
