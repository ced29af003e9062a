"""Repository-relative paths, so every script works from any working directory."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def repo_path(path: str | Path) -> Path:
    """An absolute path: relative paths are taken relative to the current directory if they exist
    there, else relative to the repository root (where the course's defaults such as
    `data/text.txt` and `checkpoints/` live)."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p.resolve()
    return (REPO_ROOT / p).resolve()
