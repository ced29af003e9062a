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
#   RES=dir                                         where result files go (default outputs/results/text;
#                                                   the report's runs used RES=report/results/text)
# Writes outputs/<NAME>_runs/<kind>_<arch>/ and RES/<NAME>/<kind>_<arch>.json; with SEEDS,
# outputs/<NAME>_runs/<kind>_<arch>_s<seed>/ and RES/<NAME>_seeds/. Also the text's Kneser-Ney ladder,
# RES/ngram_ladder_<NAME>.json. A result file the report reads (under report/) is never replaced
# unless FORCE=1: the script stops before training and names it.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,16p' "$0" | cut -c3-; exit 0; fi
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
DATA=outputs/${NAME}_data RUNS=outputs/${NAME}_runs RES=${RES:-outputs/results/text}
result_of() {  # result_of ARCH SEED: the result file of one run
  if [ -n "${SEEDS:-}" ]; then echo "$RES/${NAME}_seeds/${KIND}_${1}_s$2.json"; else echo "$RES/$NAME/${KIND}_$1.json"; fi
}
shipped() {  # shipped FILE: an existing file under report/ (the report reads it), and no FORCE=1
  [[ -e "$1" && "${FORCE:-0}" != 1 ]] || return 1
  local dir; dir=$(cd "$(dirname "$1")" && pwd -P)
  [[ "$dir/" == "$(pwd -P)/report/"* ]]
}
for arch in ${ARCHS:-lstm tcn transformer}; do
  for seed in ${SEEDS:-0}; do
    if shipped "$(result_of "$arch" "$seed")"; then
      echo "error: $(result_of "$arch" "$seed") exists and the report reads it; choose another KIND=..." \
           "(or RES=outputs/results/text), or set FORCE=1 to replace it" >&2; exit 2
    fi
  done
done
$PY exercise1/data_preparation.py --text "$TEXT" --name "$NAME" --data_dir "$DATA"
mkdir -p "$RES/$NAME" "$RES/${NAME}_seeds" "$RUNS"
ladder="$RES/ngram_ladder_$NAME.json"
$PY exercise1/ngram.py --dataset "$NAME" --data_dir "$DATA" > /dev/null  # writes $DATA/$NAME/ngram_ladder.json
if shipped "$ladder" && ! $PY - "$ladder" "$DATA/$NAME/ngram_ladder.json" <<'PYEOF'
import json, sys  # the same ladder (all but the seconds it took)? then the report's file stays as it is
a, b = (json.load(open(p, encoding="utf-8")) for p in sys.argv[1:])
sys.exit(0 if {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"} else 1)
PYEOF
then
  echo "error: $ladder holds another text's ladder than $TEXT gives (NAME=$NAME); choose another NAME=...," \
       "or set FORCE=1 to replace it" >&2; exit 2
fi
shipped "$ladder" || cp "$DATA/$NAME/ngram_ladder.json" "$ladder"
for arch in ${ARCHS:-lstm tcn transformer}; do
  for seed in ${SEEDS:-0}; do
    name="${KIND}_$arch" result=$(result_of "$arch" "$seed")
    if [ -n "${SEEDS:-}" ]; then name="${KIND}_${arch}_s$seed"; fi
    start=$(date +%s)
    $PY exercise1/$arch/train.py --data_dir "$DATA" --dataset "$NAME" --ckpt_dir "$RUNS" \
      --name "$name" --seed "$seed" --threads "${THREADS:-2}" --overwrite "${EXTRA[@]}" > "$RUNS/$name.log" 2>&1
    wall=$(( $(date +%s) - start ))
    grep -a -e "^size rule" -e "no better held-out loss" -e "annealed and stopped" -e "^done" "$RUNS/$name.log"
    $PY scripts/save_run_curve.py "$RUNS/$name" "$result" \
      --note "$arch, default run on $(basename "$TEXT") ($KIND, seed $seed${SET:+, --set $SET}), $wall s from start to stop including evaluations"
  done
done
