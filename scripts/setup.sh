#!/usr/bin/env bash
# Sets up what shiftbench needs beyond the Rust toolchain, from package registries only:
#   - nasm (Debian package), which libjpeg-turbo's SIMD decoder is assembled with;
#   - the ONNX Runtime C library from the PyPI wheel (scripts/setup-onnxruntime.sh);
#   - with --torch: libtorch's CPU libraries from the PyPI torch wheel (scripts/setup-libtorch.sh,
#     ~520 MB download, only needed for the TorchScript plugin).
# Everything is cached outside the repository and reused when present.
set -euo pipefail
cd "$(dirname "$0")/.."
torch=0
for a in "$@"; do
    case "$a" in
        --torch) torch=1 ;;
        *) echo "setup.sh: unknown argument $a (expected --torch)" >&2; exit 2 ;;
    esac
done
if ! command -v nasm >/dev/null 2>&1; then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    if command -v apt-get >/dev/null 2>&1; then
        echo "setup.sh: installing nasm (apt-get)"
        $sudo apt-get update -qq && $sudo apt-get install -y -qq nasm >/dev/null
    else
        echo "setup.sh: please install nasm (the assembler libjpeg-turbo's SIMD decoder needs) with your package manager" >&2
        exit 1
    fi
fi
./scripts/setup-onnxruntime.sh
if [[ $torch -eq 1 ]]; then
    ./scripts/setup-libtorch.sh
fi
