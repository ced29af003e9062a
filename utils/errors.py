"""User-facing errors: a message that says what to do, printed without a traceback."""
from __future__ import annotations

import functools
import sys


class UserError(Exception):
    """A mistake of the user (missing file, bad value): shown as one clear message, exit code 2."""


def cli(main):
    """Decorator for script entry points: a UserError or Ctrl-C ends the script without a traceback."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
