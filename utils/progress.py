"""Progress bars for people at a terminal, plain lines for log files and pipes.

`progress(...)` takes tqdm's arguments. At a terminal it is tqdm; when stderr goes to a file or a pipe
it prints one plain line (count, rate, the latest postfix) at most every `PROGRESS_EVERY` seconds
(default 30) and at the end, instead of tqdm's stream of carriage-return fragments.
"""
from __future__ import annotations

import os
import sys
import time

from tqdm import tqdm


def every_seconds() -> float:
    """PROGRESS_EVERY (seconds between plain progress lines), 30 when unset or not a number > 0."""
    try:
        value = float(os.environ.get("PROGRESS_EVERY", 30))
    except ValueError:
        value = -1.0
    return value if value > 0 else 30.0


class PlainProgress:
    """The part of tqdm's interface the project uses, written as occasional plain lines."""

    def __init__(self, iterable=None, total=None, desc: str = "", unit: str = "it", initial: int = 0,
                 disable: bool = False, every: float | None = None, file=None, **_ignored):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            self.total = len(iterable)
        self.n = self.start_n = initial
        self.disable = disable
        self.every = every_seconds() if every is None else every
        self.file = file or sys.stderr
        self.postfix = ""
        self.t0 = self.last = time.monotonic()
        self.closed = False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __len__(self):
        return self.total or 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_description(self, desc=None, refresh=True):
        self.desc = desc or ""

    def line(self) -> str:
        seconds = time.monotonic() - self.t0
        rate = (self.n - self.start_n) / seconds if seconds > 0 else 0.0
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        return (f"{self.desc}: {count} {self.unit} in {seconds:.0f} s ({rate:.2f} {self.unit}/s)"
                + (f", {self.postfix}" if self.postfix else ""))

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if not self.disable and now - self.last >= self.every:
            self.last = now
            print(self.line(), file=self.file, flush=True)

    def refresh(self):
        pass

    def close(self) -> None:
        if not self.closed and not self.disable and self.n > self.start_n and time.monotonic() - self.t0 >= 1.0:
            print(self.line() + " (done)", file=self.file, flush=True)
        self.closed = True


def progress(*args, **kwargs):
    """tqdm at a terminal, `PlainProgress` otherwise (see the module's docstring)."""
    stream = kwargs.get("file") or sys.stderr
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(*args, **kwargs)
    return PlainProgress(*args, **kwargs)
