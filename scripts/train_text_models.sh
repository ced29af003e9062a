#!/usr/bin/env bash
# Train the text models with the shipped recipe: each architecture's config.json for a fixed time
# budget (10 minutes of training each) or a fixed number of passes, evaluated every epoch, no early
# stop (--patience 0), as checkpoints/<arch>/config.json records for each shipped model.
#   bash scripts/train_text_models.sh [TEXT] [MINUTES]     (default: data/text.txt, 10)
#   ARCHS="tcn lstm"        train only some
#   CKPT_DIR=checkpoints    write where the shipped models are (default: runs/, which is git-ignored)
#   OVERWRITE=1             replace runs already there (without it a run refuses a folder that holds one)
#   EPOCHS=26               train that many passes without a time limit instead (the same steps and
#                           learning-rate schedule on any host; ARCHS=lstm EPOCHS=26 retrains the shipped LSTM)
#   THREADS=1               CPU threads per run (default 2)
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,11p' "$0" | cut -c3-; exit 0; fi
cd "$(dirname "$0")/.."
TEXT=${1:-data/text.txt}
MINUTES=${2:-10}
if [[ -n "${EPOCHS:-}" ]]; then
  if ! [[ $EPOCHS =~ ^[1-9][0-9]*$ ]]; then echo "EPOCHS must be a whole number of passes >= 1, got '$EPOCHS'" >&2; exit 2; fi
  BUDGET=(--epochs "$EPOCHS" --max_minutes none)
else
  BUDGET=(--max_minutes "$MINUTES")
fi
THREADS=${THREADS:-2}
if ! [[ $THREADS =~ ^[1-9][0-9]*$ ]]; then echo "THREADS must be a whole number >= 1, got '$THREADS'" >&2; exit 2; fi
PY=${PYTHON:-.venv/bin/python}
export PYTHONUNBUFFERED=1
$PY exercise1/data_preparation.py --text "$TEXT" --name text
for arch in ${ARCHS:-transformer tcn lstm}; do
  $PY exercise1/$arch/train.py --dataset text "${BUDGET[@]}" --patience 0 --threads "$THREADS" \
    --ckpt_dir "${CKPT_DIR:-runs}" ${OVERWRITE:+--overwrite}
done
