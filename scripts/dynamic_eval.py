"""Separate, labelled rows: each text model with dynamic evaluation (test-time adaptation).

    python scripts/dynamic_eval.py outputs/chapter_runs/cheapdrop_{lstm,tcn}_s0 \
        --data_dir outputs/chapter_data --dataset chapter --out report/results/text/dynamic_chapter.json

Dynamic evaluation (Krause et al. 2018, `exercise1.evaluation.dynamic_losses`): the held-out stream is
read once, in order; each segment is scored first and then the model takes one SGD step on it (decaying
towards the trained weights), so later segments are predicted by a model adapted to the text read so
far. For each run folder (or checkpoint file): the plain sequential score (no adaptation; the model's
own figure, as `evaluate` gives it with one lane) and the adapted score for every (learning rate, decay)
of the grid. The setting is not tuned on what it is scored on: the held-out stream is cut in two halves,
each half scored with the setting that is best on the other (every setting reads the whole stream, so
both halves of one setting come from one pass). These are not the models' figures: the models' own rows
stay the plain ones.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from exercise1.data import load_text_data  # noqa: E402
from exercise1.evaluation import LN2, dynamic_losses, evaluate  # noqa: E402
from exercise1.models import load_model_file  # noqa: E402
from utils.arguments import add_prepared_data_args, non_negative_float, positive_int  # noqa: E402
from utils.checkpoint import write_json  # noqa: E402
from utils.errors import UserError, cli  # noqa: E402
from utils.paths import repo_path  # noqa: E402
from utils.progress import progress  # noqa: E402


def cross_fitted(losses: dict, n: int) -> dict:
    """`losses`: setting -> per-character nats of one pass. Each half of the stream scored with the
    setting best on the other half: {bpc, settings (the two chosen)}."""
    halves = (slice(0, n // 2), slice(n // 2, n))
    total, chosen = 0.0, []
    for score, fit in (halves, halves[::-1]):
        best = min(losses, key=lambda s: losses[s][fit].mean().item())
        chosen.append({"lr": best[0], "decay": best[1]})
        total += losses[best][score].sum().item()
    return {"bpc": total / n / LN2, "settings": chosen}


@cli
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders or checkpoint files")
    add_prepared_data_args(p)
    p.add_argument("--lrs", type=non_negative_float, nargs="+", default=[0.003, 0.01, 0.03, 0.1],
                   help="SGD learning rates of the grid (default: %(default)s)")
    p.add_argument("--decays", type=non_negative_float, nargs="+", default=[0.0, 0.01],
                   help="decay towards the trained weights per step (default: %(default)s)")
    p.add_argument("--segment", type=positive_int, default=64,
                   help="characters scored between two updates (the Transformer: at most half its context)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if any(d >= 1 for d in args.decays):
        raise UserError(f"--decays must lie in [0, 1) (the share of the way back to the trained weights per step), "
                        f"got {args.decays}")
    data = load_text_data(repo_path(args.data_dir) / args.dataset)
    val = torch.from_numpy(data.val).long()
    n = len(val) - 1
    rows = {}
    grid = list(itertools.product(args.lrs, args.decays))
    for run in args.runs:
        model, ck, path = load_model_file(repo_path(run), data.alphabet)
        start = time.perf_counter()
        plain = dynamic_losses(model, val, lr=0.0, segment=args.segment)
        losses = {}
        for lr, decay in progress(grid, desc=path.parent.name, unit="setting"):
            losses[(lr, decay)] = dynamic_losses(model, val, lr=lr, decay=decay, segment=args.segment)
        lanes = evaluate(model, val, ck["config"]["training"]["seq_len"], "cpu")["bpc"]
        rows[path.parent.name] = {
            "arch": ck["arch"], "bpc": lanes, "sequential_bpc": plain.mean().item() / LN2,
            "grid": [{"lr": lr, "decay": d, "bpc": v.mean().item() / LN2} for (lr, d), v in losses.items()],
            "dynamic": cross_fitted(losses, n), "seconds": time.perf_counter() - start}
    result = {"dataset": args.dataset, "held_out_chars": n, "segment": args.segment, "rows": rows,
              "note": "dynamic evaluation rows are separate rows, not the models' figures; the setting of each half "
                      "of the held-out stream chosen on the other half"}
    for name, r in rows.items():
        d = r["dynamic"]
        print(f"  {name:34s} alone {r['bpc']:.3f} (in one lane {r['sequential_bpc']:.3f})  dynamic {d['bpc']:.3f} "
              f"(settings {d['settings']})")
    write_json(result, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
