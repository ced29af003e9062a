"""One checkpoint format for every model: atomic writes, safe loads onto any device."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from utils.errors import UserError


def atomic_save(obj, path: str | Path) -> None:
    """Write `obj` with torch.save to a temporary file in the same folder, then rename it over
    `path`: a crash leaves either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(text: str, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
