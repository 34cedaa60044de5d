#!/usr/bin/env bash
# The test command: builds every default workspace member (the harness and all plugins, which
# the integration tests load as real shared libraries), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# ONNX Runtime C library from PyPI, cached outside the repo (the ONNX plugin tests need it).
./scripts/setup-onnxruntime.sh
cargo build --workspace --locked
cargo test --workspace --locked "$@"
