//! Decode (format sniffed from content) and preprocess (as the model card says), matching the
//! PIL + torchvision pipeline that published ImageNet numbers come from:
//!
//! - the format is sniffed from the bytes, not the extension (ImageNet has PNGs and CMYK JPEGs
//!   named `.JPEG`); grayscale, CMYK, 16-bit and alpha images become RGB8 (alpha dropped, as
//!   PIL's `convert("RGB")` does); EXIF orientation is ignored, as PIL and torchvision ignore it;
//! - declared sizes are checked before pixels are allocated (decompression bombs are refused);
//! - the shorter side is resized to `resize` (the longer side truncated, as torchvision computes
//!   it) with Pillow's antialiased convolution, bit for bit ([`pillow_resize`]; Pillow 13's order
//!   of passes; only the center crop's pixels are computed); `tests/pixels.rs` checks this
//!   against PIL byte for byte on real photos;
//! - the center crop's offsets are rounded half to even (Python's `round`);
//! - `(pixel * scale - mean) / std` per channel in f32, in the model's channel order and layout.

use std::io::Cursor;

use image::{ImageReader, RgbImage};
use shiftbench_plugin::{ChannelOrder, Interpolation, Layout, PreprocessSpec};

pub use crate::jpeg::Rect;

/// Largest width or height accepted.
pub const MAX_SIDE: u32 = 30_000;
/// Largest pixel count accepted (about 16k x 16k).
pub const MAX_PIXELS: u64 = 268_435_456;
/// Largest image file read (bigger files are refused before they are read).
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// Largest resized intermediate image (pixels) before the center crop.
pub const MAX_RESIZED_PIXELS: u64 = 64 * 1024 * 1024;

/// Decodes an image file's bytes to RGB8, or says in one sentence why not.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, String> {
    let d = decode_part(bytes, &|_, _| None)?;
    debug_assert_eq!((d.rect.w, d.rect.h), (d.full_w, d.full_h));
    Ok(d.px)
}

/// A decoded image, or a rectangle of it: what [`decode_part`] returns.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The pixels of `rect`.
    pub px: RgbImage,
    /// Where `px` lies in the image.
    pub rect: Rect,
    pub full_w: u32,
    pub full_h: u32,
}

impl Decoded {
    pub fn whole(img: RgbImage) -> Decoded {
        let (full_w, full_h) = img.dimensions();
        Decoded { px: img, rect: Rect { x: 0, y: 0, w: full_w, h: full_h }, full_w, full_h }
    }

    fn src(&self) -> Src<'_> {
        Src { px: self.px.as_raw(), rect: self.rect, w: self.full_w as usize, h: self.full_h as usize }
    }
}

/// Decodes an image file's bytes to RGB8 (or says in one sentence why not), or only part of it:
/// `need`, given the image's size, may name the rectangle the caller will read (see
/// [`source_rect`]); a JPEG is then decoded only over a rectangle that holds it (see
/// [`crate::jpeg`]), with every pixel in it as in the whole decode. Other formats are decoded
/// whole.
pub fn decode_part(bytes: &[u8], need: &dyn Fn(u32, u32) -> Option<Rect>) -> Result<Decoded, String> {
    if bytes.is_empty() {
        return Err("empty file (0 bytes)".into());
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read image: {e}"))?;
    let Some(format) = reader.format() else {
        return Err("not an image: the content matches no known image format".into());
    };
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| format!("corrupt {format:?} header: {e}"))?;
    if w == 0 || h == 0 {
        return Err(format!("{format:?} image has zero size ({w}x{h})"));
    }
    if w > MAX_SIDE || h > MAX_SIDE || (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(format!(
            "{format:?} image declares {w}x{h} pixels, over the {MAX_SIDE}-pixel side / {MAX_PIXELS}-pixel limit \
             (refused as a possible decompression bomb)"
        ));
    }
    if format == image::ImageFormat::Jpeg {
        if !jpeg_is_complete(bytes) {
            // zune-jpeg pads a truncated scan with grey; PIL refuses it. Refuse it too rather
            // than score half an image.
            return Err("truncated JPEG: the image data ends before its end-of-image marker".into());
        }
        // YCbCr and grayscale JPEGs through libjpeg-turbo, as PIL decodes them; CMYK and YCCK
        // ones (`None`) through the image crate below.
        if let Some(d) = crate::jpeg::decode_rgb(bytes, need)? {
            if (d.full_w, d.full_h) != (w, h) {
                return Err(format!("cannot decode Jpeg: libjpeg sees {}x{} pixels, the header says {w}x{h}", d.full_w, d.full_h));
            }
            return Ok(d);
        }
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| format!("cannot decode {format:?}: {e}"))?;
    Ok(Decoded::whole(img.into_rgb8()))
}

