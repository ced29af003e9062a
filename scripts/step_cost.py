"""What a regulariser costs per training step: each text architecture at its novel configuration
(exercise1/<arch>/config.json, the size rule off), one training step at the config's batch and window
size (or --batch_size / --seq_len, e.g. a chapter's 8 windows) with and without a setting, the variants alternated in one process so that a busy host slows all
of them alike; medians over the repeats.

    python scripts/step_cost.py --threads 2 --out report/results/text/step_cost.json

Default variants: dropout 0.1 and 0.2 for all three, the LSTM's weight drop 0.2 and its dropout 0.5 element-wise and locked
(model.locked_dropout), the TCN's channel dropout 0.1, a weight average
over 200 steps and n-gram distillation 0.3 (soft targets gathered from a teacher table the size of the chapter's, as in
the training loop; `--variants` picks some). A regulariser that doubles the step time halves the steps a time budget allows, so on
a short budget it has to pay for that before it helps.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from exercise1.models import ARCHITECTURES, build_model, default_config_path, read_config  # noqa: E402
from exercise1.training import WeightAverage, train_step  # noqa: E402
from utils.arguments import positive_int  # noqa: E402
from utils.checkpoint import write_json  # noqa: E402
from utils.device import device_name, resolve_device, use_bf16  # noqa: E402
from utils.errors import UserError, cli  # noqa: E402
from utils.progress import progress  # noqa: E402

VARIANTS = {  # name -> (model.* settings, weight-average steps, n-gram distillation weight)
    "plain": ({"dropout": 0.0}, 0, 0.0),
    "dropout 0.1": ({"dropout": 0.1}, 0, 0.0),
    "dropout 0.2": ({"dropout": 0.2}, 0, 0.0),
    "weight average 200": ({"dropout": 0.0}, 200, 0.0),
    "n-gram distillation 0.3": ({"dropout": 0.0}, 0, 0.3),
}
LSTM_ONLY = {"weight drop 0.2": ({"dropout": 0.0, "weight_drop": 0.2}, 0, 0.0),
             "dropout 0.5": ({"dropout": 0.5}, 0, 0.0),
             "locked dropout 0.5": ({"dropout": 0.5, "locked_dropout": True}, 0, 0.0)}
TCN_ONLY = {"channel dropout 0.1": ({"dropout": 0.0, "channel_dropout": 0.1}, 0, 0.0)}
TEACHER_ROWS = 64_154  # the chapter's training characters: the teacher table the soft targets are gathered from


def trainer(arch: str, model_settings: dict, ema_steps: int, distill: float, vocab: int, device, bf16: bool,
            shape: dict | None = None):
    """A function that runs one training step of `arch` (the loop's own `train_step`: bf16 autocast where
    native, cross-entropy, clipping, AdamW, the weight average, soft targets) on a random batch of the config's shape."""
    config = read_config(default_config_path(arch))
    config["model"].update({"weight_drop": 0.0} if arch == "lstm" else {}, **model_settings)
    t = {**config["training"], **(shape or {})}  # shape: batch_size / seq_len instead of the config's
    model = build_model(arch, config, vocab).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=t["learning_rate"], weight_decay=t["weight_decay"])
    average = WeightAverage(model, ema_steps) if ema_steps else None
    x = torch.randint(0, vocab, (t["batch_size"], t["seq_len"] + 1), device=device)
    teacher = torch.softmax(torch.randn(TEACHER_ROWS, vocab), dim=1) if distill else None

    def step():
        soft = None
        if teacher is not None:  # as the loop does: the rows at the targets' positions, moved to the device
            soft = teacher[torch.randint(0, TEACHER_ROWS, (t["batch_size"], t["seq_len"]))].to(device)
        train_step(model, model, opt, x[:, :-1], x[:, 1:], t["grad_clip"], device, bf16, average, soft=soft,
                   soft_weight=distill)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return step


@cli
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=list(ARCHITECTURES), choices=list(ARCHITECTURES))
    p.add_argument("--repeats", type=positive_int, default=5, help="timed rounds (in each, every variant runs --steps steps)")
    p.add_argument("--steps", type=positive_int, default=3, help="steps per variant and round")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch_size", type=positive_int, help="windows per step (default: each config's)")
    p.add_argument("--seq_len", type=positive_int, help="characters per window (default: each config's)")
    p.add_argument("--variants", nargs="+", help="time only these variants (names as printed; plain is always timed)")
    p.add_argument("--out", default="outputs/step_cost.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = resolve_device(args.device)
    bf16 = use_bf16(device, "auto")
    vocab = 47
    result = {"host": device_name(device), "threads": args.threads, "bf16": bf16, "repeats": args.repeats,
              "batch_size": args.batch_size or "config", "seq_len": args.seq_len or "config",
              "steps_per_round": args.steps, "archs": {}}
    for arch in args.archs:
        variants = {**VARIANTS, **(LSTM_ONLY if arch == "lstm" else {}), **(TCN_ONLY if arch == "tcn" else {})}
        if args.variants:
            unknown = set(args.variants) - set(variants)
            if unknown:
                raise UserError(f"--variants: unknown {sorted(unknown)}; known for the {arch}: {', '.join(variants)}")
            variants = {k: v for k, v in variants.items() if k == "plain" or k in args.variants}
        shape = {k: v for k, v in (("batch_size", args.batch_size), ("seq_len", args.seq_len)) if v}
        steps = {name: trainer(arch, settings, ema, distill, vocab, device, bf16, shape)
                 for name, (settings, ema, distill) in variants.items()}
        for step in steps.values():  # warm-up: kernels chosen, memory allocated
            step()
        times = {name: [] for name in steps}
        for _ in progress(range(args.repeats), desc=f"{arch} step cost", unit="round"):
            for name, step in steps.items():
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    step()
                times[name].append((time.perf_counter() - t0) / args.steps)
        base = statistics.median(times["plain"])
        result["archs"][arch] = {name: {"seconds_per_step": statistics.median(v), "relative": statistics.median(v) / base}
                                 for name, v in times.items()}
        print(arch + ": " + ", ".join(f"{n} {r['seconds_per_step']:.3f} s ({r['relative']:.2f}x)"
                                      for n, r in result["archs"][arch].items()))
    write_json(result, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
