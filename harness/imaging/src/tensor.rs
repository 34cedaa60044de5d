//! The model's input: `(pixel * scale - mean) / std` per channel in f32, through lookup tables
//! computed as torchvision computes them, in the card's channel order and layout.

use image::RgbImage;
use shiftbench_plugin::{ChannelOrder, Layout, PreprocessSpec};

use crate::preprocess::preprocess;

/// Per-channel lookup tables from a 0-255 value to the normalised f32, computed in the same f32
/// operations as torchvision's `ToTensor` (`x / 255`) followed by `Normalize` (`(x - m) / s`).
#[derive(Debug, Clone)]
pub struct Normaliser {
    pub(crate) lut: [[f32; 256]; 3],
}

impl Normaliser {
    pub fn new(spec: &PreprocessSpec) -> Normaliser {
        let mut lut = [[0f32; 256]; 3];
        let unit = (spec.scale - 1.0 / 255.0).abs() < 1e-9;
        for (c, table) in lut.iter_mut().enumerate() {
            for (v, out) in table.iter_mut().enumerate() {
                let x = if unit { v as f32 / 255.0 } else { v as f32 * spec.scale };
                *out = (x - spec.mean[c]) / spec.std[c];
            }
        }
        Normaliser { lut }
    }
}

/// Writes the model input for one cropped image into `out` (`3 * crop * crop` values).
pub fn to_tensor(crop: &RgbImage, spec: &PreprocessSpec, norm: &Normaliser, out: &mut [f32]) {
    let n = (spec.crop * spec.crop) as usize;
    debug_assert_eq!(out.len(), 3 * n);
    // Source channel feeding model channel c.
    let src_c = match spec.channel_order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    let raw = crop.as_raw();
    match spec.layout {
        Layout::Nchw => {
            for c in 0..3 {
                let lut = &norm.lut[c];
                let s = src_c[c];
                for (i, o) in out[c * n..(c + 1) * n].iter_mut().enumerate() {
                    *o = lut[raw[i * 3 + s] as usize];
                }
            }
        }
        Layout::Nhwc => {
            for (i, px) in out.chunks_exact_mut(3).enumerate() {
                for c in 0..3 {
                    px[c] = norm.lut[c][raw[i * 3 + src_c[c]] as usize];
                }
            }
        }
    }
}

/// Decode + resize + crop + normalise one file's bytes into a fresh tensor.
pub fn load_tensor(bytes: &[u8], spec: &PreprocessSpec, norm: &Normaliser) -> Result<Vec<f32>, String> {
    let crop = preprocess(bytes, &[spec])?.remove(0)?;
    let mut out = vec![0f32; spec.image_len()];
    to_tensor(&crop, spec, norm, &mut out);
    Ok(out)
}
