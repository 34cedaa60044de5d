#!/usr/bin/env python3
"""PIL's view of every image in a folder after torchvision-style preprocessing: decode with
PIL, convert("RGB"), resize the shorter side to RESIZE (the longer side truncated, as
torchvision computes it), center crop CROP (offsets rounded as Python's round), and print
`file,sha256 of the crop's RGB bytes` per image, sorted by file name.

The pixel-exactness test (tests/pixels.rs) compares shiftbench's decode + resize + crop with
this, byte for byte.

    python3 bench/pil_crops.py <folder> <resize> <crop> <bilinear|bicubic|nearest> [--limit N]
"""

import argparse
import hashlib
import os

from PIL import Image

FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}


def crop_bytes(path, resize, crop, resample):
    with Image.open(path) as im:
        im = im.convert("RGB")
    w, h = im.size
    if w <= h:
        size = (resize, int(resize * h / w))
    else:
        size = (int(resize * w / h), resize)
    im = im.resize(size, resample)
    left = int(round((size[0] - crop) / 2.0))
    top = int(round((size[1] - crop) / 2.0))
    return im.crop((left, top, left + crop, top + crop)).tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("resize", type=int)
    ap.add_argument("crop", type=int)
    ap.add_argument("interpolation", choices=sorted(FILTERS))
    ap.add_argument("--limit", type=int, default=0, help="only the first N files (0 = all)")
    args = ap.parse_args()
    files = sorted(os.listdir(args.folder))
    if args.limit:
        files = files[: args.limit]
    for f in files:
        b = crop_bytes(os.path.join(args.folder, f), args.resize, args.crop, FILTERS[args.interpolation])
        print(f"{f},{hashlib.sha256(b).hexdigest()}")


if __name__ == "__main__":
    main()