/// Whether a JPEG's last scan (start-of-scan marker FFDA) is followed by an end-of-image marker
/// (FFD9). Inside entropy-coded data a 0xFF byte is always stuffed (FF00), so these byte pairs
/// are real markers; an EXIF thumbnail's own markers come before the main image's last scan.
///
/// Checked from the ends rather than by walking the scan data: it holds exactly when, for the
/// last FFD9 in the file, an FFDA comes before it and none after it. In a whole file the last
/// FFD9 is at (or near) the end and the first FFDA among the first few kilobytes, so this reads
/// a few bytes, not the image.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    const SOS: [u8; 2] = [0xFF, 0xDA];
    const EOI: [u8; 2] = [0xFF, 0xD9];
    let Some(eoi) = bytes.windows(2).rposition(|w| w == EOI) else { return false };
    let sos_before = bytes[..eoi + 1].windows(2).any(|w| w == SOS);
    let sos_after = bytes[eoi..].windows(2).any(|w| w == SOS);
    sos_before && !sos_after
}

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
    if d % 2 == 0 || half % 2 == 0 {
        half
    } else {
        half + 1
    }
}

/// Fixed-point precision of Pillow's 8-bit resampling coefficients (`32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

fn bicubic_filter(x: f64) -> f64 {
    // Keys' cubic with a = -0.5, as Pillow's BICUBIC.
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Pillow's resampling coefficients for one axis, `in_size -> out_size`: for each output
/// position, the first input index and the fixed-point weights (computed in f64, normalised,
/// then rounded half away from zero to `PRECISION_BITS`), exactly as Pillow's `Resample.c`.
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

fn coefficients(in_size: usize, out_size: usize, filter: fn(f64) -> f64, support: f64) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = support * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let (xmin, xmax) = coeff_bound(xx, in_size, scale, support);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(xmax) {
            let w = filter((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(xmax) {
            let w = if ww != 0.0 { kx / ww } else { *kx };
            let f = w * (1u32 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if w < 0.0 { (f - 0.5) as i32 } else { (f + 0.5) as i32 };
        }
        bounds.push((xmin, xmax));
    }
    Coeffs { ksize, bounds, weights }
}

/// The input indices output position `xx` reads, `(first, count)`, as Pillow computes them
/// (`support` already scaled by the filter scale).
#[inline]
fn coeff_bound(xx: usize, in_size: usize, scale: f64, support: f64) -> (usize, usize) {
    let center = (xx as f64 + 0.5) * scale;
    // Truncation toward zero, as C's (int) cast.
    let xmin = ((center - support + 0.5) as i64).max(0) as usize;
    let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
    (xmin, xmax)
}

/// Pillow's `clip8`: the 8-bit value of a fixed-point sum, clamped to 0..=255 (written as a
/// shift and a clamp so that it vectorises; for v <= 0 the shift is at most 0).
#[inline(always)]
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// A rectangle of a resized image: the only pixels [`pillow_resize_window`] computes.
pub type Window = Rect;

/// A rectangle `rect` of a `w x h` RGB8 image, whose rows (`rect.w` pixels each) are in `px`.
#[derive(Clone, Copy)]
struct Src<'a> {
    px: &'a [u8],
    rect: Rect,
    w: usize,
    h: usize,
}

impl<'a> Src<'a> {
    fn whole(img: &'a RgbImage) -> Src<'a> {
        let (w, h) = img.dimensions();
        Src { px: img.as_raw(), rect: Rect { x: 0, y: 0, w, h }, w: w as usize, h: h as usize }
    }

    /// Pixels per row of `px`.
    fn stride(&self) -> usize {
        self.rect.w as usize
    }

    /// Byte offset in `px` of the image's pixel (x, y).
    #[inline(always)]
    fn at(&self, x: usize, y: usize) -> usize {
        ((y - self.rect.y as usize) * self.stride() + x - self.rect.x as usize) * 3
    }

    /// Panics unless `px` holds columns `cols` and rows `rows`.
    fn assert_holds(&self, cols: &std::ops::Range<usize>, rows: &std::ops::Range<usize>) {
        let r = self.rect;
        assert!(
            cols.start >= r.x as usize && cols.end <= (r.x + r.w) as usize && rows.start >= r.y as usize && rows.end <= (r.y + r.h) as usize,
            "resize reads columns {cols:?} and rows {rows:?}, outside the decoded {r:?}"
        );
        assert_eq!(self.px.len(), self.stride() * r.h as usize * 3, "pixel buffer size");
    }
}

/// Source positions of Pillow's NEAREST for outputs `skip..skip + take` of an `n_in -> n_out`
/// resize: Pillow samples pixel centres through an affine transform (`ImagingScaleAffine`),
/// starting at 0.5 * in / out and stepping by in / out by repeated addition in f64; the
/// rounding of those sums matters. Non-decreasing.
fn nearest_steps(n_in: usize, n_out: usize, skip: usize, take: usize) -> Vec<usize> {
    let step = n_in as f64 / n_out as f64;
    let mut pos = 0.5 * step;
    (0..skip + take)
        .map(|_| {
            let i = (pos as usize).min(n_in - 1);
            pos += step;
            i
        })
        .skip(skip)
        .collect()
}

/// The filter and its support for the convolution filters.
fn filter_of(interpolation: Interpolation) -> (fn(f64) -> f64, f64) {
    match interpolation {
        Interpolation::Bicubic => (bicubic_filter, 2.0),
        _ => (bilinear_filter, 1.0),
    }
}

/// The input indices that outputs `out0..out0 + n` of an `in_size -> out_size` resize along one
/// axis read (the identity when the size is unchanged: Pillow skips that pass).
fn source_span(in_size: usize, out_size: usize, interpolation: Interpolation, out0: usize, n: usize) -> std::ops::Range<usize> {
    if in_size == out_size {
        return out0..out0 + n;
    }
    if interpolation == Interpolation::Nearest {
        let xs = nearest_steps(in_size, out_size, out0, n);
        return xs[0]..xs[n - 1] + 1;
    }
    let scale = in_size as f64 / out_size as f64;
    let support = filter_of(interpolation).1 * scale.max(1.0);
    let first = coeff_bound(out0, in_size, scale, support);
    let last = coeff_bound(out0 + n - 1, in_size, scale, support);
    first.0..last.0 + last.1
}

/// Resizes RGB8 the way Pillow's `Image.resize` does for NEAREST, BILINEAR and BICUBIC (with
/// antialiasing: the filter support grows with the downscaling factor), bit for bit.
/// `fast_image_resize` follows Pillow-SIMD's 16-bit coefficients instead, which differ from
/// Pillow by one level on ~8% of pixels: enough to flip the top-1 of quantized models against
/// reference numbers computed with Pillow.
pub fn pillow_resize(img: &RgbImage, nw: u32, nh: u32, interpolation: Interpolation) -> RgbImage {
    pillow_resize_window(img, nw, nh, Window { x: 0, y: 0, w: nw, h: nh }, interpolation)
}

/// The `win` part of [`pillow_resize`]`(img, nw, nh, interpolation)`, computing only its pixels
/// (a center crop needs about 60% of a resized ImageNet photo). Every output pixel of Pillow's
/// resampler depends only on its own coefficients, so the window is bit-identical to cropping
/// the full resize.
///
/// Pillow's two separable fixed-point passes, horizontal first over only the rows the vertical
/// pass reads, each rounded and clipped to 8 bits. The loops are shaped for the compiler's
/// vectoriser (a pixel is four i32 lanes in the horizontal pass, a row of i32 accumulators in
/// the vertical one) and compiled twice, for AVX2 and for the baseline CPU, picked at run time.
///
/// # Panics
/// If `win` is not inside `nw x nh`, or an output side is 0.
pub fn pillow_resize_window(img: &RgbImage, nw: u32, nh: u32, win: Window, interpolation: Interpolation) -> RgbImage {
    resize_window(Src::whole(img), nw, nh, win, interpolation)
}

fn resize_window(src: Src, nw: u32, nh: u32, win: Window, interpolation: Interpolation) -> RgbImage {
    assert!(nw > 0 && nh > 0 && win.w > 0 && win.h > 0, "resize to an empty image");
    assert!(win.x + win.w <= nw && win.y + win.h <= nh, "window outside the resized image");
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { resize_window_avx2(src, nw, nh, win, interpolation) };
        }
    }
    resize_window_impl(src, nw, nh, win, interpolation, false)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn resize_window_avx2(src: Src, nw: u32, nh: u32, win: Window, interpolation: Interpolation) -> RgbImage {
    resize_window_impl(src, nw, nh, win, interpolation, true)
}

/// The baseline (non-AVX2) build of [`pillow_resize_window`], for tests on AVX2 machines.
#[cfg(test)]
fn pillow_resize_window_baseline(img: &RgbImage, nw: u32, nh: u32, win: Window, interpolation: Interpolation) -> RgbImage {
    resize_window_impl(Src::whole(img), nw, nh, win, interpolation, false)
}

/// `avx2`: the CPU has AVX2 (the horizontal pass then uses its intrinsics).
#[inline(always)]
fn resize_window_impl(src: Src, nw: u32, nh: u32, win: Window, interpolation: Interpolation, avx2: bool) -> RgbImage {
    let horizontal_pass = |src: &[u8], width, col0, row0, rows, c: &Coeffs, x0, cw| {
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: `avx2` is only set when the CPU has AVX2.
            return unsafe { horizontal_pass_avx2(src, width, col0, row0, rows, c, x0, cw) };
        }
        let _ = avx2;
        horizontal_pass(src, width, col0, row0, rows, c, x0, cw)
    };
    let (w, h) = (src.w, src.h);
    let (nw_, nh_) = (nw as usize, nh as usize);
    let (x0, y0, cw, ch) = (win.x as usize, win.y as usize, win.w as usize, win.h as usize);
    // Source columns and rows the window reads.
    let cols = source_span(w, nw_, interpolation, x0, cw);
    let rows = source_span(h, nh_, interpolation, y0, ch);
    src.assert_holds(&cols, &rows);
    let stride = src.stride();
    if interpolation == Interpolation::Nearest {
        let xs = nearest_steps(w, nw_, x0, cw);
        let ys = nearest_steps(h, nh_, y0, ch);
        let mut out = vec![0u8; cw * ch * 3];
        for (orow, &yy) in out.chunks_exact_mut(cw * 3).zip(&ys) {
            for (o, &xx) in orow.chunks_exact_mut(3).zip(&xs) {
                o.copy_from_slice(&src.px[src.at(xx, yy)..][..3]);
            }
        }
        return RgbImage::from_raw(win.w, win.h, out).expect("size");
    }
    let (filter, support) = filter_of(interpolation);
    let ch_ = (nw_ != w).then(|| coefficients(w, nw_, filter, support));
    let cv = (nh_ != h).then(|| coefficients(h, nh_, filter, support));
    let (sx, sy) = (src.rect.x as usize, src.rect.y as usize);
    // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as
    // many pixels as the width (`ImagingResampleInner`); the intermediate 8-bit rounding makes
    // the order visible in the result.
    let vertical_first = h > nh_ && (h - nh_) as i64 > (w as i64 - nw_ as i64) * 2;
    let out = match (&ch_, &cv) {
        (None, None) => {
            let mut out = vec![0u8; cw * ch * 3];
            for (o, y) in out.chunks_exact_mut(cw * 3).zip(y0..y0 + ch) {
                o.copy_from_slice(&src.px[src.at(x0, y)..][..cw * 3]);
            }
            out
        }
        (Some(c), None) => horizontal_pass(src.px, stride, sx, sy, rows, c, x0, cw),
        (None, Some(v)) => vertical_pass(src.px, stride, sx, sy, cols, v, y0, ch),
        (Some(c), Some(v)) if vertical_first => {
            // Rows y0..y0+ch of the vertical pass over the columns the window reads, then the
            // horizontal pass over them (its source columns start at `cols.start`).
            let first_col = cols.start;
            let tmp = vertical_pass(src.px, stride, sx, sy, cols.clone(), v, y0, ch);
            horizontal_pass(&tmp, cols.len(), first_col, 0, 0..ch, c, x0, cw)
        }
        (Some(c), Some(v)) => {
            let first_row = rows.start;
            let tmp = horizontal_pass(src.px, stride, sx, sy, rows, c, x0, cw);
            vertical_pass(&tmp, cw, 0, first_row, 0..cw, v, y0, ch)
        }
    };
    RgbImage::from_raw(win.w, win.h, out).expect("size")
}

/// Pillow's horizontal pass for output columns `x0..x0 + cw` only, over rows `rows` of `src`
/// (`width` RGB pixels per row; its first column is source column `col0`, its first row
/// source row `row0`). Returns `rows.len()` rows of `cw` pixels. Each source pixel is widened
/// once to four i32 lanes, so every tap is one vector multiply-add.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn horizontal_pass(src: &[u8], width: usize, col0: usize, row0: usize, rows: std::ops::Range<usize>, c: &Coeffs, x0: usize, cw: usize) -> Vec<u8> {
    let half = 1i32 << (PRECISION_BITS - 1);
    let mut out = vec![0u8; rows.len() * cw * 3];
    // Source columns the window reads.
    let first = c.bounds[x0].0;
    let last = c.bounds[x0 + cw - 1];
    let n_cols = last.0 + last.1 - first;
    let mut px = vec![[0i32; 4]; n_cols];
    for (orow, y) in out.chunks_exact_mut(cw * 3).zip(rows) {
        let row = &src[((y - row0) * width + first - col0) * 3..][..n_cols * 3];
        for (p, s) in px.iter_mut().zip(row.chunks_exact(3)) {
            *p = [s[0] as i32, s[1] as i32, s[2] as i32, 0];
        }
        for (o, xx) in orow.chunks_exact_mut(3).zip(x0..x0 + cw) {
            let (xmin, n) = c.bounds[xx];
            let k = &c.weights[xx * c.ksize..][..n];
            let mut acc = [half; 4];
            for (p, &kx) in px[xmin - first..][..n].iter().zip(k) {
                for l in 0..4 {
                    acc[l] += p[l] * kx;
                }
            }
            o[0] = clip8(acc[0]);
            o[1] = clip8(acc[1]);
            o[2] = clip8(acc[2]);
        }
    }
    out
}

