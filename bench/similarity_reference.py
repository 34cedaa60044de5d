#!/usr/bin/env python3
"""Independent Python reference for `shiftbench similarity`.

Embeds every image of an ImageFolder tree (<folder>/<wnid>/<image>) with an inner tensor of an
ONNX model (the model YAML's `embedding:`), and writes per class the intra-class similarity the
way shiftbench defines it (harness/src/results/similarity.rs, the paper's notebooks):

  the f32 embedding (the tensor flattened per image) is L2-normalised in float64 (a zero vector
  stays zero); cosines c_ij over every pair i < j; mean_cosine = their mean, std_cosine = their
  standard deviation with divisor n_pairs (np.std), se = std_cosine / sqrt(n_pairs - 1).
  Classes with fewer than --min-per-class images are left out, as shiftbench skips them.

An integer tensor of a quantized model (the output of a QLinear operator) is dequantized with that
operator's output scale and zero point, (q - zero_point) * scale in f32, as the plugin does.

Every image of a class is used (run shiftbench with a --per-class larger than any class, so its
seeded choice takes them all). Preprocessing is bench/reference_onnx.py's, imported from it: PIL
decode + convert('RGB'), shorter side to 256 BILINEAR (torchvision's sizes), center crop 224
(torchvision's rounding), the card's channel order, scale, mean and std, NCHW.

ONNX Runtime returns only graph outputs, so the tensor is added as an output of an in-memory copy
of the model with the `onnx` package (its element type from onnx's shape inference). The CSV has
shiftbench's similarity.csv columns: suite,wnid,n,pairs,mean_cosine,std_cosine,se.

    python3 -m pip install -r bench/requirements.txt
    python3 bench/similarity_reference.py --model squeezenet1.1-fp32 --embedding pool10_1 \\
        --suite groups /tmp/groups/photos /tmp/reference.csv
"""

import argparse
import csv
import multiprocessing as mp
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort

import reference_onnx as ref

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


# Where a QLinear operator's output scale and zero point are among its inputs (onnxruntime's
# contrib operators and ONNX's QLinearConv/QLinearMatMul).
QLINEAR_OUTPUT_QPARAMS = {
    "QLinearConv": (6, 7),
    "QLinearMatMul": (6, 7),
    "QLinearAdd": (6, 7),
    "QLinearMul": (6, 7),
    "QLinearGlobalAveragePool": (3, 4),
    "QLinearAveragePool": (3, 4),
    "QLinearSigmoid": (3, 4),
    "QLinearLeakyRelu": (3, 4),
}


def quantization(model_path, tensor):
    """(scale, zero point) as numpy arrays when `tensor` is the output of a QLinear operator, else None.

    The embedding is then the real values the integers stand for: (q - zero_point) * scale in f32,
    what an ONNX DequantizeLinear computes."""
    m = onnx.load(str(model_path))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    for n in m.graph.node:
        if tensor in n.output and n.op_type in QLINEAR_OUTPUT_QPARAMS:
            s, z = QLINEAR_OUTPUT_QPARAMS[n.op_type]
            scale = inits[n.input[s]].astype(np.float32)
            zero = inits[n.input[z]] if len(n.input) > z and n.input[z] else np.zeros((), np.uint8)
            if scale.size != 1 or zero.size != 1:
                sys.exit(f"similarity_reference.py: `{tensor}` is quantized per channel; only per-tensor is handled")
            return scale, zero
    return None


def with_output(model_path, tensor, quantized):
    """The model's bytes with `tensor` appended to the graph outputs; a quantized tensor is declared
    with its zero point's element type (shape inference does not know onnxruntime's QLinear ops)."""
    m = onnx.load(str(model_path))
    g = m.graph
    if any(o.name == tensor for o in g.output):
        return m.SerializeToString()
    if not any(tensor in n.output for n in g.node):
        sys.exit(f"similarity_reference.py: no node of {model_path} outputs a tensor `{tensor}`")
    inferred = onnx.shape_inference.infer_shapes(m)
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    if quantized is not None:
        elem = onnx.helper.np_dtype_to_tensor_dtype(quantized[1].dtype)
        g.output.append(onnx.helper.make_tensor_value_info(tensor, elem, None))
    elif tensor in known and known[tensor].type.tensor_type.elem_type:
        g.output.append(known[tensor])
    else:
        # Shape inference did not reach it: declare it as the graph input's element type, no shape.
        elem = g.input[0].type.tensor_type.elem_type
        g.output.append(onnx.helper.make_tensor_value_info(tensor, elem, None))
    return m.SerializeToString()


