//! `shiftbench similarity` through the ONNX plugin's `embedding:` agrees with an independent
//! Python pipeline (PIL resize 256 bilinear, center crop 224, onnxruntime with the inner tensor
//! added as a graph output, numpy in float64: bench/similarity_reference.py) on the 1,000 real
//! ImageNet sample photos grouped into coarse classes (fish, birds, reptiles and amphibians,
//! dogs, insects, road vehicles): per class the same n and pairs, and mean, std and se of the
//! pairwise cosines within 1e-5.
//!
//! The sample folder has one photo per ImageNet class, so a coarse class is a range of ImageNet
//! indices; its photos are linked into an ImageFolder tree under the class's first member's wnid
//! (all dogs under n02085620, Chihuahua), which keeps the suite's labels real ImageNet wnids.
//! `--per-class 1000` is more than any group holds, so shiftbench's seeded choice takes every
//! photo and the reference need not reproduce it.
//!
//! Three models: SqueezeNet 1.1 fp32 and fp16 (`pool10_1`, the pooled layer its softmax reads) and
//! the int8 MobileNetV2 (`464_quantized`, its pooled features, u8 dequantized with the model's own
//! scale and zero point on both sides). The pixels are PIL's byte for byte (tests/pixels.rs) and
//! both sides run the same ONNX Runtime one image per call, so the observed differences are
//! float64 summation order (about 1e-15); a resize off by one pixel moves a mean by ~5e-5.

mod common;

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Coarse classes: name and ImageNet-1k index ranges (lines of imagenet_synsets.txt); the first
/// index's wnid labels the group.
const GROUPS: &[(&str, &[RangeInclusive<usize>])] = &[
    ("fish", &[0..=6, 389..=397]),
    ("birds", &[7..=24, 80..=100, 127..=146]),
    ("reptiles+amphibians", &[25..=68]),
    ("dogs", &[151..=268]),
    ("insects", &[300..=326]),
    (
        "road vehicles",
        &[
            407..=407, // ambulance
            436..=436, // beach wagon
            468..=468, // cab
            511..=511, // convertible
            555..=555, // fire engine
            569..=569, // garbage truck
            573..=573, // go-kart
            575..=575, // golfcart
            609..=609, // jeep
            627..=627, // limousine
            654..=654, // minibus
            656..=656, // minivan
            661..=661, // Model T
            675..=675, // moving van
            717..=717, // pickup
            734..=734, // police van
            751..=751, // racer
            779..=779, // school bus
            817..=817, // sports car
            864..=864, // tow truck
            867..=867, // trailer truck
            874..=874, // trolleybus
        ],
    ),
];

const TOLERANCE: f64 = 1e-5;
const SUITE: &str = "coarse-groups";

/// One row of similarity.csv (or the reference's CSV with the same columns).
#[derive(Debug, Clone, Copy)]
struct Row {
    n: usize,
    pairs: usize,
    mean: f64,
    std: f64,
    se: f64,
}

/// wnid -> row, checking the header and that every row is of `suite`.
fn read_csv(path: &Path, suite: &str) -> BTreeMap<String, Row> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("suite,wnid,n,pairs,mean_cosine,std_cosine,se"), "{}", path.display());
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 7, "{}: {l}", path.display());
            assert_eq!(f[0], suite, "{}: {l}", path.display());
            let num = |i: usize| f[i].parse::<f64>().unwrap_or_else(|e| panic!("{}: {l}: {e}", path.display()));
            let row =
                Row { n: f[2].parse().unwrap(), pairs: f[3].parse().unwrap(), mean: num(4), std: num(5), se: num(6) };
            (f[1].to_string(), row)
        })
        .collect()
}