/// [`horizontal_pass`] with AVX2 intrinsics, two output pixels at a time: each pixel is four
/// i32 lanes (R, G, B, unused) of one half of a 256-bit register, every tap one 32-bit multiply
/// and add (Pillow's coefficients have 22 fractional bits, too many for 16-bit multiplies), and
/// the shift and clamp to 0..=255 are Pillow's `clip8` done by saturating packs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn horizontal_pass_avx2(src: &[u8], width: usize, col0: usize, row0: usize, rows: std::ops::Range<usize>, c: &Coeffs, x0: usize, cw: usize) -> Vec<u8> {
    use std::arch::x86_64::*;
    let first = c.bounds[x0].0;
    let last = c.bounds[x0 + cw - 1];
    let n_cols = last.0 + last.1 - first;
    // Widened source pixels, then `ksize` zero pixels: the two pixels of a pair run the longer
    // of their tap counts, the shorter one over zero weights.
    let mut px = vec![[0i32; 4]; n_cols + c.ksize];
    let mut out = vec![0u8; rows.len() * cw * 3];
    let half = _mm256_set1_epi32(1 << (PRECISION_BITS - 1));
    let spread = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
    let k = c.ksize;
    for (orow, y) in out.chunks_exact_mut(cw * 3).zip(rows) {
        let row = &src[((y - row0) * width + first - col0) * 3..][..n_cols * 3];
        // Four pixels per step: 12 bytes spread to 16 (a zero after each pixel), widened to i32.
        let mut i = 0;
        while i + 6 <= n_cols {
            let v = _mm_shuffle_epi8(_mm_loadu_si128(row.as_ptr().add(3 * i) as *const __m128i), spread);
            let dst = px.as_mut_ptr().add(i) as *mut __m256i;
            _mm256_storeu_si256(dst, _mm256_cvtepu8_epi32(v));
            _mm256_storeu_si256(dst.add(1), _mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
            i += 4;
        }
        for (p, s) in px[i..n_cols].iter_mut().zip(row[3 * i..].chunks_exact(3)) {
            *p = [s[0] as i32, s[1] as i32, s[2] as i32, 0];
        }
        let pp = px.as_ptr() as *const __m128i;
        let mut xx = x0;
        let mut o = 0;
        while xx + 2 <= x0 + cw {
            let ((m0, n0), (m1, n1)) = (c.bounds[xx], c.bounds[xx + 1]);
            let (k0, k1) = (c.weights.as_ptr().add(xx * k), c.weights.as_ptr().add((xx + 1) * k));
            let (p0, p1) = (pp.add(m0 - first), pp.add(m1 - first));
            let mut acc = half;
            for t in 0..n0.max(n1) {
                let p = _mm256_loadu2_m128i(p1.add(t), p0.add(t));
                let w = _mm256_set_m128i(_mm_set1_epi32(*k1.add(t)), _mm_set1_epi32(*k0.add(t)));
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(p, w));
            }
            let v = _mm256_srai_epi32(acc, PRECISION_BITS as i32);
            let v16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
            let b = _mm_cvtsi128_si64(_mm_packus_epi16(v16, v16)) as u64;
            let six = (b & 0xFF_FFFF) | ((b >> 32) & 0xFF_FFFF) << 24;
            orow[o..o + 6].copy_from_slice(&six.to_le_bytes()[..6]);
            o += 6;
            xx += 2;
        }
        if xx < x0 + cw {
            let (m0, n0) = c.bounds[xx];
            let k0 = c.weights.as_ptr().add(xx * k);
            let mut acc = _mm256_castsi256_si128(half);
            for t in 0..n0 {
                acc = _mm_add_epi32(acc, _mm_mullo_epi32(_mm_loadu_si128(pp.add(m0 - first + t)), _mm_set1_epi32(*k0.add(t))));
            }
            let v16 = _mm_packs_epi32(_mm_srai_epi32(acc, PRECISION_BITS as i32), _mm_setzero_si128());
            let b = (_mm_cvtsi128_si32(_mm_packus_epi16(v16, v16)) as u32).to_le_bytes();
            orow[o..o + 3].copy_from_slice(&b[..3]);
        }
    }
    out
}

