//! JPEG decoding with libjpeg-turbo (mozjpeg's build of it, with its SIMD): the decoder PIL
//! uses, with PIL's defaults (ISLOW IDCT, fancy upsampling), so pixels match PIL's bit for bit.
//!
//! Preprocessing reads only the part of a photo around its center crop (about 60% of an
//! ImageNet photo once the resampling filter's reach is added), so [`decode_rgb`] decodes only
//! that rectangle: `jpeg_crop_scanline` limits the inverse DCT, upsampling and colour conversion
//! to the columns it covers, `jpeg_skip_scanlines` passes over the rows above it without an
//! inverse DCT, and decoding stops after its last row. The rectangle is widened by a margin of
//! [`EDGE`] pixels, because libjpeg's fancy (triangle-filter) chroma upsampling treats the edge
//! of a cropped output as the edge of the image: the pixels next to it are computed from
//! replicated chroma samples rather than the real neighbours. Inside the margin, every pixel
//! equals the whole decode's, which `tests` check on synthetic JPEGs of every common sampling
//! and on the 1,000 real sample photos (`tests/pixels.rs` checks the result against PIL).
//!
//! A consequence: for a baseline JPEG, entropy-coded data below the rectangle is not read, so
//! damage there goes unnoticed (libjpeg only warns about damaged data, and PIL decodes such a
//! file too; a file cut short is refused before decoding, see `imaging::jpeg_is_complete`).

use std::ffi::{c_int, c_ulong};
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::RgbImage;
use mozjpeg_sys as ffi;

use crate::pixels::{Decoded, Rect};

/// Pixels of real neighbours kept around a requested rectangle (see the module docs): fancy
/// upsampling is off at one output pixel next to a cropped edge; two leave room to spare.
pub const EDGE: u32 = 2;

/// Decodes a YCbCr, RGB or grayscale JPEG to RGB8: the whole image, or, when `need` (given the
/// image's width and height) names a rectangle, a rectangle that holds it (wider by up to an
/// iMCU column, 8 or 16 pixels, on the left, and by [`EDGE`] pixels elsewhere, within the image).
/// `Ok(None)` for other colour spaces (CMYK, YCCK), which the caller decodes otherwise; `Err`
/// with libjpeg's message for a file it cannot decode.
pub fn decode_rgb(bytes: &[u8], need: &dyn Fn(u32, u32) -> Option<Rect>) -> Result<Option<Decoded>, String> {
    // SAFETY: `decode_unguarded`'s one requirement (see its `# Safety`) is that a libjpeg error,
    // which unwinds out of it as a panic, is caught: `catch_unwind` here catches it, and its
    // `Decompress` guard has freed libjpeg's state by then.
    match catch_unwind(AssertUnwindSafe(|| unsafe { decode_unguarded(bytes, need) })) {
        Ok(r) => r,
        Err(payload) => Err(match payload.downcast::<String>() {
            Ok(msg) => format!("cannot decode Jpeg: {msg}"),
            Err(_) => "cannot decode Jpeg: libjpeg failed on corrupt data".into(),
        }),
    }
}

/// libjpeg's state for one decode; destroyed (which also aborts a decode cut short) on drop,
/// including when an error unwinds out of libjpeg.
struct Decompress {
    cinfo: Box<ffi::jpeg_decompress_struct>,
    // Referenced by `cinfo.common.err`; dropped after `cinfo` is destroyed.
    _err: Box<ffi::jpeg_error_mgr>,
}

impl Drop for Decompress {
    fn drop(&mut self) {
        // SAFETY: `cinfo` was zeroed and then created; destroying a zeroed struct (mem NULL)
        // is a no-op in libjpeg.
        unsafe { ffi::jpeg_destroy_decompress(&mut self.cinfo) }
    }
}

