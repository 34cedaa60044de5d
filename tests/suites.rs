//! Real suites: the 1,000 ImageNet sample photos repackaged into every layout people have
//! (ImageFolder, Kaggle's flat folder + LOC_val_solution.csv, the devkit's flat folder + ground
//! truth + meta.mat or an id table, LAIONet's Parquet + img2dataset tar shards or folders) give
//! the same per-image predictions as the plain folder; bad inputs are counted and reported;
//! many models go through a suite in one pass (each image decoded once, preprocessed once per
//! spec); plans, sorting and checksum verification work from the command line.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use parquet::basic::{ConvertedType, Repetition, Type as PhysicalType};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use shiftbench::data::sample::ImageRef;
use shiftbench::data::sources::matfile::write_synsets_mat;
use shiftbench::data::suite::Suite;
use shiftbench::host::Scorer;
use shiftbench::results::predlog::{read_log, LogWriter, Record, Status};
use shiftbench::run::events::Silent;
use shiftbench::run::pipeline::{evaluate, evaluate_many, Job, JobOutcome};
use shiftbench::run::topk::log_header;
use shiftbench::run::{Argmax, EvalOptions};
use shiftbench::RunResult;
use shiftbench::{log_path, run, RunSpec};
use shiftbench_plugin::{ChannelOrder, Interpolation, Layout, ModelCard, PreprocessSpec, ScoreKind};

// ---------------------------------------------------------------------------------------------
// Fixture builders