/// Pillow's vertical pass for output rows `y0..y0 + ch` only, over columns `cols` of `src`
/// (`width` RGB pixels per row; its first column is source column `col0`, its first row
/// source row `row0`). Returns `ch` rows of `cols.len()` pixels, computed a whole row at a time
/// into i32 accumulators.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn vertical_pass(src: &[u8], width: usize, col0: usize, row0: usize, cols: std::ops::Range<usize>, c: &Coeffs, y0: usize, ch: usize) -> Vec<u8> {
    let half = 1i32 << (PRECISION_BITS - 1);
    let stride = cols.len() * 3;
    let mut out = vec![0u8; ch * stride];
    let mut acc = vec![0i32; stride];
    for (orow, yy) in out.chunks_exact_mut(stride).zip(y0..y0 + ch) {
        let (ymin, n) = c.bounds[yy];
        let k = &c.weights[yy * c.ksize..][..n];
        acc.fill(half);
        for (t, &ky) in k.iter().enumerate() {
            let row = &src[((ymin - row0 + t) * width + cols.start - col0) * 3..][..stride];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += p as i32 * ky;
            }
        }
        for (o, &a) in orow.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}

/// Per-channel lookup tables from a 0-255 value to the normalised f32, computed in the same f32
/// operations as torchvision's `ToTensor` (`x / 255`) followed by `Normalize` (`(x - m) / s`).
#[derive(Debug, Clone)]
pub struct Normaliser {
    lut: [[f32; 256]; 3],
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
    resize_crop_src(d.src(), spec)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchvision_resize_sizes() {
        assert_eq!(resized_size(500, 375, 256), (341, 256));
        assert_eq!(resized_size(375, 500, 256), (256, 341));
        assert_eq!(resized_size(256, 256, 256), (256, 256));
        assert_eq!(resized_size(1, 1, 256), (256, 256));
        // 256 * 333 / 300 = 284.16 -> 284
        assert_eq!(resized_size(300, 333, 256), (256, 284));
    }

