"""What dropout's random mask costs on a CPU: each text architecture at the chapter's settings (its
config.json with the size rule for --train_chars training characters, soft targets as with the
n-gram teacher), one training step profiled: milliseconds per step and the share of the step spent
drawing masks (`aten::bernoulli_`, PyTorch's mask; `aten::random_`, the cheap mask of utils/dropout.py).
Also the masks alone (a chapter TCN activation's 8 x 128 x 256 values, p = 0.3) and the Transformer's
attention with dropout 0.1, fused call against the explicit form with the cheap mask.

    python scripts/dropout_cost.py --threads 2 --out report/results/text/chapter/cheap_dropout/dropout_cost.json

Run from a checkout before utils/dropout.py existed, it measures PyTorch's mask alone (the parts that
need the cheap mask are left out), so the two files compare the code before and after on one host. That
is why it sets up its own training step and its own copy of the explicit attention instead of importing
step_cost.py's or exercise1.transformer.modules.attention's: the checkout before has neither in this
form (the copy is the model's explicit form, whose numbers tests/test_dropout.py holds equal to the fused call's).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from exercise1.config import training_config  # noqa: E402
from exercise1.models import ARCHITECTURES, build_model, default_config_path, read_config  # noqa: E402
from exercise1.training import WeightAverage, train_step  # noqa: E402
from utils.arguments import positive_int  # noqa: E402
from utils.checkpoint import write_json  # noqa: E402
from utils.errors import cli  # noqa: E402
from utils.progress import progress  # noqa: E402

try:
    from utils.dropout import dropout as cheap_dropout
except ImportError:  # a checkout from before the cheap mask
    cheap_dropout = None

MASK_DRAWS = ("aten::bernoulli_", "aten::random_")


def median_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def step_profile(arch: str, train_chars: int, steps: int, repeats: int) -> dict:
    """One training step of one model of `arch` at the settings the size rule gives `train_chars` characters
    (model.members fixed at 1: the chapter's LSTM ensemble is two of these steps)."""
    config, _ = training_config(read_config(default_config_path(arch)), train_chars, fixed=frozenset({"model.members"}))
    t, vocab = config["training"], 47
    model = build_model(arch, config, vocab).train()
    opt = torch.optim.AdamW(model.parameters(), lr=t["learning_rate"], weight_decay=t["weight_decay"])
    average = WeightAverage(model, t["ema_steps"]) if t["ema_steps"] else None
    x = torch.randint(0, vocab, (t["batch_size"], t["seq_len"] + 1))
    distill = t.get("ngram_distill", 0.0)
    soft = torch.softmax(torch.randn(t["batch_size"], t["seq_len"], vocab), dim=-1) if distill else None
    cpu = torch.device("cpu")

    def step():
        train_step(model, model, opt, x[:, :-1], x[:, 1:], t["grad_clip"], cpu, False, average, soft=soft,
                   soft_weight=distill)

    ms = median_ms(step, repeats)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    shares = {name: sum(e.self_cpu_time_total for e in events if e.key == name) / total for name in MASK_DRAWS}
    return {"ms_per_step": ms, "mask_share": shares, "batch_size": t["batch_size"], "seq_len": t["seq_len"],
            "dropout": config["model"].get("dropout", 0.0), "weight_drop": config["model"].get("weight_drop", 0.0)}


@cli
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=list(ARCHITECTURES), choices=list(ARCHITECTURES))
    p.add_argument("--train_chars", type=positive_int, default=64_154, help="size rule input (default: the chapter's)")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--repeats", type=positive_int, default=20, help="timed repeats (medians)")
    p.add_argument("--profiled_steps", type=positive_int, default=10)
    p.add_argument("--out", default="outputs/dropout_cost.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result = {"threads": args.threads, "train_chars": args.train_chars, "repeats": args.repeats,
              "profiled_steps": args.profiled_steps,
              "cheap_mask": cheap_dropout is not None, "masks": {}, "attention": {}, "steps": {}}
    x = torch.randn(8, 128, 256, requires_grad=True)
    g = torch.randn_like(x)
    masks = {"pytorch": lambda z, pr: F.dropout(z, pr, True)}
    if cheap_dropout is not None:
        masks["cheap"] = cheap_dropout
    for name, fn in masks.items():
        result["masks"][name] = {"forward_ms": median_ms(lambda: fn(x.detach(), 0.3), args.repeats),
                                 "forward_backward_ms": median_ms(lambda: fn(x, 0.3).backward(g), args.repeats)}
    q, k, v = (torch.randn(16, 4, 128, 32, requires_grad=True) for _ in range(3))
    ga = torch.randn(16, 4, 128, 32)
    allowed = torch.ones(128, 128, dtype=torch.bool).tril()

    def explicit(p_drop, drop):
        s = (q @ k.transpose(-2, -1)) * 32 ** -0.5
        return drop(torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1), p_drop) @ v

    for p_drop in (0.0, 0.1):
        row = {"fused_ms": median_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p_drop)
                                     .backward(ga), args.repeats)}
        if cheap_dropout is not None:
            row["explicit_cheap_ms"] = median_ms(lambda: explicit(p_drop, cheap_dropout).backward(ga), args.repeats)
        result["attention"][f"dropout {p_drop}"] = row
    for arch in progress(args.archs, desc="profiled steps", unit="arch"):
        result["steps"][arch] = row = step_profile(arch, args.train_chars, args.profiled_steps, args.repeats)
        print(f"{arch}: {row['ms_per_step']:.0f} ms per step, masks "
              + ", ".join(f"{k} {100 * s:.1f} %" for k, s in row["mask_share"].items()))
    print("masks (ms, forward / with backward): " + ", ".join(
        f"{n} {r['forward_ms']:.2f} / {r['forward_backward_ms']:.2f}" for n, r in result["masks"].items()))
    write_json(result, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
