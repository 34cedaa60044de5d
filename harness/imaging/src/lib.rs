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
//!
//! The crate is a layer of its own, below the harness: it knows images and the plugin
//! interface's [`PreprocessSpec`], nothing of suites, models or results. Its hot loops are why it
//! is optimised even in dev builds.
//!
//! [`decode`] (sniff, check, decode; [`jpeg`]: libjpeg-turbo over a rectangle) -> [`pixels`]
//! (the decoded image) -> [`preprocess`] (resized size, center crop, the rectangle it reads;
//! [`resample`]: the Pillow port) -> [`tensor`] (normalise into the model's input).

pub mod decode;
pub mod jpeg;
pub mod pixels;
pub mod preprocess;
pub mod resample;
pub mod tensor;

pub use decode::{decode, decode_part, jpeg_is_complete, MAX_PIXELS, MAX_SIDE};
pub use pixels::{Decoded, Rect};
pub use preprocess::{
    crop_offset, decode_for, preprocess, resize_crop, resize_crop_part, resized_size, source_rect, MAX_RESIZED_PIXELS,
};
pub use resample::{pillow_resize, pillow_resize_window, Window};
pub use tensor::{load_tensor, to_tensor, Normaliser};

#[cfg(test)]
mod tests;
