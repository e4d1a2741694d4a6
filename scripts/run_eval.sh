#!/usr/bin/env bash
# Evaluate a checkpoint. Usage: bash scripts/run_eval.sh CHECKPOINT_PATH [CONFIG_PATH] [extra eval.py flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  echo "usage: bash scripts/run_eval.sh CHECKPOINT_PATH [CONFIG_PATH] [extra eval.py flags...]" >&2
  exit 2
fi
CKPT=$1; shift
[ -f "$CKPT" ] || { echo "checkpoint not found: $CKPT" >&2; exit 2; }
CONFIG=default_config.yaml
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then CONFIG=$1; shift; fi
python eval.py --config_path "$CONFIG" --checkpoint_path "$CKPT" "$@"
