#!/usr/bin/env bash
# Train the beta-VAEs (beta = 0, 4, 20) with the shipped recipe: the same time budget each.
#   bash scripts/train_vaes.sh [DSET_DIR] [MINUTES]      (default: data, 15 minutes each)
#   CKPT_DIR=checkpoints    write where the shipped models are (default: runs/, which is git-ignored)
#   OVERWRITE=1             replace runs already there (without it a run refuses a folder that holds one)
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,5p' "$0" | cut -c3-; exit 0; fi
cd "$(dirname "$0")/.."
DSET=${1:-data}
MINUTES=${2:-15}
PY=${PYTHON:-.venv/bin/python}
export PYTHONUNBUFFERED=1
for beta in 0 4 20; do
  $PY exercise2/main.py --beta $beta --ckpt_name vae_beta_$beta --dset_dir "$DSET" --dataset CelebA \
    --max_iter 1000000 --max_minutes "$MINUTES" --threads 2 --ckpt_dir "${CKPT_DIR:-runs}" ${OVERWRITE:+--overwrite}
done
