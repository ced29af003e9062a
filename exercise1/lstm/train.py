"""Train the character-level LSTM (exercise1/lstm/modules.py) with the loop shared by all text models.

    python exercise1/lstm/train.py --text data/text.txt --max_minutes 10

Run with --help for every flag; exercise1/training.py holds the loop.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from any working directory

from exercise1.cli import train_main  # noqa: E402

if __name__ == "__main__":
    train_main("lstm")
