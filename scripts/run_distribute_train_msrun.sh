#!/usr/bin/env bash
# Data-parallel training with msrun, MindSpore's own launcher, on any device (Ascend, GPU or CPU).
USAGE='usage: bash scripts/run_distribute_train_msrun.sh DEVICE_NUM [CONFIG_PATH] [extra train.py flags...]
  DEVICE_NUM    processes (one per device) on this machine
  CONFIG_PATH   YAML config (default: default_config.yaml, or with --resume the run'"'"'s config.yaml); the flags
                after it go to every rank'"'"'s train.py: --epoch_size 5, --resume runs/NAME/last.ckpt, ...
Several machines: run the same command on each, with these environment variables (defaults in brackets):
  NODE_NUM [1]   machines in the job        NODE_RANK [0]   this machine, 0 .. NODE_NUM-1
  MASTER_ADDR [127.0.0.1]  address of the NODE_RANK 0 machine    MASTER_PORT [8118]  a free port there
MSRUN_ARGS: more msrun options, e.g. "--bind_core True".
Logs: LOG_DIR [runs/logs/msrun_<time>] holds worker_<rank>.log per rank, scheduler.log and msrun.log; the console
follows the first rank of this machine.'
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/distribute_lib.sh

[ $# -ge 1 ] || usage_error "DEVICE_NUM is required"
need_uint DEVICE_NUM "$1" 1
DEVICE_NUM=$1
shift
CONFIG_ARGS=()  # none: train.py reads default_config.yaml, or with --resume the run's own config.yaml
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then
    need_file CONFIG_PATH "$1"
    CONFIG_ARGS=(--config_path "$1")
    shift
fi
NODE_NUM=${NODE_NUM:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-8118}
need_uint NODE_NUM "$NODE_NUM" 1
need_uint NODE_RANK "$NODE_RANK" 0
[ "$NODE_RANK" -lt "$NODE_NUM" ] || usage_error "NODE_RANK ($NODE_RANK) must be below NODE_NUM ($NODE_NUM)"
need_uint MASTER_PORT "$MASTER_PORT" 1024
[ "$MASTER_PORT" -le 65535 ] || usage_error "MASTER_PORT must be at most 65535, got $MASTER_PORT"
command -v msrun >/dev/null || { echo "error: msrun not found: activate the environment that has MindSpore" >&2; exit 2; }

if [ "$NODE_RANK" = 0 ] && (exec 3<>"/dev/tcp/$MASTER_ADDR/$MASTER_PORT") 2>/dev/null; then
    echo "error: MASTER_PORT $MASTER_PORT on $MASTER_ADDR is in use (another job?); choose another one" >&2
    exit 2
fi

LOG_DIR=${LOG_DIR:-$(default_log_dir msrun)}
mkdir -p "$LOG_DIR"
FIRST_RANK=$((NODE_RANK * DEVICE_NUM))
echo "msrun: $DEVICE_NUM of $((NODE_NUM * DEVICE_NUM)) ranks on this machine (node $NODE_RANK of $NODE_NUM)," \
     "scheduler $MASTER_ADDR:$MASTER_PORT; logs in $LOG_DIR"

# msrun starts each worker in its own session, and waits for the scheduler: when a worker fails it kills the
# others on this machine at once, but the scheduler then waits out a 30 s heartbeat before it ends. We watch
# msrun's log for that failure and end the job (scheduler included) right away.
setsid msrun --worker_num=$((NODE_NUM * DEVICE_NUM)) --local_worker_num="$DEVICE_NUM" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" --log_dir="$LOG_DIR" --join=True \
    --tail_worker_log="$FIRST_RANK" ${MSRUN_ARGS:-} \
    train.py "${CONFIG_ARGS[@]}" --run_distribute True "$@" >"$LOG_DIR/msrun.log" 2>&1 &
MSRUN=$!
follow_log "$LOG_DIR/msrun.log" "$MSRUN"  # msrun's own lines and, through it, the first rank's log

stop_job() {  # msrun's group holds msrun, the scheduler and its tail; each worker leads a group of its own
    local children
    children=$(pgrep -P "$MSRUN" 2>/dev/null)
    kill_groups KILL $children
    kill_groups KILL "$MSRUN"
}
trap 'stop_job; kill "${FOLLOW_PID:-}" 2>/dev/null; echo "interrupted; the job was stopped" >&2; exit 130' INT TERM

failed=0
while kill -0 "$MSRUN" 2>/dev/null; do
    # A worker failed (msrun says so), or the scheduler did: then the workers would wait for it for 10 minutes.
    # The last lines only: msrun.log also holds the first rank's whole log.
    if tail -n 200 "$LOG_DIR/msrun.log" 2>/dev/null | grep -q "exit with exception" ||
            tail -n 200 "$LOG_DIR/scheduler.log" 2>/dev/null | grep -qE "^\[ERROR\]|^Traceback"; then
        failed=1
        sleep 2  # msrun kills the other local workers first
        stop_job
        break
    fi
    sleep 1
done
wait "$MSRUN" 2>/dev/null
rc=$?
wait "$FOLLOW_PID" 2>/dev/null  # the console tail ends a moment after the job
if [ "$failed" = 1 ] || [ "$rc" != 0 ]; then
    show_failure "$LOG_DIR"
    if grep -q "is timed out" "$LOG_DIR/scheduler.log" 2>/dev/null; then
        echo "the scheduler lost contact with a rank (scheduler.log says which); a rank on another machine has" \
             "its log there" >&2
    fi
    exit 1
fi
echo "done; logs in $LOG_DIR"