    #[test]
    fn crop_offsets_round_half_to_even() {
        assert_eq!(crop_offset(341, 224), 58); // 58.5 -> 58
        assert_eq!(crop_offset(343, 224), 60); // 59.5 -> 60
        assert_eq!(crop_offset(256, 224), 16);
        assert_eq!(crop_offset(224, 224), 0);
        assert_eq!(crop_offset(225, 224), 0); // 0.5 -> 0
        assert_eq!(crop_offset(227, 224), 2); // 1.5 -> 2
    }

    #[test]
    fn normalisation_matches_torchvision_arithmetic() {
        let spec = PreprocessSpec::IMAGENET;
        let n = Normaliser::new(&spec);
        assert_eq!(n.lut[0][255], (255f32 / 255.0 - 0.485) / 0.229);
        assert_eq!(n.lut[2][0], (0.0 - 0.406f32) / 0.225);
        let caffe = PreprocessSpec { scale: 1.0, mean: [104.0, 117.0, 123.0], std: [1.0; 3], ..spec };
        assert_eq!(Normaliser::new(&caffe).lut[1][200], 83.0);
    }

    #[test]
    fn channel_order_and_layout() {
        let img = RgbImage::from_fn(2, 2, |x, y| image::Rgb([10 * (x + 2 * y) as u8, 100, 200]));
        let spec = PreprocessSpec {
            resize: 2,
            crop: 2,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
            channel_order: ChannelOrder::Bgr,
            ..PreprocessSpec::IMAGENET
        };
        let norm = Normaliser::new(&spec);
        let mut out = vec![0f32; 12];
        to_tensor(&img, &spec, &norm, &mut out);
        assert_eq!(out, vec![200., 200., 200., 200., 100., 100., 100., 100., 0., 10., 20., 30.]);
        let spec = PreprocessSpec { layout: Layout::Nhwc, channel_order: ChannelOrder::Rgb, ..spec };
        to_tensor(&img, &spec, &norm, &mut out);
        assert_eq!(&out[..6], &[0., 100., 200., 10., 100., 200.]);
    }

