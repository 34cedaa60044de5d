#!/usr/bin/env bash
# Sets up the CPU part of libtorch 2.13.0 (what tch 0.26 links against) without pytorch.org:
# the library is taken from the PyPI wheels of torch and two small NVIDIA runtime wheels, through
# pip, and cached outside the repository:
#
#   ${SHIFTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shiftbench}/libtorch-2.13.0/
#     torch/include/**                                 C++ headers
#     torch/lib/libtorch_cpu.so, libc10.so, libgomp.so.1
#     torch/lib/libtorch.so -> libtorch_cpu.so, libgomp.so -> libgomp.so.1
#     nvidia/cu13/lib/libcudart.so.13, libcupti.so.13  (libtorch_cpu.so needs them; its rpath
#                                                       finds them here; no GPU is needed)
#
# libtorch_cuda.so is left out: the result runs on the CPU only.
# Then it points the repository's `.libtorch` (ignored by git) at the cached `torch` folder;
# `.cargo/config.toml` sets LIBTORCH to that path, so cargo finds it in any clone where this ran.
#
# Re-running reuses the cache. Needs python3 with pip and network access to PyPI (or a mirror
# configured for pip). About 540 MB is downloaded once; the wheels are deleted after extraction.
set -euo pipefail

TORCH_VERSION=2.13.0
CUDART_SPEC='nvidia-cuda-runtime==13.0.96.*'
CUPTI_SPEC='nvidia-cuda-cupti==13.0.85.*'

repo=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${SHIFTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shiftbench}
dest="$cache_root/libtorch-$TORCH_VERSION"

log() { printf 'setup-libtorch: %s\n' "$*" >&2; }

if [[ -f "$dest/.complete" && -f "$dest/torch/lib/libtorch_cpu.so" ]]; then
  log "using cached $dest"
else
  mkdir -p "$cache_root"
  work=$(mktemp -d "$cache_root/.libtorch-$TORCH_VERSION.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  log "downloading torch==$TORCH_VERSION and the CUDA runtime wheels from PyPI (about 540 MB)..."
  python3 -m pip download --quiet --no-cache-dir --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64 \
    --platform manylinux_2_17_x86_64 \
    --dest "$work/wheels" \
    "torch==$TORCH_VERSION" "$CUDART_SPEC" "$CUPTI_SPEC"
  du -sh "$work/wheels"/*.whl >&2
  log "extracting headers and CPU libraries..."
  python3 - "$work/wheels" "$work/out" <<'PY'
import os, shutil, sys, zipfile
from pathlib import Path
wheels, out = Path(sys.argv[1]), Path(sys.argv[2])
wanted_files = {
    "torch/lib/libtorch_cpu.so", "torch/lib/libc10.so", "torch/lib/libgomp.so.1",
    "nvidia/cu13/lib/libcudart.so.13", "nvidia/cu13/lib/libcupti.so.13",
}
found = set()
for whl in sorted(wheels.glob("*.whl")):
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            name = info.filename
            if info.is_dir():
                continue
            if not (name in wanted_files or name.startswith("torch/include/")):
                continue
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(target, mode or 0o644)
            found.add(name)
missing = sorted(wanted_files - found)
if missing:
    sys.exit("setup-libtorch: the wheels lack " + ", ".join(missing))
if not (out / "torch/include/torch/csrc/api/include/torch/torch.h").is_file():
    sys.exit("setup-libtorch: the torch wheel lacks the C++ headers (torch/include)")
# torch-sys checks LIBTORCH/build-version against the libtorch version it was written for.
for whl in wheels.glob("torch-*.whl"):
    with zipfile.ZipFile(whl) as z:
        for line in z.read("torch/version.py").decode().splitlines():
            if line.startswith("__version__"):
                (out / "torch/build-version").write_text(line.split("=", 1)[1].strip().strip("'\"") + "\n")
if not (out / "torch/build-version").is_file():
    sys.exit("setup-libtorch: no __version__ in torch/version.py")
PY
  ln -s libtorch_cpu.so "$work/out/torch/lib/libtorch.so"
  ln -s libgomp.so.1 "$work/out/torch/lib/libgomp.so"
  rm -rf "$work/wheels"
  touch "$work/out/.complete"
  rm -rf "$dest"
  mv "$work/out" "$dest"
  log "installed in $dest ($(du -sh "$dest" | cut -f1))"
fi

ln -sfn "$dest/torch" "$repo/.libtorch"
log "$repo/.libtorch -> $dest/torch (LIBTORCH, set in .cargo/config.toml)"
