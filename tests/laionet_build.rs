//! `shiftbench laionet build`: every rule on a hand-made corpus whose every count is worked out
//! below, resume and shards (byte for byte), the suites it writes, bad input, and the matching
//! against the paper's own Python code on text nobody here wrote (WordNet's definitions).

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int32Type, Int64Type};
use arrow_array::{ArrayRef, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use shiftbench::data::suite::Suite;
use shiftbench::host::text::TextEncoder;
use shiftbench::run::events::Silent;
use shiftbench::run::laionet::{build, count_matches, BuildSpec, Built};

/// A text encoder for tests: a caption holding `sim X` gets (X, sqrt(1 - X^2)), every other text
/// (the class queries) (1, 0); so a caption's similarity to its class's query is exactly X.
struct Fake {
    name: &'static str,
    calls: usize,
}

impl TextEncoder for Fake {
    fn name(&self) -> &str {
        self.name
    }
    fn dim(&self) -> usize {
        2
    }
    fn encode(&mut self, texts: &[&str]) -> Result<Vec<f32>> {
        self.calls += 1;
        let mut out = Vec::new();
        for t in texts {
            let x =
                t.split("sim ").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|x| x.parse::<f32>().ok());
            match x {
                Some(x) => out.extend([x, (1.0 - x * x).max(0.0).sqrt()]),
                None => out.extend([1.0, 0.0]),
            }
        }
        Ok(out)
    }
}

/// Whether python3 runs here (the tests against the paper's Python skip without it).
fn python3(test: &str) -> bool {
    let ok = std::process::Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        common::skipped(test, "python3 is not available to run the paper's code");
    }
    ok
}

fn fake() -> Fake {
    Fake { name: "fake-enc", calls: 0 }
}

type Row<'a> = (i64, Option<&'a str>, &'a str);

/// A LAION-like caption file: SAMPLE_ID, URL, TEXT, NSFW, and WIDTH (int32, carried over).
fn write_captions(path: &Path, rows: &[Row]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("SAMPLE_ID", DataType::Int64, false),
        Field::new("URL", DataType::Utf8, false),
        Field::new("TEXT", DataType::Utf8, true),
        Field::new("NSFW", DataType::Utf8, true),
        Field::new("WIDTH", DataType::Int32, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| format!("http://x/{}.jpg", r.0)).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| Some(r.2)).collect::<Vec<_>>())),
        Arc::new(Int32Array::from(rows.iter().map(|r| Some(r.0 as i32 * 10)).collect::<Vec<_>>())),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

const U: &str = "UNLIKELY";

/// The hand-made corpus (lemmas of the paper's dictionary: kit fox n02119789, goldfish
/// n01443537, orange n07747607, tabby / tabby cat n02123045, tench n01440764, pineapple
/// n07753275; `three-toed sloth` is a lemma that holds punctuation).
fn corpus(d: &Path) -> Vec<PathBuf> {
    let a = d.join("captions/a.parquet");
    write_captions(
        &a,
        &[
            (1, Some("A kit fox in the snow sim 0.9"), U), // kit fox, selected
            (2, Some("goldfish bowl, sim 0.5"), U),        // goldfish, exactly at 0.5: not above
            (3, Some("goldfish (orange) sim 0.95"), U),    // goldfish + orange: dropped
            (4, None, U),                                  // null caption
            (5, Some("Kit fox sim 0.9"), U),               // case: no match (matches with --ignore-case)
            (6, Some("three-toed sloth sim 0.9"), U),      // the lemma holds '-': never matches
            (7, Some("tabby cat sim 0.7"), "NSFW"),        // tabby, above but NSFW
            (8, Some("tabby's favourite toy sim 0.8"), U), // tabby ("'" is punctuation), selected
            (9, Some("goldfish sim 0.51"), U),             // goldfish, selected
            (10, Some("pineapple-ish sim 0.3"), U),        // pineapple ('-' to space), below
        ],
    );
    let b = d.join("captions/b.parquet");
    write_captions(
        &b,
        &[
            (11, Some("tabby sim 0.8"), U),               // tabby, ties row 8
            (12, Some("goldfish sim 0.99"), U),           // goldfish, selected
            (13, Some("a tench and a tench sim 0.6"), U), // tench, selected
            (14, Some("kit fox sim 0.2"), U),             // kit fox, below
            (15, Some("paid for it sim 0.9"), U),         // `ai` (a sloth lemma) inside a word: no match
        ],
    );
    vec![a, b]
}

fn spec(d: &Path, out: &str) -> BuildSpec {
    BuildSpec::new(vec![d.join("captions")], d.join(out), 0.5)
}

