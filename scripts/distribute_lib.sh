# Shared by the run_distribute_train*.sh launchers (sourced, not run): argument checks, one log per rank, and
# stopping the whole job when one rank fails, with that rank's error shown.

usage_error() {  # usage_error MESSAGE: print it and the caller's $USAGE, exit 2
    echo "error: $1" >&2
    echo "$USAGE" >&2
    exit 2
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_number() { [[ "$1" =~ ^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ ]]; }

need_uint() {  # need_uint NAME VALUE MIN
    is_uint "$2" && [ "$2" -ge "$3" ] || usage_error "$1 must be an integer >= $3, got '$2'"
}

need_file() {  # need_file NAME PATH
    [ -f "$2" ] || usage_error "$1 not found: $2"
}

default_log_dir() {  # a fresh folder per job, so that a second job never mixes its logs with the first one's
    echo "runs/logs/$1_$(date +%Y%m%d-%H%M%S)"
}

follow_log() {  # follow_log FILE PID: show FILE on the console while PID lives; FOLLOW_PID is the tail
    tail -n +1 -F --pid="$2" "$1" 2>/dev/null &
    FOLLOW_PID=$!
}

kill_groups() {  # kill_groups SIGNAL PID...: each PID's process group (the launchers start ranks as group leaders)
    local sig=$1 pid
    shift
    for pid in "$@"; do
        kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
    done
}

show_failure() {  # show_failure LOG_DIR: the last lines of each rank log that holds an error, else of every log
    local dir=$1 log shown=0
    for log in $(grep -rlE "^Traceback|^error: |^[A-Za-z_.]*(Error|Exception): " --include='*.log' "$dir" 2>/dev/null | sort); do
        case "$log" in */scheduler.log|*/msrun.log) continue ;; esac
        echo "======== $log (last lines) ========" >&2
        grep -vE "^\[(WARNING|INFO)\]" "$log" | tail -n 25 >&2
        shown=1
    done
    if [ "$shown" = 0 ]; then
        for log in $(find "$dir" -name '*.log' | sort); do
            echo "======== $log (last lines) ========" >&2
            tail -n 15 "$log" >&2
        done
    fi
    echo "the job failed; all logs are in $dir" >&2
}

parse_zoo_args() {  # parse_zoo_args WITH_RANK_TABLE(0|1) "$@": the model zoo's positional form
    # DEVICE_NUM EPOCH_SIZE LR DATASET [RANK_TABLE_FILE] [CONFIG_PATH] [PRE_TRAINED] [PRE_TRAINED_EPOCH_SIZE]
    # [--train.py flags...]. Sets DEVICE_NUM, RANK_TABLE_FILE (absolute) and TRAIN_ARGS (for train.py).
    local with_table=$1 pos=() need=4 i=4
    shift
    while [ $# -gt 0 ] && [[ "$1" != --* ]]; do pos+=("$1"); shift; done
    [ "$with_table" = 1 ] && need=5
    [ ${#pos[@]} -ge $need ] || usage_error "expected at least $need arguments, got ${#pos[@]}"
    [ ${#pos[@]} -le $((need + 3)) ] || usage_error "at most $((need + 3)) arguments come before the train.py flags"
    need_uint DEVICE_NUM "${pos[0]}" 1
    need_uint EPOCH_SIZE "${pos[1]}" 1
    is_number "${pos[2]}" || usage_error "LR must be a number, got '${pos[2]}'"
    case "${pos[3]}" in coco|voc|other|demo) ;; *) usage_error "DATASET must be coco, voc, other or demo, got '${pos[3]}'" ;; esac
    DEVICE_NUM=${pos[0]}
    if [ "$with_table" = 1 ]; then
        need_file RANK_TABLE_FILE "${pos[4]}"
        RANK_TABLE_FILE=$(realpath "${pos[4]}")
        i=5
    fi
    local config=${pos[i]:-} pre=${pos[i + 1]:-} pre_epochs=${pos[i + 2]:-}
    TRAIN_ARGS=()
    if [ -n "$config" ]; then need_file CONFIG_PATH "$config"; TRAIN_ARGS+=(--config_path "$config"); fi
    TRAIN_ARGS+=(--run_distribute True --epoch_size "${pos[1]}" --lr "${pos[2]}" --scale_lr False
                 --dataset "${pos[3]}")
    if [ -n "$pre" ]; then need_file PRE_TRAINED "$pre"; TRAIN_ARGS+=(--pre_trained "$pre"); fi
    if [ -n "$pre_epochs" ]; then
        [ -n "$pre" ] || usage_error "PRE_TRAINED_EPOCH_SIZE needs PRE_TRAINED"
        need_uint PRE_TRAINED_EPOCH_SIZE "$pre_epochs" 0
        TRAIN_ARGS+=(--pre_trained_epoch_size "$pre_epochs")
    fi
    TRAIN_ARGS+=("$@")
}
