#!/usr/bin/env bash
# What running each model in a worker process costs, end to end, against --in-process.
#
#   bench/isolation.sh [MODEL ...]        # default: example; a model YAML, plugin path or name
#
# For each model: one warm-up run per mode (file cache, page cache of the plugin), then RUNS
# alternating pairs of `shiftbench run --fresh` in-process and isolated (alternating cancels
# drift from other load on the machine). Prints each run's wall and CPU time (user + system,
# the worker's included), the medians and the overhead of isolation in percent of in-process.
# On a busy machine wall times jitter by 10% or more; CPU time is the steadier measure of the
# work isolation adds (spawning the workers, loading the plugin there, a round trip of small
# frames per batch; the batch itself is written straight into the shared memory the worker reads).
#
# Environment: SUITE (default suites/imagenet-samples.yaml: the 1,000 photos in ../shared/data),
# RUNS (default 5), BIN (default: build and use target/release/shiftbench), and EXTRA (more
# `run` options, e.g. "--batch 64 --threads 4").
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE=${SUITE:-suites/imagenet-samples.yaml}
RUNS=${RUNS:-5}
EXTRA=${EXTRA:-}
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(example)
if [ -z "${BIN:-}" ]; then
    cargo build --release --workspace --locked >&2
    BIN=target/release/shiftbench
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# "wall cpu" seconds of one run (its output is checked, not shown).
one() {
    local mode=$1 model=$2 status=0 t
    local -a flags=()
    [ "$mode" = in-process ] && flags=(--in-process)
    local TIMEFORMAT='%R %U %S'
    # shellcheck disable=SC2086
    t=$({ time "$BIN" run --suite "$SUITE" --model "$model" --out "$out/$mode" --fresh "${flags[@]}" $EXTRA \
        > "$out/stdout" 2> "$out/stderr" || status=$?; } 2>&1)
    if [ "$status" != 0 ]; then
        echo "shiftbench run failed ($mode, $model):" >&2
        cat "$out/stdout" "$out/stderr" >&2
        exit 1
    fi
    echo "$t" | awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "suite $SUITE, $RUNS runs per mode, $(nproc) cores, options: ${EXTRA:-(defaults)}"
for m in "${models[@]}"; do
    one in-process "$m" > /dev/null
    one isolated "$m" > /dev/null
    : > "$out/in-process.times"
    : > "$out/isolated.times"
    for i in $(seq "$RUNS"); do
        a=$(one in-process "$m")
        b=$(one isolated "$m")
        echo "$a" >> "$out/in-process.times"
        echo "$b" >> "$out/isolated.times"
        echo "  $m run $i: in-process ${a% *} s wall, ${a#* } s cpu; isolated ${b% *} s wall, ${b#* } s cpu"
    done
    # Both modes must agree to the last digit.
    # (Only the results: the run's provenance, times and ids, differs by design.)
    python3 -c 'import json, sys; r = [json.load(open(f))["results"] for f in sys.argv[1:]]; sys.exit(r[0] != r[1])' \
        "$out/in-process/result.json" "$out/isolated/result.json" \
        || { echo "in-process and isolated results differ for $m" >&2; exit 1; }
    for col in 1 2; do
        a=$(cut -d' ' -f$col "$out/in-process.times" | median)
        b=$(cut -d' ' -f$col "$out/isolated.times" | median)
        what=$([ $col = 1 ] && echo "wall" || echo "cpu ")
        awk -v m="$m" -v w="$what" -v a="$a" -v b="$b" \
            'BEGIN { printf "%s: %s median in-process %.3f s, isolated %.3f s, isolation overhead %+.1f%%\n", m, w, a, b, 100 * (b - a) / a }'
    done
done
