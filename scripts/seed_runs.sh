#!/usr/bin/env bash
# More seeds of a shipped text model's recipe on the prepared novel, at the shipped run's steps: the
# noise of one 10-minute run, measured on the recipe itself.
#   bash scripts/seed_runs.sh ARCH EPOCHS [SEEDS]     e.g. bash scripts/seed_runs.sh tcn 31 "1 2"
#   THREADS=1      threads per run (default 1); the seeds run side by side, one process each
#   DATASET=text   prepared data set under data/ (default text: make train-text prepares it)
# Each run is exercise1/<arch>/train.py with the architecture's config.json as committed, --epochs EPOCHS
# --max_minutes none --patience 0 (the same steps and learning-rate schedule on any host, unlike a time
# budget), written to outputs/novel_seeds/recipe_<arch>_s<seed>/ (replacing a run already there) with its log
# beside it; its curve goes to report/results/text/novel_seeds/recipe_<arch>_s<seed>.json.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,10p' "$0" | cut -c3-; exit 0; fi
if [[ $# -lt 2 ]]; then echo "usage: bash scripts/seed_runs.sh ARCH EPOCHS [SEEDS]   (--help for more)" >&2; exit 2; fi
cd "$(dirname "$0")/.."
ARCH=$1 EPOCHS=$2 SEEDS=${3:-1 2}
if [[ ! -f exercise1/$ARCH/train.py ]]; then echo "unknown architecture '$ARCH': lstm, tcn or transformer" >&2; exit 2; fi
if ! [[ $EPOCHS =~ ^[1-9][0-9]*$ ]]; then echo "EPOCHS must be a whole number of passes >= 1, got '$EPOCHS'" >&2; exit 2; fi
PY=${PYTHON:-.venv/bin/python}
RUNS=outputs/novel_seeds RES=report/results/text/novel_seeds
mkdir -p "$RUNS" "$RES"
export PYTHONUNBUFFERED=1
pids=()
for seed in $SEEDS; do
  name="recipe_${ARCH}_s$seed"
  ( start=$(date +%s)
    $PY exercise1/$ARCH/train.py --dataset "${DATASET:-text}" --epochs "$EPOCHS" --max_minutes none --patience 0 \
      --threads "${THREADS:-1}" --seed "$seed" --name "$name" --ckpt_dir "$RUNS" --overwrite > "$RUNS/$name.log" 2>&1 \
      || { echo "run $name failed; the end of $RUNS/$name.log:" >&2; tail -n 5 "$RUNS/$name.log" >&2; exit 1; }
    wall=$(( $(date +%s) - start ))
    $PY scripts/save_run_curve.py "$RUNS/$name" "$RES/$name.json" \
      --note "$ARCH, shipped recipe (exercise1/$ARCH/config.json) on the prepared data set ${DATASET:-text}, seed $seed, $EPOCHS passes without a time limit (--epochs $EPOCHS --max_minutes none), patience 0, ${THREADS:-1} thread(s), seeds side by side; $wall s from start to stop including evaluations"
  ) &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
