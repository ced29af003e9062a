#!/usr/bin/env bash
# Train the shipped beta-VAEs (beta = 0, 4, 20) with the same time budget each.
#   bash scripts/train_vaes.sh [DSET_DIR] [MINUTES]      (default: data, 20 minutes each)
set -euo pipefail
cd "$(dirname "$0")/.."
DSET=${1:-data}
MINUTES=${2:-20}
PY=${PYTHON:-.venv/bin/python}
export PYTHONUNBUFFERED=1
for beta in 0 4 20; do
  rm -rf "checkpoints/vae_beta_$beta" "outputs/vae_beta_$beta"
  $PY exercise2/main.py --beta $beta --ckpt_name vae_beta_$beta --dset_dir "$DSET" --dataset CelebA \
    --max_iter 1000000 --max_minutes "$MINUTES" --threads 2 2>&1 | stdbuf -oL tr "\r" "\n" | grep --line-buffered -v "^train "
done
