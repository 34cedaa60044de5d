#!/usr/bin/env bash
# The Python plugin's cost, end to end and per call:
#
#   ./bench/python_bench.sh
#
# 1. The same model two ways, side by side: MobileNetV2 int8 run by ONNX Runtime's Python package
#    inside the Python plugin (plugins/python/examples/mobilenetv2-12-int8-ort.yaml) and by the
#    ONNX plugin (plugins/onnx/examples/mobilenetv2-12-int8.yaml), each `shiftbench run --fresh`
#    on SUITE (default: the 1,000 photos in ../shared/data), with the CLI's defaults (worker
#    processes, copies and threads as the harness chooses; both plugins' ONNX Runtime is 1.31.1).
#    A warm-up run each, then RUNS (default 5) pairs in alternating order; prints each run's wall
#    and CPU seconds (user + system, the workers' included), the medians and python / onnx.
# 2. The plugin's own cost per call, outside the user's callable, in a run: the Python plugin times each
#    `infer` (the numpy view, the call, the conversion and copy of the scores, the GIL) and the
#    user's callable inside it, and prints the difference per call when SHIFTBENCH_PYTHON_TIMING
#    is set; shown for the ONNX Runtime model and for a no-op model that returns preallocated
#    scores (all of its time is the plugin's), at --batch 8 and --batch 32. In a run each call
#    also pays for the worker waking up between batches (cold caches, a busy machine's scheduler).
# 3. The same no-op model called in a tight loop in one process (harness/examples/python_call_cost.rs):
#    the plugin's cost per call with warm caches.
#
# Needs: ../shared/data, ONNX Runtime's C library (scripts/setup-onnxruntime.sh) and Python
# package (python3 -m pip install onnxruntime, or VIRTUAL_ENV=.pyenv-test/venv from
# scripts/setup-python-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE=${SUITE:-suites/imagenet-samples.yaml}
RUNS=${RUNS:-5}
BIN=${BIN:-}
if [ -z "$BIN" ]; then
    cargo build --release -q -p shiftbench -p shiftbench-onnx-plugin -p shiftbench-python-plugin >&2
    cargo build --release -q -p shiftbench --example python_call_cost >&2
    BIN=${CARGO_TARGET_DIR:-target}/release
fi
PY=plugins/python/examples/mobilenetv2-12-int8-ort.yaml
ONNX=plugins/onnx/examples/mobilenetv2-12-int8.yaml
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# "wall cpu" seconds of one `run --fresh` of model $1.
one() {
    local model=$1 status=0 t
    local TIMEFORMAT='%R %U %S'
    t=$({ time "$BIN/shiftbench" run --suite "$SUITE" --model "$model" --out "$out/run" --fresh \
        > "$out/stdout" 2> "$out/stderr" || status=$?; } 2>&1)
    if [ "$status" != 0 ]; then
        echo "shiftbench run failed ($model):" >&2
        cat "$out/stdout" "$out/stderr" >&2
        exit 1
    fi
    echo "$t" | awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "suite $SUITE, $RUNS pairs, $(nproc) cores, $BIN"
echo "1. mobilenetv2-12-int8: onnxruntime in the Python plugin vs the ONNX plugin (wall s, cpu s)"
one "$PY" > /dev/null
one "$ONNX" > /dev/null
: > "$out/py.times"
: > "$out/onnx.times"
for i in $(seq "$RUNS"); do
    if [ $((i % 2)) = 1 ]; then
        p=$(one "$PY"); o=$(one "$ONNX")
    else
        o=$(one "$ONNX"); p=$(one "$PY")
    fi
    echo "$p" >> "$out/py.times"
    echo "$o" >> "$out/onnx.times"
    echo "  pair $i: python $p   onnx $o"
done
pw=$(cut -d' ' -f1 "$out/py.times" | median); ow=$(cut -d' ' -f1 "$out/onnx.times" | median)
pc=$(cut -d' ' -f2 "$out/py.times" | median); oc=$(cut -d' ' -f2 "$out/onnx.times" | median)
echo "  median wall: python $pw s, onnx $ow s, python / onnx $(awk -v a="$pw" -v b="$ow" 'BEGIN { printf "%.3f", a / b }')"
echo "  median cpu:  python $pc s, onnx $oc s, python / onnx $(awk -v a="$pc" -v b="$oc" 'BEGIN { printf "%.3f", a / b }')"

echo "2. the Python plugin's time per call outside the model's callable (SHIFTBENCH_PYTHON_TIMING=1)"
cat > "$out/noop.py" <<'EOF'
import numpy as np


class NoOp:
    """Scores without looking at the batch: every microsecond of a call is the plugin's."""

    def __init__(self):
        self.scores = {}

    def __call__(self, batch):
        n = len(batch)
        if n not in self.scores:
            self.scores[n] = np.zeros((n, 1000), dtype=np.float32)
        return self.scores[n]


def load():
    return NoOp()
EOF
printf 'plugin: python\npython: noop.py\nname: noop\n' > "$out/noop.yaml"
for batch in 8 32; do
    for model in "$out/noop.yaml" "$PY"; do
        SHIFTBENCH_PYTHON_TIMING=1 "$BIN/shiftbench" run --suite "$SUITE" --model "$model" --out "$out/run" \
            --fresh --batch "$batch" > /dev/null 2> "$out/timing"
        echo "  --batch $batch: $(grep 'shiftbench-python:' "$out/timing" | sed 's/^shiftbench-python: //' | paste -sd';' -)"
    done
done

echo "3. a call of a no-op Python model in this process, in a tight loop (harness/examples/python_call_cost.rs)"
if [ ! -x "$BIN/examples/python_call_cost" ]; then
    cargo build --release -q -p shiftbench --example python_call_cost >&2
fi
SHIFTBENCH_PYTHON_TIMING=1 "$BIN/examples/python_call_cost" "$BIN/libshiftbench_python.so" 2>&1 | sed 's/^/  /'
