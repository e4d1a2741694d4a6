#!/usr/bin/env bash
# Data-parallel training on Ascend with a rank table (HCCL): one train.py per device, all from this folder.
USAGE='usage: bash scripts/run_distribute_train.sh DEVICE_NUM EPOCH_SIZE LR DATASET RANK_TABLE_FILE [CONFIG_PATH]
           [PRE_TRAINED] [PRE_TRAINED_EPOCH_SIZE] [extra train.py flags...]
  DEVICE_NUM              processes, one per NPU (devices 0 .. DEVICE_NUM-1 of this machine)
  EPOCH_SIZE              epochs to train
  LR                      learning rate, used as given (--scale_lr False), as the model zoo'"'"'s launchers do
  DATASET                 coco, voc, other or demo; its paths come from the config or flags (--coco_root ...)
  RANK_TABLE_FILE         the HCCL rank table (JSON) of these devices
  CONFIG_PATH             YAML config (default: default_config.yaml; "" keeps the default)
  PRE_TRAINED             checkpoint to initialise the network from ("" for none)
  PRE_TRAINED_EPOCH_SIZE  the epoch PRE_TRAINED ended at: training and its lr schedule go on from there [0]
  Flags after these go to train.py, e.g. --resume runs/NAME/last.ckpt (run from the repository root)
Environment: RANK_SIZE [DEVICE_NUM] and RANK_START [0] for a rank table that spans several machines;
LOG_DIR [runs/logs/ranktable_<time>]: worker_<rank>.log per rank; the console follows the first rank.'
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/distribute_lib.sh
parse_zoo_args 1 "$@"
RANK_SIZE=${RANK_SIZE:-$DEVICE_NUM}
RANK_START=${RANK_START:-0}
need_uint RANK_SIZE "$RANK_SIZE" "$DEVICE_NUM"
need_uint RANK_START "$RANK_START" 0

LOG_DIR=${LOG_DIR:-$(default_log_dir ranktable)}
mkdir -p "$LOG_DIR"
export RANK_TABLE_FILE RANK_SIZE
echo "rank table $RANK_TABLE_FILE: ranks $RANK_START .. $((RANK_START + DEVICE_NUM - 1)) of $RANK_SIZE; logs in $LOG_DIR"

PIDS=()
stop_all() { kill_groups KILL "${PIDS[@]}"; kill "${FOLLOW_PID:-}" 2>/dev/null; }
trap 'stop_all; echo "interrupted; the job was stopped" >&2; exit 130' INT TERM
for ((i = 0; i < DEVICE_NUM; i++)); do
    rank=$((RANK_START + i))
    # setsid: each rank leads its own process group, so that one kill takes it with any process it started
    RANK_ID=$rank DEVICE_ID=$i setsid python train.py --device_target Ascend "${TRAIN_ARGS[@]}" \
        >"$LOG_DIR/worker_$rank.log" 2>&1 &
    PIDS+=($!)
done
follow_log "$LOG_DIR/worker_$RANK_START.log" "${PIDS[0]}"

# Wait for all; the first rank that fails ends the job: the others would wait for it in a collective forever.
running=${#PIDS[@]}
failed=""
declare -A done_pids=()
while [ "$running" -gt 0 ] && [ -z "$failed" ]; do
    for idx in "${!PIDS[@]}"; do
        pid=${PIDS[$idx]}
        [ -n "${done_pids[$pid]:-}" ] && continue
        kill -0 "$pid" 2>/dev/null && continue
        wait "$pid"
        rc=$?
        done_pids[$pid]=1
        running=$((running - 1))
        if [ "$rc" != 0 ]; then failed="rank $((RANK_START + idx)) (exit code $rc)"; break; fi
    done
    sleep 1
done
if [ -n "$failed" ]; then
    echo "$failed failed; stopping the other ranks" >&2
    stop_all
    wait "$FOLLOW_PID" 2>/dev/null
    show_failure "$LOG_DIR"
    exit 1
fi
wait "$FOLLOW_PID" 2>/dev/null  # the console tail ends a moment after the job
echo "done; logs in $LOG_DIR"
