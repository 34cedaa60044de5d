#!/usr/bin/env python3
"""ONNX Runtime alone on the token batches shiftbench's ONNX text encoder runs: the yardstick of
bench/text_encode.sh.

    text_encode_ort.py ENCODER_DIR TEXTS.txt [--threads N] [--repeat R]

ENCODER_DIR is a folder made by scripts/export-text-encoder.py. The texts (one per line) are
tokenized with its tokenizer.json by the Python `tokenizers` library, truncated to
max_seq_length; taken 256 at a time (the host's calls), sorted by token count, cut into batches
of batch_size, each padded to its longest: the batches the plugin builds. `encode_seconds` times only the `session.run` calls over
those batches (plus the order restored); `tokenize_seconds` is reported apart. Prints one JSON line.
"""
import argparse
import json
import os
import time

import numpy as np
import onnxruntime as ort
import yaml
from tokenizers import Tokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("encoder")
    ap.add_argument("texts")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--per-call", type=int, default=256, help="texts per host call (host::text::TEXTS_PER_CALL)")
    a = ap.parse_args()
    with open(os.path.join(a.encoder, "encoder.yaml")) as f:
        cfg = yaml.safe_load(f)
    with open(a.texts) as f:
        texts = f.read().split("\n")
    if texts and texts[-1] == "":
        texts.pop()
    t0 = time.perf_counter()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(os.path.join(a.encoder, cfg["model"]), opts, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(os.path.join(a.encoder, cfg["tokenizer"]))
    tok.no_padding()
    tok.enable_truncation(int(cfg["max_seq_length"]))
    open_s = time.perf_counter() - t0

    t = time.perf_counter()
    lower = bool(cfg.get("lowercase", False))
    encs = tok.encode_batch([s.lower() if lower else s for s in texts])
    ids = [e.ids for e in encs]
    bs = int(cfg.get("batch_size", 32))
    pad = int(cfg.get("pad_id", 0))
    batches = []
    # The host sends at most --per-call texts per call (host::text::TEXTS_PER_CALL); the plugin
    # sorts each call's texts by token count (stable, longest first) and cuts batches.
    for c in range(0, len(texts), a.per_call):
        call = range(c, min(c + a.per_call, len(texts)))
        order = sorted(call, key=lambda i: -len(ids[i]))
        for s in range(0, len(order), bs):
            batches.append(order[s : s + bs])
    made = []
    for chunk in batches:
        n = max(len(ids[i]) for i in chunk)
        x = np.full((len(chunk), n), pad, dtype=np.int64)
        m = np.zeros((len(chunk), n), dtype=np.int64)
        for r, i in enumerate(chunk):
            x[r, : len(ids[i])] = ids[i]
            m[r, : len(ids[i])] = 1
        made.append((chunk, x, m))
    batches = made
    tokenize_s = time.perf_counter() - t

    times = []
    for _ in range(max(1, a.repeat)):
        t = time.perf_counter()
        out = None
        for chunk, x, m in batches:
            e = sess.run(["embedding"], {"input_ids": x, "attention_mask": m})[0]
            if out is None:
                out = np.zeros((len(texts), e.shape[1]), dtype=np.float32)
            out[chunk] = e
        times.append(time.perf_counter() - t)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({"encoder": cfg["name"], "texts": len(texts), "open_seconds": round(open_s, 3),
                      "tokenize_seconds": round(tokenize_s, 3), "encode_seconds": round(med, 3),
                      "runs": [round(x, 3) for x in times], "texts_per_second": round(len(texts) / med, 1),
                      "checksum": float(out.astype(np.float64).sum())}))


if __name__ == "__main__":
    main()