fn read(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

fn ids(path: &Path) -> Vec<i64> {
    read(path)
        .iter()
        .flat_map(|b| b.column_by_name("SAMPLE_ID").unwrap().as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

fn class(b: &Built, wnid: &str) -> (u64, u64, u64, u64, u64) {
    let c = b.classes.iter().find(|c| c.wnid == wnid).unwrap();
    (c.matched, c.multi_dropped, c.candidates, c.above_threshold, c.selected)
}

#[test]
fn every_count_of_a_hand_made_corpus() {
    let d = tempfile::tempdir().unwrap();
    corpus(d.path());
    let b = build(&spec(d.path(), "out"), &mut fake(), &Silent).unwrap();
    let s = &b.summary;
    assert_eq!((s.files, s.captions, s.null_captions), (2, 15, 1));
    assert_eq!((s.one_class, s.multi_class, s.candidates), (10, 1, 10));
    // Above 0.5: 1, 7, 8, 9, 11, 12, 13; row 7 is NSFW.
    assert_eq!((s.above_threshold, s.nsfw_dropped, s.selected, s.over_max_per_class), (7, 1, 6, 0));
    // The summary's lines add up: above - NSFW-tagged among them - over the cap = selected.
    assert_eq!(s.nsfw_dropped_above, 1);
    assert_eq!(s.above_threshold - s.nsfw_dropped_above - s.over_max_per_class, s.selected);
    assert_eq!(s.classes_with_lemmas, 995);
    assert_eq!((s.classes_with_candidates, s.classes_selected), (5, 4));
    assert!(s.notes.iter().any(|n| n.starts_with("64 lemmas hold punctuation")), "{:?}", s.notes);
    assert_eq!(class(&b, "n02119789"), (2, 0, 2, 1, 1)); // kit fox
    assert_eq!(class(&b, "n01443537"), (4, 1, 3, 2, 2)); // goldfish
    assert_eq!(class(&b, "n07747607"), (1, 1, 0, 0, 0)); // orange
    assert_eq!(class(&b, "n02123045"), (3, 0, 3, 3, 2)); // tabby
    assert_eq!(class(&b, "n01440764"), (1, 0, 1, 1, 1)); // tench
    assert_eq!(class(&b, "n07753275"), (1, 0, 1, 0, 0)); // pineapple
    assert_eq!(class(&b, "n02457408"), (0, 0, 0, 0, 0)); // three-toed sloth, ai

    let out = d.path().join("out");
    assert_eq!(ids(&out.join("candidates.parquet")), vec![1, 2, 7, 8, 9, 10, 11, 12, 13, 14]);
    assert_eq!(ids(&out.join("laionet.parquet")), vec![1, 8, 9, 11, 12, 13]);
    let batches = read(&out.join("candidates.parquet"));
    let c = &batches[0];
    let names: Vec<String> = c.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(
        names,
        [
            "SAMPLE_ID",
            "URL",
            "TEXT",
            "NSFW",
            "WIDTH",
            "wnid",
            "name_def_wnid",
            "text_to_name_def_wnid_similarity_fake-enc"
        ]
    );
    // Carried over in their own types.
    assert_eq!(c.column(4).as_primitive::<Int32Type>().value(3), 80);
    let sims: Vec<f32> = c.column(7).as_primitive::<Float32Type>().values().to_vec();
    assert_eq!(sims, vec![0.9, 0.5, 0.7, 0.8, 0.51, 0.3, 0.8, 0.99, 0.6, 0.2]);
    let wnid = c.column(5).as_string::<i32>();
    assert_eq!(wnid.value(0), "n02119789");
    let q = c.column(6).as_string::<i32>();
    assert!(q.value(0).starts_with("kit fox which is small grey fox of southwestern United States"), "{}", q.value(0));
    // The URL list, the class table, the figures.
    assert_eq!(
        std::fs::read_to_string(out.join("urls.txt")).unwrap(),
        "http://x/1.jpg\nhttp://x/8.jpg\nhttp://x/9.jpg\nhttp://x/11.jpg\nhttp://x/12.jpg\nhttp://x/13.jpg\n"
    );
    let files = shiftbench::report::laionet::write_build_files(&b, &out).unwrap();
    assert!(files.contains(&"figure3.svg".to_string()) && files.contains(&"figure4.svg".to_string()));
    let csv = std::fs::read_to_string(out.join("class_counts.csv")).unwrap();
    assert!(csv.contains("\nn01443537,4,1,3,2,2\n"), "{csv}");
    let th = std::fs::read_to_string(out.join("figure3_threshold.csv")).unwrap();
    // NSFW-kept candidates strictly above 0.50: 1, 8, 9, 11, 12, 13 in 4 classes; above 0.80: 1, 12.
    assert!(th.contains("\n0.50,4,6\n") && th.contains("\n0.80,2,2\n") && th.contains("\n0.00,5,9\n"), "{th}");
    let f4 = std::fs::read_to_string(out.join("figure4_class_frequencies.csv")).unwrap();
    assert!(
        f4.starts_with("rank,wnid,selected,relative_frequency,uniform\n1,n01443537,2,0.33333333,0.00100503\n"),
        "{f4}"
    );
}

#[test]
fn ignore_case_and_the_per_class_cap() {
    let d = tempfile::tempdir().unwrap();
    corpus(d.path());
    let mut s = spec(d.path(), "ci");
    s.ignore_case = true;
    let b = build(&s, &mut fake(), &Silent).unwrap();
    assert_eq!((b.summary.candidates, b.summary.selected), (11, 7)); // row 5 "Kit fox" too
    let mut s = spec(d.path(), "cap");
    s.max_per_class = Some(1);
    let b = build(&s, &mut fake(), &Silent).unwrap();
    // goldfish keeps 12 (0.99); tabby's 8 and 11 tie at 0.8: the lower id, 8, stays.
    assert_eq!(ids(&d.path().join("cap/laionet.parquet")), vec![1, 8, 12, 13]);
    assert_eq!((b.summary.selected, b.summary.over_max_per_class), (4, 2));
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn reruns_reuse_parts_only_under_the_same_settings_and_shards_merge_exactly() {
    let d = tempfile::tempdir().unwrap();
    let files = corpus(d.path());
    let mut enc = fake();
    let first = build(&spec(d.path(), "out"), &mut enc, &Silent).unwrap();
    let calls = enc.calls;
    let out = d.path().join("out");
    let cand = bytes(&out.join("candidates.parquet"));
    let sel = bytes(&out.join("laionet.parquet"));
    // A rerun: both parts reused, only the queries encoded, the same bytes.
    let mut enc = fake();
    let again = build(&spec(d.path(), "out"), &mut enc, &Silent).unwrap();
    // 995 class queries in calls of 256, no caption.
    assert_eq!((again.summary.parts_reused, enc.calls), (2, 995usize.div_ceil(256)));
    assert_eq!(again.classes, first.classes);
    assert_eq!(
        (bytes(&out.join("candidates.parquet")), bytes(&out.join("laionet.parquet"))),
        (cand.clone(), sel.clone())
    );
    // Another threshold reuses the parts too (it applies when they are put together).
    let mut s = spec(d.path(), "out");
    s.threshold = 0.7;
    assert_eq!(build(&s, &mut fake(), &Silent).unwrap().summary.parts_reused, 2);
    // A changed setting (ignore-case) or encoder (another name) reuses nothing.
    let mut s = spec(d.path(), "out");
    s.ignore_case = true;
    assert_eq!(build(&s, &mut fake(), &Silent).unwrap().summary.parts_reused, 0);
    let mut other = Fake { name: "other-enc", calls: 0 };
    assert_eq!(build(&spec(d.path(), "out"), &mut other, &Silent).unwrap().summary.parts_reused, 0);
    // Another file of the same name, size and modification time (one caption's digit changed,
    // the time set back): its content differs, so it is done again.
    let before = std::fs::read(&files[1]).unwrap();
    let stamp = d.path().join("stamp");
    std::fs::write(&stamp, b"").unwrap();
    assert!(std::process::Command::new("touch").arg("-r").arg(&files[1]).arg(&stamp).status().unwrap().success());
    let mut rows_b = vec![
        (11, Some("tabby sim 0.9"), U),
        (12, Some("goldfish sim 0.99"), U),
        (13, Some("a tench and a tench sim 0.6"), U),
        (14, Some("kit fox sim 0.2"), U),
        (15, Some("paid for it sim 0.9"), U),
    ];
    write_captions(&files[1], &rows_b);
    assert!(std::process::Command::new("touch").arg("-r").arg(&stamp).arg(&files[1]).status().unwrap().success());
    assert_eq!(std::fs::read(&files[1]).unwrap().len(), before.len(), "the same size");
    assert_ne!(std::fs::read(&files[1]).unwrap(), before);
    let b = build(&spec(d.path(), "out"), &mut fake(), &Silent).unwrap();
    assert_eq!(b.summary.parts_reused, 1);
    rows_b[0].1 = Some("tabby sim 0.8");
    write_captions(&files[1], &rows_b);
    // The same, written without statistics and uncompressed, so that even the footer is the same
    // (`cp -p` or `rsync -t` keep the time): the content's fingerprint tells them apart.
    let plain = |rows: &[Row]| {
        let schema = Arc::new(Schema::new(vec![
            Field::new("SAMPLE_ID", DataType::Int64, false),
            Field::new("URL", DataType::Utf8, false),
            Field::new("TEXT", DataType::Utf8, true),
            Field::new("NSFW", DataType::Utf8, true),
            Field::new("WIDTH", DataType::Int32, true),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rows.iter().map(|r| format!("http://x/{}.jpg", r.0)).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rows.iter().map(|r| Some(r.2)).collect::<Vec<_>>())),
            Arc::new(Int32Array::from(rows.iter().map(|r| Some(r.0 as i32 * 10)).collect::<Vec<_>>())),
        ];
        let props = parquet::file::properties::WriterProperties::builder()
            .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None)
            .set_dictionary_enabled(false)
            .set_compression(parquet::basic::Compression::UNCOMPRESSED)
            .build();
        let mut w = ArrowWriter::try_new(File::create(&files[1]).unwrap(), schema.clone(), Some(props)).unwrap();
        w.write(&RecordBatch::try_new(schema, cols).unwrap()).unwrap();
        w.close().unwrap();
    };
    let footer = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        let n = u32::from_le_bytes(b[b.len() - 8..b.len() - 4].try_into().unwrap()) as usize + 8;
        b[b.len() - n..].to_vec()
    };
    plain(&rows_b);
    assert!(std::process::Command::new("touch").arg("-r").arg(&stamp).arg(&files[1]).status().unwrap().success());
    assert_eq!(build(&spec(d.path(), "out"), &mut fake(), &Silent).unwrap().summary.parts_reused, 1);
    let (size, foot) = (std::fs::read(&files[1]).unwrap().len(), footer(&files[1]));
    rows_b[0].1 = Some("tabby sim 0.7");
    plain(&rows_b);
    assert!(std::process::Command::new("touch").arg("-r").arg(&stamp).arg(&files[1]).status().unwrap().success());
    assert_eq!((std::fs::read(&files[1]).unwrap().len(), footer(&files[1])), (size, foot), "same size and footer");
    let b = build(&spec(d.path(), "out"), &mut fake(), &Silent).unwrap();
    assert_eq!(b.summary.parts_reused, 1, "the edited file is done again");
    // A changed input file is done again, the other reused.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_captions(&files[1], &[(11, Some("tabby sim 0.8"), U), (12, Some("goldfish sim 0.99"), U)]);
    let b = build(&spec(d.path(), "out"), &mut fake(), &Silent).unwrap();
    assert_eq!((b.summary.parts_reused, b.summary.captions), (1, 12));
    assert!(calls >= 3);

    // Shards 0/2 and 1/2, then the last run without --shard: the unsharded bytes.
    let e = tempfile::tempdir().unwrap();
    corpus(e.path());
    let unsharded = build(&spec(e.path(), "one"), &mut fake(), &Silent).unwrap();
    for i in 0..2 {
        let mut s = spec(e.path(), "many");
        s.shard = Some(format!("{i}/2").parse().unwrap());
        let b = build(&s, &mut fake(), &Silent).unwrap();
        assert!(b.shard_only.is_some() && b.summary.captions == [10, 5][i]);
        assert!(!e.path().join("many/candidates.parquet").exists());
    }
    let merged = build(&spec(e.path(), "many"), &mut fake(), &Silent).unwrap();
    assert_eq!(merged.summary.parts_reused, 2);
    assert_eq!(merged.classes, unsharded.classes);
    for f in ["candidates.parquet", "laionet.parquet", "urls.txt", "laionet.yaml"] {
        assert_eq!(bytes(&e.path().join("many").join(f)), bytes(&e.path().join("one").join(f)), "{f}");
    }
}

#[test]
fn the_written_suites_select_the_same_rows_and_candidates_sweep() {
    let d = tempfile::tempdir().unwrap();
    corpus(d.path());
    let mut s = spec(d.path(), "out");
    s.max_per_class = Some(1);
    build(&s, &mut fake(), &Silent).unwrap();
    let out = d.path().join("out");
    let a = Suite::load_labels(&out.join("laionet.yaml")).unwrap();
    let b = Suite::load_labels(&out.join("candidates.yaml")).unwrap();
    let pairs = |s: &Suite| {
        let mut v = s.samples.iter().map(|x| (x.id.parse::<i64>().unwrap(), x.wnid.clone())).collect::<Vec<_>>();
        v.sort();
        v
    };
    assert_eq!(pairs(&a), pairs(&b));
    assert_eq!(
        pairs(&a),
        [(1, "n02119789"), (8, "n02123045"), (12, "n01443537"), (13, "n01440764")].map(|(i, w)| (i, w.to_string()))
    );
    // The candidates suite at another threshold: what a build at it selects.
    let y = std::fs::read_to_string(out.join("candidates.yaml")).unwrap();
    std::fs::write(
        out.join("loose.yaml"),
        y.replace("min_similarity: 0.5", "min_similarity: 0.25").replace("    max_per_class: 1\n", ""),
    )
    .unwrap();
    let loose = Suite::load_labels(&out.join("loose.yaml")).unwrap();
    let mut s = spec(d.path(), "loose");
    s.threshold = 0.25;
    build(&s, &mut fake(), &Silent).unwrap();
    let ids_loose: Vec<String> = ids(&d.path().join("loose/laionet.parquet")).iter().map(|i| i.to_string()).collect();
    let mut got: Vec<String> = loose.samples.iter().map(|x| x.id.clone()).collect();
    let mut want = ids_loose;
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(got.len(), 8); // the candidates but 14 (0.2, below) and 7 (NSFW)
}

#[test]
fn bad_input_is_one_sentence_and_loses_nothing() {
    let d = tempfile::tempdir().unwrap();
    corpus(d.path());
    build(&spec(d.path(), "out"), &mut fake(), &Silent).unwrap();
    let out = d.path().join("out");
    let before = (bytes(&out.join("candidates.parquet")), bytes(&out.join("laionet.parquet")));
    let err = |s: &BuildSpec| format!("{:#}", build(s, &mut fake(), &Silent).unwrap_err());

    // An empty file, then a corrupt one, among the captions.
    let bad = d.path().join("captions/c.parquet");
    std::fs::write(&bad, b"").unwrap();
    let e = err(&spec(d.path(), "out"));
    assert!(e.contains("c.parquet is not a readable Parquet file"), "{e}");
    std::fs::write(&bad, b"PAR1 this is not parquet PAR1").unwrap();
    let e = err(&spec(d.path(), "out"));
    assert!(e.contains("c.parquet is not a readable Parquet file"), "{e}");
    // A file without the caption column.
    let schema = Arc::new(Schema::new(vec![Field::new("caption", DataType::Utf8, true)]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec!["a kit fox"])) as ArrayRef]).unwrap();
    let mut w = ArrowWriter::try_new(File::create(&bad).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let e = err(&spec(d.path(), "out"));
    assert!(e.contains("c.parquet: no caption column \"TEXT\" (columns: caption)"), "{e}");
    // Captions that are not UTF-8 (bytes, not marked as text): the row is named.
    let schema = Arc::new(Schema::new(vec![Field::new("TEXT", DataType::Binary, true)]));
    let vals: Vec<Option<&[u8]>> = vec![Some(b"kit fox"), Some(b"bad \xff byte")];
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(BinaryArray::from(vals)) as ArrayRef]).unwrap();
    let mut w = ArrowWriter::try_new(File::create(&bad).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let e = err(&spec(d.path(), "out"));
    assert!(e.contains("c.parquet: column \"TEXT\", row 2: the caption is not UTF-8"), "{e}");
    // The same bytes in a column marked as text (UTF8): refused naming the file and column.
    {
        use parquet::basic::{ConvertedType, Repetition, Type as PhysicalType};
        use parquet::data_type::{ByteArray, ByteArrayType};
        use parquet::file::writer::SerializedFileWriter;
        use parquet::schema::types::Type;
        let field = Type::primitive_type_builder("TEXT", PhysicalType::BYTE_ARRAY)
            .with_converted_type(ConvertedType::UTF8)
            .with_repetition(Repetition::REQUIRED)
            .build()
            .unwrap();
        let schema = Arc::new(Type::group_type_builder("schema").with_fields(vec![Arc::new(field)]).build().unwrap());
        let mut w = SerializedFileWriter::new(File::create(&bad).unwrap(), schema, Default::default()).unwrap();
        let mut rg = w.next_row_group().unwrap();
        let mut col = rg.next_column().unwrap().unwrap();
        let vals = [ByteArray::from(&b"kit fox"[..]), ByteArray::from(&b"bad \xff byte"[..])];
        col.typed::<ByteArrayType>().write_batch(&vals, None, None).unwrap();
        col.close().unwrap();
        rg.close().unwrap();
        w.close().unwrap();
    }
    let e = err(&spec(d.path(), "out"));
    assert!(e.contains("c.parquet: column \"TEXT\", row group 0") && e.contains("UTF-8"), "{e}");
    std::fs::remove_file(&bad).unwrap();
    // A query table missing a class that has lemmas.
    let q = d.path().join("queries.tsv");
    std::fs::write(&q, "wnid\tquery\nn02119789\tkit fox which is a fox\n").unwrap();
    let mut s = spec(d.path(), "out");
    s.queries = Some(q);
    let e = err(&s);
    assert!(e.contains("queries.tsv has no query for 994 class(es) that have lemmas: n01440764"), "{e}");
    // Nothing written before was lost; the good parts are still reused.
    assert_eq!((bytes(&out.join("candidates.parquet")), bytes(&out.join("laionet.parquet"))), before);
    assert_eq!(build(&spec(d.path(), "out"), &mut fake(), &Silent).unwrap().summary.parts_reused, 2);
}

