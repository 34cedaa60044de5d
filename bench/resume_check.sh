#!/usr/bin/env bash
# What checking a resumed log's images costs: a resumed run reads every image its log already
# holds once more and compares the fingerprint of its bytes with the one recorded, so that a
# photo replaced under the same name is scored again (tests/trust.rs).
#
#   bench/resume_check.sh [MODEL_YAML]
#
# Builds the release binaries, makes a 20,000-image suite from the 1,000 shared photos (each
# class folder links 20 real photos under new names: bench/large_suite.sh), runs MODEL_YAML
# (default: the MobileNetV2 int8 example) on it once, then ROUNDS (default 3) rounds of the same
# command again (an unchanged resume: nothing is scored, every image is checked) alternating with
# `--fresh` runs. Prints the median wall and CPU seconds of each, and the check's own time as the
# resumed run reports it ("images checked in X s").
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
model=${1:-plugins/onnx/examples/mobilenetv2-12-int8.yaml}
cargo build --release --locked -p shiftbench -p shiftbench-onnx-plugin >&2
bin=target/release/shiftbench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
suite=$(bench/large_suite.sh "$work")

source bench/timing.sh
args=(run --suite "$suite" --model "$model" --threads 2)
one "$bin" "${args[@]}" --out "$work/resumed" > /dev/null
resumes=() freshes=() checks=()
for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2 == 0)); then
        a=$(one "$bin" "${args[@]}" --out "$work/resumed"); c=$(grep -o 'images checked in [0-9.]*' "$work/stderr" | awk '{print $4}')
        b=$(one "$bin" "${args[@]}" --out "$work/fresh" --fresh)
    else
        b=$(one "$bin" "${args[@]}" --out "$work/fresh" --fresh)
        a=$(one "$bin" "${args[@]}" --out "$work/resumed"); c=$(grep -o 'images checked in [0-9.]*' "$work/stderr" | awk '{print $4}')
    fi
    echo "round $((r + 1)): resume wall/cpu $a s (check $c s), fresh run wall/cpu $b s" >&2
    resumes+=("$a") freshes+=("$b") checks+=("$c")
done
images=$(find -L "$work/suite" -type f | wc -l)
bytes=$(find -L "$work/suite" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f", s / 1048576}')
echo "images: $images ($bytes MiB); model: $model"
echo "unchanged resume: median wall $(printf '%s\n' "${resumes[@]}" | cut -d' ' -f1 | median) s, cpu $(printf '%s\n' "${resumes[@]}" | cut -d' ' -f2 | median) s; the image check alone: median $(printf '%s\n' "${checks[@]}" | median) s"
echo "fresh run:        median wall $(printf '%s\n' "${freshes[@]}" | cut -d' ' -f1 | median) s, cpu $(printf '%s\n' "${freshes[@]}" | cut -d' ' -f2 | median) s"
