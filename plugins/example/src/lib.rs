//! # The example plugin: a small pure-Rust classifier, and the template for plugin authors
//!
//! Copy this crate to write a plugin for your own Rust model: keep `crate-type = ["cdylib"]`,
//! depend on `shiftbench-plugin` only, implement [`Classifier`] and call [`export_plugin!`].
//!
//! The model itself is a hand-made "shape and colour" classifier for the synthetic demo suites
//! (`shiftbench demo`). It knows a handful of ImageNet classes by their stereotype (an orange
//! disc, a yellow elongated ellipse, a red down-pointing triangle, ...). Like an ImageNet-trained
//! network it leans on what the stereotypical photo shows: a plain background, one object, its
//! canonical colour. It segments the object from the background estimated on the image border,
//! measures colour and shape (fill ratio, aspect ratio, where the mass sits), and scores every
//! class by a Gaussian log-likelihood around its prototype. Clutter, odd colours and partly
//! visible objects (what the LAIONet-like demo suite has) break those cues, as distribution shift
//! does for real models.
//!
//! It also offers a text encoder, `toy-hash` ([`text`]): hashed words and character trigrams, so
//! that `shiftbench demo` can build a LAIONet-like suite from captions without downloading a
//! language model.

pub mod text;

use shiftbench_plugin::{
    export_plugin, ChannelOrder, Classifier, Interpolation, Layout, LoadRequest, ModelCard, PreprocessSpec, ScoreKind,
};

/// Side of the (square) input this model reads.
pub const INPUT: usize = 64;

/// Shapes the model knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Disc,
    /// An ellipse twice as wide as high.
    WideEllipse,
    /// An ellipse twice as high as wide.
    TallEllipse,
    Square,
    /// A rectangle twice as wide as high.
    WideRect,
    TriangleUp,
    TriangleDown,
    /// A ring (disc with a hole).
    Ring,
}

/// A class the model knows: its wnid, a human name, and its stereotype.
#[derive(Debug, Clone, Copy)]
pub struct Prototype {
    pub wnid: &'static str,
    pub name: &'static str,
    pub shape: Shape,
    pub rgb: [u8; 3],
}

/// The classes, in output order.
pub const CLASSES: [Prototype; 10] = [
    Prototype { wnid: "n07747607", name: "orange", shape: Shape::Disc, rgb: [245, 130, 20] },
    Prototype { wnid: "n07753592", name: "banana", shape: Shape::WideEllipse, rgb: [240, 215, 60] },
    Prototype { wnid: "n07745940", name: "strawberry", shape: Shape::TriangleDown, rgb: [200, 25, 40] },
    Prototype { wnid: "n07720875", name: "bell pepper", shape: Shape::Square, rgb: [40, 150, 50] },
    Prototype { wnid: "n09472597", name: "volcano", shape: Shape::TriangleUp, rgb: [110, 80, 70] },
    Prototype { wnid: "n04254680", name: "soccer ball", shape: Shape::Disc, rgb: [235, 235, 235] },
    Prototype { wnid: "n03938244", name: "pillow", shape: Shape::WideRect, rgb: [140, 170, 230] },
    Prototype { wnid: "n07718472", name: "cucumber", shape: Shape::WideEllipse, rgb: [35, 100, 40] },
    Prototype { wnid: "n07749582", name: "lemon", shape: Shape::TallEllipse, rgb: [225, 230, 80] },
    Prototype { wnid: "n02782093", name: "balloon", shape: Shape::Ring, rgb: [220, 60, 160] },
];

/// Shape descriptors measured on a binary object mask.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShapeFeatures {
    /// Object pixels / bounding-box pixels.
    pub fill: f32,
    /// ln(width / height) of the bounding box.
    pub log_aspect: f32,
    /// (centroid row - box centre row) / box height: > 0 when the mass sits low (a triangle
    /// pointing up), < 0 when it sits high.
    pub mass_offset: f32,
    /// Fraction of the box's central ninth that is object: 0 for a ring, 1 for solid shapes.
    pub core: f32,
}

/// The descriptors of an ideal, noise-free shape.
pub fn ideal_features(shape: Shape) -> ShapeFeatures {
    use std::f32::consts::PI;
    let (fill, log_aspect, mass_offset, core) = match shape {
        Shape::Disc => (PI / 4.0, 0.0, 0.0, 1.0),
        Shape::WideEllipse => (PI / 4.0, 2f32.ln(), 0.0, 1.0),
        Shape::TallEllipse => (PI / 4.0, -(2f32.ln()), 0.0, 1.0),
        Shape::Square => (1.0, 0.0, 0.0, 1.0),
        Shape::WideRect => (1.0, 2f32.ln(), 0.0, 1.0),
        Shape::TriangleUp => (0.5, 0.0, 1.0 / 6.0, 1.0),
        Shape::TriangleDown => (0.5, 0.0, -1.0 / 6.0, 1.0),
        // Outer radius 1, inner 0.5: area pi*(1-0.25)/4 of the box.
        Shape::Ring => (PI * 0.75 / 4.0, 0.0, 0.0, 0.0),
    };
    ShapeFeatures { fill, log_aspect, mass_offset, core }
}

