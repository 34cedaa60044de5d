#!/usr/bin/env bash
# The test command: sets up the native dependencies (cached), builds every workspace member
# (the harness and all plugins, which the integration tests load as real shared libraries;
# the TorchScript plugin too), then runs every test.
#   ./scripts/test.sh            everything, including the TorchScript plugin (downloads libtorch once)
#   ./scripts/test.sh --no-torch everything but the TorchScript plugin
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--no-torch" ]]; then
    shift
    ./scripts/setup.sh
    cargo build --locked
    cargo test --locked "$@"
else
    ./scripts/setup.sh --torch
    cargo build --workspace --locked
    cargo test --workspace --locked "$@"
fi
