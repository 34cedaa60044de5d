//! Decoding: the format sniffed from the bytes, declared sizes checked before any pixel is
//! allocated, JPEGs through libjpeg-turbo ([`crate::jpeg`]) over only the rectangle the caller
//! reads, everything else through the `image` crate; RGB8 out.

use std::io::Cursor;

use image::{ImageReader, RgbImage};

use crate::pixels::{Decoded, Rect};

/// Largest width or height accepted.
pub const MAX_SIDE: u32 = 30_000;
/// Largest pixel count accepted (about 16k x 16k).
pub const MAX_PIXELS: u64 = 268_435_456;

/// Decodes an image file's bytes to RGB8, or says in one sentence why not.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, String> {
    let d = decode_part(bytes, &|_, _| None)?;
    debug_assert_eq!((d.rect.w, d.rect.h), (d.full_w, d.full_h));
    Ok(d.px)
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
    let reader =
        ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| format!("cannot read image: {e}"))?;
    let Some(format) = reader.format() else {
        return Err("not an image: the content matches no known image format".into());
    };
    let (w, h) = reader.into_dimensions().map_err(|e| format!("corrupt {format:?} header: {e}"))?;
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
                return Err(format!(
                    "cannot decode Jpeg: libjpeg sees {}x{} pixels, the header says {w}x{h}",
                    d.full_w, d.full_h
                ));
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
