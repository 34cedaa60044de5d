#!/usr/bin/env python3
"""Independent Python reference for shiftbench's ONNX plugin.

Classifies the 1,000 photos in ../shared/data/imagenet-samples (one per ImageNet-1k class; the
label is the wnid prefix of the file name) with ONNX Runtime's Python API, preprocessing with PIL
and numpy exactly as the model card says:

  PIL open + convert('RGB'); resize the shorter side to 256 with BILINEAR (longer side
  int(256 * long / short), as torchvision does); center crop 224 (offsets
  int(round((size - 224) / 2))); channel order, scale, mean and std per model; NCHW.

Decoding runs in a multiprocessing pool feeding ONNX Runtime in the main process, the way
timm's onnx_validate.py feeds it from DataLoader workers. Writes one CSV row per image:
file,wnid,top1_index,top1_wnid,top5_indices (top5_indices space-separated, best first), and
prints images/s and the CPU time per image spent in decode+preprocess.

    python3 -m pip install -r bench/requirements.txt
    python3 bench/reference_onnx.py --model mobilenetv2-12-int8 --workers 2 --batch 8 /tmp/mb.csv
"""

import argparse
import csv
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

RESIZE = 256
CROP = 224

# The model cards (see ../shared/data/README.md and plugins/onnx/examples/*.yaml).
MODELS = {
    "squeezenet1.1-fp16": dict(
        file="squeezenet1.1-fp16.onnx", order="bgr", scale=1.0, mean=(104.0, 117.0, 123.0), std=(1.0, 1.0, 1.0)
    ),
    "squeezenet1.1-fp32": dict(
        file="squeezenet1.1-fp32.onnx", order="bgr", scale=1.0, mean=(104.0, 117.0, 123.0), std=(1.0, 1.0, 1.0)
    ),
    "mobilenetv2-12-int8": dict(
        file="mobilenetv2-12-int8.onnx",
        order="rgb",
        scale=1.0 / 255.0,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    ),
}

# Set in each worker by init_worker.
_CARD = None


def init_worker(card):
    global _CARD
    _CARD = card


def resize_shorter(img, size):
    """torchvision.transforms.Resize(size) on a PIL image: shorter side to `size`."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    if short == size:
        return img
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    return img.resize((new_w, new_h), Image.BILINEAR)


def center_crop(img, size):
    """torchvision.transforms.CenterCrop(size) (the image is at least `size` on both sides here)."""
    w, h = img.size
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def preprocess(path):
    """Decode + preprocess one image. Returns (path, CHW float32 array, CPU seconds spent)."""
    t0 = time.process_time()
    card = _CARD
    with Image.open(path) as im:
        img = im.convert("RGB")
    img = center_crop(resize_shorter(img, RESIZE), CROP)
    x = np.asarray(img, dtype=np.float32)  # HWC, RGB, 0-255
    if card["order"] == "bgr":
        x = x[:, :, ::-1]
    x = (x * np.float32(card["scale"]) - np.asarray(card["mean"], np.float32)) / np.asarray(card["std"], np.float32)
    x = np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)
    return str(path), x, time.process_time() - t0


def main():
    repo = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_csv", help="where to write the per-image CSV")
    ap.add_argument("--model", choices=sorted(MODELS), default="mobilenetv2-12-int8")
    ap.add_argument("--data", default=str(repo.parent / "shared" / "data"), help="the shared data folder")
    ap.add_argument("--workers", type=int, default=2, help="decode/preprocess processes (0 = decode in the main process)")
    ap.add_argument("--batch", type=int, default=1, help="images per ONNX Runtime call (models with a fixed batch use it)")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0 = its default)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (0 = all)")
    args = ap.parse_args()

    data = Path(args.data)
    card = MODELS[args.model]
    model_path = data / "models" / card["file"]
    samples = data / "imagenet-samples"
    if not model_path.is_file() or not samples.is_dir():
        sys.exit(f"reference_onnx.py: {model_path} or {samples} not found (pass --data)")
    synsets = (data / "classes" / "imagenet_synsets.txt").read_text().split()
    assert len(synsets) == 1000, len(synsets)
    files = sorted(p for p in samples.iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    if args.limit:
        files = files[: args.limit]

    # Start the decode processes before ONNX Runtime creates its thread pool (fork safety).
    pool = mp.Pool(args.workers, initializer=init_worker, initargs=(card,)) if args.workers > 0 else None
    if pool is None:
        init_worker(card)

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if args.threads:
        so.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    out = sess.get_outputs()[0]
    in_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
    batch = args.batch
    if fixed_batch is not None and batch != fixed_batch:
        print(f"note: {inp.name} has a fixed batch of {fixed_batch}; using --batch {fixed_batch}", file=sys.stderr)
        batch = fixed_batch

    rows = []
    prep_cpu = 0.0
    infer_wall = 0.0
    pending = []

    def flush():
        nonlocal infer_wall
        x = np.stack([p[1] for p in pending]).astype(in_dtype, copy=False)
        t = time.perf_counter()
        y = sess.run([out.name], {inp.name: x})[0]
        infer_wall += time.perf_counter() - t
        y = y.reshape(len(pending), -1).astype(np.float32)
        for (path, _), scores in zip(pending, y):
            top5 = np.argsort(-scores, kind="stable")[:5]
            name = os.path.basename(path)
            rows.append((name, name.split("_")[0], int(top5[0]), synsets[int(top5[0])], " ".join(str(int(i)) for i in top5)))
        pending.clear()

    t0 = time.perf_counter()
    results = pool.imap(preprocess, files, chunksize=4) if pool else map(preprocess, files)
    for path, x, cpu in results:
        prep_cpu += cpu
        pending.append((path, x))
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    wall = time.perf_counter() - t0
    if pool:
        pool.close()
        pool.join()

    with open(args.out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "wnid", "top1_index", "top1_wnid", "top5_indices"])
        w.writerows(rows)

    n = len(rows)
    top1 = sum(r[1] == r[3] for r in rows) / n
    top5 = sum(synsets.index(r[1]) in map(int, r[4].split()) for r in rows) / n
    print(
        f"{args.model}: {n} images, workers {args.workers}, batch {batch}, ORT {ort.__version__} "
        f"(threads {args.threads or 'default'})\n"
        f"  throughput: {n / wall:.1f} images/s ({wall:.2f} s wall)\n"
        f"  decode+preprocess: {1000 * prep_cpu / n:.2f} CPU ms/image (in the workers)\n"
        f"  inference: {1000 * infer_wall / n:.2f} wall ms/image (in the main process)\n"
        f"  top-1 {100 * top1:.1f}%, top-5 {100 * top5:.1f}% -> {args.out_csv}"
    )


if __name__ == "__main__":
    main()
