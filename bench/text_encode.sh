#!/usr/bin/env bash
# The text-encoding stage of `shiftbench laionet build` against ONNX Runtime alone (the issue's
# target: within 1.15x), on the same texts, the same ONNX graph, the same thread count.
#
#   bench/text_encode.sh [ENCODER_DIR]
#
# ENCODER_DIR is a folder made by scripts/export-text-encoder.py (default: all-mpnet-base-v2 from
# the Python test environment, .pyenv-test, exported into a temporary folder). The texts are the
# N (default 1000) LAIONet class queries of ../shared/data/paper/laionet_name_def_queries.tsv
# ("<name> which is <definition>"), or TEXTS=FILE (one per line).
#
# A: shiftbench (harness/examples/text_encode.rs): the encoder opened through the host in a
#    worker process, one encode() call over all texts, timed from the call to its answer:
#    tokenizing in Rust, ONNX Runtime, the pipe, the host's checks and normalisation all included.
# B: Python onnxruntime (bench/text_encode_ort.py) on the batches the plugin builds (the same
#    tokenizer.json, truncation, sort by token count, batch_size, padding): only session.run is
#    timed; tokenizing is reported apart.
# ROUNDS (default 3) rounds alternate which goes first; each side's median, the ratio of the
# medians and the median of the rounds' own ratios (the figure to quote on a busy machine: a
# round's two runs see the same load) are printed.
# THREADS (default 2) intra-op threads for both.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
N=${N:-1000}
py=.pyenv-test/venv/bin/python
[ -x "$py" ] || { echo "no $py: run scripts/setup-python-env.sh" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
enc=${1:-}
if [ -z "$enc" ]; then
    enc="$work/all-mpnet-base-v2"
    "$py" scripts/export-text-encoder.py .pyenv-test/models/all-mpnet-base-v2 "$enc" >&2
fi
if [ -n "${TEXTS:-}" ]; then
    awk -v n="$N" 'NR <= n' "$TEXTS" > "$work/texts.txt"
else
    awk -F'\t' -v n="$N" 'NR > 1 && NR <= n + 1 {print $4}' ../shared/data/paper/laionet_name_def_queries.tsv > "$work/texts.txt"
fi
cargo build --release --locked -p shiftbench -p shiftbench-onnx-plugin >&2
cargo build --release --locked -p shiftbench --example text_encode >&2
# The example binary lives in target/release/examples: the plugins are found beside shiftbench.
export SHIFTBENCH_PLUGIN_PATH="$PWD/target/release"
a_cmd=(target/release/examples/text_encode "$enc" "$work/texts.txt" --threads "$THREADS")
b_cmd=("$py" bench/text_encode_ort.py "$enc" "$work/texts.txt" --threads "$THREADS")
field() { "$py" -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
median() { sort -n | awk '{v[NR]=$1} END {if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
as=() bs=() tok=() ratios=()
for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2 == 0)); then
        a=$("${a_cmd[@]}"); b=$("${b_cmd[@]}")
    else
        b=$("${b_cmd[@]}"); a=$("${a_cmd[@]}")
    fi
    ae=$(field encode_seconds <<< "$a") be=$(field encode_seconds <<< "$b")
    echo "round $((r + 1)): shiftbench $ae s, onnxruntime alone $be s (tokenizing $(field tokenize_seconds <<< "$b") s more); checksums $(field checksum <<< "$a") / $(field checksum <<< "$b")" >&2
    as+=("$ae") bs+=("$be") tok+=("$(field tokenize_seconds <<< "$b")") ratios+=("$(echo "scale=4; $ae / $be" | bc)")
done
am=$(printf '%s\n' "${as[@]}" | median)
bm=$(printf '%s\n' "${bs[@]}" | median)
tm=$(printf '%s\n' "${tok[@]}" | median)
echo "encoder: $(field encoder <<< "$a"), texts: $(wc -l < "$work/texts.txt"), threads: $THREADS, rounds: $ROUNDS"
echo "shiftbench (tokenizing + ONNX Runtime + worker + normalising): median $am s"
echo "onnxruntime alone (session.run on the same batches):           median $bm s (+ $tm s tokenizing in Python)"
echo "shiftbench / onnxruntime alone: $(echo "scale=3; $am / $bm" | bc) (ratio of the medians); round by round: ${ratios[*]}, median $(printf '%s\n' "${ratios[@]}" | median)"
