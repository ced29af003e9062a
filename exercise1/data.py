"""Prepared text data as index streams, and fixed-length training windows drawn from them."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from exercise1.data_preparation import make_split
from utils.errors import UserError


@dataclass
class TextData:
    alphabet: np.ndarray          # [V] 1-character strings
    train: np.ndarray             # [N_train] int64 character indices, lines joined by "\n"
    val: np.ndarray               # [N_val]
    val_lines: list[np.ndarray]   # held-out lines, for the course's teacher-forcing test
    folder: Path


def load_text_data(folder: str | Path) -> TextData:
    """Read `alphabet.npy`, the `sample_*.npy` files and `split.json` written by data_preparation."""
    folder = Path(folder)
    hint = (
        f"prepare it first: python exercise1/data_preparation.py --text data/text.txt --name {folder.name} "
        f"--data_dir {folder.parent} (or give train.py --text PATH)"
    )
    if not (folder / "alphabet.npy").is_file():
        raise UserError(f"no prepared data set in {folder}: {hint}")
    alphabet = np.load(folder / "alphabet.npy")
    files = sorted(folder.glob("sample_*.npy"))
    if not files:
        raise UserError(f"{folder} has an alphabet but no sample_*.npy files: {hint}")
    lines = [np.load(f).argmax(axis=1).astype(np.int64) for f in files]
    split_file = folder / "split.json"
    if split_file.is_file():
        split = json.loads(split_file.read_text())
    else:  # a folder made by the course's own script: make the same deterministic split here
        split = make_split(len(lines))
    if max(split["train"] + split["val"]) >= len(lines):
        raise UserError(f"{split_file} does not match the {len(lines)} samples in {folder}: prepare the data again")
    sep = np.searchsorted(alphabet, "\n")
    if sep >= len(alphabet) or alphabet[sep] != "\n":
        raise UserError(f"the alphabet in {folder} has no line separator: prepare the data again with this project's script")

    def join(ids):
        parts = []
        for i in ids:
            parts += [lines[i], np.array([sep], dtype=np.int64)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    return TextData(alphabet, join(split["train"]), join(split["val"]), [lines[i] for i in split["val"]], folder)


def random_windows(stream: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator):
    """A batch of `batch_size` random windows: inputs `[B, T]` and next-character targets `[B, T]`."""
    if len(stream) < seq_len + 1:
        raise UserError(f"the training text ({len(stream)} characters) is shorter than seq_len+1 = {seq_len + 1}; lower --seq_len")
    starts = torch.randint(0, len(stream) - seq_len, (batch_size,), generator=generator)
    offsets = starts[:, None] + torch.arange(seq_len + 1)
    chunk = stream[offsets]  # [B, T+1]
    return chunk[:, :-1], chunk[:, 1:]


def lane_windows(stream: torch.Tensor, batch_size: int, seq_len: int, step: int, seed: int):
    """Window `step` of contiguous lanes (training with carried state): the text is cut into `batch_size`
    lanes of equal length; each pass over the lanes shifts them all by one offset drawn for that pass
    (from `seed` and the pass, so a resumed run draws the same), and step j of a pass takes characters
    j*T .. (j+1)*T of every lane. Returns inputs `[B, T]`, next-character targets `[B, T]`, and whether
    the window starts a pass (where carried state must start afresh)."""
    lane = len(stream) // batch_size                            # characters per lane
    windows = (lane - 1) // seq_len                             # windows per pass (each needs T + 1 characters)
    if windows < 2:  # one window per lane would leave nothing to carry
        raise UserError(f"training.carry_state: the training text ({len(stream):,} characters) is too short for "
                        f"{batch_size} lanes of at least two {seq_len}-character windows; lower --batch_size or "
                        f"--seq_len, or set training.carry_state=false")
    rounds, j = divmod(step, windows)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + rounds)
    offset = int(torch.randint(0, lane - windows * seq_len, (1,), generator=gen))   # the pass reads T*windows + 1
    starts = torch.arange(batch_size) * lane + offset + j * seq_len
    chunk = stream[starts[:, None] + torch.arange(seq_len + 1)]  # [B, T+1]
    return chunk[:, :-1], chunk[:, 1:], j == 0


def noised(x: torch.Tensor, stream: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """`x` with each character replaced, with probability `rate`, by one drawn at a random position of
    `stream` (so by the text's character frequencies: unigram noising, Xie et al. 2017)."""
    if rate <= 0:
        return x
    replace = torch.rand(x.shape, generator=generator) < rate
    drawn = stream[torch.randint(0, len(stream), x.shape, generator=generator)]
    return torch.where(replace, drawn, x)
