#!/usr/bin/env bash
# The test command: sets up the native dependencies and the Python test environment (cached),
# builds every workspace member (the harness and all plugins, which the integration tests load as
# real shared libraries; the TorchScript plugin too), then runs every test.
#   ./scripts/test.sh              everything: also downloads libtorch (~520 MB) and the Python test
#                                  environment (torch, sentence-transformers, all-mpnet-base-v2;
#                                  ~4 GB) once, into the cache (scripts/setup-python-env.sh)
#   ./scripts/test.sh --no-torch   everything but the TorchScript plugin
#   ./scripts/test.sh --no-python  without the Python test environment: the tests that need it
#                                  (Python models, the LAIONet builder's reference) skip, saying so
# Flags combine; anything after them goes to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
torch=1
python=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --no-torch) torch=0; shift ;;
        --no-python) python=0; shift ;;
        *) break ;;
    esac
done
if [[ $python -eq 1 ]]; then
    ./scripts/setup-python-env.sh
fi
if [[ $torch -eq 0 ]]; then
    ./scripts/setup.sh
    cargo build --locked
    cargo test --locked "$@"
else
    ./scripts/setup.sh --torch
    cargo build --workspace --locked
    cargo test --workspace --locked "$@"
fi