def pair_stats(emb):
    """shiftbench's PairStats of one class's embeddings (rows), or None under 3 images."""
    n = emb.shape[0]
    if n < 3:
        return None
    e = emb.astype(np.float64)
    norm = np.sqrt((e * e).sum(axis=1, keepdims=True))
    ok = (norm > 0) & np.isfinite(norm)
    unit = np.where(ok, e / np.where(ok, norm, 1.0), 0.0)
    i, j = np.triu_indices(n, 1)
    cos = (unit @ unit.T)[i, j]
    pairs = len(cos)
    std = float(np.std(cos))
    return n, pairs, float(np.mean(cos)), std, float(std / np.sqrt(pairs - 1))


def main():
    repo = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="ImageFolder root: <folder>/<wnid>/<image>")
    ap.add_argument("out_csv", help="where to write the per-class CSV")
    ap.add_argument("--model", choices=sorted(ref.MODELS), default="squeezenet1.1-fp32")
    ap.add_argument("--embedding", default="pool10_1", help="the inner tensor (the model YAML's embedding:)")
    ap.add_argument("--suite", default="suite", help="the suite column's value")
    ap.add_argument("--data", default=str(repo.parent / "shared" / "data"), help="the shared data folder")
    ap.add_argument("--min-per-class", type=int, default=7, help="classes with fewer images are left out")
    ap.add_argument("--workers", type=int, default=2, help="decode/preprocess processes (0 = the main process)")
    args = ap.parse_args()

    card = ref.MODELS[args.model]
    model_path = Path(args.data) / "models" / card["file"]
    folder = Path(args.folder)
    if not model_path.is_file() or not folder.is_dir():
        sys.exit(f"similarity_reference.py: {model_path} or {folder} not found")
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    files = [
        (wnid, p)
        for wnid in classes
        for p in sorted((folder / wnid).iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES
    ]

    # Start the decode processes before ONNX Runtime creates its thread pool (fork safety).
    pool = mp.Pool(args.workers, initializer=ref.init_worker, initargs=(card,)) if args.workers > 0 else None
    if pool is None:
        ref.init_worker(card)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    qparams = quantization(model_path, args.embedding)
    sess = ort.InferenceSession(
        with_output(model_path, args.embedding, qparams), so, providers=["CPUExecutionProvider"]
    )
    inp = sess.get_inputs()[0]
    in_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32

    def embedding(y):
        if qparams is not None:
            scale, zero = qparams
            y = (y.astype(np.int32) - zero.astype(np.int32)).astype(np.float32) * scale
        return y.reshape(-1).astype(np.float32)

    # Fixed-batch models (the SqueezeNets take 1): one image per call, as the plugin sends them.
    per_class = {wnid: [] for wnid in classes}
    paths = [p for _, p in files]
    results = pool.imap(ref.preprocess, paths, chunksize=4) if pool else map(ref.preprocess, paths)
    for (wnid, _), (_, x, _) in zip(files, results):
        y = sess.run([args.embedding], {inp.name: x[None].astype(in_dtype, copy=False)})[0]
        per_class[wnid].append(embedding(y))
    if pool:
        pool.close()
        pool.join()

    with open(args.out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["suite", "wnid", "n", "pairs", "mean_cosine", "std_cosine", "se"])
        for wnid in classes:
            emb = per_class[wnid]
            if len(emb) < max(args.min_per_class, 3):
                print(f"{wnid}: {len(emb)} images, left out", file=sys.stderr)
                continue
            n, pairs, mean, std, se = pair_stats(np.stack(emb))
            w.writerow([args.suite, wnid, n, pairs, repr(mean), repr(std), repr(se)])
            print(f"{wnid}: n {n}, mean cosine {mean:.6f} (std {std:.6f}, se {se:.2e})")


if __name__ == "__main__":
    main()
