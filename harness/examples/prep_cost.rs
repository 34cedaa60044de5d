//! Measures shiftbench's decode + preprocess cost alone: the exact code the pipeline runs per
//! image (`imaging::load_tensor`: decode of the part of the image the crop reads, resize, crop,
//! normalise), on one thread, over a folder of images, with the
//! preprocessing of a model YAML. Prints CPU milliseconds per image.
//!
//!     cargo run --release --example prep_cost -- <model.yaml> <image folder>

use std::path::PathBuf;
use std::time::Instant;

use shiftbench::imaging::{decode, decode_for, load_tensor, resize_crop_part, to_tensor, Normaliser};
use shiftbench_model_config::ModelConfig;

fn cpu_seconds() -> f64 {
    // Process CPU time (user + system) from /proc/self/stat, in clock ticks of 100 Hz.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [yaml, dir] = &args[..] else {
        eprintln!("usage: prep_cost <model.yaml> <image folder>");
        std::process::exit(2);
    };
    let cfg = ModelConfig::load(&PathBuf::from(yaml)).unwrap_or_else(|e| panic!("{e}"));
    let norm = Normaliser::new(&cfg.preprocess);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).expect("folder").map(|e| e.unwrap().path()).collect();
    files.sort();
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).expect("read")).collect();
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let mut ok = 0usize;
    for b in &bytes {
        ok += load_tensor(b, &cfg.preprocess, &norm).is_ok() as usize;
    }
    let (cpu, wall) = (cpu_seconds() - c0, t0.elapsed().as_secs_f64());
    println!(
        "{}: {} images ({ok} ok), decode+preprocess {:.2} CPU ms/image, {:.2} wall ms/image (1 thread, files in memory)",
        cfg.name,
        bytes.len(),
        1000.0 * cpu / bytes.len() as f64,
        1000.0 * wall / bytes.len() as f64
    );
    // Where that time goes, stage by stage (wall time on this one thread).
    // The whole decode is timed too, for comparison with the partial one the pipeline uses.
    let (mut t_whole, mut t_dec, mut t_res, mut t_ten) = (0f64, 0f64, 0f64, 0f64);
    let mut out = vec![0f32; cfg.preprocess.image_len()];
    for b in &bytes {
        let t = Instant::now();
        let Ok(whole) = decode(b) else { continue };
        t_whole += t.elapsed().as_secs_f64();
        drop(whole);
        let t = Instant::now();
        let Ok(img) = decode_for(b, &[&cfg.preprocess]) else { continue };
        t_dec += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let Ok(crop) = resize_crop_part(&img, &cfg.preprocess) else { continue };
        t_res += t.elapsed().as_secs_f64();
        let t = Instant::now();
        to_tensor(&crop, &cfg.preprocess, &norm, &mut out);
        t_ten += t.elapsed().as_secs_f64();
    }
    let ms = |t: f64| 1000.0 * t / bytes.len() as f64;
    println!(
        "{}: stages in ms/image: decode {:.2} (the part preprocessing reads; whole image {:.2}), resize+crop {:.2}, normalise {:.2}",
        cfg.name,
        ms(t_dec),
        ms(t_whole),
        ms(t_res),
        ms(t_ten)
    );
}
