#!/usr/bin/env bash
# Train on one device. Usage: bash scripts/run_standalone_train.sh [CONFIG_PATH] [extra train.py flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-default_config.yaml}
[ -f "$CONFIG" ] || { echo "config not found: $CONFIG" >&2; exit 2; }
shift || true
python train.py --config_path "$CONFIG" "$@"
