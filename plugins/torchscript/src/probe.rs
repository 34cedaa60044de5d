//! The checks a module passes at load: synthetic images of the card's size to run it on, and
//! whether a batch gives each image what it gives alone.

use shiftbench_plugin::{Layout, PreprocessSpec};

/// Why a batch's rows (`batched`, row-major) differ from what each image gave alone (`singles`),
/// beyond 1e-4 + 1e-3 of the largest value; None when they agree. `what`: what differed (`scored
/// differently`).
pub(crate) fn batch_mismatch(singles: &[&[f32]], batched: &[f32], what: &str) -> Option<String> {
    let n = singles.first().map_or(0, |s| s.len());
    for (row, single) in singles.iter().enumerate() {
        let diff = max_abs_diff(single, &batched[row * n..(row + 1) * n]);
        let scale = single.iter().fold(0f32, |m, v| m.max(v.abs()));
        if diff > 1e-4 + 1e-3 * scale {
            return Some(format!(
                "in a batch of {}, image {row} {what} than alone (max difference {diff:e})",
                singles.len()
            ));
        }
    }
    None
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    // A NaN counts as an infinite difference.
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).map(|d| if d.is_nan() { f32::INFINITY } else { d }).fold(0f32, f32::max)
}

/// `count` deterministic pseudo-random images, as the harness would send them: pixel values
/// 0-255 put through the card's scale, mean and std, in its layout.
pub fn synthetic_images(spec: &PreprocessSpec, count: usize, seed: u64) -> Vec<f32> {
    let hw = spec.crop as usize * spec.crop as usize;
    let per_image = 3 * hw;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..count * per_image)
        .map(|i| {
            // splitmix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let pixel = (z >> 56) as f32;
            let within = i % per_image;
            let channel = match spec.layout {
                Layout::Nchw => within / hw,
                Layout::Nhwc => within % 3,
            };
            (pixel * spec.scale - spec.mean[channel]) / spec.std[channel]
        })
        .collect()
}