/// The model: stateless apart from its prototypes.
pub struct ShapeColourModel {
    protos: Vec<(Prototype, ShapeFeatures)>,
}

impl ShapeColourModel {
    pub fn new() -> Self {
        ShapeColourModel { protos: CLASSES.iter().map(|p| (*p, ideal_features(p.shape))).collect() }
    }

    /// Scores one image given as RGB HWC in 0..1 (`INPUT` x `INPUT`).
    pub fn score_hwc(&self, px: &[f32]) -> Vec<f32> {
        let Some((colour, f)) = measure_hwc(px) else {
            // Nothing stands out: no evidence for any class.
            return vec![0.0; self.protos.len()];
        };
        self.protos
            .iter()
            .map(|(p, pf)| {
                let dc: f32 = (0..3).map(|c| (colour[c] - p.rgb[c] as f32 / 255.0).powi(2)).sum();
                -(dc / 0.01
                    + (f.fill - pf.fill).powi(2) / 0.01
                    + (f.log_aspect - pf.log_aspect).powi(2) / 0.04
                    + (f.mass_offset - pf.mass_offset).powi(2) / 0.002
                    + (f.core - pf.core).powi(2) / 0.1)
                    / 2.0
            })
            .collect()
    }

    /// The embedding of one image (RGB HWC in 0..1): what the model measures (the object's
    /// colour and its four shape descriptors), relative to the mean of its prototypes and divided
    /// by the spread its scores allow each cue, so that the cosine of two embeddings weighs the
    /// cues as the model does. All zeros when nothing stands out from the background.
    pub fn embed_hwc(&self, px: &[f32]) -> [f32; EMBEDDING_LEN] {
        let Some((colour, f)) = measure_hwc(px) else { return [0.0; EMBEDDING_LEN] };
        let n = self.protos.len() as f32;
        let mean = |g: &dyn Fn(&(Prototype, ShapeFeatures)) -> f32| self.protos.iter().map(g).sum::<f32>() / n;
        let mut e = [0f32; EMBEDDING_LEN];
        for c in 0..3 {
            e[c] = (colour[c] - mean(&|(p, _)| p.rgb[c] as f32 / 255.0)) / 0.1;
        }
        e[3] = (f.fill - mean(&|(_, pf)| pf.fill)) / 0.1;
        e[4] = (f.log_aspect - mean(&|(_, pf)| pf.log_aspect)) / 0.2;
        e[5] = (f.mass_offset - mean(&|(_, pf)| pf.mass_offset)) / 0.002f32.sqrt();
        e[6] = (f.core - mean(&|(_, pf)| pf.core)) / 0.1f32.sqrt();
        e
    }
}

/// Values in the example model's embedding: colour (3) and shape (4).
pub const EMBEDDING_LEN: usize = 7;

/// The object's mean colour and shape descriptors in one image (RGB HWC in 0..1), or None when
/// nothing stands out from the background.
fn measure_hwc(px: &[f32]) -> Option<([f32; 3], ShapeFeatures)> {
    let n = INPUT;
    let at = |y: usize, x: usize, c: usize| px[(y * n + x) * 3 + c];
    // Background: per-channel median of the border pixels.
    let mut border: [Vec<f32>; 3] = [vec![], vec![], vec![]];
    for i in 0..n {
        for &(y, x) in &[(0, i), (n - 1, i), (i, 0), (i, n - 1)] {
            for (c, b) in border.iter_mut().enumerate() {
                b.push(at(y, x, c));
            }
        }
    }
    let bg: Vec<f32> = border
        .iter_mut()
        .map(|v| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        })
        .collect();
    // Object mask: far enough from the background colour.
    let mut mask = vec![false; n * n];
    let (mut y0, mut y1, mut x0, mut x1) = (n, 0, n, 0);
    let mut count = 0usize;
    let (mut sum_rgb, mut sum_y) = ([0f32; 3], 0f32);
    for y in 0..n {
        for x in 0..n {
            let d2: f32 = (0..3).map(|c| (at(y, x, c) - bg[c]).powi(2)).sum();
            if d2 > 0.2f32.powi(2) {
                mask[y * n + x] = true;
                count += 1;
                y0 = y0.min(y);
                y1 = y1.max(y);
                x0 = x0.min(x);
                x1 = x1.max(x);
                for (c, s) in sum_rgb.iter_mut().enumerate() {
                    *s += at(y, x, c);
                }
                sum_y += y as f32;
            }
        }
    }
    if count < 4 {
        return None;
    }
    let (h, w) = ((y1 - y0 + 1) as f32, (x1 - x0 + 1) as f32);
    let colour = sum_rgb.map(|s| s / count as f32);
    let (cy0, cy1) = (y0 + (y1 - y0) / 3, y1 - (y1 - y0) / 3);
    let (cx0, cx1) = (x0 + (x1 - x0) / 3, x1 - (x1 - x0) / 3);
    let mut core_n = 0usize;
    let mut core_in = 0usize;
    for y in cy0..=cy1 {
        for x in cx0..=cx1 {
            core_n += 1;
            core_in += mask[y * n + x] as usize;
        }
    }
    let f = ShapeFeatures {
        fill: count as f32 / (h * w),
        log_aspect: (w / h).ln(),
        mass_offset: (sum_y / count as f32 - (y0 as f32 + y1 as f32) / 2.0) / h,
        core: core_in as f32 / core_n.max(1) as f32,
    };
    Some((colour, f))
}

