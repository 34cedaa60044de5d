//! The imaging tests: sizes, offsets, the resampler against its plain port, tensors.

use std::io::Cursor;

use image::RgbImage;
use shiftbench_plugin::{ChannelOrder, Interpolation, Layout, PreprocessSpec};

use super::*;
use crate::resample::*;

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
    let img =
        image::DynamicImage::ImageRgb8(RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 3, y as u8 * 3, 9])));
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
                assert!(
                    pillow_resize_window_baseline(&img, nw, nh, win, interp) == want,
                    "baseline build: {w}x{h} {interp:?} {resize}/{crop}"
                );
                // From a decoded rectangle that holds just what the crop reads.
                let spec = PreprocessSpec { resize, crop, interpolation: interp, ..PreprocessSpec::IMAGENET };
                let r = source_rect(w, h, &spec).unwrap();
                let part = Decoded {
                    px: image::imageops::crop_imm(&img, r.x, r.y, r.w, r.h).to_image(),
                    rect: r,
                    full_w: w,
                    full_h: h,
                };
                assert!(
                    resize_crop_part(&part, &spec).unwrap() == want,
                    "from {r:?}: {w}x{h} {interp:?} {resize}/{crop}"
                );
            }
        }
    }
}