/// A column of a Parquet file the tests write.
enum Col {
    Str(&'static str, Vec<String>),
    Int(&'static str, Vec<i64>),
    F64(&'static str, Vec<f64>),
    /// A nullable boolean.
    Bool(&'static str, Vec<Option<bool>>),
}

/// Writes a one-row-group Parquet file with the parquet crate's own writer.
fn write_parquet(path: &Path, cols: Vec<Col>) {
    let fields: Vec<Arc<Type>> =
        cols.iter()
            .map(|c| {
                let b = match c {
                    Col::Str(n, _) => Type::primitive_type_builder(n, PhysicalType::BYTE_ARRAY)
                        .with_converted_type(ConvertedType::UTF8),
                    Col::Int(n, _) => Type::primitive_type_builder(n, PhysicalType::INT64),
                    Col::F64(n, _) => Type::primitive_type_builder(n, PhysicalType::DOUBLE),
                    Col::Bool(n, _) => Type::primitive_type_builder(n, PhysicalType::BOOLEAN),
                };
                let rep = if matches!(c, Col::Bool(..)) { Repetition::OPTIONAL } else { Repetition::REQUIRED };
                Arc::new(b.with_repetition(rep).build().unwrap())
            })
            .collect();
    let schema = Arc::new(Type::group_type_builder("schema").with_fields(fields).build().unwrap());
    let mut w =
        SerializedFileWriter::new(File::create(path).unwrap(), schema, Arc::new(WriterProperties::builder().build()))
            .unwrap();
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

fn tar_add(b: &mut tar::Builder<File>, name: &str, body: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append_data(&mut h, name, body).unwrap();
}

/// A deterministic permutation of 0..n.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut s = seed;
    for i in (1..n).rev() {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        v.swap(i, (s >> 33) as usize % (i + 1));
    }
    v
}

#[cfg(unix)]
fn link(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(src, dst).unwrap();
}

#[cfg(not(unix))]
fn link(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(src, dst).unwrap();
}

fn write(p: &Path, body: impl AsRef<[u8]>) -> PathBuf {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
    p.to_path_buf()
}

/// Each sample's image bytes by id.
fn bytes_by_id(s: &Suite) -> HashMap<String, Option<Vec<u8>>> {
    s.samples.iter().map(|x| (x.id.clone(), x.image.read().ok())).collect()
}

// ---------------------------------------------------------------------------------------------
// Every layout, the same predictions

/// What the layouts test builds: suite files and, per suite, sample id -> original file name.
struct Layouts {
    reference: PathBuf,
    suites: Vec<(PathBuf, HashMap<String, String>)>,
    /// Suites that must load to exactly the same samples (labels, bytes) as another one.
    twins: Vec<(PathBuf, PathBuf)>,
    laionet: PathBuf,
}

fn build_layouts(data: &Path, d: &Path) -> Layouts {
    let src = data.join("imagenet-samples");
    let mut names: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".JPEG"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 1000);
    let wnid = |n: &str| n[..9].to_string();
    let mut suites = Vec::new();

    // The plain folder: the reference.
    let reference = write(&d.join("reference.yaml"), format!("name: reference\nsource:\n  files: {}\n", src.display()));

    // ImageFolder: val/<wnid>/<file>.
    for n in &names {
        link(&src.join(n), &d.join("imagefolder/val").join(wnid(n)).join(n));
    }
    let y = write(&d.join("imagefolder.yaml"), "name: imagefolder\nsource:\n  image_folder: imagefolder/val\n");
    suites.push((y, names.iter().map(|n| (format!("{}/{n}", wnid(n)), n.clone())).collect()));

    // A flat ILSVRC2012_img_val folder in shuffled order, shared by the Kaggle and devkit layouts.
    let perm = shuffled(names.len(), 7);
    let flat = d.join("ILSVRC/Data/CLS-LOC/val");
    let mut by_val_id = HashMap::new();
    for (k, &i) in perm.iter().enumerate() {
        let id = format!("ILSVRC2012_val_{:08}", k + 1);
        link(&src.join(&names[i]), &flat.join(format!("{id}.JPEG")));
        by_val_id.insert(id, names[i].clone());
    }

    // Kaggle: LOC_val_solution.csv (ImageId without extension; PredictionString's first word).
    let mut csv = String::from("ImageId,PredictionString\n");
    for k in shuffled(names.len(), 11) {
        let id = format!("ILSVRC2012_val_{:08}", k + 1);
        let w = wnid(&by_val_id[&id]);
        csv.push_str(&format!("{id},{w} 12 34 300 280 {w} 1 2 50 60 \n"));
    }
    write(&d.join("LOC_val_solution.csv"), csv);
    let y = write(
        &d.join("kaggle.yaml"),
        "name: kaggle\nsource:\n  table: LOC_val_solution.csv\n  root: ILSVRC/Data/CLS-LOC/val\n  path_column: ImageId\n  wnid_column: PredictionString\n",
    );
    suites.push((y, by_val_id.clone()));

    // Devkit: ground truth (devkit ids in file order) + meta.mat, or the class table as id map.
    let classes = data.join("classes/imagenet1k_classes.tsv");
    let text = std::fs::read_to_string(&classes).unwrap();
    let mut id_of: HashMap<String, u32> = HashMap::new();
    let mut synsets: Vec<(u32, String, String)> = Vec::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        id_of.insert(c[1].to_string(), c[2].parse().unwrap());
        synsets.push((c[2].parse().unwrap(), c[1].to_string(), c[3].to_string()));
    }
    synsets.sort();
    synsets.push((1001, "n00001740".into(), "entity".into())); // meta.mat also lists inner synsets
    let mut gt = String::new();
    for k in 0..names.len() {
        let id = format!("ILSVRC2012_val_{:08}", k + 1);
        gt.push_str(&format!("{}\n", id_of[&wnid(&by_val_id[&id])]));
    }
    write(&d.join("devkit/data/ILSVRC2012_validation_ground_truth.txt"), gt);
    let entries: Vec<(u32, &str, &str)> = synsets.iter().map(|(i, w, n)| (*i, w.as_str(), n.as_str())).collect();
    write(&d.join("devkit/data/meta.mat"), write_synsets_mat(&entries, true));
    let y = write(
        &d.join("devkit.yaml"),
        "name: devkit\nsource:\n  ground_truth: devkit/data/ILSVRC2012_validation_ground_truth.txt\n  images: ILSVRC/Data/CLS-LOC/val\n  meta: devkit/data/meta.mat\n",
    );
    suites.push((y.clone(), by_val_id.clone()));
    let twin = write(
        &d.join("devkit-table.yaml"),
        format!(
            "name: devkit\nsource:\n  ground_truth: devkit/data/ILSVRC2012_validation_ground_truth.txt\n  images: ILSVRC/Data/CLS-LOC/val\n  \
             id_map: {}\n  id_column: devkit_ILSVRC2012_ID\n",
            classes.display()
        ),
    );
    let mut twins = vec![(y, twin)];

    // LAIONet: the rows as Parquet, images as img2dataset tar shards (and as shard folders).
    let order = shuffled(names.len(), 3);
    let (mut ids, mut urls, mut texts, mut nsfw, mut wnids, mut sims, mut ocr, mut keys) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut by_sample = HashMap::new();
    let shards = 4;
    let per = names.len().div_ceil(shards);
    std::fs::create_dir_all(d.join("laion/tar")).unwrap();
    let mut tars: Vec<tar::Builder<File>> = (0..shards)
        .map(|s| tar::Builder::new(File::create(d.join(format!("laion/tar/{s:05}.tar"))).unwrap()))
        .collect();
    let mut shard_rows: Vec<(Vec<String>, Vec<String>, Vec<String>)> = vec![(vec![], vec![], vec![]); shards];
    for (k, &i) in order.iter().enumerate() {
        let (s, j) = (k / per, k % per);
        let key = format!("{s:05}{j:04}");
        let url = format!("https://img.example.org/{k}/photo.jpg");
        let body = std::fs::read(src.join(&names[i])).unwrap();
        let json = format!(r#"{{"url": "{url}", "key": "{key}", "status": "success", "caption": "a photo {k}"}}"#);
        tar_add(&mut tars[s], &format!("{key}.jpg"), &body);
        tar_add(&mut tars[s], &format!("{key}.json"), json.as_bytes());
        tar_add(&mut tars[s], &format!("{key}.txt"), format!("a photo {k}").as_bytes());
        // The folder variant: half the images without a .json, matched through <shard>.parquet.
        let folder = d.join(format!("laion/folders/{s:05}"));
        link(&src.join(&names[i]), &folder.join(format!("{key}.jpg")));
        if j % 2 == 0 {
            write(&folder.join(format!("{key}.json")), &json);
        }
        shard_rows[s].0.push(url.clone());
        shard_rows[s].1.push(key.clone());
        shard_rows[s].2.push("success".into());
        let sample_id = 3_000_000_000i64 + 7919 * k as i64;
        by_sample.insert(sample_id.to_string(), names[i].clone());
        ids.push(sample_id);
        urls.push(url);
        texts.push(format!("a photo {k}"));
        nsfw.push("UNLIKELY".to_string());
        // The paper's husky wnid, remapped by the suite to ImageNet-1k's.
        let w = wnid(&names[i]);
        wnids.push(if w == "n02110185" { "n02112837".to_string() } else { w });
        // Just above the paper's threshold (a row exactly at 0.82 is dropped: `sims > th`).
        sims.push(if k % 10 == 0 { 0.8201 } else { 0.83 + (k % 17) as f64 / 100.0 });
        ocr.push(match k % 3 {
            0 => None,
            _ => Some(false),
        });
        keys.push(key);
    }
    for t in tars {
        t.into_inner().unwrap();
    }
    for (s, (u, k, st)) in shard_rows.into_iter().enumerate() {
        let pq = d.join(format!("laion/folders/{s:05}.parquet"));
        write_parquet(
            &pq,
            vec![Col::Str("url", u.clone()), Col::Str("key", k.clone()), Col::Str("status", st.clone())],
        );
        std::fs::copy(&pq, d.join(format!("laion/tar/{s:05}.parquet"))).unwrap();
    }
    // Rows the paper's filters drop, and kept rows whose image was never fetched (missing).
    let extra: [(&str, f64, &str, Option<bool>, &str); 5] = [
        ("low similarity", 0.81, "UNLIKELY", Some(false), "n01440764"),
        ("nsfw", 0.9, "NSFW", Some(false), "n01440764"),
        ("unsure", 0.9, "UNSURE", None, "n01443537"),
        ("text in image", 0.95, "UNLIKELY", Some(true), "n01443537"),
        ("not downloaded", 0.9, "UNLIKELY", Some(false), "n01484850"),
    ];
    for (e, (what, sim, n, o, w)) in extra.iter().enumerate() {
        ids.push(4_000_000_000 + e as i64);
        urls.push(format!("https://gone.example.org/{e}.jpg"));
        texts.push(what.to_string());
        nsfw.push(n.to_string());
        wnids.push(w.to_string());
        sims.push(*sim);
        ocr.push(*o);
        keys.push(format!("99999{e:04}"));
    }
    std::fs::create_dir_all(d.join("laion")).unwrap();
    write_parquet(
        &d.join("laion/laionet.parquet"),
        vec![
            Col::Int("SAMPLE_ID", ids),
            Col::Str("URL", urls),
            Col::Str("TEXT", texts),
            Col::Str("NSFW", nsfw),
            Col::Str("name_def_wnid", wnids),
            Col::F64("text_to_name_def_wnid_similarity_clip-vit-base-patch32", sims),
            Col::Bool("wnid_is_in_recognized_text", ocr),
            Col::Str("key", keys),
        ],
    );
    let laionet = write(
        &d.join("laionet.yaml"),
        "name: laionet\nsource:\n  laionet:\n    rows: laion/laionet.parquet\n    images: laion/tar\nremap: {n02112837: n02110185}\nweights: own\n",
    );
    suites.push((laionet.clone(), by_sample));
    // img2dataset's folder output (URLs from the .json files, or the shard .parquet where a
    // .json is absent), and the tar shards joined by key instead of URL.
    let twin = write(
        &d.join("laionet-folders.yaml"),
        "name: laionet\nsource:\n  laionet:\n    rows: laion/laionet.parquet\n    images: laion/folders\nremap: {n02112837: n02110185}\nweights: own\n",
    );
    twins.push((laionet.clone(), twin));
    let twin = write(
        &d.join("laionet-key.yaml"),
        "name: laionet\nsource:\n  laionet:\n    rows: laion/laionet.parquet\n    images: laion/tar\n    join: key\nremap: {n02112837: n02110185}\nweights: own\n",
    );
    twins.push((laionet.clone(), twin));
    Layouts { reference, suites, twins, laionet }
}

#[test]
fn every_layout_gives_the_same_predictions_as_the_plain_folder() {
    let Some(data) = common::shared_data("every_layout_gives_the_same_predictions_as_the_plain_folder") else { return };
    let d = tempfile::tempdir().unwrap();
    let l = build_layouts(&data, d.path());

    // Layout variants load to exactly the same samples: same ids, labels and image bytes.
    for (a, b) in &l.twins {
        let (sa, sb) = (Suite::load(a).unwrap(), Suite::load(b).unwrap());
        assert_eq!(sa.samples.len(), sb.samples.len());
        for (x, y) in sa.samples.iter().zip(&sb.samples) {
            assert_eq!((&x.id, &x.wnid), (&y.id, &y.wnid));
        }
        assert_eq!(bytes_by_id(&sa), bytes_by_id(&sb), "{} vs {}", a.display(), b.display());
        assert_eq!(sa.digest, sb.digest);
    }

    // The shipped suite files, pointed at these layouts by their environment variables, load
    // the same images with the same labels: the Kaggle and devkit layouts (same ids) even pin
    // identical checksum files. LAIONET_CLASSES selects the paper's 977 shared classes.
    let shipped = |file: &str, sums: &str| -> String {
        let o = Command::new(common::shiftbench_bin())
            .args(["verify", "--suite"])
            .arg(common::repo().join("suites").join(file))
            .arg("--write")
            .arg(d.path().join(sums))
            .env("IMAGENET_VAL", d.path().join("imagefolder/val"))
            .env("IMAGENET_KAGGLE", d.path())
            .env("IMAGENET_VAL_FLAT", d.path().join("ILSVRC/Data/CLS-LOC/val"))
            .env("IMAGENET_DEVKIT", d.path().join("devkit"))
            .env("LAIONET_PARQUET", d.path().join("laion/laionet.parquet"))
            .env("LAIONET_IMAGES", d.path().join("laion/tar"))
            .env("LAIONET_CLASSES", data.join("paper/laionet_top50_label_dict_counts.tsv"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{file}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(shipped("imagenet-val.yaml", "folder.sha256").contains("wrote 977 checksums"));
    assert!(shipped("imagenet-val-kaggle.yaml", "kaggle.sha256").contains("wrote 977 checksums"));
    assert!(shipped("imagenet-val-devkit.yaml", "devkit.sha256").contains("wrote 977 checksums"));
    // 977 photos of the shared classes, and one kept row whose image was never fetched.
    let out = shipped("laionet.yaml", "laionet.sha256");
    assert!(out.contains("wrote 977 checksums") && out.contains("(1 images could not be read)"), "{out}");
    let read = |f: &str| std::fs::read_to_string(d.path().join(f)).unwrap();
    assert_eq!(read("kaggle.sha256"), read("devkit.sha256"));
    let hashes = |f: &str| {
        let mut v: Vec<String> = read(f).lines().map(|l| l[..64].to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(hashes("folder.sha256"), hashes("kaggle.sha256"));
    assert_eq!(hashes("folder.sha256"), hashes("laionet.sha256"));

    // LAIONet: the paper's filters and the join.
    let laion = Suite::load(&l.laionet).unwrap();
    assert_eq!(laion.samples.len(), 1001, "{:?}", laion.notes); // 1000 photos + 1 row never downloaded
    assert!(laion.notes[0].contains("1005 rows, 1001 kept"), "{:?}", laion.notes);
    let absent: Vec<_> = laion.samples.iter().filter(|s| matches!(s.image, ImageRef::Absent(_))).collect();
    assert_eq!(absent.len(), 1);
    assert!(
        laion.samples.iter().any(|s| s.wnid == "n02110185") && !laion.samples.iter().any(|s| s.wnid == "n02112837")
    );
    assert!(laion.samples.iter().all(|s| matches!(s.image, ImageRef::Member { .. } | ImageRef::Absent(_))));

    // One run over all layouts.
    let out = d.path().join("out");
    let mut suites = vec![l.reference.clone()];
    suites.extend(l.suites.iter().map(|(p, _)| p.clone()));
    let r = run(&RunSpec {
        suites,
        models: vec![common::plugin_lib("shiftbench_example").to_string_lossy().into_owned()],
        out: out.clone(),
        eval: EvalOptions { batch: 16, threads: 2, ..EvalOptions::default() },
        model_threads: 0,
        replicas: None,
        fresh: true,
        ..RunSpec::default()
    })
    .unwrap();
    let model = &r.results[0].model;
    let (_, reference) = read_log(&log_path(&out, model, "reference")).unwrap();
    let want: HashMap<&str, &Record> = reference.iter().map(|r| (r.id.as_str(), r)).collect();
    assert_eq!(want.len(), 1000);
    assert!(reference.iter().all(|r| r.status == Status::Ok));
    for (yaml, to_name) in &l.suites {
        let suite = Suite::load(yaml).unwrap();
        let (_, recs) = read_log(&log_path(&out, model, &suite.name)).unwrap();
        let mut compared = 0;
        for rec in &recs {
            let Some(name) = to_name.get(&rec.id) else {
                assert_eq!(rec.status, Status::Missing, "{rec:?}");
                continue;
            };
            let w = want[name.as_str()];
            assert_eq!(rec.status, Status::Ok, "{}: {rec:?}", suite.name);
            assert_eq!(
                (&rec.wnid, &rec.top, &rec.scores),
                (&w.wnid, &w.top, &w.scores),
                "{} {} ({name})",
                suite.name,
                rec.id
            );
            compared += 1;
        }
        assert_eq!(compared, 1000, "{}", suite.name);
    }
    // LAIONet's weights are its own class frequencies after filtering.
    let res = r.results.iter().find(|x| x.suite == "laionet").unwrap();
    assert_eq!((res.totals.expected, res.totals.evaluated, res.totals.missing), (1001, 1000, 1));
    assert_eq!(res.per_class["n01484850"].weight, 2.0 / 1001.0);
}

// ---------------------------------------------------------------------------------------------
// Bad input

fn encode(img: image::DynamicImage, fmt: image::ImageFormat) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, fmt).unwrap();
    buf.into_inner()
}

/// A PNG header declaring 100000 x 100000 pixels (a decompression bomb), with a little data.
fn bomb_png() -> Vec<u8> {
    let big = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3])));
    let mut png = encode(big, image::ImageFormat::Png);
    // IHDR's width and height sit at bytes 16..24, its CRC (over type and data) at 29..33.
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A table suite with every kind of bad input; returns the suite file.
fn bad_input_suite(d: &Path) -> PathBuf {
    let img = d.join("img");
    let photo = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(120, 90, |x, y| {
        let inside = (x as i32 - 60).pow(2) + (y as i32 - 45).pow(2) < 900;
        if inside {
            image::Rgb([245, 130, 20])
        } else {
            image::Rgb([200, 200, 210])
        }
    }));
    let jpeg = encode(photo.clone(), image::ImageFormat::Jpeg);
    write(&img.join("good.JPEG"), &jpeg);
    write(&img.join("truncated.JPEG"), &jpeg[..jpeg.len() / 2]);
    write(&img.join("png_named.JPEG"), encode(photo.clone(), image::ImageFormat::Png));
    let mut cmyk = Vec::new();
    let px: Vec<u8> = photo.to_rgb8().pixels().flat_map(|p| [255 - p[0], 255 - p[1], 255 - p[2], 0]).collect();
    jpeg_encoder::Encoder::new(&mut cmyk, 90).encode(&px, 120, 90, jpeg_encoder::ColorType::Cmyk).unwrap();
    write(&img.join("cmyk.JPEG"), &cmyk);
    write(&img.join("gray.JPEG"), encode(image::DynamicImage::ImageLuma8(photo.to_luma8()), image::ImageFormat::Jpeg));
    write(&img.join("deep.png"), encode(image::DynamicImage::ImageRgb16(photo.to_rgb16()), image::ImageFormat::Png));
    write(&img.join("empty.JPEG"), b"");
    write(
        &img.join("tiny.png"),
        encode(
            image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(1, 1, image::Rgb([9, 9, 9]))),
            image::ImageFormat::Png,
        ),
    );
    write(&img.join("bomb.JPEG"), bomb_png());
    let w = "n07747607"; // orange, a class of the example model
    let rows = [
        ("good.JPEG", w),
        ("truncated.JPEG", w),
        ("png_named.JPEG", w),
        ("cmyk.JPEG", w),
        ("gray.JPEG", "n07753592"),
        ("deep.png", "n07753592"),
        ("empty.JPEG", "n07753592"),
        ("missing.JPEG", "n07745940"),
        ("tiny.png", "n07745940"),
        ("bomb.JPEG", "n07745940"),
        ("good2.JPEG", "n99999999"),
    ];
    std::fs::copy(img.join("good.JPEG"), img.join("good2.JPEG")).unwrap();
    let mut t = String::from("path,wnid\n");
    for (p, w) in rows {
        t.push_str(&format!("{p},{w}\n"));
    }
    write(&d.join("labels.csv"), t);
    write(&d.join("bad.yaml"), "name: bad-input\nsource:\n  table: labels.csv\n  root: img\n")
}

#[test]
fn bad_input_is_counted_per_class_and_in_total() {
    let d = tempfile::tempdir().unwrap();
    let suite = bad_input_suite(d.path());
    let lib = common::plugin_lib("shiftbench_example");
    let out = d.path().join("out");
    let cli = |extra: &[&str]| {
        let mut c = Command::new(common::shiftbench_bin());
        c.args(["run", "--suite"])
            .arg(&suite)
            .arg("--model")
            .arg(&lib)
            .arg("--out")
            .arg(&out)
            .args(["--threads", "2"])
            .args(extra);
        c.output().unwrap()
    };
    let o = cli(&["--fresh"]);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    let r: RunResult = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    let res = &r.results[0];
    let reasons: BTreeMap<&str, &str> = res.problems.iter().map(|p| (p.id.as_str(), p.reason.as_str())).collect();
    // Odd but valid images are evaluated; the broken ones failed; the absent one is missing.
    assert_eq!(
        (res.totals.expected, res.totals.evaluated, res.totals.failed, res.totals.missing),
        (11, 6, 4, 1),
        "{reasons:#?}"
    );
    assert!(reasons["truncated.JPEG"].contains("truncated JPEG"), "{reasons:#?}");
    assert!(reasons["empty.JPEG"].contains("empty file"), "{reasons:#?}");
    assert!(reasons["bomb.JPEG"].contains("decompression bomb"), "{reasons:#?}");
    assert!(reasons["good2.JPEG"].contains("not an ImageNet class"), "{reasons:#?}");
    assert!(reasons["missing.JPEG"].contains("does not exist"), "{reasons:#?}");
    for ok in ["png_named.JPEG", "cmyk.JPEG", "gray.JPEG", "deep.png", "tiny.png", "good.JPEG"] {
        assert!(!reasons.contains_key(ok), "{ok}: {reasons:#?}");
    }
    // Per class...
    let c = &res.per_class;
    assert_eq!((c["n07747607"].status.expected, c["n07747607"].status.failed), (4, 1));
    assert_eq!((c["n07753592"].status.evaluated, c["n07753592"].status.failed), (2, 1));
    assert_eq!(
        (c["n07745940"].status.evaluated, c["n07745940"].status.failed, c["n07745940"].status.missing),
        (1, 1, 1)
    );
    assert_eq!(c["n99999999"].status.failed, 1);
    // ... and in the table output.
    let row: Vec<&str> = stdout
        .lines()
        .find(|l| l.contains(" bad-input "))
        .unwrap()
        .split(['│', '┆'])
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(row[2..6], ["11", "6", "4", "1"], "{stdout}");
    assert!(stdout.contains("n07745940 1 failed + 1 missing"), "{stdout}");
    assert!(stdout.contains("bomb.JPEG:"), "{stdout}");
    // The CMYK image decoded to the colours it holds: the example model sees an orange disc.
    let (_, recs) = read_log(&out.join("predictions/example-shape-colour__bad-input.jsonl")).unwrap();
    let cmyk = recs.iter().find(|r| r.id == "cmyk.JPEG").unwrap();
    let good = recs.iter().find(|r| r.id == "good.JPEG").unwrap();
    assert_eq!(cmyk.top[0], good.top[0]);

    // --strict: a non-zero exit naming each of them.
    let o = cli(&["--strict"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--strict: 5 samples failed or are missing"), "{err}");
    for id in ["truncated.JPEG", "empty.JPEG", "bomb.JPEG", "good2.JPEG", "missing.JPEG"] {
        assert!(err.contains(id), "{id}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Many models, one pass

/// A model for tests: scores are a fixed function of each image alone, so they do not depend
/// on how images are batched; `calls` counts images seen.
struct Mock {
    card: ModelCard,
    labels: Vec<String>,
    seen: usize,
    /// Stop for good (as a crashed worker does) on the call after this many images.
    stop_after: Option<usize>,
    /// On its first call, wait until this many copies are inside `infer` at once (a proof that
    /// copies run in parallel); whether they all met is recorded in `met`.
    rendezvous: Option<(Arc<std::sync::atomic::AtomicUsize>, usize)>,
    met: Option<bool>,
}

impl Mock {
    fn new(name: &str, labels: &[&str], resize: u32, crop: u32, order: ChannelOrder, max_batch: u32) -> Mock {
        let labels: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        let card = ModelCard {
            name: name.into(),
            labels: labels.iter().map(|l| abi_stable::std_types::RString::from(l.as_str())).collect::<Vec<_>>().into(),
            preprocess: PreprocessSpec {
                resize,
                crop,
                channel_order: order,
                interpolation: Interpolation::Bilinear,
                layout: Layout::Nchw,
                ..PreprocessSpec::IMAGENET
            },
            max_batch,
            scores: ScoreKind::Logits,
        };
        Mock { card, labels, seen: 0, stop_after: None, rendezvous: None, met: None }
    }
}

impl Scorer for Mock {
    fn card(&self) -> &ModelCard {
        &self.card
    }
    fn labels(&self) -> &[String] {
        &self.labels
    }
    fn plugin_name(&self) -> &str {
        "mock"
    }
    fn infer(&mut self, input: &[f32], batch: usize) -> anyhow::Result<Vec<f32>> {
        let per = input.len() / batch;
        if let (Some((here, want)), None) = (&self.rendezvous, self.met) {
            use std::sync::atomic::Ordering;
            here.fetch_add(1, Ordering::SeqCst);
            let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while here.load(Ordering::SeqCst) < *want && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            self.met = Some(here.load(Ordering::SeqCst) >= *want);
        }
        if self.stop_after.is_some_and(|n| self.seen >= n) {
            return Err(shiftbench::host::ModelStopped("mock copy crashed".into()).into());
        }
        self.seen += batch;
        Ok(input
            .chunks_exact(per)
            .flat_map(|img| {
                let (a, b) = (img[..per / 2].iter().sum::<f32>(), img[per / 2..].iter().sum::<f32>());
                (0..self.labels.len()).map(move |i| ((a * (i as f32 + 1.0) + b) * 0.001).sin())
            })
            .collect())
    }
}

/// 30 small images of 3 classes (PNG and JPEG) in a flat folder, plus one undecodable file.
fn small_suite(d: &Path) -> PathBuf {
    let classes = ["n07747607", "n07753592", "n01440764"];
    for i in 0..30u32 {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(50 + i, 40 + 2 * i, |x, y| {
            image::Rgb([(x * 5 + i) as u8, (y * 3) as u8, (i * 8) as u8])
        }));
        let fmt = if i % 2 == 0 { image::ImageFormat::Png } else { image::ImageFormat::Jpeg };
        write(&d.join(format!("img/{}_{i:02}.img", classes[i as usize % 3])), encode(img, fmt));
    }
    write(&d.join("img/n07747607_broken.img"), b"not an image");
    write(&d.join("small.yaml"), "name: small\nsource:\n  files: img\n")
}

fn read_records(p: &Path) -> Vec<Record> {
    read_log(p).unwrap().1
}

#[test]
fn many_models_share_one_decode_and_one_preprocess_per_spec() {
    let d = tempfile::tempdir().unwrap();
    let suite = Suite::load(&small_suite(d.path())).unwrap();
    let in1k = ["n07747607", "n07753592", "n01440764", "n04254680"];
    // Four models, three distinct specs (a and b share one), one with ImageNet-22k-style labels
    // outside ImageNet-1k (n09999999 is made up), one with a batch limit of 1.
    let make = || {
        vec![
            Mock::new("a", &in1k, 256, 224, ChannelOrder::Rgb, 0),
            Mock::new("b", &in1k[..3], 256, 224, ChannelOrder::Rgb, 1),
            Mock::new("c", &in1k, 72, 64, ChannelOrder::Bgr, 0),
            Mock::new(
                "d",
                &["n07747607", "n00004475", "n07753592", "n01440764", "n04254680"],
                40,
                32,
                ChannelOrder::Rgb,
                0,
            ),
        ]
    };
    let opts = EvalOptions { batch: 4, threads: 2, ..EvalOptions::default() };
    let mut models = make();
    let logs: Vec<PathBuf> = models.iter().map(|m| d.path().join(format!("many/{}.jsonl", m.card.name))).collect();
    let mut writers: Vec<LogWriter> =
        models.iter().zip(&logs).map(|(m, p)| LogWriter::open(p, &log_header(m, &suite), true).unwrap().0).collect();
    let none = HashSet::new();
    let mut outcomes = vec![JobOutcome::default(); models.len()];
    let mut jobs: Vec<Job> = models
        .iter_mut()
        .zip(writers.iter_mut())
        .zip(outcomes.iter_mut())
        .map(|((m, log), outcome)| Job { model: m as &mut dyn Scorer, extra: Vec::new(), log, done: &none, outcome })
        .collect();
    let stats = evaluate_many(&mut jobs, &suite, &opts, &Silent).unwrap();
    drop(jobs);
    drop(writers);
    assert_eq!(stats.decoded, 31); // every file read and decoded once
    assert_eq!(stats.specs, 3);
    assert_eq!(stats.preprocessed, 30 * 3); // once per decodable image and spec
    assert_eq!(outcomes.iter().map(|o| o.evaluated).collect::<Vec<_>>(), vec![31; 4]);
    assert_eq!(models.iter().map(|m| m.seen).collect::<Vec<_>>(), vec![30; 4]);

    // Each model's log is what it gets alone, with another batch size and thread count.
    for (i, mut alone) in make().into_iter().enumerate() {
        let p = d.path().join(format!("alone/{}.jsonl", alone.card.name));
        let (mut w, done) = LogWriter::open(&p, &log_header(&alone, &suite), true).unwrap();
        evaluate(&mut alone, &suite, &mut w, &done, &EvalOptions { batch: 3, threads: 1, ..opts.clone() }).unwrap();
        drop(w);
        assert_eq!(read_records(&p), read_records(&logs[i]), "model {}", alone.card.name);
    }
    let d_recs = read_records(&logs[3]);
    // Model d has a label outside ImageNet-1k: it predicts among the suite's classes only.
    let suite_classes = ["n07747607", "n07753592", "n01440764"];
    for r in d_recs.iter().filter(|r| r.status == Status::Ok) {
        assert_eq!(r.top.len(), 3);
        assert!(r.top.iter().all(|t| suite_classes.contains(&t.as_str())), "{r:?}");
    }
    // With argmax: all, it may predict anything it knows.
    let mut d_all = make().pop().unwrap();
    let p = d.path().join("all.jsonl");
    let (mut w, done) = LogWriter::open(&p, &log_header(&d_all, &suite), true).unwrap();
    evaluate(&mut d_all, &suite, &mut w, &done, &EvalOptions { argmax: Argmax::All, ..opts.clone() }).unwrap();
    drop(w);
    assert!(read_records(&p).iter().filter(|r| r.status == Status::Ok).all(|r| r.top.len() == 5));
    // The broken file failed for every model, once each.
    for l in &logs {
        let recs = read_records(l);
        assert_eq!(recs.iter().filter(|r| r.status == Status::Failed).count(), 1);
    }
}

/// Copies of one model (replicas) score a pass together: every batch goes to exactly one copy,
/// every copy gets work, and the log is the one a single copy writes, record for record and in
/// the same order, whatever the batch size.
#[test]
fn model_copies_share_a_pass_and_write_the_same_log() {
    let d = tempfile::tempdir().unwrap();
    let suite = Suite::load(&small_suite(d.path())).unwrap();
    let labels = ["n07747607", "n07753592", "n01440764", "n04254680"];
    let none = HashSet::new();
    for batch in [1, 2, 5] {
        let opts = EvalOptions { batch, threads: 2, ..EvalOptions::default() };
        let mut one = Mock::new("m", &labels, 64, 48, ChannelOrder::Rgb, 0);
        let p1 = d.path().join(format!("one-{batch}.jsonl"));
        let (mut w1, _) = LogWriter::open(&p1, &log_header(&one, &suite), true).unwrap();
        evaluate(&mut one, &suite, &mut w1, &none, &opts).unwrap();
        drop(w1);

        let here = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut copies: Vec<Mock> = (0..3)
            .map(|_| Mock {
                rendezvous: Some((Arc::clone(&here), 3)),
                ..Mock::new("m", &labels, 64, 48, ChannelOrder::Rgb, 0)
            })
            .collect();
        let p3 = d.path().join(format!("three-{batch}.jsonl"));
        let (mut w3, _) = LogWriter::open(&p3, &log_header(&copies[0], &suite), true).unwrap();
        let (first, rest) = copies.split_first_mut().unwrap();
        let extra: Vec<&mut (dyn Scorer + Send)> = rest.iter_mut().map(|m| m as &mut (dyn Scorer + Send)).collect();
        let mut outcome = JobOutcome::default();
        let mut jobs = [Job { model: first, extra, log: &mut w3, done: &none, outcome: &mut outcome }];
        evaluate_many(&mut jobs, &suite, &opts, &Silent).unwrap();
        drop(jobs);
        drop(w3);
        assert_eq!(outcome.evaluated, 31);
        assert_eq!(copies.iter().map(|m| m.seen).sum::<usize>(), 30, "each decodable image scored once");
        assert_eq!(read_records(&p3), read_records(&p1), "batch {batch}");
        // All three copies were inside `infer` at the same time (each waited on its first
        // batch for the other two, and none had to give up waiting).
        assert!(
            copies.iter().all(|m| m.met == Some(true)),
            "{:?}",
            copies.iter().map(|m| (m.seen, m.met)).collect::<Vec<_>>()
        );
    }
}

/// When one copy of a model stops for good (its worker crashed), the model stops: its batch is
/// logged as failed with the reason, the pass reports it, and nothing is left half-written.
#[test]
fn a_copy_that_stops_stops_its_model() {
    let d = tempfile::tempdir().unwrap();
    let suite = Suite::load(&small_suite(d.path())).unwrap();
    let labels = ["n07747607", "n07753592", "n01440764"];
    let none = HashSet::new();
    // Both copies meet on their first batch, so the second surely gets one, and crashes on it.
    let here = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut copies: Vec<Mock> = (0..2)
        .map(|_| Mock {
            rendezvous: Some((Arc::clone(&here), 2)),
            ..Mock::new("m", &labels, 64, 48, ChannelOrder::Rgb, 0)
        })
        .collect();
    copies[1].stop_after = Some(0);
    let p = d.path().join("m.jsonl");
    let (mut w, _) = LogWriter::open(&p, &log_header(&copies[0], &suite), true).unwrap();
    let (first, rest) = copies.split_first_mut().unwrap();
    let extra: Vec<&mut (dyn Scorer + Send)> = rest.iter_mut().map(|m| m as &mut (dyn Scorer + Send)).collect();
    let mut outcome = JobOutcome::default();
    let mut jobs = [Job { model: first, extra, log: &mut w, done: &none, outcome: &mut outcome }];
    evaluate_many(&mut jobs, &suite, &EvalOptions { batch: 2, threads: 1, ..EvalOptions::default() }, &Silent).unwrap();
    drop(jobs);
    drop(w);
    assert_eq!(outcome.stopped.as_deref(), Some("mock copy crashed"));
    let recs = read_records(&p);
    let crashed: Vec<&Record> =
        recs.iter().filter(|r| r.error.as_deref().is_some_and(|e| e.contains("mock copy crashed"))).collect();
    assert_eq!(crashed.len(), 2, "the stopped copy's batch of 2 is logged as failed");
    // (How many batches the other copy finished before it noticed depends on timing: each is
    // whole and correct, the rest stays out of the log for the next run.)
    assert!(recs.iter().all(|r| r.status == Status::Ok || r.error.is_some()));
    // Every record is whole and each sample at most once.
    let ids: HashSet<&str> = recs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), recs.len());
}

#[test]
fn a_pass_decodes_only_what_some_model_still_needs() {
    let d = tempfile::tempdir().unwrap();
    let suite = Suite::load(&small_suite(d.path())).unwrap();
    let mut a = Mock::new("a", &["n07747607"], 64, 64, ChannelOrder::Rgb, 0);
    let mut b = Mock::new("b", &["n07747607"], 32, 32, ChannelOrder::Rgb, 0);
    let (pa, pb) = (d.path().join("a.jsonl"), d.path().join("b.jsonl"));
    let (mut wa, _) = LogWriter::open(&pa, &log_header(&a, &suite), true).unwrap();
    let (mut wb, _) = LogWriter::open(&pb, &log_header(&b, &suite), true).unwrap();
    // a has everything but 5 samples; b has everything but 10 (overlapping with a's 5).
    let ids: Vec<String> = suite.samples.iter().map(|s| s.id.clone()).collect();
    let done_a: HashSet<String> = ids[5..].iter().cloned().collect();
    let done_b: HashSet<String> = ids[10..].iter().cloned().collect();
    let (mut oa, mut ob) = (JobOutcome::default(), JobOutcome::default());
    let mut jobs = [
        Job { model: &mut a, extra: Vec::new(), log: &mut wa, done: &done_a, outcome: &mut oa },
        Job { model: &mut b, extra: Vec::new(), log: &mut wb, done: &done_b, outcome: &mut ob },
    ];
    let stats =
        evaluate_many(&mut jobs, &suite, &EvalOptions { threads: 2, ..EvalOptions::default() }, &Silent).unwrap();
    drop(jobs);
    assert_eq!(stats.decoded, 10);
    assert_eq!(stats.preprocessed, 15);
    assert_eq!((oa.evaluated, ob.evaluated), (5, 10));
}

// ---------------------------------------------------------------------------------------------
// The command line: plans, several models, sorting, verify

#[test]
fn a_plan_runs_several_models_on_several_suites() {
    let d = tempfile::tempdir().unwrap();
    let suites = shiftbench::demo::generate(&d.path().join("demo")).unwrap();
    let lib = common::plugin_lib("shiftbench_example");
    // The same plugin under three names (model YAMLs), as a nightly might run three models.
    for n in ["alpha", "beta", "gamma"] {
        write(&d.path().join(format!("models/{n}.yaml")), format!("plugin: {}\nname: {n}\n", lib.display()));
    }
    let plan = write(
        &d.path().join("nightly.yaml"),
        format!(
            "models: [models/alpha.yaml, models/beta.yaml]\nsuites: [{}, {}]\nout: results\nbatch: 8\nthreads: 2\nsort: drop\n",
            suites.imagenet.display(),
            suites.laionet.display()
        ),
    );
    let o = Command::new(common::shiftbench_bin())
        .args(["run", "--plan"])
        .arg(&plan)
        .args(["--model"])
        .arg(d.path().join("models/gamma.yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    let out = d.path().join("results");
    let r: RunResult = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r.results.len(), 6);
    // Three names, one plugin: three identical logs per suite.
    for suite in ["imagenet-like", "laionet-like"] {
        let logs: Vec<Vec<Record>> =
            ["alpha", "beta", "gamma"].iter().map(|m| read_records(&log_path(&out, m, suite))).collect();
        assert_eq!(logs[0], logs[1]);
        assert_eq!(logs[0], logs[2]);
    }
    // The summary table: one row per model, with the drop.
    assert!(stdout.contains("drop imagenet-like"), "{stdout}");
    for m in ["alpha", "beta", "gamma"] {
        assert!(stdout.lines().any(|l| l.contains(&format!(" {m} ")) && l.contains("+23.41 ± 2.51")), "{m}: {stdout}");
    }
    // Two models with one name are refused, naming both.
    write(&d.path().join("models/dup.yaml"), format!("plugin: {}\nname: alpha\n", lib.display()));
    let o = Command::new(common::shiftbench_bin())
        .args(["run", "--plan"])
        .arg(&plan)
        .args(["--model"])
        .arg(d.path().join("models/dup.yaml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("both named \"alpha\""), "{err}");
    // An unknown sort column lists the ones there are.
    let o = Command::new(common::shiftbench_bin())
        .args(["run", "--plan"])
        .arg(&plan)
        .args(["--sort", "speed"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no such column") && err.contains("drop:laion"), "{err}");
}

#[test]
fn verify_checks_pinned_checksums() {
    let d = tempfile::tempdir().unwrap();
    let suite = small_suite(d.path());
    let sums = d.path().join("sha256sums.txt");
    let bin = common::shiftbench_bin();
    let o = Command::new(&bin).args(["verify", "--suite"]).arg(&suite).arg("--write").arg(&sums).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&sums).unwrap().lines().count(), 31);
    // Unpinned suites cannot be verified.
    let o = Command::new(&bin).args(["verify", "--suite"]).arg(&suite).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("pins no checksums"));
    let pinned =
        write(&d.path().join("pinned.yaml"), "name: small\nsource:\n  files: img\nchecksums: sha256sums.txt\n");
    let o = Command::new(&bin).args(["verify", "--suite"]).arg(&pinned).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}");
    assert!(stdout.contains("31 samples, 31 verified, 0 mismatched, 0 missing"), "{stdout}");
    // A changed image and a deleted one fail, each named.
    write(&d.path().join("img/n07747607_00.img"), b"tampered");
    std::fs::remove_file(d.path().join("img/n07753592_01.img")).unwrap();
    write(&d.path().join("img/n01440764_99.img"), b"new, unpinned");
    let o = Command::new(&bin).args(["verify", "--suite"]).arg(&pinned).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("MISMATCH n07747607_00.img"), "{stdout}");
    assert!(
        stdout.contains("1 without a checksum") && stdout.contains("1 checksums for ids not in the suite"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("verify failed for small"));
}
