#!/usr/bin/env bash
# What `shiftbench similarity` costs against a `shiftbench run` of the same model on the same
# large suite (the issue's target: within 1.1x).
#
#   bench/similarity_cost.sh [MODEL_YAML]
#
# Builds the release binaries, then makes a 20,000-image suite (1,000 classes x 20 images) from
# the 1,000 shared photos in ../shared/data/imagenet-samples: class i's folder links the photos of
# classes i, i+1, ..., i+19 (mod 1000) under new names, so every image is a real photo, decoded
# like any other. MODEL_YAML defaults to the SqueezeNet 1.1 fp32 example with `embedding:
# pool10_1`. With K = 100 (the default) similarity embeds all 20 images of every class: the same
# 20,000 images the run scores. Then ROUNDS (default 2) rounds of `run --fresh` and `similarity
# --fresh`, alternating which goes first, and prints each one's wall and CPU seconds, the medians
# and similarity / run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
PER=${PER:-20}
model=${1:-plugins/onnx/examples/squeezenet1.1-fp32-embedding.yaml}
cargo build --release --locked -p shiftbench -p shiftbench-onnx-plugin >&2
bin=target/release/shiftbench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
suite=$(bench/large_suite.sh "$work" "$PER")
n=1000
echo "model: $model" >&2

source bench/timing.sh
run_cmd=("$bin" run --suite "$suite" --model "$model" --out "$work/run" --fresh)
sim_cmd=("$bin" similarity --suite "$suite" --model "$model" --out "$work/sim" --fresh)

runs=() sims=()
for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2 == 0)); then
        a=$(one "${run_cmd[@]}"); b=$(one "${sim_cmd[@]}")
    else
        b=$(one "${sim_cmd[@]}"); a=$(one "${run_cmd[@]}")
    fi
    echo "round $((r + 1)): run wall/cpu $a s, similarity wall/cpu $b s" >&2
    runs+=("$a") sims+=("$b")
done
rw=$(printf '%s\n' "${runs[@]}" | cut -d' ' -f1 | median)
sw=$(printf '%s\n' "${sims[@]}" | cut -d' ' -f1 | median)
rc=$(printf '%s\n' "${runs[@]}" | cut -d' ' -f2 | median)
sc=$(printf '%s\n' "${sims[@]}" | cut -d' ' -f2 | median)
echo "images: $((n * PER)); embeddings log: $(du -h "$work/sim/embeddings" | tail -1 | cut -f1)"
echo "run:        median wall $rw s, cpu $rc s"
echo "similarity: median wall $sw s, cpu $sc s"
echo "similarity / run: wall $(echo "scale=3; $sw / $rw" | bc), cpu $(echo "scale=3; $sc / $rc" | bc)"
