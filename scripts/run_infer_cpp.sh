#!/usr/bin/env bash
# C++ inference on a folder of images, then the COCO mAP of its results.
#
#   bash scripts/run_infer_cpp.sh MODEL_PATH DATA_PATH [DEVICE_TYPE] [DEVICE_ID] [GT_JSON]
#
# MODEL_PATH   from export.py: NAME.mindir or NAME.onnx (NAME.json, the sidecar with img_mean/img_std, beside it)
# DATA_PATH    folder of images, e.g. /data/coco2017/val2017
# DEVICE_TYPE  CPU (default) | Ascend310
# DEVICE_ID    default 0 (Ascend310)
# GT_JSON      COCO annotations; default DATA_PATH/../annotations/instances_<basename of DATA_PATH>.json
#
# CPU (MindSpore Lite 2.0, which cannot read a MindSpore 2.x MINDIR): NAME.onnx (given, or beside NAME.mindir) is
# converted once to NAME_lite.mindir by ascend310_infer/build/convert_onnx (again when the ONNX is newer).
# Ascend310: main runs NAME.mindir itself, on MindSpore Lite's cloud-side inference package for Ascend (of the
# MindSpore version that exported the model, with CANN installed): give its unpacked folder as MS_LITE_HOME.
#
# Everything of one run goes to ascend310_infer/runs/<date-time>/ (or $INFER_RUN_DIR): build.log, convert.log,
# infer.log, acc.log, result_Files/ (<stem>_0.bin boxes, <stem>_1.bin scores) and time_Result/.
# Env: PYTHON (default python), INFER_THREADS (CPU threads, default 2), MS_LITE_HOME (passed on to build.sh).
set -euo pipefail

