//! Decode (format sniffed from content) and preprocess (as the model card says), matching the
//! PIL + torchvision pipeline that published ImageNet numbers come from:
//!
//! - the format is sniffed from the bytes, not the extension (ImageNet has PNGs and CMYK JPEGs
//!   named `.JPEG`); grayscale, CMYK, 16-bit and alpha images become RGB8 (alpha dropped, as
//!   PIL's `convert("RGB")` does); EXIF orientation is ignored, as PIL and torchvision ignore it;
//! - declared sizes are checked before pixels are allocated (decompression bombs are refused);
//! - the shorter side is resized to `resize` (the longer side truncated, as torchvision computes
//!   it) with Pillow's antialiased convolution, bit for bit ([`pillow_resize`]);
//! - the center crop's offsets are rounded half to even (Python's `round`);
//! - `(pixel * scale - mean) / std` per channel in f32, in the model's channel order and layout.

use std::io::Cursor;

use image::{ImageReader, RgbImage};
use shiftbench_plugin::{ChannelOrder, Interpolation, Layout, PreprocessSpec};

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
    if format == image::ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // zune-jpeg pads a truncated scan with grey; PIL refuses it. Refuse it too rather than
        // score half an image.
        return Err("truncated JPEG: the image data ends before its end-of-image marker".into());
    }
    if format == image::ImageFormat::Jpeg {
        if let Some(rgb) = decode_jpeg_libjpeg(bytes, w, h)? {
            return Ok(rgb);
        }
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| format!("cannot decode {format:?}: {e}"))?;
    Ok(img.into_rgb8())
}

/// Decodes a YCbCr or grayscale JPEG to RGB with libjpeg-turbo's decoder (through mozjpeg, a
/// libjpeg-turbo fork built from source): the decoder PIL uses, with PIL's defaults (ISLOW
/// IDCT, fancy upsampling), so pixels match PIL's bit for bit. Other JPEG types (CMYK, YCCK)
/// return `None` and are decoded by the `image` crate instead.
fn decode_jpeg_libjpeg(bytes: &[u8], w: u32, h: u32) -> Result<Option<RgbImage>, String> {
    use mozjpeg::ColorSpace;
    let d = match std::panic::catch_unwind(|| mozjpeg::Decompress::with_markers(&[]).from_mem(bytes)) {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return Err(format!("cannot decode Jpeg: {e}")),
        Err(_) => return Err("cannot decode Jpeg: libjpeg rejected the header".into()),
    };
    if !matches!(d.color_space(), ColorSpace::JCS_YCbCr | ColorSpace::JCS_GRAYSCALE | ColorSpace::JCS_RGB) {
        return Ok(None);
    }
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || -> std::io::Result<Vec<u8>> {
        let mut started = d.rgb()?;
        let px: Vec<u8> = started.read_scanlines()?;
        started.finish()?;
        Ok(px)
    }));
    match decoded {
        Ok(Ok(px)) if px.len() == (w as usize) * (h as usize) * 3 => {
            Ok(Some(RgbImage::from_raw(w, h, px).expect("size checked")))
        }
        Ok(Ok(px)) => Err(format!("cannot decode Jpeg: {} bytes of pixels for {w}x{h}", px.len())),
        Ok(Err(e)) => Err(format!("cannot decode Jpeg: {e}")),
        Err(_) => Err("cannot decode Jpeg: libjpeg failed on corrupt data".into()),
    }
}

/// Whether a JPEG's last scan (start-of-scan marker FFDA) is followed by an end-of-image marker
/// (FFD9). Inside entropy-coded data a 0xFF byte is always stuffed (FF00), so these byte pairs
/// are real markers; an EXIF thumbnail's own markers come before the main image's last scan.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let Some(sos) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else { return false };
    bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
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
        // Truncation toward zero, as C's (int) cast.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
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

