#!/usr/bin/env bash
# Regenerates suites/classes/*.txt (wnid lists in model output order) from the timm wheel on PyPI
# (Apache-2.0; its notice is kept in suites/classes/LICENSE.timm). Needs only pip and unzip.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
version=${TIMM_VERSION:-1.0.31}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "timm==$version"
whl=$(ls "$tmp"/timm-*.whl)
out="$here/suites/classes"
mkdir -p "$out"
unzip -p "$whl" timm/data/_info/imagenet_synsets.txt >"$out/imagenet1k.txt"
unzip -p "$whl" timm/data/_info/imagenet22k_synsets.txt >"$out/imagenet22k.txt"
unzip -p "$whl" timm/data/_info/imagenet21k_goog_synsets.txt >"$out/imagenet21k_goog.txt"
unzip -p "$whl" "timm-$version.dist-info/LICENSE" >"$out/LICENSE.timm" 2>/dev/null \
  || unzip -p "$whl" "timm-$version.dist-info/licenses/LICENSE" >"$out/LICENSE.timm"
wc -l "$out"/*.txt
