"""Each architecture's learning-rate optimum bracketed at equal steps, with seeds (the report's sweep
follow-up).

The sweep (scripts/sweep_text.py) gives every cell the same training TIME, so a cell that shared the
machine got fewer steps, and for the LSTM and the TCN its best cell sat at the highest learning rate
tried. Here every run of an architecture trains the same number of epochs (the steps its best sweep
cell reached; the same on any host), at the sweep's best size:

  1. seed 0 at the starting learning rates; while the best of them is the lowest or the highest
     tried, one more rate half or twice as large (at most --max_extra), so the optimum is bracketed;
  2. --seeds more seeds of the best two rates: mean and std of each.

Every run is an ordinary `exercise1/<arch>/train.py` call (patience 0: the whole budget), resumable
like the sweep's. Writes <out>/lr_bracket_<arch>.json and <out>/lr_bracket.png.

  python scripts/lr_bracket.py                                  # all three: 27 runs of 3 to 7 min on one thread
  python scripts/lr_bracket.py --archs lstm --seeds 1 2 --threads 1
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.sweep_text import SIZES, mean_std, resolve_paths, run_arguments, run_one  # noqa: E402
from utils.checkpoint import write_json  # noqa: E402
from utils.errors import cli  # noqa: E402

# architecture -> (size of the sweep's best cell, epochs = about the steps it reached on the novel, first rates)
BRACKETS = {
    "lstm": ("S", 20, [3e-3, 6e-3, 1.2e-2]),        # sweep S@6e-3: 1,675 steps (84 per epoch)
    "tcn": ("S", 11, [2e-3, 4e-3, 8e-3]),           # sweep S@4e-3: 925 steps
    "transformer": ("M", 6, [1e-3, 2e-3, 4e-3]),    # sweep M@2e-3: 460 steps
}


def cell_name(arch: str, size: str, lr: float, seed: int) -> str:
    return f"bracket_{arch}_{size}_lr{lr:g}_s{seed}"


def summarise(runs: dict[float, dict[int, dict]]) -> dict:
    """Per learning rate: best held-out bpc of each seed, their mean and sample std."""
    cells = {}
    for lr in sorted(runs):
        bpc = {seed: r["best_val_bpc"] for seed, r in sorted(runs[lr].items())}
        mean, std = mean_std(bpc.values())
        cells[f"{lr:g}"] = {"learning_rate": lr, "bpc_by_seed": bpc, "mean": mean, "std": std,
                            "steps": next(iter(runs[lr].values()))["steps"]}
    return cells


def bracket(arch: str, args) -> dict:
    size, epochs, lrs = BRACKETS[arch]
    overrides = dict(SIZES[arch][size])
    runs: dict[float, dict[int, dict]] = {}

    def run(lr: float, seed: int) -> float:
        summary = run_one(arch, cell_name(arch, size, lr, seed), overrides, lr, args, Path(args.ckpt_dir),
                          epochs=epochs, seed=seed)
        runs.setdefault(lr, {})[seed] = summary
        print(f"{arch} {size} lr {lr:g} seed {seed}: {summary['steps']} steps, best held-out "
              f"{summary['best_val_bpc']:.3f} bpc", flush=True)
        return summary["best_val_bpc"]

    for lr in lrs:
        run(lr, 0)
    for _ in range(args.max_extra):
        tried = sorted(runs)
        best = min(tried, key=lambda r: runs[r][0]["best_val_bpc"])
        if best not in (tried[0], tried[-1]):
            break
        run(best / 2 if best == tried[0] else best * 2, 0)
    tried = sorted(runs)
    best = min(tried, key=lambda r: runs[r][0]["best_val_bpc"])
    bracketed = best not in (tried[0], tried[-1])
    top_two = sorted(tried, key=lambda r: runs[r][0]["best_val_bpc"])[:2]
    for lr in top_two:
        for seed in args.seeds:
            run(lr, seed)
    cells = summarise(runs)
    result = {"arch": arch, "size": size, "overrides": overrides, "epochs": epochs, "dataset": args.dataset,
              "cells": cells, "bracketed": bracketed, "best_learning_rate_seed0": best,
              "seeded": [f"{lr:g}" for lr in top_two],
              "note": "every run the same number of epochs (equal steps), patience 0; best held-out bpc"}
    write_json(result, Path(args.out) / f"lr_bracket_{arch}.json")
    return result


def plot(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(3.4 * len(results), 3.0), squeeze=False)
    for ax, result in zip(axes[0], results):
        cells = list(result["cells"].values())
        lrs = [c["learning_rate"] for c in cells]
        for c in cells:
            ax.scatter([c["learning_rate"]] * len(c["bpc_by_seed"]), list(c["bpc_by_seed"].values()), s=12,
                       color="tab:blue", alpha=0.6)
        ax.plot(lrs, [c["mean"] for c in cells], "-o", color="tab:blue", ms=3)
        ax.set_xscale("log")
        ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs], rotation=30, fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("peak learning rate")
        ax.set_title(f"{result['arch']} {result['size']}, {result['epochs']} epochs ({cells[0]['steps']} steps)",
                     fontsize=9)
    axes[0][0].set_ylabel("best held-out bpc")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=list(BRACKETS), choices=list(BRACKETS))
    p.add_argument("--seeds", nargs="*", type=int, default=[1, 2], help="more seeds of the best two rates")
    p.add_argument("--max_extra", type=int, default=3, help="rates added at most to bracket the optimum")
    run_arguments(p, "outputs/lr_bracket", "where the JSON summaries and the figure go")
    args = resolve_paths(p.parse_args())
    args.minutes = None
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.ckpt_dir).mkdir(parents=True, exist_ok=True)
    results = [bracket(arch, args) for arch in args.archs]
    plot(results, Path(args.out) / ("lr_bracket.png" if len(results) == 3 else f"lr_bracket_{'_'.join(args.archs)}.png"))


if __name__ == "__main__":
    cli(main)()
