"""argparse types for numeric flags: a bad value is a one-line usage error, never a traceback."""
from __future__ import annotations

import argparse
import math


def _number(kind, low: float, inclusive: bool, what: str):
    def parse(value: str):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}") from None
        if math.isnan(number) or math.isinf(number) or number < low or (number == low and not inclusive):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return number
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = _number(int, 1, True, "a whole number >= 1")
non_negative_int = _number(int, 0, True, "a whole number >= 0")
positive_float = _number(float, 0, False, "a number > 0")
non_negative_float = _number(float, 0, True, "a number >= 0")


def add_prepared_data_args(parser: argparse.ArgumentParser, default_dataset: str = "text") -> None:
    """--data_dir, --dataset and --out, for the scripts that measure runs on a prepared text."""
    parser.add_argument("--data_dir", default="data", help="folder holding prepared data sets")
    parser.add_argument("--dataset", default=default_dataset, help="the prepared data set the runs were trained on")
    parser.add_argument("--out", required=True, help="JSON file to write")
