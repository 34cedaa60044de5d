#!/usr/bin/env bash
# Makes a large suite of real photos from the 1,000 shared ones, for the benchmarks:
#
#   bench/large_suite.sh DIR [PER]      prints the suite YAML's path (DIR/large.yaml)
#
# DIR/suite/<wnid>/ links PER (default 20) photos under new names: class i's folder links the
# photos of classes i, i+1, ..., i+PER-1 (mod 1000), so every image is a real photo, decoded like
# any other, and the suite has 1,000 x PER images.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$1
PER=${2:-${PER:-20}}
photos=../shared/data/imagenet-samples
[ -d "$photos" ] || { echo "large_suite: $photos is missing (see ../shared/data/README.md)" >&2; exit 77; }
mapfile -t files < <(ls "$photos" | sort)
n=${#files[@]}
for ((i = 0; i < n; i++)); do
    wnid=${files[i]%%_*}
    mkdir -p "$work/suite/$wnid"
    for ((j = 0; j < PER; j++)); do
        f=${files[(i + j) % n]}
        ln -s "$(realpath "$photos/$f")" "$work/suite/$wnid/$j-$f"
    done
done
printf 'name: large\nsource:\n  image_folder: suite\n' > "$work/large.yaml"
echo "suite: $((n * PER)) images in $n classes" >&2
echo "$work/large.yaml"
