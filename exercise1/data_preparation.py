"""Turn a text (one paragraph per line) into the course's one-hot files.

    python exercise1/data_preparation.py --text data/text.txt

writes `data/text/alphabet.npy`, `data/text/sample_0000.npy`, ... (one one-hot matrix
`[line length, alphabet size]` per line, stored as bool) and `data/text/split.json`, the fixed
train/validation split by line that every script and the report use.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from any working directory

import numpy as np

from utils.errors import UserError, cli
from utils.helper_functions import build_alphabet, encode
from utils.paths import repo_path

SEPARATOR = "\n"  # joins lines into one training stream; part of every alphabet so models learn paragraph ends


def read_lines(text_path: str | Path, keep_case: bool = False) -> list[str]:
    """The lines of a UTF-8 text longer than one character, lowercased unless `keep_case`."""
    path = Path(text_path)
    if not path.is_file():
        raise UserError(
            f"text file {path} not found. Put a UTF-8 text with one paragraph per line there "
            "(the course's data/text.txt) or pass --text PATH."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text ({err}); convert it to UTF-8 first") from None
    if not keep_case:
        text = text.lower()
    lines = [line.rstrip("\r") for line in text.split("\n")]
    lines = [line for line in lines if len(line) > 1]
    if not lines:
        raise UserError(f"{path} has no line longer than one character: nothing to train on")
    return lines


def make_split(n_lines: int, val_fraction: float = 0.1, seed: int = 0) -> dict:
    """A deterministic split by line: a seeded permutation, the first `val_fraction` held out."""
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"--val_fraction must lie between 0 and 1, got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n_lines)
    n_val = max(1, int(round(n_lines * val_fraction))) if n_lines > 1 else 0
    return {
        "seed": seed,
        "val_fraction": val_fraction,
        "train": sorted(perm[n_val:].tolist()),
        "val": sorted(perm[:n_val].tolist()),
    }


def txt_to_numpy(
    text_path: str | Path = "data/text.txt",
    data_dir: str | Path = "data",
    name: str | None = None,
    keep_case: bool = False,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> Path:
    """Prepare `text_path` into `<data_dir>/<name>/` and return that folder."""
    text_path = repo_path(text_path)
    lines = read_lines(text_path, keep_case)
    alphabet = build_alphabet("".join(lines) + SEPARATOR)
    split = make_split(len(lines), val_fraction, seed)  # checks val_fraction before anything is written
    out = repo_path(data_dir) / (name or text_path.stem)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("sample_*.npy"):
        stale.unlink(missing_ok=True)  # another process preparing the same folder may have removed it

    # Encode the whole text at once, then cut it into lines: one vectorised pass, not a loop per char.
    idx = encode("".join(lines), alphabet)
    eye = np.eye(len(alphabet), dtype=np.bool_)
    bounds = np.cumsum([0] + [len(line) for line in lines])
    for i in range(len(lines)):
        np.save(out / f"sample_{i:04d}.npy", eye[idx[bounds[i]:bounds[i + 1]]])
    np.save(out / "alphabet.npy", alphabet)
    split.update(source=str(text_path), keep_case=keep_case, n_lines=len(lines), n_chars=int(bounds[-1]))
    (out / "split.json").write_text(json.dumps(split) + "\n", encoding="utf-8")
    return out


txt_to_npy = txt_to_numpy  # the name the course template's file used


@cli
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", default="data/text.txt", help="UTF-8 text, one paragraph per line (default: %(default)s)")
    p.add_argument("--name", default=None, help="data set name, the output folder (default: the text's file stem)")
    p.add_argument("--data_dir", default="data", help="folder that receives <name>/ (default: %(default)s)")
    p.add_argument("--keep_case", action="store_true", help="keep upper case (the course lowercases)")
    p.add_argument("--val_fraction", type=float, default=0.1, help="share of lines held out (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/validation split (default: %(default)s)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    out = txt_to_numpy(args.text, args.data_dir, args.name, args.keep_case, args.val_fraction, args.seed)
    split = json.loads((out / "split.json").read_text())
    alphabet = np.load(out / "alphabet.npy")
    print(
        f"wrote {split['n_lines']} samples ({split['n_chars']:,} characters, alphabet of {len(alphabet)}) "
        f"to {out} in {time.perf_counter() - t0:.2f} s; {len(split['train'])} train / {len(split['val'])} validation lines"
    )


if __name__ == "__main__":
    main()
