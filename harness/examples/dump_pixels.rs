//! Debug aid: writes an image's decoded RGB8 pixels and its resized + center-cropped RGB8 pixels
//! (raw bytes, row-major HWC) as the pipeline computes them, to compare with other pipelines.
//!
//!     cargo run --release --example dump_pixels -- <image> <resize> <crop> <out prefix>

use shiftbench::imaging::{decode, resize_crop};
use shiftbench_plugin::PreprocessSpec;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [img, resize, crop, out] = &a[..] else {
        eprintln!("usage: dump_pixels <image> <resize> <crop> <out prefix>");
        std::process::exit(2);
    };
    let rgb = decode(&std::fs::read(img).expect("read")).expect("decode");
    let interpolation = match std::env::var("INTERP").as_deref() {
        Ok("bicubic") => shiftbench_plugin::Interpolation::Bicubic,
        Ok("nearest") => shiftbench_plugin::Interpolation::Nearest,
        _ => shiftbench_plugin::Interpolation::Bilinear,
    };
    let spec = PreprocessSpec {
        resize: resize.parse().unwrap(),
        crop: crop.parse().unwrap(),
        interpolation,
        ..PreprocessSpec::IMAGENET
    };
    let c = resize_crop(&rgb, &spec).expect("resize");
    std::fs::write(format!("{out}.decoded.rgb"), rgb.as_raw()).unwrap();
    std::fs::write(format!("{out}.crop.rgb"), c.as_raw()).unwrap();
    if let Ok(size) = std::env::var("FULL") {
        // FULL=WxH: also the whole image resized to W x H.
        let (w, h) = size.split_once('x').expect("FULL=WxH");
        let full = shiftbench::imaging::pillow_resize(&rgb, w.parse().unwrap(), h.parse().unwrap(), interpolation);
        std::fs::write(format!("{out}.full.rgb"), full.as_raw()).unwrap();
    }
    println!("{}x{}", rgb.width(), rgb.height());
}