impl Default for ShapeColourModel {
    fn default() -> Self {
        Self::new()
    }
}

impl Classifier for ShapeColourModel {
    fn load(_request: &LoadRequest) -> Result<Self, String> {
        Ok(ShapeColourModel::new())
    }

    fn card(&self) -> ModelCard {
        ModelCard {
            name: "example-shape-colour".into(),
            labels: self.protos.iter().map(|(p, _)| p.wnid.into()).collect(),
            preprocess: PreprocessSpec {
                resize: INPUT as u32,
                crop: INPUT as u32,
                interpolation: Interpolation::Bilinear,
                channel_order: ChannelOrder::Rgb,
                layout: Layout::Nhwc,
                scale: 1.0 / 255.0,
                mean: [0.0; 3],
                std: [1.0; 3],
            },
            max_batch: 0,
            scores: ScoreKind::Logits,
        }
    }

    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        let per = INPUT * INPUT * 3;
        if input.len() != batch * per {
            return Err(format!("expected {} values for {batch} images, got {}", batch * per, input.len()));
        }
        Ok(input.chunks_exact(per).flat_map(|img| self.score_hwc(img)).collect())
    }

    fn embedding_len(&self) -> usize {
        EMBEDDING_LEN
    }

    fn embed(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        let per = INPUT * INPUT * 3;
        if input.len() != batch * per {
            return Err(format!("expected {} values for {batch} images, got {}", batch * per, input.len()));
        }
        Ok(input.chunks_exact(per).flat_map(|img| self.embed_hwc(img)).collect())
    }
}

// The classifier, and the toy text encoder (`--encoder example`).
export_plugin!(ShapeColourModel, text_encoder = text::ToyHash);

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders an ideal shape filling the middle half of the input, for a self-check.
    fn render(p: &Prototype) -> Vec<f32> {
        let n = INPUT as f32;
        let mut px = vec![0.8f32; INPUT * INPUT * 3];
        for y in 0..INPUT {
            for x in 0..INPUT {
                let (u, v) = ((x as f32 + 0.5 - n / 2.0) / (n / 4.0), (y as f32 + 0.5 - n / 2.0) / (n / 4.0));
                let inside = match p.shape {
                    Shape::Disc => u * u + v * v <= 1.0,
                    Shape::WideEllipse => (u / 1.0).powi(2) + (v / 0.5).powi(2) <= 1.0,
                    Shape::TallEllipse => (u / 0.5).powi(2) + (v / 1.0).powi(2) <= 1.0,
                    Shape::Square => u.abs() <= 1.0 && v.abs() <= 1.0,
                    Shape::WideRect => u.abs() <= 1.0 && v.abs() <= 0.5,
                    Shape::TriangleUp => v.abs() <= 1.0 && u.abs() <= (v + 1.0) / 2.0,
                    Shape::TriangleDown => v.abs() <= 1.0 && u.abs() <= (1.0 - v) / 2.0,
                    Shape::Ring => (0.25..=1.0).contains(&(u * u + v * v)),
                };
                if inside {
                    for c in 0..3 {
                        px[(y * INPUT + x) * 3 + c] = p.rgb[c] as f32 / 255.0;
                    }
                }
            }
        }
        px
    }

    #[test]
    fn recognises_every_stereotype() {
        let m = ShapeColourModel::new();
        for (i, p) in CLASSES.iter().enumerate() {
            let s = m.score_hwc(&render(p));
            let best = s.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0))).unwrap().0;
            assert_eq!(best, i, "{} scored {:?}", p.name, s);
        }
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
    }

    #[test]
    fn embeddings_are_alike_within_a_class_and_unlike_across() {
        let m = ShapeColourModel::new();
        let e: Vec<[f32; EMBEDDING_LEN]> = CLASSES.iter().map(|p| m.embed_hwc(&render(p))).collect();
        // A slightly shifted colour keeps the class's direction.
        let mut near = CLASSES[0];
        near.rgb = [235, 140, 30];
        assert!(cosine(&e[0], &m.embed_hwc(&render(&near))) > 0.95);
        for (i, a) in e.iter().enumerate() {
            assert!(a.iter().all(|v| v.is_finite()));
            for (j, b) in e.iter().enumerate().filter(|&(j, _)| j != i) {
                assert!(cosine(a, b) < 0.95, "{} and {}: {}", CLASSES[i].name, CLASSES[j].name, cosine(a, b));
            }
        }
        assert_eq!(m.embed_hwc(&vec![0.5; INPUT * INPUT * 3]), [0.0; EMBEDDING_LEN]);
    }

    #[test]
    fn blank_image_has_no_evidence() {
        let m = ShapeColourModel::new();
        assert!(m.score_hwc(&vec![0.5; INPUT * INPUT * 3]).iter().all(|&s| s == 0.0));
    }
}
