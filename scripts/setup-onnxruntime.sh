#!/usr/bin/env bash
# Fetches the ONNX Runtime C library that the shiftbench ONNX plugin loads at run time.
#
# ONNX Runtime is taken from the official PyPI wheel (onnxruntime==$ORT_VERSION): the wheel
# ships libonnxruntime.so.$ORT_VERSION, the plain C library. Only the shared libraries are kept,
# in a cache outside the repository:
#
#   ${SHIFTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shiftbench}/onnxruntime-$ORT_VERSION/
#
# The plugin looks there by default, so nothing has to be exported afterwards. Running the script
# again reuses the cached library. Pass --force to download it again.
set -euo pipefail

ORT_VERSION=1.31.1
PY_VERSION=3.11

force=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h|--help)
            sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
            exit 0 ;;
        *) echo "setup-onnxruntime.sh: unknown argument $arg (expected --force or --help)" >&2; exit 2 ;;
    esac
done

cache_root="${SHIFTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shiftbench}"
dest="$cache_root/onnxruntime-$ORT_VERSION"
lib="$dest/libonnxruntime.so.$ORT_VERSION"

if [[ $force -eq 0 && -s "$lib" ]]; then
    echo "ONNX Runtime $ORT_VERSION is already set up: $lib"
    exit 0
fi

case "$(uname -s)" in
    Linux) ;;
    *) echo "setup-onnxruntime.sh: only Linux is supported (this is $(uname -s)); set ORT_DYLIB_PATH to an ONNX Runtime $ORT_VERSION library instead" >&2; exit 1 ;;
esac
arch="$(uname -m)"
case "$arch" in
    x86_64|aarch64) ;;
    *) echo "setup-onnxruntime.sh: no onnxruntime wheel for $arch; set ORT_DYLIB_PATH to an ONNX Runtime $ORT_VERSION library instead" >&2; exit 1 ;;
esac

python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup-onnxruntime.sh: $python not found; it is needed only to run pip download (set PYTHON=...)" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The C library inside the wheel does not depend on the Python version, but pip needs a concrete
# tag to pick a wheel: ask for CPython $PY_VERSION and every manylinux tag onnxruntime has used,
# so the choice does not depend on the local Python or its pip's idea of the platform.
plat_args=()
for p in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014; do
    plat_args+=(--platform "${p}_${arch}")
done
pyver_nodot="${PY_VERSION/./}"
echo "Downloading onnxruntime==$ORT_VERSION (wheel for CPython $PY_VERSION, $arch) ..."
"$python" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version "$PY_VERSION" --implementation cp --abi "cp$pyver_nodot" "${plat_args[@]}" \
    --dest "$tmp" "onnxruntime==$ORT_VERSION"

shopt -s nullglob
wheels=("$tmp"/onnxruntime-"$ORT_VERSION"-*.whl)
shopt -u nullglob
wheel="${wheels[0]:-}"
if [[ -z "$wheel" ]]; then
    echo "setup-onnxruntime.sh: pip did not produce an onnxruntime $ORT_VERSION wheel in $tmp" >&2
    exit 1
fi
echo "Got $(basename "$wheel")"

# A wheel is a zip file; extract only the shared libraries under onnxruntime/capi/ with Python's
# zipfile (unzip may not be installed).
mkdir -p "$tmp/extract"
"$python" - "$wheel" "$tmp/extract" <<'PY'
import os, re, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
pattern = re.compile(r"^onnxruntime/capi/(libonnxruntime[^/]*\.so[^/]*)$")
n = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        m = pattern.match(info.filename)
        if not m:
            continue
        target = os.path.join(out, m.group(1))
        with z.open(info) as src, open(target, "wb") as dst:
            dst.write(src.read())
        n += 1
if n == 0:
    sys.exit("no libonnxruntime*.so* found under onnxruntime/capi/ in " + wheel)
PY

if [[ ! -s "$tmp/extract/libonnxruntime.so.$ORT_VERSION" ]]; then
    echo "setup-onnxruntime.sh: the wheel has no onnxruntime/capi/libonnxruntime.so.$ORT_VERSION; found: $(ls "$tmp/extract")" >&2
    exit 1
fi

mkdir -p "$dest"
# Move into place file by file so a concurrent reader never sees a half-written library.
for f in "$tmp"/extract/*; do
    name="$(basename "$f")"
    mv -f "$f" "$dest/.$name.part"
    mv -f "$dest/.$name.part" "$dest/$name"
done
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$dest/libonnxruntime.so"

echo "ONNX Runtime $ORT_VERSION is set up: $lib"
echo "The shiftbench ONNX plugin finds it there by itself (ORT_DYLIB_PATH or options.ort_library override it)."
