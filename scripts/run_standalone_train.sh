#!/usr/bin/env bash
# Train on one device. Usage: bash scripts/run_standalone_train.sh [CONFIG_PATH] [extra train.py flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=default_config.yaml
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then CONFIG=$1; shift; fi
[ -f "$CONFIG" ] || { echo "config not found: $CONFIG" >&2; exit 2; }
python train.py --config_path "$CONFIG" "$@"
