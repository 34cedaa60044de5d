#!/usr/bin/env python3
"""The floor: ONNX Runtime inference alone on pre-made tensors (no decode, no preprocessing).

Times the model on `--images` random tensors of the right shape and dtype in several
configurations and prints images/s and CPU ms/image for each, best first:
  - one session with T intra-op threads at batch B (B = 1 for fixed-batch models);
  - S sessions (one per core) with 1 thread each, side by side in S threads, at batch B.

    python3 bench/model_only.py ../shared/data/models/squeezenet1.1-fp16.onnx
"""

import argparse
import json
import os
import threading
import time

import numpy as np
import onnxruntime as ort


def session(path, threads, spinning=True):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def run(sess, xs):
    inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
    for x in xs:
        sess.run([out.name], {inp.name: x})


def measure(label, fn, n):
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    return (n / wall, 1000 * cpu / n, label)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--cores", type=int, default=os.cpu_count())
    ap.add_argument("--json", action="store_true", help="one JSON object per configuration instead of text")
    ap.add_argument("--only", help="measure just this configuration (a label as printed, e.g. \"2 sessions x 1 thread side by side, batch 8\")")
    args = ap.parse_args()
    probe = session(args.model, 1)
    inp = probe.get_inputs()[0]
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    fixed = inp.shape[0] if isinstance(inp.shape[0], int) else None
    rng = np.random.default_rng(0)
    results = []
    batches = [1] if fixed == 1 else [1, 8, 32]
    wanted = lambda label: args.only is None or label == args.only
    for b in batches:
        xs = [rng.standard_normal((b, 3, 224, 224)).astype(dtype) for _ in range(args.images // b)]
        n = len(xs) * b
        for t in sorted({1, args.cores}):
            if not wanted(f"1 session, {t} threads, batch {b}"):
                continue
            s = session(args.model, t)
            run(s, xs[:2])  # warm up
            results.append(measure(f"1 session, {t} threads, batch {b}", lambda: run(s, xs), n))
        if args.cores > 1 and wanted(f"{args.cores} sessions x 1 thread side by side, batch {b}"):
            ss = [session(args.model, 1) for _ in range(args.cores)]
            for s in ss:
                run(s, xs[:2])
            parts = [xs[i :: args.cores] for i in range(args.cores)]

            def side_by_side():
                th = [threading.Thread(target=run, args=(s, p)) for s, p in zip(ss, parts)]
                [t.start() for t in th]
                [t.join() for t in th]

            results.append(measure(f"{args.cores} sessions x 1 thread side by side, batch {b}", side_by_side, n))
    if not results:
        raise SystemExit(f"model_only.py: no configuration is called {args.only!r}")
    results.sort(reverse=True)
    name = os.path.basename(args.model)
    for ips, cpu, label in results:
        if args.json:
            print(json.dumps({"model": name, "images_per_s": ips, "cpu_ms_per_image": cpu, "config": label}))
        else:
            print(f"{name}: {ips:7.1f} images/s  {cpu:6.2f} CPU ms/image  {label}")


if __name__ == "__main__":
    main()
