#!/usr/bin/env bash
# Train the shipped text models: each architecture with its config.json for a fixed time budget
# (default 10 minutes of training each) on a text (default: the course's data/text.txt).
#   bash scripts/train_text_models.sh [TEXT] [MINUTES]      (ARCHS="tcn lstm" to train only some)
set -euo pipefail
cd "$(dirname "$0")/.."
TEXT=${1:-data/text.txt}
MINUTES=${2:-10}
PY=${PYTHON:-.venv/bin/python}
export PYTHONUNBUFFERED=1
$PY exercise1/data_preparation.py --text "$TEXT" --name text
for arch in ${ARCHS:-transformer tcn lstm}; do
  rm -rf "checkpoints/$arch"
  $PY exercise1/$arch/train.py --dataset text --max_minutes "$MINUTES" --threads 2 2>&1 \
    | stdbuf -oL tr "\r" "\n" | grep --line-buffered -v "^train " 
done
