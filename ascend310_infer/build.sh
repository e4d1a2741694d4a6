#!/usr/bin/env bash
# Builds the C++ inference program (and, with MindSpore Lite, the ONNX -> Lite MindIR converter).
#
#   bash ascend310_infer/build.sh [MINDSPORE_PATH]
#
# MINDSPORE_PATH (or env MS_LITE_HOME) is what to build against:
#   * a MindSpore Lite tarball (its top folder or its runtime/ folder), or an unpacked mindspore-lite wheel;
#   * the mindspore package folder of an Ascend MindSpore install (the one with include/api/model.h).
# Without it: an installed Ascend MindSpore (found through pip show) if it has the C++ API, else MindSpore Lite 2.0
# from the registry's wheel, fetched once into a cache by fetch_lite.sh.
# Binaries: ascend310_infer/build/main and ascend310_infer/build/convert_onnx (Lite only).
# Env: BUILD_JOBS (parallel compile jobs, default 2), PYTHON (the python whose pip is used).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="$here/build"
die() { echo "build.sh: $*" >&2; exit 1; }

if [[ $# -gt 1 || "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  echo "usage: bash $0 [MINDSPORE_PATH]" >&2
  exit 2
fi

# -- tools ---------------------------------------------------------------------------------------------------------
missing=()
command -v cmake > /dev/null || missing+=(cmake)
command -v make > /dev/null || missing+=(make)
command -v g++ > /dev/null || command -v c++ > /dev/null || missing+=(g++)
[[ ${#missing[@]} -eq 0 ]] || die "missing ${missing[*]}: apt-get install cmake make g++"
opencv_ok=0
for inc in /usr/include/opencv4 /usr/local/include/opencv4 /usr/include /usr/local/include; do
  if [[ -f "$inc/opencv2/core.hpp" && -f "$inc/opencv2/imgproc.hpp" && -f "$inc/opencv2/imgcodecs.hpp" ]]; then
    opencv_ok=1
  fi
done
[[ $opencv_ok -eq 1 ]] || die "OpenCV headers not found: apt-get install libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev"

# -- what to build against -----------------------------------------------------------------------------------------
python_bin="${PYTHON:-$(command -v python3 || command -v python || true)}"

ascend_mindspore() {  # the mindspore package folder of a pip install that ships the C++ API, or nothing
  [[ -n "$python_bin" ]] || return 0
  local loc
  for pkg in mindspore mindspore-ascend; do
    loc="$("$python_bin" -m pip show "$pkg" 2> /dev/null | sed -n 's/^Location: //p' | head -n 1)"
    if [[ -n "$loc" && -f "$loc/mindspore/include/api/model.h" && -f "$loc/mindspore/lib/libmindspore.so" ]]; then
      echo "$loc/mindspore"
      return 0
    fi
  done
}

root="${1:-${MS_LITE_HOME:-}}"
if [[ -n "$root" ]]; then
  [[ -d "$root" ]] || die "MINDSPORE_PATH is not a folder: $root"
  root="$(cd "$root" && pwd)"
  if [[ -f "$root/runtime/include/api/model.h" ]]; then
    root="$root/runtime"                      # Lite tarball top folder
  elif [[ -f "$root/mindspore_lite/include/api/model.h" ]]; then
    root="$root/mindspore_lite"               # unpacked wheel
  fi
  [[ -f "$root/include/api/model.h" ]] || die "no include/api/model.h under $root (not a MindSpore C++ install)"
else
  root="$(ascend_mindspore)"
  if [[ -z "$root" ]]; then
    root="$(bash "$here/fetch_lite.sh")" || die "could not fetch MindSpore Lite (see above)"
  fi
fi
echo "build.sh: building against $root"

# -- build ---------------------------------------------------------------------------------------------------------
cmake -S "$here" -B "$build_dir" -DMINDSPORE_PATH="$root" -DCMAKE_BUILD_TYPE=Release > /dev/null \
  || die "cmake configure failed"
cmake --build "$build_dir" -j "${BUILD_JOBS:-2}" || die "compilation failed"

echo "build.sh: built $build_dir/main"
if [[ -x "$build_dir/convert_onnx" ]]; then
  echo "build.sh: built $build_dir/convert_onnx"
fi