/// libjpeg's fatal-error hook: unwinds (mozjpeg-sys is built with unwinding support) with the
/// formatted message, which [`decode_rgb`] catches.
///
/// # Safety
/// Only libjpeg calls it (installed by `decode_unguarded`), with the `cinfo` of a live decode
/// whose `err` points at the `jpeg_error_mgr` that `jpeg_std_error` filled in.
#[cold]
unsafe extern "C-unwind" fn error_exit(cinfo: &mut ffi::jpeg_common_struct) {
    let mut buf = [0u8; 80];
    let msg = match cinfo.err.as_ref().and_then(|e| e.format_message) {
        Some(format) => {
            // SAFETY: the same function with the buffer as the pointer libjpeg's C signature has
            // (libjpeg writes into the buffer; the binding declares it `&[u8; 80]`); 80 bytes is
            // libjpeg's JMSG_LENGTH_MAX.
            let format: unsafe extern "C-unwind" fn(&mut ffi::jpeg_common_struct, *mut [u8; 80]) =
                std::mem::transmute(format);
            format(cinfo, &mut buf);
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end]).into_owned()
        }
        None => format!("libjpeg error {}", cinfo.err.as_ref().map_or(0, |e| e.msg_code)),
    };
    std::panic::resume_unwind(Box::new(msg));
}

/// Warnings (damaged data libjpeg decodes anyway, as PIL does) are not printed.
///
/// # Safety
/// Only libjpeg calls it (installed by `decode_unguarded`); it touches nothing.
#[cold]
unsafe extern "C-unwind" fn silence(_cinfo: &mut ffi::jpeg_common_struct, _level: c_int) {}

