"""Separate, labelled rows: each text model with dynamic evaluation (test-time adaptation).

    python scripts/dynamic_eval.py outputs/chapter_runs/cheapdrop_{lstm,tcn}_s0 \
        --data_dir outputs/chapter_data --dataset chapter --out report/results/text/dynamic_chapter.json

Dynamic evaluation (Krause et al. 2018, `exercise1.evaluation.dynamic_losses`): the held-out stream is
read once, in order; each segment is scored first and then the model takes one SGD step on it (decaying
towards the trained weights), so later segments are predicted by a model adapted to the text read so
far. For each run folder (or checkpoint file): the plain sequential score (no adaptation; the model's
own figure, as `evaluate` gives it with one lane; for the Transformer when the segment is half its
context) and the adapted score for every (learning rate, decay)
of the grid. The setting is not tuned on what it is scored on: the held-out stream is cut in two halves;
the second half is scored with the setting whose losses on the first half (in the same pass, which has
read nothing of the second yet) are lowest, and the first half with the setting that is best on a
separate pass over the second half alone, starting from the trained weights (so it never read the first
half). These are not the models' figures: the models' own rows stay the plain ones.
"""
from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from exercise1.data import load_text_data  # noqa: E402
from exercise1.evaluation import LN2, dynamic_losses, dynamic_segment, evaluate  # noqa: E402
from exercise1.models import load_model_file  # noqa: E402
from utils.arguments import add_prepared_data_args, non_negative_float, positive_int  # noqa: E402
from utils.checkpoint import write_json  # noqa: E402
from utils.errors import UserError, cli  # noqa: E402
from utils.paths import repo_path  # noqa: E402
from utils.progress import progress  # noqa: E402

CLIP = 1.0  # the norm each step's gradient is clipped to


def cross_fitted(full: dict, tail: dict, n: int) -> dict:
    """`full`: setting -> per-character nats of a pass over the whole stream (n targets); `tail`: setting ->
    those of a pass over its second half alone (targets n // 2 ...). The second half scored with the
    setting best on the first half of `full`, the first half with the setting best on `tail`; a setting
    whose loss is not finite (diverged) is never chosen. Returns {bpc, first_half, second_half} (the
    settings chosen for each)."""
    half = n // 2

    def best(losses, part):
        def mean(setting):
            value = losses[setting][part].mean().item()
            return value if math.isfinite(value) else math.inf
        return min(losses, key=mean)
    first, second = best(tail, slice(None)), best(full, slice(0, half))
    total = full[first][:half].sum().item() + full[second][half:].sum().item()
    return {"bpc": total / n / LN2, "first_half": {"lr": first[0], "decay": first[1]},
            "second_half": {"lr": second[0], "decay": second[1]}}


@cli
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders or checkpoint files")
    add_prepared_data_args(p)
    p.add_argument("--lrs", type=non_negative_float, nargs="+", default=[0.01, 0.03, 0.1, 0.3, 1.0],
                   help="SGD learning rates of the grid (default: %(default)s, the chapter's grid of the report)")
    p.add_argument("--decays", type=non_negative_float, nargs="+", default=[0.0, 0.01],
                   help="decay towards the trained weights per step (default: %(default)s)")
    p.add_argument("--segment", type=positive_int, default=64,
                   help="characters scored between two updates, also how far back each update's gradient reaches "
                        "(the Transformer: at most half its context) (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if any(d >= 1 for d in args.decays):
        raise UserError(f"--decays must lie in [0, 1) (the share of the way back to the trained weights per step), "
                        f"got {args.decays}")
    data = load_text_data(repo_path(args.data_dir) / args.dataset)
    models = [load_model_file(repo_path(run), data.alphabet) for run in args.runs]  # every mistake before any work
    names = [path.parent.name for _, _, path in models]
    if len(set(names)) < len(names):
        raise UserError(f"two of the runs given share a name ({', '.join(sorted({n for n in names if names.count(n) > 1}))}): "
                        "each row is named by its run folder, give each run once")
    val = torch.from_numpy(data.val).long()
    n = len(val) - 1
    rows = {}
    grid = list(itertools.product(args.lrs, args.decays))
    for model, ck, path in models:
        start = time.perf_counter()
        run = dict(segment=args.segment, clip=CLIP)
        plain = dynamic_losses(model, val, lr=0.0, **run)
        full, tail = {}, {}
        for lr, decay in progress(grid, desc=path.parent.name, unit="setting"):
            full[(lr, decay)] = dynamic_losses(model, val, lr=lr, decay=decay, **run)
            tail[(lr, decay)] = dynamic_losses(model, val[n // 2:], lr=lr, decay=decay, **run)
        lanes = evaluate(model, val, ck["config"]["training"]["seq_len"], "cpu")["bpc"]
        rows[path.parent.name] = {
            "arch": ck["arch"], "bpc": lanes, "sequential_bpc": plain.mean().item() / LN2,
            "segment": dynamic_segment(model, args.segment), "clip": CLIP,
            "grid": [{"lr": lr, "decay": d, "bpc_in_sample": v.mean().item() / LN2} for (lr, d), v in full.items()],
            "dynamic": cross_fitted(full, tail, n), "seconds": time.perf_counter() - start}
    result = {"dataset": args.dataset, "held_out_chars": n, "rows": rows,
              "note": "dynamic evaluation rows are separate rows, not the models' figures; the second half of the "
                      "held-out stream is scored with the setting best on the first half, the first half with the "
                      "setting best on a separate pass over the second half alone; grid bpc_in_sample: each setting "
                      "scored on the whole stream (tuned on what it scores)"}
    for name, r in rows.items():
        d = r["dynamic"]
        print(f"  {name:34s} alone {r['bpc']:.3f} (in one lane {r['sequential_bpc']:.3f})  dynamic {d['bpc']:.3f} "
              f"(first half {d['first_half']}, second half {d['second_half']})")
    write_json(result, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
