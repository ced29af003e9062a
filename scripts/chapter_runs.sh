#!/usr/bin/env bash
# The chapter-size check: each architecture's DEFAULT run (config.json with its size rule, no other
# settings) on a chapter-sized text, and its learning curve as a report result file.
#   bash scripts/chapter_runs.sh [TEXT]          (default data/chapter.txt; ARCHS="lstm" for some)
#   NOVEL_SETTINGS=1 bash scripts/chapter_runs.sh  the same with the size rule off (the novel's settings)
#   SEEDS="0 1 2" bash scripts/chapter_runs.sh     three seeds of each (the spread over seeds); THREADS=1 for one thread
# Writes outputs/chapter_runs/<kind>_<arch>/ and report/results/text/chapter/<kind>_<arch>.json; with
# SEEDS, outputs/chapter_runs/<kind>_<arch>_s<seed>/ and report/results/text/chapter_seeds/.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,8p' "$0" | cut -c3-; exit 0; fi
cd "$(dirname "$0")/.."
TEXT=${1:-data/chapter.txt}
PY=${PYTHON:-.venv/bin/python}
KIND=size_rule
EXTRA=()
if [ -n "${NOVEL_SETTINGS:-}" ]; then KIND=novel_settings; EXTRA=(--set small_text.below_chars=0); fi
export PYTHONUNBUFFERED=1
$PY exercise1/data_preparation.py --text "$TEXT" --name chapter --data_dir outputs/chapter_data
mkdir -p report/results/text/chapter report/results/text/chapter_seeds outputs/chapter_runs
for arch in ${ARCHS:-lstm tcn transformer}; do
  for seed in ${SEEDS:-0}; do
    name="${KIND}_$arch" result="report/results/text/chapter/${KIND}_$arch.json"
    if [ -n "${SEEDS:-}" ]; then name="${KIND}_${arch}_s$seed" result="report/results/text/chapter_seeds/$name.json"; fi
    start=$(date +%s)
    $PY exercise1/$arch/train.py --data_dir outputs/chapter_data --dataset chapter --ckpt_dir outputs/chapter_runs \
      --name "$name" --seed "$seed" --threads "${THREADS:-2}" --overwrite "${EXTRA[@]}" > "outputs/chapter_runs/$name.log" 2>&1
    wall=$(( $(date +%s) - start ))
    grep -a -e "^size rule" -e "stopping early" -e "^done" "outputs/chapter_runs/$name.log"
    $PY scripts/save_run_curve.py "outputs/chapter_runs/$name" "$result" \
      --note "$arch, default run on $(basename "$TEXT") ($KIND, seed $seed), $wall s from start to stop including evaluations"
  done
done
