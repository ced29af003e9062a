"""One-hot helpers of the course (`char_to_one_hot`, `one_hot_to_char`) and their vectorised forms.

The alphabet is a sorted sequence of single characters; a character's one-hot vector has a 1 at
the character's position in it. The rest of the code works with index arrays (`encode`/`decode`),
which are the same information stored compactly.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from utils.errors import UserError


def build_alphabet(text: str) -> np.ndarray:
    """All characters of `text`, sorted, as a numpy array of 1-character strings."""
    return np.array(sorted(set(text)), dtype="<U1")


def char_to_one_hot(char: str, alphabet: Sequence[str]) -> np.ndarray:
    """One-hot vector `[len(alphabet)]` (float32) of a single character."""
    alphabet = list(alphabet)
    if char not in alphabet:
        raise UserError(f"character {char!r} is not in the alphabet of {len(alphabet)} characters")
    vec = np.zeros(len(alphabet), dtype=np.float32)
    vec[alphabet.index(char)] = 1.0
    return vec


def one_hot_to_char(vector: np.ndarray, alphabet: Sequence[str]) -> str:
    """The character whose one-hot (or probability / logit) vector this is (argmax)."""
    return str(alphabet[int(np.argmax(vector))])


def encode(text: str, alphabet: Sequence[str]) -> np.ndarray:
    """Indices `[len(text)]` (int64) of the characters of `text`; an unknown character is a UserError."""
    alphabet = np.asarray(alphabet, dtype="<U1")
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table = np.frombuffer("".join(alphabet.tolist()).encode("utf-32-le"), dtype=np.uint32)
    order = np.argsort(table)
    pos = np.searchsorted(table[order], codes)
    pos = np.minimum(pos, len(table) - 1)
    idx = order[pos]
    bad = table[idx] != codes
    if bad.any():
        missing = sorted({chr(c) for c in codes[bad]})
        shown = ", ".join(repr(c) for c in missing[:10])
        raise UserError(
            f"{len(missing)} character(s) not in the model's alphabet: {shown}. "
            f"Known characters: {''.join(alphabet.tolist())!r}"
        )
    return idx.astype(np.int64)


def decode(indices, alphabet: Sequence[str]) -> str:
    """The string whose character indices these are."""
    alphabet = np.asarray(alphabet, dtype="<U1")
    return "".join(alphabet[np.asarray(indices, dtype=np.int64)].tolist())


def string_to_one_hot(text: str, alphabet: Sequence[str], dtype=np.bool_) -> np.ndarray:
    """One-hot matrix `[len(text), len(alphabet)]` of a string (bool by default: 1 byte a cell)."""
    idx = encode(text, alphabet)
    out = np.zeros((len(idx), len(alphabet)), dtype=dtype)
    out[np.arange(len(idx)), idx] = 1
    return out


def one_hot_to_string(matrix: np.ndarray, alphabet: Sequence[str]) -> str:
    """Inverse of `string_to_one_hot` (argmax per row)."""
    return decode(np.asarray(matrix).argmax(axis=-1), alphabet)
