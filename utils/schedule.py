"""The budget rule and learning-rate schedule shared by every training loop (text models, VAEs).

A run has a budget of steps and, optionally, of training minutes; the share of it used is the larger
of the two shares, counted over the whole run (resumed parts included), and the learning rate
follows a linear warm-up and then a cosine from its peak down to `min_ratio` of it as that share
goes from 0 to 1.
"""
from __future__ import annotations

import math


def budget_share(step: int, total_steps: int, elapsed_seconds: float, max_seconds: float | None) -> float:
    """How much of the run's budget is used, 0..1."""
    share = step / max(total_steps, 1)
    if max_seconds:
        share = max(share, elapsed_seconds / max_seconds)
    return min(share, 1.0)


def cosine_lr(peak: float, share: float, step: int = 0, warmup_steps: int = 0, min_ratio: float = 0.1) -> float:
    """Linear warm-up over `warmup_steps`, then cosine decay from `peak` to `min_ratio * peak`."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    floor = peak * min_ratio
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * min(share, 1.0)))
