"""The positional-encoding comparison at equal steps, with seeds (the report's noise check of the sweep's
single 2-minute runs per encoding).

The Transformer cell the sweep compared encodings on (size M, learning rate 2e-3, no weight averaging)
is also a cell of the learning-rate bracket, which trained it with learned positions for 6 epochs
(498 steps on the novel) with seeds 0, 1 and 2. Here the other encodings (none, sinusoidal) train the
same epochs with the same seeds; the learned arm is the bracket's runs (reused where they exist in
--ckpt_dir, trained otherwise). Every run is an ordinary `exercise1/transformer/train.py` call
(patience 0), resumable. Writes <out>/positional_encoding_seeds.json: per encoding the best held-out
bpc of each seed, mean and sample std.

  python scripts/pe_seeds.py                   # 6 runs (9 without the bracket's) of about 2.5 min on 2 threads
  python scripts/pe_seeds.py --seeds 0 1 --threads 1
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.lr_bracket import BRACKETS, cell_name  # noqa: E402
from scripts.sweep_text import PE_KINDS, PE_LR, PE_SIZE, SIZES, mean_std, resolve_paths, run_arguments, run_one  # noqa: E402
from utils.checkpoint import write_json  # noqa: E402
from utils.errors import UserError, cli  # noqa: E402
from utils.progress import progress  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds of every encoding")
    run_arguments(p, "outputs/lr_bracket", "where the JSON summary goes")  # the bracket's runs: its learned arm
    args = resolve_paths(p.parse_args())
    if len(set(args.seeds)) < 2:
        raise UserError("--seeds: give at least two different seeds (the comparison needs a spread over seeds)")
    args.seeds = sorted(set(args.seeds))
    args.minutes = None
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.ckpt_dir).mkdir(parents=True, exist_ok=True)
    size, epochs, _ = BRACKETS["transformer"]
    if size != PE_SIZE:
        raise UserError(f"the learning-rate bracket's Transformer size ({size}) is no longer the sweep's encoding "
                        f"cell ({PE_SIZE}): align scripts/lr_bracket.py BRACKETS and scripts/sweep_text.py PE_SIZE")
    runs: dict[str, dict[int, dict]] = {}
    jobs = [(pe, seed) for pe in PE_KINDS for seed in args.seeds]
    for pe, seed in progress(jobs, desc="encodings x seeds", unit="run"):
        overrides = dict(SIZES["transformer"][size])
        name = cell_name("transformer", size, PE_LR, seed)
        if pe != "learned":
            overrides["model.positional_encoding"] = pe
            name = f"pe_{pe}_{name}"
        summary = run_one("transformer", name, overrides, PE_LR, args, Path(args.ckpt_dir), epochs=epochs, seed=seed)
        runs.setdefault(pe, {})[seed] = summary
        print(f"{pe:10s} seed {seed}: {summary['steps']} steps, best held-out {summary['best_val_bpc']:.3f} bpc",
              flush=True)
    cells = {}
    for pe, by_seed in runs.items():
        bpc = {seed: r["best_val_bpc"] for seed, r in sorted(by_seed.items())}
        mean, std = mean_std(bpc.values())
        cells[pe] = {"bpc_by_seed": bpc, "mean": mean, "std": std,
                     "steps": next(iter(by_seed.values()))["steps"], "parameters": next(iter(by_seed.values()))["parameters"],
                     "last_sample_seed0": by_seed[min(by_seed)]["last_sample"]}
    write_json({"size": size, "learning_rate": PE_LR, "epochs": epochs, "dataset": args.dataset,
                "overrides": SIZES["transformer"][size], "encodings": cells,
                "note": "every run the same number of epochs (equal steps), patience 0, no weight averaging; "
                        "best held-out bpc; the learned arm is the learning-rate bracket's cell"},
               Path(args.out) / "positional_encoding_seeds.json")


if __name__ == "__main__":
    cli(main)()