#[test]
fn lemma_lists_give_the_papers_dictionary_by_its_uniqueness_rule() {
    let Some(shared) = common::shared_data("laionet_build") else { return };
    let l = shiftbench::data::lexicon::Lemmas::load(&shared.join("paper/ILSVRC2012_synsets.txt")).unwrap();
    let default =
        shiftbench::data::lexicon::Lemmas::load(&common::repo().join("suites/laionet/lemma2wnid.tsv")).unwrap();
    let mut a = l.entries.clone();
    let mut b = default.entries.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // 999 classes listed, 995 keep a lemma: the 4 left empty are reported.
    assert!(l.notes.iter().any(|n| n.starts_with("4 classes have no lemma of their own")), "{:?}", l.notes);
}

/// Writes `captions` as a one-column Parquet (TEXT) and as JSON lines for the Python reference.
fn write_text_corpus(d: &Path, captions: &[Option<String>]) -> (PathBuf, PathBuf) {
    let pq = d.join("defs/defs.parquet");
    std::fs::create_dir_all(pq.parent().unwrap()).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("TEXT", DataType::Utf8, true)]));
    let mut w = ArrowWriter::try_new(File::create(&pq).unwrap(), schema.clone(), None).unwrap();
    for chunk in captions.chunks(5000) {
        let arr = StringArray::from(chunk.to_vec());
        w.write(&RecordBatch::try_new(schema.clone(), vec![Arc::new(arr) as ArrayRef]).unwrap()).unwrap();
    }
    w.close().unwrap();
    let jl = d.join("defs.jsonl");
    let text: String = captions.iter().map(|c| serde_json::to_string(c).unwrap() + "\n").collect();
    std::fs::write(&jl, text).unwrap();
    (pq, jl)
}