usage() {
  echo "usage: bash scripts/run_infer_cpp.sh MODEL_PATH DATA_PATH [DEVICE_TYPE] [DEVICE_ID] [GT_JSON]" >&2
  echo "       DEVICE_TYPE: CPU (default) or Ascend310; DEVICE_ID: default 0" >&2
  exit 2
}
die() { echo "run_infer_cpp.sh: $1" >&2; exit "${2:-1}"; }  # die MESSAGE [EXIT_CODE]
abspath() { if [[ "$1" = /* ]]; then echo "$1"; else echo "$PWD/$1"; fi; }
show_log() {  # the end of a log after a failure
  echo "---- last lines of $1" >&2
  tail -n 25 "$1" >&2
  echo "----" >&2
}

[[ $# -ge 2 && $# -le 5 ]] || usage
model="$(abspath "$1")"
data="$(abspath "${2%/}")"
device="${3:-CPU}"
device_id="${4:-0}"
anno="$(abspath "${5:-$(dirname "$data")/annotations/instances_$(basename "$data").json}")"

# On the CPU, NAME.mindir may be absent when NAME.onnx is there (the ONNX is what gets used).
if [[ ! -f "$model" && ! ( "$device" == "CPU" && "$model" == *.mindir && -f "${model%.mindir}.onnx" ) ]]; then
  die "model not found: $model" 2
fi
[[ -d "$data" ]] || die "image folder not found: $data" 2
[[ "$device" == "CPU" || "$device" == "Ascend310" ]] || die "DEVICE_TYPE must be CPU or Ascend310, got $device" 2
[[ "$device_id" =~ ^[0-9]+$ ]] || die "DEVICE_ID must be a number, got $device_id" 2
[[ -f "$anno" ]] || die "annotation file not found: $anno (give GT_JSON)" 2

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
infer_dir="$repo/ascend310_infer"
python_bin="${PYTHON:-python}"
run_dir="${INFER_RUN_DIR:-$infer_dir/runs/$(date +%Y%m%d-%H%M%S)}"
[[ -z "${INFER_RUN_DIR:-}" && -e "$run_dir" ]] && run_dir="$run_dir-$$"
mkdir -p "$run_dir"
run_dir="$(cd "$run_dir" && pwd)"
echo "run folder: $run_dir"

# -- build -----------------------------------------------------------------------------------------------------------
echo "building (log: $run_dir/build.log) ..."
if ! bash "$infer_dir/build.sh" &> "$run_dir/build.log"; then
  show_log "$run_dir/build.log"
  die "build failed"
fi

# -- the model file main reads, and the sidecar ----------------------------------------------------------------------
if [[ "$device" == "CPU" ]]; then
  case "$model" in
    *_lite.mindir) lite_model="$model"; stem="${model%_lite.mindir}"; onnx="" ;;
    *.onnx) onnx="$model"; stem="${model%.onnx}"; lite_model="${stem}_lite.mindir" ;;
    *.mindir)
      stem="${model%.mindir}"; onnx="$stem.onnx"; lite_model="${stem}_lite.mindir"
      [[ -f "$onnx" ]] || die "MindSpore Lite (CPU) cannot read a MindSpore MINDIR; it needs $onnx: run
  python export.py --checkpoint_path CKPT --file_format ONNX --file_name $stem" 2 ;;
    *) die "MODEL_PATH must end in .mindir or .onnx: $model" 2 ;;
  esac
  [[ -f "${onnx:-$lite_model}" ]] || die "model not found: ${onnx:-$lite_model}" 2
  if [[ -n "$onnx" ]]; then
    if [[ -f "$lite_model" && ! "$onnx" -nt "$lite_model" ]]; then
      echo "reusing $lite_model"
    else
      echo "converting $onnx -> $lite_model (log: $run_dir/convert.log) ..."
      # Lite 2.0 misreads a Resize without a mode and Convs that share a weight: src/deploy/lite_onnx.py fixes both.
      prepared="$run_dir/for_lite.onnx"
      if ! (cd "$repo" && "$python_bin" ascend310_infer/tools/lite_onnx.py "$onnx" "$prepared") &> "$run_dir/convert.log" \
          || ! GLOG_v="${GLOG_v:-3}" "$infer_dir/build/convert_onnx" "$prepared" "$lite_model" &>> "$run_dir/convert.log"; then
        rm -f "$prepared"
        show_log "$run_dir/convert.log"
        die "conversion failed"
      fi
      rm -f "$prepared"
    fi
  fi
  main_model="$lite_model"
else
  # MindSpore Lite's Ascend package (MS_LITE_HOME) runs export.py's MINDIR as it is.
  [[ "$model" == *.mindir ]] || die "$device runs a MINDIR from export.py, got $model" 2
  [[ -f "$model" ]] || die "model not found: $model" 2
  stem="${model%.mindir}"
  main_model="$model"
fi

sidecar="$stem.json"
card_flags=()
if [[ -f "$sidecar" ]]; then
  card_flags=(--model_card "$sidecar")  # class names, category ids and NMS settings for postprocess.py
  read_list() {  # a list of numbers from the sidecar, comma-separated, each as Python's repr (round-trips exactly)
    "$python_bin" -c 'import json, sys; print(",".join(repr(float(v)) for v in json.load(open(sys.argv[1]))[sys.argv[2]]))' \
      "$sidecar" "$1"
  }
  mean="$(read_list img_mean)" || die "cannot read img_mean from $sidecar"
  std="$(read_list img_std)" || die "cannot read img_std from $sidecar"
else
  mean="123.675,116.28,103.53"
  std="58.395,57.12,57.375"
  echo "warning: no $sidecar (written by export.py); using the default mean $mean and std $std" >&2
fi

# -- inference ---------------------------------------------------------------------------------------------------------
echo "inference of $main_model on $device (log: $run_dir/infer.log) ..."
if ! GLOG_v="${GLOG_v:-3}" "$infer_dir/build/main" --mindir_path="$main_model" --dataset_path="$data" \
    --device_type="$device" --device_id="$device_id" --result_path="$run_dir/result_Files" \
    --time_path="$run_dir/time_Result" --mean="$mean" --std="$std" --threads="${INFER_THREADS:-2}" \
    &> "$run_dir/infer.log"; then
  show_log "$run_dir/infer.log"
  die "inference failed"
fi
grep -E "average time|unreadable" "$run_dir/infer.log" || true

# -- accuracy ----------------------------------------------------------------------------------------------------------
echo "mAP (log: $run_dir/acc.log) ..."
if ! (cd "$repo" && "$python_bin" postprocess.py --result_path "$run_dir/result_Files" --img_path "$data" \
    --gt_json "$anno" "${card_flags[@]}") &> "$run_dir/acc.log"; then
  show_log "$run_dir/acc.log"
  die "postprocess failed"
fi
tail -n 20 "$run_dir/acc.log"
echo "results in $run_dir"
