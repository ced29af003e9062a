"""What a text model has learned, measured: loss by kind of character, context use, the n-gram
order it matches, and statistics of its samples. Cheap enough to run at every evaluation (kinds,
samples) or on a kept snapshot (context use)."""
from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from exercise1.evaluation import LN2

KINDS = ("word_start", "word_inner", "space", "punctuation", "newline")
CONTEXT_LENGTHS = (1, 2, 4, 8, 16, 32, 64, 128)


def char_kinds(stream: np.ndarray, alphabet: np.ndarray) -> dict[str, np.ndarray]:
    """For every target `stream[1:]`, its kind: the first letter (or digit) of a word, a later one, a
    space, a newline, or punctuation (everything else). Boolean masks `[len(stream) - 1]`."""
    chars = alphabet[stream]
    word = np.char.isalnum(chars)
    target, before = slice(1, None), slice(None, -1)
    return {"word_start": word[target] & ~word[before], "word_inner": word[target] & word[before],
            "space": chars[target] == " ", "newline": chars[target] == "\n",
            "punctuation": ~word[target] & (chars[target] != " ") & (chars[target] != "\n")}


def loss_by_kind(losses: torch.Tensor, kinds: dict[str, np.ndarray]) -> dict[str, dict]:
    """Bits per character and share of the characters for each kind."""
    losses = losses.numpy()
    return {k: {"bpc": float(losses[m].mean() / LN2) if m.any() else None, "share": float(m.mean())}
            for k, m in kinds.items()}


WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def words_of(text: str) -> list[str]:
    return WORD.findall(text.lower())


def sample_statistics(sample: str, known_words: set[str]) -> dict:
    """How word-like a generated sample is: the share of its words that occur in the training text, and
    its mean word length (the first and last word are left out: the prompt or the cut may split them)."""
    words = words_of(sample)[1:-1]
    if not words:
        return {"words": 0, "known_word_share": None, "mean_word_length": None}
    return {"words": len(words), "known_word_share": float(np.mean([w in known_words for w in words])),
            "mean_word_length": float(np.mean([len(w) for w in words]))}


def context_positions(n: int, first: int, targets: int) -> torch.Tensor:
    """The held-out positions (indices into the stream) that context use scores: `targets` evenly spaced
    ones from `first` on, so that every one has `first` characters before it."""
    return torch.linspace(first, n - 1, min(targets, n - first)).long().unique()


@torch.no_grad()
def context_use(model, stream: torch.Tensor, device, lengths=CONTEXT_LENGTHS, targets: int = 4000,
                batch: int = 500) -> list[dict]:
    """Held-out bits per character when the model sees only the last k characters, for each k (up to
    its context): the same `targets` evenly spaced held-out positions for every k, each predicted from
    exactly k characters (an LSTM from a zero state after k characters)."""
    was_training = model.training
    model.eval()
    limit = getattr(model, "max_context", None) or max(lengths)
    lengths = [k for k in lengths if k <= limit and k < len(stream)]
    positions = context_positions(len(stream), max(lengths), targets)
    out = []
    for k in lengths:
        total = 0.0
        for i in range(0, len(positions), batch):
            pos = positions[i:i + batch]
            x = stream[pos[:, None] - k + torch.arange(k)].to(device)             # [B, k]
            logits, _ = model(x)
            total += F.cross_entropy(logits[:, -1].float(), stream[pos].to(device), reduction="sum").item()
        out.append({"context": k, "bpc": total / len(positions) / LN2, "targets": len(positions)})
    model.train(was_training)
    return out


def ngram_equivalent(bpc: float, ladder: dict) -> dict:
    """The n-gram order a model's held-out bpc matches: the highest order k such that the model is at or
    below every order 1..k of the ladder (0 if it does not beat order 1; the ladder need not fall
    monotonically), and whether it beats the ladder's best order."""
    order = 0
    for o in sorted(ladder["orders"], key=lambda o: o["order"]):
        if o["bpc"] < bpc:
            break
        order = o["order"]
    return {"order": order, "beats_best_order": bpc <= ladder["best_bpc"], "ladder_best_bpc": ladder["best_bpc"]}