/// Links the sample photos of every group into `<dir>/photos/<group wnid>/` and writes the suite
/// YAML; returns it with the groups as (name, wnid, photos).
fn grouped_suite(data: &Path, dir: &Path) -> (std::path::PathBuf, Vec<(&'static str, String, usize)>) {
    let synsets = std::fs::read_to_string(data.join("classes/imagenet_synsets.txt")).unwrap();
    let synsets: Vec<&str> = synsets.split_whitespace().collect();
    assert_eq!(synsets.len(), 1000);
    let mut photos: Vec<_> =
        std::fs::read_dir(data.join("imagenet-samples")).unwrap().map(|e| e.unwrap().path()).collect();
    photos.sort();
    let mut groups = Vec::new();
    for (name, ranges) in GROUPS {
        let label = synsets[*ranges[0].start()].to_string();
        let folder = dir.join("photos").join(&label);
        std::fs::create_dir_all(&folder).unwrap();
        let mut count = 0;
        for p in &photos {
            let file = p.file_name().unwrap().to_str().unwrap();
            let wnid = file.split('_').next().unwrap();
            let Some(index) = synsets.iter().position(|s| *s == wnid) else { continue };
            if ranges.iter().any(|r| r.contains(&index)) {
                std::os::unix::fs::symlink(p, folder.join(file)).unwrap();
                count += 1;
            }
        }
        assert!(count >= 7, "{name}: only {count} photos");
        groups.push((*name, label, count));
    }
    let yaml = dir.join(format!("{SUITE}.yaml"));
    std::fs::write(&yaml, format!("name: {SUITE}\nsource:\n  image_folder: photos\n")).unwrap();
    (yaml, groups)
}

/// The example model YAML with an absolute `model:` path and `embedding: <tensor>`.
fn embedding_model(data: &Path, dir: &Path, model: &str, tensor: &str) -> std::path::PathBuf {
    let example = std::fs::read_to_string(common::repo().join(format!("plugins/onnx/examples/{model}.yaml"))).unwrap();
    let file = data.join(format!("models/{model}.onnx"));
    let mut replaced = false;
    let mut yaml: String = example
        .lines()
        .map(|l| {
            if l.starts_with("model:") {
                replaced = true;
                format!("model: {}\n", file.display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert!(replaced, "{model}.yaml has no model: line");
    yaml.push_str(&format!("embedding: {tensor}\n"));
    let path = dir.join(format!("{model}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

fn agreement(model: &str, tensor: &str) {
    let test = "similarity_reference";
    let Some(data) = common::shared_data(test) else { return };
    if !common::python_has("PIL, numpy, onnx, onnxruntime", test) {
        return;
    }
    let start = Instant::now();
    let d = tempfile::tempdir().unwrap();
    let (suite, groups) = grouped_suite(&data, d.path());
    let model_yaml = embedding_model(&data, d.path(), model, tensor);
    let out = d.path().join("out");
    let t = Instant::now();
    let o = Command::new(common::shiftbench_bin())
        .args(["similarity", "--per-class", "1000", "--suite"])
        .arg(&suite)
        .arg("--model")
        .arg(&model_yaml)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let harness_s = t.elapsed().as_secs_f64();
    let reference_csv = d.path().join("reference.csv");
    let t = Instant::now();
    let o = Command::new("python3")
        .arg(common::repo().join("bench/similarity_reference.py"))
        .args(["--model", model, "--embedding", tensor, "--suite", SUITE, "--workers", "2", "--data"])
        .arg(&data)
        .arg(d.path().join("photos"))
        .arg(&reference_csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reference_s = t.elapsed().as_secs_f64();

    let ours = read_csv(&out.join("similarity.csv"), SUITE);
    let reference = read_csv(&reference_csv, SUITE);
    let wnids: Vec<&String> = groups.iter().map(|g| &g.1).collect();
    assert_eq!(ours.keys().collect::<Vec<_>>(), reference.keys().collect::<Vec<_>>(), "classes differ");
    assert_eq!(ours.len(), groups.len(), "shiftbench's classes {:?}, the groups {wnids:?}", ours.keys());
    eprintln!("{model} `{tensor}`: shiftbench {harness_s:.1} s, reference {reference_s:.1} s");
    eprintln!(
        "{:<20} {:>9} {:>4} {:>6} {:>12} {:>12} {:>9}",
        "group", "wnid", "n", "pairs", "shiftbench", "reference", "|diff|"
    );
    let (mut d_mean, mut d_std, mut d_se) = (0f64, 0f64, 0f64);
    for (name, wnid, count) in &groups {
        let (a, b) = (ours[wnid], reference[wnid]);
        assert_eq!((a.n, a.pairs), (b.n, b.pairs), "{name} {wnid}: n, pairs");
        assert_eq!(a.n, *count, "{name} {wnid}: shiftbench embedded {} of its {count} photos", a.n);
        eprintln!(
            "{name:<20} {wnid:>9} {:>4} {:>6} {:>12.8} {:>12.8} {:>9.2e}",
            a.n,
            a.pairs,
            a.mean,
            b.mean,
            (a.mean - b.mean).abs()
        );
        d_mean = d_mean.max((a.mean - b.mean).abs());
        d_std = d_std.max((a.std - b.std).abs());
        d_se = d_se.max((a.se - b.se).abs());
    }
    eprintln!(
        "{model}: largest |difference|: mean {d_mean:.2e}, std {d_std:.2e}, se {d_se:.2e} (tolerance {TOLERANCE:e}); {:.1} s in all",
        start.elapsed().as_secs_f64()
    );
    assert!(d_mean <= TOLERANCE && d_std <= TOLERANCE && d_se <= TOLERANCE, "{model}: differences over {TOLERANCE:e}");
}

#[test]
fn squeezenet_fp32_pool10_matches_pil_and_onnxruntime() {
    agreement("squeezenet1.1-fp32", "pool10_1");
}

#[test]
fn squeezenet_fp16_pool10_matches_pil_and_onnxruntime() {
    agreement("squeezenet1.1-fp16", "pool10_1");
}

#[test]
fn int8_mobilenet_pooled_features_match_pil_and_onnxruntime() {
    agreement("mobilenetv2-12-int8", "464_quantized");
}
