//! `shiftbench demo`: two small deterministic synthetic suites over the same classes, written as
//! real PNG files in ImageFolder layout with their suite YAMLs, so the demo runs through exactly
//! the same code as a real evaluation.
//!
//! - **ImageNet-like**: the stereotype. One object, centred, canonical size and colour, plain
//!   background, the same number of images per class.
//! - **LAIONet-like**: the same classes as found in the wild. Varied position (sometimes partly
//!   out of frame) and scale, shifted or unusual colours, gradient backgrounds with clutter, and a
//!   skewed (Zipf-like) class frequency, which become the LAION weights of both suites.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Disc,
    WideEllipse,
    TallEllipse,
    Square,
    WideRect,
    TriangleUp,
    TriangleDown,
    Ring,
}

impl Shape {
    /// Whether the point (u, v), in units of the shape's half-size around its centre, is inside.
    pub fn contains(self, u: f32, v: f32) -> bool {
        match self {
            Shape::Disc => u * u + v * v <= 1.0,
            Shape::WideEllipse => u * u + 4.0 * v * v <= 1.0,
            Shape::TallEllipse => 4.0 * u * u + v * v <= 1.0,
            Shape::Square => u.abs() <= 0.85 && v.abs() <= 0.85,
            Shape::WideRect => u.abs() <= 1.0 && v.abs() <= 0.5,
            Shape::TriangleUp => v.abs() <= 1.0 && u.abs() <= (v + 1.0) / 2.0,
            Shape::TriangleDown => v.abs() <= 1.0 && u.abs() <= (1.0 - v) / 2.0,
            Shape::Ring => (0.25..=1.0).contains(&(u * u + v * v)),
        }
    }
}

/// A class of the synthetic world: its wnid and how its objects look.
#[derive(Debug, Clone, Copy)]
pub struct DemoClass {
    pub wnid: &'static str,
    pub name: &'static str,
    pub shape: Shape,
    pub rgb: [u8; 3],
}

/// The synthetic world's classes (real ImageNet-1k wnids).
pub const CLASSES: [DemoClass; 10] = [
    DemoClass { wnid: "n07747607", name: "orange", shape: Shape::Disc, rgb: [245, 130, 20] },
    DemoClass { wnid: "n07753592", name: "banana", shape: Shape::WideEllipse, rgb: [240, 215, 60] },
    DemoClass { wnid: "n07745940", name: "strawberry", shape: Shape::TriangleDown, rgb: [200, 25, 40] },
    DemoClass { wnid: "n07720875", name: "bell pepper", shape: Shape::Square, rgb: [40, 150, 50] },
    DemoClass { wnid: "n09472597", name: "volcano", shape: Shape::TriangleUp, rgb: [110, 80, 70] },
    DemoClass { wnid: "n04254680", name: "soccer ball", shape: Shape::Disc, rgb: [235, 235, 235] },
    DemoClass { wnid: "n03938244", name: "pillow", shape: Shape::WideRect, rgb: [140, 170, 230] },
    DemoClass { wnid: "n07718472", name: "cucumber", shape: Shape::WideEllipse, rgb: [35, 100, 40] },
    DemoClass { wnid: "n07749582", name: "lemon", shape: Shape::TallEllipse, rgb: [225, 230, 80] },
    DemoClass { wnid: "n02782093", name: "balloon", shape: Shape::Ring, rgb: [220, 60, 160] },
];

const W: u32 = 96;
const H: u32 = 80;

/// Paints `shape` (centre cx, cy; half-size r) with 2x2 supersampled edges.
fn paint(img: &mut RgbImage, shape: Shape, cx: f32, cy: f32, r: f32, rgb: [u8; 3]) {
    let (x0, x1) = (((cx - r).floor().max(0.0)) as u32, ((cx + r).ceil().min(W as f32 - 1.0)) as u32);
    let (y0, y1) = (((cy - r).floor().max(0.0)) as u32, ((cy + r).ceil().min(H as f32 - 1.0)) as u32);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let mut cover = 0;
            for (dx, dy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                if shape.contains((x as f32 + dx - cx) / r, (y as f32 + dy - cy) / r) {
                    cover += 1;
                }
            }
            if cover > 0 {
                let p = img.get_pixel_mut(x, y);
                for (c, &v) in rgb.iter().enumerate() {
                    p.0[c] = ((p.0[c] as u32 * (4 - cover) + v as u32 * cover) / 4) as u8;
                }
            }
        }
    }
}

fn jitter(rng: &mut ChaCha8Rng, rgb: [u8; 3], amount: i32) -> [u8; 3] {
    rgb.map(|c| (c as i32 + rng.random_range(-amount..=amount)).clamp(0, 255) as u8)
}

/// A stereotypical image of `class`.
pub fn imagenet_like(class: &DemoClass, rng: &mut ChaCha8Rng) -> RgbImage {
    let mut img = RgbImage::from_fn(W, H, |_, _| Rgb([200, 200, 200]));
    for p in img.pixels_mut() {
        let n = rng.random_range(-3i32..=3);
        p.0 = p.0.map(|c| (c as i32 + n) as u8);
    }
    let r = H as f32 * rng.random_range(0.22..0.32);
    let (cx, cy) = (W as f32 / 2.0 + rng.random_range(-4.0..4.0), H as f32 / 2.0 + rng.random_range(-4.0..4.0));
    let colour = jitter(rng, class.rgb, 22);
    paint(&mut img, class.shape, cx, cy, r, colour);
    img
}

