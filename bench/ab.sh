#!/usr/bin/env bash
# Two builds of shiftbench side by side, end to end: the same `shiftbench run` with each, in
# alternating pairs, to tell whether a change (a refactor, say) costs speed.
#
#   OLD=/path/to/other/target/release bench/ab.sh [MODEL ...]
#
# OLD and NEW are folders holding a `shiftbench` executable and the plugins built with it (each
# binary finds its plugins beside itself): build the other revision with
#   git worktree add /tmp/old <rev> && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build --release)
# and pass OLD=/tmp/old-target/release. NEW defaults to this checkout's target/release (built
# first). MODEL defaults to the two shared ONNX models' example YAMLs.
#
# For each model: a warm-up run with each build, then RUNS (default 5) pairs in alternating order
# (old-new, new-old, ...), each `run --fresh` on SUITE (default suites/imagenet-samples.yaml, the
# 1,000 photos in ../shared/data) with the CLI's defaults (worker processes). Prints each run's
# wall and CPU seconds (user + system, the workers' included), the medians, and new / old.
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE=${SUITE:-suites/imagenet-samples.yaml}
RUNS=${RUNS:-5}
: "${OLD:?set OLD to the folder of the other build (see the top of this script)}"
if [ -z "${NEW:-}" ]; then
    cargo build --release --locked >&2
    NEW=target/release
fi
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(plugins/onnx/examples/squeezenet1.1-fp16.yaml plugins/onnx/examples/mobilenetv2-12-int8.yaml)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# "wall cpu" seconds of one run with the build in folder $1.
one() {
    local dir=$1 model=$2 status=0 t
    local TIMEFORMAT='%R %U %S'
    t=$({ time "$dir/shiftbench" run --suite "$SUITE" --model "$model" --out "$out/run" --fresh \
        > "$out/stdout" 2> "$out/stderr" || status=$?; } 2>&1)
    if [ "$status" != 0 ]; then
        echo "shiftbench run failed ($dir, $model):" >&2
        cat "$out/stdout" "$out/stderr" >&2
        exit 1
    fi
    echo "$t" | awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "suite $SUITE, $RUNS pairs, $(nproc) cores; old: $OLD, new: $NEW"
for m in "${models[@]}"; do
    one "$OLD" "$m" > /dev/null
    one "$NEW" "$m" > /dev/null
    : > "$out/old.times"
    : > "$out/new.times"
    for i in $(seq "$RUNS"); do
        if [ $((i % 2)) = 1 ]; then
            o=$(one "$OLD" "$m"); n=$(one "$NEW" "$m")
        else
            n=$(one "$NEW" "$m"); o=$(one "$OLD" "$m")
        fi
        echo "$o" >> "$out/old.times"
        echo "$n" >> "$out/new.times"
        echo "  $m pair $i: old $o, new $n (wall cpu s)"
    done
    ow=$(cut -d' ' -f1 "$out/old.times" | median); oc=$(cut -d' ' -f2 "$out/old.times" | median)
    nw=$(cut -d' ' -f1 "$out/new.times" | median); nc=$(cut -d' ' -f2 "$out/new.times" | median)
    n_img=$(($(cat "$out"/run/predictions/*.jsonl | wc -l) - 1))
    awk -v m="$m" -v ow="$ow" -v oc="$oc" -v nw="$nw" -v nc="$nc" -v n="$n_img" 'BEGIN {
        printf "%s: median wall old %.2f s (%.1f img/s), new %.2f s (%.1f img/s), new/old %.3f; CPU old %.2f s, new %.2f s, new/old %.3f\n",
            m, ow, n / ow, nw, n / nw, nw / ow, oc, nc, nc / oc }'
done
