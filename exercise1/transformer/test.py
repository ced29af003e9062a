"""Generate text with the trained character-level Transformer (course semantics, or --prompt).

    python exercise1/transformer/test.py                      # held-out line: prompt, truth, model
    python exercise1/transformer/test.py --prompt "the king " --length 300 --temperature 0.7

Run with --help for every flag; exercise1/generation.py holds the shared code.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from any working directory

from exercise1.cli import test_main  # noqa: E402

if __name__ == "__main__":
    test_main("transformer")
