#!/usr/bin/env bash
# The whole `shiftbench laionet build` (read, match, encode with all-mpnet-base-v2, select, write)
# against the paper's whole pipeline on the same captions, side by side (not a timed test):
#
#   bench/laionet_build.sh [CAPTIONS] [WORK]     CAPTIONS default 150000, WORK default /tmp/laionet-build-bench
#
# 1. Writes CAPTIONS synthetic LAION-like captions as one Parquet file and as JSON lines
#    (examples/synthetic_captions.rs: a lemma of the paper's dictionary in about 1.6% of them,
#    LAION-400M's rate, weighted by the paper's match counts when ../shared is there; 5% tagged
#    UNSURE), and exports all-mpnet-base-v2 from the Python test environment (.pyenv-test, made by
#    scripts/setup-python-env.sh) with scripts/export-text-encoder.py, once.
# 2. ROUNDS (default 3) rounds, alternating which goes first, each process timed whole by
#    /usr/bin/time (start-up, model loading, reading and writing included):
#    A  shiftbench laionet build --encoder <export> --threshold 0.58 into a fresh folder (no part
#       reused): its Rust matching, ONNX Runtime encoding the candidates and the 995 class queries
#    B  bench/laionet_reference.py --per-row-queries: the paper's matching loop (1,825 substring
#       tests a caption), then sentence-transformers encoding every candidate's caption and its
#       row's query in batches, sklearn's normalize, the threshold and the NSFW rule
#    and prints each side's median wall seconds and peak memory, and B / A.
# 3. Checks that both found the same candidates and selected as many rows, per class.
# THREADS (default: all cores) bounds both sides' threads (ONNX Runtime's, torch's).
# ENCODER=DIR uses an export made already (e.g. the one tests/laionet_reference.rs caches).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-150000}
WORK=${2:-/tmp/laionet-build-bench}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-$(nproc)}
py=.pyenv-test/venv/bin/python
[ -x "$py" ] || { echo "no $py: run scripts/setup-python-env.sh" >&2; exit 1; }
mkdir -p "$WORK"
cargo build --release --locked -p shiftbench --bin shiftbench --example synthetic_captions >&2
cargo build --release --locked -p shiftbench-onnx-plugin >&2
BIN=target/release/shiftbench
COUNTS=../shared/data/paper/laion400m_substring_match_counts_2023-03_c766577.tsv
[ -f "$COUNTS" ] || COUNTS=
ENC=${ENCODER:-$WORK/all-mpnet-base-v2}
if [ ! -f "$ENC/encoder.yaml" ]; then
    "$py" scripts/export-text-encoder.py .pyenv-test/models/all-mpnet-base-v2 "$ENC" >&2
fi
CORPUS="$WORK/corpus-$N"
if [ ! -f "$CORPUS/.done" ]; then
    rm -rf "$CORPUS"
    target/release/examples/synthetic_captions "$CORPUS" "$N" 1 $COUNTS --rows-jsonl "$WORK/rows-$N.jsonl"
    touch "$CORPUS/.done"
fi
a_cmd=(env OMP_NUM_THREADS="$THREADS" "$BIN" laionet build --captions "$CORPUS" --encoder "$ENC" --threshold 0.58
    --encoder-threads "$THREADS" --out "$WORK/ours")
b_cmd=(env OMP_NUM_THREADS="$THREADS" "$py" bench/laionet_reference.py .pyenv-test/models/all-mpnet-base-v2
    suites/laionet/lemma2wnid.tsv suites/laionet/name_def_queries.tsv "$WORK/rows-$N.jsonl" "$WORK/paper.json"
    --threshold 0.58 --alias n02112837=n02110185 --per-row-queries)
# Runs a command under /usr/bin/time; prints "wall_seconds peak_kib".
timed() {
    rm -rf "$WORK/ours"
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$WORK/last.log" 2>&1 || { cat "$WORK/last.log" >&2; exit 1; }
    cat "$WORK/time"
}
median() { sort -n | awk '{v[NR]=$1} END {if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
as=() bs=() am=() bm=()
for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2 == 0)); then
        a=$(timed "${a_cmd[@]}"); b=$(timed "${b_cmd[@]}")
    else
        b=$(timed "${b_cmd[@]}"); a=$(timed "${a_cmd[@]}")
    fi
    read -r aw ak <<< "$a"; read -r bw bk <<< "$b"
    echo "round $((r + 1)): shiftbench $aw s ($((ak / 1024)) MiB), the paper's pipeline $bw s ($((bk / 1024)) MiB)" >&2
    as+=("$aw") bs+=("$bw") am+=("$ak") bm+=("$bk")
done
a_med=$(printf '%s\n' "${as[@]}" | median)
b_med=$(printf '%s\n' "${bs[@]}" | median)
a_mem=$(printf '%s\n' "${am[@]}" | median)
b_mem=$(printf '%s\n' "${bm[@]}" | median)
# The last A left its outputs in $WORK/ours (rm'd before each run), the last B its JSON.
timed "${a_cmd[@]}" >/dev/null
"$py" - "$WORK" <<'EOF'
import json, sys
work = sys.argv[1]
s = json.load(open(f"{work}/ours/summary.json"))
p = json.load(open(f"{work}/paper.json"))
print(f"corpus: {p['rows']} captions, {len(p['candidates'])} candidates, {len(p['selected'])} selected; "
      f"the paper's pipeline: matching {p['seconds']['match']:.1f} s, loading {p['seconds']['load']:.1f} s, "
      f"encoding {p['seconds']['encode']:.1f} s (its last run)")
ours = {}
for line in open(f"{work}/ours/class_counts.csv").read().splitlines()[1:]:
    w, m, d, c, _, sel = line.split(",")
    ours[w] = (int(m), int(d), int(c))
theirs = {w: tuple(v) for w, v in p["counts"].items()}
bad = [w for w in set(ours) | set(theirs) if ours.get(w, (0, 0, 0)) != theirs.get(w, (0, 0, 0))]
same = not bad and s["candidates"] == len(p["candidates"]) and s["selected"] == len(p["selected"])
print(f"per-class counts, candidates and rows selected: {'the same' if same else 'DIFFER ' + str(bad[:5])} "
      f"(shiftbench {s['candidates']} candidates, {s['selected']} selected)")
sys.exit(0 if same else 1)
EOF
echo "rounds: $ROUNDS, threads: $THREADS, cores: $(nproc)"
echo "shiftbench laionet build:    median $a_med s wall, peak $((a_mem / 1024)) MiB"
echo "the paper's pipeline:        median $b_med s wall, peak $((b_mem / 1024)) MiB"
echo "the paper's / shiftbench's:  $(echo "scale=2; $b_med / $a_med" | bc)x"