#[test]
fn matching_equals_the_papers_python_on_wordnet_text() {
    let Some(shared) = common::shared_data("laionet_build") else { return };
    if !python3("laionet_build") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // ~21k WordNet definitions and ~21k lemma lists (synset names), read as captions: text
    // nobody here wrote, full of the dictionary's lemmas, punctuation and capitals.
    let mut captions: Vec<Option<String>> = Vec::new();
    for f in ["classes/imagenet_synset_to_definition.txt", "classes/imagenet_synset_to_lemma.txt"] {
        for line in std::fs::read_to_string(shared.join(f)).unwrap().lines() {
            captions.push(line.split_once('\t').map(|(_, t)| t.to_string()));
        }
    }
    captions.push(None);
    let (_pq, jl) = write_text_corpus(d.path(), &captions);
    let mut spec = BuildSpec::new(vec![d.path().join("defs")], d.path().join("out"), 0.5);
    spec.nsfw_column = None;
    // The paper's dictionary exactly as its file has it (the default maps its Siberian husky wnid).
    spec.lemmas = Some(common::repo().join("suites/laionet/lemma2wnid.tsv"));
    let ours = count_matches(&spec, &Silent).unwrap();
    let py = std::process::Command::new("python3")
        .arg(common::repo().join("bench/paper_match.py"))
        .arg(common::repo().join("suites/laionet/lemma2wnid.tsv"))
        .arg(&jl)
        .output()
        .expect("python3");
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let theirs = String::from_utf8(py.stdout).unwrap();
    let mut ours_tsv = String::from("wnid\tmatched\tmulti_dropped\tcandidates\n");
    for c in &ours.classes {
        ours_tsv.push_str(&format!("{}\t{}\t{}\t{}\n", c.wnid, c.matched, c.multi_dropped, c.candidates));
    }
    let differ: Vec<(&str, &str)> = ours_tsv.lines().zip(theirs.lines()).filter(|(a, b)| a != b).take(5).collect();
    assert!(differ.is_empty() && ours_tsv.lines().count() == theirs.lines().count(), "{differ:?}");
    let s = &ours.summary;
    eprintln!(
        "{} captions: {} one class, {} multi-class; python: {}",
        s.captions,
        s.one_class,
        s.multi_class,
        String::from_utf8_lossy(&py.stderr).trim()
    );
    // Not a vacuous check: many captions match, and some name several classes.
    assert!(s.one_class > 1000 && s.multi_class > 50, "{s:?}");
    assert_eq!(s.null_captions, 1);
}

