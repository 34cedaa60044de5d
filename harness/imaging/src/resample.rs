//! A port of Pillow's fixed-point antialiased resampler (13.0.0's `Resample.c`), bit for bit:
//! the coefficients, the order of passes, the rounding; only a window of the output (the center
//! crop) is computed, in AVX2 where the processor has it.

use image::RgbImage;
use shiftbench_plugin::Interpolation;

use crate::pixels::{Decoded, Rect};

/// Fixed-point precision of Pillow's 8-bit resampling coefficients (`32 - 8 - 2`).
pub(crate) const PRECISION_BITS: u32 = 22;

pub(crate) fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

pub(crate) fn bicubic_filter(x: f64) -> f64 {
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
pub(crate) struct Coeffs {
    pub(crate) ksize: usize,
    pub(crate) bounds: Vec<(usize, usize)>,
    pub(crate) weights: Vec<i32>,
}

pub(crate) fn coefficients(in_size: usize, out_size: usize, filter: fn(f64) -> f64, support: f64) -> Coeffs {
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
pub(crate) fn coeff_bound(xx: usize, in_size: usize, scale: f64, support: f64) -> (usize, usize) {
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
pub(crate) struct Src<'a> {
    pub(crate) px: &'a [u8],
    pub(crate) rect: Rect,
    pub(crate) w: usize,
    pub(crate) h: usize,
}

impl<'a> Src<'a> {
    /// A decoded image or rectangle.
    pub(crate) fn of(d: &'a Decoded) -> Src<'a> {
        Src { px: d.px.as_raw(), rect: d.rect, w: d.full_w as usize, h: d.full_h as usize }
    }

    pub(crate) fn whole(img: &'a RgbImage) -> Src<'a> {
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
            cols.start >= r.x as usize
                && cols.end <= (r.x + r.w) as usize
                && rows.start >= r.y as usize
                && rows.end <= (r.y + r.h) as usize,
            "resize reads columns {cols:?} and rows {rows:?}, outside the decoded {r:?}"
        );
        assert_eq!(self.px.len(), self.stride() * r.h as usize * 3, "pixel buffer size");
    }
}

/// Source positions of Pillow's NEAREST for outputs `skip..skip + take` of an `n_in -> n_out`
/// resize: Pillow samples pixel centres through an affine transform (`ImagingScaleAffine`),
/// starting at 0.5 * in / out and stepping by in / out by repeated addition in f64; the
/// rounding of those sums matters. Non-decreasing.
pub(crate) fn nearest_steps(n_in: usize, n_out: usize, skip: usize, take: usize) -> Vec<usize> {
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
pub(crate) fn filter_of(interpolation: Interpolation) -> (fn(f64) -> f64, f64) {
    match interpolation {
        Interpolation::Bicubic => (bicubic_filter, 2.0),
        _ => (bilinear_filter, 1.0),
    }
}

/// The input indices that outputs `out0..out0 + n` of an `in_size -> out_size` resize along one
/// axis read (the identity when the size is unchanged: Pillow skips that pass).
pub(crate) fn source_span(
    in_size: usize,
    out_size: usize,
    interpolation: Interpolation,
    out0: usize,
    n: usize,
) -> std::ops::Range<usize> {
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

pub(crate) fn resize_window(src: Src, nw: u32, nh: u32, win: Window, interpolation: Interpolation) -> RgbImage {
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

/// [`resize_window_impl`] compiled with AVX2 enabled (its horizontal pass then uses AVX2).
///
/// # Safety
/// The CPU must support AVX2 (`is_x86_feature_detected!("avx2")`); everything else is safe code.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn resize_window_avx2(src: Src, nw: u32, nh: u32, win: Window, interpolation: Interpolation) -> RgbImage {
    resize_window_impl(src, nw, nh, win, interpolation, true)
}

/// The baseline (non-AVX2) build of [`pillow_resize_window`], for tests on AVX2 machines.
#[cfg(test)]
pub(crate) fn pillow_resize_window_baseline(
    img: &RgbImage,
    nw: u32,
    nh: u32,
    win: Window,
    interpolation: Interpolation,
) -> RgbImage {
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
fn horizontal_pass(
    src: &[u8],
    width: usize,
    col0: usize,
    row0: usize,
    rows: std::ops::Range<usize>,
    c: &Coeffs,
    x0: usize,
    cw: usize,
) -> Vec<u8> {
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
///
/// # Safety
/// The CPU must support AVX2, and the arguments must be what [`horizontal_pass`] accepts: `c`
/// the coefficients of this source span (every output column's taps within the columns of `src`
/// from `col0`, `c.weights` holding `c.ksize` weights per column) and `rows` within `src`. The
/// loads through raw pointers rely on it (unaligned loads of 16 bytes stop 2 bytes short of a
/// row's end); the safe [`horizontal_pass`] reads the same places with bounds checks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn horizontal_pass_avx2(
    src: &[u8],
    width: usize,
    col0: usize,
    row0: usize,
    rows: std::ops::Range<usize>,
    c: &Coeffs,
    x0: usize,
    cw: usize,
) -> Vec<u8> {
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
                acc = _mm_add_epi32(
                    acc,
                    _mm_mullo_epi32(_mm_loadu_si128(pp.add(m0 - first + t)), _mm_set1_epi32(*k0.add(t))),
                );
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
fn vertical_pass(
    src: &[u8],
    width: usize,
    col0: usize,
    row0: usize,
    cols: std::ops::Range<usize>,
    c: &Coeffs,
    y0: usize,
    ch: usize,
) -> Vec<u8> {
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
