#!/usr/bin/env bash
# Builds what the ONNX benchmark needs and runs it (see bench/onnx_bench.py for what it measures):
#     ./scripts/setup-onnxruntime.sh && python3 -m pip install -r bench/requirements.txt
#     ./bench/onnx_bench.sh [models...]     (default: squeezenet1.1-fp16 mobilenetv2-12-int8)
set -euo pipefail
cd "$(dirname "$0")/.."
# Only the harness and the ONNX plugin: the whole workspace would need libtorch too.
cargo build --release -q -p shiftbench -p shiftbench-onnx-plugin
cargo build --release -q -p shiftbench --example prep_cost
exec python3 bench/onnx_bench.py "$@"