/// img2dataset's `files` output for every candidate of the hand-made corpus: a small PNG and its
/// `.json` with the URL, per row.
fn fetch_images(d: &Path) -> PathBuf {
    let root = d.join("images");
    for id in [1i64, 2, 7, 8, 9, 10, 11, 12, 13, 14] {
        let key = format!("{:09}", id);
        let img = image::RgbImage::from_fn(40, 32, |x, y| image::Rgb([(id * 20) as u8, (x * 6) as u8, (y * 7) as u8]));
        let p = root.join(format!("00000/{key}.png"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        img.save(&p).unwrap();
        let json = format!(r#"{{"url": "http://x/{id}.jpg", "key": "{key}", "status": "success"}}"#);
        std::fs::write(root.join(format!("00000/{key}.json")), json).unwrap();
    }
    root
}

#[test]
fn sweep_and_score_work_on_the_candidates_at_other_thresholds() {
    use shiftbench::run::score::{score_noted, ScoreSpec};
    use shiftbench::run::sweep::{sweep, SweepSpec};
    let d = tempfile::tempdir().unwrap();
    corpus(d.path());
    build(&spec(d.path(), "out"), &mut fake(), &Silent).unwrap();
    let out = d.path().join("out");
    let images = fetch_images(d.path());
    // The written suite, with the images folder the environment would name, and a loose copy.
    let y = std::fs::read_to_string(out.join("candidates.yaml")).unwrap();
    let y = y.replace("${LAIONET_IMAGES}", &images.display().to_string());
    std::fs::write(out.join("at.yaml"), &y).unwrap();
    std::fs::write(out.join("loose.yaml"), y.replace("min_similarity: 0.5", "min_similarity: 0.0")).unwrap();
    let r = shiftbench::run(&shiftbench::RunSpec {
        suites: vec![out.join("loose.yaml")],
        models: vec![common::plugin_lib("shiftbench_example").to_string_lossy().into_owned()],
        out: d.path().join("run"),
        eval: shiftbench::EvalOptions { batch: 4, threads: 2, ..Default::default() },
        fresh: true,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(r.results[0].totals.expected, 9); // every candidate but the NSFW one
    let log = shiftbench::log_path(&d.path().join("run"), &r.results[0].model, "laionet-candidates");
    let s =
        sweep(&SweepSpec { logs: vec![log.clone()], suite: out.join("loose.yaml"), thresholds: vec![0.25, 0.5, 0.75] })
            .unwrap();
    // NSFW-kept candidates strictly above each threshold (worked out from the corpus).
    let expected: Vec<u64> = s.points.iter().map(|p| p.totals.expected).collect();
    assert_eq!(expected, vec![8, 6, 4]);
    // At the build's threshold, the sweep is `score --log --suite` with the written suite.
    let scored = score_noted(&ScoreSpec { logs: vec![log], suite: Some(out.join("at.yaml")), ..ScoreSpec::default() })
        .unwrap()
        .0
        .results
        .remove(0);
    let p = &s.points[1];
    assert_eq!((p.totals, p.metrics, p.classes_present), (scored.totals, scored.metrics, scored.classes_present));
}

#[test]
fn the_cli_builds_with_the_example_encoder_and_counts_as_the_papers_python() {
    if !python3("laionet_build") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let captions = shiftbench::data::demo::write_captions(d.path()).unwrap();
    let out = d.path().join("out");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(common::shiftbench_bin()).args(args).output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let c = captions.display().to_string();
    let o = out.display().to_string();
    let (ok, stdout, stderr) =
        run(&["laionet", "build", "--captions", &c, "--encoder", "example", "--threshold", "0.3", "--out", &o]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("captions read:             256 in 1 file,"), "{stdout}");
    // The paper's Python on the same captions gives the same per-class match counts.
    let jl = d.path().join("demo.jsonl");
    let texts: String = shiftbench::data::demo::DEMO_CAPTIONS
        .lines()
        .skip(1)
        .map(|l| serde_json::to_string(l.split('\t').nth(2).unwrap()).unwrap() + "\n")
        .collect();
    std::fs::write(&jl, texts).unwrap();
    let py = std::process::Command::new("python3")
        .arg(common::repo().join("bench/paper_match.py"))
        .arg(common::repo().join("suites/laionet/lemma2wnid.tsv"))
        .arg(&jl)
        .output()
        .unwrap();
    assert!(py.status.success());
    let theirs = String::from_utf8(py.stdout).unwrap();
    let ours = std::fs::read_to_string(out.join("class_counts.csv")).unwrap();
    let mut n = 0;
    for line in ours.lines().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        // The default dictionary names Siberian husky by ImageNet-1k's wnid, the paper's file by its own.
        let w = if c[0] == "n02110185" { "n02112837" } else { c[0] };
        let want = format!("{w}\t{}\t{}\t{}", c[1], c[2], c[3]);
        assert!(theirs.lines().any(|l| l == want), "{want} not in the Python counts");
        n += c[1].parse::<u64>().unwrap();
    }
    assert!(n > 100, "{n}");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!((summary["candidates"].as_u64(), summary["multi_class"].as_u64()), (Some(130), Some(42)));
    // The printed lines add up (some NSFW-tagged candidates lie below the threshold).
    let n = |k: &str| summary[k].as_u64().unwrap();
    assert!(n("nsfw_dropped_above") < n("nsfw_dropped"), "{summary}");
    assert_eq!(n("above_threshold") - n("nsfw_dropped_above") - n("over_max_per_class"), n("selected"));
    assert!(stdout.contains(&format!("dropped by the NSFW tag:   {} of those above", n("nsfw_dropped_above"))));
    // The laionet suite reads what was selected.
    let s = Suite::load_labels(&out.join("laionet.yaml")).unwrap();
    assert_eq!(s.samples.len() as u64, summary["selected"].as_u64().unwrap());
    // --match-only needs no encoder; an encoder without a paper threshold needs --threshold.
    let m = d.path().join("m").display().to_string();
    let (ok, stdout, _) = run(&["laionet", "build", "--captions", &c, "--match-only", "--out", &m]);
    assert!(ok && stdout.contains("matched one class:         130"), "{stdout}");
    let (ok, _, stderr) = run(&["laionet", "build", "--captions", &c, "--encoder", "example", "--out", &m]);
    assert!(!ok && stderr.contains("give --threshold for the encoder toy-hash"), "{stderr}");
}

#[test]
fn a_suite_reads_the_papers_pickled_labels_directly() {
    if !python3("laionet_build") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    corpus(d.path());
    build(&spec(d.path(), "out"), &mut fake(), &Silent).unwrap();
    let out = d.path().join("out");
    // The paper's form: wnid -> list of row indices (here the rows' SAMPLE_IDs), by pickle.dump.
    let py = |code: &str| {
        let o = std::process::Command::new("python3").arg("-c").arg(code).current_dir(&out).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    py("import pickle\n\
        d = {'n02119789': [1], 'n02123045': [8, 11], 'n01443537': [9, 12], 'n01440764': [13]}\n\
        pickle.dump(d, open('labels-p4.pkl', 'wb'), protocol=4)\n\
        pickle.dump({k: tuple(v) for k, v in d.items()}, open('labels-p5.pkl', 'wb'), protocol=5)\n\
        pickle.dump(d | {'n07747607': [12]}, open('labels-two.pkl', 'wb'))\n");
    let suite = |pkl: &str| {
        let y = std::fs::read_to_string(out.join("laionet.yaml"))
            .unwrap()
            .replace("    wnid_column: wnid\n", &format!("    labels: {{table: {pkl}, row_column: SAMPLE_ID}}\n"));
        std::fs::write(out.join("pkl.yaml"), y).unwrap();
        Suite::load_labels(&out.join("pkl.yaml"))
    };
    let by_column = Suite::load_labels(&out.join("laionet.yaml")).unwrap();
    let pairs = |s: &Suite| {
        let mut v: Vec<(String, String)> = s.samples.iter().map(|x| (x.id.clone(), x.wnid.clone())).collect();
        v.sort();
        v
    };
    for pkl in ["labels-p4.pkl", "labels-p5.pkl"] {
        assert_eq!(pairs(&suite(pkl).unwrap()), pairs(&by_column), "{pkl}");
    }
    let e = format!("{:#}", suite("labels-two.pkl").unwrap_err());
    assert!(e.contains("labels-two.pkl: row 12 is listed under both"), "{e}");
    // NumPy arrays are not plain lists: refused with the conversion to use.
    let np = std::process::Command::new("python3").arg("-c").arg("import numpy").output().unwrap();
    if np.status.success() {
        py("import pickle, numpy as np\npickle.dump({'n02119789': np.array([1])}, open('labels-np.pkl', 'wb'))\n");
        let e = format!("{:#}", suite("labels-np.pkl").unwrap_err());
        assert!(e.contains("labels-np.pkl: the rows of n02119789 are not a list of integers"), "{e}");
        assert!(e.contains("convert them first: pickle.dump({w: [int(i) for i in ix]"), "{e}");
    }
}

#[test]
fn ctrl_c_keeps_the_finished_parts_and_the_same_command_goes_on_to_the_uninterrupted_output() {
    let d = tempfile::tempdir().unwrap();
    // Six files whose every caption names goldfish: each part encodes 40,000 captions.
    for f in 0..6i64 {
        let texts: Vec<String> = (0..40_000i64).map(|i| format!("goldfish number {i} from batch {f}")).collect();
        let rows: Vec<Row> =
            texts.iter().enumerate().map(|(i, t)| (f * 100_000 + i as i64, Some(t.as_str()), U)).collect();
        write_captions(&d.path().join(format!("captions/c{f}.parquet")), &rows);
    }
    let c = d.path().join("captions").display().to_string();
    let args = |out: &str| -> Vec<String> {
        ["laionet", "build", "--captions", &c, "--encoder", "example", "--threshold", "0.3", "--out", out]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let out = d.path().join("out");
    let parts = out.join("parts");
    let child = std::process::Command::new(common::shiftbench_bin())
        .args(args(&out.display().to_string()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Stop it once the first part is finished (its sidecar written), while later files remain.
    let done = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .map(|r| r.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect())
            .unwrap_or_default()
    };
    let start = std::time::Instant::now();
    while done(&parts).is_empty() {
        assert!(start.elapsed().as_secs() < 300, "no part was finished");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted: ") && stderr.contains("run the same command again"), "{stderr}");
    let kept = done(&parts).len();
    assert!((1..6).contains(&kept), "{kept} parts kept");
    // No half-written part or temporary file is left behind.
    for e in std::fs::read_dir(&parts).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "left behind: {name}");
        if name.ends_with(".parquet") {
            assert!(e.path().with_extension("json").is_file(), "a part without its sidecar: {name}");
        }
    }
    assert!(!out.join("candidates.parquet").exists());
    // The same command reuses what was kept and gives exactly an uninterrupted build's output.
    let o =
        std::process::Command::new(common::shiftbench_bin()).args(args(&out.display().to_string())).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let fresh = d.path().join("fresh");
    let f =
        std::process::Command::new(common::shiftbench_bin()).args(args(&fresh.display().to_string())).output().unwrap();
    assert!(f.status.success());
    for file in ["candidates.parquet", "laionet.parquet", "class_counts.csv"] {
        assert!(bytes(&out.join(file)) == bytes(&fresh.join(file)), "{file} differs after the resume");
    }
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["parts_reused"].as_u64(), Some(kept as u64));
    assert_eq!(summary["candidates"].as_u64(), Some(240_000));
}

#[test]
fn files_of_another_layout_are_refused_naming_what_differs() {
    let d = tempfile::tempdir().unwrap();
    write_captions(&d.path().join("captions/a.parquet"), &[(1, Some("goldfish sim 0.9"), U)]);
    // The second file: SAMPLE_ID may be null there, and it has no WIDTH.
    let schema = Arc::new(Schema::new(vec![
        Field::new("SAMPLE_ID", DataType::Int64, true),
        Field::new("URL", DataType::Utf8, false),
        Field::new("TEXT", DataType::Utf8, true),
        Field::new("NSFW", DataType::Utf8, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![2])),
        Arc::new(StringArray::from(vec!["http://x/2.jpg"])),
        Arc::new(StringArray::from(vec!["goldfish sim 0.8"])),
        Arc::new(StringArray::from(vec!["UNLIKELY"])),
    ];
    let f = File::create(d.path().join("captions/b.parquet")).unwrap();
    let mut w = ArrowWriter::try_new(f, schema.clone(), None).unwrap();
    w.write(&RecordBatch::try_new(schema, cols).unwrap()).unwrap();
    w.close().unwrap();
    let e = build(&spec(d.path(), "out"), &mut fake(), &Silent).unwrap_err().to_string();
    assert!(e.contains("b.parquet: its columns differ from the first caption file's"), "{e}");
    assert!(e.contains("SAMPLE_ID: Int64 (nullable) here, Int64 (not null) there"), "{e}");
    assert!(e.contains("WIDTH missing"), "{e}");
}
