"""What text models learned early and late, measured on kept snapshots: for each run folder, its
first evaluation's model (early.pt) and its kept best model (<name>.pt).

    python scripts/measure_learning.py outputs/chapter_runs/size_rule_{lstm,tcn,transformer}_s0 \
        --data_dir outputs/chapter_data --dataset chapter --out report/results/text/learning_chapter.json

Per snapshot: held-out bpc and its "n-gram equivalent" (the highest Kneser-Ney order it beats on the
same characters), held-out bpc by kind of character (first letter of a word, later letters, space,
punctuation, newline), context use (held-out bpc when the model sees only the last k characters,
beside the n-gram of order k + 1 on the same positions), and statistics of a 2,000-character sample (share of its words that
occur in the training text, mean word length) beside the same statistics of the held-out text. With
--figure, one held-out passage coloured by each kept model's per-character surprisal.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from exercise1.data import load_text_data  # noqa: E402
from exercise1.evaluation import LN2, evaluate  # noqa: E402
from exercise1.generation import generate  # noqa: E402
from exercise1.learning import (CONTEXT_LENGTHS, char_kinds, context_positions, context_use,  # noqa: E402
                                loss_by_kind, ngram_equivalent, sample_statistics, words_of)
from exercise1.models import load_model_file  # noqa: E402
from exercise1.ngram import KneserNey  # noqa: E402
from exercise1.ngram import ladder as ngram_ladder  # noqa: E402
from utils.arguments import add_prepared_data_args, positive_int  # noqa: E402
from utils.checkpoint import write_json  # noqa: E402
from utils.errors import UserError, cli  # noqa: E402
from utils.helper_functions import decode  # noqa: E402
from utils.paths import repo_path  # noqa: E402
from utils.progress import progress  # noqa: E402

PASSAGE = 300  # characters of the surprisal passage


def ngram_on_positions(data, lengths=CONTEXT_LENGTHS, targets: int = 4000) -> dict[int, float]:
    """Held-out bpc of the Kneser-Ney model of order k + 1 (k characters of context) on exactly the positions
    context use scores for a model of unlimited context, for every k it has an order for."""
    orders = [k + 1 for k in lengths if k + 1 <= 10]
    model = KneserNey(max(orders)).fit(data.train, len(data.alphabet))
    positions = context_positions(len(data.val), max(lengths), targets).numpy()
    return {o - 1: float(-model.score(data.val, order=o)[positions - 1].mean() / LN2) for o in orders}


def measure(model, ck, data, kinds, known, ladder, sample_chars: int, seed: int, ngram_k: dict) -> dict:
    val = torch.from_numpy(data.val)
    seq_len = ck["config"]["training"]["seq_len"]
    ev = evaluate(model, val, seq_len, "cpu", per_char=True)
    prompt = torch.from_numpy(data.val_lines[0][:30].copy())
    sample = decode(generate(model, prompt, sample_chars, temperature=0.8,
                             generator=torch.Generator().manual_seed(seed))[0], data.alphabet)
    uses = context_use(model, val, "cpu")
    same = len(uses) == len(CONTEXT_LENGTHS)  # a model of unlimited context is scored on ngram_k's positions
    for row in uses:
        row["ngram_order_k_plus_1_bpc_same_positions"] = ngram_k.get(row["context"]) if same else None
    return {"epoch": ck["metrics"]["epoch"], "step": ck["metrics"]["step"], "minutes": ck["metrics"]["minutes"],
            "val_bpc": ev["bpc"], "ngram_equivalent": ngram_equivalent(ev["bpc"], ladder),
            "bpc_by_kind": loss_by_kind(ev["losses"], kinds), "context_use": uses,
            "sample": sample[:400], "sample_statistics": sample_statistics(sample, known),
            "passage_surprisal_bits": (ev["losses"][:PASSAGE] / LN2).tolist()}


def surprisal_figure(result: dict, data, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text = decode(data.val[1:PASSAGE + 1], data.alphabet)
    per_row = 75
    runs = list(result["runs"].items())
    rows = -(-len(text) // per_row)
    fig, axes = plt.subplots(len(runs), 1, figsize=(7.0, 0.32 * rows * len(runs) + 0.5 * len(runs)))
    axes = np.atleast_1d(axes)
    cmap = plt.get_cmap("Reds")
    for ax, (name, run) in zip(axes, runs):
        bits = run["kept"]["passage_surprisal_bits"]
        for i, (ch, b) in enumerate(zip(text, bits)):
            r, c = divmod(i, per_row)
            ax.add_patch(plt.Rectangle((c, -r - 1), 1, 1, color=cmap(min(b / 8, 1.0)), lw=0))
            ax.text(c + 0.5, -r - 0.5, "⏎" if ch == "\n" else ch, ha="center", va="center", fontsize=7,
                    family="monospace")
        ax.set_xlim(0, per_row)
        ax.set_ylim(-rows, 0)
        ax.axis("off")
        ax.set_title(f"{name}: {np.mean(bits):.2f} bits per character on this passage (white 0, dark red >= 8)",
                     fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


@cli
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders (with early.pt and <name>.pt, as train.py writes them)")
    add_prepared_data_args(p)
    p.add_argument("--figure", default=None, help="PNG of a held-out passage coloured by per-character surprisal")
    p.add_argument("--sample_chars", type=positive_int, default=2000, help="characters sampled per snapshot")
    p.add_argument("--seed", type=int, default=1, help="sampling seed")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_text_data(repo_path(args.data_dir) / args.dataset)
    ladder = ngram_ladder(data)
    kinds = char_kinds(data.val, data.alphabet)
    known = set(words_of(decode(data.train, data.alphabet)))
    reference = sample_statistics(decode(data.val, data.alphabet), known)
    ngram_k = ngram_on_positions(data)
    result = {"dataset": args.dataset, "ladder": {k: ladder[k] for k in ("orders", "best_order", "best_bpc")},
              "ngram_context_use": [{"context": k, "bpc": v} for k, v in sorted(ngram_k.items())],
              "held_out_text_statistics": reference, "runs": {}}
    for folder in progress([repo_path(r) for r in args.runs], desc="runs", unit="run"):
        name = folder.name
        kept = folder / f"{name}.pt"  # train.py keeps the best model of run <name> as <name>/<name>.pt
        if not (folder / "early.pt").is_file() or not kept.is_file():
            raise UserError(f"{folder} has no early.pt and kept model: train it with this version of train.py")
        result["runs"][name] = {which: measure(*load_model_file(path, data.alphabet)[:2], data, kinds, known, ladder, args.sample_chars,
                                               args.seed, ngram_k)
                                for which, path in (("early", folder / "early.pt"), ("kept", kept))}
        r = result["runs"][name]
        print(f"{name}: early (epoch {r['early']['epoch']:.1f}) {r['early']['val_bpc']:.3f} bpc ~ order "
              f"{r['early']['ngram_equivalent']['order']}; kept (epoch {r['kept']['epoch']:.1f}) "
              f"{r['kept']['val_bpc']:.3f} ~ order {r['kept']['ngram_equivalent']['order']}")
    write_json(result, args.out)
    if args.figure:
        surprisal_figure(result, data, Path(args.figure))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
