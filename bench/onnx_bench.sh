#!/usr/bin/env bash
# ONNX benchmark, side by side in one run on the same machine, over the 1,000 imagenet-samples:
#   (a) shiftbench end to end (release build, decode + preprocess + ONNX plugin + logs);
#   (b) the independent Python reference (PIL + numpy + onnxruntime, 2 decode worker processes,
#       the way timm's onnx_validate.py feeds ONNX Runtime);
#   (c) the floor: ONNX Runtime alone on pre-made tensors, best configuration found;
# plus shiftbench's decode+preprocess CPU cost alone, peak memory, and the per-image top-1
# agreement of (a) with (b).
#
#     ./scripts/setup-onnxruntime.sh && python3 -m pip install -r bench/requirements.txt
#     ./bench/onnx_bench.sh [models...]     (default: squeezenet1.1-fp16 mobilenetv2-12-int8)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${SHIFTBENCH_DATA:-../shared/data}
models=("$@"); [[ ${#models[@]} -gt 0 ]] || models=(squeezenet1.1-fp16 mobilenetv2-12-int8)
batch=${BATCH:-32}
out=${OUT:-/tmp/shiftbench-bench}
mkdir -p "$out"
cargo build --release --workspace -q
cargo build --release -q --example prep_cost
bin=target/release/shiftbench
time_cmd() { # label, command... : prints wall s, CPU s, peak RSS MiB
    local label=$1; shift
    /usr/bin/time -f "%e %U %S %M" -o "$out/time.txt" "$@" >"$out/$label.stdout" 2>"$out/$label.stderr"
    read -r wall user sys rss <"$out/time.txt"
    echo "$wall $(python3 -c "print($user+$sys)") $((rss / 1024))"
}
printf '%-22s %-34s %9s %10s %12s %9s\n' model measurement "images/s" "wall s" "CPU ms/img" "peak MiB"
for m in "${models[@]}"; do
    yaml=plugins/onnx/examples/$m.yaml
    read -r w c r < <(time_cmd "$m-shiftbench" "$bin" run --suite suites/imagenet-samples.yaml --model "$yaml" \
        --out "$out/$m" --fresh --batch "$batch")
    printf '%-22s %-34s %9.1f %10.2f %12.2f %9s\n' "$m" "(a) shiftbench end to end" "$(python3 -c "print(1000/$w)")" "$w" "$(python3 -c "print($c)")" "$r"
    a_ips=$(python3 -c "print(1000/$w)")
    read -r w c r < <(time_cmd "$m-reference" python3 bench/reference_onnx.py --model "$m" --workers 2 --batch "$batch" \
        --data "$data" "$out/$m-reference.csv")
    printf '%-22s %-34s %9.1f %10.2f %12.2f %9s\n' "$m" "(b) Python reference, 2 workers" "$(python3 -c "print(1000/$w)")" "$w" "$(python3 -c "print($c)")" "$r"
    b_ips=$(python3 -c "print(1000/$w)")
    grep -E "decode\+preprocess" "$out/$m-reference.stdout" | sed "s/^ */$m   (b) /"
    ./target/release/examples/prep_cost "$yaml" "$data/imagenet-samples" | sed "s/^/$m   (a) /"
    python3 bench/model_only.py "$data/models/$m.onnx" >"$out/$m-floor.txt"
    best=$(head -1 "$out/$m-floor.txt")
    echo "$m   (c) floor: $best"
    c_ips=$(echo "$best" | awk '{print $2}')
    python3 -c "print(f'$m   ratios: (a)/(b) = {$a_ips/$b_ips:.2f}x, (c)/(a) = {$c_ips/$a_ips:.2f}x')"
    python3 bench/agreement.py "$out/$m/predictions/$m"__imagenet-samples.jsonl "$out/$m-reference.csv" | sed "s/^/$m   /"
done
