//! Pixel exactness on real photos: shiftbench's decode + resize + center crop equals PIL's
//! (`bench/pil_crops.py`: PIL decode, `convert("RGB")`, `Image.resize`, crop), byte for byte,
//! for every one of the 1,000 ImageNet sample photos with the standard 256/224 bilinear
//! preprocessing, and for the first 200 with bicubic 232/224 and nearest 256/224; both through
//! the pipeline's partial JPEG decode and through a whole decode.

mod common;

use std::process::Command;

use sha2::{Digest, Sha256};
use shiftbench::imaging::{decode, preprocess, resize_crop};
use shiftbench_plugin::{Interpolation, PreprocessSpec};

fn compare(resize: u32, crop: u32, interpolation: Interpolation, name: &str, limit: usize) {
    let test = "pixels";
    let Some(data) = common::shared_data(test) else { return };
    if !common::python_has("PIL", test) {
        return;
    }
    let folder = data.join("imagenet-samples");
    let o = Command::new("python3")
        .arg(common::repo().join("bench/pil_crops.py"))
        .arg(&folder)
        .args([resize.to_string(), crop.to_string(), name.to_string(), "--limit".into(), limit.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let spec = PreprocessSpec { resize, crop, interpolation, ..PreprocessSpec::IMAGENET };
    let mut differ = Vec::new();
    let mut n = 0;
    for line in text.lines() {
        let (file, want) = line.split_once(',').unwrap();
        let bytes = std::fs::read(folder.join(file)).unwrap();
        // The pipeline's path (only the part of the JPEG the crop reads is decoded) and the
        // whole decode must both give PIL's pixels.
        let part = preprocess(&bytes, &[&spec]).unwrap().remove(0).unwrap();
        let whole = resize_crop(&decode(&bytes).unwrap(), &spec).unwrap();
        assert_eq!(part.dimensions(), (crop, crop));
        if format!("{:x}", Sha256::digest(part.as_raw())) != want {
            differ.push(format!("{file} (partial decode)"));
        }
        if format!("{:x}", Sha256::digest(whole.as_raw())) != want {
            differ.push(format!("{file} (whole decode)"));
        }
        n += 1;
    }
    assert_eq!(n, limit, "PIL saw {n} images");
    assert!(
        differ.is_empty(),
        "{name} {resize}/{crop}: {} of {n} crops differ from PIL's, e.g. {:?}",
        differ.len(),
        &differ[..differ.len().min(5)]
    );
    eprintln!("{name} {resize}/{crop}: all {n} crops equal PIL's byte for byte");
}

#[test]
fn bilinear_256_224_equals_pil_on_all_samples() {
    compare(256, 224, Interpolation::Bilinear, "bilinear", 1000);
}

#[test]
fn bicubic_232_224_equals_pil() {
    compare(232, 224, Interpolation::Bicubic, "bicubic", 200);
}

#[test]
fn nearest_256_224_equals_pil() {
    compare(256, 224, Interpolation::Nearest, "nearest", 200);
}
