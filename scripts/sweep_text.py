"""Exercise 1 experiments under one fixed training-time budget per run (the report's sweep).

  sizes x learning rates   3 x 3 runs per architecture         -> <out>/sweep_<arch>.json
  positional encoding      Transformer none / learned / sinusoidal -> <out>/positional_encoding.json

Every run is an ordinary `exercise1/<arch>/train.py` call (same split, same code as the shipped
models) with `--max_minutes` of pure training time (evaluations are not counted) and its own
checkpoint folder under --ckpt_dir. A run that has already used its budget is not repeated, so
the sweep can be stopped and started again; an interrupted one resumes from its last state, and one
that stopped by itself (patience) counts as finished.
Heat maps: <out>/sweep_<arch>.png.

  python scripts/sweep_text.py --minutes 2                # everything (~70 min on 2 CPU cores)
  python scripts/sweep_text.py --archs tcn --minutes 1    # one architecture
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from utils.arguments import positive_float, positive_int  # noqa: E402
from utils.checkpoint import write_json  # noqa: E402
from utils.errors import UserError, cli  # noqa: E402
from utils.paths import repo_path  # noqa: E402
from utils.progress import progress  # noqa: E402

# Sizes are named S / M / L; everything not named here comes from the architecture's config.json.
# The sweep and the bracket ran on the recipe before the retraining: the LSTM on one layer without
# dropout or weight drop, the Transformer without weight averaging, the TCN without averaging and with
# weight decay 0.01 (their config.json files now ship these).
ONE_LSTM_LAYER = {"model.num_lstm_layers": 1, "model.dropout": 0.0, "model.weight_drop": 0.0}
NO_AVERAGE = {"training.ema_steps": 0}
SIZES = {
    "lstm": {s: {"model.d_lstm": d, **ONE_LSTM_LAYER} for s, d in (("S", 256), ("M", 512), ("L", 1024))},
    "tcn": {s: {"model.channels": [c] * 6, **NO_AVERAGE, "training.weight_decay": 0.01}
            for s, c in (("S", 128), ("M", 256), ("L", 384))},
    "transformer": {s: {"model.d_model": d, "model.linear_layer_size": 4 * d, **NO_AVERAGE}
                    for s, d in (("S", 128), ("M", 192), ("L", 256))},
}
LEARNING_RATES = {"lstm": [1e-3, 3e-3, 6e-3], "tcn": [1e-3, 2e-3, 4e-3], "transformer": [1e-3, 2e-3, 4e-3]}
# Positional encodings are compared on the Transformer's middle cell of the grid.
PE_SIZE, PE_LR = "M", 2e-3
PE_KINDS = ["none", "learned", "sinusoidal"]


def run_name(arch: str, size: str, lr: float, pe: str | None = None) -> str:
    return f"{arch}_{size}_lr{lr:g}" + ("" if pe in (None, "learned") else f"_pe-{pe}")


def read_history(folder: Path) -> list[dict]:
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def finished(folder: Path, minutes: float) -> bool:
    """A run is finished when it stopped by itself (patience), ran all its epochs or used its budget
    (run.json says how it ended); only an interrupted run is resumed, so a rerun never trains a
    finished cell further."""
    ended = folder / "run.json"
    if ended.is_file() and json.loads(ended.read_text(encoding="utf-8")).get("stopped") in ("patience", "epochs"):
        return True
    history = read_history(folder)
    return bool(history) and history[-1]["minutes"] >= minutes * 0.999


def run_one(arch: str, name: str, overrides: dict, lr: float, args, log_dir: Path, epochs: int | None = None,
            seed: int | None = None) -> dict:
    """Train one configuration (unless it has finished) and summarise it: `args.minutes` of training time,
    or with `epochs` that many passes whatever the time (equal steps on any host)."""
    folder = Path(args.ckpt_dir) / name
    budget = ["--max_minutes", str(args.minutes)] if epochs is None else ["--epochs", str(epochs), "--max_minutes", "none"]
    if not finished(folder, args.minutes if epochs is None else float("inf")):
        cmd = [sys.executable, str(ROOT / "exercise1" / arch / "train.py"), "--dataset", args.dataset,
               "--data_dir", args.data_dir, *budget, "--lr", str(lr), "--name", name,
               "--ckpt_dir", args.ckpt_dir, "--seed", str(args.seed if seed is None else seed),
               "--threads", str(args.threads),
               "--patience", "0",  # every cell trains its whole budget, as the shipped sweep did
               "--set", *[f"{k}={json.dumps(v)}" for k, v in overrides.items()]]
        cmd.append("--resume" if (folder / "last.pt").is_file() else "--overwrite")
        with open(log_dir / f"{name}.log", "w", encoding="utf-8") as log:
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        if rc != 0:
            raise UserError(f"run {name} failed (exit {rc}); see {log_dir / (name + '.log')}")
    history = read_history(folder)
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    last = history[-1]
    return {"name": name, "arch": arch, "overrides": overrides, "learning_rate": lr,
            "parameters": metrics["parameters"], "best_val_bpc": metrics["val_bpc"],
            "final_val_bpc": last["val_bpc"], "final_train_bpc": last["train_bpc"], "steps": last["step"],
            "epochs": last["epoch"], "minutes": last["minutes"], "chars_per_second": last["chars_per_second"],
            "curve": [{k: h[k] for k in ("minutes", "epoch", "step", "train_bpc", "val_bpc")} for h in history],
            "last_sample": last["sample"]}


def plot_heatmap(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sizes, lrs = result["sizes"], result["learning_rates"]
    grid = np.array([[result["runs"][f"{s}@{lr:g}"]["best_val_bpc"] for lr in lrs] for s in sizes])
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    im = ax.imshow(grid, cmap="viridis_r")
    ax.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
    ax.set_yticks(range(len(sizes)), [f"{s} ({result['runs'][f'{s}@{lrs[0]:g}']['parameters'] / 1e6:.2f}M)" for s in sizes])
    ax.set_xlabel("peak learning rate")
    ax.set_title(f"{result['arch']}: held-out bpc after {result['minutes']:g} min")
    for i in range(len(sizes)):
        for j in range(len(lrs)):
            ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center",
                    color="white" if grid[i, j] > grid.mean() else "black")
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def run_arguments(p: argparse.ArgumentParser, ckpt_dir: str, out_help: str) -> None:
    """The options every experiment script over ordinary train.py runs shares: data, run folders, results, threads."""
    p.add_argument("--dataset", default="text", help="prepared data set (exercise1/data_preparation.py)")
    p.add_argument("--data_dir", default="data", help="folder holding prepared data sets")
    p.add_argument("--ckpt_dir", default=ckpt_dir, help="checkpoints and logs of the runs")
    p.add_argument("--out", default="report/results/text", help=out_help)
    p.add_argument("--threads", type=positive_int, default=2, help="CPU threads per run")


def mean_std(values) -> tuple[float, float | None]:
    """Mean and sample std (None for a single value) of the best held-out bpc of several seeds."""
    values = list(values)
    return float(sum(values) / len(values)), (statistics.stdev(values) if len(values) > 1 else None)


def resolve_paths(args):
    """Make --ckpt_dir, --data_dir and --out absolute once (relative to the working directory where
    they exist there, else to the repository), so the runs, their logs and the summaries all use the
    same folders whatever the working directory."""
    for name in ("ckpt_dir", "data_dir", "out"):
        setattr(args, name, str(repo_path(getattr(args, name))))
    return args


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=["transformer", "tcn", "lstm"], choices=list(SIZES),
                   help="architectures to sweep")
    p.add_argument("--minutes", type=positive_float, default=2.0, help="training-time budget per run")
    p.add_argument("--no_pe", action="store_true", help="skip the positional-encoding comparison")
    run_arguments(p, "outputs/sweep", "where the JSON summaries and heat maps go")
    p.add_argument("--seed", type=int, default=0, help="random seed of every run")
    args = resolve_paths(p.parse_args())
    out, log_dir = Path(args.out), Path(args.ckpt_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)

    jobs = []
    for arch in args.archs:
        jobs += [(arch, s, lr, None) for s in SIZES[arch] for lr in LEARNING_RATES[arch]]
        if arch == "transformer" and not args.no_pe:
            jobs += [(arch, PE_SIZE, PE_LR, pe) for pe in PE_KINDS if pe != "learned"]
    done: dict[str, dict] = {}
    t0 = time.time()
    for arch, size, lr, pe in progress(jobs, desc="sweep", unit="run"):
        overrides = dict(SIZES[arch][size])
        if pe:
            overrides["model.positional_encoding"] = pe
        name = run_name(arch, size, lr, pe)
        done[name] = summary = run_one(arch, name, overrides, lr, args, log_dir)
        print(f"{name:32s} {summary['parameters'] / 1e6:5.2f}M  {summary['steps']:5d} steps  "
                   f"{summary['chars_per_second']:7.0f} chars/s  best held-out {summary['best_val_bpc']:.3f} bpc")
        if all(run_name(arch, s, r) in done for s in SIZES[arch] for r in LEARNING_RATES[arch]):
            result = {"arch": arch, "minutes": args.minutes, "dataset": args.dataset,
                      "sizes": list(SIZES[arch]), "learning_rates": LEARNING_RATES[arch],
                      "runs": {f"{s}@{r:g}": done[run_name(arch, s, r)] for s in SIZES[arch] for r in LEARNING_RATES[arch]}}
            write_json(result, out / f"sweep_{arch}.json")
            plot_heatmap(result, out / f"sweep_{arch}.png")
    if "transformer" in args.archs and not args.no_pe:
        runs = {pe: done[run_name("transformer", PE_SIZE, PE_LR, pe)] for pe in PE_KINDS}
        write_json({"minutes": args.minutes, "size": PE_SIZE, "learning_rate": PE_LR, "runs": runs},
                   out / "positional_encoding.json")
    print(f"sweep done in {(time.time() - t0) / 60:.1f} min; results in {out}")


if __name__ == "__main__":
    cli(main)()
