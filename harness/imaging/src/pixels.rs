//! What decoding produces: an RGB8 image, or a rectangle of one ([`Decoded`], [`Rect`]).

use image::RgbImage;

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
}

/// A rectangle of an image: columns `x..x + w`, rows `y..y + h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    /// The smallest rectangle holding both.
    pub fn union(self, o: Rect) -> Rect {
        let (x, y) = (self.x.min(o.x), self.y.min(o.y));
        let x1 = (self.x + self.w).max(o.x + o.w);
        let y1 = (self.y + self.h).max(o.y + o.h);
        Rect { x, y, w: x1 - x, h: y1 - y }
    }
}
