"""Where runs are written and where trained models are read: shipped models are inputs, never outputs.

    checkpoints/<name>/   the shipped models (committed): every command reads them, none writes them
    runs/<name>/          new training runs (git-ignored): the default of every training command

A fresh run into a folder that already holds files refuses, and the message names the three ways on:
continue it (`--resume`), train under another name, or replace it (`--overwrite`). A model is read
from `--ckpt_dir` when one is given, else from `runs/<name>/` when the user trained one there, else
from the shipped `checkpoints/<name>/`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from utils.errors import UserError
from utils.paths import repo_path

RUNS_DIR = "runs"
SHIPPED_DIR = "checkpoints"


def start_run_dir(folder: str | Path, *, resume: bool, overwrite: bool, name_flag: str = "--name",
                  can_resume: bool = True) -> Path:
    """The folder a training run writes to, checked before anything is written: a fresh run refuses a
    folder that holds files unless `overwrite` (then the old files are removed first); `resume` keeps
    them. Call it on every process before any of them writes (then wait at a barrier)."""
    folder = Path(folder)
    existing = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if resume or not existing:
        return folder
    if not overwrite:
        shown = ", ".join(existing[:4]) + (", ..." if len(existing) > 4 else "")
        ways = (["continue it with --resume"] if can_resume else []) + [f"train a new one under another {name_flag}",
                                                                         "replace it with --overwrite"]
        raise UserError(f"{folder} already holds a run ({shown}): " + ", ".join(ways[:-1]) + f" or {ways[-1]}")
    return folder


def clear_run_dir(folder: str | Path) -> None:
    """Remove an old run's files before a fresh run with --overwrite writes there (one process only)."""
    folder = Path(folder)
    if folder.is_dir():
        shutil.rmtree(folder)


def trained_model_dir(name: str, ckpt_dir: str | Path | None, filename: str) -> Path:
    """The folder to read model `name` from: `<ckpt_dir>/<name>` when a ckpt_dir is given; else
    `runs/<name>` when it holds `filename` (a model the user trained), else the shipped
    `checkpoints/<name>` (which may not exist: the caller says so)."""
    if ckpt_dir is not None:
        return repo_path(ckpt_dir) / name
    own = repo_path(RUNS_DIR) / name
    if (own / filename).is_file():
        return own
    return repo_path(SHIPPED_DIR) / name
