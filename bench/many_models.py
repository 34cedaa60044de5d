#!/usr/bin/env python3
"""Many models in one pass, measured: N ONNX models run together by shiftbench against the same
models run one by one, and against the floor, on the 1,000 sample photos.

For the models given (default: the three shared ONNX models' example YAMLs):
  (t) `shiftbench run` with every model at once (one pass: each photo decoded once);
  (s) `shiftbench run` with each model alone, one after the other (the sum of their walls);
  (f) the floor of one pass: each model's ONNX Runtime alone on pre-made tensors in its best
      configuration (bench/model_only.py, run once per model), summed, plus one decode and
      preprocess of every photo (target/release/examples/prep_cost, CPU time spread over the
      cores, since shiftbench decodes on every core);
(t) and (s) alternate, --repeat times, and the medians are reported, with t/s and t/f (the issue's
target: t/f at most 1.1).

    ./scripts/setup-onnxruntime.sh && python3 -m pip install -r bench/requirements.txt
    cargo build --release --workspace && cargo build --release --example prep_cost
    python3 bench/many_models.py [--repeat 3] [model.yaml ...]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT = [
    "plugins/onnx/examples/mobilenetv2-12-int8.yaml",
    "plugins/onnx/examples/squeezenet1.1-fp16.yaml",
    "plugins/onnx/examples/squeezenet1.1-fp32.yaml",
]


def wall(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def model_file(yaml):
    for line in open(REPO / yaml):
        if line.startswith("model:"):
            return (REPO / yaml).parent / line.split(":", 1)[1].split("#")[0].strip()
    raise SystemExit(f"{yaml}: no model: line")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    exe = REPO / "target/release/shiftbench"
    photos = Path(args.data) / "imagenet-samples"
    n = len(list(photos.iterdir()))
    cores = os.cpu_count()
    out = Path(tempfile.mkdtemp(prefix="shiftbench-many-"))
    suite = ["--suite", "suites/imagenet-samples.yaml"]

    def run(models, name):
        cmd = [str(exe), "run", *suite, "--fresh", "--out", str(out / name)]
        for m in models:
            cmd += ["--model", m]
        return wall(cmd)

    # Warm the file cache and the plugin once.
    run(args.models, "warm")
    together, separate = [], []
    for r in range(args.repeat):
        if r % 2 == 0:
            together.append(run(args.models, "together"))
            separate.append(sum(run([m], f"alone{i}") for i, m in enumerate(args.models)))
        else:
            separate.append(sum(run([m], f"alone{i}") for i, m in enumerate(args.models)))
            together.append(run(args.models, "together"))
    floors = []
    for m in args.models:
        line = subprocess.run(
            [sys.executable, "bench/model_only.py", "--json", str(model_file(m))], check=True, cwd=REPO, capture_output=True, text=True
        ).stdout.splitlines()[0]
        best = json.loads(line)
        floors.append((m, n / best["images_per_s"], best["config"]))
    prep = subprocess.run([str(REPO / "target/release/examples/prep_cost"), args.models[0], str(photos)], check=True, capture_output=True, text=True).stdout
    cpu_ms = float(prep.split("decode+preprocess ")[1].split(" CPU ms/image")[0])
    decode = cpu_ms * n / 1000 / cores
    t, s = statistics.median(together), statistics.median(separate)
    f = sum(x[1] for x in floors) + decode
    print(f"{len(args.models)} models on {n} photos, {cores} cores, {args.repeat} alternating rounds (medians)")
    for m, sec, cfg in floors:
        print(f"  floor {Path(m).stem}: {sec:.2f} s ({cfg})")
    print(f"  one decode + preprocess: {cpu_ms:.2f} CPU ms/photo -> {decode:.2f} s over {cores} cores")
    print(f"  (t) together, one pass:    {t:.2f} s  (runs: {' '.join(f'{x:.2f}' for x in together)})")
    print(f"  (s) one by one, summed:    {s:.2f} s  (runs: {' '.join(f'{x:.2f}' for x in separate)})")
    print(f"  (f) sum of floors + decode: {f:.2f} s")
    print(f"  t/s = {t / s:.2f}, t/f = {t / f:.2f} (target <= 1.1)")


if __name__ == "__main__":
    main()
