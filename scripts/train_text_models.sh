#!/usr/bin/env bash
# Train the text models with the shipped recipe: each architecture's config.json for a fixed time
# budget (10 minutes of training each), evaluated every epoch, no early stop (--patience 0: the
# shipped models were trained to the end of their budget, as checkpoints/<arch>/config.json records).
#   bash scripts/train_text_models.sh [TEXT] [MINUTES]     (default: data/text.txt, 10)
#   ARCHS="tcn lstm"        train only some
#   CKPT_DIR=checkpoints    write where the shipped models are (default: runs/, which is git-ignored)
#   OVERWRITE=1             replace runs already there (without it a run refuses a folder that holds one)
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,9p' "$0" | cut -c3-; exit 0; fi
cd "$(dirname "$0")/.."
TEXT=${1:-data/text.txt}
MINUTES=${2:-10}
PY=${PYTHON:-.venv/bin/python}
export PYTHONUNBUFFERED=1
$PY exercise1/data_preparation.py --text "$TEXT" --name text
for arch in ${ARCHS:-transformer tcn lstm}; do
  $PY exercise1/$arch/train.py --dataset text --max_minutes "$MINUTES" --patience 0 --threads 2 \
    --ckpt_dir "${CKPT_DIR:-runs}" ${OVERWRITE:+--overwrite}
done