#[inline]
fn clip8(v: i32) -> u8 {
    if v >= 1 << (PRECISION_BITS + 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// Resizes RGB8 the way Pillow's `Image.resize` does for NEAREST, BILINEAR and BICUBIC (with
/// antialiasing: the filter support grows with the downscaling factor), bit for bit: two
/// separable fixed-point passes, horizontal first over only the rows the vertical pass reads,
/// each rounded and clipped to 8 bits. `fast_image_resize` follows Pillow-SIMD's 16-bit
/// coefficients instead, which differ from Pillow by one level on ~8% of pixels: enough to flip
/// the top-1 of quantized models against reference numbers computed with Pillow.
pub fn pillow_resize(img: &RgbImage, nw: u32, nh: u32, interpolation: Interpolation) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (nw_, nh_) = (nw as usize, nh as usize);
    let src = img.as_raw();
    if interpolation == Interpolation::Nearest {
        // Pillow samples pixel centres through an affine transform: floor((x + 0.5) * in / out).
        let (sx, sy) = (w as f64 / nw_ as f64, h as f64 / nh_ as f64);
        // Pillow steps the source x by repeated addition; the rounding of that sum matters.
        let mut xo = 0.5 * sx;
        let xs: Vec<usize> = (0..nw_)
            .map(|_| {
                let x = (xo as usize).min(w - 1);
                xo += sx;
                x
            })
            .collect();
        let mut out = vec![0u8; nw_ * nh_ * 3];
        for y in 0..nh_ {
            let yy = (((y as f64 + 0.5) * sy) as usize).min(h - 1);
            for (x, &xx) in xs.iter().enumerate() {
                out[(y * nw_ + x) * 3..][..3].copy_from_slice(&src[(yy * w + xx) * 3..][..3]);
            }
        }
        return RgbImage::from_raw(nw, nh, out).expect("size");
    }
    let (filter, support): (fn(f64) -> f64, f64) = match interpolation {
        Interpolation::Bicubic => (bicubic_filter, 2.0),
        _ => (bilinear_filter, 1.0),
    };
    let half = 1i32 << (PRECISION_BITS - 1);
    let need_h = nw_ != w;
    let need_v = nh_ != h;
    let cv = coefficients(h, nh_, filter, support);
    // Rows of the source the vertical pass reads.
    let (y_first, y_last) = if need_v {
        let last = cv.bounds[nh_ - 1];
        (cv.bounds[0].0, last.0 + last.1)
    } else {
        (0, h)
    };
    let (mut cur, mut cw, mut ch) = (None::<Vec<u8>>, w, h);
    if need_h {
        let c = coefficients(w, nw_, filter, support);
        let rows = y_last - y_first;
        let mut tmp = vec![0u8; nw_ * rows * 3];
        for y in 0..rows {
            let row = &src[(y + y_first) * w * 3..][..w * 3];
            let orow = &mut tmp[y * nw_ * 3..][..nw_ * 3];
            for xx in 0..nw_ {
                let (xmin, n) = c.bounds[xx];
                let k = &c.weights[xx * c.ksize..][..n];
                let (mut s0, mut s1, mut s2) = (half, half, half);
                for (x, &kx) in k.iter().enumerate() {
                    let p = &row[(xmin + x) * 3..][..3];
                    s0 += p[0] as i32 * kx;
                    s1 += p[1] as i32 * kx;
                    s2 += p[2] as i32 * kx;
                }
                orow[xx * 3] = clip8(s0);
                orow[xx * 3 + 1] = clip8(s1);
                orow[xx * 3 + 2] = clip8(s2);
            }
        }
        cur = Some(tmp);
        cw = nw_;
        ch = rows;
    }
    let data: &[u8] = cur.as_deref().unwrap_or(src);
    if !need_v {
        let out = if need_h { cur.expect("horizontal pass") } else { src.to_vec() };
        return RgbImage::from_raw(nw, nh, out).expect("size");
    }
    // Row offsets are relative to the rows the horizontal pass produced.
    let offset = if need_h { y_first } else { 0 };
    let _ = ch;
    let mut out = vec![0u8; cw * nh_ * 3];
    let stride = cw * 3;
    for yy in 0..nh_ {
        let (ymin, n) = cv.bounds[yy];
        let k = &cv.weights[yy * cv.ksize..][..n];
        let orow = &mut out[yy * stride..][..stride];
        for (i, o) in orow.iter_mut().enumerate() {
            let mut s = half;
            for (y, &ky) in k.iter().enumerate() {
                s += data[(ymin - offset + y) * stride + i] as i32 * ky;
            }
            *o = clip8(s);
        }
    }
    RgbImage::from_raw(nw, nh, out).expect("size")
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

/// Resizes and center-crops to `crop x crop` RGB8, as torchvision's `Resize` + `CenterCrop` do.
pub fn resize_crop(img: &RgbImage, spec: &PreprocessSpec) -> Result<RgbImage, String> {
    let (w, h) = img.dimensions();
    let (nw, nh) = resized_size(w, h, spec.resize);
    if (nw as u64) * (nh as u64) > MAX_RESIZED_PIXELS {
        return Err(format!("{w}x{h} image has an extreme aspect ratio: resizing it to {nw}x{nh} is refused"));
    }
    if nw < spec.crop || nh < spec.crop {
        return Err(format!("resized image {nw}x{nh} is smaller than the {0}x{0} crop", spec.crop));
    }
    let resized = if (nw, nh) == (w, h) { img.clone() } else { pillow_resize(img, nw, nh, spec.interpolation) };
    let (x0, y0) = (crop_offset(nw, spec.crop), crop_offset(nh, spec.crop));
    Ok(image::imageops::crop_imm(&resized, x0, y0, spec.crop, spec.crop).to_image())
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
    let img = decode(bytes)?;
    let crop = resize_crop(&img, spec)?;
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
}
