#!/usr/bin/env bash
# Builds the C++ inference program (and, where the package has the converter, the ONNX -> Lite MindIR converter)
# against MindSpore Lite, the C++ runtime of MindSpore 2.x.
#
#   bash ascend310_infer/build.sh [LITE_PATH]
#
# LITE_PATH (or env MS_LITE_HOME) is the MindSpore Lite package to build against:
#   * on an Ascend 310 host: MindSpore Lite's cloud-side inference package for Ascend, a tarball such as
#     mindspore-lite-2.10.0-linux-x64.tar.gz of the MindSpore version that exported the model, unpacked (its top
#     folder or its runtime/ folder), with CANN installed; it runs export.py's MINDIR as it is;
#   * on the CPU: a Lite tarball, or an unpacked mindspore-lite wheel.
# Without it: MindSpore Lite 2.0 from the registry's wheel (CPU), fetched once into a cache by fetch_lite.sh.
# Binaries: ascend310_infer/build/main and ascend310_infer/build/convert_onnx (where the package has the converter).
# Env: BUILD_JOBS (parallel compile jobs, default 2).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="$here/build"
die() { echo "build.sh: $*" >&2; exit 1; }

if [[ $# -gt 1 || "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  echo "usage: bash $0 [LITE_PATH]" >&2
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
root="${1:-${MS_LITE_HOME:-}}"
if [[ -n "$root" ]]; then
  [[ -d "$root" ]] || die "LITE_PATH is not a folder: $root"
  root="$(cd "$root" && pwd)"
  if [[ -f "$root/runtime/include/api/model.h" ]]; then
    root="$root/runtime"                      # Lite tarball top folder
  elif [[ -f "$root/mindspore_lite/include/api/model.h" ]]; then
    root="$root/mindspore_lite"               # unpacked wheel
  fi
  [[ -f "$root/include/api/model.h" ]] || die "no include/api/model.h under $root (not a MindSpore Lite package)"
else
  root="$(bash "$here/fetch_lite.sh")" || die "could not fetch MindSpore Lite (see above)"
fi
echo "build.sh: building against $root"

# -- build ---------------------------------------------------------------------------------------------------------
cmake -S "$here" -B "$build_dir" -DLITE_PATH="$root" -DCMAKE_BUILD_TYPE=Release > /dev/null \
  || die "cmake configure failed"
cmake --build "$build_dir" -j "${BUILD_JOBS:-2}" || die "compilation failed"

echo "build.sh: built $build_dir/main"
if [[ -x "$build_dir/convert_onnx" ]]; then
  echo "build.sh: built $build_dir/convert_onnx"
fi
