#!/usr/bin/env bash
# Data-parallel training started by OpenMPI's mpirun: on GPUs, or with DEVICE_TARGET=CPU on the CPU.
USAGE='usage: bash scripts/run_distribute_train_gpu.sh DEVICE_NUM EPOCH_SIZE LR DATASET [CONFIG_PATH] [PRE_TRAINED]
           [PRE_TRAINED_EPOCH_SIZE] [extra train.py flags...]
  DEVICE_NUM              processes, one per GPU
  EPOCH_SIZE              epochs to train
  LR                      learning rate, used as given (--scale_lr False), as the model zoo'"'"'s launchers do
  DATASET                 coco, voc, other or demo; its paths come from the config or flags (--coco_root ...)
  CONFIG_PATH             YAML config (default: default_config.yaml; "" keeps the default)
  PRE_TRAINED             checkpoint to initialise the network from ("" for none)
  PRE_TRAINED_EPOCH_SIZE  the epoch PRE_TRAINED ended at: training and its lr schedule go on from there [0]
  Flags after these go to train.py, e.g. --resume runs/NAME/last.ckpt (run from the repository root)
Environment: DEVICE_TARGET [GPU] or CPU (one more process, the scheduler; MASTER_ADDR [127.0.0.1] and
MASTER_PORT [8118] say where it listens), MPIRUN_ARGS (more mpirun options, e.g. "--hostfile hosts"),
LOG_DIR [runs/logs/mpirun_<time>]: worker_<rank>.log per rank (and scheduler.log on the CPU); the console
follows rank 0.'
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/distribute_lib.sh
parse_zoo_args 0 "$@"
DEVICE_TARGET=${DEVICE_TARGET:-GPU}
case "$DEVICE_TARGET" in GPU|CPU) ;; *) usage_error "DEVICE_TARGET must be GPU or CPU, got '$DEVICE_TARGET'" ;; esac
command -v mpirun >/dev/null || { echo "error: mpirun not found: install OpenMPI (Debian: apt-get install openmpi-bin)" >&2; exit 2; }

LOG_DIR=${LOG_DIR:-$(default_log_dir mpirun)}
mkdir -p "$LOG_DIR"
export RANK_LOG_DIR=$LOG_DIR
PROCS=$DEVICE_NUM
if [ "$DEVICE_TARGET" = CPU ]; then
    export CPU_SCHEDULER=1 MASTER_ADDR=${MASTER_ADDR:-127.0.0.1} MASTER_PORT=${MASTER_PORT:-8118}
    PROCS=$((DEVICE_NUM + 1))
    MPIRUN_ARGS="--oversubscribe ${MPIRUN_ARGS:-}"  # the scheduler is one process more than there are devices
fi
if [ "$(id -u)" = 0 ]; then  # OpenMPI refuses root without these (containers often run as root)
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
echo "mpirun: $DEVICE_NUM ranks on $DEVICE_TARGET; logs in $LOG_DIR"
: >"$LOG_DIR/worker_0.log"
# OpenMPI ends the whole job when one rank exits non-zero; mpirun then exits non-zero too.
# shellcheck disable=SC2086  # MPIRUN_ARGS is a list of options
setsid mpirun -n "$PROCS" ${MPIRUN_ARGS:-} bash scripts/mpirun_wrapper.sh \
    python train.py --device_target "$DEVICE_TARGET" "${TRAIN_ARGS[@]}" >"$LOG_DIR/mpirun.log" 2>&1 &
MPIRUN=$!
follow_log "$LOG_DIR/worker_0.log" "$MPIRUN"
trap 'kill -TERM "$MPIRUN" 2>/dev/null; sleep 5; kill_groups KILL "$MPIRUN"; kill "$FOLLOW_PID" 2>/dev/null
      echo "interrupted; the job was stopped" >&2; exit 130' INT TERM
wait "$MPIRUN"
rc=$?
wait "$FOLLOW_PID" 2>/dev/null  # the console tail ends a moment after the job
if [ "$rc" != 0 ]; then
    show_failure "$LOG_DIR"
    exit 1
fi
echo "done; logs in $LOG_DIR"