    fn encode(img: image::DynamicImage, fmt: image::ImageFormat) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, fmt).unwrap();
        buf.into_inner()
    }

    #[test]
    fn odd_inputs_become_rgb_or_clear_errors() {
        // A PNG whatever its name, grayscale, 16-bit and alpha all decode to RGB8.
        let gray = image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(3, 2, image::Luma([77])));
        let rgb = decode(&encode(gray, image::ImageFormat::Png)).unwrap();
        assert_eq!(rgb.get_pixel(0, 0).0, [77, 77, 77]);
        let deep = image::DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(2, 2, image::Rgb([65535u16, 0, 32896])));
        assert_eq!(decode(&encode(deep, image::ImageFormat::Png)).unwrap().get_pixel(1, 1).0, [255, 0, 128]);
        let rgba = image::DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(2, 2, image::Rgba([9, 8, 7, 0])));
        assert_eq!(decode(&encode(rgba, image::ImageFormat::Png)).unwrap().get_pixel(0, 0).0, [9, 8, 7]);
        // Empty, garbage and truncated files are errors, not panics.
        assert_eq!(decode(b"").unwrap_err(), "empty file (0 bytes)");
        assert!(decode(b"hello world, not an image").unwrap_err().starts_with("not an image"));
        let img = image::DynamicImage::ImageRgb8(RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 3, y as u8 * 3, 9])));
        let jpeg = encode(img, image::ImageFormat::Jpeg);
        assert!(decode(&jpeg).is_ok());
        assert!(decode(&jpeg[..jpeg.len() - 10]).unwrap_err().starts_with("truncated JPEG"));
        assert!(decode(&jpeg[..jpeg.len() / 4]).is_err());
    }

    #[test]
    fn decompression_bomb_is_refused_before_allocation() {
        // A valid PNG header declaring 100000 x 100000 pixels, without the data.
        let mut png = Vec::new();
        png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&(ihdr.len() as u32).to_be_bytes());
        let mut chunk = b"IHDR".to_vec();
        chunk.extend_from_slice(&ihdr);
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
        // A little real (stored, uncompressed) zlib data, then the end.
        let raw = [0u8; 16];
        let mut z = vec![0x78, 0x01, 0x01, 16, 0, !16u8, 0xff];
        z.extend_from_slice(&raw);
        z.extend_from_slice(&(1u32 + (16u32 << 16)).to_be_bytes()); // adler32 of 16 zero bytes
        for (name, body) in [(&b"IDAT"[..], &z[..]), (&b"IEND"[..], &[][..])] {
            png.extend_from_slice(&(body.len() as u32).to_be_bytes());
            let mut chunk = name.to_vec();
            chunk.extend_from_slice(body);
            png.extend_from_slice(&chunk);
            png.extend_from_slice(&crc32(&chunk).to_be_bytes());
        }
        let e = decode(&png).unwrap_err();
        assert!(e.contains("100000x100000") && e.contains("decompression bomb"), "{e}");
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

    /// The scan-from-the-ends check says the same as its definition (the last FFDA has an FFD9
    /// after it) on marker soup, truncations and thumbnails.
    #[test]
    fn jpeg_completeness_matches_its_definition() {
        fn by_definition(b: &[u8]) -> bool {
            let Some(sos) = b.windows(2).rposition(|w| w == [0xFF, 0xDA]) else { return false };
            b[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
        }
        let alphabet = [0xFFu8, 0xDA, 0xD9, 0x00, 0x12];
        let mut x = 7u64;
        for len in 0..14usize {
            for _ in 0..400 {
                let b: Vec<u8> = (0..len)
                    .map(|_| {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        alphabet[(x >> 61) as usize % alphabet.len()]
                    })
                    .collect();
                assert_eq!(jpeg_is_complete(&b), by_definition(&b), "{b:02X?}");
            }
        }
        // A thumbnail's complete JPEG inside the header does not complete a truncated main image.
        let thumb = [0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 0xFF, 0xD9];
        let mut main = vec![0xFF, 0xD8, 0xFF, 0xE1];
        main.extend_from_slice(&thumb);
        main.extend_from_slice(&[0xFF, 0xDA, 9, 9, 9]);
        assert!(!jpeg_is_complete(&main));
        main.extend_from_slice(&[0xFF, 0xD9, 0, 0]);
        assert!(jpeg_is_complete(&main));
    }

    #[test]
    fn tiny_and_extreme_images() {
        let spec = PreprocessSpec::IMAGENET;
        let one = RgbImage::from_pixel(1, 1, image::Rgb([1, 2, 3]));
        let c = resize_crop(&one, &spec).unwrap();
        assert_eq!(c.dimensions(), (224, 224));
        assert_eq!(c.get_pixel(100, 100).0, [1, 2, 3]);
        let sliver = RgbImage::new(1, 20_000);
        assert!(resize_crop(&sliver, &spec).unwrap_err().contains("extreme aspect ratio"));
    }

    /// Pillow's `clip8` as written in `Resample.c`.
    fn old_clip8(v: i32) -> u8 {
        if v >= 1 << (PRECISION_BITS + 8) {
            255
        } else if v <= 0 {
            0
        } else {
            (v >> PRECISION_BITS) as u8
        }
    }

    /// A straightforward scalar port of Pillow 13's resize (whole image, one pass at a time,
    /// three channels at a time), as a reference for the windowed, vectorised one.
    fn reference_resize(img: &RgbImage, nw: u32, nh: u32, interpolation: Interpolation) -> RgbImage {
        let (w, h) = img.dimensions();
        if interpolation == Interpolation::Nearest {
            let positions = |n_in: u32, n_out: u32| {
                let step = n_in as f64 / n_out as f64;
                let mut pos = 0.5 * step;
                (0..n_out)
                    .map(|_| {
                        let i = (pos as u32).min(n_in - 1);
                        pos += step;
                        i
                    })
                    .collect::<Vec<u32>>()
            };
            let (xs, ys) = (positions(w, nw), positions(h, nh));
            return RgbImage::from_fn(nw, nh, |x, y| *img.get_pixel(xs[x as usize], ys[y as usize]));
        }
        let (filter, support): (fn(f64) -> f64, f64) = match interpolation {
            Interpolation::Bicubic => (bicubic_filter, 2.0),
            _ => (bilinear_filter, 1.0),
        };
        let half = 1i32 << (PRECISION_BITS - 1);
        // One pass along x (transpose = false) or y, over the whole image.
        let pass = |im: &RgbImage, n: u32, along_y: bool| -> RgbImage {
            let (iw, ih) = im.dimensions();
            let n_in = if along_y { ih } else { iw };
            let c = coefficients(n_in as usize, n as usize, filter, support);
            let (ow, oh) = if along_y { (iw, n) } else { (n, ih) };
            RgbImage::from_fn(ow, oh, |x, y| {
                let o = if along_y { y } else { x } as usize;
                let (min, len) = c.bounds[o];
                let mut s = [half; 3];
                for t in 0..len {
                    let k = c.weights[o * c.ksize + t];
                    let p = if along_y { im.get_pixel(x, (min + t) as u32) } else { im.get_pixel((min + t) as u32, y) };
                    for ch in 0..3 {
                        s[ch] += p[ch] as i32 * k;
                    }
                }
                image::Rgb([old_clip8(s[0]), old_clip8(s[1]), old_clip8(s[2])])
            })
        };
        let vertical_first = h > nh && (h - nh) as i64 > (w as i64 - nw as i64) * 2;
        let mut im = img.clone();
        if vertical_first {
            im = pass(&im, nh, true);
            if nw != w {
                im = pass(&im, nw, false);
            }
        } else {
            if nw != w {
                im = pass(&im, nw, false);
            }
            if nh != h {
                im = pass(&im, nh, true);
            }
        }
        im
    }

    fn noise(w: u32, h: u32, seed: u64) -> RgbImage {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        RgbImage::from_fn(w, h, |_, _| {
            let mut px = [0u8; 3];
            for v in &mut px {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                // Mostly smooth with some extremes, so clipping at 0 and 255 is exercised.
                *v = match (x >> 60) as u8 {
                    0 => 0,
                    1 => 255,
                    _ => (x >> 33) as u8,
                };
            }
            image::Rgb(px)
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// The windowed, vectorised resampler equals the scalar full resize cropped, bit for bit,
        /// for any sizes (up- and downscaling, one axis unchanged), window and filter.
        #[test]
        fn window_equals_full_resize_cropped(
            w in 1u32..90, h in 1u32..90, nw in 1u32..90, nh in 1u32..90,
            fx in 0.0f64..1.0, fy in 0.0f64..1.0, fw in 0.0f64..1.0, fh in 0.0f64..1.0,
            interp in 0usize..3, seed in 0u64..1000, same_w in proptest::bool::weighted(0.15),
            same_h in proptest::bool::weighted(0.15),
        ) {
            let nw = if same_w { w } else { nw };
            let nh = if same_h { h } else { nh };
            let img = noise(w, h, seed);
            let interp = [Interpolation::Bilinear, Interpolation::Bicubic, Interpolation::Nearest][interp];
            let cw = 1 + ((nw - 1) as f64 * fw) as u32;
            let ch = 1 + ((nh - 1) as f64 * fh) as u32;
            let win = Window { x: ((nw - cw) as f64 * fx) as u32, y: ((nh - ch) as f64 * fy) as u32, w: cw, h: ch };
            let full = reference_resize(&img, nw, nh, interp);
            let want = image::imageops::crop_imm(&full, win.x, win.y, win.w, win.h).to_image();
            let got = pillow_resize_window(&img, nw, nh, win, interp);
            proptest::prop_assert_eq!(got.dimensions(), want.dimensions());
            proptest::prop_assert!(got == want, "{w}x{h} -> {nw}x{nh} window {win:?} {interp:?}");
            let baseline = pillow_resize_window_baseline(&img, nw, nh, win, interp);
            proptest::prop_assert!(baseline == want, "baseline build: {w}x{h} -> {nw}x{nh} window {win:?} {interp:?}");
        }
    }

    #[test]
    fn window_of_photo_sized_images_equals_full_resize() {
        for (w, h, seed) in [(500, 375, 1), (375, 500, 2), (500, 333, 3), (1024, 683, 4), (200, 150, 5)] {
            let img = noise(w, h, seed);
            for interp in [Interpolation::Bilinear, Interpolation::Bicubic, Interpolation::Nearest] {
                for (resize, crop) in [(256, 224), (232, 224), (224, 224), (480, 448)] {
                    let (nw, nh) = resized_size(w, h, resize);
                    let win = Window { x: crop_offset(nw, crop), y: crop_offset(nh, crop), w: crop, h: crop };
                    let full = reference_resize(&img, nw, nh, interp);
                    let want = image::imageops::crop_imm(&full, win.x, win.y, crop, crop).to_image();
                    assert!(pillow_resize_window(&img, nw, nh, win, interp) == want, "{w}x{h} {interp:?} {resize}/{crop}");
                    assert!(pillow_resize_window_baseline(&img, nw, nh, win, interp) == want, "baseline build: {w}x{h} {interp:?} {resize}/{crop}");
                    // From a decoded rectangle that holds just what the crop reads.
                    let spec = PreprocessSpec { resize, crop, interpolation: interp, ..PreprocessSpec::IMAGENET };
                    let r = source_rect(w, h, &spec).unwrap();
                    let part = Decoded { px: image::imageops::crop_imm(&img, r.x, r.y, r.w, r.h).to_image(), rect: r, full_w: w, full_h: h };
                    assert!(resize_crop_part(&part, &spec).unwrap() == want, "from {r:?}: {w}x{h} {interp:?} {resize}/{crop}");
                }
            }
        }
    }
}