/// [`decode_rgb`] without catching libjpeg's errors.
///
/// # Safety
/// A libjpeg error unwinds out of this function as a panic (from [`error_exit`]) through libjpeg's
/// C frames: the caller must catch it (`catch_unwind`, as [`decode_rgb`] does) and must not use
/// anything of this decode afterwards (nothing escapes: the `Decompress` guard is dropped during
/// the unwind). Everything else is checked here: `bytes` is only read, within its length, and
/// the row pointers handed to libjpeg point into a buffer of exactly the rows and columns
/// `jpeg_crop_scanline` reported.
unsafe fn decode_unguarded(bytes: &[u8], need: &dyn Fn(u32, u32) -> Option<Rect>) -> Result<Option<Decoded>, String> {
    let mut d = Decompress { cinfo: Box::new(std::mem::zeroed()), _err: Box::new(std::mem::zeroed()) };
    ffi::jpeg_std_error(&mut d._err);
    d._err.error_exit = Some(error_exit);
    d._err.emit_message = Some(silence);
    d.cinfo.common.err = &mut *d._err;
    ffi::jpeg_create_decompress(&mut *d.cinfo);
    let c = &mut *d.cinfo;
    ffi::jpeg_mem_src(c, bytes.as_ptr(), bytes.len() as c_ulong);
    ffi::jpeg_read_header(c, 1);
    use ffi::J_COLOR_SPACE::{JCS_YCbCr, JCS_GRAYSCALE, JCS_RGB};
    if !matches!(c.jpeg_color_space, JCS_YCbCr | JCS_GRAYSCALE | JCS_RGB) {
        return Ok(None);
    }
    c.out_color_space = JCS_RGB;
    ffi::jpeg_start_decompress(c);
    let (full_w, full_h) = (c.output_width, c.output_height);
    if c.output_components != 3 || full_w == 0 || full_h == 0 {
        return Err(format!("cannot decode Jpeg: libjpeg gives {} channels of {full_w}x{full_h}", c.output_components));
    }
    let want = need(full_w, full_h)
        .filter(|r| r.w > 0 && r.h > 0 && r.x + r.w <= full_w && r.y + r.h <= full_h)
        .unwrap_or(Rect { x: 0, y: 0, w: full_w, h: full_h });
    // Columns: libjpeg moves the left edge down to an iMCU boundary and reports where it is.
    let mut x = want.x.saturating_sub(EDGE);
    let mut w = (want.x + want.w + EDGE).min(full_w) - x;
    if w < full_w {
        ffi::jpeg_crop_scanline(c, &mut x, &mut w);
    }
    let y = want.y.saturating_sub(EDGE);
    let y_end = (want.y + want.h + EDGE).min(full_h);
    if y > 0 && ffi::jpeg_skip_scanlines(c, y) != y {
        return Err("cannot decode Jpeg: libjpeg could not skip to the rows needed".into());
    }
    let (row, h) = (w as usize * 3, (y_end - y) as usize);
    let mut px = vec![0u8; row * h];
    let mut rows: Vec<*mut u8> = px.chunks_exact_mut(row).map(|r| r.as_mut_ptr()).collect();
    let mut done = 0;
    while done < h {
        let n = ffi::jpeg_read_scanlines(c, rows[done..].as_mut_ptr(), (h - done) as u32) as usize;
        if n == 0 {
            return Err("cannot decode Jpeg: libjpeg stopped returning rows".into());
        }
        done += n;
    }
    if y_end == full_h {
        ffi::jpeg_finish_decompress(c);
    }
    let px = RgbImage::from_raw(w, h as u32, px).expect("whole rows of RGB");
    Ok(Some(Decoded { px, rect: Rect { x, y, w, h: h as u32 }, full_w, full_h }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(bytes: &[u8]) -> Decoded {
        decode_rgb(bytes, &|_, _| None).unwrap().unwrap()
    }

    /// A smooth colourful image with some noise, so that chroma varies between neighbours.
    pub(crate) fn photo_like(w: usize, h: usize, seed: u32) -> Vec<u8> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        let mut px = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let n = (s % 48) as i32 - 24;
                let r = (x * 255 / w.max(1)) as i32 + n;
                let g = (y * 255 / h.max(1)) as i32 - n;
                let b = (((x + y) * 7) % 256) as i32 + n / 2;
                px.extend([r.clamp(0, 255) as u8, g.clamp(0, 255) as u8, b.clamp(0, 255) as u8]);
            }
        }
        px
    }

    /// Encodes with libjpeg: `sampling` is the chroma pixel size ((2, 2) is 4:2:0), `gray`
    /// writes one channel.
    pub(crate) fn encode(px: &[u8], w: usize, h: usize, sampling: (u8, u8), progressive: bool, gray: bool) -> Vec<u8> {
        let space = if gray { mozjpeg::ColorSpace::JCS_GRAYSCALE } else { mozjpeg::ColorSpace::JCS_YCbCr };
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        // Plain libjpeg-turbo encoding (mozjpeg's trellis quantisation crashes on progressive
        // 4:4:0).
        c.set_fastest_defaults();
        c.set_size(w, h);
        c.set_color_space(space);
        c.set_quality(88.0);
        if !gray {
            c.set_chroma_sampling_pixel_sizes(sampling, sampling);
        }
        if progressive {
            c.set_progressive_mode();
        }
        let mut s = c.start_compress(Vec::new()).unwrap();
        s.write_scanlines(px).unwrap();
        s.finish().unwrap()
    }

    /// Every pixel of the requested rectangle equals the whole decode's, whatever the rectangle,
    /// sampling, scan mode and image size (odd sizes leave partial MCUs at the edges).
    #[test]
    fn a_part_equals_the_same_pixels_of_the_whole() {
        let mut rng = 0x9e37_79b9u32;
        let mut next = |n: u32| {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            rng % n
        };
        let sizes = [(500, 375), (333, 500), (97, 61), (16, 16), (17, 300), (640, 33)];
        let samplings =
            [((1, 1), false), ((2, 1), false), ((2, 2), false), ((1, 2), false), ((2, 2), true), ((1, 1), true)];
        let mut checked = 0;
        for (i, &(w, h)) in sizes.iter().enumerate() {
            let px = photo_like(w, h, i as u32 + 1);
            for &(sampling, gray) in &samplings {
                for progressive in [false, true] {
                    let jpeg = encode(&px, w, h, sampling, progressive, gray);
                    let all = whole(&jpeg);
                    assert_eq!(
                        (all.full_w, all.full_h, all.rect),
                        (w as u32, h as u32, Rect { x: 0, y: 0, w: w as u32, h: h as u32 })
                    );
                    for _ in 0..12 {
                        let rw = 1 + next(w as u32);
                        let rh = 1 + next(h as u32);
                        let want = Rect { x: next(w as u32 - rw + 1), y: next(h as u32 - rh + 1), w: rw, h: rh };
                        let part = decode_rgb(&jpeg, &|fw, fh| {
                            assert_eq!((fw, fh), (w as u32, h as u32));
                            Some(want)
                        })
                        .unwrap()
                        .unwrap();
                        let r = part.rect;
                        assert!(
                            r.x <= want.x
                                && r.y <= want.y
                                && r.x + r.w >= want.x + want.w
                                && r.y + r.h >= want.y + want.h,
                            "{r:?} does not hold {want:?}"
                        );
                        for yy in want.y..want.y + want.h {
                            let got = &part.px.as_raw()[(((yy - r.y) * r.w + want.x - r.x) * 3) as usize..]
                                [..want.w as usize * 3];
                            let exp =
                                &all.px.as_raw()[((yy as usize * w) + want.x as usize) * 3..][..want.w as usize * 3];
                            assert!(got == exp, "{w}x{h} sampling {sampling:?} gray {gray} progressive {progressive}: row {yy} of {want:?} differs");
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, sizes.len() * samplings.len() * 2 * 12);
    }

    /// Restart markers (which the row skipping must step through) and another encoder's
    /// choices: a part still equals the same pixels of the whole.
    #[test]
    fn parts_of_jpegs_with_restart_markers_equal_the_whole() {
        use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
        let (w, h) = (333u32, 250u32);
        let px = photo_like(w as usize, h as usize, 42);
        for sampling in [SamplingFactor::F_1_1, SamplingFactor::F_2_1, SamplingFactor::F_2_2, SamplingFactor::F_1_2] {
            for (progressive, restart) in [(false, 1u16), (false, 7), (true, 3)] {
                let mut jpeg = Vec::new();
                let mut e = Encoder::new(&mut jpeg, 85);
                e.set_sampling_factor(sampling);
                e.set_progressive(progressive);
                e.set_restart_interval(restart);
                e.encode(&px, w as u16, h as u16, ColorType::Rgb).unwrap();
                assert!(jpeg.windows(2).any(|m| m == [0xFF, 0xDD]), "no restart interval (DRI) written");
                assert!(jpeg.windows(2).any(|m| m == [0xFF, 0xD1]), "no restart marker written");
                let all = whole(&jpeg);
                for want in [
                    Rect { x: 40, y: 30, w: 224, h: 190 },
                    Rect { x: 0, y: 100, w: 333, h: 17 },
                    Rect { x: 161, y: 249, w: 5, h: 1 },
                ] {
                    let part = decode_rgb(&jpeg, &|_, _| Some(want)).unwrap().unwrap();
                    let r = part.rect;
                    for yy in want.y..want.y + want.h {
                        let got = &part.px.as_raw()[(((yy - r.y) * r.w + want.x - r.x) * 3) as usize..]
                            [..want.w as usize * 3];
                        let exp = &all.px.as_raw()[((yy * w + want.x) * 3) as usize..][..want.w as usize * 3];
                        assert!(
                            got == exp,
                            "{sampling:?} progressive {progressive} restart {restart}: row {yy} of {want:?} differs"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn errors_are_messages_and_other_colour_spaces_are_left_to_the_caller() {
        let e = decode_rgb(b"\xff\xd8\xff\xe0 not really", &|_, _| None).unwrap_err();
        assert!(e.starts_with("cannot decode Jpeg: "), "{e}");
        let px = photo_like(40, 30, 7);
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_CMYK);
        c.set_size(20, 30);
        let mut s = c.start_compress(Vec::new()).unwrap();
        s.write_scanlines(&px[..20 * 30 * 4]).unwrap();
        let cmyk = s.finish().unwrap();
        assert!(decode_rgb(&cmyk, &|_, _| None).unwrap().is_none());
    }
}
