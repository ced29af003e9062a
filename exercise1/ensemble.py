"""Several models of one architecture trained side by side in one run and used as one model
(`model.members` > 1): it predicts the mean of the members' next-character distributions.

On a chapter-sized text part of a single model's error is variance (which of many fits to a small
text it lands on; averaging separately trained seeds lowers it, report/results/text/mixture_chapter_*.json),
and the mean of a few independent fits has less of it. Each member learns on
its own loss (the training loop averages the members' losses, so a member's gradient is 1/K of the
one it would get alone, and `grad_clip` bounds all members' gradients together), with its own
initial weights and dropout masks; only the prediction mixes them. Joint training on the mixture's
loss would let the members specialise instead (Webb et al. 2020; Jeffares et al. 2023).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Ensemble(nn.Module):
    """`forward(idx, state)` takes character indices `[B, T]` and the members' states (a list, None =
    empty); in eval mode it returns the log of the members' mean distribution `[B, T, V]` (usable as
    logits), in training mode every member's logits `[K, B, T, V]` (each member's loss is its own), and
    the new list of states. `step` does the same for one character (generation)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        self.members = nn.ModuleList(members)
        first = members[0]
        self.max_context = getattr(first, "max_context", None)
        self.carries_state = getattr(first, "carries_state", False)
        if hasattr(first, "receptive_field"):
            self.receptive_field = first.receptive_field

    def context_description(self) -> str:
        return f"{self.members[0].context_description()}; an ensemble of {len(self.members)} members"

    @property
    def penalty(self) -> torch.Tensor | None:
        """The members' mean training penalty (the LSTM's activation regularisation), None when none has one."""
        found = [p for p in (getattr(m, "penalty", None) for m in self.members) if p is not None]
        return sum(found) / len(self.members) if found else None

    @penalty.setter
    def penalty(self, value) -> None:
        if value is not None:
            raise ValueError("an ensemble's penalty is its members'; it can only be cleared")
        for m in self.members:
            if hasattr(m, "penalty"):
                m.penalty = None

    def init_state(self, batch: int, device) -> list:
        """The members' empty states (a preallocated one where a member has it: the Transformer's cache)."""
        return [m.init_state(batch, device) if hasattr(m, "init_state") else None for m in self.members]

    def mixture(self, logits: list[torch.Tensor]) -> torch.Tensor:
        """log of the mean of the members' distributions, from their logits (fp32)."""
        log_probs = torch.stack([F.log_softmax(z.float(), dim=-1) for z in logits])
        return torch.logsumexp(log_probs, dim=0) - math.log(len(logits))

    def forward(self, idx: torch.Tensor, state=None):
        states = state if state is not None else [None] * len(self.members)
        outs = [m(idx, s) for m, s in zip(self.members, states)]
        logits = [z for z, _ in outs]
        combined = torch.stack(logits) if self.training else self.mixture(logits)
        return combined, [s for _, s in outs]

    @torch.no_grad()
    def step(self, idx: torch.Tensor, state):
        outs = [m.step(idx, s) for m, s in zip(self.members, state)]
        return self.mixture([z for z, _ in outs]), [s for _, s in outs]