/// The same class as seen "in the wild".
pub fn laionet_like(class: &DemoClass, rng: &mut ChaCha8Rng) -> RgbImage {
    let (a, b) = (jitter(rng, [160, 160, 160], 55), jitter(rng, [160, 160, 160], 55));
    let mut img = RgbImage::from_fn(W, H, |x, y| {
        let t = (x + y) as f32 / (W + H) as f32;
        Rgb([0, 1, 2].map(|c| (a[c] as f32 * (1.0 - t) + b[c] as f32 * t) as u8))
    });
    for _ in 0..rng.random_range(0..3) {
        let shape = CLASSES[rng.random_range(0..CLASSES.len())].shape;
        let colour = jitter(rng, [128, 128, 128], 127);
        let r = H as f32 * rng.random_range(0.04..0.12);
        paint(&mut img, shape, rng.random_range(0.0..W as f32), rng.random_range(0.0..H as f32), r, colour);
    }
    let r = H as f32 * rng.random_range(0.16..0.38);
    let (cx, cy) = (W as f32 * rng.random_range(0.25..0.75), H as f32 * rng.random_range(0.25..0.75));
    let colour = if rng.random_bool(0.08) { jitter(rng, [128, 128, 128], 127) } else { jitter(rng, class.rgb, 28) };
    paint(&mut img, class.shape, cx, cy, r, colour);
    img
}

/// Images per class of the LAIONet-like suite: Zipf-like, in a fixed shuffled class order.
pub fn laionet_counts() -> Vec<usize> {
    let order = [3usize, 7, 0, 9, 5, 1, 8, 2, 6, 4];
    let mut counts = vec![0; CLASSES.len()];
    for (rank, &c) in order.iter().enumerate() {
        counts[c] = (160.0 / (rank as f64 + 1.0).powf(1.1)).round() as usize;
    }
    counts
}

/// Per-class images of the ImageNet-like suite.
pub const IMAGENET_PER_CLASS: usize = 40;

pub struct DemoSuites {
    pub imagenet: PathBuf,
    pub laionet: PathBuf,
}

/// Writes both suites under `out` and returns their YAML paths.
pub fn generate(out: &Path) -> Result<DemoSuites> {
    let write_suite =
        |name: &str, counts: &[usize], seed: u64, f: fn(&DemoClass, &mut ChaCha8Rng) -> RgbImage| -> Result<()> {
            let dir = out.join(name);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
            }
            for (ci, class) in CLASSES.iter().enumerate() {
                let cdir = dir.join(class.wnid);
                std::fs::create_dir_all(&cdir).with_context(|| format!("cannot create {}", cdir.display()))?;
                let mut rng = ChaCha8Rng::seed_from_u64(seed * 1000 + ci as u64);
                for i in 0..counts[ci] {
                    let p = cdir.join(format!("{}_{i:04}.png", class.name.replace(' ', "_")));
                    f(class, &mut rng).save(&p).with_context(|| format!("cannot write {}", p.display()))?;
                }
            }
            Ok(())
        };
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_suite("imagenet-like", &[IMAGENET_PER_CLASS; CLASSES.len()], 1, imagenet_like)?;
    write_suite("laionet-like", &laionet_counts(), 2, laionet_like)?;
    let imagenet = out.join("imagenet-like.yaml");
    let laionet = out.join("laionet-like.yaml");
    std::fs::write(
        &imagenet,
        "# Generated by `shiftbench demo`: the stereotypical view of each class.\n\
         name: imagenet-like\nsource:\n  image_folder: imagenet-like\n\
         # LAION weights: the class frequencies of the LAIONet-like suite, as the paper applies\n\
         # LAIONet's weights to ImageNet too.\nweights: {suite: laionet-like.yaml}\n",
    )?;
    std::fs::write(
        &laionet,
        "# Generated by `shiftbench demo`: the same classes as seen in the wild.\n\
         name: laionet-like\nsource:\n  image_folder: laionet-like\n\
         # LAION weights: this suite's own class frequencies.\nweights: own\n",
    )?;
    Ok(DemoSuites { imagenet, laionet })
}

/// The demo's LAION-style captions (`SAMPLE_ID`, `URL`, `TEXT`, `NSFW`): captions of the demo's
/// classes that describe the thing, ones that name it in passing (`orange juice carton label`),
/// ones naming two classes, capitalised names the paper's case-sensitive match misses, captions
/// of nothing in particular, and a few NSFW tags.
pub const DEMO_CAPTIONS: &str = include_str!("demo_captions.tsv");

/// Writes [`DEMO_CAPTIONS`] as `captions/demo-captions.parquet` under `out`, as LAION ships its
/// metadata, for `shiftbench laionet build`; returns the folder.
pub fn write_captions(out: &Path) -> Result<PathBuf> {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    let (mut id, mut url, mut text, mut nsfw) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, line) in DEMO_CAPTIONS.lines().enumerate().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        anyhow::ensure!(c.len() == 4, "demo_captions.tsv:{}: expected 4 columns", i + 1);
        id.push(c[0].parse::<i64>().with_context(|| format!("demo_captions.tsv:{}", i + 1))?);
        url.push(c[1].to_string());
        text.push(c[2].to_string());
        nsfw.push(c[3].to_string());
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("SAMPLE_ID", DataType::Int64, false),
        Field::new("URL", DataType::Utf8, false),
        Field::new("TEXT", DataType::Utf8, true),
        Field::new("NSFW", DataType::Utf8, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(id)),
        Arc::new(StringArray::from(url)),
        Arc::new(StringArray::from(text)),
        Arc::new(StringArray::from(nsfw)),
    ];
    let dir = out.join("captions");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut w = crate::data::captions::AtomicParquet::create(&dir.join("demo-captions.parquet"), schema.clone())?;
    w.write(&RecordBatch::try_new(schema, cols)?)?;
    w.finish()?;
    Ok(dir)
}
