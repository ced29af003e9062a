"""Statistics of the samples a run logged at each evaluation: the share of their words that occur in
the training text, and their mean word length, beside the same statistics of the held-out text.

    python scripts/sample_statistics.py checkpoints/lstm checkpoints/tcn checkpoints/transformer \
        --data_dir data --dataset text --out report/results/text/sample_statistics.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exercise1.data import load_text_data  # noqa: E402
from exercise1.learning import sample_statistics, words_of  # noqa: E402
from utils.arguments import add_prepared_data_args  # noqa: E402
from utils.checkpoint import write_json  # noqa: E402
from utils.errors import UserError, cli  # noqa: E402
from utils.helper_functions import decode  # noqa: E402
from utils.paths import repo_path  # noqa: E402


@cli
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders with metrics.jsonl (e.g. checkpoints/lstm)")
    add_prepared_data_args(p)
    args = p.parse_args()
    data = load_text_data(repo_path(args.data_dir) / args.dataset)
    known = set(words_of(decode(data.train, data.alphabet)))
    out = {"dataset": args.dataset, "held_out_text": sample_statistics(decode(data.val, data.alphabet), known), "runs": {}}
    for run in map(repo_path, args.runs):
        log = run / "metrics.jsonl"
        if not log.is_file():
            raise UserError(f"{log} not found: give folders of finished runs")
        rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
        out["runs"][run.name] = [{"epoch": r["epoch"], "val_bpc": r["val_bpc"], **sample_statistics(r["sample"], known)}
                                 for r in rows]
    write_json(out, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
