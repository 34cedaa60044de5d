//! Preprocessing as torchvision's `Resize(resize)` + `CenterCrop(crop)` compute it on a PIL
//! image: the resized size, the crop's offsets (rounded half to even), the source rectangle a
//! crop reads (so a JPEG is decoded only there), and the crop itself.

use image::RgbImage;
use shiftbench_plugin::PreprocessSpec;

use crate::decode::decode_part;
use crate::pixels::{Decoded, Rect};
use crate::resample::{resize_window, source_span, Src, Window};

/// Largest resized intermediate image (pixels) before the center crop.
pub const MAX_RESIZED_PIXELS: u64 = 64 * 1024 * 1024;

/// Output size of torchvision's `Resize(size)` with an int size: the shorter side becomes
/// `size`, the longer `int(size * long / short)`.
pub fn resized_size(w: u32, h: u32, size: u32) -> (u32, u32) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = ((size as f64) * (long as f64) / (short as f64)) as u32;
    if w <= h {
        (size, new_long.max(1))
    } else {
        (new_long.max(1), size)
    }
}

/// `int(round((len - crop) / 2))` with Python's round-half-to-even.
pub fn crop_offset(len: u32, crop: u32) -> u32 {
    let d = len - crop;
    let half = d / 2;
    if d.is_multiple_of(2) || half.is_multiple_of(2) {
        half
    } else {
        half + 1
    }
}

/// The resized size and the center crop's window in it, for a `w x h` image, or why that
/// image cannot be preprocessed so.
fn crop_plan(w: u32, h: u32, spec: &PreprocessSpec) -> Result<(u32, u32, Window), String> {
    let (nw, nh) = resized_size(w, h, spec.resize);
    if (nw as u64) * (nh as u64) > MAX_RESIZED_PIXELS {
        return Err(format!("{w}x{h} image has an extreme aspect ratio: resizing it to {nw}x{nh} is refused"));
    }
    if nw < spec.crop || nh < spec.crop {
        return Err(format!("resized image {nw}x{nh} is smaller than the {0}x{0} crop", spec.crop));
    }
    let win = Window { x: crop_offset(nw, spec.crop), y: crop_offset(nh, spec.crop), w: spec.crop, h: spec.crop };
    Ok((nw, nh, win))
}

/// The rectangle of a `w x h` image that [`resize_crop`] reads with `spec`: the source pixels
/// under the center crop, widened by the resampling filter's reach. `None` when the image
/// cannot be preprocessed with `spec` (then [`resize_crop`] says why).
pub fn source_rect(w: u32, h: u32, spec: &PreprocessSpec) -> Option<Rect> {
    let (nw, nh, win) = crop_plan(w, h, spec).ok()?;
    let cols = source_span(w as usize, nw as usize, spec.interpolation, win.x as usize, win.w as usize);
    let rows = source_span(h as usize, nh as usize, spec.interpolation, win.y as usize, win.h as usize);
    Some(Rect { x: cols.start as u32, y: rows.start as u32, w: cols.len() as u32, h: rows.len() as u32 })
}

/// Resizes and center-crops to `crop x crop` RGB8, as torchvision's `Resize` + `CenterCrop` do.
pub fn resize_crop(img: &RgbImage, spec: &PreprocessSpec) -> Result<RgbImage, String> {
    resize_crop_src(Src::whole(img), spec)
}

/// [`resize_crop`] of a decoded image or of a decoded rectangle of one that holds
/// [`source_rect`] for `spec`.
///
/// # Panics
/// If `d` is a rectangle that does not hold what `spec` reads.
pub fn resize_crop_part(d: &Decoded, spec: &PreprocessSpec) -> Result<RgbImage, String> {
    resize_crop_src(Src::of(d), spec)
}

fn resize_crop_src(src: Src, spec: &PreprocessSpec) -> Result<RgbImage, String> {
    let (w, h) = (src.w as u32, src.h as u32);
    let (nw, nh, win) = crop_plan(w, h, spec)?;
    // Only the crop is computed: bit-identical to resizing the whole image and cropping it (an
    // unchanged size is a plain crop).
    Ok(resize_window(src, nw, nh, win, spec.interpolation))
}

/// Decodes one file's bytes (only the part `specs` read, for a JPEG) and resizes and
/// center-crops it for each spec: what the pipeline computes for one image.
pub fn preprocess(bytes: &[u8], specs: &[&PreprocessSpec]) -> Result<Vec<Result<RgbImage, String>>, String> {
    let d = decode_for(bytes, specs)?;
    Ok(specs.iter().map(|spec| resize_crop_part(&d, spec)).collect())
}

/// Decodes one file's bytes, only over the rectangle that all of `specs` read (the whole image
/// when one of them cannot preprocess it, so that its error is the one reported).
pub fn decode_for(bytes: &[u8], specs: &[&PreprocessSpec]) -> Result<Decoded, String> {
    decode_part(bytes, &|w, h| {
        let mut rects = specs.iter().map(|s| source_rect(w, h, s));
        let first = rects.next()??;
        rects.try_fold(first, |acc, r| Some(acc.union(r?)))
    })
}
