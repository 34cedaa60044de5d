#!/usr/bin/env bash
# The match stage of `shiftbench laionet build` against the paper's Python matching loop, on the
# same synthetic LAION-style captions (not a timed test):
#
#   bench/laionet_match.sh [CAPTIONS] [WORK]     CAPTIONS default 10000000, WORK default /tmp/laionet-bench
#
# 1. Writes CAPTIONS captions as 8 LAION-like Parquet files (examples/synthetic_captions.rs: about
#    46 characters a caption, a lemma of the paper's dictionary in about 1.6% of them, weighted by
#    the paper's LAION-400M match counts when ../shared is there), and 100,000 more as one file
#    and as JSON lines for the Python loop.
# 2. Times both, side by side in ROUNDS (default 3) alternating rounds (A B, B A, ...), each
#    process whole under /usr/bin/time (CPU = user + system seconds, wall, peak resident memory):
#    A  shiftbench laionet build --match-only on all CAPTIONS (Parquet read + match + counts)
#    B  bench/paper_match.py (the paper's loop: 1,825 substring tests a caption) on 100,000
#    and prints the medians, each one's captions per second and CPU microseconds a caption.
# 3. Checks that both count the same per class on the 100,000 they share.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
WORK=${2:-/tmp/laionet-bench}
PY_N=100000
mkdir -p "$WORK"
cargo build --release -p shiftbench --bin shiftbench --example synthetic_captions >&2
BIN=target/release/shiftbench
COUNTS=../shared/data/paper/laion400m_substring_match_counts_2023-03_c766577.tsv
[ -f "$COUNTS" ] || COUNTS=
if [ ! -f "$WORK/corpus-$N/.done" ]; then
    rm -rf "$WORK/corpus-$N"
    target/release/examples/synthetic_captions "$WORK/corpus-$N" "$N" 8 $COUNTS
    touch "$WORK/corpus-$N/.done"
fi
if [ ! -f "$WORK/py-$PY_N/.done" ]; then
    rm -rf "$WORK/py-$PY_N"
    target/release/examples/synthetic_captions "$WORK/py-$PY_N" "$PY_N" 1 $COUNTS --jsonl "$WORK/py-$PY_N.jsonl"
    touch "$WORK/py-$PY_N/.done"
fi
# Our counts on the Python loop's captions, for the check at the end.
"$BIN" laionet build --captions "$WORK/py-$PY_N" --match-only --out "$WORK/py-ours" >/dev/null
echo "== A: shiftbench laionet build --match-only, $N captions; B: the paper's Python loop, $PY_N captions" >&2
a_cmd=("$BIN" laionet build --captions "$WORK/corpus-$N" --match-only --out "$WORK/ours-$N")
b_cmd=(python3 bench/paper_match.py suites/laionet/lemma2wnid.tsv "$WORK/py-$PY_N.jsonl" --out "$WORK/paper.tsv")
ROUNDS=${ROUNDS:-3}
# Runs a command under /usr/bin/time; prints "cpu_seconds wall_seconds peak_kib".
timed() {
    /usr/bin/time -f '%U %S %e %M' -o "$WORK/time" "$@" >"$WORK/last.log" 2>&1 || { cat "$WORK/last.log" >&2; exit 1; }
    awk '{printf "%.2f %s %s\n", $1 + $2, $3, $4}' "$WORK/time"
}
: >"$WORK/a.times"
: >"$WORK/b.times"
for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2 == 0)); then
        timed "${a_cmd[@]}" >>"$WORK/a.times"; timed "${b_cmd[@]}" >>"$WORK/b.times"
    else
        timed "${b_cmd[@]}" >>"$WORK/b.times"; timed "${a_cmd[@]}" >>"$WORK/a.times"
    fi
    echo "round $((r + 1)): A $(tail -1 "$WORK/a.times"), B $(tail -1 "$WORK/b.times") (CPU s, wall s, peak KiB)" >&2
done
python3 - "$WORK" "$N" "$PY_N" <<'EOF'
import statistics, sys
work, n, py_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for side, count in (("a", n), ("b", py_n)):
    rows = [list(map(float, l.split())) for l in open(f"{work}/{side}.times") if l.strip()]
    cpu, wall, peak = (statistics.median(r[i] for r in rows) for i in range(3))
    name = "A shiftbench --match-only" if side == "a" else "B the paper's Python loop"
    print(f"{name}: {count:,} captions, median CPU {cpu:.2f} s, wall {wall:.2f} s = {count / wall:,.0f} captions/s, "
          f"{1e6 * cpu / count:.2f} CPU us a caption, peak {peak / 1024:.1f} MiB")
EOF
python3 - "$WORK" "$N" "$PY_N" <<'EOF'
import json, sys
work, n, py_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = json.load(open(f"{work}/ours-{n}/summary.json"))
print(f"A: {s['captions']} captions in {s['seconds']:.2f} s inside shiftbench = {s['captions'] / s['seconds']:,.0f} captions/s; "
      f"{100 * s['one_class'] / s['captions']:.2f}% name one class, {100 * s['multi_class'] / s['captions']:.2f}% several")
ours = {}
for line in open(f"{work}/py-ours/class_counts.csv").read().splitlines()[1:]:
    w, m, d, c = line.split(",")[:4]
    ours["n02112837" if w == "n02110185" else w] = (m, d, c)
theirs = {}
for line in open(f"{work}/paper.tsv").read().splitlines()[1:]:
    w, m, d, c = line.split("\t")
    theirs[w] = (m, d, c)
bad = [w for w in theirs if ours.get(w) != theirs[w]]
print(f"per-class counts on the shared {py_n} captions: {'identical' if not bad else 'DIFFER for ' + ', '.join(bad[:5])}")
sys.exit(1 if bad else 0)
EOF
