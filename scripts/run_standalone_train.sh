#!/usr/bin/env bash
# Train on one device. Usage: bash scripts/run_standalone_train.sh [CONFIG_PATH] [extra train.py flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
# Without CONFIG_PATH, train.py reads default_config.yaml, or with --resume the run's own config.yaml.
CONFIG_ARGS=()
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then
  [ -f "$1" ] || { echo "config not found: $1" >&2; echo "usage: bash scripts/run_standalone_train.sh [CONFIG_PATH] [extra train.py flags...]" >&2; exit 2; }
  CONFIG_ARGS=(--config_path "$1")
  shift
fi
python train.py "${CONFIG_ARGS[@]}" "$@"
