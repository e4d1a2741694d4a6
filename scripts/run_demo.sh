#!/usr/bin/env bash
# The main job on a fresh machine: train on the built-in synthetic set, then evaluate the final checkpoint.
# Usage: bash scripts/run_demo.sh [extra train.py flags...]     (e.g. --epoch_size 3 for a quick look)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_NAME=${RUN_NAME:-demo}
# From scratch, SSD needs a few hundred steps before boxes appear; 20 epochs of the demo set are 600 steps.
python train.py --dataset demo --run_name "$RUN_NAME" --epoch_size 20 --run_eval True --eval_interval 10 "$@"
python eval.py --checkpoint_path "runs/$RUN_NAME/last.ckpt"   # reads runs/$RUN_NAME/config.yaml
