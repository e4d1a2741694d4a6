#!/usr/bin/env bash
# Fetches the C++ part of MindSpore Lite 2.0 from the registry's mindspore-lite wheel into a cache and prints the
# folder to build against (its include/api and lib). Messages go to stderr, the folder to stdout.
#
#   bash ascend310_infer/fetch_lite.sh
#
# Cache: ${FDET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fdet}/mindspore_lite-2.0.0 (about 300 MB). A complete cache
# is reused; the wheel is unpacked into a temporary sibling that is renamed into place only when complete.
# Why the wheel: it is the only Lite on the registry, and it is a cp37 wheel, but its C++ libraries do not need
# Python, so any Python's pip can download it (--python-version 3.7) and we only unpack headers and libraries.
set -euo pipefail

VERSION=2.0.0
cache_root="${FDET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fdet}"
cache="$cache_root/mindspore_lite-$VERSION"
stamp="$cache/.complete"
# What main and convert_onnx load: the libraries they link (readelf -d) and the CPU executor plugin that the runtime
# dlopens when it builds a model (libmsplugin-ge-litert_python.so; without it Build fails with "Create session
# failed"). The wheel's Ascend and TensorRT plugins are left out.
LIBS=(libmindspore-extendrt_python.so libmsplugin-ge-litert_python.so libmindspore_converter.so
      libmslite_converter_plugin.so libmindspore_core.so libmindspore_glog.so.0 libdnnl.so.2
      libopencv_core.so.4.5 libopencv_imgcodecs.so.4.5 libopencv_imgproc.so.4.5)

die() { echo "fetch_lite.sh: $*" >&2; exit 1; }

complete() {  # the stamp, and every library (a cache made by an older list of LIBS is refetched)
  [[ -f "$stamp" ]] || return 1
  local lib
  for lib in "${LIBS[@]}"; do
    [[ -f "$cache/mindspore_lite/lib/$lib" ]] || return 1
  done
}

if complete; then
  echo "fetch_lite.sh: reusing $cache" >&2
  echo "$cache/mindspore_lite"
  exit 0
fi

python_bin="${PYTHON:-}"
if [[ -z "$python_bin" ]]; then
  python_bin="$(command -v python3 || command -v python || true)"
fi
[[ -n "$python_bin" ]] || die "no python3 found (needed for pip download); set PYTHON=/path/to/python"
"$python_bin" -m pip --version > /dev/null 2>&1 || die "$python_bin has no pip (apt-get install python3-pip)"

mkdir -p "$cache_root"
# Leftovers of runs killed with SIGKILL (the trap below cleans up every other exit).
find "$cache_root" -maxdepth 1 -name ".mindspore_lite-$VERSION.tmp.*" -mmin +1440 -exec rm -rf {} + 2> /dev/null || true
tmp="$(mktemp -d "$cache_root/.mindspore_lite-$VERSION.tmp.XXXXXX")"
chmod 755 "$tmp"  # mktemp makes it private; the cache is read by whoever builds
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

echo "fetch_lite.sh: downloading mindspore-lite==$VERSION (x86_64 wheel, ~170 MB) ..." >&2
# --platform must name x86_64: the registry's "none-any" mindspore-lite 2.0.0 wheel is in fact aarch64.
"$python_bin" -m pip download --no-deps --python-version 3.7 --only-binary=:all: \
  --platform manylinux2014_x86_64 "mindspore-lite==$VERSION" -d "$tmp/wheel" >&2 \
  || die "pip download of mindspore-lite==$VERSION failed (is the package index reachable?)"
wheel="$(ls "$tmp"/wheel/mindspore_lite-"$VERSION"-*x86_64*.whl 2> /dev/null | head -n 1)"
[[ -n "$wheel" ]] || die "pip did not fetch an x86_64 mindspore-lite wheel: $(ls "$tmp/wheel")"

echo "fetch_lite.sh: unpacking headers and ${#LIBS[@]} libraries ..." >&2
"$python_bin" - "$wheel" "$tmp" "${LIBS[@]}" <<'EOF' || die "cannot unpack $wheel"
import os, sys, zipfile

wheel, dest, libs = sys.argv[1], sys.argv[2], sys.argv[3:]
wanted = {"mindspore_lite/lib/" + name for name in libs}
with zipfile.ZipFile(wheel) as zf:
    names = [n for n in zf.namelist()
             if (n.startswith("mindspore_lite/include/") and not n.endswith("/")) or n in wanted]
    missing = wanted - set(names)
    if missing:
        sys.exit("the wheel lacks " + ", ".join(sorted(missing)))
    for name in names:
        zf.extract(name, dest)
EOF
[[ -f "$tmp/mindspore_lite/include/api/model.h" ]] || die "the wheel has no include/api/model.h"
rm -rf "$tmp/wheel"
echo "mindspore-lite $VERSION from $(basename "$wheel")" > "$tmp/.complete"

# An unfinished cache cannot exist under the final name (only whole folders are renamed there), but an older or
# hand-made one might: replace it. If another build won the race, its complete cache is kept and ours dropped.
if [[ -e "$cache" ]] && ! complete; then
  rm -rf "$cache"
fi
if ! mv -T "$tmp" "$cache" 2> /dev/null; then
  complete || die "cannot move the unpacked wheel to $cache"
fi
trap - EXIT
rm -rf "$tmp"
echo "fetch_lite.sh: cached in $cache" >&2
echo "$cache/mindspore_lite"
