"""Separate, labelled rows: each text model mixed with the Kneser-Ney model of the best order.

    python scripts/ngram_mixture.py outputs/chapter_runs/anneal_{lstm,tcn,transformer}_s0 \
        --data_dir outputs/chapter_data --dataset chapter --out report/results/text/mixture_chapter.json

For each run folder (or checkpoint file), on exactly the characters `evaluate` scores: the model's own
held-out bpc, the n-gram's, and the bpc of weight * P_model + (1 - weight) * P_ngram, the weight chosen
on one half of the held-out stream and scored on the other (both ways; exercise1/ngram.py
`cross_fitted_mixture`), and at weight 0.5; for an ensemble run (`model.members` > 1) also each member
alone. Also the equal mixture of all the models given, mixed the same way with the n-gram. These are not
the models' figures: the models' own rows stay the plain ones.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from exercise1.data import load_text_data  # noqa: E402
from exercise1.ensemble import Ensemble  # noqa: E402
from exercise1.evaluation import LN2, evaluate  # noqa: E402
from exercise1.models import load_model_file  # noqa: E402
from exercise1.ngram import KneserNey, cross_fitted_mixture  # noqa: E402
from exercise1.ngram import ladder as ngram_ladder  # noqa: E402
from utils.arguments import add_prepared_data_args, positive_int  # noqa: E402
from utils.checkpoint import write_json  # noqa: E402
from utils.errors import cli  # noqa: E402
from utils.paths import repo_path  # noqa: E402


@cli
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders or checkpoint files")
    add_prepared_data_args(p)
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_text_data(repo_path(args.data_dir) / args.dataset)
    lad = ngram_ladder(data)
    order = lad["best_order"]
    ngram = KneserNey(order).fit(data.train, len(data.alphabet)).score(data.val, order=order)
    val = torch.from_numpy(data.val)
    rows, probs = {}, []
    for run in args.runs:
        model, ck, path = load_model_file(repo_path(run), data.alphabet)
        seq_len = ck["config"]["training"]["seq_len"]
        nats = evaluate(model, val, seq_len, "cpu", per_char=True)["losses"].double().numpy()
        probs.append(np.exp(-nats))
        rows[path.parent.name] = {"arch": ck["arch"], "bpc": float(nats.mean() / LN2),
                                  "mixture": cross_fitted_mixture(nats, ngram)}
        if isinstance(model, Ensemble):
            rows[path.parent.name]["member_bpc"] = [evaluate(m, val, seq_len, "cpu")["bpc"] for m in model.members]
    if len(probs) > 1:
        together = -np.log(np.mean(probs, axis=0))
        rows["equal mixture of the models"] = {"bpc": float(together.mean() / LN2),
                                               "mixture": cross_fitted_mixture(together, ngram)}
    result = {"dataset": args.dataset, "ngram_order": order, "ngram_bpc": lad["best_bpc"],
              "held_out_chars": lad["held_out_chars"], "rows": rows,
              "note": "mixtures are separate rows, not the models' figures; weight of the model chosen on the other "
                      "half of the held-out stream"}
    print(f"{args.dataset}: Kneser-Ney order {order} {lad['best_bpc']:.3f} bpc")
    for name, r in rows.items():
        print(f"  {name:34s} alone {r['bpc']:.3f}  with the n-gram {r['mixture']['bpc']:.3f} "
              f"(weights {r['mixture']['weights']}; at 0.5: {r['mixture']['bpc_at_half']:.3f})")
        if "member_bpc" in r:
            print(f"  {'':34s} its members alone: {', '.join(f'{b:.3f}' for b in r['member_bpc'])}")
    write_json(result, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
