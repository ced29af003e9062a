#!/usr/bin/env bash
# Default runs on a text of another size: each architecture's DEFAULT run (config.json with its size
# rule, no other settings) and its learning curve as a report result file.
#   bash scripts/chapter_runs.sh [TEXT]          (default data/chapter.txt; ARCHS="lstm" for some)
#   NOVEL_SETTINGS=1 bash scripts/chapter_runs.sh  the same with the size rule off (the novel's settings)
#   SEEDS="0 1 2" bash scripts/chapter_runs.sh     three seeds of each (the spread over seeds); THREADS=1 for one thread
#   KIND=name                                       label of the runs and result files (default size_rule)
#   NAME=name                                       name of the prepared text (default chapter; e.g. mid for a 330k text)
#   SET="training.ema_steps=100 ..."                extra --set entries for every run (a lever under test;
#                                                   one entry per word, no spaces inside a value)
# Writes outputs/<NAME>_runs/<kind>_<arch>/ and report/results/text/<NAME>/<kind>_<arch>.json; with
# SEEDS, outputs/<NAME>_runs/<kind>_<arch>_s<seed>/ and report/results/text/<NAME>_seeds/. Also the text's
# Kneser-Ney ladder, report/results/text/ngram_ladder_<NAME>.json.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,13p' "$0" | cut -c3-; exit 0; fi
cd "$(dirname "$0")/.."
TEXT=${1:-data/chapter.txt}
NAME=${NAME:-chapter}
PY=${PYTHON:-.venv/bin/python}
KIND=${KIND:-size_rule}
EXTRA=()
set -f; SETS=(${SET:-}); set +f  # split on spaces only: no glob expansion of [..] values
if [ -n "${NOVEL_SETTINGS:-}" ]; then KIND=novel_settings; SETS+=(small_text.chars=0); fi
if [ ${#SETS[@]} -gt 0 ]; then EXTRA=(--set "${SETS[@]}"); fi
export PYTHONUNBUFFERED=1
DATA=outputs/${NAME}_data RUNS=outputs/${NAME}_runs RES=report/results/text
$PY exercise1/data_preparation.py --text "$TEXT" --name "$NAME" --data_dir "$DATA"
mkdir -p "$RES/$NAME" "$RES/${NAME}_seeds" "$RUNS"
$PY exercise1/ngram.py --dataset "$NAME" --data_dir "$DATA" --json | tail -n 1 > "$RES/ngram_ladder_$NAME.json"
for arch in ${ARCHS:-lstm tcn transformer}; do
  for seed in ${SEEDS:-0}; do
    name="${KIND}_$arch" result="$RES/$NAME/${KIND}_$arch.json"
    if [ -n "${SEEDS:-}" ]; then name="${KIND}_${arch}_s$seed" result="$RES/${NAME}_seeds/$name.json"; fi
    start=$(date +%s)
    $PY exercise1/$arch/train.py --data_dir "$DATA" --dataset "$NAME" --ckpt_dir "$RUNS" \
      --name "$name" --seed "$seed" --threads "${THREADS:-2}" --overwrite "${EXTRA[@]}" > "$RUNS/$name.log" 2>&1
    wall=$(( $(date +%s) - start ))
    grep -a -e "^size rule" -e "no better held-out loss" -e "annealed and stopped" -e "^done" "$RUNS/$name.log"
    $PY scripts/save_run_curve.py "$RUNS/$name" "$result" \
      --note "$arch, default run on $(basename "$TEXT") ($KIND, seed $seed${SET:+, --set $SET}), $wall s from start to stop including evaluations"
  done
done
