"""Dropout whose random mask is cheap on a CPU.

PyTorch's CPU dropout draws its mask with `bernoulli_`, one random number per value. At the chapter's
settings that took 14 % of the LSTM's training step, 28 % of the TCN's and 24 % of the Transformer's
(2 threads, AMD EPYC without AVX512; `scripts/dropout_cost.py`,
report/results/text/chapter/cheap_dropout/dropout_cost_bernoulli.json). Here one 64-bit draw gives the
random 16-bit levels of four values, so the mask and its product, forward and backward, cost 1.4 ms
against 4.8 ms for a chapter TCN's 262,144 activations (dropout_cost.json). A value is
kept when its level lies at or above round(p * 65536): the rate is p rounded to a multiple of 1/65536,
and the kept values are scaled by 65536 / (65536 - round(p * 65536)), so the expected output equals
the input as with `F.dropout`. Other devices (CUDA draws its masks with a fast counter-based generator)
and rates within 1/131072 of 0 or 1 go to `F.dropout`. Masks follow `torch.manual_seed` (the default CPU generator).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 1 << 16  # the random levels of one 16-bit draw


def cpu_mask(shape, p: float, dtype: torch.dtype) -> torch.Tensor:
    """A dropout mask of `shape` on the CPU: 0 where a value is dropped (rate p, rounded to 1/65536),
    else 1 / (1 - rate)."""
    n = math.prod(shape)
    dropped = round(p * LEVELS)
    # four 16-bit levels per 64-bit draw, the full signed range: levels are uniform on [-32768, 32767]
    levels = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None).view(torch.int16)[:n]
    keep = levels.view(shape) >= dropped - LEVELS // 2
    return keep.to(dtype).mul_(LEVELS / (LEVELS - dropped))


def dropout(x: torch.Tensor, p: float, training: bool = True, mask_shape=None) -> torch.Tensor:
    """`F.dropout(x, p, training)` with the cheap mask on the CPU (same expectation, rate rounded to 1/65536).
    `mask_shape`: a shape that broadcasts to x's (e.g. [B, 1, H]: one mask per sequence for all time steps)."""
    if not training or p == 0:
        return x
    shape = x.shape
    if mask_shape is not None:  # checked only where given: the plain call stays as cheap as before
        shape = torch.Size(mask_shape)
        if len(shape) != x.dim() or any(m not in (1, n) for m, n in zip(shape, x.shape)):
            raise ValueError(f"dropout: mask_shape {tuple(shape)} does not broadcast to the input's {tuple(x.shape)}")
    if x.device.type != "cpu" or not 0 < round(p * LEVELS) < LEVELS:  # p within 1/131072 of 0 or 1: PyTorch's own
        if mask_shape is None:
            return F.dropout(x, p, training)
        return x * F.dropout(x.new_ones(shape), p, training)
    return x * cpu_mask(shape, p, x.dtype)  # the mask needs no gradient: autograd keeps it for x's


class Dropout(nn.Module):
    """`nn.Dropout` with the cheap CPU mask; no parameters or buffers, so checkpoints are unchanged."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
