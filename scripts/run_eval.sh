#!/usr/bin/env bash
# Evaluate a checkpoint. Usage: bash scripts/run_eval.sh CHECKPOINT_PATH [CONFIG_PATH] [extra eval.py flags...]
# Without CONFIG_PATH, eval.py reads the config.yaml that train.py saved beside the checkpoint (else the default).
set -euo pipefail
cd "$(dirname "$0")/.."
USAGE="usage: bash scripts/run_eval.sh CHECKPOINT_PATH [CONFIG_PATH] [extra eval.py flags...]"
if [ $# -lt 1 ] || [[ "$1" == --* ]]; then echo "$USAGE" >&2; exit 2; fi
CKPT=$1; shift
[ -f "$CKPT" ] || { echo "checkpoint not found: $CKPT" >&2; echo "$USAGE" >&2; exit 2; }
CONFIG_ARGS=()
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then
  [ -f "$1" ] || { echo "config not found: $1" >&2; echo "$USAGE" >&2; exit 2; }
  CONFIG_ARGS=(--config_path "$1")
  shift
fi
python eval.py "${CONFIG_ARGS[@]}" --checkpoint_path "$CKPT" "$@"
