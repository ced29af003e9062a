"""Keep the learning curve of a finished text-model run as a small result file for the report.

    python scripts/save_run_curve.py outputs/runs/lstm_1x512_d0/lstm report/results/text/runs/lstm_1x512_d0.json \
        --note "the rule's configuration without dropout (10 min)"

Reads <run>/metrics.jsonl, metrics.json and config.json; writes the config, the kept (best held-out)
figures, how the run ended (run.json), every evaluation's train and held-out bpc (with the held-out bpc
by kind of character and the statistics of its sample, where the run recorded them) and the samples
of the first and the kept evaluation. Used for runs that are not shipped but are
compared in the report (e.g. a model before dropout was added).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.checkpoint import write_json  # noqa: E402
from utils.errors import UserError, cli  # noqa: E402


@cli
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="folder of a finished run (with metrics.jsonl, metrics.json, config.json)")
    p.add_argument("out", help="JSON file to write")
    p.add_argument("--note", default="", help="what the run is, for the reader of the file")
    p.add_argument("--test_json", default=None,
                   help="output of test.py --json for the run (its last line is kept: generation speed, sample)")
    args = p.parse_args()
    run = Path(args.run)
    files = [run / f for f in ("metrics.jsonl", "metrics.json", "config.json")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise UserError(f"not a finished run: missing {', '.join(missing)}")
    log = [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]
    best = json.loads(files[1].read_text())
    test = None
    if args.test_json:
        lines = [line for line in Path(args.test_json).read_text().splitlines() if line.strip()]
        if not lines:
            raise UserError(f"{args.test_json} is empty: run test.py --json first")
        test = json.loads(lines[-1])
    ended = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else None
    keys = ("epoch", "minutes", "step", "train_bpc", "val_bpc", "val_bpc_by_kind", "sample_statistics")
    write_json({"note": args.note, "config": json.loads(files[2].read_text()), "parameters": best["parameters"],
                "best": best, "ended": ended, "curve": [{k: e[k] for k in keys if k in e} for e in log],
                "samples": {"first": log[0]["sample"], "best": next((e["sample"] for e in log if e["step"] == best["step"]), None)},
                "test": test}, args.out)
    print(f"wrote {args.out}: {len(log)} epochs, best held-out {best['val_bpc']:.3f} bpc at epoch {best['epoch']:g}")


if __name__ == "__main__":
    main()
