"""One checkpoint format for every model: atomic writes, safe loads onto any device."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import torch

from utils.errors import UserError


def _atomic_write(path: str | Path, write) -> None:
    """Call `write(file)` on a new temporary file in the same folder, flush it to disk, then rename it
    over `path`: a crash leaves either the old file or the new one, never half of one. The temporary
    file has a unique name (concurrent writers do not collide) and is created with mode 0666 minus the
    umask, like any file the user writes, without touching the process-wide umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_save(obj, path: str | Path) -> None:
    """torch.save `obj` to `path` atomically (see `_atomic_write`)."""
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write UTF-8 text to `path` atomically (see `_atomic_write`)."""
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def write_json(obj, path: str | Path) -> None:
    atomic_write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", path)


def load_checkpoint(path: str | Path, hint: str = "") -> dict:
    """Load a checkpoint on the CPU (whatever device wrote it) with `weights_only=True`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist. {hint}".strip())
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file, not a torch file, unsafe pickle
        raise UserError(f"could not read checkpoint {path}: {err}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise UserError(f"{path} is not a checkpoint of this project (no 'model' entry)")
    return ckpt


def state_dict_to(state: dict, dtype: torch.dtype | None) -> dict:
    """Copy of a state dict on the CPU, floating tensors cast to `dtype` (e.g. fp16 for shipping)."""
    out = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v
    return out


def load_state_dict_float32(module: torch.nn.Module, state: dict) -> None:
    """Load a (possibly fp16) state dict into a float32 module, with a clear error on mismatch."""
    own = module.state_dict()
    state = {k: v.to(own[k].dtype) if k in own and v.is_floating_point() else v for k, v in state.items()}
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[0:3]
        raise UserError(
            "the checkpoint does not fit the model built from its config "
            f"({' '.join(first)}); was it written by another architecture or version?"
        ) from None
