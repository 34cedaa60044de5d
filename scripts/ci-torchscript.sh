#!/usr/bin/env bash
# CI job for the TorchScript plugin: fetch libtorch 2.13.0 (CPU libraries from the PyPI wheels,
# cached in ${SHIFTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shiftbench}; cache that folder
# between runs to skip the ~540 MB download), then build and test the plugin. The tests read the
# real models from ../shared/data and skip, saying so, where it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/setup-libtorch.sh
echo "ci-torchscript: libtorch ready after $((SECONDS - start)) s"
cargo build -p shiftbench-torchscript-plugin
echo "ci-torchscript: built after $((SECONDS - start)) s"
cargo test -p shiftbench-torchscript-plugin
echo "ci-torchscript: done in $((SECONDS - start)) s"
